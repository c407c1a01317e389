"""Ensembles served as one model: a job spec with an `ensemble` block combines 2-5 finished jobs.

No training happens. Each member's best weights are loaded from its `checkpoint.pt`; the ensemble
logit is the **mean of the members' raw logits** (each member's own temperature is recorded but not
applied: averaging raw logits keeps the combination linear, so one temperature fitted on the val
split calibrates the ensemble and the CAM stays an exact average, see below). The ensemble
temperature and threshold are then fitted on the val split with the same code a training run uses
(`evaluate.fit_temperature`, `evaluate.choose_threshold`, every `threshold.method` incl. `robust`),
the internal test split and external test sets are evaluated as in `Run.finish`, and ONE ONNX graph
is exported:

- `probability` [N,1] = sigmoid(mean_k logit_k / T), each logit_k from member k's own feature map;
- `features` [N, ΣC_k, h, w] = the members' feature maps concatenated on the channel axis — a
  member trained with an input crop scores its crop, and its map is first placed on the full frame
  as its own export places it (FullFrame) —, each resized to the finest member grid (nearest when the grid is an integer multiple — the spatial mean
  is then preserved exactly —, bilinear otherwise);
- metadata `classifier_weight` = concat_k(w_k / (N·T)), `classifier_bias` = mean_k(b_k) / T, so the
  serving CAM Σ_c w_c·f_c + b is exactly the mean of the members' (resized) CAMs on the calibrated
  logit scale.

Events are those of a normal run without epochs: `started` (epochs 1, steps = members),
`progress` (step = members scored), `evaluation`…, `artifact`…, `finished` (`best_epoch` null).
"""
from __future__ import annotations

import copy
import inspect
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as D
from .evaluate import choose_threshold, compute_metrics, confusion, fit_temperature, rates, roc_auc, sigmoid
from .export import INPUT_NAME, OUTPUT_NAMES, FullFrame, max_onnx_opset, module_parity_check, sha256_file
from .models import XrayClassifier, build_model, count_parameters
from .protocol import SpecError, _number, _object, _reject_unknown, _string, emit_failure, to_jsonable, utc_now, \
    validate_job_spec
from .train import CHECKPOINT_FORMAT, CancelToken, configure_threads, select_device, torch_load

log = logging.getLogger("trainer.ensemble")

ENSEMBLE_FORMAT = "xray-ensemble/1"
COMBINE = "mean-logit"
MIN_MEMBERS, MAX_MEMBERS = 2, 5
MEMBER_KEYS = ("job_id", "checkpoint", "temperature", "run_id")


# --------------------------------------------------------------------------- spec


