"""Data-parallel training under torchrun: 2 CPU processes (gloo), 1 torch thread each."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from trainer import data as D
from trainer.distributed import Dist
from trainer.protocol import validate_augmentation
from trainer.train import torch_load

from .conftest import base_spec

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = [sys.executable, "-m", "trainer.torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=2", "--monitor_interval=1",
          "-m", "trainer", "run", "--spec"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_each_rank_augments_its_rows_as_one_process_would():
    params = validate_augmentation({"rotation_deg": 10, "translate": 0.1, "blur": 1.0, "noise": 0.05,
                                    "contrast": 0.2, "brightness": 0.1, "gamma": [0.8, 1.2], "hflip": True,
                                    "aspect": 0.1})
    x = torch.rand(7, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    whole = D.Augmenter(params, torch.Generator().manual_seed(5))(x.clone())
    parts = []
    for rank in range(2):
        rows = Dist(rank=rank, world=2).rows_of(7)
        parts.append((rows, D.Augmenter(params, torch.Generator().manual_seed(5))(x[rows].clone(), rows=rows, total=7)))
    for rows, out in parts:
        assert torch.allclose(out, whole[rows], atol=1e-6)


def test_shards_cover_every_row_once():
    for n in (0, 1, 5, 16):
        covered = [i for r in range(3) for i in range(n)[Dist(rank=r, world=3).shard(n)]]
        assert covered == list(range(n))


def _launch(spec_path: Path, on_event=None, command=None):
    proc = subprocess.Popen((command or LAUNCH) + [str(spec_path)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))  # only rank 0 writes, and only events
        if on_event is not None:
            on_event(proc, events[-1])
    stderr = proc.stderr.read()
    proc.wait(timeout=120)
    return events, stderr


def test_two_processes_train_report_once_and_resume_exactly(dataset, tmp_path):
    hp = {"epochs": 2, "batch_size": 8, "warmup_epochs": 1, "early_stopping_patience": 5}
    aug = {"rotation_deg": 10, "noise": 0.02, "blur": 0.5}

    def spec_file(name, **extra):
        spec = base_spec(dataset, tmp_path / name, hyperparameters=hp, augmentation=aug, **extra)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(spec))
        return path, spec

    path_a, _ = spec_file("a", export={"onnx": True, "opset": 17, "parity_samples": 4})
    straight, stderr = _launch(path_a)
    names = [e["event"] for e in straight]
    assert names[0] == "started" and names[-1] == "finished", stderr[-3000:]
    assert straight[0]["world_size"] == 2 and straight[0]["backend"] == "gloo" and straight[0]["threads"] == 1
    assert names.count("started") == 1 and names.count("epoch") == 2  # rank 1 reports nothing
    assert (tmp_path / "a" / "model.onnx").is_file()

    def stop_after_first_epoch(proc, event):
        if event["event"] == "checkpoint" and event["epoch"] == 1:
            proc.send_signal(signal.SIGTERM)  # torchrun forwards it to both ranks

    path_b, spec_b = spec_file("b")
    first, stderr = _launch(path_b, stop_after_first_epoch)
    cancelled = [e for e in first if e["event"] == "cancelled"]
    assert len(cancelled) == 1 and not [e for e in first if e["event"] == "finished"], stderr[-3000:]
    spec_b["resume_from"] = cancelled[0]["checkpoint"]
    path_b.write_text(json.dumps(spec_b))
    resumed, stderr = _launch(path_b)
    assert resumed[-1]["event"] == "finished", stderr[-3000:]

    a = torch_load(str(tmp_path / "a" / "state_dict.pt"))["state_dict"]
    b = torch_load(str(tmp_path / "b" / "state_dict.pt"))["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [e["val_auc"] for e in straight if e["event"] == "epoch"] == \
           [e["val_auc"] for e in first + resumed if e["event"] == "epoch"]


def test_without_batch_statistics_two_processes_compute_what_one_does(dataset, tmp_path):
    """Same seed, global batch and augmentation draws: with BatchNorm on running statistics the
    only difference left is the order of float sums (gloo's all-reduce)."""
    hp = {"epochs": 2, "batch_size": 8, "warmup_epochs": 0, "early_stopping_patience": None, "dropout": 0.0}
    frozen = str(Path(__file__).with_name("frozen_bn_worker.py"))
    results = {}
    for name, command in (("one", [sys.executable, frozen, "run", "--spec"]),
                          ("two", LAUNCH[:LAUNCH.index("-m", 3)] + [frozen, "run", "--spec"])):
        spec = base_spec(dataset, tmp_path / name, hyperparameters=hp, augmentation={"rotation_deg": 10, "noise": 0.02})
        (tmp_path / f"{name}.json").write_text(json.dumps(spec))
        events, stderr = _launch(tmp_path / f"{name}.json", command=command)
        assert events[-1]["event"] == "finished", stderr[-3000:]
        results[name] = [e for e in events if e["event"] == "epoch"]
    for a, b in zip(results["one"], results["two"]):
        assert abs(a["train_loss"] - b["train_loss"]) <= 1e-5 * abs(a["train_loss"])
        assert abs(a["val_loss"] - b["val_loss"]) <= 1e-5 * abs(a["val_loss"])
        assert a["val_auc"] == b["val_auc"]
