"""Ensembles of finished jobs served as one ONNX model (trainer/ensemble.py).

Two tiny members with different architectures (compact_cnn: a 2x2 feature grid at 24 px,
compact_resnet: 1x1) are trained here; the ensemble job must export one graph whose probability is
sigmoid(mean member logit / T) and whose CAM (metadata weights over the concatenated features) is
exactly the mean of the members' CAMs. The ONNX graph runs in onnxruntime (Python) or, without it,
onnxruntime-node from node_modules, as in test_export.py."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from trainer.ensemble import run_ensemble_job, validate_ensemble_spec
from trainer.evaluate import sigmoid
from trainer.export import PARITY_TOLERANCE, onnx_io, onnxruntime_available, read_onnx_metadata
from trainer.models import build_model
from trainer.protocol import SpecError
from trainer.train import run_job, torch_load

from .conftest import SIZE, ListEmitter, base_spec

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
  process.stdout.write(JSON.stringify({ probability: Array.from(out.probability.data), features: Array.from(out.features.data),
    probabilityDims: out.probability.dims, featuresDims: out.features.dims }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def run_onnx(model_path: Path, x: np.ndarray, tmp_path: Path):
    """(probability [N,1], features [N,C,h,w]) from onnxruntime (Python) or onnxruntime-node."""
    if onnxruntime_available():
        import onnxruntime as ort

        return tuple(ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"]).run(
            ["probability", "features"], {"input": x}))
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
    return (np.asarray(out["probability"]).reshape(out["probabilityDims"]),
            np.asarray(out["features"]).reshape(out["featuresDims"]))


@pytest.fixture(scope="module")
def members(dataset, tmp_path_factory):
    """Two finished jobs on the same dataset: compact_cnn and compact_resnet (1-2 epochs, no ONNX)."""
    out = []
    for i, (model, epochs) in enumerate((("compact_cnn", 2), ("compact_resnet", 1))):
        d = tmp_path_factory.mktemp(f"member{i}")
        em = ListEmitter()
        assert run_job(base_spec(dataset, d, job_id=f"m{i}", model=model, seed=3 + i,
                                 hyperparameters={"epochs": epochs}), em) == 0, em.events[-1]
        out.append({"job_id": f"m{i}", "checkpoint": str(d / "checkpoint.pt"),
                    "temperature": em.of("finished")[0]["temperature"], "dir": d})
    return out


def ensemble_spec(dataset, out, members, **overrides):
    block = {"members": [{k: m[k] for k in ("job_id", "checkpoint", "temperature")} for m in members]}
    return base_spec(dataset, out, job_id="ens", ensemble=block, **overrides)


@pytest.fixture(scope="module")
def ensembled(dataset, external_dataset, members, tmp_path_factory):
    out = tmp_path_factory.mktemp("ens")
    em = ListEmitter()
    spec = ensemble_spec(dataset, out, members, threshold={"method": "robust"},
                         export={"onnx": True, "opset": 17, "parity_samples": 8},
                         test_dataset_dirs=[{"name": "ext", "dataset_dir": str(external_dataset)}])
    assert run_ensemble_job(spec, em) == 0, em.events[-1]
    return out, em


def member_models(members):
    """The members' best weights loaded independently of trainer/ensemble.py."""
    models = []
    for m in members:
        ck = torch_load(m["checkpoint"])
        net = build_model(ck["model_name"], ck["dropout"])
        net.load_state_dict(ck["best_model"] or ck["model"])
        models.append(net.eval())
    return models


def test_events_are_those_of_a_normal_run_without_epochs(ensembled):
    out, em = ensembled
    names = em.names()
    assert names[0] == "started" and names[-1] == "finished"
    assert names[1:3] == ["progress", "progress"]
    assert [e["split"] for e in em.of("evaluation")] == ["val", "test:internal", "test:ext"]
    assert sorted(e["kind"] for e in em.of("artifact")) == ["evaluation", "model_meta", "onnx", "state_dict"]
    assert "epoch" not in names and "checkpoint" not in names
    started, fin = em.of("started")[0], em.of("finished")[0]
    assert started["model"] == "ensemble" and started["epochs"] == 1 and started["steps_per_epoch"] == 2
    assert [p["step"] for p in em.of("progress")] == [1, 2]
    assert fin["best_epoch"] is None and 0 < fin["threshold"] < 1 and fin["temperature"] > 0
    assert fin["metrics"]["threshold_method"] == "robust" and len(fin["metrics"]["shifts"]) == 12
    assert set(fin["test_metrics"]) == {"test:internal", "test:ext"}
    assert fin["parity"]["method"] in ("onnxruntime", "deferred")
    if fin["parity"]["method"] == "onnxruntime":
        assert fin["parity"]["ok"] is True


