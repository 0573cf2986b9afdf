"""Task models on top of the recurrent encoder: classify/regress, tag and language modelling."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgernn.config import ModelSpec
from edgernn.data.vocab import BOS_ID, SPECIALS
from edgernn.errors import EdgeRNNError
from edgernn.models.encoder import RecurrentEncoder, RecurrentState, length_mask, top_hidden
from edgernn.models.search import eval_mode, sample_next


class SequenceClassifier(nn.Module):
    """One vector per sequence: class logits (classify) or ``num_outputs`` targets (regress).

    ``spec.pooling`` picks the sequence summary: ``last`` is the top layer's final hidden
    state (both directions for bidirectional models), ``mean``/``max`` pool valid steps only.

    Example::

        model = SequenceClassifier(ModelSpec(task="classify", vocab_size=100, num_outputs=3))
        logits = model(tokens, lengths)   # (B, 3); no softmax
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.encoder = RecurrentEncoder(spec)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(self.encoder.output_size, spec.num_outputs)

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Score each sequence.

        Args:
            inputs: (B, T) token ids or (B, T, F) float features.
            lengths: (B,) int64 valid lengths.

        Returns:
            (B, num_outputs) logits or regression outputs.
        """
        outputs, final = self.encoder(inputs, lengths)
        return self.head(self.dropout(self._pool(outputs, final, lengths)))

    def _pool(self, outputs: Tensor, final: RecurrentState, lengths: Tensor) -> Tensor:
        if self.spec.pooling == "last":
            return top_hidden(final, self.spec.layers, self.spec.directions)
        mask = length_mask(lengths.to(outputs.device), outputs.size(1)).unsqueeze(-1)
        if self.spec.pooling == "mean":
            return (outputs * mask).sum(dim=1) / mask.sum(dim=1)
        return outputs.masked_fill(~mask, float("-inf")).max(dim=1).values


class SequenceTagger(nn.Module):
    """One label per step (e.g. named-entity tags); padded steps get scores the loss must mask.

    Example::

        model = SequenceTagger(ModelSpec(task="tag", vocab_size=100, num_outputs=9))
        logits = model(tokens, lengths)   # (B, T, 9)
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.encoder = RecurrentEncoder(spec)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(self.encoder.output_size, spec.num_outputs)

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Score every step.

        Args:
            inputs: (B, T) token ids or (B, T, F) float features.
            lengths: (B,) int64 valid lengths.

        Returns:
            (B, T, num_outputs) logits.
        """
        outputs, _ = self.encoder(inputs, lengths)
        return self.head(self.dropout(outputs))


class LanguageModel(nn.Module):
    """Unidirectional next-token model over ``spec.num_outputs`` tokens, with sampling.

    Example::

        model = LanguageModel(ModelSpec(task="lm", vocab_size=60, num_outputs=60))
        logits = model(tokens, lengths)                 # (B, T, 60)
        text_ids = model.generate([5, 6], length=20, temperature=0.8, top_k=10)
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        if spec.vocab_size == 0:
            raise EdgeRNNError("a language model needs token inputs (vocab_size > 0)")
        self.spec = spec
        self.encoder = RecurrentEncoder(spec)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(self.encoder.output_size, spec.num_outputs)

    def forward(
        self, inputs: Tensor, lengths: Tensor, state: RecurrentState | None = None
    ) -> Tensor:
        """Next-token logits at every step.

        Args:
            inputs: (B, T) token ids.
            lengths: (B,) int64 valid lengths.
            state: optional initial recurrent state (see ``forward_with_state``).

        Returns:
            (B, T, num_outputs) logits; step t predicts token t + 1.
        """
        return self.forward_with_state(inputs, lengths, state)[0]

    def forward_with_state(
        self, inputs: Tensor, lengths: Tensor, state: RecurrentState | None = None
    ) -> tuple[Tensor, RecurrentState]:
        """Like ``forward`` but also returns the state after each sequence's last valid step.

        Args:
            inputs: (B, T) token ids.
            lengths: (B,) int64 valid lengths.
            state: h (layers, B, H), or (h, c) for LSTM; None starts from zeros.

        Returns:
            ``(logits, state)`` with logits (B, T, num_outputs) and state in the input layout.
        """
        outputs, final = self.encoder(inputs, lengths, state)
        return self.head(self.dropout(outputs)), final

    @torch.no_grad()
    def generate(
        self,
        prefix: list[int],
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Sample a continuation token by token, carrying the recurrent state.

        Runs in eval mode (dropout off) and restores the previous mode afterwards.

        Args:
            prefix: token ids to condition on; empty means start from ``BOS_ID``.
            length: number of tokens to generate (no early stop at EOS).
            temperature: 0 is greedy; higher is more random.
            top_k: sample among the k most likely tokens only; 1 is greedy.
            generator: seeds sampling for reproducible output.

        Returns:
            The ``length`` generated token ids, without the prefix.
        """
        _check_sampling(length, temperature, top_k)
        device = self.head.weight.device
        tokens = torch.tensor([list(prefix) or [BOS_ID]], dtype=torch.long, device=device)
        generated: list[int] = []
        state: RecurrentState | None = None
        with eval_mode(self):
            for _ in range(length):
                lengths = torch.tensor([tokens.size(1)], dtype=torch.long)
                logits, state = self.forward_with_state(tokens, lengths, state)
                # Reserved symbols are never training targets; an undertrained model
                # must not emit them either.
                next_logits = logits[:, -1].clone()
                next_logits[:, : len(SPECIALS)] = float("-inf")
                next_id = sample_next(next_logits, temperature, top_k, generator)
                generated.append(int(next_id[0]))
                tokens = next_id.unsqueeze(1)
        return generated


def _check_sampling(length: int, temperature: float, top_k: int | None) -> None:
    if length < 0:
        raise ValueError(f"length must be at least 0, got {length}")
    if not 0 <= temperature < float("inf"):  # also refuses NaN
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1 (1 is greedy) or None, got {top_k}")
