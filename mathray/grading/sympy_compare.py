"""Symbolic comparison of two normalized answer atoms with sympy; runs inside the sandbox worker processes.

Parsing goes through latex2sympy2_extended (an ANTLR grammar that builds sympy objects; no eval, no
sympify/parse_expr of the text). The grammar reads a capital ``I`` as the imaginary unit and ``i`` as a
variable; answers write ``i``, so a free ``i`` is replaced by ``sympy.I``. Before parsing, ``unsafe_reason`` refuses what could blow up time or
memory (long strings, deep nesting, exponent towers, big exponents, big factorials, ``**``). Decimals are
rewritten as exact fractions first, so ``3.14`` is 157/50 and never equals ``\\pi``.

Equality: ``a - b`` simplifies to 0, or (bounded fallback) evaluates to 0 at 60 digits at a few random
points. Equations are equal when ``lhs - rhs`` of one is a nonzero constant multiple of the other's;
inequalities when the multiple is positive and strictness matches (``x > 3`` = ``3 < x``).
"""
from __future__ import annotations

import functools
import random
import re

MAX_SYMBOLIC_CHARS = 400
MAX_DEPTH = 24
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 1_000
_RELATION = re.compile(r"\\le|\\ge|\\ne|<|>|=")


class Refused(Exception):
    """The answer is not evaluated: it could exhaust time or memory."""


def unsafe_reason(s: str) -> str | None:
    """Why ``s`` must not be handed to sympy, or None when it may be."""
    if len(s) > MAX_SYMBOLIC_CHARS:
        return "too-long"
    if "**" in s or "__" in s or "import" in s or "lambda" in s:
        return "python-syntax"
    if re.search(r"\\(?:int|iint|oint|sum|prod|lim|limsup|liminf)(?![a-zA-Z])", s):
        return "calculus-operator"  # an unevaluated sum/integral/limit is not a final answer
    if any(ord(c) > 127 for c in s):
        return "non-ascii"
    depth = peak = 0
    for c in s:
        if c in "({[":
            depth += 1
            peak = max(peak, depth)
        elif c in ")}]":
            depth -= 1
        if depth < 0:
            return "unbalanced"
    if depth != 0:
        return "unbalanced"
    if peak > MAX_DEPTH:
        return "too-deep"
    for m in re.finditer(r"\^", s):
        exp = _group_after(s, m.end())
        if "^" in exp and not _mild_tower(exp):
            return "exponent-tower"
        nums = [int(n) if len(n) <= 5 else MAX_EXPONENT + 1 for n in re.findall(r"\d+", exp)]
        if any(n > MAX_EXPONENT for n in nums):
            return "huge-exponent"
        base = _group_before(s, m.start()) or s[max(0, m.start() - 1) : m.start()]
        if any(n > 100 for n in nums) and ("^" in base or re.search(r"[a-zA-Z]", base)):
            return "huge-exponent"  # (10^{9999})^{9999}; (x+1)^{1000} expands to a thousand terms
    for m in re.finditer(r"(\d*)\s*!", s):
        if not m.group(1) or len(m.group(1)) > 4 or int(m.group(1)) > MAX_FACTORIAL:
            return "big-factorial"
    if re.search(r"\\binom\{\d{7,}|\\binom\{[^}]*\}\{\d{7,}", s):
        return "big-binomial"
    return None


