"""String normalization of answers (no sympy here: the cheap path).

``normalize`` removes what carries no value (``$``, ``\\left``/``\\right``, spacing commands, ``^\\circ``,
``\\%``, currency signs, units (rates such as ``km/h`` too) and other words after a number, ``x =``,
``(p, q) =``, ``x \\in``) and unifies spellings: ``\\dfrac``/``\\tfrac`` -> ``\\frac``;
``\\geq``/``\\geqslant``/``>=`` -> ``\\ge`` (and the same for ``\\le``, ``\\ne``); ``\\varnothing``/``\\{\\}`` ->
``\\emptyset``; ``\\mathbb{R}`` -> ``(-\\infty,\\infty)``;
``+\\infty`` -> ``\\infty``; ``\\text{ and }`` -> a comma; ``\\text{ or }`` -> `` or `` (read as a list by
``structure``); answers in words -> their value ("five" -> 5, "two thirds" -> ``\\frac{2}{3}``,
"no solutions" -> ``\\emptyset``, "all real numbers" -> ``(-\\infty,\\infty)``, "infinitely many" ->
``\\infty``: see ``words``); a matrix in ``\\left[ ... \\right]`` -> the matrix.
Equal outputs mean equal answers. Answers over ``MAX_ANSWER_CHARS`` are returned stripped, uncached.
"""
from __future__ import annotations

import functools
import re

from mathray.grading.number_strings import parse_number
from mathray.grading.words import format_value, set_phrase_value, words_value

MAX_ANSWER_CHARS = 2_000  # longer answers are compared as strings only

_UNICODE = {"−": "-", "–": "-", "×": "\\times ", "·": "\\cdot ", "÷": "\\div ", "π": "\\pi ", "√": "\\sqrt",
            "∞": "\\infty ", "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "°": "^\\circ", "∅": "\\emptyset ",
            "ℝ": "\\mathbb{R}", "∪": "\\cup ", "∩": "\\cap ", "€": "", "£": "", "¥": "", "₹": ""}
_MACROS = [(r"\\(?:dfrac|tfrac|cfrac)(?![a-zA-Z])", r"\\frac"), (r"\\(?:leqslant|leqq|leq)(?![a-zA-Z])", r"\\le "),
           (r"\\(?:geqslant|geqq|geq)(?![a-zA-Z])", r"\\ge "), (r"\\neq(?![a-zA-Z])|\\not ?=", r"\\ne "),
           (r"\\lt(?![a-zA-Z])", "<"), (r"\\gt(?![a-zA-Z])", ">"), (r"<=", r"\\le "), (r">=", r"\\ge "),
           (r"(?<![\d)}!])!=", r"\\ne "),  # "5!=120" is a factorial (r"\\(?:dots|cdots|ldots)(?![a-zA-Z])", r"\\ldots "),
           (r"\\(?:lbrace)(?![a-zA-Z])", r"\\{"), (r"\\(?:rbrace)(?![a-zA-Z])", r"\\}"),
           (r"\\(?:vert|lvert|rvert|mid)(?![a-zA-Z])", "|"), (r"\\(?:langle)(?![a-zA-Z])", "("),
           (r"\\(?:rangle)(?![a-zA-Z])", ")"), (r"\\(?:varnothing)(?![a-zA-Z])", r"\\emptyset "),
           (r"\\(?:left|right)\.", ""), (r"\\(?:mbox|mathrm|textrm|textnormal|textup)\s*\{", r"\\text{"),
           (r"\\mathbb\s*\{?\s*R\s*\}?|\\R(?![a-zA-Z])|\\text\{\s*all real numbers\s*\}|^all real numbers$",
            r"(-\\infty,\\infty)"),
           (r"\\\{\s*\\\}|\\text\{\s*empty set\s*\}", r"\\emptyset "), (r"\+\s*\\infty", r"\\infty "),
           (r"\binfinity\b|\\inf(?![a-zA-Z])", r"\\infty ")]
_MACROS = [(re.compile(p), r) for p, r in _MACROS]
_DROP_COMMANDS = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|displaystyle|textstyle"
                            r"|limits|quad|qquad)(?![a-zA-Z])|\\[!,;: ]")
_TEXT_CMDS = re.compile(r"\\(?:text|textbf|textit|textsf|texttt|mathbf|mathit|mathsf|boldsymbol|operatorname)\s*\{")
_BOX_CMDS = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TRIG_DEGREES = re.compile(r"(\\(?:sin|cos|tan|cot|sec|csc)) ?\(? ?(-?\d+(?:\.\d+)?) ?\^ ?\{? ?\\circ ?\}? ?\)?")
_DEGREE = re.compile(r"\^ ?\{ ?\\circ ?\}|\^ ?\\circ|\\degree|\\circ(?= |$)")
_UNIT_WORDS = ("units", "unit", "sq", "square", "cubic", "cm", "m", "km", "mm", "in", "inch", "inches", "ft", "feet",
               "foot", "yd", "yards", "yard", "mi", "mile", "miles", "meters", "meter", "centimeters", "degrees",
               "degree", "cents", "cent", "dollars", "dollar", "hours", "hour", "minutes", "minute", "seconds",
               "second", "days", "day", "weeks", "years", "mph", "kg", "g", "grams", "pounds", "lbs", "percent",
               "liters", "ml", "people", "students", "cups", "ounces", "oz", "points", "sq.", "usd", "am", "pm", "a.m",
               "p.m")