def test_model_json_records_the_ensemble_and_a_cam_head_over_all_members(ensembled, members):
    out, em = ensembled
    meta = json.loads((out / "model.json").read_text())
    assert meta["ensemble"]["members"] == ["m0", "m1"] and meta["ensemble"]["combine"] == "mean-logit"
    assert [d["model_name"] for d in meta["ensemble"]["member_details"]] == ["compact_cnn", "compact_resnet"]
    assert meta["ensemble"]["feature_resize"] == ["identity", "nearest"]
    assert meta["feature_channels"] == 128 + 256 and len(meta["classifier_weight"]) == 384
    assert meta["feature_map"] == [384, 2, 2] and meta["outputs"]["features"] == [-1, 384, 2, 2]
    assert meta["model_name"] == "ensemble" and meta["input_size"] == SIZE
    # Where the weights were trained: the members', recorded in their checkpoints (the same machine here).
    member_trained_on = [torch_load(m["checkpoint"])["trained_on"] for m in members]
    assert member_trained_on[0]["device"] == "cpu" and member_trained_on[0] == member_trained_on[1]
    assert meta["trained_on"] == member_trained_on[0]
    assert [d["trained_on"] for d in meta["ensemble"]["member_details"]] == member_trained_on
    onnx_meta = read_onnx_metadata(out / "model.onnx")
    assert json.loads(onnx_meta["ensemble"]) == {"members": ["m0", "m1"], "combine": "mean-logit"}
    assert json.loads(onnx_meta["classifier_weight"]) == meta["classifier_weight"]
    io = onnx_io(out / "model.onnx")
    assert io["inputs"] == [("input", ["batch", 1, SIZE, SIZE])]
    assert io["outputs"][0] == ("probability", ["batch", 1]) and io["outputs"][1][1][:2] == ["batch", 384]


def test_probability_is_sigmoid_of_mean_member_logit_over_T_and_cam_is_the_mean_member_cam(
        ensembled, members, tmp_path):
    out, em = ensembled
    fin = em.of("finished")[0]
    T = fin["temperature"]
    samples = json.loads((out / "parity_samples.json").read_text())
    assert samples["tolerance"] == PARITY_TOLERANCE and len(samples["items"]) == 8
    x = np.stack([np.asarray(Image.open(out / it["input_png"]), dtype=np.float32)[None] / 255.0
                  for it in samples["items"]]).astype(np.float32)
    probs, feats = run_onnx(out / "model.onnx", x, tmp_path)
    assert probs.shape == (8, 1) and feats.shape == (8, 384, 2, 2)
    # Parity with the torch reference written by the worker.
    ref = np.array([it["probability"] for it in samples["items"]])
    assert np.max(np.abs(probs[:, 0] - ref)) <= PARITY_TOLERANCE
    # Against the members computed here in torch: p = sigmoid(mean_k logit_k / T).
    nets = member_models(members)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        logits = np.stack([n(xt).double().numpy()[:, 0] for n in nets])
        maps = [n.features(xt).double() for n in nets]
    expected = sigmoid(logits.mean(0) / T)
    assert np.max(np.abs(probs[:, 0] - expected)) < 1e-5
    # CAM identity: sum_c w_c f_c + b over the exported features == mean of the members' CAMs
    # (each member's w_k . f_k + b_k, its map resized to the common 2x2 grid), on the logit / T scale.
    meta = json.loads((out / "model.json").read_text())
    w = np.asarray(meta["classifier_weight"])
    b = meta["classifier_bias"]
    cam = np.einsum("c,nchw->nhw", w, feats.astype(np.float64)) + b
    member_cams = []
    for net, f in zip(nets, maps):
        f = F.interpolate(f, size=(2, 2), mode="nearest") if f.shape[-1] != 2 else f
        wk = net.classifier.weight.detach().double().view(-1)
        member_cams.append((torch.einsum("c,nchw->nhw", wk, f) + net.classifier.bias.detach().double()).numpy())
    assert np.max(np.abs(cam - np.mean(member_cams, 0) / T)) < 1e-4
    # With integer-factor (nearest) resizing the CAM's spatial mean is the calibrated logit.
    assert np.max(np.abs(sigmoid(cam.mean(axis=(1, 2))) - probs[:, 0])) < 1e-4


