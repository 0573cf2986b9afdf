"""A user's seq2seq model (by parts) used as a black-box teacher for an edgernn student.

``BlackBoxSeq2SeqTeacher`` puts the user's encoder and one-step decoder (wrapped into
edgernn's seq2seq contract by ``edgernn.own.seq2seq``: edgernn token ids in, logits in
edgernn's target order out) behind edgernn's seq2seq model interface, so
``edgernn.distill`` and ``edgernn.evaluate`` use it as they use an edgernn ``Seq2Seq``:

- ``forward(src, src_lengths, decoder_inputs)``: teacher-forced logits (B, T, V), the encoder
  run once per source and the decoder step by step (word-level KD);
- ``greedy`` / ``beam_search``: decoded target ids (scoring, sequence-level KD), with
  edgernn's own search over the user's decoder step.

The user's encoder may take no lengths, so padding would change its outputs: every source
is encoded at its exact length (rows grouped by length, never padded). Outputs are cached per
row, ``(source, target prefix)`` for logits and ``(source, beam, limit)`` for decodes, so a
training example costs one run of the user's parts for the whole distillation.

Example::

    teacher = black_box_seq2seq_checkpoint(own_model, find_parts(own_model.module), vocab)
    config, notes = black_box_config(CompressConfig(), "seq2seq")
    result = compress(teacher, config, "builtin:translate")
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgernn.checkpoint import Checkpoint
from edgernn.config import ModelSpec
from edgernn.data.meta import DataMeta
from edgernn.data.vocab import EOS_ID, PAD_ID
from edgernn.distill.student import count_params
from edgernn.errors import EdgeRNNError
from edgernn.models.search import beam_search, greedy_decode
from edgernn.models.seq2seq import EncoderState
from edgernn.own.blackbox import MAX_SURROGATE_HIDDEN
from edgernn.own.load import OwnModel
from edgernn.own.seq2seq import (
    DecoderPart,
    EncoderPart,
    Layout,
    Parts,
    probe,
    source_ends,
    token_maps,
    user_ids,
    vocabularies,
)
from edgernn.runtime.search import decode_limits
from edgernn.text import TextRules

CELLS = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}
READING = "a seq2seq model run by parts: its encoder once per source, its decoder step by step"


class BlackBoxSeq2SeqTeacher(nn.Module):
    """The user's seq2seq parts behind edgernn's seq2seq interface, outputs cached per row.

    The user's module stays on the CPU in eval mode whatever ``.to()`` or ``.train()`` asks
    (a cached output must not stand for a dropout sample); outputs go to the inputs' device.
    """

    def __init__(self, module: nn.Module, encoder: EncoderPart, decoder: DecoderPart, spec):
        super().__init__()
        self.module = module.eval()  # registered: the report counts the user's whole model
        self.parts = (encoder.eval(), decoder.eval())  # a tuple: not registered twice
        self.spec = spec
        self.cache: dict[tuple[bytes, bytes], Tensor] = {}  # (source, target prefix) -> logits
        self.decoded: dict[tuple[bytes, int, int], list[int]] = {}  # (source, beam, limit)

    def train(self, mode: bool = True) -> BlackBoxSeq2SeqTeacher:
        super().train(mode)
        self.module.eval()
        return self

    def _apply(self, fn, recurse: bool = True):
        return self  # the user's module runs where it was loaded: .to(device) moves nothing

    def forward(self, src: Tensor, src_lengths: Tensor, decoder_inputs: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V) in edgernn's target order; zeros at padded steps.

        Args:
            src: (B, S) edgernn source ids, padded.
            src_lengths: (B,) valid source lengths.
            decoder_inputs: (B, T) ``<bos>`` + target ids, padded with ``<pad>``.
        """
        sources = _rows(src, src_lengths)
        targets = [row[: _real_steps(row)] for row in decoder_inputs.detach().cpu()]
        pairs = zip(sources, targets, strict=True)
        keys = [(s.numpy().tobytes(), t.numpy().tobytes()) for s, t in pairs]
        missing: dict[int, dict] = {}  # source length -> key -> (source, target)
        for key, source, target in zip(keys, sources, targets, strict=True):
            if key not in self.cache:
                missing.setdefault(len(source), {})[key] = (source, target)
        for group in missing.values():
            self.cache.update(zip(group, self._forced(list(group.values())), strict=True))
        steps = decoder_inputs.size(1)
        out = [F.pad(self.cache[key], (0, 0, 0, steps - len(self.cache[key]))) for key in keys]
        return torch.stack(out).to(decoder_inputs.device)

    @torch.no_grad()
    def _forced(self, pairs: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
        # Sources of one length, so the user's encoder sees no padding; the targets' padded
        # steps run on <pad> and are dropped (a row's decoder never reads another row).
        encoded = self.encode(torch.stack([source for source, _ in pairs]))
        tokens = nn.utils.rnn.pad_sequence([t for _, t in pairs], True, PAD_ID)
        state, steps = encoded.state, []
        for t in range(tokens.size(1)):
            logits, state = self.decode_step(tokens[:, t], state, encoded.memory, encoded.mask)
            steps.append(logits)
        logits = torch.stack(steps, dim=1).float()
        return [logits[i, : len(target)].clone() for i, (_, target) in enumerate(pairs)]

    def encode(self, src: Tensor) -> EncoderState:
        """The user's encoder on sources of one length (B, S), as edgernn's ``encode``."""
        lengths = torch.full((src.size(0),), src.size(1), dtype=torch.int64)
        memory, mask, *states = self.parts[0](src, lengths)
        return EncoderState(memory, mask, tuple(states))

    def decode_step(self, tokens, state, memory, mask) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One step of the user's decoder, as ``Seq2Seq.decode_step``."""
        out = self.parts[1](tokens, memory, mask, *state)
        return out[0], tuple(out[1 : 1 + len(state)])

    @torch.no_grad()
    def greedy(self, src: Tensor, src_lengths: Tensor, max_len: int | None = None) -> list:
        """Greedy decoding over the user's parts: one list of edgernn target ids per row,
        stopped before ``<eos>`` (``Seq2Seq.greedy``'s limits)."""
        return self._decoded(src, src_lengths, 1, max_len)

    @torch.no_grad()
    def beam_search(self, src: Tensor, src_lengths: Tensor, beam: int, max_len=None) -> list:
        """Beam search over the user's parts, ranked as ``Seq2Seq.beam_search``."""
        if beam < 1:
            raise ValueError(f"beam must be at least 1, got {beam}")
        return self._decoded(src, src_lengths, beam, max_len)

    def _decoded(self, src: Tensor, src_lengths: Tensor, beam: int, max_len) -> list:
        sources = _rows(src, src_lengths)
        limits = decode_limits([len(row) for row in sources], max_len)
        keys = [(s.numpy().tobytes(), beam, n) for s, n in zip(sources, limits, strict=True)]
        missing: dict[int, dict] = {}  # source length -> key -> (source, limit)
        for key, source, limit in zip(keys, sources, limits, strict=True):
            if key not in self.decoded:
                missing.setdefault(len(source), {})[key] = (source, limit)
        for group in missing.values():
            encoded = self.encode(torch.stack([source for source, _ in group.values()]))
            group_limits = [limit for _, limit in group.values()]
            if beam == 1:
                outputs = greedy_decode(self, encoded, group_limits)
            else:
                outputs = beam_search(self, encoded, beam, group_limits)
            self.decoded.update(zip(group, outputs, strict=True))
        return [list(self.decoded[key]) for key in keys]


def _rows(src: Tensor, lengths: Tensor) -> list[Tensor]:
    src = src.detach().cpu().long()
    return [src[i, :n] for i, n in enumerate(lengths.tolist())]


def _real_steps(row: Tensor) -> int:
    # Decoder inputs are the framed target <bos> ... <eos> less its last column, padded:
    # a row shorter than the batch keeps its <eos>, whose step has no target. Without it,
    # a row's key is the same in every batch.
    real = (row != PAD_ID).nonzero()
    steps = int(real[-1]) + 1 if len(real) else 0
    return steps - 1 if steps > 1 and int(row[steps - 1]) == EOS_ID else steps


class BlackBoxSeq2SeqCheckpoint(Checkpoint):
    """A ``Checkpoint`` whose model is a ``BlackBoxSeq2SeqTeacher`` (no edgernn weights).

    The teacher is not named ``teacher``: ``compress`` times a classify/regress/tag black
    box through ``BlackBoxRunner``, which does not decode; this one's row stays untimed.
    """

    def __init__(self, teacher: BlackBoxSeq2SeqTeacher, meta: DataMeta, record: dict):
        super().__init__(teacher.spec, meta, {}, compression=record)
        self.seq2seq_teacher = teacher

    def build(self) -> nn.Module:
        """The same teacher every time, so its caches serve every stage."""
        return self.seq2seq_teacher.eval()


def black_box_seq2seq_checkpoint(
    model: OwnModel,
    parts: Parts,
    vocab: dict | list | None = None,
    tokens: str | None = None,
    reason: str = "",
) -> BlackBoxSeq2SeqCheckpoint:
    """The user's seq2seq as a teacher ``compress`` distills an edgernn seq2seq from.

    Args:
        model: the user's whole module and its example (``OwnModel``).
        parts: its encoder and decoder (``edgernn.own.seq2seq.find_parts``).
        vocab: ``--vocab``'s JSON ``{"src": ..., "trg": ...}``; None: the checkpoint's keys.
        tokens: ``char`` or ``word``; None: char when every token is one character.
        reason: how it is read, for the report; default: by parts (``READING``).

    Returns:
        A checkpoint whose ``meta`` encodes data with the user's vocabularies (edgernn's
        reserved ids 0-3 first), so the ids the teacher sees are the user's.

    Raises:
        EdgeRNNError: the parts break the step contract, or a vocabulary is missing.
    """
    layout = probe(parts)
    src_vocab, trg_vocab, wrap = vocabularies(vocab, model.extras)
    src_map, trg_map = token_maps(parts, layout, src_vocab, trg_vocab)
    encoder = EncoderPart(parts, layout, user_ids(src_map)[0], source_ends(src_map, wrap))
    decoder = DecoderPart(parts, layout, *user_ids(trg_map))
    params = sum(p.numel() for p in model.module.parameters())
    spec = seq2seq_surrogate_spec(parts, layout, len(src_map.vocab), len(trg_map.vocab), params)
    kind = tokens or _tokenization(src_map.vocab)
    # The user's tokenizer is unknown: text is only cut at whitespace or into code points.
    rules = TextRules(kind).to_manifest()
    meta = DataMeta("seq2seq", kind, list(src_map.vocab), list(trg_map.vocab), text=rules)
    teacher = BlackBoxSeq2SeqTeacher(model.module, encoder, decoder, spec)
    _check_runs(teacher)
    record = {"class": model.class_name, "source": model.source, "reason": reason or READING}
    record |= {"reading": READING, "parts": list(parts.names), "wrap_source": wrap}
    return BlackBoxSeq2SeqCheckpoint(teacher, meta, {"black_box": record})


def seq2seq_surrogate_spec(
    parts: Parts, layout: Layout, src_size: int, trg_size: int, params: int
) -> ModelSpec:
    """The teacher's size as an edgernn spec: the widest Bahdanau seq2seq of the user's
    decoder cell, layers and encoder direction (embedding as wide as hidden) within
    ``params`` parameters. Students are sized against it as against an edgernn teacher."""
    recurrent = [m for m in parts.decoder.modules() if isinstance(m, nn.RNNBase)]
    cell = CELLS.get(type(recurrent[0]), "gru") if recurrent else "gru"
    if parts.states == 2:
        cell = "lstm"
    encoders = [m for m in parts.encoder.modules() if isinstance(m, nn.RNNBase)]
    shape = {"cell": cell, "layers": layout.state_shapes[0][0]}
    shape |= {"bidirectional": any(m.bidirectional for m in encoders)}
    sizes = {"vocab_size": src_size, "num_outputs": trg_size, "attention": "bahdanau"}

    def spec(hidden: int) -> ModelSpec:
        return ModelSpec("seq2seq", hidden=hidden, embed=hidden, **shape, **sizes)

    low, high = 1, MAX_SURROGATE_HIDDEN
    while low < high:  # parameters grow with the width: binary search
        middle = (low + high + 1) // 2
        low, high = (middle, high) if count_params(spec(middle)) <= params else (low, middle - 1)
    return spec(low)


def _tokenization(vocab: list[str]) -> str:
    words = [token for token in vocab[4:] if not token.startswith("<id ")]
    return "char" if words and all(len(token) == 1 for token in words) else "word"


def _check_runs(teacher: BlackBoxSeq2SeqTeacher) -> None:
    # Two sources of different lengths, padded: the grouping and both interfaces run now.
    token = 4 if teacher.spec.vocab_size > 4 else 1
    src, lengths = torch.full((2, 3), token), torch.tensor([3, 2])
    try:
        teacher(src, lengths, torch.tensor([[2, 3, 3], [2, 3, 0]]))
        teacher.greedy(src, lengths, max_len=2)
    except EdgeRNNError:
        raise
    except Exception as error:  # the user's code can raise anything
        first = (str(error).strip().splitlines() or [""])[0][:160]
        raise EdgeRNNError(f"your seq2seq parts fail on a padded batch: {first}") from None
    teacher.cache.clear()
    teacher.decoded.clear()


__all__ = [
    "BlackBoxSeq2SeqCheckpoint",
    "BlackBoxSeq2SeqTeacher",
    "black_box_seq2seq_checkpoint",
    "seq2seq_surrogate_spec",
]
