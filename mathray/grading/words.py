"""Answers written in words: numbers ("five", "one hundred twenty", "two thirds", "seven and a half", "three and a
quarter", "half a dozen", "two dozen", "a hundred", "the twenty-first", "two point five", "forty percent"), clock
times ("a quarter to four" is 3:45, ``clock_times_in_digits``) and the
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
_ORDINALS = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth".split())}
_ORDINALS.update({w: 10 * (i + 2) for i, w in enumerate("twentieth thirtieth fortieth fiftieth sixtieth seventieth "
                                                        "eightieth ninetieth".split())})
_ORDINALS.update({"hundredth": 100, "thousandth": 1000})
_DIGIT_WORDS = {"oh": 0, **{w: v for w, v in NUMBER_WORDS.items() if v < 10}}
_WORD = "(?:%s)" % "|".join(sorted(list(NUMBER_WORDS) + list(_SCALES), key=len, reverse=True))
_ORDINAL = "(?:%s)" % "|".join(sorted(_ORDINALS, key=len, reverse=True))
_DIGIT_WORD = "(?:%s)" % "|".join(_DIGIT_WORDS)
_DENOMINATOR = "(?:halves|(?:%s)s?)" % "|".join(sorted(set(_DENOMINATORS) - {"halves"}, key=len, reverse=True))
_INTEGER = r"%s(?:(?:[ -]| and )%s)*" % (_WORD, _WORD)
# a mixed number ("three and a quarter", "2 and three fifths"), dozens ("half a dozen", "two dozen"), a fraction
# ("two thirds", "a quarter") or an integer
# (the numerator of a mixed number's fraction and the count of dozens are one word, which keeps the scan linear)
# also an ordinal after "the" ("the twenty-first"), a decimal ("two point five"), "a hundred", and any of them
# followed by "percent"
NUMBER_PHRASE = (r"(?:(?:negative|minus) )?(?:(?:%s|\d+) and (?:%s|a)[ -]%s|(?:half a|a|%s) dozen|(?:%s|a)[ -]%s"
                 r"|the (?:%s[ -])?%s|%s point(?: %s)+|(?:a (?=hundred|thousand|million))?%s)(?: per ?cent)?(?![\w-])"
                 % (_INTEGER, _WORD, _DENOMINATOR, _WORD, _INTEGER, _DENOMINATOR, _INTEGER, _ORDINAL, _INTEGER,
                    _DIGIT_WORD, _INTEGER))
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
    tokens = [w for w in re.split(r"[ -]+", re.sub(r" per ?cent$", "", t)) if w]
    sign = -1 if tokens[0] in ("negative", "minus") else 1
    tokens = tokens[1:] if sign < 0 else tokens
    if tokens[0] == "a" and tokens[1:2] and tokens[1] in _SCALES:  # "a hundred", "a thousand and five"
        tokens = ["one"] + tokens[1:]
    if tokens[0] == "the":
        value = _ordinal(tokens[1:])
    elif "point" in tokens:
        value = _decimal(tokens)
    else:
        value = _dozens(tokens) if tokens[-1] == "dozen" else _mixed_or_fraction(tokens)
    return None if value is None else sign * value


def _ordinal(tokens: list[str]) -> Fraction | None:
    """``["twenty", "first"]`` -> 21, ``["hundredth"]`` -> 100 (the count an ordinal names)."""
    last = _ORDINALS.get(tokens[-1])
    head = _integer(tokens[:-1]) if len(tokens) > 1 else 0
    # the head fills the places the ordinal word leaves: "twenty-first", "one hundred tenth", not "twenty tenth"
    if last is None or head is None or head % (10 if last < 10 else 100) or (head and last >= 100):
        return None
    return Fraction(head + last)


def _decimal(tokens: list[str]) -> Fraction | None:
    """``["two", "point", "five"]`` -> 5/2: an integer, "point", then one digit word per digit."""
    cut = tokens.index("point")
    whole = _integer(tokens[:cut])
    digits = [_DIGIT_WORDS.get(w) for w in tokens[cut + 1 :]]
    if whole is None or not digits or None in digits:
        return None
    return whole + Fraction(int("".join(map(str, digits))), 10 ** len(digits))


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


_HOURS = {w: v for w, v in NUMBER_WORDS.items() if 1 <= v <= 12}
_HOUR = r"(?:%s|1[0-2]|[1-9])" % "|".join(sorted(_HOURS, key=len, reverse=True))
_MINUTES = r"(?:a quarter|quarter|half|%s(?:[ -]%s)?(?: minutes?)?|\d{1,2} minutes?)" % (_WORD, _WORD)
# a clock time in words: "a quarter to four", "half past two", "ten past six", "twenty minutes to nine", "five
# o'clock"; "from ten to four" (no "minutes" or "quarter" before "to") is a range, not a time
_CLOCK = re.compile(r"\b(?:(%s) (past)|(a quarter|quarter|%s(?:[ -]%s)? minutes?|\d{1,2} minutes?) (to|till))"
                    r" (%s)(?![\w:-])|\b(%s) o'clock\b" % (_MINUTES, _WORD, _WORD, _HOUR, _HOUR), re.IGNORECASE)


def _minutes(words: str) -> int | None:
    t = re.sub(r" minutes?$", "", words.lower())
    value = {"a quarter": 15, "quarter": 15, "half": 30}.get(t)
    if value is None:
        value = int(t) if t.isdigit() else _integer([w for w in re.split(r"[ -]+", t) if w])
    return value if value is not None and 0 < value < 60 else None


def clock_times_in_digits(text: str) -> str:
    """``text`` with clock times in words written as ``H:MM`` ("a quarter to four" -> ``3:45``, "five o'clock" ->
    ``5:00``); words that do not name a time are left as they are."""
    def digits(m: re.Match) -> str:
        hour_words = m.group(5) or m.group(6)
        hour = int(hour_words) if hour_words.isdigit() else _HOURS[hour_words.lower()]
        if m.group(6):
            return f"{hour}:00"
        minutes = _minutes(m.group(1) or m.group(3))
        if minutes is None:
            return m.group(0)
        if m.group(2):
            return f"{hour}:{minutes:02d}"
        return f"{(hour - 2) % 12 + 1}:{60 - minutes:02d}"

    return _CLOCK.sub(digits, text) if re.search(r"past|to|till|o'clock", text, re.IGNORECASE) else text
