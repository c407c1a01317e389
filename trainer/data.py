"""Dataset export reader, in-memory image cache, batch sampling and on-the-fly augmentation.

Images are decoded and resized once (PIL, bilinear with antialiasing) and kept as uint8
[N,1,S,S] tensors; batches are gathered by index, converted to float in [0,1] and augmented
with torch ops on whole batches, on the training device. Datasets are small (<= ~6k images),
so this beats a DataLoader with worker processes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .protocol import validate_augmentation

log = logging.getLogger("trainer.data")

POSITIVE_CLASS = "PNEUMONIA"
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The dataset export is missing, malformed, or unusable for the requested job."""


@dataclass
class Manifest:
    root: Path
    version_id: str
    classes: List[str]
    positive_class: str
    preprocessing: Dict[str, Any]
    augmentation: Optional[Dict[str, Any]]
    items: List[Dict[str, Any]]
    stored_size: Optional[int]
    mtime: float = 0.0

    @property
    def preprocessing_hash(self) -> Optional[str]:
        return self.preprocessing.get("hash")

    def label_of(self, item: Dict[str, Any]) -> int:
        return 1 if item["label"] == self.positive_class else 0

    def split_items(self, split: Optional[str]) -> List[Dict[str, Any]]:
        return [it for it in self.items if split is None or it["split"] == split]


