import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.train import CancelToken, run_job, torch_load

from .conftest import ListEmitter, base_spec, make_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_training_learns_the_blob_task(trained):
    _, em = trained
    fin = em.of("finished")[0]
    assert fin["best_val_auc"] > 0.75
    assert fin["metrics"]["auc"] == fin["best_val_auc"]  # temperature scaling keeps the ranking
    assert 0.0 < fin["threshold"] < 1.0 and fin["temperature"] > 0


def test_events_come_in_protocol_order(trained):
    out, em = trained
    names = [n for n in em.names() if n != "progress"]
    assert names[0] == "started"
    assert names[1:7] == ["epoch", "checkpoint"] * 3
    assert names[7:10] == ["evaluation"] * 3
    assert names[-1] == "finished"
    started = em.of("started")[0]
    for key in ("job_id", "device", "threads", "model", "parameters", "train_images", "val_images",
                "start_epoch", "time"):
        assert key in started
    assert started["train_images"] == 40 and started["val_images"] == 16 and started["start_epoch"] == 1
    epochs = em.of("epoch")
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    for e in epochs:
        assert set(e) >= {"epochs", "train_loss", "val_loss", "val_auc", "lr", "images_per_sec", "seconds"}
    assert [e["split"] for e in em.of("evaluation")] == ["val", "test:internal", "test:ext"]
    assert em.of("evaluation")[1]["metrics"]["n"] == 8 and em.of("evaluation")[2]["metrics"]["n"] == 10
    kinds = {a["kind"]: a for a in em.of("artifact")}
    assert set(kinds) == {"checkpoint", "state_dict", "onnx", "evaluation", "model_meta"}
    for a in kinds.values():
        assert Path(a["path"]).stat().st_size == a["bytes"] and len(a["sha256"]) == 64
    fin = em.of("finished")[0]
    assert fin["artifacts"]["onnx"] == str(out / "model.onnx")
    meta = json.loads((out / "model.json").read_text())
    assert meta["threshold"] == fin["threshold"] and meta["input_size"] == 24
    assert meta["preprocessing_hash"] == "prep-24" and len(meta["classifier_weight"]) == 128
    assert meta["feature_map"] == [128, 2, 2] and meta["outputs"]["features"] == [-1, 128, 2, 2]
    assert meta["trained_on"] == {"device": "cpu", "device_name": "cpu", "processes": 1, "threads": started["threads"],
                                  "torch": torch.__version__, "amp": False}
    # the manifest's augmentation is used, its unknown keys ignored
    assert meta["augmentation"]["rotation_deg"] == 5 and "vflip" not in meta["augmentation"]


def test_progress_carries_per_step_losses(trained):
    _, em = trained
    points = [p for e in em.of("progress") for p in e.get("step_losses", [])]
    steps = [p[0] for p in points]
    assert steps and steps == sorted(steps) and len(set(steps)) == len(steps)  # global steps, increasing
    epochs = em.of("epoch")
    assert steps[-1] == len(epochs) * em.of("progress")[-1]["steps"]  # the last step of the last epoch is reported
    assert all(p[1] > 0 for p in points)
    # short epochs are reported step by step: each epoch's mean loss lies within its steps' losses
    per_epoch = em.of("progress")[-1]["steps"]
    assert per_epoch <= 20
    for e in epochs:
        mine = [p[1] for p in points if (e["epoch"] - 1) * per_epoch < p[0] <= e["epoch"] * per_epoch]
        assert len(mine) == per_epoch
        assert min(mine) - 1e-6 <= e["train_loss"] <= max(mine) + 1e-6


def test_thin_keeps_the_last_point_and_at_most_the_limit():
    from trainer.train import thin
    pts = [[i, float(i)] for i in range(1, 101)]
    out = thin(pts, 20)
    assert len(out) == 20 and out[-1] == [100, 100.0] and out == sorted(out)
    assert thin(pts[:5], 20) == pts[:5]


def test_cli_events_are_json_lines_on_stdout_only(dataset, tmp_path):
    spec = base_spec(dataset, tmp_path / "out", hyperparameters={"epochs": 1, "max_train_batches": 2})
    (tmp_path / "job.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "trainer", "run", "--spec", str(tmp_path / "job.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]  # every stdout line parses
    assert events[0]["event"] == "started" and events[-1]["event"] == "finished"
    assert events[0]["steps_per_epoch"] == 2


class CancelAfterChecks(CancelToken):
    """Reports a cancel request from the n-th check on: the loop checks once before training
    and then after every optimizer step, so n=2 stops right after the first step."""

    def __init__(self, n):
        super().__init__()
        self.left = n

    @property
    def requested(self):
        self.left -= 1
        return self.left <= 0


def _weights(path):
    return torch_load(str(path))["state_dict"]


