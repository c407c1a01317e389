"""INT8 variant: QDQ export that ONNX Runtime runs, close to the FP32 model, and the job's gate inputs."""
import json

import numpy as np
import onnx
import pytest
import torch

from trainer.export import export_onnx, read_onnx_metadata
from trainer.models import build_model
from trainer.protocol import SpecError, validate_job_spec
from trainer.quantize import GATE_FILE, fold_weight_quantizers, quantized_copy, scalarise_qdq

from .conftest import ListEmitter, base_spec
from .test_export import run_onnx


def _export(model, path, size, meta=None):
    export_onnx(model, 1.0, path, size, 17, meta or {"input_size": size})
    proto = onnx.load(str(path))
    scalarise_qdq(proto)
    onnx.save(proto, str(path))
    return proto


@pytest.mark.parametrize("crop", [None, {"top": 0.0, "bottom": 0.75, "left": 0.125, "right": 0.875}])
def test_int8_export_runs_in_onnxruntime_close_to_fp32(tmp_path, crop):
    torch.manual_seed(0)
    size = 64
    model = build_model("compact_resnet", 0.0, input_crop=crop, input_size=size).eval()
    # Train-ish BN statistics, so the folded weights are not the identity.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    gen = torch.Generator().manual_seed(1)
    calib = torch.randint(0, 256, (48, 1, size, size), generator=gen, dtype=torch.uint8)
    quantized = quantized_copy(model, calib)
    fp32_path, int8_path = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    _export(model, fp32_path, size)
    proto = _export(quantized, int8_path, size)

    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") >= 10 and ops.count("DequantizeLinear") >= 10
    consts = {n.output[0]: n for n in proto.graph.node if n.op_type == "Constant"}
    inits = {t.name: t for t in proto.graph.initializer}
    for node in proto.graph.node:
        per_channel = any(a.name == "axis" for a in node.attribute)  # the weights
        if node.op_type == "QuantizeLinear" and not per_channel:  # activations: scalar scales (ORT's fused kernels need them)
            scale = inits.get(node.input[1]) or next(a.t for a in consts[node.input[1]].attribute if a.name == "value")
            assert list(scale.dims) == []

    x = torch.randint(0, 256, (6, 1, size, size), generator=gen, dtype=torch.uint8).float() / 255.0
    p32, dims32 = run_onnx(fp32_path, x.numpy(), tmp_path)
    p8, dims8 = run_onnx(int8_path, x.numpy(), tmp_path)
    assert dims8 == dims32
    with torch.no_grad():
        simulated = torch.sigmoid(quantized(x)).view(-1).numpy()
    # ORT's integer kernels compute what the fake-quantized graph simulates (up to rounding).
    assert np.max(np.abs(p8 - simulated)) < 0.01
    assert np.max(np.abs(p8 - p32)) < 0.05
    assert not np.allclose(p8, p32, atol=1e-7)  # it really is another graph

    # The weights stored as their integers: a quarter of the bytes, and the very numbers ORT makes
    # of the float weights when it folds their QuantizeLinear at load.
    weight_quantizers = sum(1 for n in proto.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in inits)
    assert weight_quantizers >= 5
    assert fold_weight_quantizers(proto) == weight_quantizers
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in {t.name for t in proto.graph.initializer} for n in proto.graph.node)
    assert {t.data_type for t in proto.graph.initializer if t.name.endswith("_int")} == {onnx.TensorProto.INT8}
    onnx.checker.check_model(proto)
    folded_path = tmp_path / "int8.folded.onnx"
    onnx.save(proto, str(folded_path))
    assert folded_path.stat().st_size < 0.45 * int8_path.stat().st_size
    p8_folded, _ = run_onnx(folded_path, x.numpy(), tmp_path)
    assert np.array_equal(p8_folded, p8)


def test_int8_needs_the_onnx_export(dataset, tmp_path):
    with pytest.raises(SpecError, match="export.int8"):
        validate_job_spec(base_spec(dataset, tmp_path, export={"onnx": False, "int8": True}))
    with pytest.raises(SpecError, match="int8_calibration"):
        validate_job_spec(base_spec(dataset, tmp_path, export={"onnx": True, "int8": True, "int8_calibration": 1}))


def test_job_exports_the_int8_variant_and_its_gate_inputs(dataset, tmp_path):
    from trainer.train import run_job

    em = ListEmitter()
    spec = base_spec(dataset, tmp_path, hyperparameters={"epochs": 1},
                     export={"onnx": True, "parity_samples": 4, "int8": True, "int8_calibration": 16})
    assert run_job(spec, em) == 0, em.events[-1]
    finished = em.of("finished")[0]
    paths = finished["artifacts"]
    assert {"onnx", "onnx_int8", "int8_gate"} <= set(paths)
    meta = read_onnx_metadata(paths["onnx_int8"])
    assert meta["variant"] == "int8" and meta["int8_calibration_images"] == "16"
    assert read_onnx_metadata(paths["onnx"]).get("variant") is None
    gate = json.loads((tmp_path / GATE_FILE).read_text())
    size = spec["input_size"]
    assert gate["n"] == 16 and gate["input_size"] == size and len(gate["labels"]) == 16
    assert (tmp_path / gate["inputs"]).stat().st_size == 16 * size * size
    model_json = json.loads((tmp_path / "model.json").read_text())
    assert model_json["files"]["onnx_int8"]["file"] == "model.int8.onnx"
