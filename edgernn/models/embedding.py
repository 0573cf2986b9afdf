"""Token embeddings: the plain table, or a low-rank or hashed one for large vocabularies.

A real text model keeps most of its bytes in the V x E table. ``LowRankEmbedding`` stores
V x r + r x E instead (r << E): a table of r-wide rows and a projection to the recurrent
input width, both plain ONNX ops (Gather, MatMul) that int8 export quantizes like any other.
``low_rank_init`` starts it from a trained table by SVD, exact at full rank.
``HashedEmbedding`` stores a fixed number of rows whatever the vocabulary (Mul, Add, Mod and
Gather in ONNX); it starts at random.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgernn.config import ModelSpec, hashed_rows
from edgernn.data.vocab import PAD_ID


class LowRankEmbedding(nn.Module):
    """``proj(table(ids))``: a (V, rank) table and a (rank -> embed) projection without bias.

    The ``<pad>`` row of the table is zero, so a padded step embeds to zero as in
    ``nn.Embedding(padding_idx=0)``.
    """

    def __init__(self, vocab_size: int, rank: int, embed: int):
        super().__init__()
        self.table = nn.Embedding(vocab_size, rank, padding_idx=PAD_ID)
        self.proj = nn.Linear(rank, embed, bias=False)

    def forward(self, ids: Tensor) -> Tensor:
        return self.proj(self.table(ids))


class HashedEmbedding(nn.Module):
    """A fixed number of rows whatever the vocabulary: token ``i`` is the sum of row
    ``i mod m`` of one table and row ``i mod (m - 1)`` of another (complementary partitions,
    Shi et al. 2020, with remainders as the hashes).

    Consecutive sizes are coprime, so by the Chinese remainder theorem every id below
    ``m * (m - 1)`` gets its own pair of rows: no two tokens share their whole embedding
    while the vocabulary is below that, and about 2 * sqrt(V) rows suffice for any V.
    Each table is its own Gather in ONNX (Mod feeds it), so int8 and 4-bit export quantize
    them like any table; ``<pad>`` embeds to zero.
    """

    def __init__(self, buckets: int, embed: int):
        super().__init__()
        # Kept as ints: int8 quantization swaps the tables for modules without num_embeddings.
        self.rows = hashed_rows(buckets)
        self.first = nn.Embedding(self.rows[0], embed)
        self.second = nn.Embedding(self.rows[1], embed)

    def forward(self, ids: Tensor) -> Tensor:
        first = self.first(torch.remainder(ids, self.rows[0]))
        second = self.second(torch.remainder(ids, self.rows[1]))
        return (first + second) * (ids != PAD_ID).unsqueeze(-1)


def make_embedding(spec: ModelSpec) -> nn.Module:
    """The source embedding ``spec`` describes (``spec.vocab_size > 0``)."""
    if spec.embed_rank:
        return LowRankEmbedding(spec.vocab_size, spec.embed_rank, spec.embed)
    if spec.embed_buckets:
        return HashedEmbedding(spec.embed_buckets, spec.embed)
    return nn.Embedding(spec.vocab_size, spec.embed, padding_idx=PAD_ID)


@torch.no_grad()
def low_rank_init(embedding: LowRankEmbedding, table: Tensor) -> None:
    """Set ``embedding`` to the best rank-r approximation of ``table`` (Eckart-Young, by SVD).

    ``table`` (V, E) has the embedding's rows. When E is the embedding's width, ``table`` is
    reproduced up to rounding at full rank (r = E); for another width the table gets the
    leading r directions (U_r S_r) and the projection keeps its random start.

    Example::

        low_rank_init(student.encoder.embedding, teacher.encoder.embedding.weight[kept])
    """
    rank = embedding.table.embedding_dim
    u, s, vh = torch.linalg.svd(table.double(), full_matrices=False)
    rows = u[:, :rank] * s[:rank]
    if rows.size(1) < rank:  # fewer directions than the rank: the rest start at zero
        rows = torch.nn.functional.pad(rows, (0, rank - rows.size(1)))
    embedding.table.weight.copy_(rows.float())
    if table.size(1) == embedding.proj.out_features and vh.size(0) >= rank:
        embedding.proj.weight.copy_(vh[:rank].T.float())
