"""Shared fixtures: tiny synthetic dataset exports (PNEUMONIA = a bright blob) and job specs."""
from __future__ import annotations

import copy
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

SIZE = 24


def blob_image(rng: np.random.RandomState, positive: bool, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = 70 + 20 * (yy / size) + rng.normal(0, 8, (size, size))
    if positive:
        cy, cx = rng.uniform(size * 0.25, size * 0.75, 2)
        img += 130 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 8) ** 2))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: Path, counts: Dict[str, int], size: int = SIZE, seed: int = 0,
                 augmentation: Dict[str, Any] = None) -> Path:
    """Write a dataset export (manifest.json + images/<sha256>.png); counts per split, half positive."""
    rng = np.random.RandomState(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    items: List[Dict[str, Any]] = []
    for split, n in counts.items():
        for i in range(n):
            positive = i % 2 == 1
            buf = io.BytesIO()
            Image.fromarray(blob_image(rng, positive, size)).save(buf, format="PNG")
            digest = hashlib.sha256(buf.getvalue()).hexdigest()
            (root / "images" / f"{digest}.png").write_bytes(buf.getvalue())
            items.append({"hash": digest, "file": f"images/{digest}.png",
                          "label": "PNEUMONIA" if positive else "NORMAL", "split": split,
                          "patient": f"{split}-p{i // 2}"})
    manifest = {
        "version_id": hashlib.sha256(json.dumps(items).encode()).hexdigest(),
        "classes": ["NORMAL", "PNEUMONIA"],
        "preprocessing": {"size": size, "mode": "letterbox", "hash": "prep-" + str(size)},
        "items": items,
    }
    if augmentation is not None:
        manifest["augmentation"] = augmentation
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class ListEmitter:
    """Collects events in memory; `on` hooks let a test react to an event (e.g. request cancel)."""

    def __init__(self, on=None):
        self.events: List[Dict[str, Any]] = []
        self.on = on

    def emit(self, event: str, **fields: Any) -> Dict[str, Any]:
        from trainer.protocol import to_jsonable

        record = to_jsonable({"event": event, **fields})
        json.dumps(record, allow_nan=False)  # every event must be strict JSON
        self.events.append(record)
        if self.on is not None:
            self.on(record)
        return record

    def of(self, name: str) -> List[Dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    def names(self) -> List[str]:
        return [e["event"] for e in self.events]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ds"), {"train": 40, "val": 16, "test": 8},
                        augmentation={"rotation_deg": 5, "hflip": False, "vflip": True, "unknown_key": 1})


@pytest.fixture(scope="session")
def external_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ext"), {"test": 10}, seed=7)


def base_spec(dataset_dir: Path, output_dir: Path, **overrides: Any) -> Dict[str, Any]:
    spec = {
        "job_id": "t",
        "dataset_dir": str(dataset_dir),
        "output_dir": str(output_dir),
        "model": "compact_cnn",
        "input_size": SIZE,
        "seed": 3,
        "threads": 1,
        "device": "cpu",
        "hyperparameters": {"epochs": 2, "batch_size": 8, "lr": 0.003, "warmup_epochs": 0,
                            "early_stopping_patience": None, "dropout": 0.1},
        "export": {"onnx": False},
    }
    for key, value in overrides.items():
        if key == "hyperparameters":
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = copy.deepcopy(value)
    return spec


@pytest.fixture(scope="session")
def trained(dataset, external_dataset, tmp_path_factory):
    """One full job with ONNX export and two test sets, shared by the event and export tests."""
    from trainer.train import run_job

    out = tmp_path_factory.mktemp("run")
    em = ListEmitter()
    spec = base_spec(dataset, out, hyperparameters={"epochs": 3, "warmup_epochs": 1},
                     export={"onnx": True, "opset": 17, "parity_samples": 8},
                     test_dataset_dirs=[{"name": "ext", "dataset_dir": str(external_dataset)}])
    code = run_job(spec, em)
    assert code == 0, em.events[-1]
    return out, em


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    yield
