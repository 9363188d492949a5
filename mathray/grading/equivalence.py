"""Answer equivalence: structure (sets, tuples, intervals, matrices), then exact numbers and text in the
calling process, then sympy in a time-bounded sandbox worker only for what is still undecided.

``compare(a, b)`` returns a ``Verdict(equal, reason)`` with reason ``equal`` | ``not-equal`` | ``timeout``
| ``parse-error`` | ``refused`` | ``no-answer``; ``is_equivalent(a, b)`` is its bool.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from mathray.grading.numeric import clearly_different
from mathray.grading.normalize import (MAX_ANSWER_CHARS, integer_digits, normalize, parse_base, parse_number,
                                       text_key)

_OPEN, _CLOSE = "([{", ")]}"
_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}$", re.S)
_RELATION = re.compile(r"\\le|\\ge|\\ne|<|>|=")


@dataclass(frozen=True)
class Verdict:
    equal: bool
    reason: str


# ---- structure -----------------------------------------------------------------------------------------------

def split_top(s: str, sep: str) -> list[str]:
    """Split at ``sep`` occurrences outside any bracket."""
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


def _encloses(s: str) -> bool:
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


def _expand_pm(s: str) -> list[str]:
    for op in ("\\pm", "\\mp"):
        k = s.find(op)
        if k >= 0:
            a, b = ("+", "-") if op == "\\pm" else ("-", "+")
            head, tail = s[:k], s[k + len(op) :]
            return _expand_pm(head + a + tail) + _expand_pm(head + b + tail)
    return [s]


def parse_structure(s: str, depth: int = 0):
    """A normalized answer as nested nodes: ('atom', s) | ('set', [..]) | ('seq', brackets, [..]) |
    ('matrix', [[..]])."""
    if depth > 6 or len(s) > MAX_ANSWER_CHARS:
        return ("atom", s)
    if m := _MATRIX.match(s):
        rows = [r for r in m.group(2).split("\\cr") if r.strip()]
        return ("matrix", [[c.strip() for c in r.split("&")] for r in rows])
    if parse_number(s) is not None:
        return ("atom", s)
    if len(parts := split_top(s, "\\cup")) > 1:
        return ("set", [parse_structure(p, depth + 1) for p in parts])
    if s.startswith("\\{") and s.endswith("\\}") and _encloses("(" + s[2:-2] + ")"):
        return ("set", _elements(s[2:-2], depth))
    if _encloses(s) and s[0] != "{":
        inner = s[1:-1]
        parts = split_top(inner, ",")
        if len(parts) > 1:
            return ("seq", s[0] + s[-1], [parse_structure(p, depth + 1) for p in parts])
    if len(split_top(s, ",")) > 1 or len(split_top(s, ";")) > 1:
        return ("set", _elements(s, depth))
    if "\\pm" in s or "\\mp" in s:
        return ("set", [("atom", e) for e in _expand_pm(s)])
    return ("atom", s)


def _elements(inner: str, depth: int) -> list:
    sep = ";" if len(split_top(inner, ";")) > 1 else ","
    out = []
    for part in split_top(inner, sep):
        node = parse_structure(_strip_assign(part), depth + 1)
        out.extend(node[1] if node[0] == "set" and ("\\pm" in part or "\\mp" in part) else [node])
    return out


def _strip_assign(s: str) -> str:
    return normalize(s) if "=" in s or "\\in" in s else s


# ---- comparison ----------------------------------------------------------------------------------------------

def _atoms_equal(a: str, b: str, symbolic) -> bool | None:
    """Tri-state: True/False when decided cheaply, else ``symbolic(a, b)`` (None when not given)."""
    if a == b:
        return True
    if not a or not b:
        return False
    if re.search(r"\bor\b", a) or re.search(r"\bor\b", b):
        return False  # a hedged answer ("3 or 4") is not an answer
    na, nb = parse_number(a), parse_number(b)
    if na is not None and nb is not None:
        return na == nb
    ia, ib = integer_digits(a), integer_digits(b)
    if ia is not None and ib is not None:
        return ia == ib  # integers too long for Fraction: exact digit comparison
    ba, bb = parse_base(a), parse_base(b)
    if ba and ba[1] == 10:
        ba, a = None, ba[0]
    if bb and bb[1] == 10:
        bb, b = None, bb[0]
    if ba or bb:
        if ba and bb:
            return ba == bb
        return False  # the base subscript is significant
    ta, tb = text_key(a), text_key(b)
    if ta is not None and tb is not None:
        return ta == tb
    if (ta is not None and (nb is not None or ib is not None)) or (tb is not None and (na is not None or ia is not None)):
        return False
    if clearly_different(a, b):
        return False  # float estimates differ: the exact values differ too, no sympy needed
    if symbolic is None:
        return None
    return symbolic(a, b)


def _has_relation(node) -> bool:
    return node[0] == "atom" and bool(_RELATION.search(node[1]))


def _nodes_equal(x, y, symbolic) -> bool | None:
    kx, ky = x[0], y[0]
    if kx == "atom" and ky == "atom":
        return _atoms_equal(x[1], y[1], symbolic)
    if kx == "set" and ky == "set":
        return _sets_equal(x[1], y[1], symbolic)
    if kx == "set" and len(x[1]) == 1:
        return _nodes_equal(x[1][0], y, symbolic)
    if ky == "set" and len(y[1]) == 1:
        return _nodes_equal(x, y[1][0], symbolic)
    if kx == "seq" and ky == "seq":
        if x[1] != y[1] or len(x[2]) != len(y[2]):
            return False
        return _all(_nodes_equal(p, q, symbolic) for p, q in zip(x[2], y[2]))
    if kx == "matrix" and ky == "matrix":
        if [len(r) for r in x[1]] != [len(r) for r in y[1]]:
            return False
        return _all(_atoms_equal(p, q, symbolic) for rp, rq in zip(x[1], y[1]) for p, q in zip(rp, rq))
    if {kx, ky} == {"matrix", "seq"}:  # a column/row vector written as a tuple
        mat, seq = (x, y) if kx == "matrix" else (y, x)
        flat = [c for r in mat[1] for c in r]
        if seq[1] != "()" or not (len(mat[1]) == 1 or all(len(r) == 1 for r in mat[1])) or len(flat) != len(seq[2]):
            return False
        return _all(_nodes_equal(("atom", c), q, symbolic) for c, q in zip(flat, seq[2]))
    if _has_relation(x) or _has_relation(y):  # "x > 3" vs "(3, \infty)"
        if symbolic is None:
            return None
        return symbolic(_unparse(x), _unparse(y))
    return False


def _unparse(node) -> str:
    if node[0] == "atom":
        return node[1]
    if node[0] == "seq":
        return node[1][0] + ",".join(_unparse(n) for n in node[2]) + node[1][1]
    if node[0] == "set":
        return "\\cup".join(_unparse(n) for n in node[1])
    return ""


def _all(verdicts) -> bool | None:
    undecided = False
    for v in verdicts:
        if v is False:
            return False
        if v is None:
            undecided = True
    return None if undecided else True


def _sets_equal(xs: list, ys: list, symbolic) -> bool | None:
    """Unordered: every element of one has an equal element in the other."""
    def covered(src, dst):
        verdicts = []
        for p in src:
            vs = [_nodes_equal(p, q, symbolic) for q in dst]
            verdicts.append(True if True in vs else (None if None in vs else False))
        return _all(verdicts)

    first = covered(xs, ys)
    if first is False:
        return False
    second = covered(ys, xs)
    if second is False:
        return False
    return None if (first is None or second is None) else True


# ---- entry points --------------------------------------------------------------------------------------------

def compare_normalized(a: str, b: str, symbolic=None) -> bool | None:
    """Compare two normalized answers; ``symbolic(a, b)`` decides atoms the cheap rules cannot."""
    if a == b:
        return True
    return _nodes_equal(parse_structure(a), parse_structure(b), symbolic)


def canonical_key(answer: str) -> str:
    """A grouping key: equal keys imply equal answers (numbers by exact value, else the normalized string)."""
    s = normalize(answer)
    n = parse_number(s)
    if n is not None:
        return f"#{n.numerator}/{n.denominator}" if isinstance(n, Fraction) else f"#{n}"
    t = text_key(s)
    return f"t:{t}" if t is not None else s


# sandbox outcomes by atom pair: (equal, problem); a pair that timed out once is not retried
_SYMBOLIC_CACHE: dict[tuple[str, str], tuple[bool, str | None]] = {}
_SYMBOLIC_CACHE_MAX = 65_536


class _Sandboxed:
    """The symbolic callback: each atom pair goes to a sandbox worker; remembers the worst outcome."""

    def __init__(self, timeout: float | None):
        self.timeout = timeout
        self.problem: str | None = None

    def __call__(self, a: str, b: str) -> bool:
        from mathray.grading.sandbox import get_pool
        from mathray.grading.symbolic import unsafe_reason

        if unsafe_reason(a) or unsafe_reason(b):
            self.problem = self.problem or "refused"
            return False
        key = (a, b) if a <= b else (b, a)
        if key not in _SYMBOLIC_CACHE:
            status, value = get_pool().call("symbolic_equal", a, b, timeout=self.timeout)
            if status == "ok":
                outcome = (bool(value), None)
            elif status == "timeout":
                outcome = (False, "timeout")
            else:
                outcome = (False, "refused" if str(value).startswith("Refused") else "parse-error")
            if len(_SYMBOLIC_CACHE) >= _SYMBOLIC_CACHE_MAX:
                _SYMBOLIC_CACHE.clear()
            _SYMBOLIC_CACHE[key] = outcome
        equal, problem = _SYMBOLIC_CACHE[key]
        if problem == "timeout" or (problem and self.problem is None):
            self.problem = problem
        return equal


def compare(a: str | None, b: str | None, *, timeout: float | None = None) -> Verdict:
    """Exact-value equivalence of two answer strings (see ``mathray.grading`` for the semantics)."""
    if a is None or b is None or not str(a).strip() or not str(b).strip():
        return Verdict(False, "no-answer")
    na, nb = normalize(str(a)), normalize(str(b))
    cheap = compare_normalized(na, nb)
    if cheap is not None:
        return Verdict(cheap, "equal" if cheap else "not-equal")
    if len(na) > MAX_ANSWER_CHARS or len(nb) > MAX_ANSWER_CHARS:
        return Verdict(False, "refused")
    sandboxed = _Sandboxed(timeout)
    result = bool(compare_normalized(na, nb, sandboxed))
    if result:
        return Verdict(True, "equal")
    return Verdict(False, sandboxed.problem or "not-equal")


def is_equivalent(a: str | None, b: str | None, *, timeout: float | None = None) -> bool:
    """Whether two answers have the same exact value; None never equals anything."""
    return compare(a, b, timeout=timeout).equal
