"""Which metrics each task reports, which way is better, and the one that decides."""

from __future__ import annotations

METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classify": ("accuracy", "macro_f1"),
    "tag": ("entity_f1", "token_accuracy"),
    "lm": ("perplexity", "bits_per_char"),
    "regress": ("mse", "mae"),
    "seq2seq": ("exact_match", "token_accuracy", "bleu"),
}
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "macro_f1": True,
    "entity_f1": True,
    "token_accuracy": True,
    "perplexity": False,
    "bits_per_char": False,
    "mse": False,
    "mae": False,
    "exact_match": True,
    "bleu": True,
}
# The metric used to pick the best checkpoint and to compare compressed models with their source.
PRIMARY_METRIC: dict[str, str] = {
    "classify": "accuracy",
    "tag": "entity_f1",
    "lm": "perplexity",
    "regress": "mse",
    "seq2seq": "exact_match",
}
