"""What a prediction's text says around its answer that the answer string alone does not carry: the choice
letter it picks, the base it writes digits in, a percent it restates the answer as and dots that make a decimal
repeat.

- Choices: a reference that is a choice letter (``D``, ``(D)``, ``\\text{(D)}``, ``\\textbf{(D)}``, A to J) is
  matched by letter; a lowercase letter in parentheses, "(b)", is that letter (a to h only: "(i)" may be a roman
  numeral), while a bare lowercase letter may be a variable and picks none. An answer that starts with a letter
  (``\\textbf{(D)}\\ 12``, ``\\mathrm{(D)}\\ 12``, ``(A) 24``, ``A) 24``, ``C``), or that the text writes right
  after one ("the correct choice is (D) 81", "B) 81", "option **A**: 81", "Option (E), 2025, ...", read as the
  value; also at an earlier mention in its sentence, "So it's (A) 3, since 3 is ...") or right before one ("16,
  which corresponds to option (B)"), picks that letter (an answer "option E" or "choice E" is the letter E),
  unless the prediction's own list of options names another value for that letter (the answer then contradicts
  itself); so does an answer that is a lone letter which the text names for a value right before it ("12, which
  corresponds to option **(D)**", "$x = 5$, which is choice (B)"; not "4, so the answer is (B)", where 4 may be a
  step). An answer that is a value picks the letter that the prediction's list of options names for that value
  ("(A) 18, (B) 20, (C) 22 ... \\boxed{22}" picks C); without such a list a value picks no letter. A list of
  options is two or more ``(X) value`` items; the first value given for a letter counts (an answer that is itself
  an item, "(C) 45", is not read as one).
- Values: against a reference that is a value, an answer that is a letter and its value (``(D)\\ 27``)
  stands for the value, and a lone letter for the value the prediction's own list of options names for it;
  a letter whose value contradicts that list stands for nothing.
- Bases: bare digits (``1011``) against a reference with a base (``1011_2``) take the base that the text
  states nearest to the digits ("in base 2 the number is 1011", "1011 in binary"), if any. Against a
  reference in base ten, bare digits take a base only where their own sentence says they are written "in
  base N" (N other than ten) and converts nothing from another base ("In base 8, the number is 147" is
  ``147_8``, also when a decimal restatement follows, ", which is 103 in decimal"; "Converting 21 from base 5
  gives 11" stays 11).
- Percents: an answer that the text restates as a percent right after it ("0.4, that is, 40%", "$\\frac14$,
  or 25%") names that percent too, when the percent is exactly 100 times the value.
- Repeating decimals: a decimal answer with trailing dots, in it or after it in the text, whose digits end in a
  block written at least twice ("0.272727...") is that repeating decimal (``repeating_decimal``).
"""
from __future__ import annotations

import re

_LETTER_REFERENCE = re.compile(r" ?\$? ?(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?\(? ?([A-J]) ?\)? ?\}? ?\$? ?")
# a lowercase letter counts only in parentheses: "(b)"
_LETTER_ANSWER = re.compile(r"\s?(?:(?i:option|choice) )?(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?"
                            r"(\()?([A-J]|(?(1)[a-h]|(?!)))(?(1)\)|(\))?) ?\}?"
                            r"(?=$|[\s.:,~\\])"
                            r"(?:\s|\\[ ,;!]|~|[.:,]){0,8}(.*)", re.S)  # "(B) 14", "B) 14", "\\textbf{(B)}\\ 14"
_OPTION = re.compile(r"(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?\(([A-J])\)(?: ?\}| |\\[ ,;!]|~){0,6}"
                     r"(\$[^$\n]{1,80}\$|[^,;()\n$]{1,40}?) ?(?=[,;(\n]|\.(?: |$)|$| (?:and|or) )")
# "16, which corresponds to option (B)": the letter the text names for the answer right after it
_LETTER_AFTER = re.compile(r"[^.\n]{0,40}?\b(?:option|choice|answer)(?: choice)? ?(?:is )?\$?(?:\\(?:text(?:bf|rm)?"
                           r"|math(?:rm|bf)) ?\{ ?)?\(([A-Ja-h])\)")
# a value and the letter the text names for it right after ("16, which corresponds to option (D)", "$x = 5$, which
# is choice **(B)**", "12, i.e. choice (A)"): what the prediction says that letter's value is
_VALUE_THEN_LETTER = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?(?:/\d+)?|\$[^$\n]{1,80}\$)(?:\*\*)?,? (?:which|that|i\.e\."
                                r"|corresponding|matching)\b[^.\n\d$]{0,40}?\b(?:option|choice|answer)(?: choice)? ?"
                                r"(?:is )?(?:\*\*)?\$?(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?\(([A-Ja-h])\)")
