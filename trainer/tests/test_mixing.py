"""Mixup / cutmix (hyperparameters.mixup_alpha, cutmix_alpha): spec checks, the mixing maths, and
tiny training runs (seeded, resumable, distributed rows as one process)."""
import pytest
import torch
import torch.nn.functional as F

from trainer import data as D
from trainer.distributed import Dist
from trainer.mixing import Mixer
from trainer.protocol import SpecError, searchable_keys, validate_augmentation, validate_hyperparameters, \
    validate_study_spec
from trainer.train import CancelToken, run_job, torch_load

from .conftest import ListEmitter, base_spec
from .test_train import CancelAfterChecks, _same_weights


def test_alphas_default_off_and_are_range_checked():
    hp = validate_hyperparameters({})
    assert hp["mixup_alpha"] == 0.0 and hp["cutmix_alpha"] == 0.0
    hp = validate_hyperparameters({"mixup_alpha": 0.4, "cutmix_alpha": 1})
    assert hp["mixup_alpha"] == 0.4 and hp["cutmix_alpha"] == 1.0
    for key in ("mixup_alpha", "cutmix_alpha"):
        for bad in (-0.1, 1.01, "0.2", True, None, float("nan")):
            with pytest.raises(SpecError, match=f"hyperparameters.{key}"):
                validate_hyperparameters({key: bad})


def test_alphas_are_searchable_in_studies():
    assert {"mixup_alpha", "cutmix_alpha"} <= set(searchable_keys())
    study = validate_study_spec({"dataset_dir": "/d", "output_dir": "/o", "study": {"search_space": {
        "mixup_alpha": {"type": "float", "low": 0.0, "high": 0.4},
        "cutmix_alpha": {"type": "categorical", "choices": [0.0, 1.0]}}}})
    assert set(study["study"]["search_space"]) == {"mixup_alpha", "cutmix_alpha"}


def test_draws_are_seeded_and_use_the_generator_alike_every_step():
    def draws(seed, mixup, cutmix):
        m = Mixer(mixup, cutmix, torch.Generator().manual_seed(seed))
        out = [m.draw(8, 24, 24) for _ in range(40)]
        return out, m.g.get_state()

    a, state_a = draws(1, 0.4, 1.0)
    b, state_b = draws(1, 0.4, 1.0)
    assert [(d.kind, d.lam, d.box, d.perm.tolist()) for d in a] == [(d.kind, d.lam, d.box, d.perm.tolist()) for d in b]
    assert {d.kind for d in a} == {"mixup", "cutmix"}  # both alphas: each batch picks one
    _, state_c = draws(1, 0.4, 0.0)
    assert torch.equal(state_a, state_c)  # fixed consumption per step, whatever was drawn
    assert {d.kind for d in draws(2, 0.4, 0.0)[0]} == {"mixup"}
    assert {d.kind for d in draws(2, 0.0, 0.3)[0]} == {"cutmix"}
    for d in a:
        assert 0.0 <= d.lam <= 1.0 and sorted(d.perm.tolist()) == list(range(8))
        if d.kind == "cutmix":
            y0, y1, x0, x1 = d.box
            assert d.lam == pytest.approx(1 - (y1 - y0) * (x1 - x0) / (24 * 24))


