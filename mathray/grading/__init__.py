"""Answer grading for MATH- and GSM8K-style answers (pure Python; no Ray, torch or vLLM imports).

    from mathray.grading import grade
    grade("... so the answer is $\\boxed{\\frac12}$.", "0.5").is_correct  # True
    grade("-5", "-5").is_correct  # True: a bare prediction is its own answer

Semantics (chosen to match what users of MATH/GSM8K graders expect):
- Extraction (``extract_answer``, rules in ``extract``): a reasoning block (``<think>...</think>`` and similar)
  is set aside when anything follows it; when the text corrects itself ("Wait, I made an error ... the
  total is 14", "I forgot the third shelf ...") the corrected statement wins over an earlier box or marker, and
  so does a new conclusion after a sentence that reconsiders ("Wait — the dice are distinguishable, ... So the
  probability is ..."), unless that part only checks the answer. Then: GSM8K ``####``, the LAST
  ``\\boxed{}`` (boxes joined only by "and"/"or"/commas form a list; other boxes are not merged), PRM800K
  ``# Answer``, answer markers
  ("The final answer is 34. I hope it is correct.", "Final Answer: The largest $n$ is 34.", "Answer:",
  ``A:``), a bold final line, a bare short prediction (``-5``, ``$29.00``), the number or math the last
  sentence states ("So she earns \\$18."; a counterfactual after it, "If she had waited, she would have
  paid $18.", "If two more friends joined, each would pay $8.", "Were it fair, it would ...", and a remark that
  compares it with another amount, "That's 12 more than in May." or ", which is 5 more than Ann's 30", are set
  aside; an equation that gives no variable its value is what a claim is about: "the graph of $x^2 + y^2 = 9$ is a
  circle" states circle); an
  ending that says it is unsure and only tentatively names a value ("I'm not sure ... possibly 2/3", also before
  a closing "It's hard to say.") gives None;
  optionally the last number
  (``number_fallback=True``). Output that runs on into a new chat turn or few-shot problem ("**Next problem:**
  ...") is cut first, and an offer of more help or an aside after the answer ("Let me know if you'd like ... n =
  20!", "If you want, I can ...", "By the way, ...", "Pro tip: ...") is set aside. A later GSM8K ``####`` counts
  only after a correction ("#### 142 Wait, he also read 20 pages ... #### 122"). A clause with no value that opens
  with a yes or no states it, and so does one whose values only name what its claim is about ("No, 91 is not
  prime."; "No, the sum is 14." states 14). A last line that labels a result ("Area = 30") states it. No answer, a
  box that never closes (truncated output) or text over 200k characters give None, and None never equals anything.
- Equality is by exact value: unreduced fractions, terminating and repeating decimals
  (``0.\\overline{3}`` = 1/3), radical forms (``2\\sqrt2`` = ``\\sqrt8``), ``2^{-2}`` = 0.25, ``e^{i\\pi}`` = -1,
  ``\\sqrt{-1}`` = i, reordered sums and products, expanded vs factored polynomials, scaled or rearranged
  equations are equal. Equations against values: a chain of constants counts by its last value
  (``\\frac72=3.5``); a predicted ``a + b + c = 15`` states 15, a congruence of a constant its residue
  (``2^{10} \\equiv 4 \\pmod{5}`` = 4; ``x \\equiv 4 \\pmod 9`` is not 4), and ``E[X] = 3.5`` (square brackets, as
  expectations are written) states 3.5 as ``E(X) = 3.5`` does; a reference equation is compared as an
  equation, a value matching only the right side of ``y = f(x)`` (``f(x) = ...``, ``a_n = ...``), so ``0`` does
  not match ``x + 3z = 0`` and two different planes ``... = 0`` differ. Approximations are
  not (3.14 != pi, 0.333 != 1/3; a value restated as approximately a decimal, "$12\\pi$, which is approximately
  37.70", ends in the approximation): there is no relative tolerance and no x100 percent leniency
  (0.25 != 25), while ``25\\%`` = 25 because units, words after a number ("5 apples"), ``^\\circ``, ``\\%``
  and currency signs are stripped, not converted (except an angle in radians with pi against one in degrees,
  or the reverse, which is converted: ``\\frac{\\pi}{4}`` = ``45^\\circ``; and an amount whose unit, written with it
  or right after it in the text, is another unit of time, length, mass, volume, speed or money than the
  reference's, or that is written in several units: "12 hours" != ``12\\text{ minutes}``, "54 km/h" =
  ``15\\text{ m/s}``, "350 cents" = ``\\$3.50`` != ``\\$350``, "1 hour and 50 minutes" = ``110\\text{ minutes}``
  (``quantities``)). Clock times that say their half of the day compare as times of day (14:30 =
  ``2:30\\text{ PM}`` != "2:30 am"); a decimal written with trailing dots after a repeated block ("0.272727...") is
  the repeating decimal. Numbers in words count
  ("five", "one half", "two thirds", "one hundred twenty", "seven and a half", "the twelfth", "two point five",
  "forty percent", "it happens twice"), and so do clock times ("a quarter to four" = 3:45). "Neither X nor Y" =
  "neither". An equation of a named angle, segment or arc (``\\angle ABC = 72^\\circ``) states its measure. "No
  solution(s)" / "no real roots" = ``\\emptyset``;
  "all real numbers" = ``\\mathbb{R}`` = ``(-\\infty,\\infty)``; a reference ``\\infty`` is read as a count or a
  value (how many solutions, a limit): "infinitely many (solutions)" and "infinity" equal it, while "all
  real numbers" and ``(-\\infty,\\infty)`` do not (and "infinitely many solutions" is not ``\\mathbb{R}``).
- ``2\\frac12`` is the mixed number 5/2, and so are "2 1/2", "2½" and, before the noun it measures, "2 and 1/2 cups"
  (without one, "the roots are 2 and 1/2" is a list). Bare comma lists, ``or`` lists, ``\\pm`` and ``\\{...\\}`` are
  unordered sets (``x = 2 \\text{ or } x = 3`` = ``2, 3``; ``\\pm 2021`` = ``\\{-2021, 2021\\}``); a bare reference list
  that repeats a value is a multiset of roots (``1, -2`` != ``1, 1, -2``, while a prediction ``1, 1, -2`` against the
  reference ``1, -2`` is read as a set and is equal); parenthesised tuples are ordered (``(p,q)=(3,2)`` = ``(3,2)``);
  intervals compare bracket types and equal the inequalities they solve (``x \\ge 5`` = ``5 \\le x`` = ``[5,\\infty)``);
  ``\\mathbb{R}`` = ``(-\\infty,\\infty)``; ``\\varnothing`` = ``\\emptyset``; a one-element set is its element
  (``\\{2\\}`` = 2), a set of sets is not; matrices compare cell by cell in any environment.
- ``1,000,000``, ``10,\\!000``, ``1\\,000\\,000``, ``14{,}916`` are numbers, ``1,2`` is a list.
  Integers are compared exactly at any size.
- Text answers compare case-insensitively after ``\\text{}`` and parentheses are removed. A reference that is
  a choice letter (``(A)`` = ``A`` = ``\\text{(A)}``) is matched by the letter the prediction picks: a letter
  (lowercase too when in parentheses, "(b)"),
  also followed by its value (``\\textbf{(D)}\\ 12``), or a value that the prediction's own list of options
  names with that letter; a letter whose value contradicts that list picks none (``context``), also when the
  value is named right before the letter ("12, which is option (D)" where the list has (B) 12). Against a value
  reference, a letter with its value (``(D)\\ 27``) is that value, and a lone letter the value its
  options list names. An answer restated as a percent ("0.4, that is, 40%", "$\\frac{14}{40} = 0.35$, i.e. 35%") also
  matches that percent.
- Base subscripts are significant (``101_2`` != 101) unless the text states the base next to the digits
  ("in base 2 the number is 1011" = ``1011_2``; "2A in hexadecimal" = ``2A_{16}``); digits whose sentence
  says they are written in another base are not the base-ten number ("In base 8, the number is 147" is not
  147; a decimal restatement after them, ", which is 103 in decimal", does not undo that). A true chain of one
  integer in several bases (``25_{10} = 121_4``) equals it in each of them. Against a base-ten reference a
  numeral with its base written is its value, also at the end of a chain (``253_8`` = 171, ``12_3 + 21_3 =
  110_3`` = 12; 5 against ``101_2`` stays not equal, and so does "5 in decimal": that reference asks for base 2).
- Brackets and set braces nested deeper than an answer uses (``[[[[[1]]]]]``) are refused, never equal to the
  value.
- Hedged answers ("3 or 4", "15 if the host counts, or 10 if not") are not correct: they are a list, which
  never equals one value; a commitment that ends the sentence ("either 8 or 9; I'll go with 8", "I'll go with
  (C)") is the answer.

Time and safety: answer text is never executed. Each ``grade``/``compare`` call has one time budget
(``timeout``, default 2 s) for all the sympy work it needs. Cheap paths (strings, exact numbers, a
70-digit in-process evaluator, ``numeric_compare``) are bounded by construction and linear in the input; sympy
(latex2sympy2_extended) runs only on answers that pass ``sympy_compare.unsafe_reason``, inside a sandbox
worker process that is killed when the budget runs out (``sandbox``). A worker that dies or cannot
start gives the reason ``sandbox-error`` (logged with its stderr), never a silent verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

import re

from mathray.grading.cluster import cluster_answers
from mathray.grading.context import (choice_letter, chosen_value, picked_letter, repeating_decimal, restated_percent,
                                    stated_base, written_base)
from mathray.grading.equivalence import (DEFAULT_BUDGET_S, Deadline, Verdict, compare, compare_normalized,
                                         is_equivalent)
from mathray.grading.extract import MAX_TEXT_CHARS, clean, extract_answer, extract_reference, last_boxed, tidy
from mathray.grading.normalize import normalize
from mathray.grading.number_strings import parse_base, parse_number
from mathray.grading.quantities import verdict_in_context
from mathray.grading.structure import last_side


@dataclass(frozen=True)
class GradeResult:
    is_correct: bool
    # equal | not-equal | no-answer | no-reference | too-long | timeout | parse-error | refused | sandbox-error
    reason: str
    answer: str | None


def grade(prediction: str | None, reference: str | None, *, number_fallback: bool = False,
          timeout: float | None = None) -> GradeResult:
    """Extract the answer from the ``prediction`` text and compare it with the ``reference`` ANSWER.

    ``timeout``: this call's time budget in seconds (default ``DEFAULT_BUDGET_S``)."""
    deadline = Deadline(timeout)
    if prediction is not None and len(prediction) > MAX_TEXT_CHARS:
        return GradeResult(False, "too-long", None)
    answer = extract_answer(prediction, number_fallback=number_fallback)
    if answer is None:
        return GradeResult(False, "no-answer", None)
    if reference is None or not str(reference).strip():
        return GradeResult(False, "no-reference", answer)
    reference = _reference_answer(str(reference))
    text, letter = tidy(prediction), choice_letter(reference)
    if letter is not None:  # graded by the letter the prediction picks
        equal = picked_letter(text, answer, _same_value) == letter
        return GradeResult(equal, "equal" if equal else "not-equal", answer)
    value = chosen_value(text, answer, _same_value)
    if value is None:  # a choice letter whose value contradicts the prediction's own options
        return GradeResult(False, "not-equal", answer)
    value = repeating_decimal(text, value) or value  # "0.272727..." is 0.\overline{27}
    if "\\equiv" not in reference and (residue := _CONSTANT_CONGRUENCE.fullmatch(value)):
        value = residue.group(1)  # "2^{10} \\equiv 4 \\pmod{5}" against 4: the residue
    in_units = verdict_in_context(text, value, reference)
    if in_units is not None:  # "12 hours" against 12 minutes, "54 km/h" against 15 m/s, "14:30" against 2:30 PM
        return GradeResult(in_units, "equal" if in_units else "not-equal", answer)
    verdict = compare(_in_base_ten(_with_stated_base(prediction, value, reference), reference), reference,
                      deadline=deadline)
    if verdict.reason == "not-equal" and (percent := restated_percent(text, answer, _value)):
        verdict = compare(percent, reference, deadline=deadline)  # "0.4, that is, 40%" against 40
    if verdict.reason == "not-equal" and (angle := _in_reference_angle_unit(value, reference)):
        verdict = compare(angle, reference, deadline=deadline)  # "\\frac{\\pi}{4}" against 45^\\circ
    return GradeResult(verdict.equal, verdict.reason, answer)


