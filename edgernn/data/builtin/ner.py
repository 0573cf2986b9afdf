"""News-style sentences tagged with BIO entities (PER, LOC, ORG), many of them ambiguous.

Most entity mentions use a name that can be more than one type: "Jordan" is a person after "had
dinner with" and a country after "flew to"; "Ford" is a person or a company; "Chelsea" is a
person, a place or a football club. The deciding word is usually not next to the name: "flew on
monday with the family to Jordan" and "talked on monday with the family to Jordan" share every
word between the verb and the name. Other cues are an appositive ("the car maker , Ford ,") and
coreference ("... flew to Jordan , and had dinner with Ford , and later Jordan was in the news":
the bare re-mention keeps the type its first mention had, so two name-type bindings must be held
at once). Every cue comes before the name, so a left-to-right model can solve it; a model with
little state forgets the cue before it reaches the name.
"""

from __future__ import annotations

import random

from edgernn.data.builtin import register
from edgernn.data.raw import RawData

_SIZES = {"train": 5000, "valid": 500, "test": 1000}
_TYPES = ("PER", "LOC", "ORG")
_AMBIGUOUS_P = 0.7  # chance that an entity slot is filled with a name of several types

_FIRST = (
    "Maria", "John", "Ellen", "Ahmed", "Yuki", "Peter", "Sofia", "Omar", "Grace", "Lukas", "Ana",
    "Daniel", "Fatima", "Ivan", "Mei", "Carlos", "Nina", "Samuel", "Laura", "Kofi", "Henry", "Rosa",
)  # fmt: skip
_LAST = (
    "Lopez", "Smith", "Okafor", "Tanaka", "Novak", "Schmidt", "Haddad", "Kim", "Rossi", "Mensah",
    "Petrov", "Garcia", "Nguyen", "Berg", "Costa", "Walsh", "Dubois", "Ibrahim", "Moreau", "Silva",
)  # fmt: skip
_LOCATIONS = (
    "Kenya", "Berlin", "Peru", "Oslo", "Vietnam", "Cairo", "Chile", "Madrid", "Ghana", "Tokyo",
    "Poland", "Lagos", "New York", "South Africa", "Buenos Aires", "San Francisco", "Cape Town",
    "Rio de Janeiro", "Hong Kong", "New Zealand", "Sri Lanka", "Costa Rica", "Saudi Arabia",
)  # fmt: skip
_ORGANIZATIONS = (
    "Siemens", "Reuters", "Google", "Nestle", "Boeing", "Unilever", "Samsung", "Airbus", "Oxfam",
    "Interpol", "United Nations", "Red Cross", "General Motors", "Bank of England", "World Bank",
    "Deutsche Bank", "Goldman Sachs", "Amnesty International", "Acme Corp", "Lufthansa",
)  # fmt: skip
_AMBIGUOUS = {
    "Jordan": "PER LOC", "Washington": "PER LOC", "Paris": "PER LOC", "Georgia": "PER LOC",
    "Chelsea": "PER LOC ORG", "Ford": "PER ORG", "Dell": "PER ORG", "Morgan": "PER ORG",
    "Lincoln": "PER LOC ORG", "Victoria": "PER LOC", "Florence": "PER LOC", "Sydney": "PER LOC",
    "Austin": "PER LOC", "Madison": "PER LOC", "Houston": "PER LOC", "Mercedes": "PER ORG",
    "Disney": "PER ORG", "Tesla": "PER ORG", "Hilton": "PER ORG", "Orange": "LOC ORG",
    "Nokia": "LOC ORG", "Toyota": "LOC ORG", "Virginia": "PER LOC", "Philips": "PER ORG",
    "Santander": "LOC ORG", "Adelaide": "PER LOC",
}  # fmt: skip
# Verb phrases before "<filler> <preposition> <entity>": the verb, not the preposition, decides.
_TRIGGERS = {
    "to": {
        "LOC": ("flew", "traveled", "moved", "drove", "returned", "sailed", "relocated", "fled"),
        "PER": ("talked", "wrote", "spoke", "sent a letter", "gave the prize", "apologized",
                "was introduced", "handed the keys", "lost the final"),
        "ORG": ("sold her shares", "applied for a job", "submitted a bid", "sent the invoice",
                "licensed the patent", "sold the factory"),
    },
    "with": {
        "PER": ("had dinner", "played tennis", "argued", "shared an office", "was seen",
                "went hiking", "posed for photos"),
        "ORG": ("signed a contract", "merged", "partnered", "filed a lawsuit",
                "negotiated a supply deal", "renewed the licence"),
        "LOC": ("shares a long border", "has close trade ties", "fought a war"),
    },
    "from": {
        "LOC": ("imported oil", "returned home", "received refugees", "flew back", "bought wine"),
        "PER": ("received a letter", "got a call", "accepted a gift", "heard the news",
                "borrowed a book"),
        "ORG": ("received an offer", "took a loan", "won a grant", "bought the rights"),
    },
    "in": {
        "LOC": ("lives", "was born", "opened a hotel", "spent the summer", "was arrested",
                "grew up"),
        "ORG": ("invested", "bought a stake", "holds shares", "lost money", "found a job"),
    },
    "for": {
        "ORG": ("works", "worked", "plays", "used to play", "campaigned", "wrote reports"),
        "PER": ("bought a present", "voted", "cheered", "waited", "cooked dinner"),
        "LOC": ("left", "departed", "set off", "bought a ticket"),
    },
}  # fmt: skip
_APPOSITIVES = {
    "PER": ("the former coach", "the singer", "her business partner", "the young lawyer",
            "the actress who won the award", "his oldest friend"),
    "LOC": ("the small country", "the coastal city", "the state", "the island nation",
            "the town where she grew up"),
    "ORG": ("the car maker", "the media group", "the bank", "the electronics firm",
            "the football club", "the company that hired him"),
}  # fmt: skip
_SUBJECTS = ("she", "he", "the minister", "our reporter", "the delegation", "the team", "they",
             "the mayor", "a spokesman", "the company", "my neighbour")  # fmt: skip
