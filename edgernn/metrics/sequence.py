"""Sequence metrics: BIO entity F1 (conlleval), token accuracy, exact match, corpus BLEU."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from edgernn.metrics.checks import check_pair


def _split_tag(tag: str) -> tuple[str, str | None]:
    if tag == "O":
        return "O", None
    prefix, _, kind = tag.partition("-")
    if prefix not in ("B", "I") or not kind:
        raise ValueError(f"bio_spans: {tag!r} is not a BIO tag; use 'O', 'B-TYPE' or 'I-TYPE'")
    return prefix, kind


def is_bio_tag(tag: str) -> bool:
    """``O``, ``B-TYPE`` or ``I-TYPE``."""
    prefix, _, kind = tag.partition("-")
    return tag == "O" or (prefix in ("B", "I") and bool(kind))


def bio_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Entity spans in one sentence of BIO tags, following conlleval.

    An ``I-X`` that does not continue an ``X`` entity (after ``O``, after another type, or at
    the start) opens a new entity, as conlleval does; ``B-X B-X`` is two adjacent entities.
    An empty sentence has no spans.

    Args:
        tags: one tag per token: ``"O"``, ``"B-TYPE"`` or ``"I-TYPE"``.

    Returns:
        Set of ``(start, end_exclusive, type)``.

    Example::

        bio_spans(["B-PER", "I-PER", "O", "I-LOC"])  # {(0, 2, "PER"), (3, 4, "LOC")}
    """
    spans: set[tuple[int, int, str]] = set()
    start, open_kind = 0, None
    for i, tag in enumerate(tags):
        prefix, kind = _split_tag(tag)
        if prefix == "I" and kind == open_kind:
            continue
        if open_kind is not None:
            spans.add((start, i, open_kind))
        start, open_kind = i, kind
    if open_kind is not None:
        spans.add((start, len(tags), open_kind))
    return spans


def entity_f1(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """Micro F1 over exact-match entity spans across all sentences (conlleval's FB1 / 100).

    A predicted entity counts only if its start, end and type all equal a gold entity in the
    same sentence. When neither side has any entity the score is 0.0, as in conlleval and
    seqeval: there is nothing the tagger got right.

    Args:
        predicted: predicted BIO tags, one sequence per sentence.
        gold: gold BIO tags, aligned token for token with ``predicted``.

    Returns:
        F1 in [0, 1].

    Example::

        entity_f1([["B-PER", "O"]], [["B-PER", "I-PER"]])  # 0.0: the span is too short
    """
    check_pair("entity_f1", predicted, gold)
    pred_spans: set[tuple[int, int, int, str]] = set()
    gold_spans: set[tuple[int, int, int, str]] = set()
    for k, (pred_tags, gold_tags) in enumerate(zip(predicted, gold, strict=True)):
        if len(pred_tags) != len(gold_tags):
            raise ValueError(
                f"entity_f1: sentence {k} has {len(pred_tags)} predicted tags but "
                f"{len(gold_tags)} gold tags; tags must be aligned per token"
            )
        pred_spans |= {(k, *span) for span in bio_spans(pred_tags)}
        gold_spans |= {(k, *span) for span in bio_spans(gold_tags)}
    found = len(pred_spans) + len(gold_spans)
    return 2 * len(pred_spans & gold_spans) / found if found else 0.0


def token_accuracy(predicted: Sequence[Sequence], gold: Sequence[Sequence]) -> float:
    """Fraction of gold positions whose predicted token matches.

    Positions are compared over each gold sequence's length: a prediction that is too short
    loses the missing positions, and tokens past the gold length are ignored (use
    ``exact_match`` or ``corpus_bleu`` to penalise over-long outputs).

    Args:
        predicted: predicted tokens or tags, one sequence per example.
        gold: reference sequences, one per example.

    Returns:
        Accuracy in [0, 1].

    Example::

        token_accuracy([[1, 2]], [[1, 3, 4]])  # 1/3
    """
    check_pair("token_accuracy", predicted, gold)
    total = sum(len(g) for g in gold)
    if total == 0:
        raise ValueError("token_accuracy: every gold sequence is empty; nothing to score")
    pairs = zip(predicted, gold, strict=True)
    correct = sum(bool(p[i] == g[i]) for p, g in pairs for i in range(min(len(p), len(g))))
    return correct / total


def exact_match(predicted: Sequence[Sequence], gold: Sequence[Sequence]) -> float:
    """Fraction of predicted sequences identical to their reference (same length, same tokens).

    Args:
        predicted: predicted sequences.
        gold: reference sequences, one per prediction.

    Returns:
        Exact-match rate in [0, 1].

    Example::

        exact_match([[1, 2], [3]], [[1, 2], [3, 4]])  # 0.5
    """
    check_pair("exact_match", predicted, gold)
    return sum(list(p) == list(g) for p, g in zip(predicted, gold, strict=True)) / len(gold)


def _ngram_counts(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _bleu_statistics(
    predicted: Sequence[Sequence[str]], references: Sequence[Sequence[str]], max_n: int
) -> tuple[list[int], list[int], int, int]:
    """Clipped n-gram matches and n-gram totals per order, summed over the corpus, and lengths."""
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(predicted, references, strict=True):
        if isinstance(hyp, str) or isinstance(ref, str):
            raise ValueError("corpus_bleu: pass token lists, e.g. sentence.split(), not strings")
        hyp, ref = list(hyp), list(ref)
        hyp_len, ref_len = hyp_len + len(hyp), ref_len + len(ref)
        for n in range(1, max_n + 1):
            hyp_counts = _ngram_counts(hyp, n)
            # Counter & takes the minimum count: each n-gram is credited at most as often as
            # the reference has it (Papineni's clipping).
            matches[n - 1] += sum((hyp_counts & _ngram_counts(ref, n)).values())
            totals[n - 1] += sum(hyp_counts.values())
    return matches, totals, hyp_len, ref_len


def corpus_bleu(
    predicted: Sequence[Sequence[str]], references: Sequence[Sequence[str]], max_n: int = 4
) -> float:
    """Corpus BLEU (Papineni et al., 2002) with one reference per sentence, on a 0-100 scale.

    Clipped n-gram precisions are summed over the corpus before their geometric mean, then
    multiplied by the brevity penalty ``exp(1 - ref_len / hyp_len)`` when the output is
    shorter. Follows sacrebleu's default corpus BLEU but without smoothing
    (``smooth_method="none"``), so any order with no match gives 0.0, as does an all-empty
    output. Tokenization is whatever the caller passes; sacrebleu's own 13a tokenizer is not
    applied, so scores match sacrebleu only on pre-tokenized text with ``tokenize="none"``.

    Args:
        predicted: system outputs, each a list of tokens.
        references: one reference token list per output.
        max_n: highest n-gram order.

    Returns:
        BLEU in [0, 100].

    Example::

        corpus_bleu([["a", "b", "c", "d"]], [["a", "b", "c", "d"]])  # 100.0
    """
    check_pair("corpus_bleu", predicted, references)
    if max_n < 1:
        raise ValueError(f"corpus_bleu: max_n must be at least 1, got {max_n}")
    matches, totals, hyp_len, ref_len = _bleu_statistics(predicted, references, max_n)
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * brevity * math.exp(log_precision)