def is_ensemble_spec(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("ensemble") is not None


def validate_ensemble_spec(raw: Dict[str, Any]) -> Dict[str, Any]:
    """A job spec plus `ensemble: {members: [{job_id, checkpoint, temperature?, run_id?}, ...]}` (2-5).
    Training keys (hyperparameters, augmentation, resume_from) are accepted but unused."""
    spec = validate_job_spec(raw, extra_keys=("ensemble",))
    block = _object("ensemble", raw.get("ensemble"))
    _reject_unknown("ensemble", block, ("members", "combine"))
    if block.get("combine", COMBINE) != COMBINE:
        raise SpecError(f"ensemble.combine: only {COMBINE!r} is supported")
    members = block.get("members")
    if not isinstance(members, list) or not MIN_MEMBERS <= len(members) <= MAX_MEMBERS:
        raise SpecError(f"ensemble.members: must list {MIN_MEMBERS} to {MAX_MEMBERS} finished jobs")
    out: List[Dict[str, Any]] = []
    for i, m in enumerate(members):
        path = f"ensemble.members[{i}]"
        m = _object(path, m)
        _reject_unknown(path, m, MEMBER_KEYS)
        t = m.get("temperature")
        out.append({
            "job_id": _string(path + ".job_id", m.get("job_id")),
            "checkpoint": _string(path + ".checkpoint", m.get("checkpoint")),
            "temperature": None if t is None else _number(path + ".temperature", t, 0, lo_open=True),
            "run_id": None if m.get("run_id") is None else _string(path + ".run_id", m.get("run_id")),
        })
    ids = [m["job_id"] for m in out]
    if len(set(ids)) != len(ids):
        raise SpecError("ensemble.members: job ids must be unique")
    if spec["resume_from"] is not None:
        raise SpecError("resume_from: an ensemble job trains nothing and cannot resume")
    spec["ensemble"] = {"members": out, "combine": COMBINE}
    return spec


# --------------------------------------------------------------------------- model


class Member:
    """One finished job: its best weights (eval mode, float32) and what its checkpoint records."""

    def __init__(self, entry: Dict[str, Any], device: torch.device):
        path = entry["checkpoint"]
        if not Path(path).is_file():
            raise FileNotFoundError(f"ensemble member {entry['job_id']}: checkpoint {path} does not exist")
        ck = torch_load(path)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise SpecError(f"ensemble member {entry['job_id']}: {path} is not a trainer checkpoint "
                            "(an ensemble cannot be a member of another ensemble)")
        self.job_id: str = entry["job_id"]
        self.run_id: Optional[str] = entry.get("run_id")
        self.model_name: str = ck["model_name"]
        self.input_size: int = int(ck["input_size"])
        self.dataset_version: str = ck.get("dataset_version") or ""
        self.best_epoch = (ck.get("best") or {}).get("epoch")
        self.temperature: Optional[float] = entry.get("temperature")
        if self.temperature is None:  # the worker's own record beside the checkpoint, when present
            sd = Path(path).with_name("state_dict.pt")
            if sd.is_file():
                self.temperature = float(torch_load(str(sd)).get("temperature") or 0) or None
        # As a resume reads it: checkpoints record the crop; older ones only in their spec.
        crop = ck["input_crop"] if "input_crop" in ck else ((ck.get("spec") or {}).get("hyperparameters") or {}).get("input_crop")
        self.input_crop: Optional[Dict[str, float]] = crop
        self.trained_on: Optional[Dict[str, Any]] = ck.get("trained_on") or _trained_on_beside(path)
        model = build_model(self.model_name, float(ck.get("dropout", 0.0)), crop, self.input_size)
        weights = ck.get("best_model") or ck["model"]  # as Run.finish: best weights when there are any
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise SpecError(f"ensemble member {self.job_id}: its weights do not fit model {self.model_name}: "
                            f"{str(exc).splitlines()[0]}") from None
        self.model: XrayClassifier = model.to(device=device, dtype=torch.float32).eval()

    def describe(self) -> Dict[str, Any]:
        return {"job_id": self.job_id, "run_id": self.run_id, "model_name": self.model_name,
                "temperature": self.temperature, "best_epoch": self.best_epoch,
                "feature_channels": self.model.feature_channels, "input_crop": self.input_crop,
                "trained_on": self.trained_on}


def _trained_on_beside(checkpoint: str) -> Optional[Dict[str, Any]]:
    """`trained_on` of the model.json beside an older checkpoint that does not record it."""
    try:
        value = json.loads(Path(checkpoint).with_name("model.json").read_text()).get("trained_on")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, dict) else None


def common_trained_on(members: List["Member"]) -> Optional[Dict[str, Any]]:
    """Where the ensemble's weights were trained: the members' `trained_on` when they all record the
    same one (each member's own is in `member_details`), else None."""
    first = members[0].trained_on
    return first if first is not None and all(m.trained_on == first for m in members) else None


