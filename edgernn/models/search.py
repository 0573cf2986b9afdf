"""Decoding: token sampling for language models, greedy and beam search for seq2seq."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from edgernn.data.vocab import BOS_ID, EOS_ID
from edgernn.runtime.search import record_step

if TYPE_CHECKING:
    from edgernn.models.seq2seq import EncoderState, Seq2Seq


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Switch dropout off for decoding, then restore whatever mode the caller had."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def sample_next(
    logits: Tensor,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick one token per row of ``logits``.

    Sampling happens on CPU so a CPU ``generator`` gives the same tokens whatever device
    the model runs on.

    Args:
        logits: (B, V) unnormalised scores.
        temperature: 0 means greedy (argmax).
        top_k: keep only the k best tokens before sampling; 1 means greedy.
        generator: optional seeded CPU generator.

    Returns:
        (B,) int64 token ids on the device of ``logits``.
    """
    if temperature == 0 or top_k == 1:
        return logits.argmax(dim=-1)
    # As edgernn.runtime.search.sample_next: shift, then divide in float64, so a tiny
    # temperature sends the others to -inf (probability 0) instead of inf / inf = NaN.
    scores = logits.detach().double().cpu()
    scores = (scores - scores.max(dim=-1, keepdim=True).values) / temperature
    if top_k is not None and top_k < scores.size(-1):
        kth_best = scores.topk(top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth_best, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1).to(logits.device)


def greedy_decode(model: Seq2Seq, encoded: EncoderState, limits: list[int]) -> list[list[int]]:
    """Batched greedy decoding from BOS; row i stops at its first EOS (not included) or after
    ``limits[i]`` steps, as ``edgernn.runtime.search.greedy``.

    Args:
        model: the seq2seq model whose ``decode_step`` is used.
        encoded: the model's ``encode`` output for the whole batch.
        limits: most decoder steps per row (``edgernn.runtime.search.decode_limits``).

    Returns:
        One list of target token ids per source sequence.
    """
    batch = encoded.memory.size(0)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=encoded.memory.device)
    state = encoded.state
    outputs: list[list[int]] = [[] for _ in range(batch)]
    done = [limit < 1 for limit in limits]
    for _ in range(max(limits, default=0)):
        logits, state = model.decode_step(tokens, state, encoded.memory, encoded.mask)
        tokens = logits.argmax(dim=-1)
        if record_step(outputs, done, tokens.tolist(), limits):
            break
    return outputs


def beam_search(
    model: Seq2Seq, encoded: EncoderState, beam: int, limits: list[int]
) -> list[list[int]]:
    """Beam search per source sequence, ranked as ``edgernn.runtime.search.beam_search``.

    Args:
        model: the seq2seq model whose ``decode_step`` is used.
        encoded: the model's ``encode`` output for the whole batch.
        beam: hypotheses kept per step; 1 reproduces greedy decoding.
        limits: most decoder steps per row (``edgernn.runtime.search.decode_limits``).

    Returns:
        One list of target token ids per source sequence, EOS excluded.
    """
    results = []
    for row in range(encoded.memory.size(0)):
        memory = encoded.memory[row : row + 1]
        mask = encoded.mask[row : row + 1]
        state = tuple(part[:, row : row + 1].contiguous() for part in encoded.state)
        results.append(_beam_one(model, memory, mask, state, beam, limits[row]))
    return results


def _beam_one(
    model: Seq2Seq,
    memory: Tensor,
    mask: Tensor,
    state: tuple[Tensor, ...],
    beam: int,
    max_len: int,
) -> list[int]:
    # A shrinking beam: each step keeps the `beam` best extensions; those ending in EOS are
    # set aside as finished, so the live beam narrows until it is empty or max_len is reached.
    alive: list[list[int]] = [[]]
    scores = torch.zeros(1, device=memory.device)
    tokens = torch.full((1,), BOS_ID, dtype=torch.long, device=memory.device)
    finished: list[tuple[float, list[int]]] = []
    for _ in range(max_len):
        width = len(alive)
        logits, state = model.decode_step(
            tokens, state, memory.expand(width, -1, -1), mask.expand(width, -1)
        )
        total = scores.unsqueeze(1) + torch.log_softmax(logits.float(), dim=-1)
        best, flat = total.view(-1).topk(min(beam, total.numel()))
        origins, words = flat // total.size(1), flat % total.size(1)
        origin_list, word_list = origins.tolist(), words.tolist()
        for score, origin, word in zip(best.tolist(), origin_list, word_list, strict=True):
            if word == EOS_ID:
                # EOS counts as a token so a shorter finished hypothesis is not favoured for free.
                finished.append((score / (len(alive[origin]) + 1), alive[origin]))
        keep = [index for index, word in enumerate(word_list) if word != EOS_ID]
        if not keep:
            break
        kept = torch.tensor(keep, device=memory.device)
        alive = [alive[origin_list[index]] + [word_list[index]] for index in keep]
        scores, tokens = best[kept], words[kept]
        state = tuple(part.index_select(1, origins[kept]) for part in state)
    else:
        for score, seq in zip(scores.tolist(), alive, strict=True):
            finished.append((score / max(len(seq), 1), seq))
    return max(finished, key=lambda item: item[0])[1]
