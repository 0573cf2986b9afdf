"""Streaming graphs: a model over one chunk, from an explicit state to the next state.

Mean/max pooling streams through two more state tensors: the running sum (mean) or maximum
(max) of the encoder outputs, and how many steps it covers; zeros start a new sequence, so
the full-sequence graph is the step graph from a zero state (``edgernn.export.surgery``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgernn.models.encoder import RecurrentState, length_mask


class StepGraph(nn.Module):
    """Streaming: the model over one chunk, from an explicit state to the next state."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs, lengths, state_h, state_c=None):
        state = state_h if state_c is None else (state_h, state_c)
        outputs, final = self.model.encoder(inputs, lengths, state)
        if self.model.spec.task in ("tag", "lm"):
            result = self.model.head(outputs)
        else:
            result = self.model.head(self.model._pool(outputs, final, lengths))
        return (result, *state_parts(final))


class PooledStepGraph(nn.Module):
    """Streaming with mean/max pooling: the running pool travels as state too.

    The pool state comes first so that the optional ``state_c`` can stay last (the exporters
    bind inputs by position and by name alike).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs, lengths, pool, pool_steps, state_h, state_c=None):
        state = state_h if state_c is None else (state_h, state_c)
        outputs, final = self.model.encoder(inputs, lengths, state)
        pooling = self.model.spec.pooling
        summary, pool, pool_steps = running_pool(pooling, outputs, lengths, pool, pool_steps)
        return (self.model.head(summary), pool, pool_steps, *state_parts(final))


def running_pool(
    pooling: str, outputs: Tensor, lengths: Tensor, pool: Tensor, steps: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Mean or max pooling carried across chunks; equals pooling the whole sequence at once.

    Args:
        pooling: ``mean`` or ``max``.
        outputs: this chunk's encoder outputs (B, T, H); steps past ``lengths`` are padding.
        lengths: valid steps of this chunk per row.
        pool: (1, B, H) the sum (mean) or maximum (max) of every earlier step.
        steps: (1, B, 1) how many earlier steps ``pool`` covers; 0 for a new sequence.

    Returns:
        ``(summary, pool, steps)``: the pooled vector so far (B, H) and the next state.
    """
    mask = length_mask(lengths, outputs.size(1)).unsqueeze(-1)
    steps = steps + lengths.to(outputs.dtype).reshape(1, -1, 1)
    if pooling == "mean":
        pool = pool + (outputs * mask).sum(dim=1).unsqueeze(0)
        return pool[0] / steps[0], pool, steps
    chunk = outputs.masked_fill(~mask, float("-inf")).max(dim=1).values.unsqueeze(0)
    # A zero state holds no maximum yet: the first chunk's maximum stands alone.
    started = steps > lengths.to(outputs.dtype).reshape(1, -1, 1)
    pool = torch.where(started, torch.maximum(pool, chunk), chunk)
    return pool[0], pool, steps


def state_parts(state: RecurrentState) -> tuple[Tensor, ...]:
    """A recurrent state as a flat tuple: ``(h,)`` or ``(h, c)``."""
    return state if isinstance(state, tuple) else (state,)