def test_threshold_and_metrics_use_the_ensemble_val_logits(ensembled, members, dataset):
    out, em = ensembled
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["history"] == [] and ev["ensemble"]["members"] == ["m0", "m1"]
    fin = em.of("finished")[0]
    assert ev["evaluations"]["val"]["auc"] == fin["best_val_auc"]
    sd = torch_load(str(out / "state_dict.pt"))
    assert sd["format"] == "xray-ensemble/1" and [m["job_id"] for m in sd["members"]] == ["m0", "m1"]
    assert sd["temperature"] == fin["temperature"] and sd["threshold"] == fin["threshold"]


def test_spec_and_member_refusals(dataset, members, tmp_path):
    with pytest.raises(SpecError, match="2 to 5"):
        validate_ensemble_spec(ensemble_spec(dataset, tmp_path, members[:1]))
    with pytest.raises(SpecError, match="unique"):
        validate_ensemble_spec(ensemble_spec(dataset, tmp_path, [members[0], members[0]]))
    em = ListEmitter()
    bad = ensemble_spec(dataset, tmp_path / "o", [members[0], {**members[1], "checkpoint": str(tmp_path / "nope.pt")}])
    assert run_ensemble_job(bad, em) == 1 and "does not exist" in em.of("failed")[0]["reason"]
    em = ListEmitter()
    assert run_ensemble_job(ensemble_spec(dataset, tmp_path / "o2", members, input_size=32), em) == 1
    assert "input_size" in em.of("failed")[0]["reason"]


def test_members_on_grids_that_do_not_divide_are_resized_bilinearly_and_export_exactly(tmp_path):
    """compact_cnn (3x3 at 40 px) + compact_resnet (2x2): bilinear resize to 3x3; the ONNX graph
    matches torch and the CAM is still exactly the mean of the resized member CAMs."""
    from trainer.ensemble import EnsembleModel, ensemble_head

    torch.manual_seed(0)
    nets = [build_model("compact_cnn", 0.0).eval(), build_model("compact_resnet", 0.0).eval()]
    model = EnsembleModel(nets, 40, temperature=1.7).eval()
    assert model.grid == (3, 3) and model.modes == ["identity", "bilinear"]
    head = ensemble_head(nets, 1.7)
    x = torch.rand(3, 1, 40, 40)
    with torch.no_grad():
        logits = torch.stack([n(x).view(-1) for n in nets]).mean(0)
        assert torch.allclose(model(x)[0].view(-1), torch.sigmoid(logits / 1.7), atol=1e-6)
    assert_exports_exactly_with_the_mean_member_cam(model, nets, head, x, 1.7, tmp_path)


def assert_exports_exactly_with_the_mean_member_cam(model, nets, head, x, temperature, tmp_path):
    """The ONNX graph matches torch, and its CAM is exactly the mean of the members' CAMs, each on
    its placed (full-frame) and resized map."""
    from trainer.ensemble import export_ensemble_onnx

    with torch.no_grad():
        p_ref, f_ref = model(x)
    export_ensemble_onnx(model, tmp_path / "m.onnx", x.shape[-1], 17, {**head, "feature_map": list(f_ref.shape[1:])})
    probs, feats = run_onnx(tmp_path / "m.onnx", x.numpy(), tmp_path)
    assert np.max(np.abs(probs - p_ref.numpy())) < 1e-5 and np.max(np.abs(feats - f_ref.numpy())) < 1e-4
    cam = np.einsum("c,nchw->nhw", np.asarray(head["classifier_weight"]), feats.astype(np.float64)) \
        + head["classifier_bias"]
    with torch.no_grad():
        member_cams = [torch.einsum("c,nchw->nhw", n.classifier.weight.double().view(-1),
                                    model.resize(place(n.features(x)), mode).double()) + n.classifier.bias.double()
                       for n, place, mode in zip(nets, model.placers, model.modes)]
    assert np.max(np.abs(cam - (torch.stack(member_cams).mean(0) / temperature).numpy())) < 1e-4


