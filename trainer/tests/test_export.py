"""ONNX contract: two outputs, metadata, and numerical parity with torch.

Parity runs with the onnxruntime Python package when it is importable, otherwise with
onnxruntime-node from the project's node_modules (the runtime the serving side uses), through
parity_samples.json exactly as the TypeScript side would. Skipped only when neither exists."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from trainer.evaluate import sigmoid
from trainer.export import PARITY_TOLERANCE, onnx_io, onnxruntime_available, read_onnx_metadata
from trainer.train import torch_load

ROOT = Path(__file__).resolve().parents[2]
NODE_RUNNER = r"""
const ort = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const [, , , model, input, n, s] = process.argv;
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ input: new ort.Tensor('float32', data, [Number(n), 1, Number(s), Number(s)]) });
  process.stdout.write(JSON.stringify({ probability: Array.from(out.probability.data),
    probabilityDims: out.probability.dims, featuresDims: out.features.dims }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def run_onnx(model_path: Path, x: np.ndarray, tmp_path: Path):
    """(probabilities [N], features dims) from onnxruntime (Python) or onnxruntime-node."""
    if onnxruntime_available():
        import onnxruntime as ort

        probs, feats = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"]).run(
            ["probability", "features"], {"input": x})
        return probs.reshape(-1), list(feats.shape)
    node = shutil.which("node")
    ort_node = ROOT / "node_modules" / "onnxruntime-node"
    if node is None or not ort_node.is_dir():
        pytest.skip("no ONNX runtime: neither the onnxruntime Python package nor node + onnxruntime-node")
    (tmp_path / "input.bin").write_bytes(x.astype("<f4").tobytes())
    (tmp_path / "runner.cjs").write_text(NODE_RUNNER)
    proc = subprocess.run([node, str(tmp_path / "runner.cjs"), str(ort_node), str(model_path),
                           str(tmp_path / "input.bin"), str(x.shape[0]), str(x.shape[-1])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["probabilityDims"] == [x.shape[0], 1]
    return np.asarray(out["probability"]), out["featuresDims"]


def test_onnx_has_the_contracted_inputs_outputs_and_metadata(trained):
    out, em = trained
    path = out / "model.onnx"
    onnx.checker.check_model(onnx.load(str(path)))
    io = onnx_io(path)
    assert io["inputs"] == [("input", ["batch", 1, 24, 24])]
    assert [name for name, _ in io["outputs"]] == ["probability", "features"]
    assert io["outputs"][0][1] == ["batch", 1] and io["outputs"][1][1][:2] == ["batch", 128]
    meta = read_onnx_metadata(path)
    fin = em.of("finished")[0]
    for key in ("classifier_weight", "classifier_bias", "input_size", "threshold", "temperature", "model_name",
                "preprocessing_hash", "dataset_version"):
        assert key in meta, key
    assert json.loads(meta["threshold"]) == fin["threshold"]
    assert json.loads(meta["temperature"]) == fin["temperature"]
    assert meta["model_name"] == "compact_cnn" and json.loads(meta["input_size"]) == 24
    assert meta["preprocessing_hash"] == "prep-24"
    # The head in the metadata is the trained head divided by T.
    sd = torch_load(str(out / "state_dict.pt"))
    w = sd["state_dict"]["classifier.weight"].double().numpy().reshape(-1)
    assert np.allclose(json.loads(meta["classifier_weight"]), w / fin["temperature"])
    assert json.loads(meta["classifier_bias"]) == pytest.approx(
        float(sd["state_dict"]["classifier.bias"]) / fin["temperature"])


def test_onnx_matches_torch_on_the_parity_samples(trained, tmp_path):
    out, em = trained
    parity = em.of("finished")[0]["parity"]
    assert parity["n"] == 8
    assert parity["method"] in ("onnxruntime", "deferred")
    if parity["method"] == "onnxruntime":
        assert parity["ok"] and parity["max_abs_diff"] <= PARITY_TOLERANCE
    samples = json.loads((out / "parity_samples.json").read_text())
    assert samples["input_size"] == 24 and len(samples["items"]) == 8
    x = np.stack([np.asarray(Image.open(out / it["input_png"]), dtype=np.float32)[None] / 255.0
                  for it in samples["items"]])
    probs, feat_dims = run_onnx(out / "model.onnx", x, tmp_path)
    expected = np.array([it["probability"] for it in samples["items"]])
    assert np.max(np.abs(probs - expected)) <= samples["tolerance"]
    assert feat_dims == [8, 128, 2, 2]


def test_cam_from_metadata_reproduces_the_probability(trained, tmp_path):
    """The serving side's CAM recipe: mean over space of (w . features) + b is the calibrated logit."""
    out, _ = trained
    import torch

    from trainer.export import export_model
    from trainer.models import build_model

    sd = torch_load(str(out / "state_dict.pt"))
    model = build_model("compact_cnn", 0.1)
    model.load_state_dict(sd["state_dict"])
    meta = read_onnx_metadata(out / "model.onnx")
    w = np.asarray(json.loads(meta["classifier_weight"]))
    b = json.loads(meta["classifier_bias"])
    x = torch.rand(3, 1, 24, 24)
    probs, feats = export_model(model, sd["temperature"])(x)
    cam = np.einsum("c,nchw->nhw", w, feats.detach().double().numpy()) + b
    assert np.allclose(sigmoid(cam.mean(axis=(1, 2))), probs.detach().numpy().reshape(-1), atol=1e-5)
