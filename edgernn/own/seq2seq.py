"""A user's seq2seq model by parts: its encoder, its one-step decoder, and the step contract.

A tutorial seq2seq (``Seq2Seq.forward(src, trg, teacher_forcing_ratio)``) loops over the
target in Python with random teacher forcing, so it is no single graph; its parts are. The
encoder runs once per source and the decoder once per target token, with this contract
(read from the decoder's signature, checked by running both on a probe):

    encoder(src[, src_len])                       -> (encoder_outputs, hidden[, cell])
    decoder(input, hidden[, cell], encoder_outputs[, mask])
                                                  -> (prediction, hidden[, cell][, attention])

``EncoderPart`` and ``DecoderPart`` wrap the parts into edgernn's own seq2seq graph contract
(README "Graph I/O contract"): edgernn token ids (ids 0-3 reserved; lookup tables give the
user's ids), memory batch-first, states (layers, batch, hidden), logits in edgernn's target
order. The runtime then decodes a user's bundle with the greedy and beam search it runs on
edgernn's own graphs, and the manifest records how each graph tensor maps to the parts.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from edgernn.errors import EdgeRNNError
from edgernn.own.vocab import TokenMap, find_in_extras, token_map

MEMORY_NAMES = ("encoder_outputs", "encoder_output", "enc_outputs", "enc_output", "memory")
MEMORY_NAMES += ("context", "annotations", "encoder_states", "enc_out", "encoder_out")
STATE_NAMES = ("state_h", "state_c")  # edgernn's decoder state names, as edgernn.export.graphs
AS_IS = "or export the whole module as it is with --no-adopt"
PROBE_BATCH, PROBE_STEPS = 5, 7  # unequal, so a state's batch axis tells the layout
MISSING_LOGIT = -1e9  # an edgernn target id the user's vocabulary lacks: never chosen
CONTRACT = (
    "expected decoder.forward(input, hidden[, cell], encoder_outputs[, mask]) returning "
    "(prediction, hidden[, cell][, attention]) and encoder.forward(src[, src_len]) returning "
    "(encoder_outputs, hidden[, cell])"
)


@dataclass(frozen=True)
class Parts:
    """A user's seq2seq split into the two modules edgernn exports, and their signatures."""

    encoder: nn.Module
    decoder: nn.Module
    names: tuple[str, str]  # the submodules' attribute names (encoder, decoder)
    decoder_args: tuple[str, ...]  # its positional arguments: token, states..., memory[, mask]
    states: int  # 1 (GRU/RNN: hidden) or 2 (LSTM: hidden, cell)
    takes_mask: bool  # decoder(..., mask): the source mask (batch, src_len), True where valid
    takes_lengths: bool  # encoder(src, src_len)


@dataclass(frozen=True)
class Layout:
    """What a probe run of the parts showed."""

    time_major: bool  # src (src_len, batch) and encoder_outputs (src_len, batch, D)
    state_ranks: tuple[int, ...]  # 2: (batch, hidden); 3: (layers, batch, hidden)
    state_shapes: tuple[tuple[int, int], ...]  # (layers, hidden) per state
    memory_size: int  # D
    attention: bool  # the decoder also returns its attention weights
    src_rows: int  # the encoder's embedding rows
    trg_rows: int  # the decoder's prediction width (target vocabulary size)


