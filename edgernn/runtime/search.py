"""Decoding for the torch-free runtime: numpy versions of ``edgernn.models.search``.

Kept step for step identical to the PyTorch greedy and beam search (same stopping rules, same
length normalisation, first index on ties), so a bundle decodes the same tokens as the model.
Only numpy is imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BOS_ID, EOS_ID = 2, 3  # as edgernn.data.vocab; duplicated because that package imports torch
DECODE_MARGIN = 10  # the default limit: 2 * source length + this many decoder steps

# tokens (B,), state -> logits (B, V), new state; state is a tuple of (layers, B, H) arrays.
StepFn = Callable[[np.ndarray, tuple[np.ndarray, ...]], tuple[np.ndarray, tuple[np.ndarray, ...]]]


def decode_limits(
    src_lengths: Sequence[int], max_len: int | None = None, cap: int | None = None
) -> list[int]:
    """The most decoder steps per source row: the one definition of the decode limit.

    A step emits one token, ``<eos>`` included, so a row returns at most ``limit`` tokens
    (``<eos>`` never returned), and exactly ``limit`` only when it was cut off.
    Each row's limit depends on that row alone, so a batch decodes as its rows would alone.

    Args:
        src_lengths: valid source tokens per row.
        max_len: the same limit for every row; default ``2 * src_len + DECODE_MARGIN``.
        cap: bounds the default (the runtime's ``limits.max_decode``); None: no bound.
    """
    if max_len is not None:
        return [int(max_len)] * len(src_lengths)
    limits = [2 * int(length) + DECODE_MARGIN for length in src_lengths]
    return limits if cap is None else [min(limit, cap) for limit in limits]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def greedy(step: StepFn, state: tuple[np.ndarray, ...], limits: list[int]) -> list[list[int]]:
    """Batched greedy decoding from BOS; row i stops at its first EOS (not included) or
    after ``limits[i]`` steps, whichever comes first.

    Args:
        step: runs the decoder one token for the whole batch.
        state: initial decoder state.
        limits: most decoder steps per row (``decode_limits``).

    Returns:
        One list of token ids per row.
    """
    batch = state[0].shape[1]
    tokens = np.full(batch, BOS_ID, dtype=np.int64)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    done = [limit < 1 for limit in limits]
    for _ in range(max(limits, default=0)):
        logits, state = step(tokens, state)
        tokens = logits.argmax(axis=-1).astype(np.int64)
        if record_step(outputs, done, tokens.tolist(), limits):
            break
    return outputs


def record_step(
    outputs: list[list[int]], done: list[bool], tokens: list[int], limits: list[int]
) -> bool:
    """Append one greedy step's tokens to the rows still decoding; True once every row is done.

    A row is done at EOS or once it holds ``limits[row]`` tokens. Plain Python, shared by
    the PyTorch greedy search so both stop at the same step.
    """
    for row, token in enumerate(tokens):
        if done[row]:
            continue  # finished rows still run through the batched step; their tokens are dropped
        if token == EOS_ID:
            done[row] = True
        else:
            outputs[row].append(token)
            done[row] = len(outputs[row]) >= limits[row]
    return all(done)


def beam_search(step: StepFn, state: tuple[np.ndarray, ...], beam: int, max_len: int) -> list[int]:
    """Beam search for one source row from BOS, ranked by mean token log-probability.

    A hypothesis ending in EOS scores its total log-probability / (tokens + 1): EOS counts.
    One cut off after ``max_len`` steps scores total / tokens. Ties go to the first found.

    Args:
        step: runs the decoder one token; called with a batch of live hypotheses, and is
            responsible for repeating the source memory to that batch size.
        state: the row's initial state, each array (layers, 1, H).
        beam: hypotheses kept per step.
        max_len: most decoder steps for this row (``decode_limits``).

    Returns:
        The best hypothesis, EOS excluded.
    """
    alive: list[list[int]] = [[]]
    scores = np.zeros(1, dtype=np.float32)
    tokens = np.full(1, BOS_ID, dtype=np.int64)
    finished: list[tuple[float, list[int]]] = []
    for _ in range(max_len):
        logits, state = step(tokens, state)
        total = scores[:, None] + log_softmax(logits.astype(np.float32))
        flat = np.argsort(-total.reshape(-1), kind="stable")[: min(beam, total.size)]
        best = total.reshape(-1)[flat]
        origins, words = flat // total.shape[1], flat % total.shape[1]
        for score, origin, word in zip(
            best.tolist(), origins.tolist(), words.tolist(), strict=True
        ):
            if word == EOS_ID:
                # EOS counts as a token, so a shorter finished hypothesis is not favoured free.
                finished.append((score / (len(alive[origin]) + 1), alive[origin]))
        keep = [index for index, word in enumerate(words.tolist()) if word != EOS_ID]
        if not keep:
            break
        alive = [alive[int(origins[index])] + [int(words[index])] for index in keep]
        scores, tokens = best[keep], words[keep].astype(np.int64)
        state = tuple(np.ascontiguousarray(part[:, origins[keep]]) for part in state)
    else:
        for score, seq in zip(scores.tolist(), alive, strict=True):
            finished.append((score / max(len(seq), 1), seq))
    return max(finished, key=lambda item: item[0])[1]


def sample_next(
    logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator
) -> int:
    """One token from (V,) logits: greedy at temperature 0 or top_k 1, else sampled.

    Args:
        logits: unnormalised scores.
        temperature: 0 is greedy; higher is more random.
        top_k: sample among the k best only.
        rng: seeded numpy generator.

    Returns:
        The token id.
    """
    if temperature == 0 or top_k == 1:
        return int(logits.argmax())
    # Shift before dividing: a tiny temperature then sends the others to -inf (probability
    # 0) rather than overflowing every score to inf (and inf - inf to NaN).
    logits = logits.astype(np.float64)
    with np.errstate(over="ignore"):
        scores = (logits - logits.max()) / temperature
    if top_k is not None and top_k < scores.size:
        kth_best = np.sort(scores)[-top_k]
        scores = np.where(scores < kth_best, -np.inf, scores)
    probs = np.exp(scores)
    return int(rng.choice(scores.size, p=probs / probs.sum()))


def decoder_step(
    run: Callable[[dict], dict],
    memory: np.ndarray,
    mask: np.ndarray,
    names: list[str],
    outputs: list[str],
) -> StepFn:
    """The ``StepFn`` of a seq2seq decoder graph for ``greedy`` and ``beam_search``.

    Args:
        run: runs the decoder graph on feeds (``Runtime.run`` bound to ``decoder``).
        memory: encoder outputs (B, S, H); mask: their valid positions (B, S).
        names: the decoder's state inputs; outputs: the matching state outputs.
    """

    def step(tokens, state):
        # Beam search grows and shrinks the batch: repeat the one source row to match.
        reps = len(tokens) // memory.shape[0]
        feeds = {"tokens": tokens, "memory": np.repeat(memory, reps, axis=0)}
        feeds |= {"mask": np.repeat(mask, reps, axis=0)} | dict(zip(names, state, strict=True))
        out = run(feeds)
        return out["logits"], tuple(out[name] for name in outputs)

    return step