# the letter right before the answer: "(D) 81", "\\textbf{(D)}\\ 81", "B) 12", "option **A**: 2/5"
_LETTER_BEFORE = re.compile(r"(?:(?:\\(?:text(?:bf|rm)?|math(?:rm|bf)) ?\{ ?)?\(([A-Ja-h])\)|(?<![\w(\\])([A-J])\)"
                            r"|\b(?:option|choice) (?:\*\*)?([A-J])(?:\*\*)? ?:)(?: ?\}| |,|\\[ ,;!]|~|\$|\*\*){1,6}$")
_BASE = re.compile(r"\bbase[- ]?(\d{1,2})\b|\b(binary|ternary|octal|hexadecimal)\b", re.IGNORECASE)
_BASE_WORDS = {"binary": 2, "ternary": 3, "octal": 8, "hexadecimal": 16}
_BASE_WINDOW = 120
_LETTER_WINDOW = 200
_WRITTEN_IN_BASE = re.compile(r"\bin (?:base[- ]?(\d{1,2})\b|(binary|ternary|octal|hexadecimal)\b)", re.IGNORECASE)
_DECIMAL_RESTATEMENT = re.compile(r",? (?:which is|i\.e\.|or|that is,?) \$?\d{1,64}\$?"
                                  r" (?:in decimal|in base[- ]?(?:10|ten))\b", re.IGNORECASE)
_OTHER_BASE_CUE = re.compile(r"\bfrom\b|\bbase[- ]?(?:10|ten)\b|\bdecimal\b", re.IGNORECASE)


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


def _other_options(text: str, answer: str, m: re.Match | None) -> dict[str, str]:
    """The options the text lists besides the answer itself: an answer that is an option item ("(C) 45") is
    left out, so "(C) 45, since (A) 30, ..., (C) 50" is checked against the list that follows it."""
    at = text.rfind(answer) if m and m.group(4).strip() else -1
    return options(text[:at] + text[at + len(answer) :] if at >= 0 else text)


def picked_letter(text: str, answer: str, same_value) -> str | None:
    """The letter the prediction picks (see the module docstring); ``same_value(a, b)`` compares values."""
    m = _LETTER_ANSWER.fullmatch(answer)
    listed = _other_options(text, answer, m)
    if m:
        letter, value = m.group(2).upper(), m.group(4).strip().strip("$").strip()
        value = value or _value_named_for(text, letter)
        if value and letter in listed and not same_value(value, listed[letter]):
            return None  # "(A) 4" or "4, which is option (A)" where the options say (A) 3
        return letter
    at = _last_index(text, answer)
    before = _LETTER_BEFORE.search(text, max(0, at - 40), at)
    if not before and (earlier := _lettered_occurrence(text, answer, at)) is not None:
        at, before = earlier  # "So it's (A) 3, since 3 is the only odd prime": the lettered mention
    if before:  # "The correct choice is (D) 81." read as 81
        letter = next(g for g in before.groups() if g).upper()
        return None if letter in listed and not same_value(answer, listed[letter]) else letter
    after = _LETTER_AFTER.match(text, at + len(answer)) if at or text.startswith(answer) else None
    if after:
        letter = after.group(1).upper()
        return None if letter in listed and not same_value(answer, listed[letter]) else letter
    named = [letter for letter, value in listed.items() if same_value(answer, value)]
    return named[0] if len(named) == 1 else None


def chosen_value(text: str, answer: str, same_value) -> str | None:
    """The value a choice answer stands for (see the module docstring); other answers as they are."""
    m = _LETTER_ANSWER.fullmatch(answer)
    if not m or not (m.group(1) or m.group(3) or answer.startswith("\\") or not m.group(4).strip()):
        return answer  # a value after a bare letter ("C = 5", "A, B") is not a choice
    letter, value = m.group(2).upper(), m.group(4).strip().strip("$").strip()
    listed = _other_options(text, answer, m)
    named = value or _value_named_for(text, letter)
    if named and letter in listed and not same_value(named, listed[letter]):
        return None  # "(A) 4" or "4, which is option (A)" where the options say (A) 3
    return value or listed.get(letter, answer)


def _value_named_for(text: str, letter: str) -> str:
    """The value that the text's end names right before the letter (``_VALUE_THEN_LETTER``: "16, which corresponds to
    option (D)" names 16 for D), or ""."""
    named = ""
    for m in _VALUE_THEN_LETTER.finditer(text, max(0, len(text) - 2 * _LETTER_WINDOW)):
        if m.group(2).upper() == letter:
            named = m.group(1).strip("$").strip()
    return named