def _group_after(s: str, i: int) -> str:
    """The exponent following ``^`` at index i: a braced group or one token."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i < len(s) and s[i] == "{":
        depth = 0
        for j in range(i, len(s)):
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            if depth == 0:
                return s[i + 1 : j]
        return s[i:]
    m = re.match(r"\d+|\\[a-zA-Z]+|.", s[i:])
    return m.group(0) if m else ""


def _mild_tower(exp: str) -> bool:
    """``e^{-x^2}`` is an ordinary answer; ``10^{10^{10}}`` and taller towers are not evaluated."""
    return exp.count("^") == 1 and bool(re.search(r"[a-zA-Z]", exp)) and all(
        int(n) <= 10 for n in re.findall(r"\d+", exp) if len(n) < 3) and not re.search(r"\d{3}", exp)


def _group_before(s: str, i: int) -> str:
    """The bracketed group ending just before index i (the base of a power), or ''."""
    if i == 0 or s[i - 1] not in ")}]":
        return ""
    depth = 0
    for j in range(i - 1, -1, -1):
        depth += {")": 1, "}": 1, "]": 1, "(": -1, "{": -1, "[": -1}.get(s[j], 0)
        if depth == 0:
            return s[j:i]
    return s[:i]


def _exact_decimals(s: str) -> str:
    """``0.25`` -> ``\\frac{25}{100}``; ``0.\\overline{3}`` -> exact fraction: sympy then never sees floats."""
    def repeat(m: re.Match) -> str:
        whole, fixed, rep = m.group(1) or "0", m.group(2), m.group(3)
        den = (10 ** len(rep) - 1) * 10 ** len(fixed)
        num = int(whole) * den + (int(fixed) if fixed else 0) * (10 ** len(rep) - 1) + int(rep)
        return "\\frac{%d}{%d}" % (num, den)

    s = re.sub(r"(\d*)\.(\d*)\\overline\{(\d+)\}", repeat, s)
    return re.sub(r"(\d*)\.(\d+)", lambda m: "{\\frac{%s}{1%s}}" % ((m.group(1) or "") + m.group(2),
                                                                     "0" * len(m.group(2))), s)


@functools.lru_cache(maxsize=4096)
def to_sympy(s: str):
    """Parse a normalized atom into a sympy object (raises Refused or ValueError)."""
    reason = unsafe_reason(s)
    if reason:
        raise Refused(reason)
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig, latex2sympy
    from latex2sympy2_extended.math_normalization import NormalizationConfig

    import sympy

    text = _exact_decimals(s)
    try:
        expr = latex2sympy(text, normalization_config=NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=False, boxed="none", equations=False),
            conversion_config=ConversionConfig(lowercase_symbols=False))
    except Exception as e:  # the grammar's errors are plain Exceptions
        raise ValueError(f"parse-error: {str(e)[:80]}") from None
    imaginary = [x for x in getattr(expr, "free_symbols", ()) if x.name == "i"]
    return expr.subs(imaginary[0], sympy.I) if imaginary else expr  # the grammar reads only "I" as sqrt(-1)


def _numeric_zero(expr, point) -> bool | None:
    """Whether ``expr`` at ``point`` is 0 to 60 digits; None when it does not evaluate to a finite number."""
    import sympy

    try:
        value = sympy.N(expr.subs(point) if point else expr, 60)
    except Exception:
        return None
    if not value.is_number or value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    return abs(complex(value)) < 1e-40


def _is_zero(expr) -> bool | None:
    """True/False when decided, None when unknown. A nonzero value at a random point decides False at
    once; otherwise simplify, and, as the bounded fallback, zero at 60 digits at three random points."""
    import sympy

    if expr == 0:
        return True
    symbols = sorted(expr.free_symbols, key=str)
    rng = random.Random(0)
    points = [{x: sympy.Rational(rng.randint(11, 199), rng.randint(7, 97)) for x in symbols}
              for _ in range(3 if symbols else 1)]
    first = _numeric_zero(expr, points[0])
    if first is False:
        return False
    try:
        if sympy.simplify(expr) == 0:
            return True
    except Exception:
        pass
    verdicts = [first] + [_numeric_zero(expr, p) for p in points[1:]]
    if None in verdicts:
        return None
    return all(verdicts)


def _relation_parts(rel):
    """(g, kind) with the relation equivalent to ``g kind 0``, kind in {'=', '>', '>=', '!='}."""
    import sympy

    if isinstance(rel, sympy.Equality):
        return rel.lhs - rel.rhs, "="
    if isinstance(rel, sympy.Unequality):
        return rel.lhs - rel.rhs, "!="
    if isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        return rel.lhs - rel.rhs, ">" if isinstance(rel, sympy.StrictGreaterThan) else ">="
    if isinstance(rel, (sympy.StrictLessThan, sympy.LessThan)):
        return rel.rhs - rel.lhs, ">" if isinstance(rel, sympy.StrictLessThan) else ">="
    return None


def _relations_equal(ra, rb) -> bool | None:
    import sympy

    pa, pb = _relation_parts(ra), _relation_parts(rb)
    if pa is None or pb is None or pa[1] != pb[1]:
        return None if (pa is None or pb is None) else False
    ga, gb = pa[0], pb[0]
    if _is_zero(ga - gb):
        return True
    if gb == 0:
        return False
    ratio = sympy.simplify(ga / gb)
    if ratio.free_symbols or ratio == 0 or not ratio.is_number:
        return False
    if pa[1] in ("=", "!="):
        return True
    return bool(ratio.is_positive)


def symbolic_equal(a: str, b: str) -> bool:
    """Whether two normalized atoms have the same value (runs in a sandbox worker; may be slow)."""
    import sympy
    from sympy.core.relational import Relational

    ea, eb = to_sympy(a), to_sympy(b)
    ra, rb = isinstance(ea, Relational), isinstance(eb, Relational)
    if ra and rb:
        return bool(_relations_equal(ea, eb))
    if ra != rb:
        rel, other = (ea, eb) if ra else (eb, ea)
        if isinstance(rel, sympy.Equality) and isinstance(rel.lhs, sympy.Symbol) and not isinstance(
                other, (sympy.Set, Relational)):
            return bool(_is_zero(rel.rhs - other))  # "y = 2x + 3" vs "2x + 3"
        if isinstance(other, sympy.Set) and len(rel.free_symbols) == 1:
            try:  # "x > 3" vs "(3, \infty)"
                return bool(rel.as_set() == other)
            except Exception:
                return False
        return False
    if isinstance(ea, sympy.MatrixBase) or isinstance(eb, sympy.MatrixBase):
        if not (isinstance(ea, sympy.MatrixBase) and isinstance(eb, sympy.MatrixBase)) or ea.shape != eb.shape:
            return False
        return all(_is_zero(x - y) for x, y in zip(ea, eb))
    if isinstance(ea, sympy.Set) or isinstance(eb, sympy.Set):
        return bool(ea == eb)
    if not (isinstance(ea, sympy.Expr) and isinstance(eb, sympy.Expr)):
        return bool(ea == eb)
    return bool(_is_zero(ea - eb))


_WARM_UP = [r"\frac{1}{2}+\sqrt{3}x^2-\pi", r"(1,2]", r"\{1,2\}", r"y=2x+3", r"x\le 3", r"e^{-x^2}\cdot\sin(\theta)",
            r"\begin{pmatrix}1\\2\end{pmatrix}", r"3+4i", r"\frac{a}{b}-\sqrt[3]{5}", r"\log_2 8", r"\infty"]


def warm_up() -> None:
    """Parse typical answers once (the ANTLR parser fills its prediction caches on first use) and run each
    comparison path once (sympy imports parts of itself lazily on first simplify / evalf / as_set): the sandbox's
    template does it before it forks its workers, which inherit the warm state."""
    for text in _WARM_UP:
        try:
            to_sympy.__wrapped__(text)
        except Exception:
            pass
    for a, b in ((r"2\sqrt{2}", r"\sqrt{8}"), (r"\frac{\pi}{2}", r"\frac{1}{2}\pi"), ("x>3", r"(3,\infty)"),
                 ("y=2x+3", "2x-y+3=0"), ("(x+1)^{2}", "x^{2}+2x+1"), (r"\sin^{2}(x)+\cos^{2}(x)", "1"),
                 (r"|x|\ge3", r"(-\infty,-3]\cup[3,\infty)"), (r"x^{2}>4", r"(-\infty,-2)\cup(2,\infty)")):
        try:
            symbolic_equal(a, b)
        except Exception:
            pass
    to_sympy.cache_clear()
