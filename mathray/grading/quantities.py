"""Amounts with units and clock times with a half of the day, which plain answer comparison strips.

``normalize`` drops units and "am"/"pm" (``12\\text{ minutes}`` is 12), so that "12" matches a reference with
its unit. That alone would make 12 hours equal 12 minutes and 2:30 am equal 2:30 PM. Here:
- ``quantity("54 km/h")`` is (54, "speed", 5/18): the amount, the kind of unit (time, length, mass, volume,
  speed, money) and the unit's size in the kind's base unit (exact factors: an inch is 0.0254 m, a pound
  0.45359237 kg, a dollar 100 cents); the amount may be a mixed number ("2 1/2 hours"). A dollar sign before the
  number is the unit dollars ("$3.50", ``\\$3.50``). An amount in two to four units of one kind, largest first
  ("1 hour and 50 minutes", "5 ft 6 inches", "4 dollars and 50 cents"), is their sum in its last unit (110
  minutes).
  An ambiguous abbreviation names one unit only ("m" is metres, "min" minutes); "in" is never read as inches.
- ``clock_minutes("2:30 pm")`` is 870, the minute of the day, when the time says which half of the day it is in
  (am/pm, or a 24-hour time such as 14:30); a time from 1:00 to 12:59 without am/pm gives None.
- ``quantities_verdict(answer, reference)``: True/False when both are amounts of one kind in different units
  or either is in several units (compared converted: 90 minutes = 1.5 hours, 12 hours != 12 minutes, 350 cents =
  $3.50 != $350, 1 hour and 50 minutes = 110 minutes) or both are clock times that say their
  half of the day (14:30 = 2:30 PM, 2:30 am != 2:30 PM); None otherwise (same unit, no unit, other kinds:
  the plain comparison decides).
- ``with_unit_after(text, answer)``: a number or clock time answer with the unit or am/pm that follows its last
  standalone mention in the text ("it takes the tap 12 hours" gives "12 hours"); ``verdict_in_context`` compares
  that against a reference with a unit or am/pm.
"""
from __future__ import annotations

import re
from fractions import Fraction

from mathray.grading.number_strings import parse_number

_KINDS: dict[str, dict[str, Fraction]] = {
    "time": {"s": Fraction(1), "sec": Fraction(1), "secs": Fraction(1), "second": Fraction(1),
             "seconds": Fraction(1), "min": Fraction(60), "mins": Fraction(60), "minute": Fraction(60),
             "minutes": Fraction(60), "h": Fraction(3600), "hr": Fraction(3600), "hrs": Fraction(3600),
             "hour": Fraction(3600), "hours": Fraction(3600), "day": Fraction(86400), "days": Fraction(86400),
             "week": Fraction(604800), "weeks": Fraction(604800)},
    "length": {"mm": Fraction(1, 1000), "millimeter": Fraction(1, 1000), "millimeters": Fraction(1, 1000),
               "cm": Fraction(1, 100), "centimeter": Fraction(1, 100), "centimeters": Fraction(1, 100),
               "m": Fraction(1), "meter": Fraction(1), "meters": Fraction(1), "metre": Fraction(1),
               "metres": Fraction(1), "km": Fraction(1000), "kilometer": Fraction(1000),
               "kilometers": Fraction(1000), "kilometre": Fraction(1000), "kilometres": Fraction(1000),
               "inch": Fraction(254, 10000), "inches": Fraction(254, 10000), "ft": Fraction(3048, 10000),
               "foot": Fraction(3048, 10000), "feet": Fraction(3048, 10000), "yd": Fraction(9144, 10000),
               "yard": Fraction(9144, 10000), "yards": Fraction(9144, 10000), "mi": Fraction(1609344, 1000),
               "mile": Fraction(1609344, 1000), "miles": Fraction(1609344, 1000)},
    "mass": {"mg": Fraction(1, 1000), "g": Fraction(1), "gram": Fraction(1), "grams": Fraction(1),
             "kg": Fraction(1000), "kilogram": Fraction(1000), "kilograms": Fraction(1000),
             "lb": Fraction(45359237, 100000), "lbs": Fraction(45359237, 100000),
             "pound": Fraction(45359237, 100000), "pounds": Fraction(45359237, 100000),
             "oz": Fraction(45359237, 1600000), "ounce": Fraction(45359237, 1600000),
             "ounces": Fraction(45359237, 1600000)},
    "volume": {"ml": Fraction(1, 1000), "milliliter": Fraction(1, 1000), "milliliters": Fraction(1, 1000),
               "l": Fraction(1), "liter": Fraction(1), "liters": Fraction(1), "litre": Fraction(1),
               "litres": Fraction(1)},
    "speed": {"m/s": Fraction(1), "meters per second": Fraction(1), "km/h": Fraction(5, 18),
              "km/hr": Fraction(5, 18), "kph": Fraction(5, 18), "kilometers per hour": Fraction(5, 18),
              "mph": Fraction(1609344, 3600000), "miles per hour": Fraction(1609344, 3600000),
              "ft/s": Fraction(3048, 10000), "feet per second": Fraction(3048, 10000)},
    "money": {"cent": Fraction(1), "cents": Fraction(1), "¢": Fraction(1), "dollar": Fraction(100),
              "dollars": Fraction(100)},
}
_UNITS = {unit: (kind, factor) for kind, units in _KINDS.items() for unit, factor in units.items()}


