"""Short generated stories for character language modelling, full of long-range structure.

Each document is a small tale drawn from a probabilistic grammar:

- two or three characters with made-up names (new ones in every document) are introduced with a
  profession and a home town, then re-mentioned by name and as "the <profession> <name>", and
  listed again in a closing "cast:" line, so predicting them means remembering the introduction;
- verbs agree in number with their subject across relative clauses ("the dogs that the king
  feeds are hungry"), sometimes nested two deep;
- dialogue opens quotes and brackets that must be closed in the right order;
- every line follows its kind's fixed format (title, narration, dialogue, cast).

A character n-gram sees none of this; a small recurrent state keeps only part of it.
"""

from __future__ import annotations

import random

from edgernn.data.builtin import register
from edgernn.data.raw import RawData

_CHARS = {"train": 200_000, "valid": 20_000, "test": 20_000}  # characters per split, at least

_NOUNS = {
    "dog": "dogs", "cat": "cats", "child": "children", "farmer": "farmers", "bird": "birds",
    "king": "kings", "girl": "girls", "boy": "boys", "wolf": "wolves", "horse": "horses",
    "guard": "guards", "fox": "foxes",
}  # fmt: skip
_TRANSITIVE = {
    "sees": "see", "feeds": "feed", "likes": "like", "follows": "follow", "finds": "find",
    "helps": "help", "watches": "watch", "chases": "chase", "fears": "fear", "knows": "know",
}  # fmt: skip
_INTRANSITIVE = {
    "sleeps": "sleep", "runs": "run", "sings": "sing", "waits": "wait", "is hungry": "are hungry",
    "is tired": "are tired", "was lost": "were lost", "has left": "have left",
}  # fmt: skip
_ADJECTIVES = ("old", "small", "red", "quiet", "brave", "tired", "young", "grey")
_PROFESSIONS = ("baker", "sailor", "teacher", "painter", "doctor", "miller", "weaver", "smith")
_TOWNS = ("lisbon", "oslo", "cairo", "lima", "kyoto", "dakar", "quito", "perth", "riga", "hue")
_ONSETS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _name(rng: random.Random) -> str:
    """A made-up name such as "tarimo": new in every document, so it must be copied, not known."""
    syllables = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3)))
    return syllables + rng.choice(("", "", "n", "r", "l", "s"))


def _noun_phrase(rng: random.Random, plural: bool, depth: int) -> str:
    """A noun phrase whose head has number ``plural``, maybe with a relative clause."""
    singular = rng.choice(list(_NOUNS))
    words = ["the"] + ([rng.choice(_ADJECTIVES)] if rng.random() < 0.3 else [])
    words.append(_NOUNS[singular] if plural else singular)
    if depth > 0 and rng.random() < 0.55:
        # Object relative: the inner subject has its own number and its own agreeing verb.
        inner_plural = rng.random() < 0.5
        inner = _noun_phrase(rng, inner_plural, depth - 1)
        verb = rng.choice(list(_TRANSITIVE))
        words += ["that", inner, _TRANSITIVE[verb] if inner_plural else verb]
    return " ".join(words)


def _sentence(rng: random.Random, subject: str | None = None) -> str:
    """A clause whose main verb agrees with a possibly distant head noun."""
    plural = subject is None and rng.random() < 0.5
    subject = subject or _noun_phrase(rng, plural, depth=2)
    if rng.random() < 0.5:
        verb = rng.choice(list(_INTRANSITIVE))
        return f"{subject} {_INTRANSITIVE[verb] if plural else verb}"
    verb = rng.choice(list(_TRANSITIVE))
    obj = _noun_phrase(rng, rng.random() < 0.5, depth=1)
    return f"{subject} {_TRANSITIVE[verb] if plural else verb} {obj}"


def _line(rng: random.Random, cast: list[tuple[str, str, str]]) -> str:
    """One line of the story: narration, a re-mention, or dialogue with nested quotes/brackets."""
    name, profession, _ = rng.choice(cast)
    kind = rng.random()
    if kind < 0.3:
        return _sentence(rng) + "."
    if kind < 0.55:
        subject = name if rng.random() < 0.5 else f"the {profession} {name}"
        return _sentence(rng, subject) + "."
    other = rng.choice([person for person in cast if person[0] != name])[0]
    speech = _sentence(rng)
    if rng.random() < 0.4:
        speech += f" (said {other})" if rng.random() < 0.5 else f" (and {_sentence(rng)})"
    return f'{name} said to {other}: "{speech}."'


def _document(rng: random.Random) -> str:
    names: list[str] = []
    count = rng.choice((2, 2, 3))
    while len(names) < count:
        name = _name(rng)
        if name not in names:
            names.append(name)
    cast = [(name, rng.choice(_PROFESSIONS), rng.choice(_TOWNS)) for name in names]
    lines = ["= the tale of " + " and ".join(names) + " ="]
    lines += [f"{name} was a {profession} from {town}." for name, profession, town in cast]
    lines += [_line(rng, cast) for _ in range(rng.randint(6, 12))]
    lines.append(
        "cast: " + ", ".join(f"{name} ({profession})" for name, profession, _ in cast) + "."
    )
    return "\n".join(lines) + "\n"


def _split(rng: random.Random, chars: int) -> list[str]:
    documents, total = [], 0
    while total < chars:
        documents.append(_document(rng))
        total += len(documents[-1])
    return documents


@register("charlm", "lm", "generated stories with agreement, quotes and re-mentioned names (chars)")
def generate(seed: int) -> RawData:
    """Each split is a list of documents of ``_CHARS`` characters in all."""
    splits = {
        name: _split(random.Random(f"charlm/{seed}/{name}"), chars)
        for name, chars in _CHARS.items()
    }
    return RawData(task="lm", tokens="char", **splits)
