"""The model zoo: recurrent encoders, task heads, seq2seq with attention, and ``build_model``."""

from __future__ import annotations

from torch import nn

from edgernn.config import ModelSpec
from edgernn.models.attention import ATTENTIONS, BahdanauAttention, LuongAttention
from edgernn.models.encoder import RecurrentEncoder
from edgernn.models.heads import LanguageModel, SequenceClassifier, SequenceTagger
from edgernn.models.seq2seq import EncoderState, Seq2Seq

# Task name -> model class; every class takes the spec as its only constructor argument.
MODELS: dict[str, type[nn.Module]] = {
    "classify": SequenceClassifier,
    "regress": SequenceClassifier,
    "tag": SequenceTagger,
    "lm": LanguageModel,
    "seq2seq": Seq2Seq,
}


def build_model(spec: ModelSpec) -> nn.Module:
    """Build the untrained model that ``spec`` describes.

    Args:
        spec: all hyperparameters; ``spec.task`` picks the model class.

    Returns:
        A freshly initialised model holding ``spec`` as ``model.spec``.

    Example::

        model = build_model(ModelSpec(task="tag", vocab_size=500, num_outputs=9, hidden=64))
    """
    return MODELS[spec.task](spec)


__all__ = [
    "ATTENTIONS",
    "MODELS",
    "BahdanauAttention",
    "EncoderState",
    "LanguageModel",
    "LuongAttention",
    "RecurrentEncoder",
    "Seq2Seq",
    "SequenceClassifier",
    "SequenceTagger",
    "build_model",
]
