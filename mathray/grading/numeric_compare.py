"""In-process value comparison of closed-form expressions at 70 significant digits.

mpmath keeps its working precision in a process-wide context (``mpmath.mp``); this module uses a private
``MPContext`` so that neither threads grading at once nor other code in the process change each other's
precision.

``numerically_equal(a, b)`` reads both normalized atoms with a small recursive-descent reader over a
fixed vocabulary: numbers, ``+ - * / ^ !``, ``\\cdot \\times \\div``, implicit products, brackets, ``|x|``,
``\\frac \\sqrt \\sqrt[n] \\binom``, ``\\pi``, ``e``, ``i``, ``\\sin``-family, ``\\ln``, ``\\log_b``, ``\\exp``,
and variables (single letters, Greek letters, ``x_1``). Anything else returns None (undecided; the sympy
sandbox then decides). Without variables the two values are compared once; with variables at three fixed
points with mixed signs. Equal: they agree to 45 digits everywhere; not equal: they differ beyond 30
digits somewhere; else None. Decimals are exact here too, so ``0.333`` and ``\\frac13``, ``3.14`` and ``\\pi``
differ, while ``2^{-2}`` and ``0.25``, ``e^{i\\pi}`` and ``-1``, ``\\sqrt{-1}`` and ``i`` agree.

``relations_equal`` compares two equations or inequalities the same way (see there).

Bounded by construction: 300 characters, nesting 40, integer exponents up to 1000 in absolute value,
factorials and binomials of at most 1000, magnitudes up to 2^4000; each step is a few mpmath operations.
An odd root of a negative number is the real root (``\\sqrt[3]{-8} = -2``); a fractional power of a
negative number is undecided at that point (principal values differ between conventions).
"""
from __future__ import annotations

import functools
import random
import re

import mpmath

MAX_CHARS = 300
MAX_NESTING = 40
MAX_POWER = 1000
MAX_FACTORIAL = 1000
MAX_MAGNITUDE_BITS = 4000
EQUAL_DIGITS, DIFFERENT_DIGITS = 45, 30
_MP = mpmath.MPContext()
_MP.dps = 70
_TOKEN = re.compile(r"\d+\.?\d*|\.\d+|\\[a-zA-Z]+|[a-zA-Z]|[-+*/^(){}\[\]!_|]| ")
_FUNCTIONS = {"\\sin": _MP.sin, "\\cos": _MP.cos, "\\tan": _MP.tan, "\\cot": _MP.cot, "\\sec": _MP.sec,
              "\\csc": _MP.csc, "\\arcsin": _MP.asin, "\\arccos": _MP.acos, "\\arctan": _MP.atan,
              "\\sinh": _MP.sinh, "\\cosh": _MP.cosh, "\\tanh": _MP.tanh, "\\ln": _MP.ln, "\\exp": _MP.exp}
_GREEK = {"\\alpha", "\\beta", "\\gamma", "\\theta", "\\phi", "\\varphi", "\\lambda", "\\mu", "\\omega", "\\sigma",
          "\\tau", "\\rho", "\\psi", "\\delta", "\\epsilon", "\\varepsilon", "\\eta", "\\kappa", "\\nu", "\\xi",
          "\\chi", "\\zeta"}
_PRODUCT = {"*", "\\cdot", "\\times"}
_STOP = {"+", "-", ")", "}", "]", "^", "|", "!", "_", "/", "\\div"} | _PRODUCT


class _Unknown(Exception):
    pass


def _tokens(s: str) -> list[str] | None:
    if len(s) > MAX_CHARS:
        return None
    out, pos = [], 0
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            return None  # a character outside the vocabulary
        pos = m.end()
        if m.group(0) != " ":
            out.append(m.group(0))
    return out if pos == len(s) and out else None


def _check(v):
    if _MP.isnan(v) or _MP.isinf(v):
        raise _Unknown
    if v != 0 and _MP.mag(v) > MAX_MAGNITUDE_BITS:
        raise _Unknown
    return v