def test_mixup_and_cutmix_images_and_targets():
    x = torch.rand(6, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    m = Mixer(0.4, 0.0, torch.Generator().manual_seed(3)).draw(6, 24, 24)
    xm, ym = m.apply(x, y)
    assert torch.allclose(xm, m.lam * x + (1 - m.lam) * x[m.perm])
    assert torch.allclose(ym, m.lam * y + (1 - m.lam) * y[m.perm])
    c = Mixer(0.0, 1.0, torch.Generator().manual_seed(3))
    c = next(d for d in (c.draw(6, 24, 24) for _ in range(20)) if 0 < d.lam < 1)
    xc, yc = c.apply(x, y)
    y0, y1, x0, x1 = c.box
    inside = torch.zeros(24, 24, dtype=torch.bool)
    inside[y0:y1, x0:x1] = True
    assert torch.equal(xc[:, :, inside], x[c.perm][:, :, inside]) and torch.equal(xc[:, :, ~inside], x[:, :, ~inside])
    assert 1 - inside.float().mean().item() == pytest.approx(c.lam)
    assert torch.allclose(yc, c.lam * y + (1 - c.lam) * y[c.perm])


def test_mixed_targets_give_the_mix_of_the_two_losses_with_their_class_weights():
    """BCE with pos_weight (and label smoothing) is linear in the target: the loss on the mixed
    target is lam * loss(y_a) + (1 - lam) * loss(y_b), each with its own class's weight."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, generator=g)
    ya = torch.tensor([1.0, 0, 1, 0, 1, 1, 0, 0])
    yb = ya.flip(0)
    lam, eps, pw = 0.3, 0.1, torch.tensor([2.5])

    def loss(t):
        return F.binary_cross_entropy_with_logits(logits, t * (1 - eps) + 0.5 * eps, pos_weight=pw, reduction="none")

    assert torch.allclose(loss(lam * ya + (1 - lam) * yb), lam * loss(ya) + (1 - lam) * loss(yb), atol=1e-6)


@pytest.mark.parametrize("alphas", [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_each_rank_mixes_the_pairs_one_process_would(alphas):
    """train_step's distributed path: a rank augments its rows and their partners' rows with the
    global batch's draws, then mixes; the result is one process's mixed batch at those rows."""
    aug = validate_augmentation({"rotation_deg": 10, "noise": 0.05, "blur": 1.0, "hflip": True})
    x = torch.rand(7, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0.0, 1, 1, 0, 1, 0, 1])

    def mixed(rows):
        mix = Mixer(*alphas, torch.Generator().manual_seed(4)).draw(7, 24, 24)
        want = None if rows is None else torch.cat([rows, mix.partners(rows)])
        xs, ys = (x, y) if want is None else (x[want], y[want])
        out = D.Augmenter(aug, torch.Generator().manual_seed(5))(xs.clone(), rows=want,
                                                                 total=None if want is None else 7)
        return mix.apply(out, ys, rows)

    whole_x, whole_y = mixed(None)
    for rank in range(3):
        rows = Dist(rank=rank, world=3).rows_of(7)
        part_x, part_y = mixed(rows)
        assert torch.allclose(part_x, whole_x[rows], atol=1e-6)
        assert torch.equal(part_y, whole_y[rows])


HP = {"epochs": 1, "max_train_batches": 3, "warmup_epochs": 0}


def _step_losses(dataset, out, **hp):
    em = ListEmitter()
    assert run_job(base_spec(dataset, out, hyperparameters={**HP, **hp}), em) == 0, em.events[-1]
    losses = [loss for e in em.of("progress") for _, loss in e["step_losses"]]
    assert len(losses) == 3
    return losses, em


def test_training_with_mixup_or_cutmix_runs_differs_and_repeats(dataset, tmp_path):
    plain, _ = _step_losses(dataset, tmp_path / "plain")
    mixup, em = _step_losses(dataset, tmp_path / "mixup", mixup_alpha=0.4)
    cutmix, _ = _step_losses(dataset, tmp_path / "cutmix", cutmix_alpha=1.0)
    assert mixup != plain and cutmix != plain and mixup != cutmix
    assert em.of("finished")[0]["best_val_auc"] is not None  # validation as usual
    again, _ = _step_losses(dataset, tmp_path / "mixup2", mixup_alpha=0.4)
    assert again == mixup  # same seed, same run
    _same_weights(torch_load(str(tmp_path / "mixup" / "state_dict.pt"))["state_dict"],
                  torch_load(str(tmp_path / "mixup2" / "state_dict.pt"))["state_dict"])


def test_resume_with_mixing_is_exact(dataset, tmp_path):
    hp = {"epochs": 2, "max_train_batches": 3, "warmup_epochs": 0, "mixup_alpha": 0.4, "cutmix_alpha": 1.0}
    straight = ListEmitter()
    assert run_job(base_spec(dataset, tmp_path / "a", hyperparameters=hp), straight) == 0
    first = ListEmitter()
    spec_b = base_spec(dataset, tmp_path / "b", hyperparameters=hp)
    assert run_job(spec_b, first, CancelAfterChecks(3)) == 0  # stops after 2 steps, mid-epoch
    spec_b["resume_from"] = first.of("cancelled")[0]["checkpoint"]
    resumed = ListEmitter()
    assert run_job(spec_b, resumed, CancelToken()) == 0
    _same_weights(torch_load(str(tmp_path / "a" / "state_dict.pt"))["state_dict"],
                  torch_load(str(tmp_path / "b" / "state_dict.pt"))["state_dict"])
    assert [e["train_loss"] for e in straight.of("epoch")] == [e["train_loss"] for e in first.of("epoch") + resumed.of("epoch")]


def test_two_processes_mix_what_one_does(dataset, tmp_path):
    """As test_distributed's frozen-BatchNorm comparison, with mixup and cutmix on: the ranks mix
    the same pairs, boxes and lambdas as one process, so only float-sum order differs."""
    import json
    import sys
    from pathlib import Path

    from .test_distributed import LAUNCH, _launch

    hp = {"epochs": 2, "batch_size": 8, "max_train_batches": 3, "warmup_epochs": 0, "early_stopping_patience": None,
          "dropout": 0.0, "mixup_alpha": 0.4, "cutmix_alpha": 1.0}
    frozen = str(Path(__file__).with_name("frozen_bn_worker.py"))
    results = {}
    for name, command in (("one", [sys.executable, frozen, "run", "--spec"]),
                          ("two", LAUNCH[:LAUNCH.index("-m", 3)] + [frozen, "run", "--spec"])):
        spec = base_spec(dataset, tmp_path / name, hyperparameters=hp, augmentation={"rotation_deg": 10, "noise": 0.02})
        (tmp_path / f"{name}.json").write_text(json.dumps(spec))
        events, stderr = _launch(tmp_path / f"{name}.json", command=command)
        assert events[-1]["event"] == "finished", stderr[-3000:]
        results[name] = [e for e in events if e["event"] == "epoch"]
    assert len(results["one"]) == len(results["two"]) == 2
    for a, b in zip(results["one"], results["two"]):
        assert abs(a["train_loss"] - b["train_loss"]) <= 1e-5 * abs(a["train_loss"])
        assert abs(a["val_loss"] - b["val_loss"]) <= 1e-5 * abs(a["val_loss"])
