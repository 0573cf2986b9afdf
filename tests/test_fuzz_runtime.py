"""Property tests: no manifest and no input makes the runtime fail with anything but EdgeRNNError.

(1) Manifests derived from real ones, with fields dropped or replaced by random JSON, either
load (and then run) or raise ``EdgeRNNError``. (2) ``Runtime.predict/step/run/generate/
translate`` on random inputs (unicode, empty, long, wrong types, arrays of random dtypes and
shapes, NaN) return the documented structure or raise ``EdgeRNNError``.
Budget: the conftest "ci" profile; HYPOTHESIS_PROFILE=long for the maintainers' long run.
``event`` only labels outcomes (``--hypothesis-show-statistics``); what is accepted is checked
after it, and the unmutated bundles (here) and valid inputs (test_runtime) must work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from export_cases import FEATURES, TAGS, VOCAB, bundle
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgernn.bundle.manifest import MANIFEST, read_manifest
from edgernn.errors import EdgeRNNError
from edgernn.runtime import Runtime

CASES = {
    "classify": ("classify", "gru", False),
    "tag": ("tag", "lstm", True),
    "regress": ("regress", "rnn", False),
    "lm": ("lm", "gru", False),
    "seq2seq": ("seq2seq", "gru", False, "luong"),
}
MAX_LEN = 512  # the test models' input.max_len


def _source(kind: str) -> Path:
    return bundle(*CASES[kind], exporter="torchscript")[0]


@pytest.fixture(scope="module")
def runtimes() -> dict[str, Runtime]:
    loaded = {kind: Runtime(_source(kind)) for kind in CASES}
    loaded["strict"] = Runtime(_source("classify"), unknown="error")
    return loaded


# --- (1) fuzzed manifests ---------------------------------------------------------------

# Strings that probe paths, names and dtypes, besides any unicode (lone surrogates too).
probes = st.sampled_from(
    ["", ".", "..", "../x", "/etc/hostname", "a\x00b", "\ud800", "a" * 300, "model.onnx", "batch"]
)
strings = probes | st.text(st.characters(exclude_categories=()), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


UNREAD = {"model", "metrics", "versions", "opset", "special_tokens", "parity", "exporter"}


def _paths(value, prefix=()) -> list[tuple]:
    """Every place the runtime reads in a manifest (lists: their first three items)."""
    if isinstance(value, dict):
        items = [(key, child) for key, child in value.items() if key not in UNREAD]
    elif isinstance(value, list):
        items = list(enumerate(value[:3]))
    else:
        return []
    found = []
    for key, child in items:
        found += [(*prefix, key), *_paths(child, (*prefix, key))]
    return found


def _mutate(manifest: dict, path: tuple, action: str, value) -> None:
    parent = manifest
    for key in path[:-1]:
        parent = parent[key]
    if action == "drop" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


@pytest.fixture(scope="module")
def playground(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """A copy of each bundle (its manifest rewritten per example) and its original manifest."""
    root = tmp_path_factory.mktemp("fuzzed")
    copies = {}
    for kind in ("classify", "regress", "seq2seq"):
        directory = Path(shutil.copytree(_source(kind), root / kind))
        copies[kind] = directory, json.loads((directory / MANIFEST).read_text())
    return copies


@given(data=st.data(), kind=st.sampled_from(["classify", "regress", "seq2seq"]))
def test_fuzzed_manifests_load_and_run_or_raise_edgernn_error(playground, data, kind):
    directory, original = playground[kind]
    manifest = json.loads(json.dumps(original))
    paths = _paths(manifest)
    # Half the mutations hit a field of a file entry or the top two levels, where the
    # runtime reads most; their new value is as often a probe string as random JSON.
    hot = [path for path in paths if len(path) <= 2 or (path[0] == "files" and len(path) == 3)]
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(hot) | st.sampled_from(paths), label="path")
        action = data.draw(st.sampled_from(["drop", "replace"]), label="action")
        try:
            _mutate(manifest, path, action, data.draw(probes | json_values, label="value"))
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed the place
            continue
    (directory / MANIFEST).write_text(json.dumps(manifest))
    sample = [np.zeros((2, FEATURES))] if kind == "regress" else ["abc"]
    try:
        results = Runtime(directory).predict(sample)
    except EdgeRNNError as error:
        assert "\n" not in str(error)
        event("refused")  # statistics only (hypothesis --hypothesis-show-statistics)
        return
    event("loaded and ran")
    # A manifest the runtime accepts still gives answers of the documented shape.
    _check_result(kind, results, sample)


@pytest.mark.parametrize("kind", ["classify", "regress", "seq2seq"])
def test_the_unmutated_manifests_load_and_run(playground, kind):
    # Without this, a runtime that refused every manifest would pass the fuzzing above.
    directory, original = playground[kind]
    (directory / MANIFEST).write_text(json.dumps(original))
    sample = [np.zeros((2, FEATURES))] if kind == "regress" else ["abc"]
    _check_result(kind, Runtime(directory).predict(sample), sample)


@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_manifest_bytes_raise_edgernn_error(tmp_path_factory, content):
    directory = tmp_path_factory.mktemp("junk")
    (directory / MANIFEST).write_bytes(content)
    with pytest.raises(EdgeRNNError):
        read_manifest(directory)


# --- (2) fuzzed inputs ------------------------------------------------------------------
# Each strategy mixes inputs the runtime should accept with junk, so that both the checks
# and the answers they let through are exercised.

words = st.text(alphabet=st.sampled_from([*"abcdefgh", " ", "\n"]), min_size=1, max_size=20)
texts = st.one_of(
    words,
    words,
    st.text(max_size=12),  # any unicode: empty, blank, unknown characters
    st.integers(MAX_LEN - 2, MAX_LEN + 2).map(lambda n: "ab" * (n // 2) + "c" * (n % 2)),
)
token_lists = st.lists(st.sampled_from([*VOCAB, *TAGS, "", "zz"]), max_size=6)
dtypes = st.sampled_from(["float32", "float64", "int64", "int32", "uint8", "bool", "complex64"])
arrays = hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
sequences = hnp.arrays(  # (steps, features), NaN and infinities included
    st.sampled_from(["float64", "float32", "int64"]),
    st.tuples(st.integers(0, 6), st.sampled_from([FEATURES, FEATURES, FEATURES - 1])),
)
junk = st.one_of(arrays, st.binary(max_size=4), st.none(), st.integers(), st.floats())
items = st.one_of(texts, texts, token_lists, sequences, sequences, junk)
counts = st.integers(1, 6)  # a valid integer argument, most of the time
numbers = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.integers(), st.floats(), st.text(max_size=2)
)


def _check_result(kind: str, results: list, inputs: list) -> None:
    assert isinstance(results, list) and len(results) == len(inputs)
    for result in results:
        if kind in ("classify", "strict"):
            assert result["label"] in result["probabilities"]
            assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        elif kind == "tag":
            assert len(result["tags"]) == len(result["tokens"]) and set(result["tags"]) <= set(TAGS)
        elif kind == "regress":
            assert len(result["values"]) == 2 and all(np.isfinite(result["values"]))
        else:
            assert isinstance(result["text" if kind == "lm" else "translation"], str)


@given(
    kind=st.sampled_from(["classify", "strict", "tag", "regress", "lm", "seq2seq"]),
    inputs=st.lists(items, max_size=4) | items,
)
def test_predict_returns_results_or_raises_edgernn_error(runtimes, kind, inputs):
    try:
        results = runtimes[kind].predict(inputs)
    except EdgeRNNError:
        event("refused")
        return
    event("predicted")
    _check_result(kind, results, inputs)


def _feeds(runtime: Runtime, role: str, data) -> dict[str, np.ndarray]:
    """Feeds that fit the role's manifest entry, then maybe one of them replaced by junk."""
    entry = runtime._graphs[role][0]
    sizes: dict = {}
    feeds = {}
    for spec in entry["inputs"]:
        shape = [
            d if isinstance(d, int) else sizes.setdefault(d, data.draw(counts))
            for d in spec["shape"]
        ]
        if spec["name"] in ("lengths", "src_lengths"):
            padded = sizes["src_time" if spec["name"] == "src_lengths" else "time"]
            values = st.integers(1, padded)
        elif spec["dtype"] == "int64":
            values = st.integers(0, 11)
        else:
            values = None
        feeds[spec["name"]] = data.draw(hnp.arrays(spec["dtype"], shape, elements=values))
    if data.draw(st.booleans(), label="spoil"):
        name = data.draw(st.sampled_from([*feeds, "extra"]), label="spoiled")
        feeds[name] = data.draw(arrays | st.none(), label="junk")
    return feeds


