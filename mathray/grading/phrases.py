"""Finding the answer inside a phrase of prose: "The largest $n$ is 34", "So she earns \\$18",
"there are 6 ways", "$x = 5$ apples", "five".

A phrase is split into prose and math segments (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``); a ``$`` whose
"math" would be prose (``costs $5 and gets $3``) or that has no partner on its line is a currency sign.
Math segments are then masked (``\\x00k\\x00``) so the rules below see them as single items:
- the phrase's leading item (math segment, number, or number word), with a following ``or``/``and``/comma
  list of items kept whole, so a hedged "3 or 4" stays a list (and is then not equal to 3);
- else the leading item after the last linking word (is, are, =, equals, ...);
- else the only item in the phrase; several items give nothing (no guessing).

Callers collapse runs of spaces first; every scan here is one left-to-right pass or a regex without
ambiguous adjacent quantifiers, so a 200k-character phrase costs linear time.
"""
from __future__ import annotations

import re

MAX_BARE_CHARS = 400  # a one-line prediction this short with (almost) no prose is its own answer

_CURRENCY = "€£¥₹"
_NUMBER = (r"(?:\\\$|[$" + _CURRENCY + r"])? ?-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:/\d+)?"
           r"(?: ?(?:\\?%|[" + _CURRENCY + r"]))?")
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
NUMBER_WORDS.update({w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty "
                                                           "ninety".split())})
_NUMBER_WORD = r"(?:%s)(?:-(?:%s))?" % ("|".join(NUMBER_WORDS), "|".join(list(NUMBER_WORDS)[1:10]))
# a standalone number: not part of a product, power, sum or word ("3x+1", "2^5", "9 * 2" give none)
_LONE_NUMBER = (r"(?<![\w.\\^_{/*+×·-])" + _NUMBER
                + r"(?![A-Za-z\d^{(_]| ?(?:[-+*/=^×·]|\\cdot|\\times|\\div) ?[\d(\\])")
_ITEM = r"\x00\d+\x00|" + _LONE_NUMBER + r"|\b" + _NUMBER_WORD + r"\b"
_JOIN = r" ?(?:, ?(?:and |or )?|and |or |\\text\{ ?(?:and|or) ?\} ?)"
_FILLER = r"(?:only|exactly|just|then|therefore|thus|hence|so|now|also|simply|equal to|given by) ?,? ?"
_LEADING = re.compile(r" ?[:\-]? ?(?:%s)*((?:%s)(?:%s(?:%s))*)" % (_FILLER, _ITEM, _JOIN, _ITEM), re.IGNORECASE)
_MATH_OR_NUMBER = re.compile(r"\x00\d+\x00|" + _LONE_NUMBER)  # no number words here ("this one out")
_LINK = re.compile(r"(?<![A-Za-z])(?:is|are|was|were|be|equals|totals|=|\\approx)(?![A-Za-z])", re.IGNORECASE)
_CLAUSE_END = re.compile(r",? (?:which|since|because|so that|where)\b|, (?:so|and so|therefore|thus|hence|i\.e\.)\b"
                         r"|(?<= )(?:since|because) ", re.IGNORECASE)
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_COMMAND = re.compile(r"\\[A-Za-z]+(?:\{[^{}]*\})?")
_CONNECTORS = {"or", "and"}
_VERBS = {"is", "are", "was", "were", "be", "equals", "get", "gets", "makes", "has", "have"}


def _unescaped(text: str, i: int) -> bool:
    k = i
    while k > 0 and text[k - 1] == "\\":
        k -= 1
    return (i - k) % 2 == 0


def _prose_like(math: str) -> bool:
    """Whether the text between two ``$`` reads as prose (two plain words in a row)."""
    words = re.findall(r"[A-Za-z]+|\S", _COMMAND.sub(" ", math))
    return any(len(a) > 1 and a.isalpha() and len(b) > 1 and b.isalpha() for a, b in zip(words, words[1:]))


