"""Tiny data files in every documented format, written fresh for each test that asks, and the
CLI helpers and tiny teacher several test files share."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Fuzz budgets: "ci" (the default) keeps every property test to a few seconds so the whole
# fuzz run stays within a minute or two; maintainers run the long one with
# HYPOTHESIS_PROFILE=long .venv/bin/pytest tests -k fuzz   (see README, Security and reliability).
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

WORDS = ["good", "bad", "film", "plot", "not", "very", "the", "was"]


def _sentence(rng: random.Random) -> tuple[str, str]:
    words = [rng.choice(WORDS) for _ in range(rng.randint(2, 8))]
    return " ".join(words), "pos" if words.count("good") >= words.count("bad") else "neg"


@pytest.fixture
def classify_csv(tmp_path: Path) -> Path:
    rng = random.Random(0)
    rows = ["text,label"] + ['"{}",{}'.format(*_sentence(rng)) for _ in range(60)]
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def classify_jsonl(tmp_path: Path) -> Path:
    rng = random.Random(1)
    lines = [
        json.dumps(dict(zip(("text", "label"), _sentence(rng), strict=True))) for _ in range(60)
    ]
    path = tmp_path / "reviews.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def numeric_arrays(n: int, classify: bool, seed: int = 0) -> dict[str, np.ndarray]:
    """Variable-length (N, T, 2) sequences zero-padded to T = 10, as DESIGN.md's .npz format."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 11, size=n)
    x = np.zeros((n, 10, 2), dtype=np.float32)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.normal(size=(length, 2))
    sums = np.array([x[i, : lengths[i], 0].sum() for i in range(n)], dtype=np.float32)
    y = (sums > 0).astype(np.int64) if classify else sums
    return {"x": x, "lengths": lengths.astype(np.int64), "y": y}


@pytest.fixture
def regress_npz(tmp_path: Path) -> Path:
    path = tmp_path / "series.npz"
    np.savez(path, **numeric_arrays(60, classify=False))
    return path


@pytest.fixture
def classify_npz(tmp_path: Path) -> Path:
    path = tmp_path / "series.npz"
    np.savez(path, **numeric_arrays(60, classify=True))
    return path


@pytest.fixture
def tag_conll(tmp_path: Path) -> Path:
    rng = random.Random(2)
    names, sentences = ["Ann", "Bob", "Oslo", "Rome"], []
    for _ in range(40):
        lines = []
        for _ in range(rng.randint(2, 7)):
            token = rng.choice(names + WORDS)
            tag = "O" if token in WORDS else ("B-PER" if token in names[:2] else "B-LOC")
            lines.append(f"{token} {tag}")
        sentences.append("\n".join(lines))
    path = tmp_path / "ner.conll"
    path.write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def lm_txt(tmp_path: Path) -> Path:
    rng = random.Random(3)
    lines = [" ".join(rng.choice(WORDS) for _ in range(6)) + "." for _ in range(80)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def seq2seq_tsv(tmp_path: Path) -> Path:
    rng = random.Random(4)
    pairs = []
    for _ in range(60):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 5)))
        pairs.append(f"{digits}\t{digits[::-1]}")
    path = tmp_path / "reverse.tsv"
    path.write_text("\n".join(pairs) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def data_files(classify_csv, regress_npz, tag_conll, lm_txt, seq2seq_tsv) -> dict[str, Path]:
    return {
        "classify": classify_csv,
        "regress": regress_npz,
        "tag": tag_conll,
        "lm": lm_txt,
        "seq2seq": seq2seq_tsv,
    }


def run_cli(*args):
    """Invoke the ``edgernn`` CLI in-process, each argument (a path, a number) as a string."""
    from click.testing import CliRunner

    from edgernn.cli import main  # imports torch: only when a test runs a command

    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, fragment: str) -> None:
    """Assert the command failed with exit 1 and one line naming ``fragment``, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert fragment in result.output, result.output


@pytest.fixture
def teacher(classify_csv: Path, tmp_path: Path) -> Path:
    """A tiny classifier (hidden 16, one epoch) trained on ``classify_csv``, saved in tmp_path."""
    from edgernn.checkpoint import save_checkpoint
    from edgernn.config import TrainConfig
    from edgernn.train import train

    quick = TrainConfig(epochs=1, batch_size=16, progress=False)
    checkpoint = train(str(classify_csv), "classify", quick, hidden=16, embed=16)
    return save_checkpoint(checkpoint, tmp_path / "teacher.pt")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Tiny models gain nothing from threads, and on a busy 2-core machine two threads
    # contend badly (an order of magnitude slower per step).
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
