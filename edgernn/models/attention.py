"""Attention over encoder memory: additive (Bahdanau) and multiplicative (Luong "general")."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _attend(scores: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Softmax over valid positions only, then the weighted sum of the keys."""
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)
    return context, weights


class BahdanauAttention(nn.Module):
    """Additive attention: ``score = v^T tanh(W_q q + W_k k)``.

    Args:
        query_size: width Dq of the query (the decoder hidden state).
        key_size: width Dk of each memory step (the encoder output).
        attn_size: width of the hidden scoring layer; defaults to ``query_size``.

    Example::

        attention = BahdanauAttention(16, 32)
        context, weights = attention(query, keys, mask)   # (B, 32), (B, S)
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int | None = None):
        super().__init__()
        attn_size = attn_size or query_size
        self.query_proj = nn.Linear(query_size, attn_size, bias=False)
        self.key_proj = nn.Linear(key_size, attn_size)
        self.score = nn.Linear(attn_size, 1, bias=False)

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attend from one query per row to its memory.

        Args:
            query: (B, Dq).
            keys: (B, S, Dk) memory; also the values.
            mask: (B, S) bool, True at valid positions (at least one per row).

        Returns:
            ``(context, weights)``: context (B, Dk), weights (B, S) summing to 1, 0 at padding.
        """
        hidden = torch.tanh(self.query_proj(query).unsqueeze(1) + self.key_proj(keys))
        return _attend(self.score(hidden).squeeze(-1), keys, mask)


class LuongAttention(nn.Module):
    """Multiplicative "general" attention: ``score = q^T W k``.

    Args:
        query_size: width Dq of the query (the decoder hidden state).
        key_size: width Dk of each memory step (the encoder output).

    Example::

        attention = LuongAttention(16, 32)
        context, weights = attention(query, keys, mask)   # (B, 32), (B, S)
    """

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        self.key_proj = nn.Linear(key_size, query_size, bias=False)

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attend from one query per row to its memory.

        Args:
            query: (B, Dq).
            keys: (B, S, Dk) memory; also the values.
            mask: (B, S) bool, True at valid positions (at least one per row).

        Returns:
            ``(context, weights)``: context (B, Dk), weights (B, S) summing to 1, 0 at padding.
        """
        scores = torch.bmm(self.key_proj(keys), query.unsqueeze(2)).squeeze(2)
        return _attend(scores, keys, mask)


ATTENTIONS: dict[str, type[BahdanauAttention] | type[LuongAttention]] = {
    "bahdanau": BahdanauAttention,
    "luong": LuongAttention,
}
