"""The written device contract, checked the way a foreign app uses it.

``foreign_client`` encodes with the manifest's rules only, runs the graphs with onnxruntime
and decodes by the README's loops; every task, fp32 and int8, batched and alone, must give
what ``Runtime`` gives.
"""

from __future__ import annotations

import ast
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from export_cases import VOCAB, bundle, make_checkpoint
from foreign_client import ForeignClient

from edgernn.runtime import Runtime

PRECISIONS = ("fp32", "int8")
LETTERS = "".join(VOCAB[4:])


def _texts(count: int, seed: int = 0) -> list[str]:
    # Very different lengths, so padding and batch mates matter; "z" and "é" are unknown.
    rng = random.Random(seed)
    return [
        "".join(rng.choice(LETTERS + "zé") for _ in range(rng.randint(1, 14))) for _ in range(count)
    ]


def _pair(task: str, precision: str, cell: str = "lstm", bidirectional: bool = False, **kw):
    directory, _ = bundle(task, cell, bidirectional, exporter="torchscript", **kw)
    return ForeignClient(directory, precision), Runtime(directory, precision)


def test_the_client_imports_no_edgernn():
    tree = ast.parse(Path(__file__).with_name("foreign_client.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported <= {
        "__future__",
        "hashlib",
        "json",
        "unicodedata",
        "pathlib",
        "numpy",
        "onnxruntime",
    }


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize(("task", "bidirectional"), [("classify", True), ("tag", False)])
def test_token_tasks_batched_and_alone(task, bidirectional, precision):
    client, runtime = _pair(task, precision, "gru", bidirectional)
    texts = _texts(9) if task == "classify" else [" ".join(t) for t in _texts(9, seed=1)]
    assert np.array_equal(client.encode(texts)[0], runtime.codec.encode(texts)[0])
    key = "label" if task == "classify" else "tags"
    assert client.predict(texts) == [r[key] for r in runtime.predict(texts)]
    alone = [client.predict([text])[0] for text in texts]
    assert alone == [runtime.predict([text])[0][key] for text in texts]
    if precision == "fp32":  # fp32 answers never depend on batch mates
        assert alone == client.predict(texts)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_regression_values_in_the_data_units(precision):
    client, runtime = _pair("regress", precision, "rnn")
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(int(n), 3)) for n in rng.integers(1, 12, size=7)]
    batched = [r["values"] for r in runtime.predict(series)]
    np.testing.assert_allclose(client.predict(series), batched, rtol=1e-6, atol=1e-6)
    for one, expected in zip(series, batched, strict=True):
        got = runtime.predict([one])[0]["values"]
        np.testing.assert_allclose(client.predict([one])[0], got, rtol=1e-6, atol=1e-6)
        if precision == "fp32":
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_streaming_chunks_feed_the_state_back(precision):
    client, runtime = _pair("classify", precision, "lstm")
    chunks, state = ["abc", "d", "hhgfe", "a"], None
    for chunk, expected in zip(chunks, client.stream(chunks), strict=True):
        result, state = runtime.step(chunk, state)
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("prefix", ["", "bad", "zz"])
def test_lm_generation_loop(prefix, precision):
    client, runtime = _pair("lm", precision, "gru")
    expected = runtime.generate(prefix, length=12, temperature=0)
    assert client.generate_greedy(prefix, 12) == expected


@pytest.mark.parametrize("precision", PRECISIONS)
def test_translation_each_row_to_its_own_limit(precision):
    client, runtime = _pair("seq2seq", precision, "gru", False, attention="luong")
    sources = ["a", "abcdefghabcd", "hg", "cafe"]
    batched = runtime.translate(sources)
    assert client.translate_greedy(sources) == batched
    alone = [runtime.translate([source])[0] for source in sources]
    assert [client.translate_greedy([source])[0] for source in sources] == alone
    if precision == "fp32":
        assert alone == batched


WORDS = ["the", "plot", "was", "dull", ".", ",", "café", "don", "'", "t", "«", "»", "i̇stanbul"]
TRICKY = [
    "The plot was dull.",
    "THE\u00a0PLOT\u3000WAS\tdull,dull",
    "cafe\u0301 don't",  # NFD: e + combining acute
    "«Café»\u2028the\u001cplot",  # U+001C is not whitespace in the contract
    "İstanbul 😀 the",  # lowercase İ is two code points; the emoji is one
]


@pytest.fixture(scope="module")
def word_bundle(tmp_path_factory):
    from edgernn.data.prepare import text_rules
    from edgernn.data.vocab import SPECIALS
    from edgernn.export import ExportConfig, export_bundle

    vocab = [*SPECIALS, *WORDS]
    checkpoint = make_checkpoint("classify", "gru", vocab_size=len(vocab))
    rules = text_rules("classify", "word").to_manifest()
    meta = replace(checkpoint.meta, vocab=vocab, tokens="word", text=rules)
    config = ExportConfig(evaluate=False, exporter="torchscript")
    out = tmp_path_factory.mktemp("word") / "bundle"
    return export_bundle(replace(checkpoint, meta=meta), out, config=config)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_word_rules_from_the_manifest_alone(word_bundle, precision):
    client, runtime = ForeignClient(word_bundle, precision), Runtime(word_bundle, precision)
    for text in TRICKY:
        assert client.ids(text) == runtime.codec.ids(text), text
    assert client.tokens(TRICKY[0]) == ["the", "plot", "was", "dull", "."]
    assert client.tokens(TRICKY[3])[-1] == "the\u001cplot"
    assert client.predict(TRICKY) == [r["label"] for r in runtime.predict(TRICKY)]