def segments(text: str) -> list[tuple[str, str]]:
    """``text`` as ("prose", s) and ("math", s) pieces in order."""
    out: list[tuple[str, str]] = []
    absent: set[str] = set()  # closers known not to occur again: keeps unpaired openers linear
    i = start = 0
    n = len(text)
    while i < n:
        c = text[i]
        closer = None
        if c == "$" and _unescaped(text, i):
            closer = "$$" if text.startswith("$$", i) else "$"
        elif c == "\\" and i + 1 < n and text[i + 1] in "([" and _unescaped(text, i):
            closer = "\\)" if text[i + 1] == "(" else "\\]"
        if closer is None or closer in absent:
            i += 1
            continue
        width = 1 if closer == "$" else 2
        j = text.find(closer, i + width)
        while j > 0 and not _unescaped(text, j):
            j = text.find(closer, j + 1)
        if j < 0:
            absent.add(closer)
            i += 1
            continue
        if closer == "$" and (text.startswith("$$", j) or "\n" in text[i:j] or _prose_like(text[i + 1 : j])):
            i += 1  # a currency sign, not a math delimiter
            continue
        if i > start:
            out.append(("prose", text[start:i]))
        out.append(("math", text[i + width : j]))
        i = start = j + len(closer)
    if start < n:
        out.append(("prose", text[start:]))
    return out


def _mask(text: str) -> tuple[str, list[str]]:
    maths, parts = [], []
    for kind, s in segments(text):
        if kind == "math":
            parts.append(f"\x00{len(maths)}\x00")
            maths.append(s.strip())
        else:
            parts.append(s.replace("\x00", ""))
    return "".join(parts), maths


def _unmask(s: str, maths: list[str]) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda m: maths[int(m.group(1))], s).strip()


def prose_words(text: str) -> list[str]:
    """Plain words (two letters or more) outside math and outside ``\\text{}``-like commands."""
    masked, _ = _mask(text)
    return _WORD.findall(_COMMAND.sub(" ", masked))


def is_bare(text: str, *, allow_text: bool = True) -> bool:
    """A short one-line answer, as opposed to a sentence: it starts with math or a number and has at most
    three plain words and no verb (``-5``, ``$29.00``, ``5 apples``, ``x = 2 \\text{ or } x = 3``), or, with
    ``allow_text``, it is up to three words without digits or math (``Evelyn``, ``No solution``)."""
    t = text.strip()
    if not t or len(t) > MAX_BARE_CHARS or "\n" in t:
        return False
    words = [w.lower() for w in prose_words(t)]
    words = [w for w in words if w not in _CONNECTORS]
    if len(words) > 3 or _VERBS.intersection(words):
        return False
    if not re.match(r"[A-Za-z]{2,}|[AaI] [A-Za-z]", t.lstrip("*$( ")):
        return True
    return allow_text and not re.search(r"[\d$]|\\[(\[]", t)


def _leading(masked: str, maths: list[str]) -> str | None:
    m = _LEADING.match(masked)
    if not m or not m.group(1).strip():
        return None
    return _unmask(m.group(1), maths) or None


def answer_in_phrase(text: str, *, marked: bool) -> str | None:
    """The answer stated by ``text``. ``marked``: the phrase follows an answer marker ("The answer is"), so
    its leading item and a short word answer ("Evelyn") count; unmarked, only a linked or single item."""
    text = text.strip()
    if not text:
        return None
    if is_bare(text, allow_text=marked):
        return text
    if marked and (m := _CLAUSE_END.search(text)) and m.start() > 0:
        return answer_in_phrase(text[: m.start()], marked=True)  # "3x+1, which is linear"
    masked, maths = _mask(text)
    if marked and (lead := _leading(masked, maths)) is not None:
        return lead
    last = None
    for last in _LINK.finditer(masked):
        pass
    if last is not None and (lead := _leading(masked[last.end() :], maths)) is not None:
        return lead
    items = _MATH_OR_NUMBER.findall(masked)
    if len(items) == 1:
        return _unmask(items[0], maths)
    if marked and not items and len(text) <= 60 and 1 <= len(prose_words(text)) <= 3:
        return text
    return None