# a congruence of a constant (no letters on its left) with its modulus states its residue; a congruence of a
# variable ("x \\equiv 4 \\pmod 7") states a class of numbers and is left as it is
_CONSTANT_CONGRUENCE = re.compile(r"[^A-Za-z=]*?[0-9}] ?\\equiv ?(-?\d+) ?(?:\\pmod ?\{? ?\d+ ?\}?|\\\(mod ?\d+\\\)"
                                  r"|\(\\?(?:text|mathrm)?\{? ?mod ?\}? ?\d+ ?\))")
_DEGREES = re.compile(r"\^ ?\{ ?\\circ ?\}|\^ ?\\circ|\\degree|°| ?(?:\\text\{ ?)?degrees?\b\}?")


def _in_reference_angle_unit(answer: str, reference: str) -> str | None:
    """The answer's angle written in the reference's unit, when one is in radians with pi and the other in
    degrees (``\\frac{\\pi}{4}`` against ``45^\\circ``, ``30^\\circ`` against ``\\frac{\\pi}{6}``); else None.
    The right side of a one-``=`` answer (``\\theta = \\frac{\\pi}{4}``) is the angle."""
    angle = answer.split("=", 1)[1].strip() if answer.count("=") == 1 else answer
    if _DEGREES.search(reference) and not _DEGREES.search(angle) and "\\pi" in angle:
        return f"\\frac{{180}}{{\\pi}}\\cdot\\left({angle}\\right)"
    if _DEGREES.search(angle) and not _DEGREES.search(reference) and "\\pi" in reference:
        return f"\\frac{{\\pi}}{{180}}\\cdot\\left({_DEGREES.sub('', angle).strip()}\\right)"
    return None


