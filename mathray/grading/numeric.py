"""A float estimate of simple closed-form numbers (``3\\sqrt{13}``, ``\\frac{\\pi}{2}``, ``2^{10}-1``), used
only to REJECT: when two estimates differ clearly the exact values differ, and sympy is not needed.
Close estimates prove nothing (``0.3333333333333`` vs 1/3) and go on to the exact symbolic check.

A tiny recursive-descent reader over a fixed vocabulary (digits, ``+ - * /``, ``\\cdot``, ``\\times``,
``\\frac``, ``\\sqrt``, ``\\pi``, ``^`` with small integer exponents, brackets); anything else returns None.
"""
from __future__ import annotations

import math
import re

_TOKEN = re.compile(r"\d+\.?\d*|\.\d+|\\frac|\\sqrt|\\pi|\\cdot|\\times|[-+*/^(){}\[\]]")
MAX_POWER = 100


class _Unknown(Exception):
    pass


def estimate(s: str) -> float | None:
    """Float value of ``s`` if it is a simple closed-form number, else None."""
    if len(s) > 200:
        return None
    pos, tokens = 0, []
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            return None  # a character outside the vocabulary (a variable, another command, a comma)
        tokens.append(m.group(0))
        pos = m.end()
    if pos != len(s) or not tokens:
        return None
    reader = _Reader(tokens)
    try:
        value = reader.expr()
        if reader.i != len(tokens) or not math.isfinite(value):
            return None
        return value
    except (_Unknown, OverflowError, ZeroDivisionError, ValueError, RecursionError):
        return None


class _Reader:
    def __init__(self, tokens: list[str]):
        self.t, self.i, self.depth = tokens, 0, 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, tok: str | None = None) -> str:
        cur = self.peek()
        if cur is None or (tok is not None and cur != tok):
            raise _Unknown
        self.i += 1
        return cur

    def expr(self) -> float:
        self.depth += 1
        if self.depth > 40:
            raise _Unknown
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        self.depth -= 1
        return value

    def term(self) -> float:
        value = self.signed()
        while True:
            tok = self.peek()
            if tok in ("*", "\\cdot", "\\times"):
                self.take()
                value *= self.signed()
            elif tok == "/":
                self.take()
                value /= self.signed()
            elif tok is not None and tok not in ("+", "-", ")", "}", "]", "^"):
                value *= self.power()  # implicit product: 3\sqrt{13}, 2\pi, (a)(b)
            else:
                return value

    def signed(self) -> float:
        if self.peek() == "-":
            self.take()
            return -self.signed()
        if self.peek() == "+":
            self.take()
        return self.power()

    def power(self) -> float:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exp = self.group() if self.peek() == "{" else float(self.number_token())
            if exp != int(exp) or abs(exp) > MAX_POWER:
                raise _Unknown
            return base ** int(exp)
        return base

    def number_token(self) -> str:
        tok = self.take()
        if not (tok[0].isdigit() or tok[0] == "."):
            raise _Unknown
        return tok

    def group(self) -> float:
        opener = self.take()
        closer = {"{": "}", "(": ")", "[": "]"}.get(opener)
        if closer is None:
            raise _Unknown
        value = self.expr()
        self.take(closer)
        return value

    def atom(self) -> float:
        tok = self.peek()
        if tok is None:
            raise _Unknown
        if tok[0].isdigit() or tok[0] == ".":
            return float(self.take())
        if tok in ("{", "("):
            return self.group()
        if tok == "\\pi":
            self.take()
            return math.pi
        if tok == "\\frac":
            self.take()
            num = self.group()
            return num / self.group()
        if tok == "\\sqrt":
            self.take()
            if self.peek() == "[":
                self.take()
                k = self.expr()
                self.take("]")
                x = self.group()
                if k != int(k) or k <= 0 or (x < 0 and int(k) % 2 == 0):
                    raise _Unknown
                return math.copysign(abs(x) ** (1 / k), x)
            x = self.group()
            if x < 0:
                raise _Unknown
            return math.sqrt(x)
        raise _Unknown


def clearly_different(a: str, b: str) -> bool:
    """True when both are simple numbers whose float estimates differ beyond rounding error."""
    x, y = estimate(a), estimate(b)
    if x is None or y is None:
        return False
    return not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
