"""Raw examples as readers and builtin generators produce them, before vocabularies and tensors.

One shape per task, shared by every reader and generator:

- classify (text): ``(text: str, label: str)``
- classify (numeric): ``(x: float32 array (T, F), label: str)``
- regress: ``(x: float32 array (T, F), y: float32 array (K,))``
- tag: ``(tokens: list[str], tags: list[str])`` with BIO tags
- lm: ``str`` -- a split is a list with one or more documents
- seq2seq: ``(source: str, target: str)``
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS = ("train", "valid", "test")


@dataclass
class RawData:
    """The splits of one dataset; missing splits are ``None`` until carved from train."""

    task: str
    train: list
    valid: list | None = None
    test: list | None = None
    tokens: str | None = None  # char|word default the source suggests (builtin datasets)
    source: str = ""  # where it came from, recorded in checkpoints
    extra: dict = field(default_factory=dict)

    def split(self, name: str) -> list | None:
        return getattr(self, name)
