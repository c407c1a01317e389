import json
import subprocess
import sys
from pathlib import Path

from trainer.optimize import run_study

from .conftest import ListEmitter, base_spec

ROOT = Path(__file__).resolve().parents[2]


def test_study_records_every_trial(dataset, tmp_path):
    spec = base_spec(dataset, tmp_path / "study", hyperparameters={"epochs": 2, "max_train_batches": 2})
    spec["study"] = {
        "n_trials": 4,
        "pruner": "median",
        "pruner_startup_trials": 1,
        "search_space": {
            "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            "batch_size": {"type": "categorical", "choices": [4, 8]},
        },
    }
    em = ListEmitter()
    assert run_study(spec, em) == 0, em.events[-1]
    started = em.of("trial_started")
    assert [e["trial"] for e in started] == [0, 1, 2, 3]
    for e in started:
        assert set(e["params"]) == {"lr", "dropout", "batch_size"} and e["params"]["batch_size"] in (4, 8)
    ended = {e["trial"]: e["event"] for e in em.events if e["event"] in ("trial_finished", "trial_pruned")}
    assert sorted(ended) == [0, 1, 2, 3]
    for e in em.of("epoch"):
        assert e["trial"] in (0, 1, 2, 3)
    assert not em.of("finished")  # a trial's end is reported as trial_finished only
    summary = em.of("study_finished")[0]
    assert em.events[-1] is summary
    assert [t["trial"] for t in summary["trials"]] == [0, 1, 2, 3]
    assert {t["state"] for t in summary["trials"]} <= {"complete", "pruned"}
    finished = em.of("trial_finished")
    best = max(finished, key=lambda e: e["value"])
    assert summary["best_trial"] == best["trial"] and summary["best_value"] == best["value"]
    assert summary["best_params"] == best["params"]
    for e in finished:
        assert Path(e["output_dir"]) == tmp_path / "study" / f"trial-{e['trial']}"
        assert (Path(e["output_dir"]) / "model.json").is_file()
    assert json.loads((tmp_path / "study" / "study.json").read_text())["best_trial"] == summary["best_trial"]


def test_optimize_cli_rejects_a_bad_search_space(tmp_path):
    spec = {"dataset_dir": "/d", "output_dir": str(tmp_path), "study": {
        "search_space": {"lr": {"type": "uniform", "low": 0, "high": 1}}}}
    (tmp_path / "study.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "trainer", "optimize", "--spec", str(tmp_path / "study.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    event = json.loads(proc.stdout)
    assert event["event"] == "failed" and "study.search_space.lr.type" in event["reason"]
