"""The worker's wire contract: JSON-lines events out, validated job/study specs in.

Nothing here imports torch, so a bad spec is rejected in milliseconds. See README.md for the
full protocol; this module is the single place where its shapes are checked.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TextIO

# The model names are the platform's (src/training/service/model-names.ts), generated into
# model-names.json by `npm run contracts`; kept out of models.py so validation needs no torch, and
# models.py asserts its builders match.
MODEL_NAMES = tuple(json.loads(Path(__file__).with_name("model-names.json").read_text(encoding="utf-8"))["models"])

SCHEDULERS = ("cosine", "onecycle", "none")
BALANCE_MODES = ("loss", "sampler", "none")
THRESHOLD_METHODS = ("youden", "sensitivity", "robust")
PRUNERS = ("median", "hyperband", "none")
DEVICES = ("auto", "cpu", "cuda")

DEFAULT_HYPERPARAMETERS: Dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "lr": 0.001,
    "weight_decay": 0.0001,
    "scheduler": "cosine",
    "warmup_epochs": 1,
    "balance": "loss",
    "early_stopping_patience": 3,
    "dropout": 0.2,
    "label_smoothing": 0.0,
    "mixup_alpha": 0.0,
    "cutmix_alpha": 0.0,
    "max_train_batches": None,
    "input_crop": None,
}

# The augmentation contract (kinds, limits, defaults) is the platform's, generated from
# src/core/ml/augmentation.ts by `npm run contracts`: one source for the data pipeline, the training
# API and this worker.
AUGMENTATION_CONTRACT: Dict[str, Dict[str, Any]] = json.loads(
    (Path(__file__).with_name("augmentation.json")).read_text(encoding="utf-8"))["fields"]
DEFAULT_AUGMENTATION: Dict[str, Any] = {k: (list(f["default"]) if isinstance(f["default"], list) else f["default"])
                                        for k, f in AUGMENTATION_CONTRACT.items()}

DEFAULT_THRESHOLD: Dict[str, Any] = {"method": "youden", "target_sensitivity": 0.95}
DEFAULT_EXPORT: Dict[str, Any] = {"onnx": True, "opset": 17, "parity_samples": 32, "int8": False,
                                  "int8_calibration": 256}
DEFAULT_STUDY: Dict[str, Any] = {
    "n_trials": 4,
    "pruner": "median",
    "concurrency": 1,
    "direction": "maximize",
    "search_space": {},
    "timeout_s": None,
    "pruner_startup_trials": 2,
    "pruner_warmup_epochs": 0,
    "storage": "memory",
    "study_name": None,
}

JOB_KEYS = {
    "job_id", "dataset_dir", "output_dir", "model", "input_size", "seed", "threads", "device",
    "deterministic", "resume_from", "hyperparameters", "augmentation", "threshold",
    "test_dataset_dirs", "export",
}
# Top-level job keys a study may search over (besides every hyperparameter and augmentation.<key>).
SEARCHABLE_TOP_LEVEL = ("model", "input_size", "seed")


class SpecError(ValueError):
    """A job or study spec that cannot run; the message names the offending field."""


# --------------------------------------------------------------------------- events


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_jsonable(value: Any) -> Any:
    """Plain JSON types only: numpy scalars/arrays become Python, NaN/inf become null."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


