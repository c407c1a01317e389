"""ONNX export with the temperature baked in, model metadata, and the torch-vs-ONNX parity check."""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .models import XrayClassifier

log = logging.getLogger("trainer.export")

INPUT_NAME = "input"
OUTPUT_NAMES = ("probability", "features")
PARITY_TOLERANCE = 1e-4
PARITY_DIR = "parity"
PARITY_FILE = "parity_samples.json"


def _round(v: float) -> int:
    return int(math.floor(v + 0.5))


def crop_feature_canvas(crop_px: Tuple[int, int, int, int], size: int, h: int, w: int) -> Dict[str, Any]:
    """Where an input crop's h x w feature map lies on a full-frame feature grid.

    The grid keeps the crop's cell size (about h / crop height per input side, rounded), so the
    crop's map is resampled little or not at all; the box edges are the crop's pixel bounds rounded
    to that grid (off by at most half a cell). Returns {"grid": [H, W], "box": {top, bottom, left,
    right}} in grid cells, end exclusive."""
    t, b, l, r = crop_px
    H = max(h, _round(h * size / (b - t)))
    W = max(w, _round(w * size / (r - l)))
    r0 = min(H - 1, _round(t * H / size))
    c0 = min(W - 1, _round(l * W / size))
    r1 = max(r0 + 1, min(H, _round(b * H / size)))
    c1 = max(c0 + 1, min(W, _round(r * W / size)))
    return {"grid": [H, W], "box": {"top": r0, "bottom": r1, "left": c0, "right": c1}}


def _placement(n: int, total: int, start: int, end: int) -> torch.Tensor:
    """[total, n]: a length-n axis resized bilinearly (align_corners=False, as F.interpolate) to
    end - start cells and placed at [start, end) of a length-`total` axis of zeros."""
    resize = F.interpolate(torch.eye(n, dtype=torch.float64).view(1, 1, n, n), size=(end - start, n),
                           mode="bilinear", align_corners=False)[0, 0]
    out = torch.zeros(total, n, dtype=torch.float64)
    out[start:end] = resize
    return out.float()


class FullFrame(nn.Module):
    """A cropping model's feature map placed on its full-frame grid (crop_feature_canvas): resized
    bilinearly (align_corners=False) to the crop box's cells and zero outside it, as one constant
    linear map per axis (rows @ feats @ cols^T, so an ONNX output keeps static dims). Holds only
    the two maps, not the model (the export and the ensemble place maps with it)."""

    def __init__(self, model: XrayClassifier):
        super().__init__()
        if model.crop_pixels is None:
            raise ValueError("FullFrame needs a model with an input crop")
        size = int(model.input_size)
        training = model.training
        model.eval()
        with torch.no_grad():
            p = next(model.parameters())
            h, w = model.features(torch.zeros(1, 1, size, size, device=p.device, dtype=p.dtype)).shape[-2:]
        model.train(training)
        self.crop_map: Tuple[int, int] = (int(h), int(w))
        self.canvas: Dict[str, Any] = crop_feature_canvas(model.crop_pixels, size, int(h), int(w))
        box = self.canvas["box"]
        self.register_buffer("rows", _placement(int(h), self.canvas["grid"][0], box["top"], box["bottom"]).to(p))
        self.register_buffer("cols", _placement(int(w), self.canvas["grid"][1], box["left"], box["right"]).t().to(p))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.rows, feats), self.cols)


class ExportModel(nn.Module):
    """input [N,1,S,S] in [0,1] -> (probability [N,1] = sigmoid(logit / T), features [N,C,h,w]).

    With an input crop the probability comes from the crop's own feature map, exactly as in
    training, and `features` is that map placed on a full-frame grid (FullFrame). The serving side
    draws the map over the whole input and its CAM is ReLU(sum_c w_c f_c) without the bias, so
    zero features are a neutral 0 there and the normalised map inside the box is the crop's own CAM."""

    def __init__(self, model: XrayClassifier, temperature: float):
        super().__init__()
        self.model = model
        self.register_buffer("inv_temperature", torch.tensor(1.0 / temperature, dtype=torch.float32))
        self.place: Optional[FullFrame] = FullFrame(model) if model.crop_pixels is not None else None
        self.canvas: Optional[Dict[str, Any]] = self.place.canvas if self.place is not None else None
        self.crop_map: Optional[Tuple[int, int]] = self.place.crop_map if self.place is not None else None

    def full_frame(self, feats: torch.Tensor) -> torch.Tensor:
        """The crop's feature map on the full-frame grid (feats itself without a crop)."""
        return feats if self.place is None else self.place(feats)

    def forward(self, x: torch.Tensor):
        feats = self.model.features(x)
        logit = self.model.head(feats)  # from the crop's map, never the padded canvas
        return torch.sigmoid(logit * self.inv_temperature), self.full_frame(feats)


def crop_metadata(model: XrayClassifier) -> Optional[Dict[str, Any]]:
    """The input crop as model.json and the ONNX metadata record it (None without one): the box in
    input fractions, its pixel bounds and where the crop's feature map sits on the `features` grid."""
    if model.crop_pixels is None:
        return None
    probe = FullFrame(model)
    t, b, l, r = model.crop_pixels
    return {**model.input_crop, "pixels": {"top": t, "bottom": b, "left": l, "right": r},
            "crop_feature_map": list(probe.crop_map), "features_grid": probe.canvas["grid"],
            "features_box": probe.canvas["box"]}


