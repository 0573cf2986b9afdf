"""Encoder-decoder with attention, decoded one token at a time by a single ``decode_step``."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from edgernn.config import ModelSpec
from edgernn.data.vocab import PAD_ID
from edgernn.models.attention import ATTENTIONS
from edgernn.models.encoder import (
    RecurrentEncoder,
    RecurrentState,
    length_mask,
    make_rnn,
    per_layer,
)
from edgernn.models.search import beam_search, eval_mode, greedy_decode
from edgernn.runtime.search import decode_limits

# Decoder state as plain tensors, each (layers, B, hidden): (h, c) for LSTM, (h,) otherwise.
DecoderState = tuple[Tensor, ...]


class EncoderState(NamedTuple):
    """What decoding needs from the source: memory, its mask and the initial decoder state."""

    memory: Tensor  # (B, S, hidden * directions) encoder outputs, zero at padding
    mask: Tensor  # (B, S) bool, True at valid source positions
    state: DecoderState  # initial decoder state from the bridge


class Seq2Seq(nn.Module):
    """Recurrent encoder, attention and a recurrent decoder over ``spec.num_outputs`` tokens.

    ``spec.attention`` picks the decoder wiring. Bahdanau: the previous top hidden state
    queries the memory and the context joins the token embedding as RNN input; the output
    layer reads [h_t; context]. Luong: the RNN reads the embedding alone (no input feeding),
    the new h_t queries the memory and tanh(W_c [context; h_t]) feeds the output layer.

    Example::

        spec = ModelSpec(task="seq2seq", vocab_size=40, num_outputs=40, attention="luong")
        model = Seq2Seq(spec)
        logits = model(src, src_lengths, tgt_in)        # (B, T, 40); tgt_in starts with BOS
        outputs = model.beam_search(src, src_lengths, beam=4, max_len=30)
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.encoder = RecurrentEncoder(spec)
        memory_size = self.encoder.output_size
        self.bahdanau = spec.attention == "bahdanau"
        self.embedding = nn.Embedding(spec.num_outputs, spec.embed, padding_idx=PAD_ID)
        rnn_input = spec.embed + memory_size if self.bahdanau else spec.embed
        self.decoder = make_rnn(spec, rnn_input, bidirectional=False)
        self.attention = ATTENTIONS[spec.attention](spec.hidden, memory_size)
        # One bridge per state tensor: h always, c too for LSTM.
        parts = 2 if spec.cell == "lstm" else 1
        self.bridge = nn.ModuleList(nn.Linear(memory_size, spec.hidden) for _ in range(parts))
        # Luong's attentional layer W_c; Bahdanau reads [h_t; context] directly.
        self.combine = None if self.bahdanau else nn.Linear(memory_size + spec.hidden, spec.hidden)
        self.dropout = nn.Dropout(spec.dropout)
        out_size = spec.hidden + memory_size if self.bahdanau else spec.hidden
        self.out = nn.Linear(out_size, spec.num_outputs)

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderState:
        """Encode a padded source batch.

        Args:
            src: (B, S) source token ids.
            src_lengths: (B,) int64 valid lengths.

        Returns:
            ``EncoderState(memory, mask, state)``.
        """
        memory, final = self.encoder(src, src_lengths)
        mask = length_mask(src_lengths.to(memory.device), memory.size(1))
        return EncoderState(memory, mask, self._bridge(final))

    def _bridge(self, final: RecurrentState) -> DecoderState:
        # Layer l of the decoder starts from layer l of the encoder, directions concatenated.
        parts = final if isinstance(final, tuple) else (final,)
        layers, directions = self.spec.layers, self.spec.directions
        return tuple(
            torch.tanh(bridge(per_layer(part, layers, directions)))
            for bridge, part in zip(self.bridge, parts, strict=True)
        )

    def decode_step(
        self, tokens: Tensor, state: DecoderState, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, DecoderState]:
        """Advance the decoder by one token; used for training, decoding and export alike.

        Args:
            tokens: (B,) previous target tokens (BOS_ID at the first step).
            state: decoder state, each tensor (layers, B, hidden).
            memory: (B, S, hidden * directions) encoder outputs.
            mask: (B, S) bool, True at valid source positions.

        Returns:
            ``(logits, new_state)``: logits (B, num_outputs), state in the same layout.
        """
        embedded = self.embedding(tokens)
        if self.bahdanau:
            context, _ = self.attention(state[0][-1], memory, mask)
            rnn_input = torch.cat([embedded, context], dim=-1)
        else:
            rnn_input = embedded
        hx = state if len(state) == 2 else state[0]
        output, hx = self.decoder(rnn_input.unsqueeze(1), hx)
        hidden = output.squeeze(1)
        if self.bahdanau:
            features = torch.cat([hidden, context], dim=-1)
        else:
            context, _ = self.attention(hidden, memory, mask)
            features = torch.tanh(self.combine(torch.cat([context, hidden], dim=-1)))
        new_state = tuple(hx) if isinstance(hx, tuple) else (hx,)
        return self.out(self.dropout(features)), new_state

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits for every target step.

        Loops over ``decode_step`` rather than running the decoder over the whole sequence,
        so training exercises exactly the graph that decoding and the ONNX export use.

        Args:
            src: (B, S) source token ids.
            src_lengths: (B,) int64 valid source lengths.
            tgt_in: (B, T) target ids shifted right, starting with BOS_ID.

        Returns:
            (B, T, num_outputs) logits; step t predicts target token t.
        """
        memory, mask, state = self.encode(src, src_lengths)
        steps = []
        for t in range(tgt_in.size(1)):
            logits, state = self.decode_step(tgt_in[:, t], state, memory, mask)
            steps.append(logits)
        return torch.stack(steps, dim=1)

    @torch.no_grad()
    def greedy(
        self, src: Tensor, src_lengths: Tensor, max_len: int | None = None
    ) -> list[list[int]]:
        """Batched greedy decoding in eval mode; each row as it would decode alone.

        Args:
            src: (B, S) source token ids.
            src_lengths: (B,) int64 valid lengths.
            max_len: most decoder steps (EOS counts) for every row; default per row
                ``2 * src_len + 10`` (``edgernn.runtime.search.decode_limits``).

        Returns:
            One list of token ids per source, stopped before the first EOS_ID.
        """
        with eval_mode(self):
            limits = decode_limits(src_lengths.tolist(), max_len)
            return greedy_decode(self, self.encode(src, src_lengths), limits)

    @torch.no_grad()
    def beam_search(
        self, src: Tensor, src_lengths: Tensor, beam: int, max_len: int | None = None
    ) -> list[list[int]]:
        """Beam search in eval mode, hypotheses ranked by length-normalised log-probability.

        Args:
            src: (B, S) source token ids.
            src_lengths: (B,) int64 valid lengths.
            beam: beam width (at least 1; 1 equals ``greedy``).
            max_len: most decoder steps (EOS counts) for every row; default per row
                ``2 * src_len + 10`` (``edgernn.runtime.search.decode_limits``).

        Returns:
            One list of token ids per source, EOS_ID excluded.
        """
        if beam < 1:
            raise ValueError(f"beam must be at least 1, got {beam}")
        with eval_mode(self):
            limits = decode_limits(src_lengths.tolist(), max_len)
            return beam_search(self, self.encode(src, src_lengths), beam, limits)