# Pieces put between a trigger and its preposition, so the cue sits several tokens back.
_FILLERS = ("yesterday", "last week", "on monday", "for the first time in years", "again",
            "with the family", "after the long election campaign", "in march",
            "together with two colleagues", "despite the bad weather", "early in the morning",
            "without any warning")  # fmt: skip
_ASIDES = (", as promised ,", ", as she had told the press ,", ", by all accounts ,")
_NEUTRAL = ("made headlines again", "was mentioned in the report", "was in the news",
            "came up in the debate", "was praised by the critics")  # fmt: skip
_ENDINGS = (".", "on tuesday .", ", officials said .", ", according to reports .", "in 2019 .")
_AFTERWARDS = (
    "issued a statement",
    "declined to comment",
    "announced new plans",
    "made headlines again",
)


def _entity(rng: random.Random, kind: str) -> list[str]:
    """Tokens of one entity of type ``kind``, most of the time an ambiguous name."""
    names = [name for name, kinds in _AMBIGUOUS.items() if kind in kinds.split()]
    if rng.random() < _AMBIGUOUS_P:
        name = rng.choice(names)
        if kind == "PER" and rng.random() < 0.4:
            return [rng.choice(_FIRST), name]  # "Henry Ford": the surname is inside a person
        return [name]
    if kind == "PER":
        surname = rng.choice(_LAST)
        return [rng.choice(_FIRST), surname] if rng.random() < 0.7 else [surname]
    return rng.choice(_LOCATIONS if kind == "LOC" else _ORGANIZATIONS).split()


def _tagged(tokens: list[str], kind: str | None) -> list[tuple[str, str]]:
    if kind is None:
        return [(token, "O") for token in tokens]
    return [(token, ("B-" if i == 0 else "I-") + kind) for i, token in enumerate(tokens)]


def _words(text: str) -> list[tuple[str, str]]:
    return _tagged(text.split(), None)


