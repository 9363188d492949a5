"""Answers written in words: numbers ("five", "one hundred twenty", "two thirds", "seven and a half", "three and a
quarter", "half a dozen", "two dozen") and the
phrases that name an empty set, all real numbers or infinity ("no solutions", "all real numbers",
"infinitely many solutions").

``NUMBER_PHRASE`` (a regex source, lowercase words, match case-insensitively) finds a number phrase in prose;
``words_value`` reads one exactly (None when the words do not form a number). ``SET_PHRASE`` finds a set
phrase that ends a sentence; ``set_phrase_value`` gives its canonical answer:
- "no solution(s)", "no real roots", "no such x (exists)", "empty", "the empty set", "none" -> ``\\emptyset``
  (the solution set is empty);
- "all real numbers", "all reals", "every real number", "every real x" -> ``(-\\infty,\\infty)``;
- "infinitely many (solutions)", "infinitely many primes of this form" (up to five words), "infinite",
  "infinity" -> ``\\infty``: a reference ``\\infty`` is read as a
  count or a value (how many solutions, a limit), so it equals these and not ``(-\\infty,\\infty)``, and
  "infinitely many solutions" does not name the solution set ``\\mathbb{R}``;
- "does not exist", "DNE" -> ``\\text{DNE}`` (a limit or value that does not exist; not the empty set).
"""
from __future__ import annotations

import re
from fractions import Fraction

NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
NUMBER_WORDS.update({w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty "
                                                           "ninety".split())})
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6}
_DENOMINATORS = {"half": 2, "halves": 2, "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "sixth": 6,
                 "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "twelfth": 12, "hundredth": 100}
_WORD = "(?:%s)" % "|".join(sorted(list(NUMBER_WORDS) + list(_SCALES), key=len, reverse=True))
_DENOMINATOR = "(?:halves|(?:%s)s?)" % "|".join(sorted(set(_DENOMINATORS) - {"halves"}, key=len, reverse=True))
_INTEGER = r"%s(?:(?:[ -]| and )%s)*" % (_WORD, _WORD)
# a mixed number ("three and a quarter", "2 and three fifths"), dozens ("half a dozen", "two dozen"), a fraction
# ("two thirds", "a quarter") or an integer
# (the numerator of a mixed number's fraction and the count of dozens are one word, which keeps the scan linear)
NUMBER_PHRASE = (r"(?:(?:negative|minus) )?(?:(?:%s|\d+) and (?:%s|a)[ -]%s|(?:half a|a|%s) dozen|(?:%s|a)[ -]%s|%s)"
                 r"(?![\w-])" % (_INTEGER, _WORD, _DENOMINATOR, _WORD, _INTEGER, _DENOMINATOR, _INTEGER))
_NUMBER_PHRASE = re.compile(NUMBER_PHRASE, re.IGNORECASE)

# SET_PHRASE runs on masked text (``phrases``), where "every real $x$" reads "every real \x00k\x00"
SET_PHRASE = (r"\b(?:no (?:real |integer |positive |integral )?(?:solutions?|roots?|such [a-z]+|values?)"
              r"|infinitely many(?: [a-z]+){0,5}|all reals|(?:all|every|any) real numbers?"
              r"|(?:all|every|any) real (?:numbers? )?(?:[a-z]|\x00\d+\x00)|(?:the )?empty(?: set)?|none"
              r"|infinity|(?:does not|doesn't|do not|don't) exist)(?![\w\x00])(?: exists?)? ?[.!]? ?$")
_EMPTY = re.compile(r"(?:there (?:is|are|exists?) )?no (?:real |integer |positive |integral )?"
                    r"(?:solutions?|roots?|such [a-z]+|values?)(?: exists?)?|(?:the )?empty(?: set)?|none",
                    re.IGNORECASE)
_ALL_REALS = re.compile(r"(?:all|every|any) real(?:s| numbers?| values?| [a-z])(?: [a-z])?", re.IGNORECASE)
_DOES_NOT_EXIST = re.compile(r"(?:it )?(?:does not|doesn't|do not|don't) exist|dne", re.IGNORECASE)
_INFINITE = re.compile(r"(?:there (?:are|is) )?infinitely many(?: [a-z]+){0,5}|infinite|infinity", re.IGNORECASE)


def set_phrase_value(s: str) -> str | None:
    """``\\emptyset`` / ``(-\\infty,\\infty)`` / ``\\infty`` / ``\\text{DNE}`` for a whole answer that is one of
    the set phrases."""
    t = s.strip().rstrip(".").strip()
    if _EMPTY.fullmatch(t):
        return "\\emptyset"
    if _ALL_REALS.fullmatch(t):
        return "(-\\infty,\\infty)"
    if _INFINITE.fullmatch(t):
        return "\\infty"
    if _DOES_NOT_EXIST.fullmatch(t):
        return "\\text{DNE}"
    return None


def words_value(s: str) -> Fraction | None:
    """The exact value of a whole number phrase ("twenty-one", "one hundred and five", "three quarters",
    "7 and a half", "three and a quarter", "half a dozen"), or None."""
    t = s.strip().lower()
    if len(t) > 200 or not _NUMBER_PHRASE.fullmatch(t):
        return None
    tokens = [w for w in re.split(r"[ -]+", t) if w]
    sign = -1 if tokens[0] in ("negative", "minus") else 1
    tokens = tokens[1:] if sign < 0 else tokens
    value = _dozens(tokens) if tokens[-1] == "dozen" else _mixed_or_fraction(tokens)
    return None if value is None else sign * value


def _dozens(tokens: list[str]) -> Fraction | None:
    """``half a dozen`` -> 6, ``a dozen`` -> 12, ``two dozen`` -> 24."""
    count = {("half", "a"): Fraction(1, 2), ("a",): Fraction(1)}.get(tuple(tokens[:-1]))
    if count is None:
        whole = _integer(tokens[:-1])
        count = None if whole is None else Fraction(whole)
    return None if count is None else 12 * count


def _mixed_or_fraction(tokens: list[str]) -> Fraction | None:
    """A mixed number (whole "and" a proper fraction), a proper fraction, or an integer."""
    denominator = _DENOMINATORS.get(tokens[-1]) or _DENOMINATORS.get(tokens[-1][:-1])
    if not denominator or len(tokens) < 2:
        value = _integer(tokens)
        return None if value is None else Fraction(value)
    whole = Fraction(0)
    cut = max((i for i, w in enumerate(tokens) if w == "and"), default=None)  # "three and a quarter"
    if cut is not None:
        head = tokens[:cut]
        integer = int(head[0]) if len(head) == 1 and head[0].isdigit() else _integer(head)
        if integer is None:
            return None
        whole, tokens = Fraction(integer), tokens[cut + 1 :]
    numerator = 1 if tokens[:-1] == ["a"] else _integer(tokens[:-1])
    if not numerator or numerator >= denominator:  # "eight quarters" (of a year) is a count, not 2
        return None
    return whole + Fraction(numerator, denominator)


def _integer(tokens: list[str]) -> int | None:
    """``["one", "hundred", "and", "five"]`` -> 105; None for sequences that are not one number."""
    total = current = 0
    previous = None  # kind of the previous token: unit, teen, ten, hundred, scale, and
    for w in tokens:
        if w == "and":
            if previous not in ("hundred", "scale"):
                return None
            previous = "and"
            continue
        if w in _SCALES:
            if w == "hundred":
                if not 1 <= current <= 99 or previous in ("hundred", "and"):
                    return None
                current, previous = current * 100, "hundred"
            else:
                if current == 0 or previous == "and":
                    return None
                total, current, previous = total + current * _SCALES[w], 0, "scale"
            continue
        value = NUMBER_WORDS.get(w)
        if value is None or (value == 0 and len(tokens) > 1):
            return None
        kind = "unit" if value < 10 else "teen" if value < 20 else "ten"
        if previous in ("unit", "teen") or (previous == "ten" and kind != "unit"):
            return None
        current, previous = current + value, kind
    return None if previous in (None, "and") else total + current


def format_value(v: Fraction) -> str:
    """``5`` or ``\\frac{p}{q}`` (with a leading minus)."""
    if v.denominator == 1:
        return str(v.numerator)
    sign = "-" if v < 0 else ""
    return "%s\\frac{%d}{%d}" % (sign, abs(v.numerator), v.denominator)
