"""Evaluation metrics for every task, in plain Python and numpy so they run anywhere.

Hand-written rather than imported because sklearn, seqeval and sacrebleu would be three new
dependencies for a few dozen lines; each function names the reference it matches.
``names`` says which metrics a task reports and which way is better, ``drop`` how much worse
one score is than another (points, or % relative).
"""

from edgernn.metrics.classification import accuracy, macro_f1
from edgernn.metrics.drop import drop_unit, metric_drop
from edgernn.metrics.language import bits_per_char, perplexity
from edgernn.metrics.names import HIGHER_IS_BETTER, METRICS_BY_TASK, PRIMARY_METRIC
from edgernn.metrics.regression import mae, mse
from edgernn.metrics.sequence import (
    bio_spans,
    corpus_bleu,
    entity_f1,
    exact_match,
    is_bio_tag,
    token_accuracy,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS_BY_TASK",
    "PRIMARY_METRIC",
    "accuracy",
    "bio_spans",
    "is_bio_tag",
    "bits_per_char",
    "corpus_bleu",
    "drop_unit",
    "entity_f1",
    "exact_match",
    "macro_f1",
    "mae",
    "metric_drop",
    "mse",
    "perplexity",
    "token_accuracy",
]