class EnsembleModel(nn.Module):
    """input [N,1,S,S] in [0,1] -> (probability [N,1] = sigmoid(mean member logit / T),
    features [N, ΣC, h, w] = member feature maps on the full frame (export.FullFrame for a member
    with an input crop, as its own export places them), resized to one grid and concatenated). Each member's logit comes from its own map,
    its crop's for a cropped member, exactly as in its training."""

    def __init__(self, members: List[XrayClassifier], input_size: int, temperature: float = 1.0):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.placers = nn.ModuleList([FullFrame(m) if m.crop_pixels is not None else nn.Identity() for m in members])
        self.register_buffer("inv_temperature", torch.tensor(1.0 / temperature, dtype=torch.float32))
        device = next(self.parameters()).device
        with torch.inference_mode():
            x = torch.zeros(1, 1, input_size, input_size, device=device)
            grids = [tuple(place(m.features(x)).shape[-2:]) for m, place in zip(members, self.placers)]
        self.grid: Tuple[int, int] = (max(g[0] for g in grids), max(g[1] for g in grids))
        self.modes: List[str] = []
        for h, w in grids:
            if (h, w) == self.grid:
                self.modes.append("identity")
            elif self.grid[0] % h == 0 and self.grid[1] % w == 0:
                self.modes.append("nearest")  # integer factor: every cell repeated, the mean preserved
            else:
                self.modes.append("bilinear")

    def set_temperature(self, temperature: float) -> None:
        self.inv_temperature.fill_(1.0 / temperature)

    def resize(self, feats: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "identity":
            return feats
        if mode == "nearest":
            return F.interpolate(feats, size=self.grid, mode="nearest")
        return F.interpolate(feats, size=self.grid, mode="bilinear", align_corners=False)

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """[K, N] raw logits of every member."""
        return torch.stack([m(x).view(-1) for m in self.members], 0)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1] ensemble logit (uncalibrated): the mean of the members' raw logits."""
        return self.member_logits(x).mean(0).view(-1, 1)

    def forward(self, x: torch.Tensor):
        logits, feats = [], []
        for m, place, mode in zip(self.members, self.placers, self.modes):
            f = m.features(x)
            logits.append(m.head(f))  # from the member's own (crop's) map, never the placed one
            feats.append(self.resize(place(f), mode))
        logit = torch.stack(logits, 0).mean(0)
        return torch.sigmoid(logit * self.inv_temperature), torch.cat(feats, 1)


def ensemble_head(members: List[XrayClassifier], temperature: float) -> Dict[str, Any]:
    """CAM weights over the concatenated features: member weights / (N·T), mean bias / T."""
    n = len(members)
    w = torch.cat([m.classifier.weight.detach().double().cpu().view(-1) for m in members]) / (n * temperature)
    b = float(torch.stack([m.classifier.bias.detach().double().cpu().view(()) for m in members]).mean()) / temperature
    return {"classifier_weight": w.tolist(), "classifier_bias": b}


def export_module(model: EnsembleModel) -> EnsembleModel:
    """A CPU float32 eval-mode copy for export and reference outputs."""
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32, memory_format=torch.contiguous_format).eval()


def export_ensemble_onnx(model: EnsembleModel, path: Path, input_size: int, opset: int,
                         metadata: Dict[str, Any]) -> None:
    """As export.export_onnx, for the ensemble module (same names, dynamic batch, checker, metadata)."""
    import onnx

    if opset > max_onnx_opset():
        raise ValueError(f"export.opset {opset} is above what this torch can export ({max_onnx_opset()})")
    module = export_module(model)
    kwargs: Dict[str, Any] = dict(
        input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAMES[0]: {0: "batch"}, OUTPUT_NAMES[1]: {0: "batch"}},
        opset_version=opset, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    tmp = path.with_name(path.name + ".tmp")
    with torch.no_grad():
        torch.onnx.export(module, (torch.rand(2, 1, input_size, input_size),), str(tmp), **kwargs)
    proto = onnx.load(str(tmp))
    # The exporter loses the static [C, h, w] of `features` through Resize/Concat: declare it.
    static = {OUTPUT_NAMES[0]: [1], OUTPUT_NAMES[1]: list(metadata["feature_map"])}
    for output in proto.graph.output:
        for dim, value in zip(list(output.type.tensor_type.shape.dim)[1:], static.get(output.name, [])):
            dim.Clear()
            dim.dim_value = int(value)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)


def ensemble_parity_check(onnx_path: Path, model: EnsembleModel, images_u8: torch.Tensor, files: List[str],
                          labels: List[float], out_dir: Path) -> Dict[str, Any]:
    """As export.parity_check (same parity_samples.json / parity/NNN.png contract), for the ensemble."""
    return module_parity_check(onnx_path, export_module(model), images_u8, files, labels, out_dir)


# --------------------------------------------------------------------------- the job


