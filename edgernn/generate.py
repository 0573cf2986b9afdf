"""Text generation from a language-model checkpoint."""

from __future__ import annotations

import torch

from edgernn.checkpoint import Checkpoint
from edgernn.config import check_seed
from edgernn.data.vocab import BOS_ID, Vocab
from edgernn.errors import EdgeRNNError


def generate_text(
    checkpoint: Checkpoint,
    prefix: str = "",
    length: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """Sample ``length`` tokens continuing ``prefix``; the same seed gives the same text.

    Example::

        print(generate_text(load_checkpoint("charlm.pt"), "The ", length=100))
    """
    if checkpoint.spec.task != "lm":
        raise EdgeRNNError(
            f"generation needs a language model, this checkpoint is {checkpoint.spec.task}"
        )
    if not 0 <= temperature < float("inf"):  # also refuses NaN
        raise EdgeRNNError(f"temperature must be a finite number >= 0, got {temperature}")
    check_seed(seed)
    vocab, rules = Vocab(checkpoint.meta.vocab), checkpoint.meta.text_rules()
    # An empty prefix starts from <bos>, which the model never saw, so start from a newline
    # (a document boundary in training) when the vocabulary has one.
    start = prefix or ("\n" if "\n" in vocab.stoi else "")
    ids = vocab.encode(rules.tokenize(start)) or [BOS_ID]
    generator = torch.Generator().manual_seed(seed)
    model = checkpoint.build()
    new_ids = model.generate(ids, length, temperature=temperature, top_k=top_k, generator=generator)
    return rules.join.join(vocab.decode(new_ids)) if new_ids else ""