def _alternatives(units) -> str:
    """A regex of the unit names, longest first, so that "m/s" is read before "m" and "minutes" before "min"."""
    return "(?:%s)" % "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))


UNIT = _alternatives(_UNITS)
# an amount in two to four units of one kind ("1 hour and 50 minutes", "5 ft 6 inches"); speeds are written in one.
# The look-ahead (a number, a word, a space, a number) rejects most places before the unit names are tried.
_AMOUNT_PART = r"\d{1,9}(?:\.\d{1,9})? ?%s(?![\w/])"
COMPOUND_AMOUNT = r"(?=\d[\d.]* ?[A-Za-z¢]+ (?:and )?\d)(?i:%s)" % "|".join(
    r"{0}(?: (?:and )?{0}){{1,3}}".format(_AMOUNT_PART % _alternatives(_KINDS[kind]))
    for kind in ("time", "length", "mass", "volume", "money"))
_MERIDIEM = r"(?:a\.m\.?|p\.m\.?|am|pm)"
_MAX_CHARS = 80
# a mixed number ("2 1/2 hours") first, then a decimal or fraction
_NUMBER = r"-?\d{1,9} \d{1,9}/\d{1,9}|-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\\frac\{\d+\}\{\d+\}"
_QUANTITY = re.compile(r"(%s) ?(%s)" % (_NUMBER, UNIT), re.IGNORECASE)
_COMPOUND = re.compile(COMPOUND_AMOUNT)
_PART = re.compile(r"(\d[\d.]*) ?(%s)" % UNIT, re.IGNORECASE)
# a dollar amount written with its sign, as references write money ("$3.50", ``\\$3.50``)
_DOLLARS = re.compile(r"(-)? ?\\?\$ ?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)")
_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))? ?(%s)?" % _MERIDIEM, re.IGNORECASE)
_WRAPPERS = re.compile(r"\\(?:text|mathrm|textrm|mbox)\s*\{([^{}]*)\}|\\[ ,;:!]|~|\$")
# what may stand between a number and its unit in a text: a closing "$", spacing, an opening "\text{"
_UNIT_AFTER = re.compile(r"\$? ?(?:\\[ ,;:!]|~)? ?(?:\\(?:text|mathrm)\{ ?)?(%s|%s)(?![\w/^²³])"
                         % (UNIT, _MERIDIEM), re.IGNORECASE)
_PLAIN_ANSWER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|\d{1,9} \d{1,9}/\d{1,9}|\d{1,2}:\d{2}")
# a digit followed by a letter or colon (past a closing brace, spacing and "\text{"): what any amount with a unit
# or clock time has (or a dollar sign before a digit: a dollar amount)
_UNIT_OR_TIME_HINT = re.compile(r"\d\}?\s?(?::|\$?\s?(?:\\[ ,;:!]|~)?\s?(?:\\(?:text|mathrm|textrm|mbox)\s?\{\s?)?"
                                r"[A-Za-z¢])|\$ ?\d")


def _plain(s: str) -> str:
    """``s`` without math delimiters, spacing commands and ``\\text{}`` wrappers, spaces collapsed."""
    return re.sub(r"\s+", " ", _WRAPPERS.sub(lambda m: f" {m.group(1)} " if m.group(1) else " ", s)).strip()


