"""Throughput benchmark. Prints one `bench` event with three figures measured in the same run:

- `train_images_per_sec`: PyTorch's own step (bare model + AdamW on one resident batch);
- `worker_images_per_sec`: the worker's step (`Run.train_step`: gather from the uint8 cache,
  augmentation, forward/backward, AdamW, LR schedule), set up by `Run.setup` exactly as a job is;
- `worker_vs_bare`: their ratio (1.0 = the worker adds nothing to PyTorch's step),
plus `pipeline_images_per_sec` (bench's own input path + step) and `data_images_per_sec`.
The two step loops alternate in rounds, so load from other processes hits both alike.
"""
from __future__ import annotations

import hashlib
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

from . import data as D
from .models import build_model, count_parameters
from .protocol import DEFAULT_AUGMENTATION
from .protocol import validate_job_spec
from .train import Amp, CancelToken, Run, configure_determinism, configure_threads, seed_everything, \
    select_device


class _Quiet:
    def emit(self, event: str, **fields: Any) -> Dict[str, Any]:
        return {"event": event, **fields}


def _synthetic_export(root: Path, n: int, size: int, g: torch.Generator) -> Path:
    """A dataset export of n random greyscale images (half labelled PNEUMONIA), train and val."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    items: List[Dict[str, Any]] = []
    pixels = torch.randint(0, 256, (n + 8, size, size), dtype=torch.uint8, generator=g).numpy()
    for i, img in enumerate(pixels):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        digest = hashlib.sha256(buf.getvalue()).hexdigest()
        (root / "images" / f"{digest}.png").write_bytes(buf.getvalue())
        items.append({"hash": digest, "file": f"images/{digest}.png", "label": "PNEUMONIA" if i % 2 else "NORMAL",
                      "split": "train" if i < n else "val"})
    (root / "manifest.json").write_text(json.dumps({"version_id": "bench", "classes": ["NORMAL", "PNEUMONIA"],
                                                    "preprocessing": {"size": size}, "items": items}))
    return root


def _worker_run(model_name: str, size: int, batch_size: int, threads: int, device_pref: str,
                dataset_dir: str) -> Run:
    spec = validate_job_spec({"dataset_dir": dataset_dir, "output_dir": str(Path(dataset_dir) / "out"),
                              "model": model_name, "input_size": size, "threads": threads, "device": device_pref,
                              "deterministic": False, "hyperparameters": {"batch_size": batch_size, "epochs": 1000},
                              "export": {"onnx": False}})
    run = Run(spec, _Quiet(), CancelToken(), None)
    run.setup()
    run.net.train()
    return run


def _timed(device: torch.device, fn: Callable[[int], None], warmup: int, steps: int) -> float:
    for i in range(warmup):
        fn(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        fn(warmup + i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def run_bench(model_name: str, input_size: int, steps: int, batch_size: int = 32, threads: int = 0,
              device_pref: str = "auto", warmup: int = 3, dataset_dir: Optional[str] = None) -> Dict[str, Any]:
    device = select_device(device_pref)
    n_threads = configure_threads(threads)
    configure_determinism(False)
    seed_everything(0)
    channels_last = device.type == "cuda"
    model = build_model(model_name, 0.2).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    amp = Amp.for_device(device)

    def train_step(x: torch.Tensor, y: torch.Tensor) -> None:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with amp.autocast(device):
            logits = model(x).view(-1)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        if amp.scaler is not None:
            amp.scaler.scale(loss).backward()
            amp.scaler.step(opt)
            amp.scaler.update()
        else:
            loss.backward()
            opt.step()

    g = torch.Generator().manual_seed(0)
    x_fixed = torch.rand(batch_size, 1, input_size, input_size, generator=g).to(device)
    y_fixed = (torch.rand(batch_size, generator=g) > 0.5).float().to(device)

    with tempfile.TemporaryDirectory(prefix="trainer-bench-") as tmp:
        worker_dir = dataset_dir or str(_synthetic_export(Path(tmp) / "export", max(4 * batch_size, 64), input_size, g))
        run = _worker_run(model_name, input_size, batch_size, n_threads, device_pref, worker_dir)
        w_order = D.epoch_order(run.train_data.labels, "none", torch.Generator().manual_seed(3))
        w_batches = list(D.batch_indices(w_order, batch_size, max(1, len(run.train_data) // batch_size)))
        # Rounds of bare and worker steps in turn: a burst of load elsewhere hits both figures.
        pure_s = worker_s = 0.0
        rounds = max(1, min(steps, 5))
        per_round = [steps // rounds + (1 if r < steps % rounds else 0) for r in range(rounds)]
        for r, k in enumerate(per_round):
            pure_s += _timed(device, lambda _i: train_step(x_fixed, y_fixed), warmup if r == 0 else 0, k)
            worker_s += _timed(device, lambda i: run.train_step(w_batches[i % len(w_batches)]),
                               warmup if r == 0 else 0, k)
        worker_channels_last = run.channels_last

    load_s = 0.0
    if dataset_dir:
        t0 = time.perf_counter()
        manifest = D.read_manifest(dataset_dir)
        cache = D.load_split(manifest, "train", input_size, n_threads)
        load_s = time.perf_counter() - t0
        aug_params = D.resolve_augmentation(manifest, None)
    else:
        n = max(4 * batch_size, 256)
        cache = D.SplitData(torch.randint(0, 256, (n, 1, input_size, input_size), dtype=torch.uint8, generator=g),
                            (torch.rand(n, generator=g) > 0.5).float(), [f"synthetic-{i}" for i in range(n)])
        aug_params = dict(DEFAULT_AUGMENTATION)
    cache = cache.to(device)
    augment = D.Augmenter(aug_params, torch.Generator().manual_seed(1))
    sampler = torch.Generator().manual_seed(2)
    order = D.epoch_order(cache.labels.cpu(), "none", sampler)

    def next_batch(i: int):
        nonlocal order
        per_epoch = max(1, len(cache) // batch_size)
        if i % per_epoch == 0 and i:
            order = D.epoch_order(cache.labels.cpu(), "none", sampler)
        idx = order[(i % per_epoch) * batch_size:(i % per_epoch + 1) * batch_size].to(device)
        return augment(D.to_float(cache.images.index_select(0, idx))), cache.labels.index_select(0, idx)

    def pipeline_step(i: int) -> None:
        x, y = next_batch(i)
        train_step(x, y)

    pipeline_s = _timed(device, pipeline_step, warmup, steps)
    data_s = _timed(device, next_batch, warmup, steps)
    images = steps * batch_size
    return {
        "model": model_name, "input_size": input_size, "batch_size": batch_size, "steps": steps,
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": n_threads, "amp": amp.enabled, "parameters": count_parameters(model),
        "train_images_per_sec": images / pure_s,
        "worker_images_per_sec": images / worker_s,
        "worker_vs_bare": pure_s / worker_s,
        "channels_last": channels_last,
        "worker_channels_last": worker_channels_last,
        "pipeline_images_per_sec": images / pipeline_s,
        "data_images_per_sec": images / data_s,
        "dataset_load_seconds": load_s if dataset_dir else None,
        "torch_version": torch.__version__,
    }