def _value(s: str):
    """The exact value of a number, or of the number a chain of constants ends with (``\\frac{14}{40} = 0.35``)."""
    n = normalize(s)
    return parse_number(last_side(n) or n if "=" in n else n)


def _same_value(a: str, b: str) -> bool:
    """Equal by the in-process rules (option values are numbers or short expressions)."""
    return compare_normalized(normalize(a), normalize(b)) is True


def _with_stated_base(prediction: str, answer: str, reference: str) -> str:
    """``1011`` -> ``1011_{2}`` when the reference has base 2 and the text says "in base 2" next to the digits;
    ``147`` -> ``147_{8}`` against a reference in base ten when the digits' sentence says "in base 8"."""
    ref_base = parse_base(normalize(reference))
    digits = normalize(answer)
    if not re.fullmatch(r"[0-9A-Za-z]{1,64}", digits):
        return answer
    if ref_base and ref_base[1] != 10:
        base = stated_base(tidy(prediction), digits)
    elif re.fullmatch(r"\d{1,64}", digits):
        base = written_base(tidy(prediction), digits)
    else:
        return answer
    return f"{digits}_{{{base}}}" if base and _is_numeral(digits, base) else answer


def _in_base_ten(answer: str, reference: str) -> str:
    """A numeral with its base written (``253_8``, or digits the text puts in base 8) as its base-ten value when the
    reference is a base-ten integer: the base names the number (``253_8`` = 171); so is such a numeral that ends a
    chain (``12_3 + 21_3 = 110_3`` ends in 12). Against a reference in another base, the base stays
    significant."""
    if not re.fullmatch(r"-?\d{1,64}", normalize(reference)):
        return answer
    head, equals, side = answer.rpartition("=")
    numeral = parse_base(normalize(side))
    if numeral is None or numeral[1] == 10:
        return answer
    digits, base = numeral
    return head + equals + str(int(digits, base)) if _is_numeral(digits, base) else answer


def _is_numeral(digits: str, base: int) -> bool:
    try:
        int(digits, base)
    except ValueError:
        return False
    return True


def _reference_answer(reference: str) -> str:
    """A reference answer as datasets write it: ``$...$`` and a whole ``\\boxed{...}`` are unwrapped."""
    if len(reference) > MAX_TEXT_CHARS:
        return reference
    ref = clean(reference) or reference
    boxed = last_boxed(ref)
    return boxed if boxed is not None and ref.startswith(("\\boxed", "\\fbox")) and ref.endswith("}") else ref


def grade_against_solution(prediction: str | None, reference_solution: str, **kwargs) -> GradeResult:
    """Like ``grade`` but the reference is a full solution (MATH: last box; GSM8K: ``####``)."""
    return grade(prediction, extract_reference(reference_solution), **kwargs)


__all__ = ["DEFAULT_BUDGET_S", "GradeResult", "Verdict", "cluster_answers", "compare", "extract_answer",
           "extract_reference", "grade", "grade_against_solution", "is_equivalent", "last_boxed"]
