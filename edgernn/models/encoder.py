"""The recurrent encoder every model is built on: optional embedding, then one nn.LSTM/GRU/RNN."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from edgernn.config import ModelSpec
from edgernn.models.embedding import make_embedding

# What nn.LSTM takes and returns as state: (h, c); nn.GRU and nn.RNN use h alone.
# Each tensor is (layers * directions, batch, hidden), layer-major as PyTorch lays it out.
RecurrentState = Tensor | tuple[Tensor, Tensor]

RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def make_rnn(spec: ModelSpec, input_size: int, bidirectional: bool) -> nn.RNNBase:
    """Build the plain PyTorch recurrent layer stack that ``spec`` describes.

    Args:
        spec: model hyperparameters (cell, hidden, layers, dropout).
        input_size: features per step fed to the first layer.
        bidirectional: whether to run a backward direction too.

    Returns:
        A batch-first ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` (tanh).
    """
    # PyTorch applies dropout only between layers and warns when there is just one layer.
    dropout = spec.dropout if spec.layers > 1 else 0.0
    return RNN_CLASSES[spec.cell](
        input_size,
        spec.hidden,
        num_layers=spec.layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=dropout,
    )


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Boolean (B, max_len) mask, True on the valid steps of each sequence.

    Args:
        lengths: (B,) int64 valid lengths.
        max_len: padded length T of the batch.

    Returns:
        (B, T) bool tensor on the device of ``lengths``.
    """
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def top_hidden(final: RecurrentState, layers: int, directions: int) -> Tensor:
    """The top layer's final hidden state, directions concatenated (forward first).

    Taken from h_n rather than from the outputs because under packing h_n holds each
    sequence's state at its own last valid step (and the backward direction's state at step 0).

    Args:
        final: h_n, or (h_n, c_n) for LSTM, each (layers * directions, B, H).
        layers: number of stacked layers.
        directions: 1 or 2.

    Returns:
        (B, H * directions) tensor.
    """
    h_n = final[0] if isinstance(final, tuple) else final
    return per_layer(h_n, layers, directions)[-1]


def per_layer(h_n: Tensor, layers: int, directions: int) -> Tensor:
    """Regroup (layers * directions, B, H) into (layers, B, directions * H), forward first."""
    _, batch, hidden = h_n.shape
    grouped = h_n.view(layers, directions, batch, hidden)
    return grouped.permute(0, 2, 1, 3).reshape(layers, batch, directions * hidden)


class RecurrentEncoder(nn.Module):
    """Embedding (token inputs only) followed by a stack of recurrent layers.

    Padding never changes a result: batches are packed, so every sequence is processed
    exactly as if it ran alone. Lengths must be at least 1; ``spec.max_len`` is enforced
    by the data layer, not here.

    Example::

        encoder = RecurrentEncoder(ModelSpec(task="classify", vocab_size=100, hidden=16))
        outputs, final = encoder(tokens, lengths)   # (B, T, 16), (h_n, c_n)
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.embedding: nn.Module | None = None
        input_size = spec.input_size
        if spec.vocab_size > 0:
            self.embedding = make_embedding(spec)
            input_size = spec.embed
        self.rnn = make_rnn(spec, input_size, spec.bidirectional)

    @property
    def output_size(self) -> int:
        """Width of each output step: hidden units times directions."""
        return self.spec.hidden * self.spec.directions

    def forward(
        self, inputs: Tensor, lengths: Tensor, state: RecurrentState | None = None
    ) -> tuple[Tensor, RecurrentState]:
        """Run the encoder over a padded batch.

        Args:
            inputs: (B, T) int64 token ids, or (B, T, F) float features for numeric models.
            lengths: (B,) int64 valid lengths (moved to CPU, as packing requires).
            state: optional initial state in the same layout as the returned ``final``.

        Returns:
            ``(outputs, final)``: outputs (B, T, H * directions), zero at padded steps;
            final h_n (layers * directions, B, H), or (h_n, c_n) for LSTM.
        """
        embedded = self.embedding(inputs) if self.embedding is not None else inputs
        packed = pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, final = self.rnn(packed, state)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=inputs.size(1))
        return outputs, final
