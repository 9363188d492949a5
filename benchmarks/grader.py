"""Grader benchmark: mathray.grading vs math-verify on the same labeled (prediction text, reference) pairs.

    MATHRAY_DATA_DIR=/path/to/data .venv/bin/python benchmarks/grader.py   (the layout of tests/fixtures/data)

Two sets (label = mathematically equal or not):
1. Semantics pairs, built from the full data sets and our own cases: MATH-500 gold answers in other written
   forms (equal) and perturbed (not equal); MATH-500 gold vs another problem's gold (equal only when the
   texts match); GSM8K gold numbers in other forms / perturbed; real GSM8K model solutions with OpenAI's
   is_correct flags; hand-written semantic cases. Each prediction is the answer boxed in a sentence, except
   the real model solutions (as written). Accuracy and answers/s of both graders come from this set (one
   process, caller thread, both warmed up first), and so does the throughput ratio.
2. The real-output set of the tests (tests/grading/real_outputs.py): outputs written the way models and
   datasets write them, hand-written by kind (reasoning batches 3 to 14 included) and rebuilt from real solutions in
   the full data sets.
3. The earlier reasoning batches 1 and 2 (seen when rules were written) and the held-out batch 15
   (tests/grading/real_outputs/heldout_reasoning_15.jsonl; the benchmark stops with a message while it is
   missing): reasoning-model and chat output endings; accuracy and false positives of both graders, per batch
   (counts by kind only, no cases shown).
Then the worst latency of mathray on every hostile input of tests/grading/hostile.py (each answer three
ways, and the hostile pairs), and of math-verify on the first 40 hostile answers (the set of earlier
runs) in a child process capped at 30 s, since its signal-based timeout may not stop C-level work.
Last line: ``RESULT ...``.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import random
import re
import sys
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mathray.grading import compare, grade  # noqa: E402
from tests.grading.hostile import HOSTILE_ANSWERS, HOSTILE_PAIRS  # noqa: E402
from tests.grading.real_outputs import (load_earlier_batches, load_heldout, load_real_outputs,  # noqa: E402
                                        missing_heldout)
from tests.helpers.data_dirs import DATA_DIR_ENV, full_data_dir  # noqa: E402

MATH_VERIFY_HOSTILE = 40

OWN_EQUAL = [
    ("0.5", r"\frac12"), (r"\dfrac{1}{2}", r"\tfrac12"), (r"2\frac12", "5/2"), ("1,000,000", "1000000"),
    (r"10,\!000", "10000"), ("14{,}916", "14916"), (r"25\%", "25"), (r"1.5\times10^{3}", "1500"),
    (r"2\sqrt2", r"\sqrt8"), (r"\frac{\pi}{2}", r"\frac12\pi"), (r"90^\circ", "90"), (r"\$32,\!348", "32348"),
    (r"(3,\frac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)"), (r"\{1,2\}", "2,1"), ("1,-2", "-2,1"),
    (r"1 \pm \sqrt{19}", r"1-\sqrt{19}, 1+\sqrt{19}"), ("x=5", "5"), ("x > 3", "3 < x"), (r"\text{(C)}", "C"),
    ("(A)", "a"), (r"\text{Evelyn}", "evelyn"), ("52_{8}", "52_8"), ("(x+1)^2", "x^2+2x+1"),
    ("2x - y + 3 = 0", "y = 2x + 3"), (r"0.\overline{3}", r"\frac13"), ("[-2,7]", r"x \in [-2,7]"),
    (r"(9,36)\cup(0,9)", r"(0,9) \cup (9,36)"), (r"-2, 1+\sqrt5, 1-\sqrt5", r"\{1\pm\sqrt{5},-2\}"),
    (r"\sqrt{242}", r"11\sqrt2"), (r"\frac{9a+11}{20}", r"\frac{11+9a}{20}"), (r"\sqrt{2}/2", r"\frac{1}{\sqrt{2}}"),
    ("(x-1)(x+1)", "x^2 - 1"), (r"\text{Monday}", "monday"), ("123456789012345678901234567890",
                                                             "123,456,789,012,345,678,901,234,567,890"),
]
OWN_NOT_EQUAL = [
    ("3.14", r"\pi"), ("0.333", r"\frac13"), ("0.25", "25"), (r"25\%", "0.25"), ("1,2", "12"), ("(2,1)", "(1,2)"),
    ("[1,2)", "(1,2)"), ("3 or 4", "3"), ("101", "101_2"), ("5", "101_2"), (r"x\ge3", "x>3"), ("x^2+1", "(x+1)^2"),
    ("1.414", r"\sqrt2"), ("B", "A"), ("1,2,3", "1,2"), (r"\frac{1}{3}", r"\frac{1}{2}"), ("y = 2x - 3", "y = 2x + 3"),
    ("x > 3", "x < 3"), (r"\text{Tuesday}", r"\text{Monday}"), ("9" * 40, "9" * 39 + "8"),
]


def _sentence(answer: str) -> str:
    return f"Putting it together, the final answer is $\\boxed{{{answer}}}$."


def _forms(ans: str) -> list[str]:
    """Other written forms of the same value (plain textual rewrites, independent of the grader)."""
    out = []
    s = ans.strip()
    if re.fullmatch(r"-?\d+", s):
        n = int(s)
        out += [f"{n:,}" if abs(n) >= 1000 else f"{n}.0", f"\\${n}" if n >= 0 else f"{n}.00", f"x = {n}"]
    if m := re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", s):
        sign, p, q = m.groups()
        out += [f"{sign}{p}/{q}", f"{sign}\\frac{{{2 * int(p)}}}{{{2 * int(q)}}}"]
        f = Fraction(int(p), int(q))
        d = f.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:
            out.append(sign + str(float(f)).rstrip("0").rstrip("."))
    if "\\left" in s or "\\dfrac" in s or " " in s:
        out.append(s.replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace(" ", ""))
    if "\\frac" in s and "\\dfrac" not in s:
        out.append(s.replace("\\frac", "\\dfrac"))
    thousands = re.fullmatch(r"-?(\\\$)?\d{1,3}(,(\\!)?\d{3})+", s.replace(" ", ""))
    if re.fullmatch(r"[^(){}\[\]]+(,[^(){}\[\]]+)+", s) and not thousands:  # a list of roots: order is free
        out.append(",".join(reversed(s.split(","))))
    if "^\\circ" in s:
        out.append(s.replace("^\\circ", ""))
    if re.fullmatch(r"\\text\{[A-Za-z]+\}", s):
        out.append(s[6:-1].upper())
    return [o for o in out if o != s]


def _perturbed(ans: str) -> list[str]:
    """Different values written in the same style."""
    s = ans.strip()
    out = []
    if re.fullmatch(r"-?\d+", s):
        n = int(s)
        out += [str(n + 1), str(-n) if n else "1"]
        if n % 100:
            out.append(str(Fraction(n, 100).numerator / Fraction(n, 100).denominator))  # 25 -> 0.25
    if m := re.search(r"\\frac\{(\d+)\}", s):
        out.append(s[: m.start(1)] + str(int(m.group(1)) + 1) + s[m.end(1) :])
    if "\\pi" in s and re.fullmatch(r"\d*\\pi", s):
        k = s.replace("\\pi", "") or "1"
        out.append(str(round(int(k) * 3.14, 2)))
    if m := re.search(r"\\sqrt\{(\d+)\}", s):
        out.append(s[: m.start(1)] + str(int(m.group(1)) + 1) + s[m.end(1) :])
    if m := re.fullmatch(r"\(([^,()]+),([^,()]+)\)", s):
        if m.group(1).strip() != m.group(2).strip():
            out.append(f"({m.group(2)},{m.group(1)})")
    if re.fullmatch(r"\(.*\]|\[.*\)", s):
        out.append({"(": "[", "[": "("}[s[0]] + s[1:])
    return [o for o in out if o != s]


def build_pairs(data: Path) -> list[tuple[str, str, bool, str]]:
    """(prediction text, reference answer, label, family)."""
    rng = random.Random(0)
    math = [json.loads(line) for line in open(data / "math500" / "test.jsonl")]
    gsm = [json.loads(line) for line in open(data / "gsm8k" / "test.jsonl")]
    sols = [json.loads(line) for line in open(data / "gsm8k" / "example_model_solutions.jsonl")]
    pairs = []
    for r in math:
        gold = r["answer"]
        pairs.append((r["solution"], gold, True, "math-solution"))
        pairs += [(_sentence(f), gold, True, "math-form") for f in _forms(gold)]
        pairs += [(_sentence(p), gold, False, "math-perturbed") for p in _perturbed(gold)]
    known_equal = {frozenset({"10080", r"10,\!080"}), frozenset({"-2,1", "1,-2"})}
    for _ in range(1500):
        a, b = rng.sample(math, 2)
        x, y = a["answer"], b["answer"]
        same = x.replace(" ", "") == y.replace(" ", "") or frozenset({x, y}) in known_equal
        pairs.append((_sentence(x), y, same, "math-cross"))
    for r in rng.sample(gsm, 400):
        gold = r["answer"].split("####")[-1].strip()
        pairs += [(_sentence(f), gold, True, "gsm-form") for f in _forms(gold)]
        pairs += [(_sentence(p), gold, False, "gsm-perturbed") for p in _perturbed(gold)]
    for r in sols[:300]:
        gold = r["ground_truth"].rsplit("A:", 1)[-1].strip()
        for model in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            pairs.append((r[model]["solution"], gold, r[model]["is_correct"], "gsm-model-solution"))
    pairs += [(_sentence(a), b, True, "own") for a, b in OWN_EQUAL]
    pairs += [(_sentence(a), b, False, "own") for a, b in OWN_NOT_EQUAL]
    return pairs


def mathray_verdict(pred: str, ref: str) -> bool:
    return grade(pred, ref).is_correct


def math_verify_verdict(pred: str, ref: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${ref}$"), parse(pred)))
    except Exception:
        return False


def run(fn, pairs) -> tuple[float, float, list]:
    t0 = time.perf_counter()
    verdicts = [fn(p, r) for p, r, _, _ in pairs]
    seconds = time.perf_counter() - t0
    wrong = [(p[-80:], r, lab, fam) for (p, r, lab, fam), v in zip(pairs, verdicts) if v != lab]
    return 1 - len(wrong) / len(pairs), len(pairs) / seconds, wrong


def report(name: str, wrong: list, shown: int = 15) -> None:
    fams: dict[str, int] = {}
    for w in wrong:
        fams[w[3]] = fams.get(w[3], 0) + 1
    false_pos = sum(1 for w in wrong if not w[2])
    print(f"{name}: {len(wrong)} wrong ({false_pos} false positives) by family {fams}")
    for w in wrong[:shown]:
        print(f"  {name} wrong: label={w[2]} ref={w[1]!r} pred=...{w[0]!r}")


def batch_scores(batches: dict) -> dict[str, tuple[float, int, float, int, int]]:
    """(mathray accuracy, its false positives, math-verify accuracy, its false positives, mathray misses) per
    batch of cases; prints the counts by kind, no cases."""
    out = {}
    for name, cases in batches.items():
        pairs = [(c.prediction, c.reference, c.expected, c.kind) for c in cases]
        acc_mr, _, wrong_mr = run(mathray_verdict, pairs)
        acc_mv, _, wrong_mv = run(math_verify_verdict, pairs)
        fp_mr, fp_mv = (sum(1 for w in wrong if not w[2]) for wrong in (wrong_mr, wrong_mv))
        report(f"mathray {name}", wrong_mr, shown=0)
        report(f"math-verify {name}", wrong_mv, shown=0)
        print(f"{name} ({len(pairs)} pairs, {sum(p[2] for p in pairs)} equal): mathray accuracy "
              f"{acc_mr:.4f} ({fp_mr} false positives, {len(wrong_mr) - fp_mr} misses), math-verify "
              f"{acc_mv:.4f} ({fp_mv} false positives)")
        out[name] = (acc_mr, fp_mr, acc_mv, fp_mv, len(wrong_mr) - fp_mr)
    return out


def _mv_hostile_child(text: str, q) -> None:
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # it logs each timed-out input in full
    t0 = time.perf_counter()
    verdict = math_verify_verdict(_sentence(text), "7")
    q.put((verdict, time.perf_counter() - t0))


def hostile_latency(marker: str) -> tuple[float, float, bool, bool]:
    """Worst seconds and any-equal for mathray (in process: every hostile answer three ways, and the hostile
    pairs) and math-verify (its first ``MATH_VERIFY_HOSTILE`` answers boxed in a sentence, child process)."""
    worst_mr, worst_mv, eq_mr, eq_mv = 0.0, 0.0, False, False
    calls = []
    for h in HOSTILE_ANSWERS:
        text = h.replace("{marker}", marker)
        calls += [lambda t=text: compare(t, "7").equal, lambda t=text: grade(_sentence(t), "7").is_correct,
                  lambda t=text: grade(t, "7").is_correct]
    for p, r in HOSTILE_PAIRS:
        calls.append(lambda p=p.replace("{marker}", marker), r=r.replace("{marker}", marker): grade(p, r).is_correct)
    for fn in calls:
        t0 = time.perf_counter()
        eq_mr |= fn()
        worst_mr = max(worst_mr, time.perf_counter() - t0)
    ctx = mp.get_context("spawn")
    for h in HOSTILE_ANSWERS[:MATH_VERIFY_HOSTILE]:
        text = h.replace("{marker}", marker)
        q = ctx.Queue()
        p = ctx.Process(target=_mv_hostile_child, args=(text, q))
        p.start()
        p.join(30)
        if p.is_alive():
            p.kill()
            p.join()
            worst_mv = max(worst_mv, 30.0)
        elif not q.empty():
            verdict, seconds = q.get()
            eq_mv |= verdict
            worst_mv = max(worst_mv, seconds)
    return worst_mr, worst_mv, eq_mr, eq_mv


def main() -> None:
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    data = full_data_dir()
    if data is None:
        raise SystemExit(f"set {DATA_DIR_ENV} to the folder of the full data sets (layout: tests/fixtures/data)")
    if missing := missing_heldout():
        raise SystemExit(f"held-out batch missing: {', '.join(map(str, missing))} (it is merged separately; "
                         "the benchmark reports it and does not run without it)")
    pairs = build_pairs(data)
    real = [(c.prediction, c.reference, c.expected, c.kind.split(":")[0]) for c in load_real_outputs(data)]
    print(f"semantics pairs: {len(pairs)} ({sum(p[2] for p in pairs)} equal); "
          f"real-output pairs: {len(real)} ({sum(p[2] for p in real)} equal)")
    for fn in (mathray_verdict, math_verify_verdict):  # warm up: imports, worker start-up
        fn(_sentence(r"2\sqrt2"), r"\sqrt8")
    from mathray.grading.sandbox import get_pool

    get_pool().wait_ready()
    acc_mr, rate_mr, wrong_mr = run(mathray_verdict, pairs)
    acc_mv, rate_mv, wrong_mv = run(math_verify_verdict, pairs)
    report("mathray", wrong_mr)
    report("math-verify", wrong_mv)
    print(f"mathray:     accuracy {acc_mr:.4f}  {rate_mr:8.1f} answers/s")
    print(f"math-verify: accuracy {acc_mv:.4f}  {rate_mv:8.1f} answers/s")
    ratio = rate_mr / rate_mv
    print(f"throughput ratio (mathray / math-verify): {ratio:.2f}")
    real_mr, real_rate_mr, real_wrong_mr = run(mathray_verdict, real)
    real_mv, real_rate_mv, real_wrong_mv = run(math_verify_verdict, real)
    report("mathray real-output", real_wrong_mr)
    report("math-verify real-output", real_wrong_mv, shown=40)
    print(f"real outputs: mathray accuracy {real_mr:.4f} ({real_rate_mr:.1f}/s), "
          f"math-verify {real_mv:.4f} ({real_rate_mv:.1f}/s)")
    earlier = batch_scores(load_earlier_batches())
    held = batch_scores(load_heldout())["heldout_reasoning_15"]
    marker = "/tmp/mathray_grader_bench_marker"
    worst_mr, worst_mv, eq_mr, eq_mv = hostile_latency(marker)
    print(f"hostile ({len(HOSTILE_ANSWERS)} answers x 3 + {len(HOSTILE_PAIRS)} pairs): worst latency mathray "
          f"{worst_mr:.3f} s (any equal: {eq_mr}); math-verify on the first {MATH_VERIFY_HOSTILE} answers "
          f"{worst_mv:.3f} s (any equal: {eq_mv}; capped at 30 s); side effect: {Path(marker).exists()}")
    print(f"RESULT accuracy_mathray={acc_mr:.4f} accuracy_math_verify={acc_mv:.4f} accuracy_real_mathray={real_mr:.4f} "
          f"accuracy_real_math_verify={real_mv:.4f} accuracy_batch1_mathray={earlier['heldout_reasoning'][0]:.4f} "
          f"accuracy_batch2_mathray={earlier['heldout_reasoning_2'][0]:.4f} "
          f"accuracy_heldout15_mathray={held[0]:.4f} accuracy_heldout15_math_verify={held[2]:.4f} "
          f"false_positives_heldout15={held[1]} misses_heldout15={held[4]} "
          f"throughput_ratio={ratio:.2f} worst_latency_s={worst_mr:.3f}")


if __name__ == "__main__":
    main()