@given(kind=st.sampled_from(sorted(CASES)), data=st.data())
def test_run_returns_outputs_or_raises_edgernn_error(runtimes, kind, data):
    runtime = runtimes[kind]
    role = data.draw(st.sampled_from(runtime.roles) | st.just("teacher"))
    feeds = _feeds(runtime, role, data) if role != "teacher" else {}
    try:
        outputs = runtime.run(role, feeds)
    except EdgeRNNError:
        event("refused")
        return
    event("ran")
    specs = runtime._graphs[role][0]["outputs"]
    assert list(outputs) == [spec["name"] for spec in specs]
    assert all(isinstance(value, np.ndarray) for value in outputs.values())


ids = hnp.arrays(
    np.int64, st.tuples(counts, counts), elements=st.integers(0, 11) | st.integers(-2, 14)
)
features = hnp.arrays("float64", st.tuples(counts, counts, st.just(FEATURES)))
chunks = st.one_of(texts, ids, features, arrays, st.lists(st.lists(st.integers(0, 11))))


@given(kind=st.sampled_from(["classify", "regress", "lm"]), chunk=chunks, data=st.data())
def test_step_returns_a_result_and_state_or_raises_edgernn_error(runtimes, kind, chunk, data):
    runtime = runtimes[kind]
    state = data.draw(st.sampled_from([None, "initial", "junk"]))
    try:
        if state == "initial":  # of the right batch size, most of the time
            rows = len(chunk) if isinstance(chunk, np.ndarray) and chunk.ndim else 1
            state = runtime.initial_state(data.draw(st.just(rows) | st.integers(-1, 3)))
        elif state == "junk":
            state = data.draw(st.dictionaries(st.text(max_size=8), arrays) | arrays)
        result, new_state = runtime.step(chunk, state)
    except EdgeRNNError:
        event("refused")
        return
    event("stepped")
    assert isinstance(result, np.ndarray) and np.isfinite(result).all()
    assert set(new_state) == set(runtime.initial_state())