def find_parts(
    module: nn.Module, encoder: str | None = None, decoder: str | None = None
) -> Parts | None:
    """The encoder and decoder of a seq2seq ``module``, or None when it is not one.

    Without names, a module is a seq2seq when it has ``encoder`` and ``decoder`` submodules
    and its ``forward`` takes at least two inputs (``src``, ``trg``).

    Raises:
        EdgeRNNError: a named part is missing, or a part's ``forward`` breaks the contract.
    """
    named = encoder is not None or decoder is not None
    names = (encoder or "encoder", decoder or "decoder")
    found = [getattr(module, name, None) for name in names]
    if not named and (not all(isinstance(p, nn.Module) for p in found) or _arity(module) < 2):
        return None
    for flag, name, part in zip(("--encoder", "--decoder"), names, found, strict=True):
        if not isinstance(part, nn.Module):
            children = ", ".join(name for name, _ in module.named_children()) or "none"
            raise EdgeRNNError(
                f"{flag} {name}: the model has no submodule {name!r} (its submodules: "
                f"{children}); name the part with {flag} NAME"
            )
    args = _positional(found[1])
    memory = next((i for i, a in enumerate(args) if a.lower() in MEMORY_NAMES), None)
    rest = args[memory + 1 :] if memory is not None else []
    if memory is None or not 2 <= memory <= 3 or len(rest) > 1 or (rest and "mask" not in rest[0]):
        raise EdgeRNNError(
            f"{names[1]}.forward({', '.join(args)}) is not a one-step decoder edgernn can "
            f"export: {CONTRACT}; wrap your decoder in a module with that signature ({AS_IS})"
        )
    lengths = len(_positional(found[0]))
    if lengths not in (1, 2):
        raise EdgeRNNError(
            f"{names[0]}.forward takes {lengths} inputs: {CONTRACT}; wrap your encoder ({AS_IS})"
        )
    return Parts(*found, names, tuple(args), memory - 1, bool(rest), lengths == 2)


def _positional(module: nn.Module) -> list[str]:
    # Required positional arguments only: trailing ones with defaults are never passed.
    params = inspect.signature(module.forward).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds and p.default is inspect.Parameter.empty]


def _arity(module: nn.Module) -> int:
    params = inspect.signature(module.forward).parameters.values()
    return sum(p.kind is not inspect.Parameter.VAR_KEYWORD for p in params)


def probe(parts: Parts) -> Layout:
    """Run the parts once in each layout; the one whose states have the probe's batch wins.

    Raises:
        EdgeRNNError: neither layout runs, or the outputs break the contract.
    """
    src_rows = _embedding_rows(parts.encoder, parts.names[0])
    ids = torch.arange(PROBE_BATCH * PROBE_STEPS).remainder(src_rows)
    errors = []
    for time_major in (True, False):
        shape = (PROBE_STEPS, PROBE_BATCH) if time_major else (PROBE_BATCH, PROBE_STEPS)
        try:
            return _probe_layout(parts, ids.reshape(shape), time_major, src_rows)
        except Exception as error:  # the user's code can raise anything
            reading = "time-major" if time_major else "batch-first"
            errors.append(f"{reading}: {(str(error).strip().splitlines() or [''])[0][:160]}")
    raise EdgeRNNError(
        f"cannot run {parts.names[0]} then {parts.names[1]} one step ({'; '.join(errors)}); "
        f"{CONTRACT}"
    )


def _probe_layout(parts: Parts, src: Tensor, time_major: bool, src_rows: int) -> Layout:
    lengths = torch.full((PROBE_BATCH,), PROBE_STEPS, dtype=torch.int64)
    with torch.no_grad():
        memory, *states = parts.encoder(*((src, lengths) if parts.takes_lengths else (src,)))
        if memory.dim() != 3 or tuple(memory.shape[:2]) != tuple(src.shape):
            raise EdgeRNNError(f"encoder_outputs {list(memory.shape)} for src {list(src.shape)}")
        if len(states) != parts.states or any(
            s.dim() not in (2, 3) or s.shape[-2] != PROBE_BATCH for s in states
        ):
            shapes = [list(s.shape) for s in states]
            raise EdgeRNNError(f"states {shapes}: expected {parts.states} of batch {PROBE_BATCH}")
        if memory.abs().max() > 1.0001:
            raise EdgeRNNError("encoder_outputs outside [-1, 1]: not recurrent outputs")
        tokens = torch.zeros(PROBE_BATCH, dtype=torch.int64)
        mask = torch.ones(PROBE_BATCH, PROBE_STEPS, dtype=torch.bool)
        out = parts.decoder(tokens, *states, memory, *([mask] if parts.takes_mask else []))
    out = (out,) if isinstance(out, Tensor) else tuple(out)
    new = out[1 : 1 + parts.states]
    if len(out) - 1 - parts.states not in (0, 1) or out[0].dim() != 2:
        raise EdgeRNNError(f"the decoder returns {len(out)} values: {CONTRACT}")
    if [s.shape for s in new] != [s.shape for s in states]:
        raise EdgeRNNError("the decoder's new states are not shaped like its input states")
    return Layout(
        time_major=time_major,
        state_ranks=tuple(s.dim() for s in states),
        state_shapes=tuple((s.shape[0] if s.dim() == 3 else 1, s.shape[-1]) for s in states),
        memory_size=memory.shape[2],
        attention=len(out) > 1 + parts.states,
        src_rows=src_rows,
        trg_rows=out[0].shape[1],
    )


