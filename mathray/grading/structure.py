"""Normalized answers as nested nodes: ``("atom", s)``, ``("set", [..])`` (unordered), ``("seq", brackets,
[..])`` (tuples and intervals, ordered) and ``("matrix", [[..]])``.

- Bare comma lists, ``\\{...\\}``, ``\\cup`` unions and ``or`` lists are sets ("x = 2 or x = 3" is {2, 3}; a
  hedged "3 or 4" is {3, 4} and so never equals 3). A bare comma list is marked ``("set", [..], "list")``:
  a reference list of roots that repeats a value is a multiset (``1, -2`` != ``1, 1, -2``), while a
  prediction that repeats a value a reference lists once is read as a set (``1, 1, -2`` = ``1, -2``). A list
  of assignments to distinct variables ("p = 3, q = 2") is the tuple (3, 2).
- ``a \\pm b`` is the set {a + b, a - b}; at most ``MAX_PM`` signs per element are expanded (2^k strings),
  and a list longer than ``MAX_ELEMENTS`` is not split: both would let a short answer cost exponential
  or quadratic work.
- One-variable inequalities become intervals: ``5 \\ge x`` and ``x \\le 5`` are both ``(-\\infty, 5]``,
  ``-2 < x < 3`` is ``(-2, 3)``, ``x \\ne 3`` is ``(-\\infty, 3) \\cup (3, \\infty)``; a set-builder set
  ``\\{x \\mid x > 2\\}`` is the solution set of its condition.
"""
from __future__ import annotations

import re

from mathray.grading.normalize import MAX_ANSWER_CHARS, normalize
from mathray.grading.number_strings import parse_number

MAX_PM = 4
MAX_ELEMENTS = 32
MAX_DEPTH = 6
_OPEN, _CLOSE = "([{", ")]}"
_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix|smallmatrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}$", re.S)
_VARIABLE = re.compile(r"(?:[a-zA-Z]|\\(?:alpha|beta|gamma|theta|phi|varphi|lambda|mu|omega|sigma|tau|rho|psi|"
                       r"delta|epsilon|varepsilon|eta|kappa|nu|xi|chi|zeta))(?:_\{?\w+\}?)?")
_INEQ_SPLIT = re.compile(r"(\\le(?![a-zA-Z])|\\ge(?![a-zA-Z])|<|>)")
_SET_BUILDER = re.compile(r"\\\{ ?[a-zA-Z](?: ?\\in ?[^|:]{1,40})? ?[|:] ?(.+)\\\}")
_THOUSANDS = re.compile(r"(\d),(\d{3})(?![\d.])")
_ASSIGNMENT = re.compile(r"^([a-zA-Z](?:_\{?\w+\}?)?)=(?!.*=)")


