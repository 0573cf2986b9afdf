"""Model zoo: shapes, padding invariance, decoding and trainability of tiny models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from edgernn.config import ModelSpec
from edgernn.data.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS
from edgernn.models import (
    ATTENTIONS,
    LanguageModel,
    Seq2Seq,
    SequenceClassifier,
    SequenceTagger,
    build_model,
)
from edgernn.models.encoder import top_hidden
from edgernn.models.search import sample_next
from edgernn.models.size import parameter_counts, serialized_size

CELLS = ("rnn", "lstm", "gru")
VOCAB = 12
FEATURES = 3
LENGTHS = [5, 1, 7, 3]
PADDED_LEN = 9  # longer than every sequence: trailing all-padding steps must not matter either
TOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # Tiny models run far slower with several threads (pure sync overhead, worse on a busy CPU).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_spec(
    task: str, cell: str = "lstm", bidirectional: bool = False, **overrides: object
) -> ModelSpec:
    values = dict(task=task, cell=cell, hidden=8, layers=2, bidirectional=bidirectional, embed=6)
    values.update(num_outputs=VOCAB if task in ("lm", "seq2seq") else 4)
    if overrides.pop("numeric", False):
        values.update(input_size=FEATURES)
    else:
        values.update(vocab_size=VOCAB)
    if task == "seq2seq":
        values.update(attention="luong")
    values.update(overrides)
    return ModelSpec(**values)


def make_batch(spec: ModelSpec, lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs whose padding is random garbage, so a model that reads padding is caught."""
    gen = torch.Generator().manual_seed(seed)
    shape = (len(lengths), PADDED_LEN)
    if spec.input_size:
        inputs = torch.randn(*shape, spec.input_size, generator=gen)
    else:
        inputs = torch.randint(4, spec.vocab_size, shape, generator=gen)
    return inputs, torch.tensor(lengths, dtype=torch.long)


def build(spec: ModelSpec, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(spec).eval()


HEAD_CASES = [
    (task, cell, bidirectional, numeric)
    for task in ("classify", "tag", "regress", "lm")
    for cell in CELLS
    for bidirectional in (False, True)
    for numeric in (False, True)
    if task != "lm" or not (bidirectional or numeric)
]
POOLED_CASES = [
    (*case, pooling)
    for case in HEAD_CASES
    for pooling in ("last", "mean", "max")
    if case[0] in ("classify", "regress")
] + [(*case, "last") for case in HEAD_CASES if case[0] in ("tag", "lm")]


@pytest.mark.parametrize(("task", "cell", "bidirectional", "numeric"), HEAD_CASES)
def test_head_output_shapes(task: str, cell: str, bidirectional: bool, numeric: bool) -> None:
    spec = make_spec(task, cell, bidirectional, numeric=numeric)
    model = build(spec)
    inputs, lengths = make_batch(spec, LENGTHS)
    out = model(inputs, lengths)
    batch = len(LENGTHS)
    expected = {
        "classify": (batch, 4),
        "regress": (batch, 4),
        "tag": (batch, PADDED_LEN, 4),
        "lm": (batch, PADDED_LEN, VOCAB),
    }[task]
    assert out.shape == expected
    assert model.spec is spec


@pytest.mark.parametrize(("task", "cell", "bidirectional", "numeric", "pooling"), POOLED_CASES)
def test_padding_never_changes_a_result(
    task: str, cell: str, bidirectional: bool, numeric: bool, pooling: str
) -> None:
    spec = make_spec(task, cell, bidirectional, numeric=numeric, pooling=pooling)
    model = build(spec)
    inputs, lengths = make_batch(spec, LENGTHS)
    with torch.no_grad():
        batched = model(inputs, lengths)
        for row, length in enumerate(LENGTHS):
            alone = model(inputs[row : row + 1, :length], lengths[row : row + 1])
            expected = batched[row : row + 1]
            if task in ("tag", "lm"):
                expected = expected[:, :length]
            assert (alone - expected).abs().max().item() < TOL


@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_pooling_reads_each_directions_final_step(bidirectional: bool) -> None:
    spec = make_spec("classify", "gru", bidirectional, layers=1)
    model = build(spec)
    inputs, lengths = make_batch(spec, LENGTHS)
    outputs, final = model.encoder(inputs, lengths)
    pooled = top_hidden(final, spec.layers, spec.directions)
    for row, length in enumerate(LENGTHS):
        assert torch.allclose(pooled[row, :8], outputs[row, length - 1, :8])
        if bidirectional:
            assert torch.allclose(pooled[row, 8:], outputs[row, 0, 8:])


def test_build_model_picks_the_class_for_each_task() -> None:
    expected = {
        "classify": SequenceClassifier,
        "regress": SequenceClassifier,
        "tag": SequenceTagger,
        "lm": LanguageModel,
        "seq2seq": Seq2Seq,
    }
    for task, cls in expected.items():
        spec = make_spec(task)
        model = build_model(spec)
        assert type(model) is cls and model.spec is spec


@pytest.mark.parametrize("name", sorted(ATTENTIONS))
def test_attention_ignores_padding_and_normalises(name: str) -> None:
    torch.manual_seed(0)
    attention = ATTENTIONS[name](5, 7)
    query, keys = torch.randn(3, 5), torch.randn(3, 4, 7)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    context, weights = attention(query, keys, mask)
    assert torch.allclose(weights.sum(dim=1), torch.ones(3))
    assert (weights[~mask] == 0).all()
    assert torch.allclose(context, torch.einsum("bs,bsd->bd", weights, keys), atol=1e-6)
    scrambled = keys.masked_fill(~mask.unsqueeze(-1), 100.0)
    assert torch.allclose(attention(query, scrambled, mask)[0], context, atol=1e-6)


# ---- language model generation ----


@pytest.mark.parametrize("cell", CELLS)
def test_generate_is_seeded_and_respects_length(cell: str) -> None:
    model = build(make_spec("lm", cell)).train()
    runs = [
        model.generate(
            [4, 5], 7, temperature=1.3, top_k=5, generator=torch.Generator().manual_seed(3)
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert len(runs[0]) == 7 and all(0 <= token < VOCAB for token in runs[0])
    assert model.training, "generate must restore the caller's mode"
    assert model.generate([], 0) == []


@pytest.mark.parametrize("cell", CELLS)
def test_greedy_generation_is_argmax_of_forward(cell: str) -> None:
    model = build(make_spec("lm", cell))
    prefix = [4, 7, 5]
    generated = model.generate(prefix, 6, temperature=0.0)
    assert model.generate(prefix, 6, top_k=1) == generated
    full = torch.tensor([prefix + generated[:-1]])
    logits = model(full, torch.tensor([full.size(1)]))[0, len(prefix) - 1 :, len(SPECIALS) :]
    assert (logits.argmax(dim=-1) + len(SPECIALS)).tolist() == generated  # specials never emitted


def test_generate_rejects_bad_sampling_settings() -> None:
    model = build(make_spec("lm"))
    with pytest.raises(ValueError, match="temperature"):
        model.generate([4], 3, temperature=-0.5)
    with pytest.raises(ValueError, match="top_k"):
        model.generate([4], 3, top_k=0)


def test_top_k_sampling_stays_in_the_top_k() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.9, -1.0]]).repeat(200, 1)
    picks = sample_next(logits, 1.0, 2, torch.Generator().manual_seed(0))
    assert set(picks.tolist()) == {1, 3}