def _arguments(data, valid: dict) -> dict:
    """Valid keyword arguments, then maybe one or two of them replaced by junk."""
    arguments = {name: data.draw(strategy, label=name) for name, strategy in valid.items()}
    for name in data.draw(st.lists(st.sampled_from(sorted(valid)), max_size=2), label="spoil"):
        arguments[name] = data.draw(numbers | st.integers(-(10**9), 10**9), label=f"bad {name}")
    return arguments


@given(data=st.data())
def test_generate_returns_text_or_raises_edgernn_error(runtimes, data):
    valid = {
        "prefix": texts,
        "length": st.integers(0, 12) | st.integers(9_990, 10_010),
        "temperature": st.just(0) | st.floats(0, 3),
        "top_k": st.none() | counts,
        "seed": st.integers(0, 2**70),
    }
    arguments = _arguments(data, valid)
    if arguments["length"] not in range(13):  # sampling 10 000 tokens takes seconds
        arguments["prefix"] = None
    try:
        text = runtimes["lm"].generate(**arguments)
    except EdgeRNNError:
        event("refused")
        return
    event("generated")
    assert isinstance(text, str) and len(text) <= arguments["length"]


@given(data=st.data())
def test_translate_returns_texts_or_raises_edgernn_error(runtimes, data):
    valid = {
        "sources": st.lists(texts | token_lists, max_size=3) | st.lists(items, max_size=3),
        "beam": counts | st.integers(60, 70),
        "max_len": st.none() | counts | st.integers(2040, 2050),
    }
    arguments = _arguments(data, valid)
    try:
        results = runtimes["seq2seq"].translate(**arguments)
    except EdgeRNNError:
        event("refused")
        return
    event("translated")
    assert len(results) == len(arguments["sources"]) and all(isinstance(t, str) for t in results)
