"""Step splitting shared by Math-Shepherd labeling, PRM training and PRM scoring.

A solution is split into steps that keep their character span in the original text, so a label maps back
to the exact text. Formats (``split_steps(text, fmt)``):
- ``newline``: every non-empty line is a step (Lightman, Snell; the toy task);
- ``paragraph``: blank lines separate steps (Qwen2.5-Math-Instruct's solutions; its PRM's recommended split);
- ``step_prefix``: ``Step k:`` starts a step (a step may span lines);
- ``shepherd``: steps end at the ``ки`` tag (Math-Shepherd inputs);
- ``auto``: ``shepherd`` if the text has tags, else ``step_prefix`` if it has ``Step 1:``, else ``newline``.
The final-answer line is a step like any other.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SHEPHERD_TAG = "ки"
_STEP_PREFIX = re.compile(r"(?im)^\s*Step\s*\d+\s*[:.]")


@dataclass(frozen=True)
class Step:
    text: str
    start: int   # character span in the original text: original[start:end] == text
    end: int


def _spans(text: str, starts: list[int], ends: list[int]) -> list[Step]:
    out = []
    for s, e in zip(starts, ends):
        seg = text[s:e]
        lead = len(seg) - len(seg.lstrip())
        trail = len(seg.rstrip())
        if trail > lead:
            out.append(Step(seg[lead:trail], s + lead, s + trail))
    return out


def split_newline(text: str) -> list[Step]:
    starts, ends, pos = [], [], 0
    for line in text.split("\n"):
        starts.append(pos)
        ends.append(pos + len(line))
        pos += len(line) + 1
    return _spans(text, starts, ends)


def split_paragraph(text: str) -> list[Step]:
    starts, ends, pos = [], [], 0
    for m in re.finditer(r"\n[ \t]*\n", text):
        starts.append(pos)
        ends.append(m.start())
        pos = m.end()
    starts.append(pos)
    ends.append(len(text))
    return _spans(text, starts, ends)


def split_step_prefix(text: str) -> list[Step]:
    marks = [m.start() for m in _STEP_PREFIX.finditer(text)]
    if not marks:
        return split_newline(text)
    head = _spans(text, [0], [marks[0]])  # text before "Step 1:" (rare) is a step of its own
    return head + _spans(text, marks, marks[1:] + [len(text)])


def split_shepherd(text: str) -> list[Step]:
    starts, ends, pos = [], [], 0
    while (at := text.find(SHEPHERD_TAG, pos)) >= 0:
        starts.append(pos)
        ends.append(at)
        pos = at + len(SHEPHERD_TAG)
    starts.append(pos)
    ends.append(len(text))
    return _spans(text, starts, ends)


def split_steps(text: str, fmt: str = "auto") -> list[Step]:
    if fmt == "auto":
        fmt = "shepherd" if SHEPHERD_TAG in text else "step_prefix" if _STEP_PREFIX.search(text) else "newline"
    splitters = {"newline": split_newline, "paragraph": split_paragraph, "step_prefix": split_step_prefix,
                 "shepherd": split_shepherd}
    if fmt not in splitters:
        raise ValueError(f"unknown step format {fmt!r}; expected one of {sorted(splitters)} or auto")
    return splitters[fmt](text)


def step_texts(text: str, fmt: str = "auto") -> list[str]:
    return [s.text for s in split_steps(text, fmt)]


def prefix_text(text: str, steps: list[Step], i: int) -> str:
    """The original text up to and including step i (0-based), for rollouts from that prefix."""
    return text[: steps[i].end]