_PER_TIME = r"/ ?(?:s|sec|min|h|hr|hour|day|week|yr|year)"  # a rate: "km/h", "L/min", "ft/s"
_TRAILING_UNITS = re.compile(r"(?<=[\d}\s])\s?(?:\\text\{ ?[A-Za-z][A-Za-z .]*(?:/ ?[A-Za-z]+)?\}"
                             r"|\b(?:%s|l)(?:%s)?\b\.?)(?:\^\{?[23]\}?)?\s?$"
                             % ("|".join(re.escape(w) for w in _UNIT_WORDS), _PER_TIME), re.IGNORECASE)
_VAR_ASSIGN = re.compile(r"^ ?(?:[a-zA-Z]|\\[a-zA-Z]+|\((?: ?[a-zA-Z] ?,)+ ?[a-zA-Z] ?\))(?:_\{?\w+\}?)? ?(?:=|\\in\b)"
                         r" ?(?!.*(?:=|\\in\b))")
_BRACKETED_MATRIX = re.compile(r"^[(\[] ?(\\begin\{(?:[pbvBV]?matrix|array)\}.*\\end\{(?:[pbvBV]?matrix|array)\}) ?[)\]]$")


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


_CACHED_CHARS = 400  # longer answers are normalized each time, so the cache stays small (~65k x 400 chars)


def normalize(ans: str) -> str:
    """A canonical spelling of an answer string; equal outputs mean equal answers."""
    if len(ans) > MAX_ANSWER_CHARS:
        return ans.strip()
    return _normalize_cached(ans) if len(ans) <= _CACHED_CHARS else _normalize(ans)


@functools.lru_cache(maxsize=65_536)
def _normalize_cached(ans: str) -> str:
    return _normalize(ans)


def _normalize(ans: str) -> str:
    s = re.sub(r"\s+", " ", ans).strip()
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    s = unwrap_command(s, _BOX_CMDS)
    worded = _worded(s)
    if worded is not None:
        return worded
    for pattern, repl in _MACROS:
        s = pattern.sub(repl, s)
    s = s.replace("{,}", ",").replace("\\\\", "\\cr ")  # the row break "\\" -> "\cr" before "\ " is dropped
    s = _DROP_COMMANDS.sub(" ", s)
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    s = _TRIG_DEGREES.sub(r"\1(\\frac{\2\\pi}{180})", s)  # "\\tan 45^\\circ" is tan(pi/4), not tan(45)
    s = _DEGREE.sub("", s)  # elsewhere degrees are the unit of the answer: "45^\\circ" = 45
    s = re.sub(r"\\text\{ ?(or) ?\}", r" \1 ", s)
    s = re.sub(r"\\text\{ ?(and) ?\}|(?<=[\d})\]] )and(?= )|(?<=[\d})\]]), ?and(?= )", ",", s)  # "2, 3, and 4" too
    s = re.sub(r"\s+", " ", s).strip()
    for _ in range(3):
        t = _TRAILING_UNITS.sub("", s).strip()
        if not t:  # the whole answer is a word such as "\text{east}": keep it
            break
        s = t
    s = unwrap_command(s, _TEXT_CMDS)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    s = _VAR_ASSIGN.sub("", s, count=1) if not _looks_like_equation_of_line(s) else s
    s = re.sub(r"\s*([,=+\-*/^_(){}\[\]<>|&])\s*", r"\1", s)
    s = re.sub(r"(\\[a-zA-Z]+) (?=[^a-zA-Z])", r"\1", s)  # "\pi 2" -> "\pi2"; keep "\pi x" apart
    s = re.sub(r"(?<=[^a-zA-Z ]) (?=\\[a-zA-Z])", "", s)  # "2 \cr" -> "2\cr"; keep "x \le" apart
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\sqrt(\d+|[a-zA-Z])", r"\\sqrt{\1}", s)
    s = re.sub(r"^\+", "", s)
    if m := _BRACKETED_MATRIX.match(s):
        s = m.group(1)
    return _words_to_number(s)


def _worded(s: str) -> str | None:
    """The canonical answer of a whole answer in words: "two thirds" -> ``\\frac{2}{3}``, "no solutions" ->
    ``\\emptyset``, "all real numbers" -> ``(-\\infty,\\infty)`` (see ``words``); else None."""
    t = unwrap_command(s.replace("$", ""), _TEXT_CMDS).strip().rstrip(".").strip()
    if not t or len(t) > 200 or not t[0].isalnum():
        return None
    phrase = set_phrase_value(t)
    if phrase is not None:
        return phrase
    value = words_value(t)
    return format_value(value) if value is not None else None


def _words_to_number(s: str) -> str:
    """A number followed by plain words ("5 apples", "18 per day", "one half of the pie") -> the number.
    Anything else is returned as it is."""
    words = s.split(" ")
    k = len(words)
    while k > 1 and re.fullmatch(r"[A-Za-z][A-Za-z'.\-]*", words[k - 1]) and words[k - 1].lower() not in (
            "or", "and", "i", "e"):
        k -= 1
        head = " ".join(words[:k])
        if parse_number(head) is not None:
            return head
        value = words_value(head)
        if value is not None:
            return format_value(value)
    return s


def _looks_like_equation_of_line(s: str) -> bool:
    """``y = 2x + 3`` keeps its ``y =``: the right side mentions a variable (it is an equation, not a value)."""
    m = _VAR_ASSIGN.match(s)
    if not m:
        return False
    rhs = s[m.end() :]
    rhs = re.sub(r"\\(?:frac|sqrt|pi|infty|cdot|times|le|ge|ne|ldots|cup|cap|pm|mp|circ|begin|end|cr|emptyset)"
                 r"|\{(?:[pbvBV]?matrix|array)\}|\bor\b", "", rhs)
    return bool(re.search(r"[a-zA-Z]", rhs))