CROP = {"top": 0.1, "bottom": 0.9, "left": 0.15, "right": 0.85}


def test_a_member_with_an_input_crop_scores_its_crop_and_maps_onto_the_full_frame_as_its_own_export(tmp_path):
    """compact_cnn with an input crop + compact_resnet without: the cropped member's logit is its
    own (from the crop), its map is placed on the full frame exactly as its own export places it
    (zero outside the box), and the CAM is still exactly the mean of the placed member CAMs."""
    from trainer.ensemble import EnsembleModel, ensemble_head
    from trainer.export import ExportModel

    torch.manual_seed(1)
    cropped = build_model("compact_cnn", 0.0, CROP, 40).eval()
    plain = build_model("compact_resnet", 0.0).eval()
    nets = [cropped, plain]
    model = EnsembleModel(nets, 40, temperature=1.3).eval()
    own = ExportModel(cropped, 1.0).eval()
    assert model.grid == tuple(own.canvas["grid"])
    x = torch.rand(3, 1, 40, 40)
    with torch.no_grad():
        p_ref, f_ref = model(x)
        logits = torch.stack([n(x).view(-1) for n in nets]).mean(0)
        _, own_feats = own(x)
    assert torch.allclose(p_ref.view(-1), torch.sigmoid(logits / 1.3), atol=1e-6)
    c = cropped.feature_channels
    assert torch.allclose(f_ref[:, :c], own_feats, atol=1e-6), "placed as the member's own export places it"
    box = own.canvas["box"]
    outside = torch.ones(model.grid, dtype=torch.bool)
    outside[box["top"]:box["bottom"], box["left"]:box["right"]] = False
    assert outside.any() and float(f_ref[:, :c][..., outside].abs().max()) == 0.0
    assert_exports_exactly_with_the_mean_member_cam(model, nets, ensemble_head(nets, 1.3), x, 1.3, tmp_path)


def test_an_ensemble_job_loads_a_cropped_member_with_its_crop(dataset, members, tmp_path):
    d = tmp_path / "cropped"
    em = ListEmitter()
    assert run_job(base_spec(dataset, d, job_id="mc", model="compact_cnn", seed=5,
                             hyperparameters={"epochs": 1, "input_crop": CROP}), em) == 0, em.events[-1]
    cropped = {"job_id": "mc", "checkpoint": str(d / "checkpoint.pt"), "temperature": em.of("finished")[0]["temperature"]}
    out = tmp_path / "ens"
    em = ListEmitter()
    spec = ensemble_spec(dataset, out, [cropped, members[1]], export={"onnx": True, "opset": 17, "parity_samples": 4})
    assert run_ensemble_job(spec, em) == 0, em.events[-1]
    meta = json.loads((out / "model.json").read_text())
    details = meta["ensemble"]["member_details"]
    assert details[0]["input_crop"] == CROP and details[1]["input_crop"] is None
    fin = em.of("finished")[0]
    if fin["parity"]["method"] == "onnxruntime":
        assert fin["parity"]["ok"] is True
    # The member's logits are those of its own (cropping) network: the val AUC it reports is its job's.
    ck = torch_load(cropped["checkpoint"])
    net = build_model("compact_cnn", ck["dropout"], CROP, SIZE)
    net.load_state_dict(ck["best_model"] or ck["model"])
    x = torch.rand(2, 1, SIZE, SIZE)
    from trainer.ensemble import Member
    loaded = Member({**cropped, "run_id": None}, torch.device("cpu"))
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), net.eval()(x), atol=1e-6)


def test_the_ensemble_records_where_it_was_trained_only_when_its_members_agree():
    from types import SimpleNamespace

    from trainer.ensemble import common_trained_on

    cpu = {"device": "cpu", "device_name": "cpu", "processes": 1, "threads": 2, "torch": "x", "amp": False}
    gpu = {**cpu, "device": "cuda", "device_name": "NVIDIA H100", "amp": True}
    assert common_trained_on([SimpleNamespace(trained_on=cpu), SimpleNamespace(trained_on=dict(cpu))]) == cpu
    assert common_trained_on([SimpleNamespace(trained_on=cpu), SimpleNamespace(trained_on=gpu)]) is None
    assert common_trained_on([SimpleNamespace(trained_on=None), SimpleNamespace(trained_on=None)]) is None
