"""What a prediction's text says around its answer that the answer string alone does not carry: the choice
letter it picks and the base it writes digits in.

- Choices: a reference that is a choice letter (``D``, ``(D)``, ``\\text{(D)}``, ``\\textbf{(D)}``, A to J) is
  matched by letter. An answer that starts with a letter (``\\textbf{(D)}\\ 12``, ``\\mathrm{(D)}\\ 12``,
  ``(A) 24``, ``C``), or that the text writes right after one ("the correct choice is (D) 81", read as 81)
  or right before one ("16, which corresponds to option (B)"), picks that letter, unless the prediction's
  own list of options names another value for that letter (the answer then contradicts itself). An answer that is a value picks the letter that the prediction's list of options
  names for that value ("(A) 18, (B) 20, (C) 22 ... \\boxed{22}" picks C); without such a list a value picks
  no letter. A list of options is two or more ``(X) value`` items; the first value given for a letter counts.
- Values: against a reference that is a value, an answer that is a letter and its value (``(D)\\ 27``)
  stands for the value, and a lone letter for the value the prediction's own list of options names for it;
  a letter whose value contradicts that list stands for nothing.
- Bases: bare digits (``1011``) against a reference with a base (``1011_2``) take the base that the text
  states nearest to the digits ("in base 2 the number is 1011", "1011 in binary"), if any.
"""
from __future__ import annotations

import re

_LETTER_REFERENCE = re.compile(r" ?\$? ?(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?\(? ?([A-J]) ?\)? ?\}? ?\$? ?")
_LETTER_ANSWER = re.compile(r"\s?(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?(\()?([A-J])(?(1)\)) ?\}?(?=$|[\s.:,~\\])"
                            r"(?:\s|\\[ ,;!]|~|[.:,]){0,8}(.*)", re.S)
_OPTION = re.compile(r"(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?\(([A-J])\)(?: ?\}| |\\[ ,;!]|~){0,6}"
                     r"(\$[^$\n]{1,80}\$|[^,;()\n$]{1,40}?) ?(?=[,;(\n]|\.(?: |$)|$| (?:and|or) )")
# "16, which corresponds to option (B)": the letter the text names for the answer right after it
_LETTER_AFTER = re.compile(r"[^.\n]{0,40}?\b(?:option|choice|answer)(?: choice)? ?(?:is )?\$?(?:\\(?:text(?:bf|rm)?"
                           r"|math(?:rm|bf)) ?\{ ?)?\(([A-J])\)")
_LETTER_BEFORE = re.compile(r"(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?\(([A-J])\)(?: ?\}| |\\[ ,;!]|~|\$){1,6}$")
_BASE = re.compile(r"\bbase[- ]?(\d{1,2})\b|\b(binary|ternary|octal|hexadecimal)\b", re.IGNORECASE)
_BASE_WORDS = {"binary": 2, "ternary": 3, "octal": 8, "hexadecimal": 16}
_BASE_WINDOW = 120


def choice_letter(reference: str) -> str | None:
    """The letter of a reference that is a multiple-choice letter, else None."""
    m = _LETTER_REFERENCE.fullmatch(reference)
    return m.group(1) if m else None


def options(text: str) -> dict[str, str]:
    """The prediction's list of options, letter -> value (empty unless two or more letters are listed)."""
    found: dict[str, str] = {}
    for m in _OPTION.finditer(text):
        found.setdefault(m.group(1), m.group(2).strip().strip("$").strip())
    return found if len(found) >= 2 else {}


def picked_letter(text: str, answer: str, same_value) -> str | None:
    """The letter the prediction picks (see the module docstring); ``same_value(a, b)`` compares values."""
    listed = options(text)
    m = _LETTER_ANSWER.fullmatch(answer)
    if m:
        letter, value = m.group(2), m.group(3).strip().strip("$").strip()
        if value and letter in listed and not same_value(value, listed[letter]):
            return None  # "(A) 4" where the options say (A) 3
        return letter
    at = _last_index(text, answer)
    before = _LETTER_BEFORE.search(text, max(0, at - 40), at)
    if before:  # "The correct choice is (D) 81." read as 81
        letter = before.group(1)
        return None if letter in listed and not same_value(answer, listed[letter]) else letter
    after = _LETTER_AFTER.match(text, at + len(answer)) if at or text.startswith(answer) else None
    if after:
        letter = after.group(1)
        return None if letter in listed and not same_value(answer, listed[letter]) else letter
    named = [letter for letter, value in listed.items() if same_value(answer, value)]
    return named[0] if len(named) == 1 else None


def chosen_value(text: str, answer: str, same_value) -> str | None:
    """The value a choice answer stands for (see the module docstring); other answers as they are."""
    m = _LETTER_ANSWER.fullmatch(answer)
    if not m or not (m.group(1) or answer.startswith("\\") or not m.group(3).strip()):
        return answer  # a value after a bare letter ("C = 5", "A, B") is not a choice
    letter, value = m.group(2), m.group(3).strip().strip("$").strip()
    listed = options(text)
    if not value:
        return listed.get(letter, answer)
    return None if letter in listed and not same_value(value, listed[letter]) else value


def _last_index(text: str, answer: str) -> int:
    k = text.rfind(answer)
    return k if k >= 0 else 0


def stated_base(text: str, digits: str) -> int | None:
    """The base the text states nearest to the last standalone occurrence of ``digits``, or None."""
    occurrences = list(re.finditer(r"(?<![\w.])%s(?!\w|\.\d)" % re.escape(digits), text))
    if not occurrences:
        return None
    at = occurrences[-1]
    lo = max(0, at.start() - _BASE_WINDOW)
    window = text[lo : at.end() + _BASE_WINDOW // 2]
    best = None
    for m in _BASE.finditer(window):
        start, end = m.start() + lo, m.end() + lo
        before = end <= at.start()
        distance = (at.start() - end, 1) if before else (start - at.end(), 0)  # a tie goes to "1011 in base 2"
        if distance[0] >= 0 and (best is None or distance < best[0]):
            base = int(m.group(1)) if m.group(1) else _BASE_WORDS[m.group(2).lower()]
            best = (distance, base)
    return best[1] if best and 2 <= best[1] <= 36 else None