def _embedding_rows(part: nn.Module, name: str) -> int:
    table = next((m for m in part.modules() if isinstance(m, nn.Embedding)), None)
    if table is None:
        raise EdgeRNNError(f"{name} has no nn.Embedding: a seq2seq by parts reads token ids")
    return table.num_embeddings


def padding_idx(part: nn.Module) -> int | None:
    """The ``padding_idx`` of the part's first ``nn.Embedding`` (taken as ``<pad>``)."""
    table = next((m for m in part.modules() if isinstance(m, nn.Embedding)), None)
    return None if table is None else table.padding_idx


def _to_state(value: Tensor) -> Tensor:
    return value.unsqueeze(0) if value.dim() == 2 else value  # (batch, hidden) -> (1, B, H)


class EncoderPart(nn.Module):
    """The user's encoder as edgernn's encoder graph: ``src`` (edgernn ids, batch-first),
    ``src_lengths`` -> ``memory`` (B, S, D), ``mask`` (B, S), ``state_h`` [, ``state_c``]."""

    def __init__(self, parts: Parts, layout: Layout, src_ids: Tensor, wrap: tuple | None = None):
        super().__init__()
        self.encoder, self.time_major = parts.encoder, layout.time_major
        self.takes_lengths, self.wrap = parts.takes_lengths, wrap  # wrap: the user's <sos>, <eos>
        self.register_buffer("src_ids", src_ids)  # edgernn id -> the user's id

    def forward(self, src, src_lengths):
        user = self.src_ids[src]
        if self.wrap is not None:  # the source as the user trained it: <sos> tokens <eos>
            ends = torch.ones_like(user[:, :1])
            user = torch.cat((ends * self.wrap[0], user, ends * self.wrap[1]), dim=1)
            src_lengths = src_lengths + 2
        if self.time_major:
            user = user.transpose(0, 1)
        memory, *states = self.encoder(*((user, src_lengths) if self.takes_lengths else (user,)))
        if self.time_major:
            memory = memory.transpose(0, 1)
        mask = torch.arange(memory.shape[1]).unsqueeze(0) < src_lengths.unsqueeze(1)
        return (memory, mask, *[_to_state(state) for state in states])


class DecoderPart(nn.Module):
    """The user's decoder as edgernn's one-step decoder graph: ``tokens`` (edgernn target
    ids), ``memory``, ``mask``, states -> ``logits`` in edgernn's target order, new states
    [, ``attention``]."""

    def __init__(self, parts: Parts, layout: Layout, trg_ids: Tensor, missing: Tensor):
        super().__init__()
        self.decoder, self.takes_mask = parts.decoder, parts.takes_mask
        self.time_major, self.ranks = layout.time_major, layout.state_ranks
        self.register_buffer("trg_ids", trg_ids)  # edgernn target id -> the user's id
        self.register_buffer("missing", missing)  # edgernn target ids the user has not

    def forward(self, tokens, memory, mask, state_h, state_c=None):
        states = (state_h,) if state_c is None else (state_h, state_c)
        states = [s.squeeze(0) if r == 2 else s for s, r in zip(states, self.ranks, strict=True)]
        if self.time_major:
            memory = memory.transpose(0, 1)
        extra = [mask] if self.takes_mask else []
        out = self.decoder(self.trg_ids[tokens], *states, memory, *extra)
        out = (out,) if isinstance(out, Tensor) else tuple(out)
        logits = out[0][:, self.trg_ids].masked_fill(self.missing, MISSING_LOGIT)
        new = [_to_state(state) for state in out[1 : 1 + len(states)]]
        return (logits, *new, *out[1 + len(states) :])


