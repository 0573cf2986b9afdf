"""A user's tutorial-style attention seq2seq, exported by parts (``edgernn.own.seq2seq``,
``edgernn.export.own_seq2seq``): the bundle's greedy decoding equals PyTorch greedy decoding
over the user's own encoder and decoder, token for token; the CLI translates with the user's
vocabularies; parts that break the step contract are refused in one line.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from conftest import one_line_error, run_cli
from own_seq2seq_models import SRC_VOCAB, TRG_VOCAB, OddSeq2Seq, tutorial_model
from torch import nn

from edgernn.errors import EdgeRNNError
from edgernn.export.own_seq2seq import export_own_seq2seq
from edgernn.own.load import OwnModel
from edgernn.own.seq2seq import find_parts
from edgernn.runtime import Runtime
from edgernn.runtime.search import beam_search, decode_limits, decoder_step

# (cell, batch_first, masked decoder returning its attention)
CASES = [("gru", False, False), ("lstm", True, False), ("gru", True, True)]
SOS, EOS = TRG_VOCAB.index("<sos>"), TRG_VOCAB.index("<eos>")
VOCAB = {"src": SRC_VOCAB, "trg": TRG_VOCAB}
INPUTS = 20


def _example(batch_first: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    src, trg = rng.integers(4, len(SRC_VOCAB), (5, 2)), rng.integers(4, len(TRG_VOCAB), (4, 2))
    return {"src": src.T, "trg": trg.T} if batch_first else {"src": src, "trg": trg}


def _sources(count: int, seed: int = 1) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = SRC_VOCAB[4:]
    return [list(rng.choice(words, rng.integers(1, 9))) for _ in range(count)]


@pytest.fixture(scope="module", params=CASES, ids=["-".join(map(str, c)) for c in CASES])
def exported(request, tmp_path_factory):
    model = tutorial_model(*request.param)
    own = OwnModel(model, _example(request.param[1]))
    folder = tmp_path_factory.mktemp("s2s") / "bundle"
    export_own_seq2seq(own, find_parts(model), folder, vocab=VOCAB)
    return model, request.param, Runtime(folder, "fp32")


def _reference_greedy(
    model: nn.Module, words: list[str], batch_first: bool, wrap: bool = False
) -> list[int]:
    """PyTorch greedy decoding over the user's encoder and decoder, in the user's ids."""
    ends = [["<sos>"], ["<eos>"]] if wrap else [[], []]
    ids = torch.tensor([SRC_VOCAB.index(word) for word in ends[0] + words + ends[1]])
    src = ids.unsqueeze(0 if batch_first else 1)
    states = 2 if isinstance(model.decoder.rnn, nn.LSTM) else 1
    extra = [torch.ones(1, len(ids), dtype=torch.bool)] if model.masked else []
    token, out = torch.tensor([SOS]), []
    with torch.no_grad():
        memory, *state = model.encoder(src)
        for _ in range(decode_limits([len(words)])[0]):
            prediction, *rest = model.decoder(token, *state, memory, *extra)
            state, token = rest[:states], prediction.argmax(1)
            if token.item() == EOS:
                break
            out.append(token.item())
    return out


def test_bundle_greedy_equals_pytorch_greedy(exported):
    model, (_, batch_first, _), runtime = exported
    target_ids = runtime.manifest["model"]["parts"]["target_ids"]
    to_edgernn = {user: index for index, user in enumerate(target_ids) if user is not None}
    sources = _sources(INPUTS)
    src, lengths = runtime.codec.encode(sources)  # mixed lengths: decoded by length groups
    got = runtime.decode_ids(src, lengths)
    want = [[to_edgernn[i] for i in _reference_greedy(model, s, batch_first)] for s in sources]
    matches = sum(g == w for g, w in zip(got, want, strict=True))
    assert matches == INPUTS, (matches, got, want)
    assert sum(map(len, want)) > INPUTS  # the decodes are not all empty
    alone = [runtime.decode_ids(*runtime.codec.encode([s]))[0] for s in sources[:5]]
    assert alone == got[:5]


def test_a_source_wrapped_in_sos_and_eos(tmp_path):
    model = tutorial_model("gru", True, True)
    own = OwnModel(model, _example(True))
    bundle = export_own_seq2seq(
        own, find_parts(model), tmp_path, vocab=VOCAB | {"wrap_source": True}
    )
    runtime = Runtime(bundle, "fp32")
    target_ids = runtime.manifest["model"]["parts"]["target_ids"]
    to_edgernn = {user: index for index, user in enumerate(target_ids) if user is not None}
    sources = _sources(8, seed=5)
    got = runtime.decode_ids(*runtime.codec.encode(sources))
    want = [[to_edgernn[i] for i in _reference_greedy(model, s, True, True)] for s in sources]
    assert got == want
    unwrapped = [[to_edgernn[i] for i in _reference_greedy(model, s, True)] for s in sources]
    assert want != unwrapped  # the wrapping is seen
    assert runtime.manifest["model"]["parts"]["wrap_source"] is True


def test_beam_one_equals_greedy(exported):
    _, _, runtime = exported
    states = runtime.manifest["files"][1]["states"]
    names, outputs = [s["input"] for s in states], [s["output"] for s in states]
    for words in _sources(6, seed=2):
        src, lengths = runtime.codec.encode([words])
        encoded = runtime.run("encoder", {"src": src, "src_lengths": lengths})
        run = functools.partial(runtime.run, "decoder")
        step = decoder_step(run, encoded["memory"], encoded["mask"], names, outputs)
        state = tuple(encoded[name] for name in names)
        limit = decode_limits(lengths.tolist())[0]
        assert beam_search(step, state, 1, limit) == runtime.decode_ids(src, lengths)[0]
    beamed = runtime.translate([" ".join(w) for w in _sources(4, seed=3)], beam=3)
    assert all(set(text.split()) <= set(TRG_VOCAB) for text in beamed)


def test_manifest_records_the_parts_and_layout(exported):
    _, (cell, batch_first, masked), runtime = exported
    parts = runtime.manifest["model"]["parts"]
    assert parts["layout"] == ("batch_first" if batch_first else "time_major")
    assert parts["decoder_inputs"]["memory"] == "encoder_outputs"
    assert ("state_c" in parts["decoder_inputs"]) == (cell == "lstm")
    assert ("attention" in parts["decoder_outputs"]) == masked
    assert parts["target_ids"][2:4] == [SOS, EOS]  # edgernn's <bos>, <eos>: the user's ids
    assert runtime.manifest["input"]["padded_batches"] is False
    for entry in runtime.manifest["files"]:
        if entry["precision"] == "fp32":
            assert entry["parity"]["max_abs_diff"] <= 1e-4


@pytest.fixture
def saved(tmp_path):
    """The tutorial GRU model pickled whole, its example and its vocabularies."""
    path, example, vocab = tmp_path / "s2s.pt", tmp_path / "inputs.npz", tmp_path / "vocab.json"
    model = tutorial_model()
    torch.save(model, path)
    np.savez(example, **_example(False))
    vocab.write_text(json.dumps(VOCAB), encoding="utf-8")
    return model, path, example, vocab


def test_export_and_predict_through_the_cli(saved, tmp_path):
    model, path, example, vocab = saved
    bundle = tmp_path / "bundle"
    flags = ["--trust-pickle", "--example", example]
    result = run_cli("export", path, *flags, "--vocab", vocab, "-o", bundle)
    assert result.exit_code == 0, result.output
    assert "exported by parts" in result.output
    sources = [" ".join(words) for words in _sources(3, seed=4)]
    translations = {}
    for precision in ("fp32", "int8"):
        result = run_cli("predict", bundle, *sources, "--precision", precision, "--json")
        assert result.exit_code == 0, result.output
        predictions = json.loads(result.output.strip().splitlines()[-1])["predictions"]
        translations[precision] = [p["translation"] for p in predictions]
        assert all(set(text.split()) <= set(TRG_VOCAB) for text in translations[precision])
    shown = (1, 2)  # <pad> and <sos> never appear in a translation
    want = [_reference_greedy(model, source.split(), False) for source in sources]
    assert translations["fp32"] == [
        " ".join(TRG_VOCAB[i] for i in w if i not in shown) for w in want
    ]
    result = run_cli("compress", path, *flags, "--vocab", vocab, "-o", tmp_path / "c")
    one_line_error(result, "edgernn export")


def test_refusals_are_one_line(saved, tmp_path):
    _, path, example, _ = saved
    result = run_cli("export", path, "--trust-pickle", "--example", example, "-o", tmp_path / "b")
    one_line_error(result, "source and target vocabularies")
    result = run_cli(
        "export",
        path,
        "--trust-pickle",
        "--example",
        example,
        "--decoder",
        "dec",
        "-o",
        tmp_path / "d",
    )
    one_line_error(result, "no submodule 'dec'")
    odd, odd_example = tmp_path / "odd.pt", tmp_path / "odd.npz"
    torch.save(OddSeq2Seq(), odd)
    np.savez(odd_example, src=np.zeros((2, 3), dtype=np.int64), trg=np.zeros((2, 4)))
    flags = ["--trust-pickle", "--example", odd_example, "-o", tmp_path / "o"]
    result = run_cli("export", odd, *flags)
    one_line_error(result, "is not a one-step decoder")


def test_named_parts_and_non_seq2seq_modules():
    class Renamed(nn.Module):
        def __init__(self):
            super().__init__()
            model = tutorial_model()
            self.src_side, self.trg_side = model.encoder, model.decoder

        def forward(self, src, trg):
            return src

    parts = find_parts(Renamed(), "src_side", "trg_side")
    assert parts.names == ("src_side", "trg_side") and parts.states == 1
    assert find_parts(Renamed()) is None  # no encoder/decoder: not a seq2seq by parts
    assert find_parts(nn.GRU(3, 4)) is None
    with pytest.raises(EdgeRNNError, match="not a one-step decoder"):
        find_parts(OddSeq2Seq())
