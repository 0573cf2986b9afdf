"""The inputs end-to-end jobs are timed on: real test-split inputs, or generated ones.

Runs in the parent process (it may load data with torch); the worker gets plain token ids.
Every candidate of one bench run gets the same inputs (same data, same seed), so the
teacher's PyTorch search and the bundle's runtime decode the same sources and prefixes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from edgernn.bench.config import BenchConfig, Candidate
from edgernn.report.grid import reference_point

TEST_INPUTS = 32  # distinct test-split inputs: enough to spread short and long ones
GENERATED_INPUTS = 16
SPECIAL_COUNT = 4  # ids 0-3 (<pad>, <unk>, <bos>, <eos>): never in generated inputs


def job_inputs(candidate: Candidate, config: BenchConfig) -> tuple[list[list[int]], str]:
    """Token ids per input and a line that says where they came from.

    With ``config.data``: the first test-split sources (seq2seq) or the first test windows
    cut to the reference length (lm prefixes). Without: seeded random ids, the reference
    length long (capped at the model's max length).
    """
    length = reference_point(config)["seq_len"]
    vocab_size, max_len = _vocabulary(candidate)
    if config.data:
        examples = _test_examples(candidate, config.data)[:TEST_INPUTS]
        inputs = [example[0].tolist() for example in examples]
        if candidate.task == "lm":  # a prefix of the reference length, as an app's context
            inputs = [[i for i in ids if i >= SPECIAL_COUNT][:length] for ids in inputs]
        inputs = [ids for ids in inputs if ids]
        return inputs, f"{len(inputs)} test-split inputs of {config.data}"
    length = min(length, max_len)
    rng = np.random.default_rng(config.seed)
    ids = rng.integers(SPECIAL_COUNT, vocab_size, size=(GENERATED_INPUTS, length))
    return ids.tolist(), f"{GENERATED_INPUTS} generated inputs of {length} tokens (no --data)"


def _vocabulary(candidate: Candidate) -> tuple[int, int]:
    """The input vocabulary's size and the longest input the model takes."""
    if candidate.format == "torch":
        from edgernn.checkpoint import load_checkpoint

        spec = load_checkpoint(candidate.path).spec
        return spec.vocab_size, spec.max_len
    from edgernn.bundle.manifest import read_manifest

    manifest = read_manifest(Path(candidate.path))
    return len(manifest["vocab"]), manifest["input"]["max_len"]


def _test_examples(candidate: Candidate, data: str) -> list:
    if candidate.format == "torch":
        from edgernn.bench.stats import _test_split

        return _test_split(candidate.path, Path(candidate.path).stat().st_mtime_ns, data)
    return _bundle_test_split(candidate.path, data)


@lru_cache(maxsize=4)
def _bundle_test_split(bundle: str, data: str) -> list:
    # Encoded with the bundle's own vocabulary and length limit, as bench scores bundles.
    from edgernn.bundle.manifest import read_manifest
    from edgernn.data import encode, load_raw
    from edgernn.export.scoring import SPLIT, meta_from_manifest

    manifest = read_manifest(Path(bundle))
    meta = meta_from_manifest(manifest)
    return encode(load_raw(data, meta.task), meta, manifest["input"]["max_len"]).splits[SPLIT]