class Emitter:
    """Writes one JSON object per line and flushes, so the parent sees events as they happen.

    Thread-safe (Optuna may run trials in threads). `listener`, when given, sees every record
    after it is written; tests and the study runner use it to react to events.
    """

    def __init__(self, stream: TextIO, listener: Optional[Callable[[Dict[str, Any]], None]] = None):
        self._stream = stream
        self._lock = threading.Lock()
        self._listener = listener

    def emit(self, event: str, **fields: Any) -> Dict[str, Any]:
        record = to_jsonable({"event": event, **fields})
        line = json.dumps(record, allow_nan=False, separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
        if self._listener is not None:
            self._listener(record)
        return record


def emit_failure(emitter: Any, error: BaseException) -> None:
    emitter.emit("failed", reason=str(error) or type(error).__name__, error_type=type(error).__name__)


# --------------------------------------------------------------------------- spec validation


def load_spec_file(path: str) -> Dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"spec file {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError("spec must be a JSON object")
    return raw


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(path: str, v: Any, lo: Optional[float] = None, hi: Optional[float] = None,
            lo_open: bool = False) -> float:
    if not _is_number(v):
        raise SpecError(f"{path}: must be a number, got {json.dumps(v)}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise SpecError(f"{path}: must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise SpecError(f"{path}: must be <= {hi}, got {v}")
    return float(v)


def _integer(path: str, v: Any, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not _is_int(v):
        raise SpecError(f"{path}: must be an integer, got {json.dumps(v)}")
    if lo is not None and v < lo:
        raise SpecError(f"{path}: must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise SpecError(f"{path}: must be <= {hi}, got {v}")
    return int(v)


def _choice(path: str, v: Any, choices: tuple) -> str:
    if v not in choices:
        raise SpecError(f"{path}: must be one of {', '.join(choices)}; got {json.dumps(v)}")
    return v


def _string(path: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise SpecError(f"{path}: must be a non-empty string")
    return v


def _boolean(path: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise SpecError(f"{path}: must be true or false, got {json.dumps(v)}")
    return v


def _object(path: str, v: Any) -> Dict[str, Any]:
    if not isinstance(v, dict):
        raise SpecError(f"{path}: must be an object")
    return v


def _reject_unknown(path: str, given: Dict[str, Any], allowed) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        where = f"{path}: " if path else ""
        raise SpecError(f"{where}unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _pair(path: str, v: Any, lo: float, hi: float) -> List[float]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise SpecError(f"{path}: must be a [low, high] pair")
    a = _number(f"{path}[0]", v[0], lo, hi, lo_open=lo == 0)
    b = _number(f"{path}[1]", v[1], lo, hi, lo_open=lo == 0)
    if a > b:
        raise SpecError(f"{path}: low must be <= high, got [{a}, {b}]")
    return [a, b]


CROP_SIDES = ("top", "bottom", "left", "right")
# The smallest side of an input crop, as a fraction of the input: below it the backbone would see a
# few dozen pixels blown up to the full input size.
MIN_CROP_SIDE = 0.3


def validate_input_crop(path: str, v: Any) -> Optional[Dict[str, float]]:
    """null, or a box {top, bottom, left, right} in fractions of the (letterboxed, square) input:
    0 <= top < bottom <= 1, 0 <= left < right <= 1, each side at least MIN_CROP_SIDE."""
    if v is None:
        return None
    box = _object(path, v)
    _reject_unknown(path, box, CROP_SIDES)
    missing = [k for k in CROP_SIDES if k not in box]
    if missing:
        raise SpecError(f"{path}: missing {', '.join(missing)} (a box needs top, bottom, left and right)")
    out = {k: _number(f"{path}.{k}", box[k], 0, 1) for k in CROP_SIDES}
    for lo, hi in (("top", "bottom"), ("left", "right")):
        if out[hi] - out[lo] < MIN_CROP_SIDE - 1e-9:  # 0.7 - 0.4 is 0.29999999999999993
            raise SpecError(f"{path}: {hi} - {lo} must be >= {MIN_CROP_SIDE} of the input, "
                            f"got {out[hi]} - {out[lo]}")
    return out


def validate_hyperparameters(raw: Any) -> Dict[str, Any]:
    given = _object("hyperparameters", raw if raw is not None else {})
    _reject_unknown("hyperparameters", given, DEFAULT_HYPERPARAMETERS)
    h = {**DEFAULT_HYPERPARAMETERS, **given}
    p = "hyperparameters."
    out = {
        "epochs": _integer(p + "epochs", h["epochs"], 1, 10000),
        "batch_size": _integer(p + "batch_size", h["batch_size"], 2, 65536),
        "lr": _number(p + "lr", h["lr"], 0, 10, lo_open=True),
        "weight_decay": _number(p + "weight_decay", h["weight_decay"], 0, 10),
        "scheduler": _choice(p + "scheduler", h["scheduler"], SCHEDULERS),
        "warmup_epochs": _number(p + "warmup_epochs", h["warmup_epochs"], 0, 10000),
        "balance": _choice(p + "balance", h["balance"], BALANCE_MODES),
        "early_stopping_patience": None if h["early_stopping_patience"] is None
        else _integer(p + "early_stopping_patience", h["early_stopping_patience"], 0),
        "dropout": _number(p + "dropout", h["dropout"], 0, 0.95),
        "label_smoothing": _number(p + "label_smoothing", h["label_smoothing"], 0, 0.5),
        "mixup_alpha": _number(p + "mixup_alpha", h["mixup_alpha"], 0, 1),
        "cutmix_alpha": _number(p + "cutmix_alpha", h["cutmix_alpha"], 0, 1),
        "max_train_batches": None if h["max_train_batches"] is None
        else _integer(p + "max_train_batches", h["max_train_batches"], 1),
        "input_crop": validate_input_crop(p + "input_crop", h["input_crop"]),
    }
    return out


def validate_augmentation(raw: Any, strict: bool = True, base: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Merge `raw` over `base` (defaults when None). `strict=False` ignores unknown keys, which is
    how the manifest's block is read: the data pipeline may record fields the trainer does not use."""
    given = _object("augmentation", raw if raw is not None else {})
    if strict:
        _reject_unknown("augmentation", given, DEFAULT_AUGMENTATION)
    else:
        given = {k: v for k, v in given.items() if k in DEFAULT_AUGMENTATION}
    a = {**(base or DEFAULT_AUGMENTATION), **given}
    out: Dict[str, Any] = {}
    for name, f in AUGMENTATION_CONTRACT.items():
        path = "augmentation." + name
        if f["kind"] == "boolean":
            out[name] = _boolean(path, a[name])
        elif f["kind"] == "number":
            out[name] = _number(path, a[name], f["min"], f["max"])
        else:
            out[name] = _pair(path, a[name], f["min"], f["max"])
    return out


def _validate_test_sets(raw: Any) -> List[Dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError("test_dataset_dirs: must be a list")
    out: List[Dict[str, str]] = []
    for i, entry in enumerate(raw):
        path = f"test_dataset_dirs[{i}]"
        if isinstance(entry, str):
            d = _string(path, entry)
            name = Path(d.rstrip("/")).name or f"set{i}"
        else:
            obj = _object(path, entry)
            _reject_unknown(path, obj, ("name", "dataset_dir"))
            d = _string(path + ".dataset_dir", obj.get("dataset_dir"))
            name = _string(path + ".name", obj.get("name", Path(d.rstrip("/")).name or f"set{i}"))
        out.append({"name": name, "dataset_dir": d})
    names = [t["name"] for t in out]
    if len(set(names)) != len(names):
        raise SpecError("test_dataset_dirs: names must be unique (give entries a {\"name\", \"dataset_dir\"})")
    if "internal" in names:
        raise SpecError("test_dataset_dirs: the name 'internal' is reserved for the dataset's own test split")
    return out


def validate_job_spec(raw: Dict[str, Any], extra_keys=()) -> Dict[str, Any]:
    """Return a complete, normalised copy of a job spec (every default filled in) or raise SpecError."""
    spec = _object("spec", raw)
    _reject_unknown("", spec, JOB_KEYS | set(extra_keys))
    out: Dict[str, Any] = {}
    out["dataset_dir"] = _string("dataset_dir", spec.get("dataset_dir"))
    out["output_dir"] = _string("output_dir", spec.get("output_dir"))
    out["job_id"] = _string("job_id", spec.get("job_id", Path(out["output_dir"].rstrip("/")).name or "job"))
    out["model"] = _choice("model", spec.get("model", "compact_cnn"), MODEL_NAMES)
    size = spec.get("input_size")
    out["input_size"] = None if size is None else _integer("input_size", size, 16, 1024)
    out["seed"] = _integer("seed", spec.get("seed", 42), 0, 2**31 - 1)
    out["threads"] = _integer("threads", spec.get("threads", 0), 0, 1024)
    out["device"] = _choice("device", spec.get("device", "auto"), DEVICES)
    out["deterministic"] = _boolean("deterministic", spec.get("deterministic", True))
    resume = spec.get("resume_from")
    out["resume_from"] = None if resume is None else _string("resume_from", resume)
    out["hyperparameters"] = validate_hyperparameters(spec.get("hyperparameters"))
    aug = spec.get("augmentation")
    # Only the overrides are kept; the manifest's block is merged in when the dataset is read.
    out["augmentation"] = None if aug is None else copy.deepcopy(_object("augmentation", aug))
    if aug is not None:
        _reject_unknown("augmentation", aug, DEFAULT_AUGMENTATION)
        validate_augmentation(aug)  # type/range check now, merge later
    thr = _object("threshold", spec.get("threshold") or {})
    _reject_unknown("threshold", thr, DEFAULT_THRESHOLD)
    thr = {**DEFAULT_THRESHOLD, **thr}
    out["threshold"] = {
        "method": _choice("threshold.method", thr["method"], THRESHOLD_METHODS),
        "target_sensitivity": _number("threshold.target_sensitivity", thr["target_sensitivity"], 0, 1, lo_open=True),
    }
    out["test_dataset_dirs"] = _validate_test_sets(spec.get("test_dataset_dirs"))
    exp = _object("export", spec.get("export") or {})
    _reject_unknown("export", exp, DEFAULT_EXPORT)
    exp = {**DEFAULT_EXPORT, **exp}
    out["export"] = {
        "onnx": _boolean("export.onnx", exp["onnx"]),
        "opset": _integer("export.opset", exp["opset"], 13, 25),
        "parity_samples": _integer("export.parity_samples", exp["parity_samples"], 0, 32),
        "int8": _boolean("export.int8", exp["int8"]),
        "int8_calibration": _integer("export.int8_calibration", exp["int8_calibration"], 8, 4096),
    }
    if out["export"]["int8"] and not out["export"]["onnx"]:
        raise SpecError("export.int8: the INT8 variant is quantized from the ONNX export; set export.onnx to true")
    return out


def _validate_distribution(path: str, raw: Any) -> Dict[str, Any]:
    d = _object(path, raw)
    kind = _choice(path + ".type", d.get("type"), ("float", "int", "categorical"))
    if kind == "categorical":
        _reject_unknown(path, d, ("type", "choices"))
        choices = d.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpecError(f"{path}.choices: must be a non-empty list")
        for c in choices:
            if not (c is None or isinstance(c, (bool, int, float, str))):
                raise SpecError(f"{path}.choices: values must be strings, numbers, booleans or null")
        return {"type": kind, "choices": list(choices)}
    _reject_unknown(path, d, ("type", "low", "high", "log", "step"))
    num = _number if kind == "float" else _integer
    low = num(path + ".low", d.get("low"))
    high = num(path + ".high", d.get("high"))
    if low > high:
        raise SpecError(f"{path}: low must be <= high")
    log = _boolean(path + ".log", d.get("log", False))
    if log and low <= 0:
        raise SpecError(f"{path}: log scale needs low > 0")
    step = d.get("step")
    if step is not None:
        step = (_number(path + ".step", step, 0, lo_open=True) if kind == "float"
                else _integer(path + ".step", step, 1))
        if log:
            raise SpecError(f"{path}: step and log cannot be combined")
    return {"type": kind, "low": low, "high": high, "log": log, "step": step}


def searchable_keys() -> List[str]:
    # input_crop is a box (an object), which no search distribution yields.
    return (list(SEARCHABLE_TOP_LEVEL) + [k for k in DEFAULT_HYPERPARAMETERS if k != "input_crop"]
            + [f"augmentation.{k}" for k in DEFAULT_AUGMENTATION])


def validate_study_spec(raw: Dict[str, Any]) -> Dict[str, Any]:
    """A job spec plus a `study` block. Returns {"job": <job spec>, "study": <study block>}."""
    spec = _object("spec", raw)
    job = validate_job_spec(spec, extra_keys=("study",))
    study_raw = _object("study", spec.get("study"))
    _reject_unknown("study", study_raw, DEFAULT_STUDY)
    s = {**DEFAULT_STUDY, **study_raw}
    space_raw = _object("study.search_space", s["search_space"])
    allowed = searchable_keys()
    space = {}
    for key, dist in space_raw.items():
        if key not in allowed:
            raise SpecError(f"study.search_space: cannot search '{key}'; searchable: {', '.join(allowed)}")
        space[key] = _validate_distribution(f"study.search_space.{key}", dist)
    if "model" in space:
        if space["model"]["type"] != "categorical":
            raise SpecError("study.search_space.model: must be categorical")
        for m in space["model"]["choices"]:
            _choice("study.search_space.model.choices", m, MODEL_NAMES)
    timeout = s["timeout_s"]
    study = {
        "n_trials": _integer("study.n_trials", s["n_trials"], 1, 10000),
        "pruner": _choice("study.pruner", s["pruner"], PRUNERS),
        "concurrency": _integer("study.concurrency", s["concurrency"], 1, 64),
        "direction": _choice("study.direction", s["direction"], ("maximize", "minimize")),
        "search_space": space,
        "timeout_s": None if timeout is None else _number("study.timeout_s", timeout, 0, lo_open=True),
        "pruner_startup_trials": _integer("study.pruner_startup_trials", s["pruner_startup_trials"], 0),
        "pruner_warmup_epochs": _integer("study.pruner_warmup_epochs", s["pruner_warmup_epochs"], 0),
        "storage": _choice("study.storage", s["storage"], ("memory", "sqlite")),
        "study_name": None if s["study_name"] is None else _string("study.study_name", s["study_name"]),
    }
    if job["resume_from"] is not None:
        raise SpecError("resume_from: not supported for studies")
    return {"job": job, "study": study}


def apply_trial_params(job: Dict[str, Any], params: Dict[str, Any]) -> Dict[str, Any]:
    """A job spec (raw form, ready for validate_job_spec) with sampled study parameters applied."""
    spec = copy.deepcopy(job)
    for key, value in params.items():
        if key in SEARCHABLE_TOP_LEVEL:
            spec[key] = value
        elif key.startswith("augmentation."):
            spec["augmentation"] = {**(spec.get("augmentation") or {}), key.split(".", 1)[1]: value}
        else:
            spec["hyperparameters"] = {**spec["hyperparameters"], key: value}
    return spec
