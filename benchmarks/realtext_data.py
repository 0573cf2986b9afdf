"""A generated, realistic large-vocabulary topic classification dataset (no downloads).

Embedding compression (vocabulary pruning, low-rank embeddings, 4-bit tables) only shows its
real cost on data whose vocabulary looks like real text: tens of thousands of word types with a
Zipf rank-frequency law, a handful of function words taking a large share of the tokens, and a
class signal spread over every frequency band (frequent words weakly topical, mid-frequency
words moderately, rare names and jargon strongly but seldom seen). This script generates such
a dataset deterministically from a seed:

- a lexicon of 45k pronounceable pseudo-words built from syllables (``belomar``), shorter
  words at frequent ranks (Zipf's law of abbreviation), headed by real English function words;
- a shared background distribution, Zipf over the lexicon ranks (exponent 1.05; mixed with
  the flatter topics, the train split's fitted rank-frequency slope is ~0.94);
- per class, a topic distribution: a flatter Zipf over a random subset of ranks drawn from the
  whole lexicon, so a topic's rarer words are the most class-specific;
- each word slot comes from the background (prob ``BACKGROUND``) or the text's topic; some
  texts mix in a second topic, some carry a wrong label, so a good model stays below 100 %;
- 6 mildly imbalanced topic labels, texts of 8-80 words (log-normal, mean ~35) in sentences
  with commas and periods.

    .venv/bin/python benchmarks/realtext_data.py /tmp/realtext [--train 6000 --valid 1000 \
        --test 1000 --seed 0]

writes ``train.csv``, ``valid.csv``, ``test.csv`` (``text,label``) and ``README.txt`` there and
prints the statistics as JSON. Other benchmark scripts import it from this folder::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from realtext_data import write_dataset
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from edgernn.data.prepare import text_rules

LEXICON_SIZE = 45_000
BACKGROUND_EXPONENT = 1.05  # real English corpora measure about 1.0-1.1
TOPIC_EXPONENT = 0.9  # flatter than the background: rarer topic words are more class-specific
TOPIC_WORDS = 1_500  # lexicon ranks each topic draws from
# Share of word slots drawn from the shared background. At 0.7 (3,000 topic words, Zipf 0.8)
# the README's bi-LSTM teacher reached only 71 % test accuracy in 8 epochs (naive Bayes 88 %):
# it cannot learn words seen once or twice, so the signal needs a denser mid-frequency band.
BACKGROUND = 0.55
SECOND_TOPIC = 0.15  # share of texts that mix in a second topic
SECOND_TOPIC_WEIGHT = (0.15, 0.4)  # its share of the topic slots in such a text
LABEL_NOISE = 0.01  # share of texts whose label is another class's (annotation errors)
LENGTH_MEAN, LENGTH_SIGMA, LENGTH_RANGE = 35.0, 0.5, (8, 80)
COMMA, PERIOD = 0.06, 0.08  # after a word: probability of a comma / of ending the sentence

LABELS = ("sports", "business", "politics", "science", "health", "entertainment")
LABEL_SHARES = (0.25, 0.20, 0.18, 0.15, 0.12, 0.10)


def _words(text: str) -> tuple[str, ...]:
    """A word list written as one string (easier to read than a literal of 50 strings)."""
    return tuple(text.split())


# The head of the background ranks, most frequent first: real function words, as in real text.
FUNCTION_WORDS = _words(
    "the of and to a in is that for it as was with on be by at this are from or have an "
    "not but they which has its were their had been one will we more also would all can "
    "there about after other if new than some when into up"
)
# Syllable parts; repeats weight them (single consonants and open syllables are the most common).
SINGLE = _words("b c d f g h j k l m n p r s t v w z")
ONSETS = SINGLE * 3 + _words("br ch cl dr fl gr kr pl pr sh st th tr") + ("", "")
VOWELS = _words("a e i o u a e i o u a e i o ai ea io ou")
CODAS = ("",) * 8 + _words("n r s l m t nd st")


def zipf_weights(n: int, exponent: float, offset: float = 2.7) -> np.ndarray:
    """Zipf-Mandelbrot probabilities of ranks 0..n-1 (offset flattens the very top, as in
    real corpora where the first few ranks are less extreme than a pure power law)."""
    weights = 1.0 / (np.arange(n) + offset) ** exponent
    return weights / weights.sum()


def syllable_counts(n: int, rng: np.random.Generator) -> np.ndarray:
    """Syllables per word by rank: frequent words are short, rare ones long."""
    mean = 0.8 + 0.55 * np.log10(np.arange(n) + 10)  # ~1.5 at rank 10, ~3.3 at rank 30k
    return np.clip(np.rint(mean + rng.normal(0, 0.5, n)), 1, 4).astype(int)


def pseudo_word(syllables: int, rng: np.random.Generator) -> str:
    """One pronounceable word: onset + vowel + coda per syllable, lowercase ascii."""
    parts = []
    for _ in range(syllables):
        coda = CODAS[rng.integers(len(CODAS))]
        parts.append(ONSETS[rng.integers(len(ONSETS))] + VOWELS[rng.integers(len(VOWELS))] + coda)
    return "".join(parts)


def build_lexicon(size: int, rng: np.random.Generator) -> list[str]:
    """Distinct words, index = background rank; function words first."""
    words, seen = list(FUNCTION_WORDS), set(FUNCTION_WORDS)
    counts = syllable_counts(size, rng)
    for rank in range(len(words), size):
        syllables = counts[rank]
        word = pseudo_word(syllables, rng)
        while word in seen or len(word) < 2:  # short syllable spaces fill up: lengthen
            syllables += rng.random() < 0.3
            word = pseudo_word(syllables, rng)
        words.append(word)
        seen.add(word)
    return words


def topic_distributions(
    classes: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per class, TOPIC_WORDS lexicon ranks (function words excluded) and their probabilities.

    The ranks are drawn uniformly over the whole lexicon and ordered by background rank, so
    each topic has frequent, mid-frequency and rare words; a flatter Zipf than the
    background's makes the rare ones relatively the most class-specific.
    """
    content = np.arange(len(FUNCTION_WORDS), size)
    ranks = np.stack(
        [np.sort(rng.choice(content, TOPIC_WORDS, replace=False)) for _ in range(classes)]
    )
    return ranks, zipf_weights(TOPIC_WORDS, TOPIC_EXPONENT, offset=1.0)


