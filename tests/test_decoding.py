"""Decoding rules: per-row limits, batch independence, PyTorch = runtime, refused inputs."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from export_cases import VOCAB, bundle, make_checkpoint

from edgernn.config import TrainConfig
from edgernn.data.meta import DataMeta
from edgernn.errors import EdgeRNNError
from edgernn.export import ExportConfig, export_bundle
from edgernn.generate import generate_text
from edgernn.runtime import Runtime
from edgernn.runtime.checks import LENGTHS_OF, check_token_values
from edgernn.runtime.search import EOS_ID, decode_limits, greedy, record_step
from edgernn.train import train

FAST = ExportConfig(exporter="torchscript", evaluate=False)
# Very different lengths: under the old batch-wide limit (2 * longest + 10) the short rows
# of a batch decoded up to 60 tokens, alone at most 12.
SOURCES = ["7", "31", "90210", "1234567890", "98765432109876543210"]


@pytest.fixture(scope="module")
def seq2seq_bundle(tmp_path_factory):
    """A barely trained reverse-the-digits model (hidden 8): it often runs to its limit."""
    rng = random.Random(3)
    lines = []
    for _ in range(80):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
        lines.append(f"{digits}\t{digits[::-1]}")
    root = tmp_path_factory.mktemp("decoding")
    (root / "reverse.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = TrainConfig(epochs=1, progress=False)
    checkpoint = train(str(root / "reverse.tsv"), "seq2seq", config, hidden=8, embed=8)
    return export_bundle(checkpoint, root / "bundle", config=FAST), checkpoint


def test_decode_limits_are_per_row():
    assert decode_limits([1, 5, 20]) == [12, 20, 50]
    assert decode_limits([1, 5, 20], cap=30) == [12, 20, 30]
    assert decode_limits([1, 5, 20], max_len=7, cap=30) == [7, 7, 7]


def test_greedy_stops_each_row_at_its_own_limit_or_eos():
    # Row 0 never emits EOS, row 1 emits EOS at its third step, row 2 has limit 0.
    def step(tokens, state):
        logits = np.zeros((3, 6), np.float32)
        logits[:, 5] = 1.0
        logits[1, EOS_ID] = 2.0 if state[0][0, 1, 0] == 2 else 0.0
        return logits, (state[0] + 1,)

    outputs = greedy(step, (np.zeros((1, 3, 1), np.float32),), [4, 9, 0])
    assert outputs == [[5, 5, 5, 5], [5, 5], []]
    done, rows = [False], [[]]
    assert record_step(rows, done, [EOS_ID], [3]) and rows == [[]]  # EOS is not returned


@pytest.mark.parametrize("beam", [1, 3])
def test_a_batch_translates_each_row_as_alone(seq2seq_bundle, beam):
    directory, _ = seq2seq_bundle
    runtime = Runtime(directory, "fp32")  # int8 quantizes activations per batch
    batched = runtime.translate(SOURCES, beam=beam)
    assert batched == [runtime.translate([source], beam=beam)[0] for source in SOURCES]
    if beam == 1:
        assert runtime.predict(SOURCES) == [{"translation": text} for text in batched]
    src, lengths = runtime.codec.encode(SOURCES)
    ids, limits = runtime.decode_ids(src, lengths, beam), decode_limits(lengths.tolist())
    assert all(len(row) <= limit for row, limit in zip(ids, limits, strict=True))
    # The test has teeth: some short row runs to its own limit, below the batch's longest.
    assert any(len(row) == limit < max(limits) for row, limit in zip(ids, limits, strict=True))
    capped = runtime.decode_ids(src, lengths, beam, max_len=3)  # explicit: every row
    assert all(len(row) <= 3 for row in capped)


def test_pytorch_decodes_with_the_same_per_row_limits(seq2seq_bundle):
    directory, checkpoint = seq2seq_bundle
    runtime, model = Runtime(directory, "fp32"), checkpoint.build()
    src, lengths = runtime.codec.encode(SOURCES)
    src_t, lengths_t = torch.from_numpy(src), torch.from_numpy(lengths)
    greedy_ids = model.greedy(src_t, lengths_t)
    assert greedy_ids == runtime.decode_ids(src, lengths)
    alone = [
        model.greedy(src_t[i : i + 1, :n], lengths_t[i : i + 1])[0] for i, n in enumerate(lengths)
    ]
    assert greedy_ids == alone
    assert model.beam_search(src_t, lengths_t, beam=3) == runtime.decode_ids(src, lengths, 3)


def test_lengths_of_zero_are_refused_for_every_lengths_input():
    for name in LENGTHS_OF:  # even when its padded input is not among the feeds
        with pytest.raises(EdgeRNNError, match=f"{name} must be >= 1"):
            check_token_values({name: np.array([3, 0])}, {}, LENGTHS_OF)
    s2s = Runtime(bundle("seq2seq", "gru", False, "luong", "torchscript")[0], "fp32")
    with pytest.raises(EdgeRNNError, match=r"src_lengths must lie in 1\.\.2"):
        s2s.run("encoder", {"src": np.array([[4, 5], [6, 7]]), "src_lengths": np.array([2, 0])})
    lm = Runtime(bundle("lm", "gru", False, None, "torchscript")[0], "fp32")
    feeds = lm.initial_state(2) | {
        "inputs": np.array([[4, 5], [6, 7]]),
        "lengths": np.array([0, 2]),
    }
    with pytest.raises(EdgeRNNError, match=r"lengths must lie in 1\.\.2"):
        lm.run("step", feeds)


def test_a_decoder_input_no_encoder_gives_is_refused():
    runtime = Runtime(bundle("seq2seq", "gru", False, "luong", "torchscript")[0], "fp32")
    encoded = runtime.run(
        "encoder", {"src": np.array([[4, 5, 6], [7, 0, 0]]), "src_lengths": np.array([3, 1])}
    )
    feeds = {"tokens": np.array([2, 2]), "memory": encoded["memory"], "state_h": encoded["state_h"]}
    assert np.isfinite(runtime.run("decoder", feeds | {"mask": encoded["mask"]})["logits"]).all()
    mask = encoded["mask"].copy()
    mask[1] = False  # would give NaN logits: a softmax over no position
    with pytest.raises(EdgeRNNError, match="mask row 1 marks no source position"):
        runtime.run("decoder", feeds | {"mask": mask})
    huge = feeds | {"mask": encoded["mask"], "memory": np.full_like(feeds["memory"], 3e38)}
    with pytest.raises(EdgeRNNError, match=r"memory must lie in \[-1, 1\]"):  # else NaN
        runtime.run("decoder", huge)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_a_pool_state_that_counts_no_real_steps_is_refused(pooling, tmp_path):
    checkpoint = make_checkpoint("classify", "gru", pooling=pooling)
    runtime = Runtime(export_bundle(checkpoint, tmp_path / "b", config=FAST), "fp32")
    chunk = {"inputs": np.array([[4, 5], [6, 7]]), "lengths": np.array([2, 2])}
    state = runtime.initial_state(2)
    out = runtime.run("step", state | chunk)
    carried = {"pool": out["pool_out"], "pool_steps": out["pool_steps_out"]}
    assert np.isfinite(runtime.run("step", state | carried | chunk)["logits"]).all()
    for steps in (-2.0, 0.5):  # -2 with 2 new steps divides by 0 (mean): NaN
        bad = state | {"pool_steps": np.full_like(state["pool_steps"], steps)}
        with pytest.raises(EdgeRNNError, match="pool_steps must be whole numbers >= 0"):
            runtime.run("step", bad | chunk)
    stale = state | {"pool": out["pool_out"]}  # a sum or maximum, but 0 steps
    with pytest.raises(EdgeRNNError, match="pool must be zeros where pool_steps is 0"):
        runtime.run("step", stale | chunk)


def test_a_prefix_without_tokens_starts_from_bos_in_both(tmp_path):
    original = make_checkpoint("lm", "gru")
    meta = DataMeta("lm", vocab=VOCAB, tokens="word")
    checkpoint = dataclasses.replace(original, meta=meta)
    runtime = Runtime(export_bundle(checkpoint, tmp_path / "lm", config=FAST), "fp32")
    for prefix in ("", "   ", "a b"):
        want = generate_text(checkpoint, prefix, length=6, temperature=0)
        assert runtime.generate(prefix, length=6, temperature=0) == want
        assert len(want.split()) == 6  # ids 0-3 never come out, no early stop


def test_a_tiny_temperature_samples_the_argmax_in_both():
    directory, checkpoint = bundle("lm", "gru", False, None, "torchscript")
    runtime = Runtime(directory, "fp32")
    greedy_text = generate_text(checkpoint, "ab", length=8, temperature=0)
    assert generate_text(checkpoint, "ab", length=8, temperature=1e-300) == greedy_text  # no NaN
    assert runtime.generate("ab", length=8, temperature=1e-300) == greedy_text