class _Reader:
    """Parses once into a closure tree; ``variables`` are the free names met."""

    def __init__(self, tokens: list[str]):
        self.t, self.i, self.depth, self.variables = tokens, 0, 0, set()

    def peek(self, k: int = 0) -> str | None:
        return self.t[self.i + k] if self.i + k < len(self.t) else None

    def take(self, tok: str | None = None) -> str:
        cur = self.peek()
        if cur is None or (tok is not None and cur != tok):
            raise _Unknown
        self.i += 1
        return cur

    def expr(self):
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _Unknown
        node = self.term()
        while self.peek() in ("+", "-"):
            op, rhs = self.take(), self.term()
            node = (lambda a, b: lambda p: _check(a(p) + b(p)))(node, rhs) if op == "+" else \
                (lambda a, b: lambda p: _check(a(p) - b(p)))(node, rhs)
        self.depth -= 1
        return node

    def term(self):
        node = self.signed()
        while True:
            tok = self.peek()
            if tok in _PRODUCT:
                self.take()
                node = (lambda a, b: lambda p: _check(a(p) * b(p)))(node, self.signed())
            elif tok in ("/", "\\div"):
                self.take()
                node = (lambda a, b: lambda p: _check(_divide(a(p), b(p))))(node, self.signed())
            elif tok is not None and tok not in _STOP:
                node = (lambda a, b: lambda p: _check(a(p) * b(p)))(node, self.power())  # 2x, 3\sqrt{2}
            else:
                return node

    def signed(self):
        if self.peek() == "-":
            self.take()
            inner = self.signed()
            return lambda p: -inner(p)
        if self.peek() == "+":
            self.take()
        return self.power()

    def power(self):
        base = self.postfix()
        if self.peek() != "^":
            return base
        self.take()
        exp = self.group() if self.peek() in ("{", "(") else self.single()
        return lambda p: _power(base(p), exp(p))

    def postfix(self):
        node = self.atom()
        while self.peek() == "!":
            self.take()
            node = (lambda a: lambda p: _factorial(a(p)))(node)
        return node

    def single(self):
        tok = self.peek()
        if tok is not None and (tok[0].isdigit() or tok[0] == "."):
            return self.atom()
        if tok is not None and (len(tok) == 1 and tok.isalpha() or tok in _GREEK or tok == "\\pi"):
            return self.atom()
        raise _Unknown

    def group(self):
        opener = self.take()
        closer = {"{": "}", "(": ")", "[": "]", "|": "|"}.get(opener)
        if closer is None:
            raise _Unknown
        node = self.expr()
        self.take(closer)
        return node

    def atom(self):
        tok = self.peek()
        if tok is None:
            raise _Unknown
        if tok[0].isdigit() or tok[0] == ".":
            value = _MP.mpf(self.take())  # decimal strings are read exactly to 70 digits
            return lambda p: value
        if tok in ("{", "(", "["):
            return self.group()
        if tok == "|":
            inner = self.group()
            return lambda p: _MP.fabs(inner(p)) if _MP.im(inner(p)) == 0 else _MP.sqrt(
                _MP.re(inner(p)) ** 2 + _MP.im(inner(p)) ** 2)
        self.take()
        if tok == "\\pi":
            return lambda p: +_MP.pi
        if tok == "e":
            return lambda p: _MP.e + 0
        if tok == "i":
            return lambda p: _MP.mpc(0, 1)
        if len(tok) == 1 and tok.isalpha() or tok in _GREEK:
            return self._variable(tok)
        if tok == "\\frac":
            num = self.group()
            den = self.group()
            return lambda p: _divide(num(p), den(p))
        if tok == "\\binom":
            n, k = self.group(), self.group()
            return lambda p: _binomial(n(p), k(p))
        if tok == "\\sqrt":
            index = None
            if self.peek() == "[":
                index = self.group()
            x = self.group()
            return lambda p: _root(x(p), index(p) if index else 2)
        if tok == "\\log" and self.peek() == "_":
            self.take()
            base = self.group() if self.peek() == "{" else self.single()
            arg = self._argument()
            return lambda p: _divide(_MP.ln(arg(p)), _MP.ln(base(p)))
        if tok in _FUNCTIONS:
            fn, k = _FUNCTIONS[tok], 1
            if self.peek() == "^":  # \sin^2 x is (\sin x)^2
                self.take()
                k_node = self.group() if self.peek() == "{" else self.single()
                k = k_node({})
                if k != int(k) or not 1 <= k <= 10:
                    raise _Unknown
            arg = self._argument()
            return lambda p: _check(fn(arg(p)) ** int(k))
        raise _Unknown

    def _variable(self, tok: str):
        """A variable, with a subscript (``x_1``, ``x_{1}``) when one follows."""
        name = tok
        if self.peek() == "_":
            self.take()
            sub = self.take()
            if sub == "{":
                sub = self.take()
                self.take("}")
            if not sub.isalnum():
                raise _Unknown
            name = f"{tok}_{sub}"
        self.variables.add(name)
        return lambda p: p[name]

    def _argument(self):
        if self.peek() in ("(", "{", "["):
            return self.group()
        node = self.power()  # "\sin 2x": the argument runs through the implicit product
        while self.peek() is not None and self.peek() not in _STOP and self.peek() not in _FUNCTIONS:
            node = (lambda a, b: lambda p: _check(a(p) * b(p)))(node, self.power())
        return node


