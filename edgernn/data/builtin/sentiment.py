"""Templated movie-review sentences whose sentiment depends on word order, not word counts.

Every review is built from clauses like "the acting was not at all bad". A clause's polarity is
its adjective's polarity flipped once per negation ("not", "never", "it is not true that ...").
Reviews combine a deciding clause with distractor clauses of random polarity: after "but",
"however" or "yet" the second clause decides; in "although A , B" and "B , although A" the clause
outside the concession decides, even when it comes first; "i expected X , but it was Y" and
"i loved it , even though ..." work the same way. Half of the deciding clauses are negated and the
distractors carry as many sentiment words as the deciding clause, so a bag of words stays near
chance: the model must track negation scope and which clause is in charge.
"""

from __future__ import annotations

import random

from edgernn.data.builtin import register
from edgernn.data.raw import RawData

_SIZES = {"train": 5000, "valid": 500, "test": 1000}

_ASPECTS = (
    "the plot", "the acting", "the soundtrack", "the dialogue", "the ending", "the script",
    "the cinematography", "the pacing", "the cast", "the direction", "the special effects",
    "the score", "the characters", "the humor", "the editing", "the story", "the lead actor",
    "the villain", "the first half", "the final scene", "the costumes", "the camera work",
)  # fmt: skip
_POSITIVE = (
    "good", "great", "excellent", "wonderful", "brilliant", "superb", "delightful", "charming",
    "gripping", "moving", "clever", "fun", "enjoyable", "fantastic", "stunning", "memorable",
    "compelling", "beautiful", "solid", "witty", "impressive", "engaging",
)  # fmt: skip
_NEGATIVE = (
    "bad", "terrible", "awful", "boring", "dull", "weak", "clumsy", "forgettable", "predictable",
    "tedious", "bland", "messy", "lifeless", "painful", "mediocre", "disappointing", "horrible",
    "flat", "slow", "silly", "annoying", "confusing",
)  # fmt: skip
_INTENSIFIERS = (
    "very", "really", "quite", "truly", "incredibly", "extremely", "rather", "pretty", "so",
    "genuinely", "surprisingly", "a bit", "somewhat", "thoroughly",
)  # fmt: skip
_VERBS = ("was", "is", "felt", "seemed", "looked", "came across as")
_PLURAL_VERBS = {"was": "were", "is": "are"}
_BE = ("was", "is", "were", "are")
_IN_CLAUSE_NEGATIONS = (
    "not",
    "never",
    "hardly",
    "not at all",
    "by no means",
    "far from",
    "not exactly",
)
_NEGATABLE_INTENSIFIERS = ("very", "really", "particularly", "that", "all that", "especially")
# Wrappers before a clause: the first list flips its polarity, the second does not.
_FLIPPING_WRAPPERS = (
    "it is not true that", "nobody could say that", "i would not say that", "i do not think",
    "it would be wrong to say that", "i can not claim that",
)  # fmt: skip
_KEEPING_WRAPPERS = (
    "i think", "honestly ,", "to be fair ,", "i have to admit", "it is true that", "clearly ,",
    "in my opinion ,", "i felt that", "frankly ,",
)  # fmt: skip
_FILLERS = (
    "from start to finish", "for most of the film", "at times", "in the end", "overall",
    "for the most part", "throughout", "by the end",
)  # fmt: skip
_PRAISE = ("i loved it", "i really enjoyed it", "i would recommend it", "it was worth every minute")
_SCORN = ("i hated it", "i did not enjoy it", "i would not recommend it", "it was a waste of time")
_CONTRASTS = ("but", ", but", "; however ,", ", yet", ". still ,", ". that said ,")
_CONCESSIONS = ("although", "even though", "though", "while")


def _adjective(rng: random.Random, polarity: int, negation: str | None = None) -> list[str]:
    """An adjective of ``polarity``, sometimes intensified in a way that fits ``negation``."""
    words = [rng.choice(_POSITIVE if polarity > 0 else _NEGATIVE)]
    if negation is None and rng.random() < 0.4:
        words.insert(0, rng.choice(_INTENSIFIERS))
    elif negation in ("not", "never") and rng.random() < 0.4:
        words.insert(0, rng.choice(_NEGATABLE_INTENSIFIERS))  # "not very good" is still negated
    return words


