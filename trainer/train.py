"""The training loop: one job spec in, events out, artifacts on disk.

`run_job` is the entry point (validates, reports `failed` on error); `execute_job` does the work
and raises. Resume is exact: a checkpoint holds every piece of state that influences the rest
of the run (weights, best weights, optimizer, scheduler, AMP scaler, all RNG streams, position
inside the epoch and the running loss), so stop + resume gives the same weights as one run.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from . import data as D
from .distributed import Dist
from .distributed import from_env as dist_from_env
from .evaluate import choose_threshold, compute_metrics, confusion, fit_temperature, rates, roc_auc, sigmoid
from .export import (classifier_metadata, crop_metadata, export_onnx, exported_feature_map, max_onnx_opset,
                     parity_check, sha256_file)
from .mixing import Mixer
from .models import XrayClassifier, build_model, count_parameters
from .protocol import SpecError, emit_failure, to_jsonable, utc_now, validate_job_spec
from .quantize import GATE_FILE, fold_weight_quantizers, qdq_node_count, quantized_copy, scalarise_qdq, write_gate_inputs

log = logging.getLogger("trainer.train")

CHECKPOINT_FORMAT = "xray-trainer-checkpoint/1"
PROGRESS_INTERVAL_S = 2.0
# Per-step losses ride on progress events: at most this many (evenly thinned) per event.
STEP_LOSSES_PER_EVENT = 20


def thin(points: list, most: int) -> list:
    """At most `most` evenly spaced items of `points`, always keeping the last."""
    if len(points) <= most:
        return points
    stride = len(points) / most
    return [points[min(len(points) - 1, int(round((k + 1) * stride)) - 1)] for k in range(most)]
EpochCallback = Callable[[int, Optional[float]], None]


class CancelToken:
    """Set from a signal handler (or a test); the loop checks it after every optimizer step."""

    def __init__(self) -> None:
        self._flag = threading.Event()

    def request(self) -> None:
        self._flag.set()

    @property
    def requested(self) -> bool:
        return self._flag.is_set()


# --------------------------------------------------------------------------- environment


def select_device(preference: str, local_rank: int = 0) -> torch.device:
    if preference == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # one GPU per torchrun process
        return torch.device("cuda", local_rank)
    if preference == "cuda":
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA device")
    return torch.device("cpu")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def configure_threads(threads: int) -> int:
    n = threads or available_cores()
    torch.set_num_threads(n)
    return n


def configure_determinism(deterministic: bool) -> None:
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@dataclass
class Amp:
    enabled: bool
    dtype: Optional[torch.dtype]
    scaler: Any  # GradScaler or None

    @staticmethod
    def for_device(device: torch.device) -> "Amp":
        if device.type != "cuda":
            return Amp(False, None, None)
        if torch.cuda.is_bf16_supported():
            return Amp(True, torch.bfloat16, None)  # bf16 needs no loss scaling
        scaler_cls = getattr(getattr(torch, "amp", None), "GradScaler", None)
        scaler = scaler_cls("cuda") if scaler_cls is not None else torch.cuda.amp.GradScaler()
        return Amp(True, torch.float16, scaler)

    def autocast(self, device: torch.device):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


def lr_lambda(kind: str, total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier for the optimizer step with 0-based index `step`."""
    total = max(1, total_steps)
    if kind == "onecycle":
        peak = warmup_steps if warmup_steps > 0 else max(1, int(0.3 * total))
        start, end = 1.0 / 25.0, 1.0 / 25.0 / 1e4

        def onecycle(step: int) -> float:
            if step < peak:
                t = step / peak
                return start + (1.0 - start) * (1.0 - math.cos(math.pi * t)) / 2.0
            t = min(1.0, (step - peak) / max(1, total - peak))
            return end + (1.0 - end) * (1.0 + math.cos(math.pi * t)) / 2.0
        return onecycle

    def warm_then(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "none":
            return 1.0
        t = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return warm_then


# --------------------------------------------------------------------------- state & checkpoints


@dataclass
class TrainState:
    epoch: int = 1  # next epoch to run (1-based)
    step: int = 0  # optimizer steps already done inside `epoch`
    best_auc: Optional[float] = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False  # early stopping fired
    history: List[Dict[str, Any]] = field(default_factory=list)
    best_weights: Optional[Dict[str, torch.Tensor]] = None
    # Mid-epoch only: sampler state at the epoch's start (to rebuild the order) and running loss.
    order_state: Optional[torch.Tensor] = None
    loss_sum: float = 0.0
    seen: int = 0


def _cpu_state(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def torch_load(path: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)  # ours: holds RNG tuples
    except TypeError:  # torch without the weights_only argument
        return torch.load(path, map_location="cpu")


def atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a SIGKILL mid-write leaves the previous checkpoint intact


class Run:
    """One training job: everything the loop touches, so checkpointing is one method."""

    def __init__(self, spec: Dict[str, Any], emitter: Any, cancel: CancelToken,
                 on_epoch: Optional[EpochCallback], dist: Optional[Dist] = None):
        self.spec = spec
        self.dist = dist or Dist()
        self.hp = spec["hyperparameters"]
        self.emitter = emitter
        self.cancel = cancel
        self.on_epoch = on_epoch
        self.out = Path(spec["output_dir"])
        self.ckpt_dir = self.out / "checkpoints"
        self.last_ckpt = self.ckpt_dir / "last.pt"
        self.state = TrainState()

    # ---- setup

    def setup(self) -> None:
        spec, hp = self.spec, self.hp
        if spec["export"]["onnx"] and spec["export"]["opset"] > max_onnx_opset():
            raise SpecError(f"export.opset: {spec['export']['opset']} is above what this torch exports "
                            f"({max_onnx_opset()})")
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.device = select_device(spec["device"], self.dist.local_rank)
        self.threads = configure_threads(spec["threads"])
        configure_determinism(spec["deterministic"])
        self.backend = self.dist.init(self.device)
        self.manifest = D.read_manifest(spec["dataset_dir"])
        self.size = spec["input_size"] or self.manifest.stored_size or 224
        self.aug_params = D.resolve_augmentation(self.manifest, spec["augmentation"])
        self.train_data = D.load_split(self.manifest, "train", self.size, self.threads)
        self.val_data = D.load_split(self.manifest, "val", self.size, self.threads)
        self._check_splits()
        self.test_sets = self._test_sets()

        seed_everything(spec["seed"])
        model = build_model(spec["model"], hp["dropout"], hp["input_crop"], self.size)
        self.channels_last = self.device.type == "cuda"
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model: XrayClassifier = model
        # Training runs through DDP (gradients averaged across ranks); evaluation, checkpoints and
        # export use the bare module, whose weights are the same on every rank.
        self.net: torch.nn.Module = model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel
            self.net = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            torch.manual_seed(spec["seed"] + 1000 * self.dist.rank)  # own dropout masks per rank
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]  # BN and biases
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=hp["lr"])
        # batch_size is the global batch: each of the N processes takes batch_size / N of it.
        if hp["batch_size"] < 2 * self.dist.world:
            raise SpecError(f"hyperparameters.batch_size: {hp['batch_size']} is too small for "
                            f"{self.dist.world} processes (at least 2 images per process)")
        self.min_tail = 2 * self.dist.world
        self.steps = D.steps_per_epoch(len(self.train_data), hp["batch_size"], hp["max_train_batches"],
                                       self.min_tail)
        total = self.steps * hp["epochs"]
        warmup = int(round(hp["warmup_epochs"] * self.steps))
        if warmup >= total and total > 1:
            log.warning("warmup (%d steps) covers the whole run; shortened to %d", warmup, total // 2)
            warmup = total // 2
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(hp["scheduler"], total, warmup))
        self.amp = Amp.for_device(self.device)
        pos = self.train_data.positives
        neg = len(self.train_data) - pos
        pos_weight = torch.tensor([neg / pos], device=self.device) if hp["balance"] == "loss" else None
        self.pos_weight = pos_weight
        self.sampler_gen = torch.Generator().manual_seed(spec["seed"] + 1)
        self.augmenter = D.Augmenter(self.aug_params, torch.Generator().manual_seed(spec["seed"] + 2))
        self.mixer = Mixer(hp["mixup_alpha"], hp["cutmix_alpha"], torch.Generator().manual_seed(spec["seed"] + 3))
        if spec["resume_from"]:
            self._resume(spec["resume_from"])
        self.train_dev = self.train_data.to(self.device)
        self.val_dev = self.val_data.to(self.device)

    def _check_splits(self) -> None:
        tr, va = self.train_data, self.val_data
        if len(tr) < 2 or tr.positives == 0 or tr.positives == len(tr):
            raise D.DatasetError(f"the train split needs images of both classes (has {len(tr)} images, "
                                 f"{tr.positives} positive)")
        if len(va) < 2 or va.positives == 0 or va.positives == len(va):
            raise D.DatasetError(f"the val split needs images of both classes for AUC, early stopping and the "
                                 f"threshold (has {len(va)} images, {va.positives} positive)")
        overlap = D.patient_overlap(self.manifest, "train", "val")
        if overlap:
            log.warning("%d patient(s) appear in both train and val: validation metrics are optimistic", overlap)

    def _test_sets(self) -> List[Any]:
        sets = []
        if self.manifest.split_items("test"):
            sets.append(("internal", self.manifest, "test"))
        for entry in self.spec["test_dataset_dirs"]:
            m = D.read_manifest(entry["dataset_dir"])
            if set(m.classes) != set(self.manifest.classes):
                raise D.DatasetError(f"test dataset {entry['name']}: classes {m.classes} differ from "
                                     f"{self.manifest.classes}")
            sets.append((entry["name"], m, None))  # an external set is evaluated whole
        return sets

    # ---- checkpoints

    def checkpoint(self) -> Dict[str, Any]:
        s = self.state
        rng = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "sampler": self.sampler_gen.get_state(),
            "augment": self.augmenter.g.get_state(),
            "mix": self.mixer.g.get_state(),
        }
        if self.dist.enabled:  # dropout streams differ per rank; a collective, like save_checkpoint
            rng["torch_ranks"] = self.dist.gather_objects(torch.get_rng_state())
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "job_id": self.spec["job_id"],
            "model_name": self.spec["model"],
            "input_size": self.size,
            "dropout": self.hp["dropout"],
            "input_crop": self.hp["input_crop"],
            "trained_on": self.trained_on(),
            "batch_size": self.hp["batch_size"],
            "steps_per_epoch": self.steps,
            "dataset_version": self.manifest.version_id,
            "spec": self.spec,
            "model": _cpu_state(self.model),
            "best_model": s.best_weights,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.amp.scaler.state_dict() if self.amp.scaler is not None else None,
            "position": {"epoch": s.epoch, "step": s.step},
            "epoch_progress": None if s.step == 0 else
            {"order_state": s.order_state, "loss_sum": s.loss_sum, "seen": s.seen},
            "best": {"auc": s.best_auc, "epoch": s.best_epoch},
            "bad_epochs": s.bad_epochs,
            "stopped": s.stopped,
            "history": s.history,
            "rng": rng,
            "world_size": self.dist.world,
        }

    def save_checkpoint(self, path: Path) -> Path:
        """Every rank calls it (it gathers RNG states); rank 0 writes the file."""
        ck = self.checkpoint()
        if self.dist.is_main:
            atomic_save(ck, path)
        return path

    def _resume(self, path: str) -> None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"resume_from: checkpoint {path} does not exist")
        ck = torch_load(path)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"resume_from: {path} is not a trainer checkpoint")
        # The crop changes what the network computes but no parameter, so load_state_dict would not notice it;
        # checkpoints older than its own key recorded it in their spec only.
        crop = ck["input_crop"] if "input_crop" in ck else (ck.get("spec") or {}).get("hyperparameters", {}).get("input_crop")
        for key, then, mine in (("model_name", ck["model_name"], self.spec["model"]), ("input_size", ck["input_size"], self.size),
                                ("input_crop", crop, self.hp["input_crop"])):
            if then != mine:
                raise ValueError(f"resume_from: checkpoint has {key}={then!r}, this job has {mine!r}")
        if ck["dataset_version"] != self.manifest.version_id:
            log.warning("resuming on dataset version %s, checkpoint was trained on %s",
                        self.manifest.version_id, ck["dataset_version"])
        pos = ck["position"]
        if pos["step"] and ck["steps_per_epoch"] != self.steps:
            raise ValueError("resume_from: the checkpoint stopped mid-epoch and batch_size/max_train_batches "
                             "changed, so the epoch cannot be continued")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        if self.amp.scaler is not None and ck.get("scaler"):
            self.amp.scaler.load_state_dict(ck["scaler"])
        s = self.state
        s.epoch, s.step = pos["epoch"], pos["step"]
        s.best_auc, s.best_epoch = ck["best"]["auc"], ck["best"]["epoch"]
        s.bad_epochs, s.stopped, s.history = ck["bad_epochs"], ck["stopped"], list(ck["history"])
        s.best_weights = ck["best_model"]
        if ck["epoch_progress"]:
            s.order_state = ck["epoch_progress"]["order_state"]
            s.loss_sum, s.seen = ck["epoch_progress"]["loss_sum"], ck["epoch_progress"]["seen"]
        rng = ck["rng"]  # restored last: building the model above consumed RNG
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        ranks = rng.get("torch_ranks")
        if self.dist.enabled and ranks and len(ranks) == self.dist.world:
            torch.set_rng_state(ranks[self.dist.rank])
        elif self.dist.enabled:
            torch.manual_seed(self.spec["seed"] + 1000 * self.dist.rank + 7919 * s.epoch)
            log.info("checkpoint came from %s process(es): rank dropout streams restart", ck.get("world_size", 1))
        self.sampler_gen.set_state(rng["sampler"])
        self.augmenter.g.set_state(rng["augment"])
        if rng.get("mix") is not None:
            self.mixer.g.set_state(rng["mix"])
        elif self.mixer.active:
            log.warning("checkpoint has no mixup/cutmix RNG state: the mixing draws restart from the seed")
        if self.device.type == "cuda" and rng.get("cuda") is not None:
            try:
                torch.cuda.set_rng_state_all(rng["cuda"])
            except Exception:  # different GPU count: CUDA streams restart, CPU-side state still exact
                log.warning("could not restore CUDA RNG state; resume is not bit-exact on this device")

    # ---- loop

    def loss_fn(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """BCE with `pos_weight` (balance "loss"). Targets may be mixed (mixup/cutmix:
        lam * y_a + (1 - lam) * y_b): smoothing is affine and BCE-with-pos_weight is linear in the
        target, so this is exactly lam * loss(y_a) + (1 - lam) * loss(y_b), each part carrying
        its own class's balance weight."""
        eps = self.hp["label_smoothing"]
        if eps:
            targets = targets * (1.0 - eps) + 0.5 * eps
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight, reduction=reduction)

    def train_epoch(self, epoch: int) -> bool:
        """Runs (the rest of) one epoch; returns False if cancelled (checkpoint already written)."""
        s, hp = self.state, self.hp
        if s.step == 0:
            s.order_state = self.sampler_gen.get_state()
            s.loss_sum, s.seen = 0.0, 0
            order = D.epoch_order(self.train_data.labels, hp["balance"], self.sampler_gen)
        else:  # resumed mid-epoch: rebuild the same order, keep the generator where it was
            current = self.sampler_gen.get_state()
            self.sampler_gen.set_state(s.order_state)
            order = D.epoch_order(self.train_data.labels, hp["balance"], self.sampler_gen)
            self.sampler_gen.set_state(current)
        self.net.train()
        t0 = last_report = time.monotonic()
        images_this_run = 0
        step_losses: list = []  # [global step, this step's mean loss] since the last progress event
        for i, idx in enumerate(D.batch_indices(order, hp["batch_size"], self.steps, self.min_tail)):
            if i < s.step:
                continue
            loss_sum, n = self.train_step(idx)
            cancel = self.cancel.requested
            if self.dist.enabled:  # one small all-reduce: the global loss, images and a cancel vote
                loss_sum, n, votes = self.dist.all_sum([loss_sum, n, 1.0 if cancel else 0.0])
                n, cancel = int(n), votes > 0
            if not math.isfinite(loss_sum):
                raise FloatingPointError(f"training diverged: loss is {loss_sum / max(n, 1)} at epoch {epoch}, "
                                         f"step {i + 1}; lower hyperparameters.lr")
            s.loss_sum += loss_sum
            s.seen += n
            s.step = i + 1
            images_this_run += n
            step_losses.append([(epoch - 1) * self.steps + s.step, loss_sum / max(n, 1)])
            now = time.monotonic()
            if now - last_report >= PROGRESS_INTERVAL_S:
                last_report = now
                self.emitter.emit("progress", epoch=epoch, step=s.step, steps=self.steps,
                                  loss=s.loss_sum / s.seen, images_per_sec=images_this_run / (now - t0),
                                  step_losses=thin(step_losses, STEP_LOSSES_PER_EVENT))
                step_losses = []
            if cancel:
                path = self.save_checkpoint(self.last_ckpt)
                self.emitter.emit("cancelled", epoch=epoch, step=s.step, checkpoint=str(path))
                return False
        self.epoch_images_per_sec = images_this_run / max(time.monotonic() - t0, 1e-9)
        if step_losses and s.seen:  # the epoch's last steps (all of a short epoch's)
            self.emitter.emit("progress", epoch=epoch, step=s.step, steps=self.steps, loss=s.loss_sum / s.seen,
                              images_per_sec=self.epoch_images_per_sec,
                              step_losses=thin(step_losses, STEP_LOSSES_PER_EVENT))
        return True

    def train_step(self, idx: torch.Tensor) -> "tuple[float, int]":
        """One optimizer step on the global batch `idx` (this rank's share of it when distributed).
        Returns this rank's summed per-image loss and image count."""
        total = int(idx.numel())
        rows = None
        mix = self.mixer.draw(total, *self.train_dev.images.shape[-2:]) if self.mixer.active else None
        if self.dist.enabled:
            rows = self.dist.rows_of(total)
            # Mixing: this rank also augments its rows' partners (which may be other ranks'
            # rows), with the global batch's draws, so it mixes the pairs one process would.
            want = rows if mix is None else torch.cat([rows, mix.partners(rows)])
            idx = idx.index_select(0, want)
        else:
            want = None
        idx_dev = idx.to(self.device)
        x = self.augmenter(D.to_float(self.train_dev.images.index_select(0, idx_dev)), rows=want,
                           total=total if want is not None else None)
        y = self.train_dev.labels.index_select(0, idx_dev)
        if mix is not None:  # after augmentation; targets mixed before label smoothing (in loss_fn)
            x, y = mix.apply(x, y, rows)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.amp.autocast(self.device):
            logits = self.net(x).view(-1)
        n = int(y.numel())
        if self.dist.enabled:
            # DDP averages gradients over ranks; sum / global batch * world makes that the mean over
            # the global batch, as in one process, whatever each rank's share.
            loss_sum = self.loss_fn(logits.float(), y, reduction="sum")
            loss = loss_sum * (self.dist.world / total)
        else:
            loss = self.loss_fn(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.amp.scaler is not None:
            self.amp.scaler.scale(loss).backward()
            self.amp.scaler.step(self.optimizer)
            self.amp.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        if self.dist.enabled:
            return float(loss_sum.item()), n
        return float(loss.item()) * n, n

    def predict_logits(self, images_u8: torch.Tensor, shift: Optional[str] = None) -> np.ndarray:
        self.model.eval()
        bs = max(2 * self.hp["batch_size"], 64)
        out = []
        with torch.inference_mode():
            for i in range(0, images_u8.shape[0], bs):
                x = D.to_float(images_u8[i:i + bs].to(self.device))
                if shift is not None:
                    x = D.apply_shift(shift, x)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with self.amp.autocast(self.device):
                    out.append(self.model(x).float().view(-1).cpu())
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    def validate(self) -> Dict[str, Optional[float]]:
        if self.dist.enabled:  # each rank scores its shard of val; every rank gets all the logits
            self.dist.broadcast_buffers(self.model)
            mine = self.predict_logits(self.val_dev.images[self.dist.shard(len(self.val_data))])
            logits = self.dist.gather_rows(torch.from_numpy(mine)).numpy()
        else:
            logits = self.predict_logits(self.val_dev.images)
        if not np.isfinite(logits).all():
            raise FloatingPointError("training diverged: the model outputs non-finite logits on the val split; "
                                     "lower hyperparameters.lr")
        y = self.val_data.labels.double().numpy()
        loss = F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(y)).item()
        return {"val_loss": float(loss), "val_auc": roc_auc(y, logits)}

    def run(self) -> Dict[str, Any]:
        spec, hp, s = self.spec, self.hp, self.state
        self.emitter.emit(
            "started", job_id=spec["job_id"], device=str(self.device), threads=self.threads, model=spec["model"],
            device_name=self.device_name(),
            parameters=count_parameters(self.model), train_images=len(self.train_data),
            val_images=len(self.val_data), start_epoch=s.epoch, time=utc_now(), input_size=self.size,
            epochs=hp["epochs"], steps_per_epoch=self.steps, amp=self.amp.enabled,
            resumed_from=spec["resume_from"], world_size=self.dist.world, backend=self.backend)
        if self.dist.agree(self.cancel.requested):
            self.emitter.emit("cancelled", epoch=s.epoch, step=s.step, checkpoint=spec["resume_from"])
            return {"cancelled": True}
        while s.epoch <= hp["epochs"] and not s.stopped:
            epoch = s.epoch
            t0 = time.monotonic()
            if not self.train_epoch(epoch):
                return {"cancelled": True}
            v = self.validate()
            auc = v["val_auc"]
            if auc is not None and (s.best_auc is None or auc > s.best_auc):
                s.best_auc, s.best_epoch, s.bad_epochs = auc, epoch, 0
                s.best_weights = _cpu_state(self.model)
            else:
                s.bad_epochs += 1
                patience = hp["early_stopping_patience"]
                if patience and s.bad_epochs >= patience:
                    s.stopped = True
            record = {"epoch": epoch, "epochs": hp["epochs"], "train_loss": s.loss_sum / max(s.seen, 1),
                      "val_loss": v["val_loss"], "val_auc": auc, "lr": self.optimizer.param_groups[0]["lr"],
                      "images_per_sec": self.epoch_images_per_sec, "seconds": time.monotonic() - t0}
            s.history.append(record)
            self.emitter.emit("epoch", **record, best_val_auc=s.best_auc, early_stopped=s.stopped)
            s.epoch, s.step, s.order_state = epoch + 1, 0, None
            path = self.save_checkpoint(self.last_ckpt)
            self.emitter.emit("checkpoint", epoch=epoch, path=str(path))
            if self.on_epoch is not None:
                self.on_epoch(epoch, auc)  # Optuna's pruner hook; may raise TrialPruned
            if self.dist.agree(self.cancel.requested) and (s.epoch <= hp["epochs"] and not s.stopped):
                self.emitter.emit("cancelled", epoch=epoch, step=0, checkpoint=str(path))
                return {"cancelled": True}
        final_ckpt = self.save_checkpoint(self.out / "checkpoint.pt")  # full state at the end of training
        if not self.dist.is_main:
            return {"cancelled": False}  # rank 0 evaluates, exports and reports
        return self.finish(final_ckpt)

    # ---- final evaluation and artifacts

    def _evaluate_set(self, labels: np.ndarray, logits: np.ndarray) -> Dict[str, Any]:
        probs = sigmoid(logits / self.temperature)
        return compute_metrics(labels, probs, self.threshold, self.spec["threshold"]["method"],
                               self.temperature, seed=self.spec["seed"])

    def _shift_summary(self, labels: np.ndarray, logits: np.ndarray) -> Dict[str, Any]:
        probs = sigmoid(logits / self.temperature)
        r = rates(confusion(labels, probs, self.threshold))
        return {"auc": roc_auc(labels, probs), "sensitivity": r["sensitivity"], "specificity": r["specificity"]}

    def artifact(self, kind: str, path: Path) -> Dict[str, Any]:
        digest = sha256_file(path)
        self.emitter.emit("artifact", kind=kind, path=str(path), sha256=digest, bytes=path.stat().st_size)
        return {"path": str(path), "sha256": digest, "bytes": path.stat().st_size}

    def trained_on(self) -> Dict[str, Any]:
        """Where the weights were trained (the model card's `training.trained_on`)."""
        return {
            "device": self.device.type,
            "device_name": self.device_name(),
            "processes": self.dist.world,
            "threads": self.threads,
            "torch": torch.__version__,
            "amp": self.amp.enabled,
        }

    def device_name(self) -> str:
        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"

    def export_int8(self, onnx_meta: Dict[str, Any]) -> Path:
        """model.int8.onnx, calibrated on up to export.int8_calibration training images (a seeded
        sample), and the validation inputs its parity gate is scored on."""
        import onnx

        n = min(self.spec["export"]["int8_calibration"], len(self.train_data))
        pick = torch.randperm(len(self.train_data), generator=torch.Generator().manual_seed(self.spec["seed"] + 4))[:n]
        quantized = quantized_copy(self.model, self.train_data.images[pick])
        path = self.out / "model.int8.onnx"
        export_onnx(quantized, self.temperature, path, self.size, self.spec["export"]["opset"],
                    {**onnx_meta, "variant": "int8", "int8_calibration_images": n})
        proto = onnx.load(str(path))
        scalarise_qdq(proto)
        fold_weight_quantizers(proto)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(path))
        write_gate_inputs(self.out, self.val_data.images, self.val_data.labels.tolist())
        log.info("INT8 variant: %d quantize nodes, calibrated on %d training images", qdq_node_count(path), n)
        return path

    def finish(self, final_ckpt: Path) -> Dict[str, Any]:
        spec, s, out = self.spec, self.state, self.out
        if s.best_weights is not None:
            self.model.load_state_dict(s.best_weights)
        y_val = self.val_data.labels.double().numpy()
        val_logits = self.predict_logits(self.val_dev.images)
        self.temperature = fit_temperature(val_logits, y_val)
        val_probs = sigmoid(val_logits / self.temperature)
        thr_spec = spec["threshold"]
        shifted_logits = {name: self.predict_logits(self.val_dev.images, shift=name) for name in D.SHIFTS} \
            if thr_spec["method"] == "robust" else {}
        self.threshold = choose_threshold(y_val, val_probs, thr_spec["method"], thr_spec["target_sensitivity"],
                                          [sigmoid(v / self.temperature) for v in shifted_logits.values()])
        evaluations = {"val": self._evaluate_set(y_val, val_logits)}
        if shifted_logits:
            evaluations["val"]["shifts"] = {name: self._shift_summary(y_val, v) for name, v in shifted_logits.items()}
        self.emitter.emit("evaluation", split="val", metrics=evaluations["val"])
        for name, manifest, split in self.test_sets:
            data = D.load_split(manifest, split, self.size, self.threads)
            if len(data) == 0:
                continue
            metrics = self._evaluate_set(data.labels.double().numpy(), self.predict_logits(data.images))
            evaluations[f"test:{name}"] = metrics
            self.emitter.emit("evaluation", split=f"test:{name}", metrics=metrics)

        head = classifier_metadata(self.model, self.temperature)
        self.model.eval()
        fmap = exported_feature_map(self.model, self.size)  # the full-frame grid when the model crops
        meta: Dict[str, Any] = {
            "model_name": spec["model"],
            "input_size": self.size,
            "input_crop": crop_metadata(self.model),
            "threshold": self.threshold,
            "threshold_method": thr_spec["method"],
            "temperature": self.temperature,
            **head,
            "preprocessing_hash": self.manifest.preprocessing_hash or "",
            "dataset_version": self.manifest.version_id,
            "classes": self.manifest.classes,
            "positive_class": self.manifest.positive_class,
            "job_id": spec["job_id"],
            "feature_channels": self.model.feature_channels,
            "feature_map": fmap,
        }
        artifacts: Dict[str, Dict[str, Any]] = {}
        artifacts["checkpoint"] = self.artifact("checkpoint", final_ckpt)
        sd_path = out / "state_dict.pt"
        torch.save({"model_name": spec["model"], "input_size": self.size, "dropout": self.hp["dropout"],
                    "input_crop": self.hp["input_crop"],
                    "temperature": self.temperature, "threshold": self.threshold,
                    "state_dict": _cpu_state(self.model)}, sd_path)
        artifacts["state_dict"] = self.artifact("state_dict", sd_path)
        parity: Dict[str, Any] = {"method": "none", "n": 0, "max_abs_diff": None, "ok": None}
        if spec["export"]["onnx"]:
            onnx_path = out / "model.onnx"
            onnx_meta = {k: meta[k] for k in ("classifier_weight", "classifier_bias", "input_size", "threshold",
                                                 "temperature", "model_name", "preprocessing_hash",
                                                 "dataset_version", "classes", "positive_class", "job_id",
                                                 "threshold_method", "feature_channels", "feature_map",
                                                 "input_crop")}
            export_onnx(self.model, self.temperature, onnx_path, self.size, spec["export"]["opset"], onnx_meta)
            artifacts["onnx"] = self.artifact("onnx", onnx_path)
            k = min(spec["export"]["parity_samples"], len(self.val_data))
            parity = parity_check(onnx_path, self.model, self.temperature, self.val_data.images[:k],
                                  self.val_data.files[:k], self.val_data.labels[:k].tolist(), out)
            if spec["export"]["int8"]:
                artifacts["onnx_int8"] = self.artifact("onnx_int8", self.export_int8(onnx_meta))
        eval_path = out / "evaluation.json"
        eval_path.write_text(json.dumps(to_jsonable({"job_id": spec["job_id"], "evaluations": evaluations,
                                                   "history": s.history}), indent=1))
        artifacts["evaluation"] = self.artifact("evaluation", eval_path)
        model_meta = {
            **meta,
            "format": "xray-model/1",
            "input": {"name": "input", "shape": [-1, 1, self.size, self.size], "dtype": "float32",
                      "scale": "pixel/255", "channels": 1},
            "outputs": {"probability": [-1, 1], "features": [-1, *fmap]},
            "opset": spec["export"]["opset"] if spec["export"]["onnx"] else None,
            "preprocessing": self.manifest.preprocessing,
            "best_epoch": s.best_epoch,
            "best_val_auc": s.best_auc,
            "metrics": evaluations["val"],
            "test_metrics": {k: v for k, v in evaluations.items() if k != "val"},
            "parity": parity,
            "hyperparameters": self.hp,
            "augmentation": self.aug_params,
            "seed": spec["seed"],
            "parameters": count_parameters(self.model),
            "files": {k: {"file": Path(v["path"]).name, "sha256": v["sha256"], "bytes": v["bytes"]}
                      for k, v in artifacts.items()},
            "torch_version": torch.__version__,
            "trained_on": self.trained_on(),
            "created": utc_now(),
        }
        meta_path = out / "model.json"
        meta_path.write_text(json.dumps(to_jsonable(model_meta), indent=1))
        artifacts["model_meta"] = self.artifact("model_meta", meta_path)
        paths = {k: v["path"] for k, v in artifacts.items()}
        if parity.get("samples"):
            paths["parity_samples"] = str(out / parity["samples"])
        if "onnx_int8" in artifacts:
            paths["int8_gate"] = str(out / GATE_FILE)
        self.emitter.emit("finished", best_epoch=s.best_epoch, best_val_auc=s.best_auc, threshold=self.threshold,
                          temperature=self.temperature, metrics=evaluations["val"], artifacts=paths, parity=parity,
                          test_metrics={k: v for k, v in evaluations.items() if k != "val"})
        return {"cancelled": False, "best_epoch": s.best_epoch, "best_val_auc": s.best_auc,
                "threshold": self.threshold, "metrics": evaluations["val"], "artifacts": paths, "parity": parity}


def execute_job(spec: Dict[str, Any], emitter: Any, cancel: Optional[CancelToken] = None,
                on_epoch: Optional[EpochCallback] = None, dist: Optional[Dist] = None) -> Dict[str, Any]:
    """Run a validated spec; raises on any error. Returns a summary (also sent as `finished`).
    `dist`: this process's place in a torchrun job (default: a single process)."""
    dist = dist or Dist()
    run = Run(spec, emitter, cancel or CancelToken(), on_epoch, dist)
    dist.keep(run)
    run.setup()
    return run.run()


def run_job(raw_spec: Dict[str, Any], emitter: Any, cancel: Optional[CancelToken] = None) -> int:
    """Validate and run; every error becomes a `failed` event. Returns the process exit code."""
    try:
        spec = validate_job_spec(raw_spec)
        execute_job(spec, emitter, cancel, dist=dist_from_env())
        return 0
    except Exception as exc:  # noqa: BLE001 - the protocol reports every failure as an event
        log.debug("job failed", exc_info=True)
        if not isinstance(exc, (SpecError, D.DatasetError)):
            log.exception("job failed")
        emit_failure(emitter, exc)
        return 1
