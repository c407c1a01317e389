"""INT8 variant of a trained model: a statically quantized QDQ ONNX export.

PyTorch's FX quantization inserts fake-quantize modules into the backbone (conv/BN folded first;
activations per-tensor uint8 from a histogram observer, weights per-channel symmetric int8),
calibrates the activation ranges on training-split images, and exports them as ONNX
QuantizeLinear/DequantizeLinear pairs, which ONNX Runtime fuses into integer kernels (VNNI where
the CPU has it). Input normalisation, the head, the temperature and the CAM features' placement
stay float, so the file has the FP32 export's inputs, outputs and metadata.

Whether the variant may serve is decided elsewhere, by ONNX Runtime itself: the training service
scores the validation split with both files (`int8_gate.json` + `int8_gate.u8`, written here)
and registers the variant with that parity gate's verdict."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List

import torch

from .models import XrayClassifier

GATE_FILE = "int8_gate.json"
GATE_INPUTS = "int8_gate.u8"


def _qconfig_mapping():
    from torch.ao.quantization import FakeQuantize, HistogramObserver, MovingAveragePerChannelMinMaxObserver, \
        QConfig, QConfigMapping
    from torch.ao.quantization.fake_quantize import FixedQParamsFakeQuantize
    from torch.ao.quantization.qconfig import default_reuse_input_qconfig
    from torch.ao.quantization.qconfig_mapping import _FIXED_QPARAMS_OP_TO_OBSERVER

    # Plain FakeQuantize modules (not the fused observer+fake-quant op of the default QAT mapping)
    # are what torch.onnx exports as QuantizeLinear/DequantizeLinear. uint8 activations without
    # reduce_range: ONNX Runtime's x86 kernels (VNNI) do not need the fbgemm headroom.
    act = FakeQuantize.with_args(observer=HistogramObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
                                 qscheme=torch.per_tensor_affine, reduce_range=False)
    weight = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
                                    dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)
    qconfig = QConfig(activation=act, weight=weight)
    mapping = QConfigMapping().set_global(qconfig).set_object_type("reshape", default_reuse_input_qconfig)
    # sigmoid, tanh, hardsigmoid, softmax: fixed output ranges, as FX requires.
    for op, observer in _FIXED_QPARAMS_OP_TO_OBSERVER.items():
        mapping.set_object_type(op, QConfig(activation=FixedQParamsFakeQuantize.with_args(observer=observer),
                                            weight=weight))
    return mapping


def quantized_copy(model: XrayClassifier, calibration_u8: torch.Tensor, batch_size: int = 32) -> XrayClassifier:
    """A CPU float32 copy of `model` whose backbone carries calibrated fake-quantize modules
    (observers off, fake quantization on): its outputs are what the INT8 graph computes, and
    exporting it writes QDQ ONNX. `calibration_u8` is [N,1,S,S] uint8 training-split images."""
    from torch.ao.quantization import disable_fake_quant, disable_observer, enable_fake_quant, enable_observer
    from torch.ao.quantization.quantize_fx import fuse_fx, prepare_qat_fx

    if int(calibration_u8.shape[0]) == 0:
        raise ValueError("INT8 calibration needs at least one training image")
    clone = copy.deepcopy(model).to(device="cpu", dtype=torch.float32, memory_format=torch.contiguous_format).eval()
    size = int(calibration_u8.shape[-1])
    with torch.no_grad():
        backbone_input = clone.crop_input(calibration_u8[:1].float() / 255.0)
    folded = fuse_fx(clone.backbone.eval())  # conv + BN (+ ReLU) folded with the running statistics
    prepared = prepare_qat_fx(folded.train(), _qconfig_mapping(), (backbone_input,))
    prepared.apply(disable_fake_quant)
    prepared.apply(enable_observer)
    prepared.eval()
    clone.backbone = prepared
    with torch.no_grad():
        for start in range(0, int(calibration_u8.shape[0]), batch_size):
            x = calibration_u8[start:start + batch_size].cpu().float() / 255.0
            if tuple(x.shape[-2:]) != (size, size):
                raise ValueError("calibration images must all have the input size")
            clone.features(x)  # the model's own normalisation and crop, so the ranges are the served ones
    prepared.apply(disable_observer)
    prepared.apply(enable_fake_quant)
    return clone


def scalarise_qdq(proto: Any) -> int:
    """torch.onnx writes per-tensor scales and zero points as 1-element tensors; ONNX Runtime's
    fused QLinear kernels require scalars. Returns how many it reshaped."""
    inits = {t.name: t for t in proto.graph.initializer}
    consts = {n.output[0]: n for n in proto.graph.node if n.op_type == "Constant"}
    fixed = 0
    for node in proto.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for name in node.input[1:3]:
            tensor = inits.get(name)
            if tensor is None and name in consts:
                tensor = next((a.t for a in consts[name].attribute if a.name == "value"), None)
            if tensor is not None and list(tensor.dims) == [1]:
                del tensor.dims[:]
                fixed += 1
    return fixed


def fold_weight_quantizers(proto: Any) -> int:
    """Stores each constant weight as the integers its QuantizeLinear makes of it, feeding the
    DequantizeLinear directly (the layout ONNX Runtime's own quantizer writes). torch.onnx leaves
    the float weights with a QuantizeLinear each, so the file is as large as the FP32 one; ORT
    folds them at load into the same integers (ONNX semantics: x / scale rounded half to even, plus
    the zero point, saturated; float32 arithmetic). Returns how many it folded."""
    import numpy as np
    from onnx import numpy_helper

    inits = {t.name: t for t in proto.graph.initializer}
    consts = {n.output[0]: n for n in proto.graph.node if n.op_type == "Constant"}
    # torch.onnx shares equal constants (e.g. the zero points) through Identity nodes.
    aliases = {n.output[0]: n.input[0] for n in proto.graph.node if n.op_type == "Identity"}

    def value(name: str):
        while name in aliases:
            name = aliases[name]
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = consts.get(name)
        tensor = next((a.t for a in node.attribute if a.name == "value"), None) if node is not None else None
        return numpy_helper.to_array(tensor) if tensor is not None else None

    uses: Dict[str, int] = {}
    for node in proto.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    folded, drop_nodes, drop_inits, renamed = 0, [], set(), {}
    for node in proto.graph.node:
        if node.op_type != "QuantizeLinear" or len(node.input) < 3 or node.input[0] not in inits:
            continue
        w, scale, zero = value(node.input[0]), value(node.input[1]), value(node.input[2])
        if w is None or scale is None or zero is None or w.dtype != np.float32 or zero.dtype not in (np.int8, np.uint8):
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * w.ndim
            shape[axis % w.ndim] = scale.size
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        info = np.iinfo(zero.dtype)
        q = np.rint(w / scale.astype(np.float32)).astype(np.int32) + zero.astype(np.int32)
        folded_name = f"{node.output[0]}_int"
        proto.graph.initializer.append(numpy_helper.from_array(np.clip(q, info.min, info.max).astype(zero.dtype), folded_name))
        renamed[node.output[0]] = folded_name
        drop_nodes.append(node)
        if uses.get(node.input[0], 0) == 1:
            drop_inits.add(node.input[0])
        folded += 1
    for node in drop_nodes:
        proto.graph.node.remove(node)
    for node in proto.graph.node:  # the DequantizeLinear nodes now read the integers directly
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    for tensor in [t for t in proto.graph.initializer if t.name in drop_inits]:
        proto.graph.initializer.remove(tensor)
    return folded


def qdq_node_count(path: Path) -> int:
    import onnx

    return sum(1 for n in onnx.load(str(path)).graph.node if n.op_type == "QuantizeLinear")


def write_gate_inputs(out_dir: Path, images_u8: torch.Tensor, labels: List[float]) -> Dict[str, Any]:
    """The validation split at the input size (raw uint8, N x S x S, in this order) and its labels:
    what the training service scores with both ONNX files for the INT8 parity gate."""
    n = int(images_u8.shape[0])
    size = int(images_u8.shape[-1])
    raw = images_u8.reshape(n, size * size).to(torch.uint8).cpu().contiguous().numpy().tobytes()
    (out_dir / GATE_INPUTS).write_bytes(raw)
    desc = {"format": "xray-int8-gate/1", "input_size": size, "n": n, "inputs": GATE_INPUTS,
            "labels": [int(v) for v in labels]}
    (out_dir / GATE_FILE).write_text(json.dumps(desc))
    return desc
