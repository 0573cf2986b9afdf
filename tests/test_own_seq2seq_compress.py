"""A user's tutorial seq2seq as a black-box teacher (``edgernn.own.blackbox_seq2seq``): its
teacher-forced logits and greedy decodes equal the user's parts run directly, each training
row costs one run of the user's encoder for the whole distillation, and ``edgernn compress``
distills an edgernn student from it into a bundle ``predict`` runs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import one_line_error, run_cli
from own_seq2seq_models import (
    SRC_VOCAB,
    TRG_VOCAB,
    Attention,
    Decoder,
    Encoder,
    Seq2Seq,
    tutorial_model,
)
from test_own_seq2seq import CASES, VOCAB, _example, _reference_greedy, _sources
from torch import nn

from edgernn.cli import main
from edgernn.config import TrainConfig
from edgernn.data import collate
from edgernn.data.prepare import encode
from edgernn.data.source import load_raw
from edgernn.distill import distill
from edgernn.distill.config import DistillConfig, StudentConfig
from edgernn.distill.stage import sequence_kd_data
from edgernn.own.blackbox_seq2seq import black_box_seq2seq_checkpoint
from edgernn.own.load import OwnModel
from edgernn.own.seq2seq import find_parts

IDS = ["-".join(map(str, case)) for case in CASES]
USER_NAMES = {"<bos>": "<sos>"}  # edgernn's reserved names the tutorial spells otherwise
# Word-by-word translation: a task to learn.
WORDS = {"ein": "a", "mann": "man", "eine": "a", "frau": "woman", "hund": "dog", "katze": "cat"}
WORDS |= {"sieht": "sees", "läuft": "runs", "schnell": "fast", "klein": "small", "rot": "red"}


def _teacher(case, model=None):
    model = model or tutorial_model(*case)
    own = OwnModel(model, _example(case[1]))
    checkpoint = black_box_seq2seq_checkpoint(own, find_parts(model), VOCAB, "word")
    return model, checkpoint


def _user_ids(edgernn_vocab: list[str], user_vocab: list[str]) -> list[int]:
    return [user_vocab.index(USER_NAMES.get(token, token)) for token in edgernn_vocab]


def _user_logits(model, case, src: list[int], trg: list[int]) -> torch.Tensor:
    """The user's decoder predictions (steps, user vocab), its encoder on this row alone."""
    _, batch_first, masked = case
    row = torch.tensor(src).unsqueeze(0 if batch_first else 1)
    states = 2 if isinstance(model.decoder.rnn, nn.LSTM) else 1
    extra = [torch.ones(1, len(src), dtype=torch.bool)] if masked else []
    steps = []
    with torch.no_grad():
        memory, *state = model.encoder(row)
        for token in trg:
            prediction, *rest = model.decoder(torch.tensor([token]), *state, memory, *extra)
            state = rest[:states]
            steps.append(prediction[0])
    return torch.stack(steps)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_teacher_forced_logits_are_the_users_decoder_step_by_step(case):
    model, checkpoint = _teacher(case)
    teacher, meta = checkpoint.build(), checkpoint.meta
    to_src, to_trg = _user_ids(meta.vocab, SRC_VOCAB), _user_ids(meta.tgt_vocab, TRG_VOCAB)
    rng = np.random.default_rng(0)
    src_lengths, trg_lengths = [5, 2, 7, 2], [3, 6, 1, 4]
    sources = [rng.integers(4, len(meta.vocab), n).tolist() for n in src_lengths]
    targets = [[2, *rng.integers(4, len(meta.tgt_vocab), n - 1).tolist()] for n in trg_lengths]
    framed = [
        (torch.tensor(s), torch.tensor([*t, 3])) for s, t in zip(sources, targets, strict=True)
    ]
    batch = collate(framed, "seq2seq")  # padded as training pads: shorter rows keep <eos>
    got = teacher(batch.inputs, batch.lengths, batch.decoder_inputs)
    assert got.shape == (4, max(trg_lengths), len(meta.tgt_vocab))
    for i, (source, target) in enumerate(zip(sources, targets, strict=True)):
        user = _user_logits(model, case, [to_src[t] for t in source], [to_trg[t] for t in target])
        want = user[:, to_trg]  # the user's logits in edgernn's target order
        assert torch.allclose(got[i, : len(target)], want, atol=1e-6), (i, got[i] - want)
        assert not got[i, len(target) :].any()  # steps without a target are nobody's: zeros
    assert torch.equal(teacher(batch.inputs, batch.lengths, batch.decoder_inputs), got)  # cached


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_greedy_equals_the_reference_greedy_loop_over_the_users_parts(case):
    model, checkpoint = _teacher(case)
    teacher, meta = checkpoint.build(), checkpoint.meta
    from_user = {user: i for i, user in enumerate(_user_ids(meta.tgt_vocab, TRG_VOCAB))}
    sources = _sources(12, seed=7)  # mixed lengths in one padded batch
    ids = [torch.tensor([meta.vocab.index(word) for word in words]) for words in sources]
    src = nn.utils.rnn.pad_sequence(ids, batch_first=True)
    lengths = torch.tensor([len(words) for words in sources])
    got = teacher.greedy(src, lengths)
    want = [[from_user[i] for i in _reference_greedy(model, w, case[1])] for w in sources]
    assert got == want
    assert sum(map(len, want)) > len(sources)  # the decodes are not all empty
    assert teacher.beam_search(src, lengths, 1) == got  # beam 1 is greedy
    beamed = teacher.beam_search(src, lengths, 3)
    limits = [2 * len(words) + 10 for words in sources]
    assert [len(b) <= n for b, n in zip(beamed, limits, strict=True)] == [True] * len(sources)


