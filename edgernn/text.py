"""Text -> tokens: the one definition training, evaluation, generation and the runtime share.

Torch-free and stdlib only, so the device runtime uses this very module. The rules are an
ordered pipeline a bundle records in ``manifest["input"]["text"]`` (``TextRules.to_manifest``)
precisely enough for an app in another language to reimplement it:

1. ``NFC``: Unicode normalization form NFC (optional).
2. ``lowercase``: Python's ``str.lower()``, the Unicode default full lowercase mapping
   (SpecialCasing, Final_Sigma included), independent of any locale (optional).
3. Then either ``split_code_points`` (char models: every code point is a token, whitespace
   included; never UTF-16 units), or ``split_whitespace``: split on runs of the listed
   whitespace code points, which are dropped (word models),
4. and optionally ``split_punctuation``: every code point whose general category starts
   with ``P`` becomes a token of its own.

A token missing from the vocabulary is ``<unk>`` (id 1). Generated tokens are joined with
``join``: nothing for char models, one space for word models.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from edgernn.errors import EdgeRNNError

# The Unicode White_Space property, listed so another language need not guess its own notion.
UNICODE_WHITESPACE = (
    *range(0x09, 0x0E),
    0x20,
    0x85,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
)
# What Python's str.split() and str.strip() also treat as whitespace: the four information
# separators U+001C..U+001F. Only the legacy rules (checkpoints and bundles made before the
# text rules were recorded) use this list.
PYTHON_WHITESPACE = tuple(sorted((*UNICODE_WHITESPACE, *range(0x1C, 0x20))))
TOKENS = ("char", "word")
UNICODE_FORMS = ("NFC",)
PUNCTUATION = "unicode_category_P"
UNITS = {"char": "code_points", "word": "words"}
JOIN = {"char": "", "word": " "}
UNKNOWN_ID = 1
# No code point's canonical decomposition is longer, so NFC leaves at least a quarter of a
# text's code points: a text over 4 * max_len code points is too long whatever it holds.
MAX_NFC_SHRINK = 4
STEPS = ("NFC", "lowercase", "split_code_points", "split_whitespace", "split_punctuation")
MANIFEST_FIELDS = {
    "steps": "a list of steps",
    "units": "code_points or words",
    "whitespace": "a sorted list of unique code points (integers)",
    "punctuation": PUNCTUATION,
    "unicode_version": "a string such as '15.0.0'",
    "join": "'' or ' '",
    "unknown_id": str(UNKNOWN_ID),
}


@dataclass(frozen=True)
class TextRules:
    """How one model turns text into tokens; see the module docstring for the pipeline.

    Example::

        rules = TextRules("word", unicode="NFC", lowercase=True, split_punctuation=True)
        rules.tokenize("The plot was dull.")  # ['the', 'plot', 'was', 'dull', '.']
    """

    tokens: str  # char | word
    unicode: str | None = None  # NFC, or None: the text's code points as given
    lowercase: bool = False
    split_punctuation: bool = False  # word models only
    whitespace: tuple[int, ...] = UNICODE_WHITESPACE

    def __post_init__(self) -> None:
        if self.tokens not in TOKENS:
            raise EdgeRNNError(f"text rules: tokens must be char or word, got {self.tokens!r}")
        if self.unicode is not None and self.unicode not in UNICODE_FORMS:
            raise EdgeRNNError(f"text rules: unicode must be NFC or None, got {self.unicode!r}")
        if self.split_punctuation and self.tokens == "char":
            raise EdgeRNNError(
                "text rules: punctuation splitting applies to word tokens; a char model "
                "already reads every character on its own"
            )

    @classmethod
    def legacy(cls, tokens: str) -> TextRules:
        """The rules of checkpoints and version-1 bundles: ``list(text)`` or ``str.split()``."""
        return cls(tokens, whitespace=PYTHON_WHITESPACE)

    @property
    def join(self) -> str:
        """What goes between tokens when generated tokens become text."""
        return JOIN[self.tokens]

    def normalize(self, text: str) -> str:
        """Steps 1 and 2: NFC, then lowercase, as these rules ask."""
        if self.unicode is not None:
            text = unicodedata.normalize(self.unicode, text)
        return text.lower() if self.lowercase else text

    def normalize_token(self, token: str) -> str:
        """A token already split (CoNLL data, a list given to the runtime): normalized, never
        split again, so it stays aligned with its tag."""
        return self.normalize(token)

    def tokenize(self, text: str) -> list[str]:
        """The whole pipeline: text -> tokens."""
        text = self.normalize(text)
        if self.tokens == "char":
            return list(text)  # Python strings index code points, not UTF-16 units
        words = [word for word in _whitespace_runs(self.whitespace).split(text) if word]
        if self.split_punctuation:
            return [piece for word in words for piece in _split_punctuation(word)]
        return words

    def is_blank(self, tokens: list[str]) -> bool:
        """No tokens, or only whitespace ones (char models keep whitespace as tokens)."""
        spaces = {chr(point) for point in self.whitespace}
        return all(char in spaces for token in tokens for char in token)

    def steps(self) -> list[str]:
        """The ordered pipeline, as the manifest records it."""
        steps = [self.unicode] if self.unicode else []
        steps += ["lowercase"] if self.lowercase else []
        if self.tokens == "char":
            return [*steps, "split_code_points"]
        steps.append("split_whitespace")
        return [*steps, "split_punctuation"] if self.split_punctuation else steps

    def to_manifest(self) -> dict:
        """Everything a foreign app needs to tokenize exactly as training did."""
        return {
            "steps": self.steps(),
            "units": UNITS[self.tokens],
            "whitespace": list(self.whitespace),
            "punctuation": PUNCTUATION,
            # Another version differs only where a code point's properties changed (new ones).
            "unicode_version": unicodedata.unidata_version,
            "join": self.join,
            "unknown_id": UNKNOWN_ID,
        }

    @classmethod
    def from_manifest(cls, value: object) -> TextRules:
        """Rules from ``manifest["input"]["text"]`` (or ``DataMeta.text``), checked whole.

        Raises:
            EdgeRNNError: one line naming the first field that is wrong.
        """
        problem = manifest_problem(value)
        if problem is not None:
            key, must, got = problem
            raise EdgeRNNError(f"text rules: {key} must be {must}, got {_short(got)}")
        return _parse(value)


def bundle_rules(manifest_input: dict) -> TextRules | None:
    """The rules of a bundle's ``manifest["input"]``; None for numeric features.

    A version-1 manifest records none: its models were trained with the legacy rules.
    """
    if manifest_input.get("type") != "tokens":
        return None
    if "text" in manifest_input:
        return TextRules.from_manifest(manifest_input["text"])
    return TextRules.legacy("char" if manifest_input.get("tokenization") == "char" else "word")


def manifest_problem(value: object) -> tuple[str, str, object] | None:
    """The first wrong field of a recorded rule set as ``(key, must, got)``; None if right.

    Every field is type-checked, unknown steps and keys are refused, and the steps must be
    in the pipeline's order and agree with ``units`` and ``join``.
    """
    if not isinstance(value, dict):
        return "text", "an object {" + ", ".join(MANIFEST_FIELDS) + "}", value
    unknown = sorted(set(value) - set(MANIFEST_FIELDS))
    if unknown:
        return unknown[0], f"absent: the known keys are {', '.join(MANIFEST_FIELDS)}", value
    for key, check in _FIELD_CHECKS.items():
        if not check(value.get(key)):
            return key, MANIFEST_FIELDS[key], value.get(key)
    rules = _parse(value)
    expected = rules.to_manifest() | {"unicode_version": value["unicode_version"]}
    for key in ("steps", "units", "join"):
        if value[key] != expected[key]:
            return key, f"{expected[key]!r} for these steps (in pipeline order)", value[key]
    return None


def _parse(value: dict) -> TextRules:
    steps = value["steps"]
    return TextRules(
        tokens="char" if "split_code_points" in steps else "word",
        unicode="NFC" if "NFC" in steps else None,
        lowercase="lowercase" in steps,
        split_punctuation="split_punctuation" in steps,
        whitespace=tuple(value["whitespace"]),
    )


def _steps_ok(steps: object) -> bool:
    return (
        isinstance(steps, list)
        and all(isinstance(step, str) and step in STEPS for step in steps)
        and len(set(steps)) == len(steps)
        # Exactly one way to cut, so units and steps cannot contradict each other silently.
        and ("split_code_points" in steps) != ("split_whitespace" in steps)
        and ("split_punctuation" not in steps or "split_whitespace" in steps)
    )


def _whitespace_ok(points: object) -> bool:
    return (
        isinstance(points, list)
        and bool(points)
        and all(_is_code_point(point) for point in points)
        and points == sorted(set(points))
    )


def _is_code_point(point: object) -> bool:
    # Surrogates are not characters: no text holds them, and no app could match them.
    return (
        isinstance(point, int)
        and not isinstance(point, bool)
        and 0 <= point <= 0x10FFFF
        and not 0xD800 <= point <= 0xDFFF
    )


_FIELD_CHECKS = {
    "steps": _steps_ok,
    "units": lambda units: units in UNITS.values(),
    "whitespace": _whitespace_ok,
    "punctuation": lambda punctuation: punctuation == PUNCTUATION,
    "unicode_version": lambda version: isinstance(version, str) and 0 < len(version) <= 20,
    "join": lambda join: join in JOIN.values(),
    "unknown_id": lambda unknown: unknown == UNKNOWN_ID and not isinstance(unknown, bool),
}


def _split_punctuation(word: str) -> list[str]:
    pieces, current = [], []
    for char in word:
        if unicodedata.category(char).startswith("P"):
            pieces += ["".join(current), char] if current else [char]
            current = []
        else:
            current.append(char)
    return pieces + (["".join(current)] if current else [])


@functools.lru_cache(maxsize=8)
def _whitespace_runs(points: tuple[int, ...]) -> re.Pattern:
    # Compiled once per list; re.escape keeps every code point literal inside the class.
    members = "".join(re.escape(chr(point)) for point in points)
    return re.compile(f"[{members}]+")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
