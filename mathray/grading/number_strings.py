"""Exact values of plain number strings (after ``normalize``), base subscripts and word answers.

``parse_number`` turns integers (any size, thousands separators), decimals, repeating decimals,
fractions, mixed numbers and scientific notation into an exact ``Fraction``; ``integer_digits`` compares
integers too long for that; ``parse_base`` reads ``1011_2``; ``text_key`` folds word answers.
"""
from __future__ import annotations

import re
from fractions import Fraction

MAX_INT_DIGITS = 4_000  # Python refuses str->int beyond 4300 digits; longer integers compare as digit strings
MAX_EXP10 = 1_000  # 1e1000 is fine as a Fraction; 1e100000 is refused

_DEC = r"(?:\d+\.\d*|\.\d+|\d+)"
_RE_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_RE_DEC = re.compile(rf"(-?)({_DEC})")
_RE_SCI = re.compile(rf"(-?{_DEC})(?:[eE]|\\times10\^|\\cdot10\^|\*10\^|×10\^)\{{?([+-]?\d+)\}}?")
_RE_FRAC = re.compile(r"(-?)\\frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}")
_RE_SLASH = re.compile(rf"(-?)({_DEC})/({_DEC})")
_RE_MIXED = re.compile(r"(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}")
_RE_MIXED_SPACE = re.compile(r"(-?)(\d+) (\d+)/(\d+)")
_RE_REPEAT = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")


def _dec(text: str) -> Fraction | None:
    m = _RE_DEC.fullmatch(text)
    if not m:
        return None
    digits = m.group(2)
    if len(digits) > MAX_INT_DIGITS:
        return None
    value = Fraction(digits) if not digits.endswith(".") else Fraction(digits[:-1])
    return -value if m.group(1) else value


def parse_number(s: str) -> Fraction | None:
    """Exact value of a normalized number string, or None when it is not a plain number.

    ``2\\frac12`` is a mixed number (5/2); ``0.\\overline{3}`` is 1/3; ``1,000`` is 1000 but ``1,2`` is not a
    number (it is a list).
    """
    if not s or len(s) > MAX_INT_DIGITS + 20:
        return None
    raw = s
    s = s.replace(" ", "") if not _RE_MIXED_SPACE.fullmatch(s) else s
    if _RE_THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    if "," in s:
        return None
    if (v := _dec(s)) is not None:
        return v
    if m := _RE_SCI.fullmatch(s):
        mant, exp = _dec(m.group(1)), int(m.group(2))
        if mant is None or abs(exp) > MAX_EXP10:
            return None
        return mant * Fraction(10) ** exp
    if m := _RE_FRAC.fullmatch(s):
        num, den = _dec(m.group(2)), _dec(m.group(3))
        if num is None or not den:
            return None
        return (-1 if m.group(1) else 1) * num / den
    if m := _RE_SLASH.fullmatch(s):
        num, den = _dec(m.group(2)), _dec(m.group(3))
        if num is None or not den:
            return None
        return (-1 if m.group(1) else 1) * num / den
    for pat in (_RE_MIXED, _RE_MIXED_SPACE):
        if m := pat.fullmatch(s if pat is _RE_MIXED else raw):
            whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
            if den == 0:
                return None
            return (-1 if m.group(1) else 1) * (whole + Fraction(num, den))
    if m := _RE_REPEAT.fullmatch(s):
        whole, fixed, rep = m.group(2) or "0", m.group(3), m.group(4)
        if len(fixed) + len(rep) > 200:
            return None
        base = Fraction(int(whole)) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
        value = base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
        return -value if m.group(1) else value
    return None


def integer_digits(s: str) -> str | None:
    """Canonical digits of a (possibly huge) integer string, for exact comparison beyond ``MAX_INT_DIGITS``."""
    t = s.replace(",", "") if _RE_THOUSANDS.fullmatch(s) else s
    m = re.fullmatch(r"(-?)0*(\d+)", t)
    if not m:
        return None
    return ("-" if m.group(1) and m.group(2) != "0" else "") + m.group(2)


_BASE = re.compile(r"([0-9A-Za-z]+)_\{?\(?(\d+)\)?\}?")


def parse_base(s: str) -> tuple[str, int] | None:
    """``1011_2`` -> ("1011", 2); base 10 subscripts are dropped by the caller (``10_{10}`` is 10)."""
    m = _BASE.fullmatch(s)
    if not m:
        return None
    return m.group(1).lstrip("0").upper() or "0", int(m.group(2))


_TEXTY = re.compile(r"[A-Za-z][A-Za-z .'\-]*")


def text_key(s: str) -> str | None:
    """Case-folded text of a word answer (``\\text{(A)}`` -> ``a``, ``Evelyn`` -> ``evelyn``), else None."""
    t = s.replace("(", "").replace(")", "").strip()
    if not _TEXTY.fullmatch(t):
        return None
    if len(t) == 1 and t.islower() and t not in "abcde":
        return None  # a single variable such as x is math, not text
    t = re.sub(r"\s+", " ", t).strip(" .").casefold()
    return "neither" if re.fullmatch(r"neither [a-z-]+ nor [a-z-]+", t) else t  # "neither even nor odd" = "neither"
