"""Hostile answer strings the grader must survive (tests and benchmarks/grader.py use them).

Each must compare not-equal to an ordinary answer quickly and without side effects. ``{marker}`` is
replaced by a file path that must not come into existence.
"""
from __future__ import annotations

HOSTILE_ANSWERS = [
    "9**9**9**9",
    "10^{10^{10^{10}}}",
    "__import__('os').system('touch {marker}')",
    "exec(\"open('{marker}','w')\")",
    "eval('__import__(\\'os\\').system(\\'touch {marker}\\')')",
    "lambda: __import__('os').system('touch {marker}')",
    "\\input{/etc/passwd}",
    "x" * 100_000,
    "1" * 100_000,
    "(" * 10_000 + ")" * 10_000,
    "{" * 10_000,
    "\\frac{1}{",
    "}}}}{{{{",
    "\\left(\\right)\\left(",
    "2^{99999999}",
    "(10^{9999})^{9999}",
    "99999!",
    "(10^{10})!",
    "\\binom{100000000}{50000000}",
    "\\sqrt{" * 500 + "2" + "}" * 500,
    "x^{x^{x^{x}}}",
    "e^{e^{e^{e^{e}}}}",
    "\\sum_{k=1}^{10^{10}} k",
    "\\int_0^1 e^{-x^2} dx",
    "\\prod_{n=1}^{1000000} n",
    "(x+1)^{1000}",
    "x^{1000} - (x+1)^{1000}",
    "2^{10000}-2^{10000}+1",
    "\u202e\u0000\ufeff",
    "\u0661\u0662\u0663",  # Arabic-Indic digits
    "\U0001F600" * 1000,
    "\x00" * 1000,
    "\\begin{pmatrix}" + "1&" * 2000 + "1\\end{pmatrix}",
    "1," * 20_000 + "1",
    "0." + "\\overline{" * 10,
    "\\tan(\\frac{\\pi}{2})",
    "\\frac{1}{0}",
    "\\infty - \\infty",
    "\\text{" * 1000,
    "1/" * 5000 + "1",
]
