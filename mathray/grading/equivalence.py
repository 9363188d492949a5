"""Answer equivalence: structure (``structure``), then exact numbers, text and in-process 70-digit values
(``numeric_compare``) in the calling process, then sympy in a sandbox worker only for what is still undecided.

``compare(a, b)`` returns a ``Verdict(equal, reason)`` with reason ``equal`` | ``not-equal`` | ``timeout`` |
``parse-error`` | ``refused`` | ``sandbox-error`` | ``no-answer``; ``is_equivalent(a, b)`` is its bool.
One ``Deadline`` covers every sandbox call a comparison makes (a set against a set included): once it has
passed, nothing more is sent and the verdict is ``timeout``.
"""
from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from fractions import Fraction

from mathray.grading.normalize import MAX_ANSWER_CHARS, normalize
from mathray.grading.number_strings import integer_digits, parse_base, parse_number, text_key
from mathray.grading.numeric_compare import numerically_equal, relations_equal
from mathray.grading.sandbox import get_pool
from mathray.grading.structure import MAX_ELEMENTS, last_side, parse_structure, stated_value
from mathray.grading.sandboxed_symbolic import SandboxedCheck

DEFAULT_BUDGET_S = 2.0  # per grade/compare call, all sandbox calls together
_MARGIN_S = 0.3  # of the default budget (15% of any budget) kept back for killing a worker and returning
_RELATION = re.compile(r"\\le|\\ge|\\ne|<|>|=")
_SYMBOLS = {"\\infty", "-\\infty", "\\emptyset"}
MAX_BRACKET_DEPTH = 4  # deeper ( / [ / \{ nesting is refused: ((1,2),(3,4)) is 2 deep
MAX_BRACE_DEPTH = 10  # deeper { nesting is refused: \frac{\sqrt{\frac{1}{\sqrt{2}}}}{2} is 4 deep


@dataclass(frozen=True)
class Verdict:
    equal: bool
    reason: str


class Deadline:
    """The end of one call's time budget (monotonic clock)."""

    def __init__(self, budget_s: float | None = None):
        budget = DEFAULT_BUDGET_S if budget_s is None else budget_s
        self.budget_s = budget
        self.at = time.monotonic() + max(0.0, budget - max(_MARGIN_S * budget / DEFAULT_BUDGET_S, budget * 0.15))

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def extend(self, seconds: float) -> None:
        """Time that is not the answers' (the sandbox's start-up) added back."""
        self.at += seconds


# ---- atoms ---------------------------------------------------------------------------------------------------

def _atoms_equal(a: str, b: str, ctx: "_Context") -> bool | None:
    """Tri-state: True/False when decided in process, else the sandbox's verdict (None without one)."""
    cheap = _cheap_atoms_equal(a, b) if len(a) + len(b) <= _CACHED_ATOM_CHARS else _decide_in_process(a, b)
    if cheap is not None or ctx.symbolic is None:
        return cheap
    reduced = _equation_against_value(a, b, by_prediction=False)
    return False if reduced is None else ctx.symbolic(*reduced)


_CACHED_ATOM_CHARS = 400


@functools.lru_cache(maxsize=16_384)
def _cheap_atoms_equal(a: str, b: str) -> bool | None:
    return _decide_in_process(a, b)


def _decide_in_process(a: str, b: str) -> bool | None:
    if a == b:
        return True
    if not a or not b:
        return False
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
        return bool(ba and bb and ba == bb)  # the base subscript is significant
    ta, tb = text_key(a), text_key(b)
    if ta is not None and tb is not None:
        return ta == tb
    if (ta is not None and (nb is not None or ib is not None)) or (tb is not None and (na is not None or ia is not None)):
        return False
    if a in _SYMBOLS or b in _SYMBOLS:
        return False  # \infty, -\infty, \emptyset equal only themselves (a == b above)
    if (last_side(a) is None) != (last_side(b) is None):  # "\frac{7}{2}=3.5" vs "\frac72": the value stated
        reduced = _equation_against_value(a, b, by_prediction=False)
        return False if reduced is None else _decide_in_process(*reduced)
    if _RELATION.search(a) or _RELATION.search(b):
        return relations_equal(a, b)  # "y \ge 2x+1" vs "2x+1 \le y"
    return numerically_equal(a, b)


