"""The torch-free runtime: same answers as PyTorch, clear errors for bad bundles and inputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from export_cases import bundle

from edgernn.bundle.manifest import MANIFEST
from edgernn.config import TrainConfig
from edgernn.data import Codec
from edgernn.errors import EdgeRNNError
from edgernn.export import ExportConfig, export_bundle
from edgernn.generate import generate_text
from edgernn.runtime import Runtime
from edgernn.runtime.checks import RuntimeLimits
from edgernn.train import train

TINY = dict(hidden=8, embed=8)
FAST = ExportConfig(exporter="torchscript")


def _train(path, task: str, **choices):
    return train(str(path), task, TrainConfig(epochs=1, progress=False), **TINY, **choices)


@pytest.mark.slow
def test_importing_the_runtime_does_not_import_torch():
    code = (
        "import sys, edgernn.runtime, edgernn.runtime.inputs; "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_classify_bundle_predicts_like_pytorch(classify_csv, tmp_path):
    checkpoint = _train(classify_csv, "classify")
    directory = export_bundle(checkpoint, tmp_path / "bundle")  # the default: dynamo
    manifest = json.loads((directory / MANIFEST).read_text())
    results = manifest["metrics"]["results"]
    assert results["onnx_fp32"] == pytest.approx(results["pytorch_fp32"])
    assert set(results) == {"pytorch_fp32", "onnx_fp32", "onnx_int8"}
    texts = ["good film", "bad plot not good", "the film was very bad bad"]
    predictions = Runtime(directory, "fp32").predict(texts)
    codec, model = Codec(checkpoint.meta), checkpoint.build()
    for text, prediction in zip(texts, predictions, strict=True):
        ids = codec.token_ids(text)
        with torch.no_grad():
            logits = model(ids.unsqueeze(0), torch.tensor([len(ids)]))[0]
        assert prediction["label"] == checkpoint.meta.labels[int(logits.argmax())]
        probs = prediction["probabilities"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert probs[prediction["label"]] == pytest.approx(float(logits.softmax(-1).max()))


def test_tag_and_regress_predictions(tag_conll, regress_npz, tmp_path):
    checkpoint = _train(tag_conll, "tag", bidirectional=True)
    runtime = Runtime(export_bundle(checkpoint, tmp_path / "tag", config=FAST))
    (result,) = runtime.predict(["Ann saw Rome"])
    assert result["tokens"] == ["Ann", "saw", "Rome"]
    assert set(result["tags"]) <= set(checkpoint.meta.labels) and len(result["tags"]) == 3

    checkpoint = _train(regress_npz, "regress")
    runtime = Runtime(export_bundle(checkpoint, tmp_path / "regress", config=FAST), "fp32")
    raw = np.random.default_rng(0).normal(size=(6, 2))
    (result,) = runtime.predict([raw])
    norm = checkpoint.meta.norm
    scaled = (raw - np.array(norm["x_mean"])) / np.array(norm["x_std"])
    with torch.no_grad():
        out = checkpoint.build()(torch.tensor(scaled, dtype=torch.float32)[None], torch.tensor([6]))
    want = out.numpy()[0] * np.array(norm["y_std"]) + np.array(norm["y_mean"])
    assert result["values"] == pytest.approx(want.tolist(), abs=1e-4)


def test_generate_greedy_equals_pytorch(lm_txt, tmp_path):
    checkpoint = _train(lm_txt, "lm", cell="gru")
    runtime = Runtime(export_bundle(checkpoint, tmp_path / "lm", config=FAST), "fp32")
    for prefix in ("the ", ""):
        want = generate_text(checkpoint, prefix, length=25, temperature=0.0)
        assert runtime.generate(prefix, length=25, temperature=0) == want
    sampled = runtime.generate("the ", length=20, temperature=1.0, top_k=3, seed=5)
    assert sampled == runtime.generate("the ", length=20, temperature=1.0, top_k=3, seed=5)
    assert len(sampled) == 20


def test_translate_scores_like_pytorch(seq2seq_tsv, tmp_path):
    checkpoint = _train(seq2seq_tsv, "seq2seq", attention="bahdanau")
    directory = export_bundle(checkpoint, tmp_path / "s2s", config=FAST)
    results = json.loads((directory / MANIFEST).read_text())["metrics"]["results"]
    assert results["onnx_fp32"] == pytest.approx(results["pytorch_fp32"])
    runtime = Runtime(directory, "fp32")
    assert len(runtime.translate(["123", "98765"], beam=2)) == 2


@pytest.fixture
def copied_bundle(tmp_path):
    source, _ = bundle("classify", "gru", False)
    return shutil.copytree(source, tmp_path / "copy")


def _edit_manifest(directory, change) -> None:
    path = directory / MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda d: (d / "model.onnx").write_bytes(b"\x08" + (d / "model.onnx").read_bytes()),
            "sha256",
        ),
        (lambda d: (d / "step.int8.onnx").unlink(), "missing"),
        (lambda d: (d / MANIFEST).unlink(), "not a bundle"),
        (lambda d: (d / MANIFEST).write_text("{"), "corrupt manifest"),
        (lambda d: _edit_manifest(d, lambda m: m.update(version=99)), "newer"),
        (
            lambda d: _edit_manifest(d, lambda m: m["files"][0].update(path="../outside.onnx")),
            "outside the bundle",
        ),
    ],
)
def test_damaged_bundles_are_refused(copied_bundle, damage, message):
    damage(copied_bundle)
    with pytest.raises(EdgeRNNError, match=message):
        Runtime(copied_bundle, "fp32" if "sha256" in message else "auto")


def test_bad_inputs_get_clear_errors():
    directory, _ = bundle("classify", "gru", False)
    runtime = Runtime(directory, "fp32")
    ids, lengths = np.array([[4, 5, 6]]), np.array([3])
    cases = [
        ({"inputs": ids.astype(np.float64), "lengths": lengths}, "must be a numpy int64"),
        ({"inputs": ids[0], "lengths": lengths}, "must have shape"),
        ({"inputs": ids, "lengths": np.array([3, 3])}, "must have shape"),
        ({"inputs": ids}, "takes inputs"),
        ({"inputs": np.array([[4, 57, 6]]), "lengths": lengths}, "token id 57 is unknown"),
        ({"inputs": ids, "lengths": np.array([4])}, "must lie in 1..3"),
    ]
    for feeds, message in cases:
        with pytest.raises(EdgeRNNError, match=message):
            runtime.run("model", feeds)
    with pytest.raises(EdgeRNNError, match="unknown token 'z'"):
        Runtime(directory, unknown="error").predict(["abz"])
    assert Runtime(directory).predict(["abz"])[0]["label"]  # z becomes <unk>
    with pytest.raises(EdgeRNNError, match="no tokens"):
        runtime.predict([""])
    with pytest.raises(EdgeRNNError, match="needs a language model"):
        runtime.generate("ab")
    regress, _ = bundle("regress", "rnn", False)
    with pytest.raises(EdgeRNNError, match=r"must be \(steps, 3\)"):
        Runtime(regress).predict([np.zeros((4, 2))])


def test_a_crash_mid_export_leaves_no_bundle(monkeypatch, tmp_path):
    _, checkpoint = bundle("classify", "gru", False)
    directory = tmp_path / "bundle"
    export_bundle(checkpoint, directory, config=ExportConfig(evaluate=False, int8=False))
    assert Runtime(directory).precision == "fp32"

    def crash(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr("edgernn.export.writer.write_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(checkpoint, directory, config=ExportConfig(evaluate=False))
    with pytest.raises(EdgeRNNError, match="not a bundle"):
        Runtime(directory)


def test_numeric_classifier_takes_raw_features(classify_npz, tmp_path):
    checkpoint = _train(classify_npz, "classify", cell="rnn")
    runtime = Runtime(export_bundle(checkpoint, tmp_path / "b", config=FAST), "fp32")
    raw = [np.random.default_rng(1).normal(size=(length, 2)) for length in (3, 9)]
    predictions = runtime.predict(raw)
    norm = checkpoint.meta.norm
    for sequence, prediction in zip(raw, predictions, strict=True):
        scaled = (sequence - np.array(norm["x_mean"])) / np.array(norm["x_std"])
        x = torch.tensor(scaled, dtype=torch.float32)[None]
        with torch.no_grad():
            logits = checkpoint.build()(x, torch.tensor([len(sequence)]))[0]
        assert prediction["label"] == checkpoint.meta.labels[int(logits.argmax())]


def test_limits_refuse_oversized_calls_and_say_how_to_raise_them():
    directory, _ = bundle("classify", "gru", False)
    runtime = Runtime(directory, "fp32")
    long_text = "ab" * 300  # 600 tokens; the model's max_len is 512
    with pytest.raises(
        EdgeRNNError,
        match=r"input 1 is 600, above the limit max_len=512; .*"
        r"Runtime\(bundle, limits=RuntimeLimits\(max_len=\.\.\.\)\)",
    ):
        runtime.predict(["abc", long_text])
    rows = np.full((1025, 3), 4)
    feeds = {"inputs": rows, "lengths": np.full(1025, 3)}
    with pytest.raises(
        EdgeRNNError, match="batch of input 'inputs' is 1025, above .*max_batch=1024"
    ):
        runtime.run("model", feeds)
    with pytest.raises(EdgeRNNError, match="max_batch=1024"):
        runtime.step(rows)
    assert len(runtime.predict(["abc"] * 1100)) == 1100  # predict splits long lists itself
    roomy = Runtime(directory, "fp32", limits=RuntimeLimits(max_batch=2048, max_len=1000))
    assert roomy.run("model", feeds)["logits"].shape == (1025, 3)
    assert roomy.predict([long_text])[0]["label"] in ("neg", "neu", "pos")
    with pytest.raises(EdgeRNNError, match="RuntimeLimits.max_beam must be >= 1"):
        RuntimeLimits(max_beam=0)


def test_generate_and_translate_limits():
    lm = Runtime(bundle("lm", "gru", False)[0])
    with pytest.raises(EdgeRNNError, match="length is 10001, above the limit max_generate=10000"):
        lm.generate("ab", length=10_001)
    for bad in (float("nan"), float("inf"), -1.0, "hot"):
        with pytest.raises(EdgeRNNError, match="temperature must be a finite number"):
            lm.generate("ab", length=3, temperature=bad)
    assert len(lm.generate("ab", length=4, temperature=1e-300, seed=1)) == 4  # no NaN
    s2s = Runtime(bundle("seq2seq", "gru", False, "luong")[0])
    with pytest.raises(EdgeRNNError, match="beam is 65, above the limit max_beam=64"):
        s2s.translate(["abc"], beam=65)
    with pytest.raises(EdgeRNNError, match="max_len is 2049, above the limit max_decode=2048"):
        s2s.translate(["abc"], max_len=2049)
    assert s2s.translate([]) == []
    assert len(s2s.translate(["abc"], beam=2, max_len=3)[0]) <= 3


def test_inputs_of_the_wrong_kind_are_refused_by_index():
    runtime = Runtime(bundle("classify", "gru", False)[0])
    cases = [
        ("abc", "inputs must be a list"),
        (["abc", None], "input 1 must be a text"),
        ([b"abc"], "input 0 must be a text"),
        (["abc", "ab", " \n "], r"input 2 \(' \\n '\) is empty or blank"),
        ([["a", 3]], "input 0 must be a text"),
    ]
    for inputs, message in cases:
        with pytest.raises(EdgeRNNError, match=message):
            runtime.predict(inputs)
    regress = Runtime(bundle("regress", "rnn", False)[0])
    for value, message in [
        (np.nan, "input 1 holds NaN"),
        (np.inf, "input 1 holds NaN"),
        (1e300, "out-of-range"),
    ]:
        with pytest.raises(EdgeRNNError, match=message):
            regress.predict([np.zeros((2, 3)), np.full((2, 3), value)])
    with pytest.raises(EdgeRNNError, match="input 0 must be"):
        regress.predict(["1 2 3"])
    with pytest.raises(EdgeRNNError, match="'inputs' holds NaN"):
        regress.step(np.full((1, 2, 3), np.nan))


@pytest.mark.parametrize(
    "arrays, message",
    [
        (None, "not a readable .npz archive"),
        ({"y": np.zeros(3)}, "missing arrays ['x']"),
        ({"x": np.zeros((2, 3, 1)), "lengths": np.array(3)}, "'lengths' must hold one integer"),
        ({"x": np.zeros((2, 3, 1)), "lengths": np.array([1, 4])}, "in 1..3 per row"),
        ({"x": np.array(["a", "b"])}, "'x' must be a numeric (N, T, F) array"),
        ({"x": np.array([{}, 1], dtype=object)}, "pickled"),
    ],
)
def test_predict_npz_inputs_are_checked_without_trusting_the_file(tmp_path, arrays, message):
    from edgernn.runtime.inputs import read_inputs

    path = tmp_path / "inputs.npz"
    if arrays is None:
        path.write_bytes(b"PK\x03\x04 damaged")
    else:
        np.savez(path, **arrays)
    with pytest.raises(EdgeRNNError, match=re.escape(message)):
        read_inputs([str(path)], numeric=True)