def _verb(rng: random.Random, subject: str) -> list[str]:
    verb = rng.choice(_VERBS)
    plural = subject.endswith("s") and subject not in ("the pacing", "the humor")
    return (_PLURAL_VERBS.get(verb, verb) if plural else verb).split()


def _clause(rng: random.Random, polarity: int, subject: str | None = None) -> list[str]:
    """A clause about one aspect whose overall polarity is ``polarity`` (+1 or -1)."""
    flips = rng.choice((0, 0, 1, 1, 1, 2))  # half the clauses are negated once; some twice
    wrapper_flip = flips == 2 or (flips == 1 and rng.random() < 0.3)
    in_clause_flip = flips - wrapper_flip
    words = []
    if wrapper_flip:
        words += rng.choice(_FLIPPING_WRAPPERS).split()
    elif rng.random() < 0.25:
        words += rng.choice(_KEEPING_WRAPPERS).split()
    subject = subject or rng.choice(_ASPECTS)
    negation = rng.choice(_IN_CLAUSE_NEGATIONS) if in_clause_flip else None
    verb = _verb(rng, subject)
    if negation == "never" and verb[0] not in _BE:
        verb = ["never"] + verb  # "never felt good", not "felt never good"
    elif negation:
        verb += negation.split()
    words += subject.split() + verb
    words += _adjective(rng, polarity * (-1) ** flips, negation)
    if rng.random() < 0.2:
        words += rng.choice(_FILLERS).split()
    return words


def _random_polarity(rng: random.Random) -> int:
    return rng.choice((1, -1))


def _review(rng: random.Random, label: int) -> list[str]:
    """Tokens of one review whose sentiment is ``label``; the other clauses are distractors."""
    kind = rng.random()
    decide = _clause(rng, label)
    distract = _clause(rng, _random_polarity(rng))
    if kind < 0.15:  # one clause, or two that agree
        return decide + (["and"] + _clause(rng, label) if rng.random() < 0.5 else [])
    if kind < 0.40:  # A but B: B decides
        return distract + rng.choice(_CONTRASTS).split() + decide
    if kind < 0.55:  # although A , B: B decides
        return rng.choice(_CONCESSIONS).split() + distract + [","] + decide
    if kind < 0.70:  # B , although A: B decides although it comes first
        return decide + [","] + rng.choice(_CONCESSIONS).split() + distract
    if kind < 0.85:  # expectation versus what it was
        return _expectation(rng, label)
    return _verdict(rng, label)


def _expectation(rng: random.Random, label: int) -> list[str]:
    """An expectation, then reality: in "i expected X , but it was Y" only Y counts."""
    aspect = rng.choice(_ASPECTS)
    opener = rng.choice(("i expected", "everyone told me", "the trailer promised", "critics said"))
    link = "to be" if opener == "i expected" else "would be"
    expected = _adjective(rng, _random_polarity(rng))
    actual = _clause(rng, label, subject="it")
    return opener.split() + aspect.split() + link.split() + expected + [",", "but"] + actual


def _verdict(rng: random.Random, label: int) -> list[str]:
    """An overall verdict decides; the reasons given after "even though" point the other way."""
    verdict = rng.choice(_PRAISE if label > 0 else _SCORN).split()
    reason = _clause(rng, -label)
    if rng.random() < 0.5:
        return verdict + [","] + rng.choice(("even though", "although")).split() + reason
    return reason + [".", "still", ","] + verdict


def _split(rng: random.Random, size: int, seen: set[str]) -> list[tuple[str, str]]:
    """``size`` balanced reviews whose texts are not in ``seen`` (which grows)."""
    examples = []
    while len(examples) < size:
        label = 1 if len(examples) % 2 == 0 else -1  # alternate for exact balance
        text = " ".join(_review(rng, label) + ["."])
        if text in seen:
            continue
        seen.add(text)
        examples.append((text, "positive" if label > 0 else "negative"))
    rng.shuffle(examples)
    return examples


@register("sentiment", "classify", "review sentences with negation and contrast (word tokens)")
def generate(seed: int) -> RawData:
    """Balanced ``(text, label)`` reviews, label ``positive`` or ``negative``; no text repeats."""
    seen: set[str] = set()
    splits = {
        # Distinct sub-seeds give each split its own stream; ``seen`` keeps test out of train.
        name: _split(random.Random(f"sentiment/{seed}/{name}"), size, seen)
        for name, size in _SIZES.items()
    }
    return RawData(task="classify", tokens="word", **splits)
