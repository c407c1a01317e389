"""hyperparameters.input_crop: the backbone sees a box of the input at full resolution, while the
ONNX keeps the serving contract (the whole letterboxed input in, `features` on a full-frame grid)."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainer.evaluate import sigmoid
from trainer.export import ExportModel, crop_feature_canvas, onnx_io, read_onnx_metadata
from trainer.models import build_model, crop_pixels
from trainer.protocol import SpecError, searchable_keys, validate_hyperparameters
from trainer.train import run_job, torch_load

from .conftest import ListEmitter, base_spec
from .test_export import run_onnx

BOX = {"top": 0.2, "bottom": 0.8, "left": 0.25, "right": 0.75}
CROP_SIZE = 48


def serving_cam(w: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """src/core/ml/cam.ts classActivationMap: ReLU(sum_c w_c f_c) / max (no bias), per image."""
    cam = np.maximum(np.einsum("c,nchw->nhw", w, feats), 0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)


# --------------------------------------------------------------------------- the spec


def test_the_spec_takes_null_or_a_box():
    assert validate_hyperparameters({})["input_crop"] is None
    assert validate_hyperparameters({"input_crop": None})["input_crop"] is None
    assert validate_hyperparameters({"input_crop": {"top": 0, "bottom": 1, "left": 0.1, "right": 0.9}})[
        "input_crop"] == {"top": 0.0, "bottom": 1.0, "left": 0.1, "right": 0.9}


@pytest.mark.parametrize("box, message", [
    ({"top": 0.5, "bottom": 0.6, "left": 0, "right": 1}, "bottom - top must be >= 0.3"),
    ({"top": 0.1, "bottom": 0.9, "left": 0.7, "right": 0.2}, "right - left must be >= 0.3"),
    ({"top": 0.6, "bottom": 0.4, "left": 0, "right": 1}, "bottom - top"),
    ({"top": -0.1, "bottom": 0.9, "left": 0, "right": 1}, "input_crop.top: must be >= 0"),
    ({"top": 0.1, "bottom": 1.2, "left": 0, "right": 1}, "input_crop.bottom: must be <= 1"),
    ({"top": 0.1, "bottom": 0.9, "left": 0}, "missing right"),
    ({"top": 0.1, "bottom": 0.9, "left": 0, "right": 1, "margin": 0.1}, "unknown field(s) margin"),
    ({"top": "0.1", "bottom": 0.9, "left": 0, "right": 1}, "input_crop.top: must be a number"),
    ([0.1, 0.9, 0, 1], "input_crop: must be an object"),
])
def test_the_spec_refuses_bad_boxes(box, message):
    with pytest.raises(SpecError, match="hyperparameters.input_crop") as err:
        validate_hyperparameters({"input_crop": box})
    assert message in str(err.value)


def test_a_study_cannot_search_the_crop():
    assert "input_crop" not in searchable_keys()


# --------------------------------------------------------------------------- the model


def test_pixel_bounds_and_the_feature_grid():
    assert crop_pixels(BOX, 48) == (10, 38, 12, 36)
    assert crop_pixels({"top": 0, "bottom": 1, "left": 0, "right": 1}, 224) == (0, 224, 0, 224)
    # 7x7 crop map of a 0.6 x 0.8 box at 224 px: cells of about the crop's size, box edges rounded.
    canvas = crop_feature_canvas(crop_pixels({"top": 0.1, "bottom": 0.7, "left": 0.1, "right": 0.9}, 224), 224, 7, 7)
    assert canvas == {"grid": [12, 9], "box": {"top": 1, "bottom": 8, "left": 1, "right": 8}}


def test_the_backbone_sees_the_crop_resized_to_the_full_input():
    torch.manual_seed(0)
    model = build_model("compact_cnn", 0.0, BOX, CROP_SIZE).eval()
    plain = build_model("compact_cnn", 0.0).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, CROP_SIZE, CROP_SIZE)
    crop = F.interpolate(x[:, :, 10:38, 12:36], size=(CROP_SIZE, CROP_SIZE), mode="bilinear", align_corners=False)
    with torch.no_grad():
        assert torch.allclose(model(x), plain(crop))
        # What lies outside the box does not matter.
        y = x.clone()
        y[:, :, :10] = 1.0
        y[:, :, :, 36:] = 0.0
        assert torch.allclose(model(y), model(x))
    with pytest.raises(ValueError, match="crops 48x48 inputs"):
        model(torch.rand(1, 1, 32, 32))


@pytest.mark.parametrize("name, box", [
    ("compact_cnn", BOX),  # the crop's 3x3 map fits the box's cells: padding only
    ("compact_cnn", {"top": 0.05, "bottom": 0.95, "left": 0.3, "right": 0.7}),  # resampled into the box
    ("compact_resnet", {"top": 0.1, "bottom": 0.9, "left": 0.0, "right": 0.6}),
])
def test_the_export_puts_the_crop_map_on_a_full_frame_grid(name, box):
    torch.manual_seed(1)
    model = build_model(name, 0.0, box, 64).eval()
    module = ExportModel(model, 2.0).eval()
    x = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        probs, canvas = module(x)
        crop_feats = model.features(x)
        # The probability is the training model's, from the crop's own map (not the canvas).
        assert torch.allclose(probs, torch.sigmoid(model(x) / 2.0))
    H, W = module.canvas["grid"]
    box_cells = module.canvas["box"]
    t, b, l, r = box_cells["top"], box_cells["bottom"], box_cells["left"], box_cells["right"]
    assert list(canvas.shape) == [3, model.feature_channels, H, W]
    assert (H, W) != tuple(crop_feats.shape[-2:]) or (t, l) != (0, 0)
    outside = canvas.clone()
    outside[:, :, t:b, l:r] = 0
    assert float(outside.abs().max()) == 0.0
    inside = canvas[:, :, t:b, l:r]
    if tuple(inside.shape[-2:]) == tuple(crop_feats.shape[-2:]):
        assert torch.equal(inside, crop_feats)
    # The serving side's normalised CAM: the crop's own map inside the box, 0 outside.
    w = model.classifier.weight.detach().double().numpy().reshape(-1)
    full = serving_cam(w, canvas.double().numpy())
    own = serving_cam(w, F.interpolate(crop_feats, size=(b - t, r - l), mode="bilinear",
                                       align_corners=False).double().numpy())
    assert np.allclose(full[:, t:b, l:r], own, atol=1e-6)
    assert full[:, :t].max(initial=0) == 0 and full[:, b:].max(initial=0) == 0
    assert full.max() == pytest.approx(1.0)


# --------------------------------------------------------------------------- a run


@pytest.fixture(scope="module")
def cropped(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("crop-run")
    em = ListEmitter()
    spec = base_spec(dataset, out, input_size=CROP_SIZE, hyperparameters={"epochs": 2, "input_crop": BOX},
                     export={"onnx": True, "opset": 17, "parity_samples": 8})
    code = run_job(spec, em)
    assert code == 0, em.events[-1]
    return out, em


def test_a_cropped_run_exports_the_whole_input_contract(cropped, tmp_path):
    out, em = cropped
    fin = em.of("finished")[0]
    parity = fin["parity"]
    assert parity["n"] == 8 and parity["method"] in ("onnxruntime", "deferred")
    if parity["method"] == "onnxruntime":
        assert parity["ok"] and parity["features_max_abs_diff"] <= 1e-4
    io = onnx_io(out / "model.onnx")
    assert io["inputs"] == [("input", ["batch", 1, CROP_SIZE, CROP_SIZE])]
    # 48 px crop -> compact_cnn's 3x3 map; the 28x24 px box is 3x3 cells of a 5x6 full-frame grid.
    assert io["outputs"][1][1] == ["batch", 128, 5, 6]
    samples = json.loads((out / "parity_samples.json").read_text())
    from PIL import Image

    x = np.stack([np.asarray(Image.open(out / it["input_png"]), dtype=np.float32)[None] / 255.0
                  for it in samples["items"]])
    probs, feat_dims = run_onnx(out / "model.onnx", x, tmp_path)
    assert np.max(np.abs(probs - np.array([it["probability"] for it in samples["items"]]))) <= samples["tolerance"]
    assert feat_dims == [8, 128, 5, 6]


def test_a_cropped_run_records_the_crop(cropped):
    out, _ = cropped
    meta = json.loads((out / "model.json").read_text())
    crop = meta["input_crop"]
    assert {k: crop[k] for k in BOX} == BOX
    assert crop["pixels"] == {"top": 10, "bottom": 38, "left": 12, "right": 36}
    assert crop["features_grid"] == [5, 6] and crop["crop_feature_map"] == [3, 3]
    assert crop["features_box"] == {"top": 1, "bottom": 4, "left": 2, "right": 5}
    assert meta["hyperparameters"]["input_crop"] == BOX
    assert meta["feature_map"] == [128, 5, 6] and meta["outputs"]["features"] == [-1, 128, 5, 6]
    assert meta["input"]["shape"] == [-1, 1, CROP_SIZE, CROP_SIZE]
    onnx_meta = read_onnx_metadata(out / "model.onnx")
    assert json.loads(onnx_meta["input_crop"]) == crop
    assert json.loads(onnx_meta["feature_map"]) == [128, 5, 6]
    sd = torch_load(str(out / "state_dict.pt"))
    assert sd["input_crop"] == BOX
    model = build_model("compact_cnn", 0.1, sd["input_crop"], sd["input_size"])
    model.load_state_dict(sd["state_dict"])


def test_a_run_without_a_crop_records_none(trained):
    out, _ = trained
    assert json.loads((out / "model.json").read_text())["input_crop"] is None
    assert read_onnx_metadata(out / "model.onnx")["input_crop"] == "null"


def test_resuming_with_another_crop_is_refused(dataset, tmp_path):
    from .test_train import CancelAfterChecks

    first = ListEmitter()
    spec = base_spec(dataset, tmp_path / "a", input_size=CROP_SIZE, hyperparameters={"epochs": 2, "max_train_batches": 3, "input_crop": BOX})
    assert run_job(spec, first, CancelAfterChecks(3)) == 0
    checkpoint = first.of("cancelled")[0]["checkpoint"]
    for other in (None, {**BOX, "top": BOX["top"] + 0.05}):
        resumed = ListEmitter()
        again = base_spec(dataset, tmp_path / "b", input_size=CROP_SIZE, hyperparameters={"epochs": 2, "max_train_batches": 3, "input_crop": other})
        again["resume_from"] = checkpoint
        assert run_job(again, resumed) != 0
        assert "resume_from: checkpoint has input_crop=" in json.dumps(resumed.events[-1])