# ---- nodes ---------------------------------------------------------------------------------------------------

def _all(verdicts) -> bool | None:
    undecided = False
    for v in verdicts:
        if v is False:
            return False
        if v is None:
            undecided = True
    return None if undecided else True


def _nodes_equal(x, y, ctx: "_Context") -> bool | None:
    if ctx.expired():
        return False
    kx, ky = x[0], y[0]
    if kx == "atom" and ky == "atom":
        return _atoms_equal(x[1], y[1], ctx)
    if kx == "set" and ky == "set":
        if (x[2:] or y[2:]) and _repeats(y[1]):  # the reference lists roots with multiplicity
            return _multisets_equal(x[1], y[1], ctx)
        return _sets_equal(x[1], y[1], ctx)
    # a one-element set stands for its element (``\\{2\\}`` = 2), a set of sets does not (``\\{\\{2\\}\\}`` != 2)
    if kx == "set" and len(x[1]) == 1 and x[1][0][0] != "set":
        return _nodes_equal(x[1][0], y, ctx)
    if ky == "set" and len(y[1]) == 1 and y[1][0][0] != "set":
        return _nodes_equal(x, y[1][0], ctx)
    if kx == "seq" and ky == "seq":
        if x[1] != y[1] or len(x[2]) != len(y[2]):
            return False
        return _all(_nodes_equal(p, q, ctx) for p, q in zip(x[2], y[2]))
    if kx == "matrix" and ky == "matrix":
        if [len(r) for r in x[1]] != [len(r) for r in y[1]]:
            return False
        return _all(_atoms_equal(p, q, ctx) for rp, rq in zip(x[1], y[1]) for p, q in zip(rp, rq))
    if {kx, ky} == {"matrix", "seq"}:  # a column/row vector written as a tuple
        mat, seq = (x, y) if kx == "matrix" else (y, x)
        flat = [c for r in mat[1] for c in r]
        if seq[1] != "()" or not (len(mat[1]) == 1 or all(len(r) == 1 for r in mat[1])) or len(flat) != len(seq[2]):
            return False
        return _all(_nodes_equal(("atom", c), q, ctx) for c, q in zip(flat, seq[2]))
    atom = x if kx == "atom" else y if ky == "atom" else None
    if atom is not None and _RELATION.search(atom[1]):  # "x^2 > 4" vs an interval union: sympy decides
        if ctx.symbolic is None:
            return None
        return ctx.symbolic(_unparse(x), _unparse(y))
    return False


def _unparse(node) -> str:
    if node[0] == "atom":
        return node[1]
    if node[0] == "seq":
        return node[1][0] + ",".join(_unparse(n) for n in node[2]) + node[1][1]
    if node[0] == "set":
        return "\\cup".join(_unparse(n) for n in node[1])
    return ""


def _node_key(node) -> str | None:
    """An exact grouping key for cheap set matching (numbers by value), else None."""
    if node[0] != "atom":
        return None
    n = parse_number(node[1])
    return f"#{n}" if n is not None else node[1]


def _repeats(nodes: list) -> bool:
    keys = [k for k in map(_node_key, nodes) if k is not None]
    return len(set(keys)) < len(keys)


def _multisets_equal(xs: list, ys: list, ctx: "_Context") -> bool | None:
    """Equal counts of equal elements: exact keys pair up first, the rest one to one (the first match)."""
    if len(xs) != len(ys):
        return False
    rest_y = list(ys)
    rest_x = []
    for p in xs:
        key = _node_key(p)
        same = next((i for i, q in enumerate(rest_y) if key is not None and _node_key(q) == key), None)
        if same is None:
            rest_x.append(p)
        else:
            rest_y.pop(same)
    undecided = False
    for p in rest_x:
        match = None
        for i, q in enumerate(rest_y):
            verdict = _nodes_equal(p, q, ctx)
            if verdict is True:
                match = i
                break
            undecided |= verdict is None
        if match is None:
            return None if undecided else False
        rest_y.pop(match)
    return True