def text_lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    """Words per text: log-normal with mean LENGTH_MEAN, clipped to LENGTH_RANGE."""
    mu = np.log(LENGTH_MEAN) - LENGTH_SIGMA**2 / 2
    lengths = np.rint(rng.lognormal(mu, LENGTH_SIGMA, n))
    return np.clip(lengths, *LENGTH_RANGE).astype(int)


def draw(cdf: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices from a distribution given by its cumulative sum (faster than rng.choice)."""
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


class Generator:
    """Draws labelled texts from one fixed lexicon and set of topics."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.lexicon = build_lexicon(LEXICON_SIZE, rng)
        self.background = np.cumsum(zipf_weights(LEXICON_SIZE, BACKGROUND_EXPONENT))
        self.topic_ranks, topic = topic_distributions(len(LABELS), LEXICON_SIZE, rng)
        self.topic = np.cumsum(topic)

    def word_ranks(self, topic: int, second: int | None, weight: float, n: int) -> np.ndarray:
        """Lexicon ranks of one text's n words: background or (one of) its topics per slot."""
        rng = self.rng
        ranks = draw(self.background, n, rng)
        topical = rng.random(n) >= BACKGROUND
        topics = np.full(n, topic)
        if second is not None:
            topics[rng.random(n) < weight] = second
        picks = draw(self.topic, n, rng)
        ranks[topical] = self.topic_ranks[topics[topical], picks[topical]]
        return ranks

    def text(self, ranks: np.ndarray) -> str:
        """Words joined into sentences: capitalised starts, some commas, a final period."""
        marks = self.rng.random(len(ranks))
        out, start = [], True
        for index, rank in enumerate(ranks):
            word = self.lexicon[rank]
            out.append(word.capitalize() if start else word)
            start = False
            if index == len(ranks) - 1 or marks[index] < PERIOD:
                out[-1] += "."
                start = True
            elif marks[index] < PERIOD + COMMA:
                out[-1] += ","
        return " ".join(out)

    def example(self, length: int) -> tuple[str, str]:
        """One (text, label) pair."""
        rng = self.rng
        topic = int(rng.choice(len(LABELS), p=LABEL_SHARES))
        second, weight = None, 0.0
        if rng.random() < SECOND_TOPIC:
            second = int(rng.choice([c for c in range(len(LABELS)) if c != topic]))
            weight = rng.uniform(*SECOND_TOPIC_WEIGHT)
        label = topic
        if rng.random() < LABEL_NOISE:
            label = int(rng.choice([c for c in range(len(LABELS)) if c != topic]))
        return self.text(self.word_ranks(topic, second, weight, length)), LABELS[label]

    def split(self, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        """n labelled texts drawn with rng (one stream per split)."""
        self.rng = rng
        return [self.example(int(length)) for length in text_lengths(n, rng)]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    """``text,label`` with csv quoting (texts contain commas)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def coverage(counts: Counter, ranked: list[str], sizes: tuple[int, ...]) -> dict:
    """Share of the tokens (in counts) that the top-k train words cover, per k."""
    total = sum(counts.values())
    return {str(k): round(sum(counts[word] for word in ranked[:k]) / total, 4) for k in sizes}


def zipf_slope(counts: Counter, low: int = 10, high: int = 5000) -> float:
    """Fitted Zipf exponent: minus the log-log slope of frequency against rank."""
    freqs = np.array(sorted(counts.values(), reverse=True)[low:high], dtype=float)
    ranks = np.arange(low + 1, low + 1 + len(freqs))
    return round(float(-np.polyfit(np.log(ranks), np.log(freqs), 1)[0]), 3)


def statistics(splits: dict[str, list[tuple[str, str]]]) -> dict:
    """What embedding compression depends on, counted with edgernn's own word tokenizer."""
    rules = text_rules("classify", "word")  # the CLI's defaults: lowercase, split punctuation
    counts = {
        name: Counter(t for text, _ in rows for t in rules.tokenize(text))
        for name, rows in splits.items()
    }
    train = counts["train"]
    ranked = [word for word, _ in sorted(train.items(), key=lambda item: (-item[1], item[0]))]
    sizes = (1000, 2000, 5000, 10000, 20000)
    test_oov = sum(n for word, n in counts["test"].items() if word not in train)
    return {
        "train_vocab": len(train),  # Vocab.build adds 4 specials on top
        "train_tokens": sum(train.values()),
        "train_singletons": sum(1 for n in train.values() if n == 1),
        "zipf_exponent": zipf_slope(train),
        "mean_words": round(
            float(np.mean([len(text.split()) for rows in splits.values() for text, _ in rows])), 1
        ),
        "labels": dict(sorted(Counter(label for _, label in splits["train"]).items())),
        "coverage_train": coverage(train, ranked, sizes),
        "coverage_test": coverage(counts["test"], ranked, sizes),
        "test_oov_rate": round(test_oov / sum(counts["test"].values()), 4),
    }


def readme(seed: int, sizes: dict, stats: dict) -> str:
    """OUTDIR/README.txt: how the data was made, and its statistics."""
    return (
        "Generated by benchmarks/realtext_data.py (edgernn); no real text involved.\n"
        f"seed={seed} splits={sizes} lexicon={LEXICON_SIZE} pseudo-words\n"
        f"background Zipf exponent={BACKGROUND_EXPONENT}, background share={BACKGROUND}, "
        f"{len(LABELS)} topics of {TOPIC_WORDS} words (Zipf {TOPIC_EXPONENT}), "
        f"second topic in {SECOND_TOPIC:.0%} of texts, label noise {LABEL_NOISE:.0%}\n"
        f"labels={dict(zip(LABELS, LABEL_SHARES, strict=True))}\n"
        f"stats={json.dumps(stats)}\n"
    )


def write_dataset(
    outdir: str | Path, train: int = 6000, valid: int = 1000, test: int = 1000, seed: int = 0
) -> dict:
    """Generate the three splits into outdir (created) and return their statistics."""
    started = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    # One random stream for the lexicon and topics and one per split, so the valid and test
    # texts of a seed stay the same whatever the size of the train split.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    generator = Generator(streams[0])
    sizes = {"train": train, "valid": valid, "test": test}
    splits = {name: generator.split(n, streams[i + 1]) for i, (name, n) in enumerate(sizes.items())}
    for name, rows in splits.items():
        write_csv(outdir / f"{name}.csv", rows)
    stats = statistics(splits)
    stats["seconds"] = round(time.perf_counter() - started, 1)
    (outdir / "README.txt").write_text(readme(seed, sizes, stats), encoding="utf-8")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--valid", type=int, default=1000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    stats = write_dataset(args.outdir, args.train, args.valid, args.test, args.seed)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