def split_top(s: str, sep: str) -> list[str]:
    """Split at ``sep`` occurrences outside any bracket (one pass)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(s[start:])
    return parts


def encloses(s: str) -> bool:
    """Whether the bracket opening ``s`` closes at its last character."""
    if len(s) < 2 or s[0] not in _OPEN or s[-1] not in _CLOSE:
        return False
    depth = 0
    for i, c in enumerate(s):
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def expand_pm(s: str) -> list[str] | None:
    """The sign choices of ``\\pm``/``\\mp`` in ``s`` (all ``\\pm`` in one answer choose the same way only when
    written as one; each is independent here), or None past ``MAX_PM`` signs."""
    if s.count("\\pm") + s.count("\\mp") > MAX_PM:
        return None
    out = [s]
    for op, first, second in (("\\pm", "+", "-"), ("\\mp", "-", "+")):
        while any(op in x for x in out):
            nxt = []
            for x in out:
                k = x.find(op)
                if k < 0:
                    nxt.append(x)
                    continue
                head, tail = x[:k], x[k + len(op) :]
                nxt += [head + first + tail, head + second + tail]
            out = nxt
    return [re.sub(r"^\+", "", re.sub(r"([(,])\+", r"\1", x)) for x in out]


def _is_value(s: str) -> bool:
    """A constant endpoint: no variable letters outside commands (``\\infty``, ``\\pi``, ``\\sqrt{2}``)."""
    return bool(s) and not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", s))


def _interval(lo: str, lo_closed: bool, hi: str, hi_closed: bool):
    return ("seq", ("[" if lo_closed else "(") + ("]" if hi_closed else ")"), [("atom", lo), ("atom", hi)])


def inequality_intervals(s: str):
    """An interval node (or a union) for a one-variable inequality, else None."""
    if "\\ne" in s and s.count("\\ne") == 1 and not _INEQ_SPLIT.search(s):
        left, right = (t.strip() for t in s.split("\\ne"))
        if _VARIABLE.fullmatch(left) and _is_value(right):
            return ("set", [_interval("-\\infty", False, right, False), _interval(right, False, "\\infty", False)])
        return None
    parts = _INEQ_SPLIT.split(s)
    if len(parts) not in (3, 5) or "=" in s:
        return None
    terms, ops = [t.strip() for t in parts[0::2]], parts[1::2]
    upward = {"<": (True, False), "\\le": (True, True), ">": (False, False), "\\ge": (False, True)}
    if len(parts) == 3:
        a, b = terms
        up, closed = upward[ops[0]]
        if _VARIABLE.fullmatch(a) and _is_value(b):
            return _interval("-\\infty", False, b, closed) if up else _interval(b, closed, "\\infty", False)
        if _VARIABLE.fullmatch(b) and _is_value(a):
            return _interval(a, closed, "\\infty", False) if up else _interval("-\\infty", False, a, closed)
        return None
    a, x, b = terms
    (up1, c1), (up2, c2) = upward[ops[0]], upward[ops[1]]
    if up1 != up2 or not _VARIABLE.fullmatch(x) or not (_is_value(a) and _is_value(b)):
        return None
    return _interval(a, c1, b, c2) if up1 else _interval(b, c2, a, c1)


def parse_structure(s: str, depth: int = 0):
    """A normalized answer as nested nodes (see the module docstring)."""
    if depth > MAX_DEPTH or len(s) > MAX_ANSWER_CHARS:
        return ("atom", s)
    if m := _MATRIX.match(s):
        rows = [r for r in m.group(2).split("\\cr") if r.strip()]
        return ("matrix", [[c.strip() for c in r.split("&")] for r in rows])
    if parse_number(s) is not None:
        return ("atom", s)
    for sep in (" or ", "\\cup"):
        if len(parts := split_top(s, sep)) > 1:
            return _set_of(parts, depth) if len(parts) <= MAX_ELEMENTS else ("atom", s)
    if m := _SET_BUILDER.fullmatch(s):  # "\\{x \\mid x > 2\\}" is the solution set of "x > 2"
        return parse_structure(m.group(1), depth + 1)
    if s.startswith("\\{") and s.endswith("\\}") and encloses("(" + s[2:-2] + ")"):
        return _set_of(_list_parts(s[2:-2]), depth)
    if encloses(s) and s[0] != "{":
        parts = split_top(s[1:-1], ",")
        if 1 < len(parts) <= MAX_ELEMENTS:
            return ("seq", s[0] + s[-1], [parse_structure(p, depth + 1) for p in parts])
    parts = _list_parts(s)
    if len(parts) > 1:
        if len(parts) > MAX_ELEMENTS:
            return ("atom", s)
        assigned = [_ASSIGNMENT.match(p) for p in parts]
        if all(assigned) and len({m.group(1) for m in assigned}) == len(parts):
            return ("seq", "()", [parse_structure(p[m.end() :], depth + 1) for p, m in zip(parts, assigned)])
        node = _set_of(parts, depth)
        return (*node, "list") if node[0] == "set" else node
    if "\\pm" in s or "\\mp" in s:
        expanded = expand_pm(s)
        return ("set", [("atom", e) for e in expanded]) if expanded else ("atom", s)
    return inequality_intervals(s) or ("atom", s)


def _list_parts(s: str) -> list[str]:
    semi = split_top(s, ";")
    return semi if len(semi) > 1 else split_top(s, ",")


def _set_of(parts: list[str], depth: int):
    out = []
    for part in parts:
        part = part.strip()
        if "=" in part or "\\in" in part:
            part = normalize(part)  # "x=2" -> "2"; "x\in[1,2]" -> "[1,2]"
        node = parse_structure(part, depth + 1)
        out.extend(node[1] if node[0] == "set" and ("\\pm" in part or "\\mp" in part) else [node])
        if len(out) > MAX_ELEMENTS:  # \pm expansions count too
            return ("atom", ",".join(parts))
    return ("set", out)


# a name's argument in parentheses or, as expectations and variances write it, square brackets ("E[X]")
_ARGUMENT = r"(?:\([^()=]{1,20}\)|\[[^\[\]=]{1,20}\])"
# a letter, or a blackboard-bold one (``\mathbb{E}[X]``)
_LETTER = r"(?:[a-zA-Z]|\\mathbb\{[A-Z]\})"
_NAME = re.compile(r"%s(?:_\{?\w+\}?)?(?:\^\{?-1\}?)?%s?" % (_LETTER, _ARGUMENT))
# a sum of products of names ("a + b + c", "xy", "f(6) - f(4)"); each name reads one way (a subscript is one
# character or braced), so a failed match does not backtrack through ways of splitting a run of letters
_ONE_NAME = r"%s(?:_(?:\{\w{1,3}\}|\w))?%s?" % (_LETTER, _ARGUMENT)
_NAMES = r"%s(?: ?(?:\\cdot )?%s){0,5}" % (_ONE_NAME, _ONE_NAME)
_QUANTITY = re.compile(r"-? ?%s(?: ?[-+] ?%s){0,9}" % (_NAMES, _NAMES))


# a set named by capitals and set operations ("A \\cap B", "A \\cup B^c", "S"): its equation states the set
_SET_NAME = r"[A-Z](?:_\{?\w{1,3}\}?)?(?:\^\{?(?:c|\\prime)\}?|')?"
_SET_EXPRESSION = re.compile(r"%s(?: ?\\(?:cap|cup|setminus|backslash|times|triangle) ?%s){1,4}"
                             % (_SET_NAME, _SET_NAME))


# a named angle, segment or arc ("\\angle ABC", "m\\angle A", "\\overline{AB}"): its equation states its measure
_GEOMETRIC_NAME = re.compile(r"(?:m ?)?\\(?:angle|measuredangle) ?[A-Z]{1,3}"
                             r"|\\(?:overline|widehat|overarc)\{[A-Z]{1,3}\}")


def stated_value(s: str, *, by_prediction: bool) -> str | None:
    """The value an equation states, or None when it states none (it is then compared only as an equation):
    the last side of a chain (``\\frac{7}{2}=3.5``, ``f(3)=2(3)^2-1=17``), the right side of ``y = f(x)``,
    ``f(x) = ...``, ``E[X] = ...``, ``a_n = ...`` and of a named set (``A \\cap B = \\{4\\}``). With
    ``by_prediction`` (a prediction names what it computed) also the right side of a sum or product of names
    (``a + b + c = 15``, ``f(6) - f(4) = 0``, ``xy = 12``) and a right side with variables
    (``ab + 5b + 2a + 10 = (a+5)(b+2)`` ends a derivation). A left side with coefficients, powers or fractions of
    its variables equal to a constant (``2x - y + 3z + 14 = 0``, ``(x-1)^2 + (y+2)^2 = 9``) is a line, curve or
    surface and states no value."""
    sides = split_top(s.replace("\\approx", "="), "=")
    left = sides[0].strip()
    if len(sides) > 2 or not _has_variable(s) or _NAME.fullmatch(left) or _SET_EXPRESSION.fullmatch(left) \
            or _GEOMETRIC_NAME.fullmatch(left):
        return last_side(s)
    if by_prediction and (_QUANTITY.fullmatch(left) or _has_variable(sides[-1])):
        return last_side(s)
    return None


def _has_variable(s: str) -> bool:
    return bool(re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", s)))


def last_side(s: str) -> str | None:
    """The value an equation chain ends with: ``\\frac{7}{2}=3.5`` -> ``3.5``, ``\\frac{5}{36}\\approx0.139`` ->
    ``0.139`` (an approximation, so not equal to 5/36); None without a top-level ``=``/``\\approx``,
    with another relation in it, or when ``s`` is a list (``x=2 or x=3``)."""
    parts = split_top(s.replace("\\approx", "="), "=")  # "\\frac{5}{36} \\approx 0.139" ends in 0.139
    if len(parts) < 2 or _INEQ_SPLIT.search(s) or "\\ne" in s:
        return None
    if len(parts) == 2 and _SET_EXPRESSION.fullmatch(parts[0].strip()):  # "A \\cup B = \\{1, 2\\}"
        return normalize(parts[1]) or None
    unseparated = _THOUSANDS.sub(r"\1\2", s)  # "7!\\times2!=10,080" is a chain, not a list
    if any(len(split_top(unseparated, sep)) > 1 for sep in (",", ";", " or ", "\\cup")):
        return None
    return normalize(parts[-1]) or None  # "69+9=78 teachers" ends in 78