def _same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("cancel_on", ["epoch1", "first_step"])
def test_resume_is_exact(dataset, tmp_path, cancel_on):
    """2 epochs straight == stop (at the epoch boundary, or after one step) + resume."""
    hp = {"epochs": 2, "warmup_epochs": 1, "early_stopping_patience": 5}
    aug = {"rotation_deg": 10, "noise": 0.02, "blur": 0.5, "hflip": True}
    straight = ListEmitter()
    assert run_job(base_spec(dataset, tmp_path / "a", hyperparameters=hp, augmentation=aug), straight) == 0

    token = CancelToken() if cancel_on == "epoch1" else CancelAfterChecks(2)

    def trigger(event):
        if cancel_on == "epoch1" and event["event"] == "checkpoint" and event["epoch"] == 1:
            token.request()

    first = ListEmitter(on=trigger)
    spec_b = base_spec(dataset, tmp_path / "b", hyperparameters=hp, augmentation=aug)
    assert run_job(spec_b, first, token) == 0
    cancelled = first.of("cancelled")
    assert len(cancelled) == 1 and not first.of("finished")
    assert cancelled[0]["step"] == (0 if cancel_on == "epoch1" else 1)
    resumed = ListEmitter()
    spec_b["resume_from"] = cancelled[0]["checkpoint"]
    assert run_job(spec_b, resumed) == 0
    assert resumed.of("started")[0]["start_epoch"] == (2 if cancel_on == "epoch1" else 1)

    _same_weights(_weights(tmp_path / "a" / "state_dict.pt"), _weights(tmp_path / "b" / "state_dict.pt"))
    _same_weights(torch_load(str(tmp_path / "a" / "checkpoint.pt"))["model"],
                  torch_load(str(tmp_path / "b" / "checkpoint.pt"))["model"])
    a_epochs, b_epochs = straight.of("epoch"), first.of("epoch") + resumed.of("epoch")
    assert [(e["train_loss"], e["val_auc"], e["val_loss"]) for e in a_epochs] == \
           [(e["train_loss"], e["val_auc"], e["val_loss"]) for e in b_epochs]
    assert straight.of("finished")[0]["metrics"] == resumed.of("finished")[0]["metrics"]


def test_resume_rejects_a_checkpoint_of_another_model(dataset, tmp_path):
    em = ListEmitter()
    assert run_job(base_spec(dataset, tmp_path / "a", hyperparameters={"epochs": 1}), em) == 0
    ckpt = em.of("checkpoint")[0]["path"]
    bad = ListEmitter()
    assert run_job(base_spec(dataset, tmp_path / "b", input_size=32, resume_from=ckpt), bad) == 1
    assert "input_size" in bad.of("failed")[0]["reason"]


def test_unusable_datasets_fail_cleanly(tmp_path):
    em = ListEmitter()
    assert run_job(base_spec(tmp_path / "nowhere", tmp_path / "o"), em) == 1
    assert em.events == [{"event": "failed", "error_type": "DatasetError",
                          "reason": f"dataset export not found: {tmp_path / 'nowhere' / 'manifest.json'} "
                                    "does not exist"}]
    one_class = make_dataset(tmp_path / "one", {"train": 8, "val": 1})
    em = ListEmitter()
    assert run_job(base_spec(one_class, tmp_path / "o"), em) == 1
    assert "val split needs images of both classes" in em.of("failed")[0]["reason"]


def test_early_stopping_keeps_the_best_weights(dataset, tmp_path):
    em = ListEmitter()
    spec = base_spec(dataset, tmp_path / "o", hyperparameters={"epochs": 8, "early_stopping_patience": 2})
    assert run_job(spec, em) == 0
    epochs = em.of("epoch")
    # Replay the rule on the reported AUCs: stop after `patience` epochs without a strict improvement.
    best, best_epoch, bad = None, 0, 0
    for e in epochs:
        if best is None or e["val_auc"] > best:
            best, best_epoch, bad = e["val_auc"], e["epoch"], 0
        else:
            bad += 1
        assert e["early_stopped"] == (bad >= 2)
    assert len(epochs) < 8 and epochs[-1]["early_stopped"]  # the blob task saturates quickly
    fin = em.of("finished")[0]
    assert fin["best_epoch"] == best_epoch and fin["best_val_auc"] == best
    # The exported weights are the best epoch's, not the last epoch's.
    best_ckpt = torch_load(str(tmp_path / "o" / "checkpoint.pt"))
    _same_weights(best_ckpt["best_model"], _weights(tmp_path / "o" / "state_dict.pt"))
    assert not all(torch.equal(best_ckpt["model"][k], best_ckpt["best_model"][k]) for k in best_ckpt["model"])


def test_sigterm_checkpoints_and_exits_cleanly(dataset, tmp_path):
    spec = base_spec(dataset, tmp_path / "out", hyperparameters={"epochs": 500, "batch_size": 4})
    (tmp_path / "job.json").write_text(json.dumps(spec))
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "run", "--spec", str(tmp_path / "job.json")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events = []
    try:
        for line in proc.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "checkpoint":  # mid-run: at least one epoch done
                proc.send_signal(signal.SIGTERM)
                break
        events += [json.loads(line) for line in proc.stdout]
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    last = events[-1]
    assert last["event"] == "cancelled", events[-3:]
    assert Path(last["checkpoint"]).is_file()
    ck = torch_load(last["checkpoint"])
    assert ck["position"]["epoch"] == last["epoch"] + (1 if last["step"] == 0 else 0)
    assert not any(e["event"] == "finished" for e in events)


def test_lr_schedules():
    from trainer.train import lr_lambda

    cos = lr_lambda("cosine", 100, 10)
    assert [cos(i) for i in (0, 4, 9)] == [0.1, 0.5, 1.0]  # linear warm-up
    assert cos(10) == 1.0 and cos(55) == pytest.approx(0.5) and cos(99) < 0.001
    const = lr_lambda("none", 100, 10)
    assert const(0) == 0.1 and const(50) == 1.0 and const(99) == 1.0
    one = lr_lambda("onecycle", 100, 0)  # peak at 30 % of the run
    assert one(0) == pytest.approx(1 / 25) and one(30) == pytest.approx(1.0)
    assert one(99) < 0.001 and all(one(i) <= one(i + 1) for i in range(30))