def _divide(a, b):
    if b == 0:
        raise _Unknown
    return a / b


def _is_integer(v) -> bool:
    return _MP.im(v) == 0 and _MP.re(v) == int(_MP.re(v))


def _power(base, exp):
    if _MP.im(exp) != 0:
        return _check(_MP.power(base, exp))  # e^{i\pi}
    if _is_integer(exp):
        if abs(exp) > MAX_POWER:
            raise _Unknown
        if base == 0 and exp < 0:
            raise _Unknown
        return _check(_MP.power(base, int(exp)))
    if _MP.im(base) == 0 and base < 0:
        raise _Unknown  # fractional power of a negative number: conventions differ
    if abs(exp) > MAX_POWER:
        raise _Unknown
    return _check(_MP.power(base, exp))


def _root(x, index):
    if not _is_integer(index) or not 2 <= index <= 100:
        raise _Unknown
    n = int(_MP.re(index))
    if _MP.im(x) == 0 and x < 0:
        if n % 2:
            return -_MP.root(-x, n)
        if n == 2:
            return _MP.mpc(0, _MP.sqrt(-x))  # \sqrt{-1} = i
        raise _Unknown
    return _check(_MP.root(x, n) if n != 2 else _MP.sqrt(x))


def _factorial(x):
    if not _is_integer(x) or not 0 <= x <= MAX_FACTORIAL:
        raise _Unknown
    return _MP.factorial(int(_MP.re(x)))


def _binomial(n, k):
    if not (_is_integer(n) and _is_integer(k)) or not 0 <= n <= MAX_FACTORIAL:
        raise _Unknown
    if not 0 <= k <= n:
        return _MP.mpf(0)
    return _MP.binomial(int(_MP.re(n)), int(_MP.re(k)))


@functools.lru_cache(maxsize=8192)
def compile_expression(s: str):
    """(evaluator, variables) for a normalized atom, or None outside the vocabulary."""
    tokens = _tokens(s)
    if tokens is None:
        return None
    reader = _Reader(tokens)
    try:
        node = reader.expr()
    except (_Unknown, RecursionError, ValueError, ZeroDivisionError):
        return None
    if reader.i != len(tokens):
        return None
    return node, frozenset(reader.variables)


def _points(names: list[str]) -> list[dict]:
    rng = random.Random(20_241)
    signs = (1, -1, 1)
    return [{n: _MP.mpf(signs[(k + j) % 3] * rng.randint(1_001, 29_999)) / rng.randint(997, 9_973)
             for j, n in enumerate(names)} for k in range(3)]


