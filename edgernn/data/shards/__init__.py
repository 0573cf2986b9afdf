"""Datasets bigger than memory: encoded once by ``edgernn prepare``, read as batches need.

A shards folder holds ``shards.json`` (format version, task, the ``DataMeta`` the examples
were encoded with, each split's size) and flat ``.npy`` stores (``store``). ``--data FOLDER``
reads it wherever DATA is resolved: ``load_shards`` gives a ``TaskData`` whose splits are
``ShardSplit`` sequences, so ``train``, ``compress`` and ``evaluate`` keep only a batch in
memory (plus each example's length).
"""

from edgernn.data.shards.split import (
    MANIFEST,
    ShardSplit,
    check_length,
    for_model,
    is_shards,
    load_for_training,
    load_shards,
)
from edgernn.data.shards.write import prepare_shards

__all__ = [
    "MANIFEST",
    "ShardSplit",
    "check_length",
    "for_model",
    "is_shards",
    "load_for_training",
    "load_shards",
    "prepare_shards",
]