def _sets_equal(xs: list, ys: list, ctx: "_Context") -> bool | None:
    """Unordered: every element of one has an equal element in the other. Elements with the same exact
    key pair up without comparison; only the rest are compared pairwise."""
    kx, ky = {_node_key(n) for n in xs} - {None}, {_node_key(n) for n in ys} - {None}
    rest_x = [n for n in xs if _node_key(n) is None or _node_key(n) not in ky]
    rest_y = [n for n in ys if _node_key(n) is None or _node_key(n) not in kx]
    if len(rest_x) * len(rest_y) > MAX_ELEMENTS * MAX_ELEMENTS:
        return False

    def covered(src, dst):
        verdicts = []
        for p in src:
            vs = []
            for q in dst:
                v = _nodes_equal(p, q, ctx)
                vs.append(v)
                if v is True:
                    break
            verdicts.append(True if True in vs else (None if None in vs else False))
            if verdicts[-1] is False:
                return False
        return _all(verdicts)

    first = covered(rest_x, ys)
    if first is False:
        return False
    second = covered(rest_y, xs)
    if second is False:
        return False
    return None if (first is None or second is None) else True


# ---- entry points --------------------------------------------------------------------------------------------

class _Context:
    """One comparison: the sandbox callback (None on the in-process pass) and the deadline, checked
    between element comparisons so that even a set against a set stays within the budget."""

    def __init__(self, symbolic=None, deadline: Deadline | None = None):
        self.symbolic, self.deadline, self.timed_out = symbolic, deadline, False

    def expired(self) -> bool:
        if self.deadline is not None and self.deadline.remaining() <= 0:
            self.timed_out = True
        return self.timed_out


def compare_normalized(a: str, b: str, symbolic=None, deadline: Deadline | None = None) -> bool | None:
    """Compare two normalized answers; ``symbolic(a, b)`` decides atoms the in-process rules cannot."""
    return _compare(a, b, _Context(symbolic, deadline))


def _compare(a: str, b: str, ctx: _Context) -> bool | None:
    """``a`` is the predicted answer, ``b`` the reference (they differ only for an equation against a value
    and for lists of roots, where only the reference's repeats make a multiset)."""
    if a == b:
        return True
    reduced = _equation_against_value(a, b, by_prediction=True)
    if reduced is None:
        return False
    return _nodes_equal(parse_structure(reduced[0]), parse_structure(reduced[1]), ctx)


def _chain_value(s: str) -> str:
    """A chain of constants (``\\frac{4-2/5}{5-4/5}=\\frac{6}{7}``) is the value it ends with."""
    side = last_side(s)
    return side if side is not None and not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", s)) else s


def _numeral_side(chain: str, reference: str) -> str:
    """A true chain of one integer written in several bases (``25_{10}=121_4``) names that integer in each of
    them: against a reference numeral, the side in the reference's base (base ten for bare digits) is the
    answer. Any other string is returned as it is."""
    ref = parse_base(reference)
    ref_base = ref[1] if ref else 10 if re.fullmatch(r"\d{1,64}", reference) else None
    sides = chain.split("=")
    if ref_base is None or len(sides) > 8:
        return chain
    values, picked, subscripts = set(), None, 0
    for side in sides:
        numeral = parse_base(side)
        digits, base = numeral if numeral else (side, 10)
        subscripts += numeral is not None
        try:
            values.add(int(digits, base))
        except ValueError:  # not a numeral in that base
            return chain
        if base == ref_base:
            picked = side
    return picked if picked is not None and subscripts and len(values) == 1 else chain


def _equation_against_value(a: str, b: str, *, by_prediction: bool) -> tuple[str, str] | None:
    """(a, b), with an equation compared against a value replaced by the value it states (``stated_value``;
    ``by_prediction`` applies to ``a``, the prediction); None when that equation states no value. Two equations,
    or two values, are returned as they are."""
    if "=" not in a and "=" not in b and "\\approx" not in a and "\\approx" not in b:
        return a, b  # no equation on either side
    a = _numeral_side(a, b) if "=" in a else a
    a, b = _chain_value(a), _chain_value(b)
    side_a, side_b = last_side(a), last_side(b)
    if (side_a is None) == (side_b is None):
        return a, b
    if side_a is not None:
        value = stated_value(a, by_prediction=by_prediction)
        return None if value is None else (value, b)
    value = stated_value(b, by_prediction=False)
    return None if value is None else (a, value)