SRC_KEYS = ("src", "source", "src_vocab", "source_vocab", "src_stoi", "src_itos", "SRC")
TRG_KEYS = ("trg", "tgt", "target", "trg_vocab", "tgt_vocab", "target_vocab", "trg_stoi")
TRG_KEYS += ("trg_itos", "TRG")


def vocabularies(given: dict | list | None, extras: dict) -> tuple:
    """``(src, trg, wrap_source)``: the user's vocabularies (token -> id, or tokens by id), and
    whether a source is fed as ``<sos> tokens <eos>`` (the tutorial's ``translate_sentence``).

    Args:
        given: ``--vocab``'s JSON: an object ``{"src": ..., "trg": ...[, "wrap_source": true]}``.
        extras: the checkpoint dict's other keys (``src_vocab``/``trg_vocab``, ..., or a
            ``vocab`` object holding both).

    Raises:
        EdgeRNNError: no source and target vocabulary found.
    """
    holders = [given] if given is not None else [extras, extras.get("vocab")]
    for holder in holders:
        if isinstance(holder, dict):
            src, trg = (find_in_extras(holder, keys) for keys in (SRC_KEYS, TRG_KEYS))
            wrap = holder.get("wrap_source", False)
            if not isinstance(wrap, bool):
                raise EdgeRNNError(f"--vocab: wrap_source must be true or false, got {wrap!r}")
            if src is not None and trg is not None:
                return src, trg, wrap
    raise EdgeRNNError(
        "a seq2seq model needs its source and target vocabularies: --vocab vocab.json holding "
        '{"src": ..., "trg": ...} (each token -> id, or a list of tokens by id), or src_vocab '
        "and trg_vocab keys in the checkpoint dict"
    )


def token_maps(parts: Parts, layout: Layout, src_vocab, trg_vocab) -> tuple[TokenMap, TokenMap]:
    """Both vocabularies in edgernn's layout (ids 0-3 reserved; ``edgernn.own.vocab``).

    Raises:
        EdgeRNNError: a vocabulary does not fit its embedding, or the target has no
            ``<bos>``/``<sos>`` or ``<eos>`` token (decoding starts and stops at them).
    """
    src = token_map(src_vocab, layout.src_rows, padding_idx(parts.encoder))
    trg = token_map(trg_vocab, layout.trg_rows, padding_idx(parts.decoder))
    missing = [name for name, i in (("<bos>/<sos>", 2), ("<eos>", 3)) if trg.source_ids[i] is None]
    if missing:
        raise EdgeRNNError(
            f"the target vocabulary has no {' or '.join(missing)} token: greedy and beam "
            "decoding start at <bos> and stop at <eos>; name them <sos> (or <bos>, <s>) and "
            "<eos> (or </s>) in it"
        )
    return src, trg


def source_ends(mapping: TokenMap, wrap: bool) -> tuple[int, int] | None:
    """The user's source ``<sos>`` and ``<eos>`` ids when the source is wrapped in them."""
    if not wrap:
        return None
    if None in mapping.source_ids[2:4]:
        raise EdgeRNNError(
            "--vocab: wrap_source needs <sos> (or <bos>, <s>) and <eos> (or </s>) in the "
            "source vocabulary"
        )
    return mapping.source_ids[2], mapping.source_ids[3]


def user_ids(mapping: TokenMap) -> tuple[Tensor, Tensor]:
    """``(ids, missing)``: per edgernn id the user's id, and whether the user has that token
    (an absent one reads as the user's ``<unk>``, else id 0; it is never decoded)."""
    fallback = mapping.source_ids[1] if mapping.source_ids[1] is not None else 0
    ids = [fallback if i is None else i for i in mapping.source_ids]
    missing = [i is None for i in mapping.source_ids]
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(missing, dtype=torch.bool)