class EnsembleRun:
    def __init__(self, spec: Dict[str, Any], emitter: Any, cancel: CancelToken):
        self.spec = spec
        self.emitter = emitter
        self.cancel = cancel
        self.out = Path(spec["output_dir"])

    def setup(self) -> None:
        spec = self.spec
        if spec["export"]["onnx"] and spec["export"]["opset"] > max_onnx_opset():
            raise SpecError(f"export.opset: {spec['export']['opset']} is above what this torch exports "
                            f"({max_onnx_opset()})")
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = select_device(spec["device"])
        self.threads = configure_threads(spec["threads"])
        self.manifest = D.read_manifest(spec["dataset_dir"])
        self.members = [Member(e, self.device) for e in spec["ensemble"]["members"]]
        sizes = sorted({m.input_size for m in self.members})
        if len(sizes) != 1:
            raise SpecError(f"ensemble members differ in input size ({', '.join(map(str, sizes))}); "
                            "they must serve the same preprocessed images")
        self.size = sizes[0]
        if spec["input_size"] is not None and spec["input_size"] != self.size:
            raise SpecError(f"input_size: {spec['input_size']} differs from the members' input size {self.size}")
        for m in self.members:
            if m.dataset_version and self.manifest.version_id and m.dataset_version != self.manifest.version_id:
                raise D.DatasetError(f"ensemble member {m.job_id} was trained on dataset version "
                                     f"{m.dataset_version[:12]}…, not {self.manifest.version_id[:12]}…")
        self.val_data = D.load_split(self.manifest, "val", self.size, self.threads)
        va = self.val_data
        if len(va) < 2 or va.positives == 0 or va.positives == len(va):
            raise D.DatasetError(f"the val split needs images of both classes to fit the ensemble's temperature "
                                 f"and threshold (has {len(va)} images, {va.positives} positive)")
        self.test_sets = []
        if self.manifest.split_items("test"):
            self.test_sets.append(("internal", self.manifest, "test"))
        for entry in spec["test_dataset_dirs"]:
            m = D.read_manifest(entry["dataset_dir"])
            if set(m.classes) != set(self.manifest.classes):
                raise D.DatasetError(f"test dataset {entry['name']}: classes {m.classes} differ from "
                                     f"{self.manifest.classes}")
            self.test_sets.append((entry["name"], m, None))
        self.model = EnsembleModel([m.model for m in self.members], self.size).to(self.device).eval()

    def member_logits(self, images_u8: torch.Tensor, shift: Optional[str] = None) -> np.ndarray:
        """[K, N] float64 raw logits of every member (float32 inference, no AMP)."""
        out = []
        with torch.inference_mode():
            for i in range(0, images_u8.shape[0], 64):
                x = D.to_float(images_u8[i:i + 64].to(self.device))
                if shift is not None:
                    x = D.apply_shift(shift, x)
                out.append(self.model.member_logits(x).float().cpu())
        k = len(self.members)
        return torch.cat(out, 1).double().numpy() if out else np.zeros((k, 0))

    def logits(self, images_u8: torch.Tensor, shift: Optional[str] = None) -> np.ndarray:
        return self.member_logits(images_u8, shift).mean(0)

    def artifact(self, kind: str, path: Path) -> Dict[str, Any]:
        digest = sha256_file(path)
        self.emitter.emit("artifact", kind=kind, path=str(path), sha256=digest, bytes=path.stat().st_size)
        return {"path": str(path), "sha256": digest, "bytes": path.stat().st_size}

    def _evaluate(self, labels: np.ndarray, logits: np.ndarray) -> Dict[str, Any]:
        return compute_metrics(labels, sigmoid(logits / self.temperature), self.threshold,
                               self.spec["threshold"]["method"], self.temperature, seed=self.spec["seed"])

    def run(self) -> Dict[str, Any]:
        spec, k = self.spec, len(self.members)
        self.emitter.emit(
            "started", job_id=spec["job_id"], device=str(self.device), threads=self.threads, model="ensemble",
            device_name=torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            parameters=count_parameters(self.model), train_images=0, val_images=len(self.val_data),
            start_epoch=1, time=utc_now(), input_size=self.size, epochs=1, steps_per_epoch=k, amp=False,
            resumed_from=None, world_size=1, backend="none",
            ensemble={"members": [m.job_id for m in self.members], "combine": COMBINE})
        y_val = self.val_data.labels.double().numpy()
        # Member by member (the epoch-less progress: step = members scored), then the mean.
        t0 = time.monotonic()
        rows = []
        with torch.inference_mode():
            for i, member in enumerate(self.members):
                if self.cancel.requested:
                    self.emitter.emit("cancelled", epoch=1, step=i, checkpoint=None)
                    return {"cancelled": True}
                z = []
                for j in range(0, len(self.val_data), 64):
                    x = D.to_float(self.val_data.images[j:j + 64].to(self.device))
                    z.append(member.model(x).float().view(-1).cpu())
                rows.append(torch.cat(z).double().numpy())
                elapsed = max(time.monotonic() - t0, 1e-9)
                self.emitter.emit("progress", epoch=1, step=i + 1, steps=k, loss=None,
                                  images_per_sec=(i + 1) * len(self.val_data) / elapsed, step_losses=[])
        member_val = np.stack(rows, 0)
        val_logits = member_val.mean(0)
        if not np.isfinite(val_logits).all():
            raise FloatingPointError("an ensemble member outputs non-finite logits on the val split")
        member_auc = [roc_auc(y_val, r) for r in member_val]

        thr_spec = spec["threshold"]
        self.temperature = fit_temperature(val_logits, y_val)
        self.model.set_temperature(self.temperature)
        shifted = {name: self.logits(self.val_data.images, shift=name) for name in D.SHIFTS} \
            if thr_spec["method"] == "robust" else {}
        self.threshold = choose_threshold(y_val, sigmoid(val_logits / self.temperature), thr_spec["method"],
                                          thr_spec["target_sensitivity"],
                                          [sigmoid(v / self.temperature) for v in shifted.values()])
        evaluations = {"val": self._evaluate(y_val, val_logits)}
        if shifted:
            evaluations["val"]["shifts"] = {}
            for name, v in shifted.items():
                p = sigmoid(v / self.temperature)
                r = rates(confusion(y_val, p, self.threshold))
                evaluations["val"]["shifts"][name] = {"auc": roc_auc(y_val, p), "sensitivity": r["sensitivity"],
                                                      "specificity": r["specificity"]}
        self.emitter.emit("evaluation", split="val", metrics=evaluations["val"])
        for name, manifest, split in self.test_sets:
            data = D.load_split(manifest, split, self.size, self.threads)
            if len(data) == 0:
                continue
            metrics = self._evaluate(data.labels.double().numpy(), self.logits(data.images))
            evaluations[f"test:{name}"] = metrics
            self.emitter.emit("evaluation", split=f"test:{name}", metrics=metrics)
        return self.finish(evaluations, member_auc)

    def finish(self, evaluations: Dict[str, Any], member_auc: List[Optional[float]]) -> Dict[str, Any]:
        spec, out, k = self.spec, self.out, len(self.members)
        thr_method = spec["threshold"]["method"]
        best_auc = evaluations["val"]["auc"]
        members = [{**m.describe(), "val_auc": auc} for m, auc in zip(self.members, member_auc)]
        ensemble_info = {"members": [m.job_id for m in self.members], "combine": COMBINE,
                         "member_details": members, "feature_grid": list(self.model.grid),
                         "feature_resize": self.model.modes}
        channels = sum(m.model.feature_channels for m in self.members)
        fmap = [channels, *self.model.grid]
        model_name = "ensemble"
        meta: Dict[str, Any] = {
            "model_name": model_name,
            "input_size": self.size,
            "threshold": self.threshold,
            "threshold_method": thr_method,
            "temperature": self.temperature,
            **ensemble_head([m.model for m in self.members], self.temperature),
            "preprocessing_hash": self.manifest.preprocessing_hash or "",
            "dataset_version": self.manifest.version_id,
            "classes": self.manifest.classes,
            "positive_class": self.manifest.positive_class,
            "job_id": spec["job_id"],
            "feature_channels": channels,
            "feature_map": fmap,
        }
        artifacts: Dict[str, Dict[str, Any]] = {}
        sd_path = out / "state_dict.pt"
        torch.save({"format": ENSEMBLE_FORMAT, "model_name": model_name, "input_size": self.size,
                    "temperature": self.temperature, "threshold": self.threshold, "combine": COMBINE,
                    "members": [{**m.describe(), "dropout": m.model.dropout.p,
                                 "state_dict": {n: t.detach().cpu().clone() for n, t in m.model.state_dict().items()}}
                                for m in self.members]}, sd_path)
        artifacts["state_dict"] = self.artifact("state_dict", sd_path)
        parity: Dict[str, Any] = {"method": "none", "n": 0, "max_abs_diff": None, "ok": None}
        if spec["export"]["onnx"]:
            onnx_path = out / "model.onnx"
            export_ensemble_onnx(self.model, onnx_path, self.size, spec["export"]["opset"],
                                 {**meta, "ensemble": {"members": ensemble_info["members"], "combine": COMBINE}})
            artifacts["onnx"] = self.artifact("onnx", onnx_path)
            n = min(spec["export"]["parity_samples"], len(self.val_data))
            parity = ensemble_parity_check(onnx_path, self.model, self.val_data.images[:n],
                                           self.val_data.files[:n], self.val_data.labels[:n].tolist(), out)
        eval_path = out / "evaluation.json"
        eval_path.write_text(json.dumps(to_jsonable({"job_id": spec["job_id"], "evaluations": evaluations,
                                                   "history": [], "ensemble": ensemble_info}), indent=1))
        artifacts["evaluation"] = self.artifact("evaluation", eval_path)
        model_meta = {
            **meta,
            "format": "xray-model/1",
            "ensemble": ensemble_info,
            "input": {"name": "input", "shape": [-1, 1, self.size, self.size], "dtype": "float32",
                      "scale": "pixel/255", "channels": 1},
            "outputs": {"probability": [-1, 1], "features": [-1, *fmap]},
            "opset": spec["export"]["opset"] if spec["export"]["onnx"] else None,
            "preprocessing": self.manifest.preprocessing,
            "best_epoch": None,
            "best_val_auc": best_auc,
            "metrics": evaluations["val"],
            "test_metrics": {key: v for key, v in evaluations.items() if key != "val"},
            "parity": parity,
            "hyperparameters": None,
            "augmentation": None,
            "seed": spec["seed"],
            "parameters": count_parameters(self.model),
            "files": {key: {"file": Path(v["path"]).name, "sha256": v["sha256"], "bytes": v["bytes"]}
                      for key, v in artifacts.items()},
            "torch_version": torch.__version__,
            "trained_on": common_trained_on(self.members),
            "created": utc_now(),
        }
        meta_path = out / "model.json"
        meta_path.write_text(json.dumps(to_jsonable(model_meta), indent=1))
        artifacts["model_meta"] = self.artifact("model_meta", meta_path)
        paths = {key: v["path"] for key, v in artifacts.items()}
        if parity.get("samples"):
            paths["parity_samples"] = str(out / parity["samples"])
        test_metrics = {key: v for key, v in evaluations.items() if key != "val"}
        self.emitter.emit("finished", best_epoch=None, best_val_auc=best_auc, threshold=self.threshold,
                          temperature=self.temperature, metrics=evaluations["val"], artifacts=paths, parity=parity,
                          test_metrics=test_metrics, ensemble={"members": ensemble_info["members"], "combine": COMBINE,
                                                               "members_val_auc": member_auc})
        return {"cancelled": False, "best_val_auc": best_auc, "threshold": self.threshold,
                "temperature": self.temperature, "metrics": evaluations["val"], "artifacts": paths,
                "parity": parity, "members": k}


def execute_ensemble(spec: Dict[str, Any], emitter: Any, cancel: Optional[CancelToken] = None) -> Dict[str, Any]:
    run = EnsembleRun(spec, emitter, cancel or CancelToken())
    run.setup()
    return run.run()


def run_ensemble_job(raw_spec: Dict[str, Any], emitter: Any, cancel: Optional[CancelToken] = None) -> int:
    """Validate and run an ensemble spec; every error becomes a `failed` event. Returns the exit code."""
    try:
        spec = validate_ensemble_spec(raw_spec)
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            raise SpecError("ensemble: an ensemble job runs in one process; start it without torchrun")
        execute_ensemble(spec, emitter, cancel)
        return 0
    except Exception as exc:  # noqa: BLE001 - the protocol reports every failure as an event
        if not isinstance(exc, (SpecError, D.DatasetError)):
            log.exception("ensemble job failed")
        emit_failure(emitter, exc)
        return 1