def _pairs(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        words = list(rng.choice(list(WORDS), rng.integers(1, 6)))
        lines.append(f"{' '.join(words)}\t{' '.join(WORDS[w] for w in words)}")
    return lines


def test_the_users_encoder_runs_once_per_training_row_across_epochs(tmp_path):
    case = CASES[0]
    model, checkpoint = _teacher(case)
    rows: list[int] = []  # rows the encoder was given; the hook is shared by deep copies
    model.encoder.register_forward_hook(lambda _, args, __: rows.append(args[0].shape[1]))
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(_pairs(40, seed=0)) + "\n", encoding="utf-8")
    data = encode(load_raw(str(path), "seq2seq"), checkpoint.meta, 64)
    config = DistillConfig(hidden_match=0, train=TrainConfig(epochs=2, batch_size=8))
    distill(checkpoint.build(), data, StudentConfig(hidden=4), config)
    train = data.splits["train"]
    distinct = {(src.numpy().tobytes(), trg.numpy().tobytes()) for src, trg in train}
    assert sum(rows) == len(distinct)
    assert len(distinct) > 8  # more than one batch, so the second epoch reads the cache


def test_sequence_kd_relabels_each_source_with_its_own_beam_over_the_users_parts(tmp_path):
    _, checkpoint = _teacher(CASES[1])
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(_pairs(30, seed=2)) + "\n", encoding="utf-8")
    data = encode(load_raw(str(path), "seq2seq"), checkpoint.meta, 64)
    relabelled = sequence_kd_data(checkpoint.build(), data, 2, "cpu").splits["train"]
    fresh = _teacher(CASES[1])[1].build()  # the same weights, no cache: each source alone
    for (src, target), (same, _) in zip(relabelled, data.splits["train"], strict=True):
        alone = fresh.beam_search(src[None], torch.tensor([len(src)]), 2)[0]
        assert torch.equal(src, same) and target.tolist() == [2, *alone, 3]


def _saved(tmp_path, model: nn.Module) -> list:
    """The model pickled whole, its example and vocabularies: compress's own-model flags."""
    path, example, vocab = tmp_path / "s2s.pt", tmp_path / "inputs.npz", tmp_path / "vocab.json"
    torch.save(model, path)
    np.savez(example, **_example(False))
    vocab.write_text(json.dumps(VOCAB), encoding="utf-8")
    return [path, "--trust-pickle", "--example", example, "--vocab", vocab, "--tokens", "word"]


def test_what_a_seq2seq_teacher_cannot_do_is_refused_in_one_line(tmp_path):
    flags = _saved(tmp_path, tutorial_model())
    one_line_error(run_cli("compress", *flags, "-o", tmp_path / "a"), "--data")
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(_pairs(20, seed=3)) + "\n", encoding="utf-8")
    for flag in ("--no-distill", "--search"):
        result = run_cli("compress", *flags, "--data", data, flag, "-o", tmp_path / "b")
        one_line_error(result, flag)


def _bigger_model() -> Seq2Seq:
    """The tutorial GRU at emb 16, hidden 12 per encoder direction, decoder hidden 16."""
    torch.manual_seed(0)
    attention = Attention(12, 16)
    encoder = Encoder(len(SRC_VOCAB), 16, 12, 16)
    return Seq2Seq(encoder, Decoder(len(TRG_VOCAB), 16, 12, 16, attention)).eval()


@pytest.mark.slow
def test_compress_distills_an_edgernn_student_from_a_users_seq2seq(tmp_path):
    model = _bigger_model()
    flags = _saved(tmp_path, model)
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(_pairs(60, seed=1)) + "\n", encoding="utf-8")
    out = tmp_path / "bundle"
    command = [
        "compress", *flags, "--data", data, "--epochs", "1", "--student-hidden", "8",
        "--quiet", "--json", "-o", out,
    ]  # fmt: skip
    result = run_cli(*command)
    assert result.exit_code == 0, result.output
    assert "black-box teacher" in result.output
    for name in ("student.pt", "manifest.json", "report.json"):
        assert (out / name).is_file()
    report = json.loads((out / "report.json").read_text())
    teacher = report["models"][0]
    assert teacher["role"] == "teacher" and teacher["file"] == str(flags[0])
    assert teacher["params"] == sum(p.numel() for p in model.parameters())
    assert 0 <= teacher["metrics"]["exact_match"] <= 100
    assert "not timed" in teacher["skipped"]
    assert any("hidden-state matching off" in note for note in report["notes"])
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["teacher_metrics"] == teacher["metrics"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "seq2seq" and manifest["model"]["hidden"] <= 8  # edgernn's own
    predicted = CliRunner().invoke(main, ["predict", str(out), "ein mann sieht", "--json"])
    assert predicted.exit_code == 0, predicted.output
    translation = json.loads(predicted.output.strip().splitlines()[-1])["predictions"][0]
    assert set(translation["translation"].split()) <= set(TRG_VOCAB)
