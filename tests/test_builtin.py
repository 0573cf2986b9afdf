"""Tests for the embedded datasets: deterministic, well-formed, quick to generate."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgernn.data.builtin import BUILTINS, load_builtin
from edgernn.data.raw import SPLITS
from edgernn.errors import EdgeRNNError

NAMES = ("charlm", "forecast", "ner", "seqsum", "sentiment", "translate")


_CACHE: dict = {}


def _generate(name: str, seed: int):
    # Cached: the tests share a few generations instead of regenerating them each time.
    if (name, seed) not in _CACHE:
        _CACHE[name, seed] = load_builtin(name, seed)
    return _CACHE[name, seed]


def _same(a, b) -> bool:
    """Deep equality for raw examples that may hold numpy arrays."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return (
            isinstance(b, (list, tuple))
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    return a == b


def _check_bio(tags: list[str]) -> None:
    previous = "O"
    for tag in tags:
        assert tag == "O" or tag[:2] in ("B-", "I-"), tag
        assert tag == "O" or tag[2:] in ("PER", "LOC", "ORG"), tag
        if tag.startswith("I-"):  # an inside tag continues an entity of the same type
            assert previous != "O" and previous[2:] == tag[2:], (previous, tag)
        previous = tag


def _check_example(task: str, example) -> None:
    if task == "lm":
        assert isinstance(example, str) and example
        return
    first, second = example
    if task == "regress":
        assert first.dtype == np.float32 and first.ndim == 2 and len(first) > 0
        assert second.dtype == np.float32 and second.ndim == 1
        assert np.isfinite(first).all() and np.isfinite(second).all()
    elif task == "classify":
        assert isinstance(first, str) and first and isinstance(second, str)
    elif task == "tag":
        assert len(first) == len(second) > 0 and all(isinstance(t, str) for t in first)
        _check_bio(second)
    elif task == "seq2seq":
        assert isinstance(first, str) and first and isinstance(second, str) and second
    else:
        raise AssertionError(f"unknown task {task}")


def test_registry_lists_every_dataset():
    load_builtin("seqsum")  # fills the registry
    assert set(BUILTINS) == set(NAMES)


def test_unknown_name_is_a_user_error():
    with pytest.raises(EdgeRNNError, match="unknown builtin dataset"):
        load_builtin("no-such-dataset")


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_data(name):
    assert all(
        _same(_generate(name, 0).split(split), load_builtin(name, 0).split(split))
        for split in SPLITS
    )


@pytest.mark.parametrize("name", NAMES)
def test_other_seed_other_data(name):
    assert not _same(_generate(name, 0).train, _generate(name, 1).train)


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_filled_and_well_formed(name):
    raw = _generate(name, 0)
    assert raw.task == BUILTINS[name].task
    assert raw.source == f"builtin:{name}"
    for split in SPLITS:
        examples = raw.split(split)
        assert examples, f"{name} {split} is empty"
        for example in examples:
            _check_example(raw.task, example)


@pytest.mark.parametrize("name", ["ner", "sentiment", "translate"])
def test_text_splits_do_not_repeat_train(name):
    raw = _generate(name, 0)
    train = {str(source) for source, _ in raw.train}
    for split in ("valid", "test"):
        assert not train & {str(source) for source, _ in raw.split(split)}


def test_task_specific_shapes():
    assert {len(x) for x, _ in _generate("seqsum", 0).train} == set(range(5, 31))
    assert {x.shape for x, _ in _generate("forecast", 0).train} == {(48, 1)}
    assert {label for _, label in _generate("sentiment", 0).train} == {"positive", "negative"}
    assert all(len(target) == 10 for _, target in _generate("translate", 0).test)
    assert _generate("sentiment", 0).tokens == "word"
    assert _generate("charlm", 0).tokens == "char"


def test_seqsum_target_is_the_signed_sum():
    for x, y in _generate("seqsum", 0).test[:50]:
        assert y[0] == pytest.approx(float(np.sum(x[:, 0] * x[:, 1])), abs=1e-4)


def test_sentiment_labels_are_balanced():
    labels = [label for _, label in _generate("sentiment", 0).train]
    assert labels.count("positive") == labels.count("negative")


@pytest.mark.parametrize("name", NAMES)
def test_generation_is_fast(name):
    start = time.perf_counter()
    load_builtin(name, seed=2)
    assert time.perf_counter() - start < 10.0