def _filler(rng: random.Random) -> str:
    """Zero to about ten words that put distance between a trigger and its entity."""
    words = rng.sample(_FILLERS, rng.choice((0, 1, 1, 2, 2, 3)))
    if rng.random() < 0.2:
        words.insert(rng.randint(0, len(words)), rng.choice(_ASIDES))
    return " ".join(words)


def _trigger_clause(rng: random.Random, name: list[str] | None = None) -> tuple[list, str]:
    """A clause "<trigger> <filler> <prep> <entity>" whose trigger verb decides the type.

    Returns the tagged words and the entity type; ``name`` forces the entity's tokens.
    """
    prep = rng.choice(list(_TRIGGERS))
    kinds = [kind for kind in _TRIGGERS[prep] if name is None or _fits(name, kind)]
    if not kinds:
        prep, kinds = "to", [kind for kind in _TYPES if _fits(name, kind)]
    kind = rng.choice(kinds)
    trigger = rng.choice(_TRIGGERS[prep][kind])
    words = _words(f"{trigger} {_filler(rng)} {prep}")
    return words + _tagged(name or _entity(rng, kind), kind), kind


def _fits(name: list[str], kind: str) -> bool:
    return kind in _AMBIGUOUS.get(name[0], "").split()


def _subject(rng: random.Random) -> list[tuple[str, str]]:
    if rng.random() < 0.6:
        return _words(rng.choice(_SUBJECTS))
    # Named subjects are unambiguous: their deciding context would come after them.
    if rng.random() < 0.5:
        return _tagged([rng.choice(_FIRST), rng.choice(_LAST)], "PER")
    return _tagged(rng.choice(_ORGANIZATIONS).split(), "ORG")


def _sentence(rng: random.Random) -> list[tuple[str, str]]:
    """One tagged sentence from one of three patterns."""
    kind = rng.random()
    if kind < 0.5:  # subject, trigger clause, maybe a second one
        words = _subject(rng) + _trigger_clause(rng)[0]
        if rng.random() < 0.4:
            words += _words(", and then") + _trigger_clause(rng)[0]
    elif kind < 0.7:  # appositive: "the car maker , Ford , said"
        entity_kind = rng.choice(_TYPES)
        words = _words(rng.choice(_APPOSITIVES[entity_kind]) + " ,")
        words += _tagged(_entity(rng, entity_kind), entity_kind) + _words(",")
        words += _words(rng.choice(_AFTERWARDS))
    else:
        words = _coreference(rng)
    return words + _words(rng.choice(_ENDINGS))


def _coreference(rng: random.Random) -> list[tuple[str, str]]:
    """Two ambiguous names get types from their triggers; a later bare mention keeps its type."""
    first, second = rng.sample(list(_AMBIGUOUS), 2)
    words = _subject(rng)
    clause, first_kind = _trigger_clause(rng, [first])
    words += clause + _words(", and")
    clause, second_kind = _trigger_clause(rng, [second])
    words += clause
    name, kind = rng.choice(((first, first_kind), (second, second_kind)))
    return words + _words(", and later") + _tagged([name], kind) + _words(rng.choice(_NEUTRAL))


def _split(rng: random.Random, size: int, seen: set[tuple[str, ...]]) -> list:
    examples = []
    while len(examples) < size:
        pairs = _sentence(rng)
        tokens = [token for token, _ in pairs]
        if tuple(tokens) in seen:
            continue
        seen.add(tuple(tokens))
        tokens[0] = tokens[0][0].upper() + tokens[0][1:]
        examples.append((tokens, [tag for _, tag in pairs]))
    return examples


@register("ner", "tag", "news sentences with ambiguous PER/LOC/ORG names (BIO tags)")
def generate(seed: int) -> RawData:
    """``(tokens, tags)`` sentences; no token sequence appears in two splits."""
    seen: set[tuple[str, ...]] = set()
    splits = {
        name: _split(random.Random(f"ner/{seed}/{name}"), size, seen)
        for name, size in _SIZES.items()
    }
    return RawData(task="tag", tokens="word", **splits)