# ---- seq2seq ----

SEQ2SEQ_CASES = [
    (cell, attention, bidirectional)
    for cell in CELLS
    for attention in sorted(ATTENTIONS)
    for bidirectional in (False, True)
]


def make_seq2seq(cell: str, attention: str, bidirectional: bool, **overrides: object) -> Seq2Seq:
    spec = make_spec("seq2seq", cell, bidirectional, attention=attention, **overrides)
    return build(spec)


def target_batch(length: int = 6, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    tgt = torch.randint(4, VOCAB, (len(LENGTHS), length), generator=gen)
    tgt[:, 0] = BOS_ID
    return tgt


@pytest.mark.parametrize(("cell", "attention", "bidirectional"), SEQ2SEQ_CASES)
def test_seq2seq_teacher_forcing_matches_decode_steps(
    cell: str, attention: str, bidirectional: bool
) -> None:
    model = make_seq2seq(cell, attention, bidirectional)
    src, src_lengths = make_batch(model.spec, LENGTHS)
    tgt_in = target_batch()
    logits = model(src, src_lengths, tgt_in)
    assert logits.shape == (len(LENGTHS), tgt_in.size(1), VOCAB)
    memory, mask, state = model.encode(src, src_lengths)
    for t in range(tgt_in.size(1)):
        step_logits, state = model.decode_step(tgt_in[:, t], state, memory, mask)
        assert all(isinstance(part, torch.Tensor) for part in state)
        assert torch.allclose(step_logits, logits[:, t], atol=TOL)


@pytest.mark.parametrize(("cell", "attention", "bidirectional"), SEQ2SEQ_CASES)
def test_seq2seq_source_padding_never_changes_a_result(
    cell: str, attention: str, bidirectional: bool
) -> None:
    model = make_seq2seq(cell, attention, bidirectional)
    src, src_lengths = make_batch(model.spec, LENGTHS)
    tgt_in = target_batch()
    with torch.no_grad():
        batched = model(src, src_lengths, tgt_in)
        for row, length in enumerate(LENGTHS):
            alone = model(
                src[row : row + 1, :length], src_lengths[row : row + 1], tgt_in[row : row + 1]
            )
            assert (alone - batched[row : row + 1]).abs().max().item() < TOL
    per_example = [
        model.greedy(src[row : row + 1, :length], src_lengths[row : row + 1], 5)[0]
        for row, length in enumerate(LENGTHS)
    ]
    assert model.greedy(src, src_lengths, 5) == per_example


@pytest.mark.parametrize(("cell", "attention", "bidirectional"), SEQ2SEQ_CASES)
def test_beam_of_one_equals_greedy(cell: str, attention: str, bidirectional: bool) -> None:
    model = make_seq2seq(cell, attention, bidirectional)
    src, src_lengths = make_batch(model.spec, LENGTHS)
    greedy = model.greedy(src, src_lengths, 6)
    assert model.beam_search(src, src_lengths, beam=1, max_len=6) == greedy
    for output in model.beam_search(src, src_lengths, beam=3, max_len=6):
        assert len(output) <= 6 and EOS_ID not in output


@pytest.mark.parametrize("attention", sorted(ATTENTIONS))
def test_decoding_stops_at_eos(attention: str) -> None:
    model = make_seq2seq("gru", attention, False)
    src, src_lengths = make_batch(model.spec, LENGTHS)
    with torch.no_grad():
        model.out.bias[EOS_ID] = 1e4  # EOS always wins: every output is empty
    assert model.greedy(src, src_lengths, 5) == [[]] * len(LENGTHS)
    assert model.beam_search(src, src_lengths, 2, 5) == [[]] * len(LENGTHS)
    with torch.no_grad():
        model.out.bias[EOS_ID] = -1e4  # EOS never wins: every output runs to max_len
    assert all(len(output) == 5 for output in model.greedy(src, src_lengths, 5))
    with pytest.raises(ValueError, match="beam"):
        model.beam_search(src, src_lengths, 0, 5)


def copy_task() -> tuple[torch.Tensor, ...]:
    sources = [[4, 5, 6], [7, 8], [9, 4, 8, 5], [6, 10, 11, 7, 9]]
    width = max(len(s) for s in sources) + 1
    src = torch.full((4, width - 1), PAD_ID)
    tgt_in = torch.full((4, width), PAD_ID)
    tgt_out = torch.full((4, width), PAD_ID)
    for row, seq in enumerate(sources):
        src[row, : len(seq)] = torch.tensor(seq)
        tgt_in[row, : len(seq) + 1] = torch.tensor([BOS_ID, *seq])
        tgt_out[row, : len(seq) + 1] = torch.tensor([*seq, EOS_ID])
    lengths = torch.tensor([len(s) for s in sources])
    return src, lengths, tgt_in, tgt_out, sources


@pytest.mark.parametrize(("cell", "attention"), [(c, a) for c in CELLS for a in sorted(ATTENTIONS)])
def test_seq2seq_overfits_a_copy_task(cell: str, attention: str) -> None:
    model = make_seq2seq(cell, attention, True, hidden=16, layers=1, dropout=0.0).train()
    src, lengths, tgt_in, tgt_out, sources = copy_task()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(100):
        logits = model(src, lengths, tgt_in)
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB), tgt_out.reshape(-1), ignore_index=PAD_ID
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.greedy(src, lengths, 8) == sources
    assert model.beam_search(src, lengths, 3, 8) == sources


