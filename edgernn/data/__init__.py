"""Data: readers per format, builtin datasets, vocabularies, encoding and batching."""

from edgernn.data.batching import Batch, collate, iterate_batches
from edgernn.data.meta import DataMeta
from edgernn.data.prepare import Codec, TaskData, encode, fit_meta
from edgernn.data.raw import RawData
from edgernn.data.source import load_raw
from edgernn.data.vocab import Vocab

__all__ = [
    "Batch",
    "Codec",
    "DataMeta",
    "RawData",
    "TaskData",
    "Vocab",
    "collate",
    "encode",
    "fit_meta",
    "iterate_batches",
    "load_raw",
]
