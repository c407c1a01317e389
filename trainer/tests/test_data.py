import json

import pytest
import torch

from trainer import data as D
from trainer.protocol import DEFAULT_AUGMENTATION, SpecError

from .conftest import make_dataset


def test_manifest_and_split_loading(dataset):
    m = D.read_manifest(str(dataset))
    assert m.positive_class == "PNEUMONIA" and m.stored_size == 24 and m.preprocessing_hash == "prep-24"
    val = D.load_split(m, "val", 24)
    assert val.images.dtype == torch.uint8 and tuple(val.images.shape) == (16, 1, 24, 24)
    assert val.labels.tolist() == [0.0, 1.0] * 8 and val.positives == 8
    assert D.load_split(m, "val", 24) is val  # cached per process
    small = D.load_split(m, "val", 16)  # resized once on load
    assert tuple(small.images.shape) == (16, 1, 16, 16)
    assert len(D.load_split(m, None, 24)) == 64


def test_manifest_errors_are_dataset_errors(tmp_path):
    with pytest.raises(D.DatasetError, match="does not exist"):
        D.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"classes": ["A", "B"], "items": [
        {"file": "../etc/passwd", "label": "A", "split": "train"}]}))
    with pytest.raises(D.DatasetError, match="relative path inside the dataset"):
        D.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"classes": ["A", "B"], "items": [
        {"file": "x.png", "label": "C", "split": "train"}]}))
    with pytest.raises(D.DatasetError, match="label 'C'"):
        D.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"classes": ["A", "B"], "items": [
        {"file": "missing.png", "label": "A", "split": "train"}]}))
    with pytest.raises(D.DatasetError, match="image missing"):
        D.load_split(D.read_manifest(str(tmp_path)), "train", 24)


def test_augmentation_merge_order(tmp_path):
    ds = make_dataset(tmp_path, {"train": 2}, augmentation={"rotation_deg": 3, "noise": 0.1, "vflip": True})
    m = D.read_manifest(str(ds))
    merged = D.resolve_augmentation(m, {"noise": 0.0})
    assert merged["rotation_deg"] == 3 and merged["noise"] == 0.0
    assert merged["translate"] == DEFAULT_AUGMENTATION["translate"]
    with pytest.raises(SpecError):
        D.resolve_augmentation(m, {"vflip": True})


def test_augmenter_is_reproducible_and_stays_in_range():
    params = {**DEFAULT_AUGMENTATION, "blur": 1.0, "noise": 0.05, "hflip": True}
    x = torch.rand(6, 1, 24, 24)
    a = D.Augmenter(params, torch.Generator().manual_seed(1))(x.clone())
    b = D.Augmenter(params, torch.Generator().manual_seed(1))(x.clone())
    c = D.Augmenter(params, torch.Generator().manual_seed(2))(x.clone())
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    off = D.Augmenter({**params, "enabled": False}, torch.Generator())
    assert not off.active and off(x) is x


def test_rotation_only_moves_content_and_never_flips_vertically():
    """A bright top row stays near the top under +-10 degrees, scale 1, no flips."""
    params = {**DEFAULT_AUGMENTATION, "rotation_deg": 10, "translate": 0.0, "scale": [1.0, 1.0],
              "brightness": 0.0, "contrast": 0.0, "gamma": [1.0, 1.0], "hflip": True}
    x = torch.zeros(32, 1, 24, 24)
    x[:, :, 2:6, :] = 1.0
    y = D.Augmenter(params, torch.Generator().manual_seed(0))(x)
    top, bottom = y[:, :, :12].sum(dim=(1, 2, 3)), y[:, :, 12:].sum(dim=(1, 2, 3))
    assert bool((top > 5 * bottom).all())


def test_batching_and_balanced_sampling():
    assert D.steps_per_epoch(40, 8, None) == 5
    assert D.steps_per_epoch(41, 8, None) == 5  # a single leftover image is dropped (BatchNorm)
    assert D.steps_per_epoch(42, 8, None) == 6
    assert D.steps_per_epoch(42, 8, 2) == 2
    labels = torch.tensor([1.0] * 10 + [0.0] * 90)
    order = D.epoch_order(labels, "sampler", torch.Generator().manual_seed(0))
    frac = float(labels[order].mean())
    assert 0.35 < frac < 0.65  # ~balanced despite 10% positives
    perm = D.epoch_order(labels, "none", torch.Generator().manual_seed(0))
    assert sorted(perm.tolist()) == list(range(100))
    batches = list(D.batch_indices(perm, 32, D.steps_per_epoch(100, 32, None)))
    assert [len(b) for b in batches] == [32, 32, 32, 4]


def test_aspect_augmentation_stretches_one_axis_against_the_other():
    params = {**DEFAULT_AUGMENTATION, "rotation_deg": 0, "translate": 0.0, "scale": [1.0, 1.0], "aspect": 0.3,
              "brightness": 0.0, "contrast": 0.0, "gamma": [1.0, 1.0], "hflip": False}
    x = torch.zeros(16, 1, 32, 32)
    x[:, :, 12:20, 12:20] = 1.0  # a centred square
    y = D.Augmenter(params, torch.Generator().manual_seed(0))(x)
    width = (y.sum(dim=2) > 0.5 * 8).sum(dim=(1, 2)).float()
    height = (y.sum(dim=3) > 0.5 * 8).sum(dim=(1, 2)).float()
    ratio = width / height
    assert float(ratio.max()) > 1.1 and float(ratio.min()) < 0.9


def test_fixed_shifts_are_deterministic_and_stay_in_range():
    x = torch.rand(3, 1, 32, 32)
    for name in D.SHIFTS:
        a, b = D.apply_shift(name, x.clone()), D.apply_shift(name, x.clone())
        assert torch.equal(a, b), name
        assert a.shape == x.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0, name
    assert torch.allclose(D.apply_shift("exposure -20%", x.clone()), x * 0.8)
