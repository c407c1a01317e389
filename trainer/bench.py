"""Throughput benchmark: pure optimizer steps on one resident batch vs. the real input path
(uint8 cache -> gather -> float -> augmentation -> step). Prints one `bench` event."""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import torch
import torch.nn.functional as F

from . import data as D
from .models import build_model, count_parameters
from .protocol import DEFAULT_AUGMENTATION
from .train import Amp, configure_determinism, configure_threads, seed_everything, select_device


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
    pure_s = _timed(device, lambda _i: train_step(x_fixed, y_fixed), warmup, steps)

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
        "pipeline_images_per_sec": images / pipeline_s,
        "data_images_per_sec": images / data_s,
        "dataset_load_seconds": load_s if dataset_dir else None,
        "torch_version": torch.__version__,
    }