def canonical_key(answer: str) -> str:
    """A grouping key: equal keys imply equal answers (numbers by exact value, else the normalized string);
    ``x = 2`` keeps its letter, so that it does not share a key with ``y = 2`` (see ``_other_coordinate``)."""
    s = normalize(answer)
    assigned = _CONSTANT_ASSIGNMENT.fullmatch(answer)
    letter = f"{assigned.group(1)}=" if assigned else ""
    n = parse_number(s)
    if n is not None:
        return letter + (f"#{n.numerator}/{n.denominator}" if isinstance(n, Fraction) else f"#{n}")
    t = text_key(s)
    return letter + (f"t:{t}" if t is not None else s)


def _too_nested(s: str) -> bool:
    """Grouping brackets and set braces (not a function's, as in ``f(f(f(2)))``) or braces
    (``\\sqrt{\\sqrt{\\sqrt{...}}}``) nested deeper than answers write them (``[[[[[1]]]]]``, five ``\\{``)."""
    depth = braces = 0
    for i, c in enumerate(s):
        if c in "([" and (i == 0 or not s[i - 1].isalnum()) or c == "{" and i and s[i - 1] == "\\":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                return True
        elif c in ")]" or c == "}" and i and s[i - 1] == "\\":
            depth = max(0, depth - 1)
        elif c == "{":
            braces += 1
            if braces > MAX_BRACE_DEPTH:
                return True
        elif c == "}":
            braces = max(0, braces - 1)
    return False


_CONSTANT_ASSIGNMENT = re.compile(r"[\s$]*([a-zA-Z]) ?= ?(?:[^=a-zA-Z\\]|\\(?:[dt]?frac|sqrt|pi)(?![a-zA-Z]))*")


def _other_coordinate(a: str, b: str) -> bool:
    """Whether the reference is ``v = c`` for a letter ``v`` and a constant ``c`` (a line or plane such as the
    vertical line ``x = 2``) and the prediction sets another letter to a constant (the line ``y = 2``)."""
    ma, mb = _CONSTANT_ASSIGNMENT.fullmatch(a), _CONSTANT_ASSIGNMENT.fullmatch(b)
    return bool(ma and mb and ma.group(1) != mb.group(1))


def compare(a: str | None, b: str | None, *, timeout: float | None = None, deadline: Deadline | None = None
            ) -> Verdict:
    """Exact-value equivalence of two answer strings (see ``mathray.grading`` for the semantics). ``a`` is the
    predicted answer and ``b`` the reference: they are treated alike except for an equation against a value
    (and a reference ``x = 2`` names its letter: ``y = 2`` differs).

    ``timeout``: the time budget of this call (default ``DEFAULT_BUDGET_S``); or pass a ``deadline``."""
    if a is None or b is None or not str(a).strip() or not str(b).strip():
        return Verdict(False, "no-answer")
    if _other_coordinate(str(a), str(b)):
        return Verdict(False, "not-equal")
    deadline = deadline or Deadline(timeout)

    get_pool()  # starts the workers without waiting: their start-up overlaps the in-process checks
    na, nb = normalize(str(a)), normalize(str(b))
    if len(na) > MAX_ANSWER_CHARS or len(nb) > MAX_ANSWER_CHARS or _too_nested(na) or _too_nested(nb):
        return Verdict(na == nb, "equal" if na == nb else "refused")
    cheap_pass = _Context(None, deadline)
    cheap = _compare(na, nb, cheap_pass)
    if cheap_pass.timed_out:
        return Verdict(False, "timeout")
    if cheap is not None:
        return Verdict(cheap, "equal" if cheap else "not-equal")

    check = SandboxedCheck(deadline)
    sandbox_pass = _Context(check, deadline)
    result = bool(_compare(na, nb, sandbox_pass))
    if result and not sandbox_pass.timed_out:
        return Verdict(True, "equal")
    return Verdict(False, "timeout" if sandbox_pass.timed_out else check.problem or "not-equal")


def is_equivalent(a: str | None, b: str | None, *, timeout: float | None = None) -> bool:
    """Whether two answers have the same exact value; None never equals anything."""
    return compare(a, b, timeout=timeout).equal