def read_manifest(dataset_dir: str) -> Manifest:
    root = Path(dataset_dir)
    path = root / "manifest.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"dataset export not found: {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: manifest must be a JSON object")
    classes = raw.get("classes")
    if not isinstance(classes, list) or len(classes) != 2 or not all(isinstance(c, str) for c in classes):
        raise DatasetError(f"{path}: 'classes' must list exactly two class names")
    positive = POSITIVE_CLASS if POSITIVE_CLASS in classes else classes[1]
    items = raw.get("items")
    if not isinstance(items, list):
        raise DatasetError(f"{path}: 'items' must be a list")
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not isinstance(it.get("file"), str):
            raise DatasetError(f"{path}: items[{i}] needs a 'file'")
        if it.get("label") not in classes:
            raise DatasetError(f"{path}: items[{i}].label {it.get('label')!r} is not one of {classes}")
        if it.get("split") not in SPLITS:
            raise DatasetError(f"{path}: items[{i}].split {it.get('split')!r} is not one of {list(SPLITS)}")
        rel = Path(it["file"])
        if rel.is_absolute() or ".." in rel.parts:
            raise DatasetError(f"{path}: items[{i}].file must be a relative path inside the dataset")
    prep = raw.get("preprocessing") if isinstance(raw.get("preprocessing"), dict) else {}
    size = prep.get("size")
    aug = raw.get("augmentation")
    return Manifest(
        root=root,
        version_id=str(raw.get("version_id", "")),
        classes=list(classes),
        positive_class=positive,
        preprocessing=prep,
        augmentation=aug if isinstance(aug, dict) else None,
        items=items,
        stored_size=size if isinstance(size, int) and size > 0 else None,
        mtime=path.stat().st_mtime,
    )


def resolve_augmentation(manifest: Manifest, overrides: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """defaults <- manifest block (unknown keys ignored) <- job overrides (strict)."""
    merged = validate_augmentation(manifest.augmentation, strict=False)
    return validate_augmentation(overrides, strict=True, base=merged)


def patient_overlap(manifest: Manifest, a: str, b: str) -> int:
    pa = {it.get("patient") for it in manifest.split_items(a) if it.get("patient")}
    pb = {it.get("patient") for it in manifest.split_items(b) if it.get("patient")}
    return len(pa & pb)


# --------------------------------------------------------------------------- image cache


def _load_png(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"image missing from dataset export: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot decode image {path}: {exc}") from None


@dataclass
class SplitData:
    images: torch.Tensor  # uint8 [N,1,S,S]
    labels: torch.Tensor  # float32 [N]
    files: List[str]
    patients: List[Optional[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def positives(self) -> int:
        return int(self.labels.sum().item())

    def to(self, device: torch.device) -> "SplitData":
        return SplitData(self.images.to(device), self.labels.to(device), self.files, self.patients)


_cache: Dict[Tuple[str, float, Optional[str], int], SplitData] = {}
_cache_lock = threading.Lock()


def load_split(manifest: Manifest, split: Optional[str], size: int, threads: int = 0) -> SplitData:
    """Decode every image of `split` (None = all items) at size x size; memoised per process
    so Optuna trials with the same input size share one copy."""
    key = (str(manifest.root.resolve()), manifest.mtime, split, size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    items = manifest.split_items(split)
    workers = max(1, threads or os.cpu_count() or 1)
    paths = [manifest.root / it["file"] for it in items]
    images = np.zeros((len(items), 1, size, size), dtype=np.uint8)
    if items:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, arr in enumerate(pool.map(lambda p: _load_png(p, size), paths)):
                images[i, 0] = arr
    data = SplitData(
        images=torch.from_numpy(images),
        labels=torch.tensor([manifest.label_of(it) for it in items], dtype=torch.float32),
        files=[it["file"] for it in items],
        patients=[it.get("patient") for it in items],
    )
    with _cache_lock:
        _cache[key] = data
    return data


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


class XrayDataset(torch.utils.data.Dataset):
    """Map-style view over a SplitData, for callers that want a DataLoader; yields float [1,S,S] in [0,1]."""

    def __init__(self, data: SplitData):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.data.images[i].float().div_(255.0), self.data.labels[i]


# --------------------------------------------------------------------------- batching


def steps_per_epoch(n: int, batch_size: int, max_batches: Optional[int], min_tail: int = 2) -> int:
    """`min_tail`: the smallest last batch kept (2 per process: a 1-image batch breaks BatchNorm)."""
    steps = n // batch_size + (1 if n % batch_size >= min_tail else 0)
    steps = max(steps, 1)
    return min(steps, max_batches) if max_batches else steps


def epoch_order(labels: torch.Tensor, balance: str, generator: torch.Generator) -> torch.Tensor:
    """Index order for one epoch: a permutation, or a class-balanced draw with replacement."""
    n = int(labels.shape[0])
    if balance == "sampler":
        pos = float(labels.sum().item())
        neg = n - pos
        weights = torch.where(labels > 0.5, torch.tensor(1.0 / max(pos, 1.0)), torch.tensor(1.0 / max(neg, 1.0)))
        return torch.multinomial(weights.double(), n, replacement=True, generator=generator)
    return torch.randperm(n, generator=generator)


def batch_indices(order: torch.Tensor, batch_size: int, steps: int, min_tail: int = 2) -> Iterator[torch.Tensor]:
    for s in range(steps):
        chunk = order[s * batch_size:(s + 1) * batch_size]
        if chunk.numel() < min_tail:
            return
        yield chunk


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    return images_u8.float().div_(255.0)


# --------------------------------------------------------------------------- augmentation


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


class Augmenter:
    """Batch augmentation with torch ops. All randomness comes from `generator` (CPU), so a run is
    reproducible on any device and the generator state can be checkpointed. Never flips vertically."""

    def __init__(self, params: Dict[str, Any], generator: torch.Generator):
        self.p = params
        self.g = generator

    @property
    def active(self) -> bool:
        p = self.p
        return bool(p["enabled"]) and any([
            p["rotation_deg"] > 0, p["translate"] > 0, p["scale"] != [1.0, 1.0], p.get("aspect", 0) > 0,
            p["brightness"] > 0,
            p["contrast"] > 0, p["gamma"] != [1.0, 1.0], p["hflip"], p["blur"] > 0, p["noise"] > 0,
        ])

    def __call__(self, x: torch.Tensor, rows: Optional[torch.Tensor] = None, total: Optional[int] = None) -> torch.Tensor:
        """x: float [N,1,H,W] in [0,1] on any device; returns a new tensor in [0,1].

        Distributed: x holds the `rows` (positions) of a global batch of `total` images. The random
        parameters are drawn for the whole global batch, so every rank consumes the generator
        alike and each image gets what it would get in a one-process run."""
        if not self.active:
            return x
        p, g, dev = self.p, self.g, x.device
        n = x.shape[0] if total is None else total

        def mine(t: torch.Tensor) -> torch.Tensor:
            return t if rows is None else t.index_select(0, rows)

        aspect = p.get("aspect", 0.0)
        if p["rotation_deg"] > 0 or p["translate"] > 0 or p["scale"] != [1.0, 1.0] or p["hflip"] or aspect > 0:
            angle = _uniform(n, -p["rotation_deg"], p["rotation_deg"], g) * (math.pi / 180.0)
            scale = _uniform(n, p["scale"][0], p["scale"][1], g)
            # affine_grid works in [-1,1] coordinates, so a shift of t * size is 2t there.
            tx = _uniform(n, -p["translate"], p["translate"], g) * 2.0
            ty = _uniform(n, -p["translate"], p["translate"], g) * 2.0
            flip = (torch.rand(n, generator=g) < 0.5).float() * -2.0 + 1.0 if p["hflip"] else torch.ones(n)
            cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
            # aspect: stretch x by r and y by 1/r (the grid maps output to input, hence 1/r on x).
            r = 1.0 + _uniform(n, -aspect, aspect, g) if aspect > 0 else torch.ones(n)
            theta = mine(torch.stack([
                torch.stack([cos * flip / r, -sin / r, tx], dim=1),
                torch.stack([sin * flip * r, cos * r, ty], dim=1),
            ], dim=1)).to(device=dev, dtype=x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if p["blur"] > 0:
            sigma = _uniform(n, 0.0, p["blur"], g)
            x = _gaussian_blur(x, mine(sigma).to(dev), float(sigma.max().item()))
        if p["contrast"] > 0:
            c = mine(_uniform(n, 1 - p["contrast"], 1 + p["contrast"], g)).to(dev).view(-1, 1, 1, 1)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * c + mean
        if p["brightness"] > 0:
            x = x + mine(_uniform(n, -p["brightness"], p["brightness"], g)).to(dev).view(-1, 1, 1, 1)
        if p["gamma"] != [1.0, 1.0]:
            gamma = mine(_uniform(n, p["gamma"][0], p["gamma"][1], g)).to(dev).view(-1, 1, 1, 1)
            x = x.clamp(min=0.0).pow(gamma)
        if p["noise"] > 0:
            std = _uniform(n, 0.0, p["noise"], g).view(n, 1, 1, 1)
            x = x + mine(torch.randn((n, *x.shape[1:]), generator=g) * std).to(dev)
        return x.clamp_(0.0, 1.0)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, max_sigma: Optional[float] = None) -> torch.Tensor:
    """Separable Gaussian blur with a different sigma (pixels) per image, via a grouped conv.
    `max_sigma` sets the kernel radius (a whole global batch's, so every rank's kernels match)."""
    n, _, h, w = x.shape
    widest = float(sigma.max().item()) if max_sigma is None else max_sigma
    radius = min(max(1, int(math.ceil(3.0 * widest))), min(h, w) - 1)
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.clamp(min=1e-3).to(x.dtype).view(n, 1)
    k = torch.exp(-0.5 * (offsets.view(1, -1) / s) ** 2)
    k = k / k.sum(dim=1, keepdim=True)
    y = x.reshape(1, n, h, w)
    y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(n, 1, 1, -1), groups=n)
    y = F.conv2d(y, k.view(n, 1, -1, 1), groups=n)
    return y.reshape(n, 1, h, w)


# --------------------------------------------------------------------------- fixed shifts


def _affine(x: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """Zoom by sx horizontally and sy vertically about the centre (values > 1 enlarge = crop)."""
    n = x.shape[0]
    theta = torch.tensor([[1.0 / sx, 0.0, 0.0], [0.0, 1.0 / sy, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(n, 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor + mean


def _seeded_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    return x + (torch.randn(tuple(x.shape), generator=g) * std).to(x.device)


# Deterministic, plausible acquisition shifts of a float [N,1,H,W] batch in [0,1]: used to pick a
# threshold that holds under shift (threshold method "robust") and reported with the evaluation.
SHIFTS: Dict[str, Any] = {
    "exposure -20%": lambda x: x * 0.8,
    "exposure +20%": lambda x: x * 1.2,
    "contrast x0.7": lambda x: _contrast(x, 0.7),
    "contrast x1.3": lambda x: _contrast(x, 1.3),
    "gamma 0.7": lambda x: x.clamp(min=0).pow(0.7),
    "gamma 1.4": lambda x: x.clamp(min=0).pow(1.4),
    "blur sigma 1.5px": lambda x: _gaussian_blur(x, torch.full((x.shape[0],), 1.5, device=x.device)),
    "noise sd 0.03": lambda x: _seeded_noise(x, 0.03),
    "aspect 0.85": lambda x: _affine(x, 0.85, 1.0),
    "aspect 1.15": lambda x: _affine(x, 1.15, 1.0),
    "crop 90%": lambda x: _affine(x, 1.11, 1.11),
    "zoom out 90%": lambda x: _affine(x, 0.9, 0.9),
}


def apply_shift(name: str, x: torch.Tensor) -> torch.Tensor:
    return SHIFTS[name](x).clamp_(0.0, 1.0)