def quantity(s: str) -> tuple[Fraction, str, Fraction] | None:
    """(amount, kind, unit size) of an amount with a known unit ("15 m/s", ``12\\text{ minutes}``, "$3.50"), or
    in several units of one kind, largest first ("1 hour and 50 minutes" is (110, "time", 60)); else None."""
    measured = _measured(s)
    return measured[:3] if measured else None


def _measured(s: str) -> tuple[Fraction, str, Fraction, bool] | None:
    """``quantity(s)`` and whether the amount is written in several units."""
    if len(s) > _MAX_CHARS:
        return None
    if dollars := _DOLLARS.fullmatch(s.strip()):
        amount = parse_number(dollars.group(2).replace(",", ""))
        return (-amount if dollars.group(1) else amount), "money", _UNITS["dollars"][1], False
    plain = _plain(s)
    m = _QUANTITY.fullmatch(plain)
    if not m:
        return _in_several_units(plain) if _COMPOUND.fullmatch(plain) else None
    amount = parse_number(m.group(1).replace(",", "") if "\\" not in m.group(1) else m.group(1))
    if amount is None:
        return None
    kind, factor = _UNITS[m.group(2).lower()]
    return amount, kind, factor, False


def _in_several_units(plain: str) -> tuple[Fraction, str, Fraction, bool] | None:
    """The sum of an amount's parts in its last unit, when every part is of one kind and each unit is smaller than
    the one before it ("5 ft 6 inches" is 66 inches; "3 m and 4 m" and "20 minutes and 1 hour" are no amount)."""
    parts = [(parse_number(m.group(1)), *_UNITS[m.group(2).lower()]) for m in _PART.finditer(plain)]
    kinds, factors = {kind for _, kind, _ in parts}, [factor for _, _, factor in parts]
    if len(kinds) != 1 or any(a is None for a, _, _ in parts) or any(b >= a for a, b in zip(factors, factors[1:])):
        return None
    total = sum(amount * factor for amount, _, factor in parts)
    return Fraction(total) / factors[-1], kinds.pop(), factors[-1], True


def clock_minutes(s: str) -> int | None:
    """The minute of the day of a clock time that says its half of the day ("2:30 pm", "14:30", "3 PM"), else
    None (also for "2:30", which may be either half)."""
    if len(s) > _MAX_CHARS:
        return None
    m = _CLOCK.fullmatch(_plain(s))
    if not m or (m.group(2) is None and m.group(3) is None):
        return None  # a bare number is no time
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if minute >= 60:
        return None
    if m.group(3):
        if not 1 <= hour <= 12:
            return None
        afternoon = m.group(3).lower().startswith("p")
        return (hour % 12 + (12 if afternoon else 0)) * 60 + minute
    return hour * 60 + minute if hour == 0 or 13 <= hour <= 23 else None


def quantities_verdict(answer: str, reference: str) -> bool | None:
    """Whether the answer and the reference are the same amount or time, when both carry units of one kind
    that differ (or either is in several units) or both are clock times that say their half of the day; else None
    (see the module docstring)."""
    a, b = _measured(answer), _measured(reference)
    if a is not None and b is not None:
        if a[1] != b[1] or a[2] == b[2] and not (a[3] or b[3]):
            return None  # different kinds ("m" and "min") or the same unit: the plain comparison decides
        return a[0] * a[2] == b[0] * b[2]
    ta, tb = clock_minutes(answer), clock_minutes(reference)
    if ta is not None and tb is not None:
        return ta == tb
    return None


def verdict_in_context(text: str, answer: str, reference: str) -> bool | None:
    """``quantities_verdict`` of the answer, with the unit or am/pm the text writes after it, against a reference
    that carries a unit or am/pm; None for any other reference."""
    if not _UNIT_OR_TIME_HINT.search(reference) or quantity(reference) is None and clock_minutes(reference) is None:
        return None
    return quantities_verdict(with_unit_after(text, answer), reference)


def with_unit_after(text: str, answer: str) -> str:
    """A number or ``H:MM`` answer with the unit or am/pm written right after its last standalone mention in
    ``text``; any other answer, or one that nothing such follows, as it is."""
    if not _PLAIN_ANSWER.fullmatch(answer):
        return answer
    last = None
    for last in re.finditer(r"(?<![\w.,:/{-])%s(?![\w]|[.,:]\d)" % re.escape(answer), text):
        pass
    unit = _UNIT_AFTER.match(text, last.end()) if last else None
    return f"{answer} {unit.group(1)}" if unit else answer
