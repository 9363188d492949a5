"""Final-answer extraction from model and reference text.

Order of precedence (the first rule that finds something wins):
1. the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces; ``\\boxed 5`` too); several boxes are not merged;
2. GSM8K ``#### n``: the FIRST one counts (a model that runs on into a new few-shot ``Question:`` writes more);
3. PRM800K ``# Answer`` block: the first non-empty line after the last ``# Answer``;
4. "the final answer is X" / "the answer is X" (last occurrence, to the end of its line);
5. an ``Answer: X`` / ``A: X`` line (the GSM8K example model solutions end with ``A: <n>``), the last one;
6. a bold final line ``**X**``;
7. optionally (``number_fallback=True``, for GSM8K-style sets) the last number in the text.

Text is first cut at a run-on into a new few-shot problem (``\\nQuestion:`` / ``\\nProblem:`` / ``\\nQ:``).
A box that never closes (a truncated solution) gives None, and so does text longer than ``MAX_TEXT_CHARS``.
"""
from __future__ import annotations

import re

MAX_TEXT_CHARS = 200_000
_BOX_COMMANDS = ("\\boxed", "\\fbox")
_RUNON = re.compile(r"\n\s*(?:Question|Problem|Q)\s*:")
_ANSWER_IS = re.compile(r"(?:final\s+answer|the\s+answer)\s*(?:is|:)\s*:?\s*", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^\s*(?:\*\*)?(?:final\s+answer|answer|A)\s*(?:\*\*)?\s*:\s*(?:\*\*)?(.+?)\s*$",
                          re.IGNORECASE | re.MULTILINE)
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), or of ``\\boxed 5``.

    Returns None when there is no closed box (a truncated solution).
    """
    if not text:
        return None
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    i = start + len(cmd)
    if i < len(text) and text[i] == " ":  # "\boxed 5": the argument runs to the next space or "$"
        rest = text[i + 1 :].lstrip(" ")
        m = re.match(r"[^\s$]+", rest)
        return m.group(0) if m else None
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "\\":  # skip escaped braces \{ \}
            continue
        if c == "{" and text[j - 1] != "\\":
            depth += 1
        elif c == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def _clean(ans: str | None) -> str | None:
    """Strip math delimiters, a trailing full stop and surrounding bold/space."""
    if ans is None:
        return None
    for _ in range(2):
        ans = ans.strip().strip("*").strip()
        if ans.endswith((".", ",", ";")):
            ans = ans[:-1].rstrip()
        if len(ans) >= 2 and ans[0] == "$" and ans[-1] == "$":
            ans = ans.strip("$")
        for a, b in (("\\(", "\\)"), ("\\[", "\\]")):
            if ans.startswith(a) and ans.endswith(b):
                ans = ans[len(a) : -len(b)]
    return ans.strip() or None


def _cut_runon(text: str) -> str:
    m = _RUNON.search(text, 1)
    return text[: m.start()] if m else text


def extract_answer(text: str | None, *, number_fallback: bool = False) -> str | None:
    """The final answer in ``text`` (see the module docstring for the rules), or None."""
    if not text or len(text) > MAX_TEXT_CHARS:
        return None
    if "####" in text:  # GSM8K: the first "####" counts, even if the model ran on
        line = text.split("####", 1)[1].lstrip(" ").split("\n", 1)[0]
        return _clean(line)
    text = _cut_runon(text)
    boxed = last_boxed(text)
    if boxed is not None:
        return _clean(boxed)
    if "\\boxed" in text or "\\fbox" in text:
        return None  # the last box never closes: a truncated solution
    k = text.rfind("# Answer")
    if k >= 0:
        for line in text[k + len("# Answer") :].split("\n"):
            if line.strip():
                return _clean(line)
        return None
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        rest = text[matches[-1].end() :].split("\n", 1)[0]
        return _clean(_strip_sentence(rest))
    lines = list(_ANSWER_LINE.finditer(text))
    if lines:
        return _clean(lines[-1].group(1))
    last_line = next((ln for ln in reversed(text.split("\n")) if ln.strip()), "")
    bold = _BOLD.findall(last_line)
    if bold:
        return _clean(bold[-1])
    if number_fallback:
        nums = _NUMBER.findall(text)
        if nums:
            return _clean(nums[-1].replace("$", ""))
    return None


def _strip_sentence(rest: str) -> str:
    """'3. So we are done' -> '3': a sentence-ending full stop outside math ends the answer."""
    depth = 0
    in_math = False
    for i, c in enumerate(rest):
        if c == "$":
            in_math = not in_math
        elif c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        elif c == "." and not in_math and depth <= 0:
            nxt = rest[i + 1 : i + 2]
            if nxt == "" or nxt.isspace():
                return rest[:i]
    return rest


def extract_reference(solution: str) -> str | None:
    """The reference answer in a reference solution (MATH: last box; GSM8K: ``####``)."""
    return extract_answer(solution)