def evaluate(s: str, point: dict | None = None):
    """The value of a constant expression (or at ``point``), or None."""
    compiled = compile_expression(s)
    if compiled is None or compiled[1] - set(point or {}):
        return None
    try:
        return compiled[0](point or {})
    except (_Unknown, ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None


def _values(ca, cb):
    """Pairs of values of two compiled expressions at the shared points; None marks a failed point."""
    names = sorted(ca[1] | cb[1])
    if len(names) > 4:
        return None
    out = []
    for point in _points(names) if names else [{}]:
        try:
            out.append((ca[0](point), cb[0](point)))
        except (_Unknown, ValueError, ZeroDivisionError, OverflowError, TypeError):
            out.append(None)
    return out


def _close(x, y) -> bool | None:
    """True: equal to 45 digits; False: different beyond 30 digits; None: in between, or values so large
    (over 10^20) that 70 digits cannot see a difference of 1 (``(x+1)^{1000}`` vs ``(x+1)^{1000}+1``)."""
    scale = max(1, abs(x), abs(y))
    diff = abs(x - y)
    if diff > scale * _MP.mpf(10) ** -DIFFERENT_DIGITS:
        return False
    return True if diff <= scale * _MP.mpf(10) ** -EQUAL_DIGITS and scale <= _MP.mpf(10) ** 20 else None


def _verdict(checks: list) -> bool | None:
    if False in checks:
        return False
    return True if checks and all(c is True for c in checks) else None


def numerically_equal(a: str, b: str) -> bool | None:
    """True / False when decided at 70 digits (see the module docstring), None when undecided."""
    ca, cb = compile_expression(a), compile_expression(b)
    values = _values(ca, cb) if ca and cb else None
    if values is None:
        return None
    return _verdict([None if v is None else _close(*v) for v in values])


_RELATION = re.compile(r"\\le(?![a-zA-Z])|\\ge(?![a-zA-Z])|\\ne(?![a-zA-Z])|<|>|=")
_KINDS = {"=": "=", "\\ne": "!=", ">": ">", "\\ge": ">=", "<": ">", "\\le": ">="}


def _relation(s: str):
    """(g, kind) for ``lhs REL rhs`` with the relation equivalent to ``g kind 0``; None if not one relation."""
    found = list(_RELATION.finditer(s))
    if len(found) != 1:
        return None
    m = found[0]
    lhs, rhs = s[: m.start()].strip(), s[m.end() :].strip()
    if m.group(0) in ("<", "\\le"):
        lhs, rhs = rhs, lhs
    compiled = compile_expression(f"({lhs})-({rhs})") if lhs and rhs else None
    return (compiled, _KINDS[m.group(0)]) if compiled else None


def relations_equal(a: str, b: str) -> bool | None:
    """Two one-relation answers (equations, inequalities) are equal when ``g_a = c * g_b`` for a constant
    ``c != 0`` (``c > 0`` for inequalities, same strictness): ``y = 2x + 3`` = ``2x - y + 3 = 0``,
    ``5 \\ge x`` = ``x \\le 5``. Checked at the three points; None when undecided."""
    ra, rb = _relation(a), _relation(b)
    if ra is None or rb is None:
        return None
    if ra[1] != rb[1] or (not ra[0][1]) != (not rb[0][1]):
        return False  # a relation between constants is no equation in unknowns
    if not ra[0][1]:
        return None
    values = _values(ra[0], rb[0])
    if values is None or None in values:
        return None
    ratios = []
    for ga, gb in values:
        if abs(gb) == 0 or abs(ga) == 0:
            return None if abs(ga) == abs(gb) else False
        ratios.append(ga / gb)
    checks = [_close(ratios[0], r) for r in ratios[1:]]
    if ra[1] not in ("=", "!=") and _MP.im(ratios[0]) == 0 and _MP.re(ratios[0]) < 0:
        return False
    return _verdict(checks) if len(ratios) > 1 else None
