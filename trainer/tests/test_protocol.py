import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.protocol import (DEFAULT_HYPERPARAMETERS, Emitter, SpecError, apply_trial_params, validate_job_spec,
                              validate_study_spec)

ROOT = Path(__file__).resolve().parents[2]


def minimal():
    return {"dataset_dir": "/d", "output_dir": "/o/job-7"}


def test_defaults_fill_everything_but_the_two_dirs():
    spec = validate_job_spec(minimal())
    assert spec["job_id"] == "job-7"
    assert spec["model"] == "compact_cnn"
    assert spec["hyperparameters"] == DEFAULT_HYPERPARAMETERS
    assert spec["threshold"] == {"method": "youden", "target_sensitivity": 0.95}
    assert spec["export"] == {"onnx": True, "opset": 17, "parity_samples": 32, "int8": False, "int8_calibration": 256}
    assert spec["augmentation"] is None and spec["resume_from"] is None and spec["test_dataset_dirs"] == []
    assert validate_job_spec(spec) == spec  # normalising is idempotent


@pytest.mark.parametrize("patch, fragment", [
    ({"dataset_dir": None}, "dataset_dir"),
    ({"model": "vgg16"}, "model: must be one of"),
    ({"hyperparameters": {"lr": 0}}, "hyperparameters.lr"),
    ({"hyperparameters": {"batch_size": 1}}, "hyperparameters.batch_size"),
    ({"hyperparameters": {"epochs": "3"}}, "hyperparameters.epochs: must be an integer"),
    ({"hyperparameters": {"learning_rate": 0.1}}, "unknown field(s) learning_rate"),
    ({"hyperparameters": {"scheduler": "step"}}, "hyperparameters.scheduler"),
    ({"augmentation": {"vflip": True}}, "augmentation: unknown field(s) vflip"),
    ({"augmentation": {"scale": [1.2, 0.8]}}, "augmentation.scale"),
    ({"threshold": {"method": "f1"}}, "threshold.method"),
    ({"export": {"opset": 9}}, "export.opset"),
    ({"test_dataset_dirs": ["/a/x", "/b/x"]}, "names must be unique"),
    ({"epochs": 3}, "unknown field(s) epochs"),
])
def test_bad_specs_name_the_field(patch, fragment):
    with pytest.raises(SpecError) as info:
        validate_job_spec({**minimal(), **patch})
    assert fragment in str(info.value)


def test_study_spec_validates_search_space_and_applies_params():
    raw = {**minimal(), "study": {"n_trials": 3, "search_space": {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model": {"type": "categorical", "choices": ["compact_cnn", "resnet18"]},
        "augmentation.rotation_deg": {"type": "int", "low": 0, "high": 15}}}}
    v = validate_study_spec(raw)
    assert v["study"]["pruner"] == "median" and v["study"]["n_trials"] == 3
    applied = validate_job_spec(apply_trial_params(v["job"], {"lr": 0.005, "model": "resnet18",
                                                              "augmentation.rotation_deg": 7}))
    assert applied["hyperparameters"]["lr"] == 0.005
    assert applied["model"] == "resnet18"
    assert applied["augmentation"] == {"rotation_deg": 7}
    with pytest.raises(SpecError, match="cannot search 'output_dir'"):
        validate_study_spec({**minimal(), "study": {"search_space": {"output_dir": {"type": "categorical",
                                                                                    "choices": ["x"]}}}})
    with pytest.raises(SpecError, match="log scale needs low > 0"):
        validate_study_spec({**minimal(), "study": {"search_space": {"lr": {"type": "float", "low": 0,
                                                                            "high": 1, "log": True}}}})


def test_emitter_writes_strict_json_lines():
    buf = io.StringIO()
    e = Emitter(buf)
    e.emit("epoch", val_auc=float("nan"), loss=0.5, pair=(1, 2))
    e.emit("x", nested={"inf": float("inf")})
    lines = buf.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"event": "epoch", "val_auc": None, "loss": 0.5, "pair": [1, 2]},
        {"event": "x", "nested": {"inf": None}},
    ]


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_cli_reports_a_bad_spec_as_a_failed_event(tmp_path):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({**minimal(), "hyperparameters": {"dropout": 2}}))
    proc = run_cli("run", "--spec", str(spec))
    assert proc.returncode == 1
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events == [{"event": "failed", "error_type": "SpecError",
                       "reason": "hyperparameters.dropout: must be <= 0.95, got 2"}]
    (tmp_path / "broken.json").write_text("{nope")
    proc = run_cli("run", "--spec", str(tmp_path / "broken.json"))
    assert proc.returncode == 1 and json.loads(proc.stdout)["reason"].startswith("spec file")
    proc = run_cli("validate", "--spec", str(tmp_path / "missing.json"))
    assert proc.returncode == 1 and "cannot read spec file" in json.loads(proc.stdout)["reason"]


def test_cli_validate_prints_the_normalised_spec(tmp_path):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(minimal()))
    proc = run_cli("validate", "--spec", str(spec))
    assert proc.returncode == 0, proc.stderr
    event = json.loads(proc.stdout)
    assert event["event"] == "spec" and event["spec"]["hyperparameters"]["epochs"] == 10
