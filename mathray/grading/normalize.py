"""String normalization and exact number parsing of answer strings (no sympy here: the cheap path).

``normalize`` removes what carries no value (``$``, ``\\left``/``\\right``, spacing commands, ``^\\circ``,
``\\%``, ``\\$``, units in ``\\text{}``, ``x =``) and unifies spellings (``\\dfrac``/``\\tfrac`` -> ``\\frac``).
``parse_number`` turns integers (any size, thousands separators), decimals, repeating decimals,
fractions, mixed numbers and scientific notation into an exact ``Fraction`` (or an ``int``).
"""
from __future__ import annotations

import functools
import re
from fractions import Fraction

MAX_ANSWER_CHARS = 2_000  # longer answers are compared as strings only
MAX_INT_DIGITS = 4_000  # Python refuses str->int beyond 4300 digits; longer integers compare as digit strings
MAX_EXP10 = 1_000  # 1e1000 is fine as a Fraction; 1e100000 is refused

_UNICODE = {"−": "-", "–": "-", "×": "\\times ", "·": "\\cdot ", "π": "\\pi ", "√": "\\sqrt", "∞": "\\infty ",
            "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "°": "^\\circ", "\u00a0": " ", "\u2009": " ", "\u202f": " "}
_DROP_COMMANDS = ("\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big", "\\displaystyle",
                  "\\textstyle", "\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad", "\\ ", "\\limits")
_TEXT_CMDS = re.compile(r"\\(?:text|textbf|textit|textrm|mbox|mathrm|mathbf|mathit|textnormal|operatorname)\s*\{")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\degree|\^\s*\{\s*\\circ\s*\}")
_UNIT_WORDS = ("units", "unit", "sq", "square", "cubic", "cm", "m", "km", "mm", "in", "inch", "inches", "ft", "feet",
               "foot", "yd", "yards", "yard", "mi", "mile", "miles", "meters", "meter", "centimeters", "degrees",
               "degree", "cents", "cent", "dollars", "dollar", "hours", "hour", "minutes", "minute", "seconds",
               "second", "days", "day", "weeks", "years", "mph", "kg", "g", "grams", "pounds", "lbs", "percent",
               "liters", "ml", "people", "students", "cups", "ounces", "oz", "points", "sq.")
_TRAILING_UNITS = re.compile(r"(?<=[\d}\s])\s*(?:\\text\{\s*[A-Za-z][A-Za-z .]*\}|\b(?:%s)\b\.?)(?:\^\{?[23]\}?)?\s*$"
                             % "|".join(re.escape(w) for w in _UNIT_WORDS), re.IGNORECASE)
_VAR_ASSIGN = re.compile(r"^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*(?:=|\\in)\s*(?!.*(?:=|\\in))")


def unwrap_command(s: str, pattern: re.Pattern) -> str:
    """Replace ``\\cmd{X}`` by ``X`` (balanced braces) for every match of ``pattern`` (which ends at '{')."""
    out = []
    i = 0
    while True:
        m = pattern.search(s, i)
        if not m:
            out.append(s[i:])
            return "".join(out)
        out.append(s[i : m.start()])
        depth, j = 1, m.end()
        while j < len(s) and depth:
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            j += 1
        out.append(s[m.end() : j - 1] if depth == 0 else s[m.end() :])
        i = j


@functools.lru_cache(maxsize=65_536)
def normalize(ans: str) -> str:
    """A canonical spelling of an answer string; equal outputs mean equal answers."""
    s = ans.strip()
    if len(s) > MAX_ANSWER_CHARS:
        return s
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    s = s.replace("\\boxed", "").replace("\\fbox", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = s.replace("{,}", ",").replace("\\dots", "\\ldots").replace("\\cdots", "\\ldots")
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}").replace("\\vert", "|")
    s = s.replace("\\leq", "\\le").replace("\\geq", "\\ge").replace("\\neq", "\\ne")
    s = s.replace("\\le ", "\\le").replace("\\ge ", "\\ge")
    s = s.replace("\\\\", "\\cr ")  # the row break "\\" -> "\cr" before "\ " (a space) is dropped
    s = re.sub(r"\\(?:left|right)\.", "", s)
    s = re.sub(r"\\(?:mbox|mathrm|textrm|textnormal)\s*\{", r"\\text{", s)
    s = s.replace("\\langle", "(").replace("\\rangle", ")")
    for cmd in _DROP_COMMANDS:
        s = re.sub(re.escape(cmd) + r"(?![a-zA-Z])", " ", s)
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    s = _DEGREE.sub("", s)
    s = re.sub(r"\\text\{\s*(or)\s*\}", r" \1 ", s)
    s = re.sub(r"\\text\{\s*(and)\s*\}", ",", s)
    for _ in range(3):
        t = _TRAILING_UNITS.sub("", s).strip()
        if not t:  # the whole answer is a word such as "\text{east}": keep it
            break
        s = t
    s = unwrap_command(s, _TEXT_CMDS)
    s = s.strip().rstrip(".").strip()
    s = _VAR_ASSIGN.sub("", s, count=1) if not _looks_like_equation_of_line(s) else s
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s*([,=+\-*/^_(){}\[\]<>|])\s*", r"\1", s)
    s = re.sub(r"(\\[a-zA-Z]+) (?=[^a-zA-Z])", r"\1", s)  # "\pi 2" -> "\pi2"; keep "\pi x" apart
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt(\d+|[a-zA-Z])", r"\\sqrt{\1}", s)
    s = re.sub(r"^\+", "", s)
    return s


def _looks_like_equation_of_line(s: str) -> bool:
    """``y = 2x + 3`` keeps its ``y =``: the right side mentions a variable (it is an equation, not a value)."""
    m = _VAR_ASSIGN.match(s)
    if not m:
        return False
    rhs = s[m.end() :]
    rhs = re.sub(r"\\(?:frac|sqrt|pi|infty|cdot|times|le|ge|ne|ldots|cup|cap|pm|mp|circ)", "", rhs)
    return bool(re.search(r"[a-zA-Z]", rhs))


# ---- exact numbers -------------------------------------------------------------------------------------------

_INT = r"\d+"
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
    return re.sub(r"\s+", " ", t).strip(" .").casefold()