_TRAILING_DOTS = r"(?:\.{3}|…|\\[lc]?dots\b)"
_DOTS_AFTER = re.compile(r"\$? ?%s" % _TRAILING_DOTS)
# a decimal that is the whole answer or the last side of its chain ("\\frac{7}{11} = 0.6363\\ldots"), with its dots
_DECIMAL_WITH_DOTS = re.compile(r"(?:^|(?<==)) ?(-?\d{1,20}\.\d{1,40}) ?(%s)?$" % _TRAILING_DOTS)
# the digits after the point: a part that does not repeat, then a block written twice or more, at least 3 digits
_REPEATING_TAIL = re.compile(r"(\d*?)(\d{1,6}?)\2+")


def repeating_decimal(text: str, answer: str) -> str | None:
    """A decimal answer (or last side of a chain) written with trailing dots whose digits end in a repeated block
    ("0.272727...", ``0.1666\\ldots``) with that decimal as a repeating one (``0.\\overline{27}``,
    ``0.1\\overline{6}``); the dots may follow the decimal's last mention in the text. A block must be written at
    least twice over three digits or more, so "3.14159..." and "1.4499..." stay the decimals they show. None for
    any other answer."""
    answer = answer.strip()
    m = _DECIMAL_WITH_DOTS.search(answer) if "." in answer else None
    if not m:
        return None
    number = m.group(1)
    if not m.group(2):
        at = text.rfind(number)
        if at < 0 or not _DOTS_AFTER.match(text, at + len(number)):
            return None
    whole, digits = number.split(".")
    tail = _REPEATING_TAIL.fullmatch(digits)
    if not tail or len(digits) - len(tail.group(1)) < 3:
        return None
    return f"{answer[: m.start(1)]}{whole}.{tail.group(1)}\\overline{{{tail.group(2)}}}"


_RESTATED_PERCENT = re.compile(r"\$? ?,? ?(?:or|that is,?|i\.e\.,?|which is) \$?(-?\d+(?:\.\d+)?) ?\\?%")


def restated_percent(text: str, answer: str, value_of) -> str | None:
    """The percent the text restates the answer as right after its last occurrence (see the module docstring),
    or None; ``value_of(s)`` is the exact value of a number string (None for anything else)."""
    at = text.rfind(answer)
    m = _RESTATED_PERCENT.match(text, at + len(answer)) if at >= 0 else None
    if not m:
        return None
    value, percent = value_of(answer), value_of(m.group(1))
    return m.group(1) if value is not None and percent is not None and percent == 100 * value else None


def _lettered_occurrence(text: str, answer: str, last: int) -> tuple[int, re.Match] | None:
    """(index, letter match) of the latest earlier mention of ``answer`` in its sentence that a letter precedes."""
    start = max(0, text.rfind(".", 0, last) + 1, last - _LETTER_WINDOW)
    k = text.rfind(answer, start, last)
    while k > start:
        if not text[k + len(answer) : k + len(answer) + 1].isalnum():
            before = _LETTER_BEFORE.search(text, max(0, k - 40), k)
            if before:
                return k, before
        k = text.rfind(answer, start, k)
    return None


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


def written_base(text: str, digits: str) -> int | None:
    """The base other than ten that the sentence of the last standalone ``digits`` says they are written in
    ("In base 8, the number is 147."), when it names exactly one and converts nothing; else None."""
    occurrences = list(re.finditer(r"(?<![\w.])%s(?![\w_]|\.\d)" % re.escape(digits), text))
    if not occurrences:
        return None
    at = occurrences[-1]
    start = max(text.rfind(". ", 0, at.start()), text.rfind("\n", 0, at.start())) + 1
    end = min((k for k in (text.find(". ", at.end()), text.find("\n", at.end())) if k >= 0), default=len(text))
    sentence = text[start:end]
    restated = _DECIMAL_RESTATEMENT.match(text, at.end())  # ", which is 48 in decimal" restates the digits
    if restated:
        sentence = text[start : at.end()] + text[restated.end() : max(end, restated.end())]
    if _OTHER_BASE_CUE.search(sentence):
        return None
    bases = {int(m.group(1)) if m.group(1) else _BASE_WORDS[m.group(2).lower()]
             for m in _WRITTEN_IN_BASE.finditer(sentence)}
    base = bases.pop() if len(bases) == 1 else None
    return base if base is not None and base != 10 and 2 <= base <= 36 else None
