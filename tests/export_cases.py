"""Tiny untrained checkpoints and their exported bundles, built once per test session.

Exporting is the slow part of these tests: the dynamo exporter spends about 0.8 s of CPU per
graph, the TorchScript one 0.02 s. So every bundle is exported once and shared by the export
and runtime tests, and the full cell x direction x task matrix runs on the TorchScript
exporter, while the dynamo exporter (the default) runs a subset that still covers every
cell x direction pair, every task and both attentions. The two exporters share the export
modules (``edgernn.export.graphs``) and differ only in how ``edgernn::rnn_layer`` becomes an
ONNX node, which depends on the cell and direction alone.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

from edgernn.checkpoint import Checkpoint
from edgernn.config import ModelSpec
from edgernn.data.meta import DataMeta
from edgernn.data.vocab import SPECIALS
from edgernn.export import ExportConfig, export_bundle
from edgernn.models import build_model

CELLS = ("rnn", "lstm", "gru")
VOCAB = [*SPECIALS, *"abcdefgh"]
TAGS = ["B-LOC", "B-PER", "I-PER", "O"]
FEATURES, TARGETS = 3, 2
# Every cell x direction x task; a language model is never bidirectional.
CASES = [
    (task, cell, bidirectional)
    for task in ("classify", "tag", "regress", "lm")
    for cell in CELLS
    for bidirectional in (False, True)
    if not (task == "lm" and bidirectional)
]
SEQ2SEQ_CASES = [("bahdanau", "lstm", True), ("luong", "gru", False), ("luong", "rnn", True)]
DYNAMO_CASES = [
    ("classify", "lstm", True),
    ("classify", "gru", False),
    ("tag", "rnn", True),
    ("tag", "lstm", False),
    ("regress", "gru", True),
    ("regress", "rnn", False),
    ("lm", "gru", False),
]
DYNAMO_SEQ2SEQ_CASES = [("bahdanau", "lstm", True), ("luong", "gru", False)]

_ROOT = Path(tempfile.mkdtemp(prefix="edgernn-export-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def make_checkpoint(task: str, cell: str = "lstm", bidirectional: bool = False, **overrides):
    """An untrained two-layer checkpoint with a data description the runtime can use."""
    values = dict(task=task, cell=cell, bidirectional=bidirectional, hidden=8, embed=6, layers=2)
    meta = {"vocab": VOCAB}
    if task == "regress":
        values |= {"input_size": FEATURES, "num_outputs": TARGETS}
        norm = {"x_mean": [0.5] * FEATURES, "x_std": [2.0] * FEATURES}
        meta = {"norm": norm | {"y_mean": [1.0, -1.0], "y_std": [3.0, 0.5]}}
        meta["input_size"] = FEATURES
    elif task == "classify":
        values |= {"vocab_size": len(VOCAB), "num_outputs": 3}
        meta |= {"labels": ["neg", "neu", "pos"], "tokens": "char"}
    elif task == "tag":
        values |= {"vocab_size": len(VOCAB), "num_outputs": len(TAGS)}
        meta |= {"labels": TAGS}
    elif task == "lm":
        values |= {"vocab_size": len(VOCAB), "num_outputs": len(VOCAB)}
        meta |= {"tokens": "char"}
    else:
        values |= {"vocab_size": len(VOCAB), "num_outputs": len(VOCAB), "attention": "luong"}
        meta |= {"tgt_vocab": VOCAB, "tokens": "char"}
    spec = ModelSpec(**(values | overrides))
    torch.manual_seed(0)
    model = build_model(spec)
    return Checkpoint(spec, DataMeta(task, **meta), model.state_dict())


@functools.cache
def bundle(
    task: str,
    cell: str,
    bidirectional: bool,
    attention: str | None = None,
    exporter: str = "dynamo",
):
    """``(bundle_dir, checkpoint)`` for one case, exported (fp32 + int8) on first use."""
    overrides = {"attention": attention} if attention else {}
    checkpoint = make_checkpoint(task, cell, bidirectional, **overrides)
    name = "-".join([task, cell, "bi" if bidirectional else "uni", attention or "", exporter])
    config = ExportConfig(evaluate=False, exporter=exporter)
    return export_bundle(checkpoint, _ROOT / name, config=config), checkpoint
