"""Date normalisation: human-written dates in many formats to ISO ``YYYY-MM-DD`` (characters).

Sources mix day-first numeric forms ("27/11/2026", "27.11.26"), month names and abbreviations
("nov 27, 2026", "2026 nov. 27"), ordinals and weekdays ("tuesday the 27th of nov 26"), two-digit
years (50-99 mean 19xx, 00-49 mean 20xx) and a little capitalisation noise. Every date is a real
calendar date between 1950 and 2049 and its weekday is the true one. The model must find the
three fields wherever the format puts them, turn month names into numbers, and expand two-digit
years, getting all ten output characters right: exact match punishes any slip.
"""

from __future__ import annotations

import calendar
import datetime
import random

from edgernn.data.builtin import register
from edgernn.data.raw import RawData

_SIZES = {"train": 6000, "valid": 500, "test": 1000}
_FIRST_DAY = datetime.date(1950, 1, 1).toordinal()
_LAST_DAY = datetime.date(2049, 12, 31).toordinal()
_MONTHS = [name.lower() for name in calendar.month_name[1:]]
_WEEKDAYS = [name.lower() for name in calendar.day_name]


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _parts(rng: random.Random, date: datetime.date) -> dict[str, str]:
    """Every field of ``date`` in one randomly chosen spelling each."""
    month = _MONTHS[date.month - 1]
    weekday = _WEEKDAYS[date.weekday()]
    return {
        "d": rng.choice((str(date.day), f"{date.day:02d}")),
        "dth": _ordinal(date.day),
        "m": rng.choice((str(date.month), f"{date.month:02d}")),
        "mon": rng.choice((month, month[:3], month[:3] + ".")),
        "yyyy": str(date.year),
        "yy": f"{date.year % 100:02d}",
        "y": rng.choice((str(date.year), f"'{date.year % 100:02d}", f"{date.year % 100:02d}")),
        "wd": rng.choice((weekday, weekday[:3])),
    }


# Day-first numeric forms only, so that "03/04/2026" is never ambiguous.
_FORMATS = (
    "{d} {mon} {y}", "{mon} {d}, {y}", "{d}/{m}/{yyyy}", "{d}/{m}/{yy}", "{d}.{m}.{yyyy}",
    "{d}.{m}.{yy}", "{d}-{m}-{yyyy}", "{wd} the {dth} of {mon} {y}", "{yyyy} {mon} {d}",
    "{mon} {dth} {y}", "the {dth} of {mon}, {yyyy}", "{wd}, {d} {mon} {y}", "{d}-{mon}-{yyyy}",
    "{yyyy}/{m}/{d}", "{yyyy}-{m}-{d}", "{mon} the {dth}, {yyyy}", "{dth} {mon} {y}",
    "{wd}, {mon} {d}, {yyyy}", "{wd} {dth} {mon} {yyyy}", "{d}{mon}{yyyy}",
)  # fmt: skip


def _spell(rng: random.Random, date: datetime.date) -> str:
    text = rng.choice(_FORMATS).format(**_parts(rng, date))
    case = rng.random()
    if case < 0.15:  # "Nov 27th, 2026"; str.title() would write "27Th"
        return " ".join(word.capitalize() for word in text.split(" "))
    return text.upper() if case < 0.2 else text


def _split(rng: random.Random, size: int, seen: set[str]) -> list[tuple[str, str]]:
    examples = []
    while len(examples) < size:
        date = datetime.date.fromordinal(rng.randint(_FIRST_DAY, _LAST_DAY))
        source = _spell(rng, date)
        if source in seen:
            continue
        seen.add(source)
        examples.append((source, date.isoformat()))
    return examples


@register("translate", "seq2seq", "dates in many human formats to ISO YYYY-MM-DD (chars)")
def generate(seed: int) -> RawData:
    """``(source, target)`` pairs such as ``("tue the 27th of nov 26", "2026-11-27")``."""
    seen: set[str] = set()
    splits = {
        name: _split(random.Random(f"translate/{seed}/{name}"), size, seen)
        for name, size in _SIZES.items()
    }
    return RawData(task="seq2seq", tokens="char", **splits)