def exported_feature_map(model: XrayClassifier, input_size: int) -> List[int]:
    """[C, h, w] of the exported `features` output (the full-frame grid when the model crops)."""
    if model.crop_pixels is not None:
        return [model.feature_channels, *FullFrame(model).canvas["grid"]]
    training = model.training
    model.eval()
    with torch.no_grad():
        p = next(model.parameters())
        shape = model.features(torch.zeros(1, 1, input_size, input_size, device=p.device, dtype=p.dtype)).shape
    model.train(training)
    return [int(v) for v in shape[1:]]


def export_model(model: XrayClassifier, temperature: float) -> ExportModel:
    """A CPU float32 eval-mode copy for export and reference outputs (training copy untouched)."""
    clone = copy.deepcopy(model).to(device="cpu", dtype=torch.float32, memory_format=torch.contiguous_format)
    return ExportModel(clone, temperature).eval()


def max_onnx_opset() -> int:
    try:
        from torch.onnx import _constants
        return int(getattr(_constants, "ONNX_MAX_OPSET", getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 17)))
    except Exception:  # private module moved: assume what every supported torch handles
        return 17


def classifier_metadata(model: XrayClassifier, temperature: float) -> Dict[str, Any]:
    """Linear head divided by T, so CAM = sum_c w_c * features_c + b is on the calibrated logit scale."""
    w = (model.classifier.weight.detach().double().cpu().view(-1) / temperature).tolist()
    b = float(model.classifier.bias.detach().double().cpu().item() / temperature)
    return {"classifier_weight": w, "classifier_bias": b}


def export_onnx(model: XrayClassifier, temperature: float, path: Path, input_size: int, opset: int,
                metadata: Dict[str, Any]) -> None:
    """Write an ONNX file with input `input` [N,1,S,S] (dynamic N) and outputs `probability`,
    `features`; metadata values are stored as strings (non-strings JSON-encoded). Verified with
    onnx.checker before it is kept."""
    import onnx

    if opset > max_onnx_opset():
        raise ValueError(f"export.opset {opset} is above what this torch can export ({max_onnx_opset()})")
    module = export_model(model, temperature)
    dummy = torch.rand(2, 1, input_size, input_size)
    kwargs: Dict[str, Any] = dict(
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAMES[0]: {0: "batch"}, OUTPUT_NAMES[1]: {0: "batch"}},
        opset_version=opset,
        do_constant_folding=True,
    )
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # torch >= 2.9 defaults to the dynamo exporter; keep the TorchScript one
    tmp = path.with_name(path.name + ".tmp")
    with torch.no_grad():
        torch.onnx.export(module, (dummy,), str(tmp), **kwargs)
    proto = onnx.load(str(tmp))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        return True
    except Exception:
        return False


def parity_check(onnx_path: Path, model: XrayClassifier, temperature: float, images_u8: torch.Tensor,
                 files: List[str], labels: List[float], out_dir: Path) -> Dict[str, Any]:
    """Reference outputs for up to 32 images at the exact input size.

    Always writes parity_samples.json plus the inputs as 8-bit PNGs (parity/NNN.png), so another
    runtime (the TypeScript side, onnxruntime-node) can repeat the comparison byte-exactly. Runs the
    comparison here too when the onnxruntime Python package is importable; otherwise the result
    says method "deferred"."""
    return module_parity_check(onnx_path, export_model(model, temperature), images_u8, files, labels, out_dir)


def module_parity_check(onnx_path: Path, module: nn.Module, images_u8: torch.Tensor, files: List[str],
                        labels: List[float], out_dir: Path) -> Dict[str, Any]:
    """parity_check for any export module returning (probability, features): a single model or an ensemble."""
    n = int(images_u8.shape[0])
    if n == 0:
        return {"method": "none", "n": 0, "max_abs_diff": None, "ok": None}
    x = images_u8.cpu().float() / 255.0
    with torch.no_grad():
        probs, feats = module(x)
    (out_dir / PARITY_DIR).mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        rel = f"{PARITY_DIR}/{i:03d}.png"
        Image.fromarray(images_u8[i, 0].cpu().numpy()).save(out_dir / rel)
        items.append({"file": files[i], "input_png": rel, "label": int(labels[i]),
                      "probability": float(probs[i, 0])})
    (out_dir / PARITY_FILE).write_text(json.dumps({
        "input_size": int(x.shape[-1]), "tolerance": PARITY_TOLERANCE, "items": items}, indent=1))
    if not onnxruntime_available():
        return {"method": "deferred", "n": n, "max_abs_diff": None, "ok": None, "samples": PARITY_FILE}
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_probs, ort_feats = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
    diff = float(np.max(np.abs(ort_probs - probs.numpy())))
    fdiff = float(np.max(np.abs(ort_feats - feats.numpy())))
    return {"method": "onnxruntime", "n": n, "max_abs_diff": diff, "features_max_abs_diff": fdiff,
            "ok": diff <= PARITY_TOLERANCE, "samples": PARITY_FILE}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_onnx_metadata(path: Path) -> Dict[str, str]:
    import onnx

    proto = onnx.load(str(path))
    return {p.key: p.value for p in proto.metadata_props}


def onnx_io(path: Path) -> Dict[str, List[Optional[Any]]]:
    """Names and shapes (dim_param or int) of the graph's inputs and outputs."""
    import onnx

    graph = onnx.load(str(path)).graph

    def shape(v):
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    return {"inputs": [(v.name, shape(v)) for v in graph.input],
            "outputs": [(v.name, shape(v)) for v in graph.output]}