# ---- trainability ----

GRADIENT_SPECS = [
    make_spec("classify", "lstm", True, pooling="mean"),
    make_spec("regress", "rnn", False, numeric=True, pooling="max"),
    make_spec("tag", "gru", True),
    make_spec("lm", "lstm"),
    make_spec("seq2seq", "lstm", True, attention="bahdanau"),
    make_spec("seq2seq", "gru", False, attention="luong"),
]


@pytest.mark.parametrize("spec", GRADIENT_SPECS, ids=lambda spec: f"{spec.task}-{spec.cell}")
def test_gradients_reach_every_parameter(spec: ModelSpec) -> None:
    model = build(spec).train()
    inputs, lengths = make_batch(spec, LENGTHS)
    extra = (target_batch(),) if spec.task == "seq2seq" else ()
    model(inputs, lengths, *extra).square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_parameter_counts_and_size_follow_the_weights():
    layer = nn.Linear(4, 3)
    assert parameter_counts(layer) == (15, 15)
    with torch.no_grad():
        layer.weight[0].zero_()
    assert parameter_counts(layer) == (15, 11)
    # float32 weights and bias, plus a few KiB of zip framing and pickled keys
    assert 4 * 1230 < serialized_size(nn.Linear(40, 30)) < 4 * 1230 + 4096
