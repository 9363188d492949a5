"""The papers' findings as paired comparisons on the same problems and pools, and the evaluator table
(pure Python over per-problem values; the evaluation job feeds it).

A finding is a claim "A > B" (or "A >= B") between two rows of the report. Both rows are evaluated on the
same problems (and, for selectors, the same sampled pools), so the claim is judged on the per-problem
differences ``a_i - b_i`` with a paired bootstrap interval (``metrics.paired_difference``). Verdict:
**shown** when the whole interval is above 0; otherwise **not shown**, with the reading of the interval
(``includes 0``: no evidence either way at this size; ``below 0``: the opposite holds). A ">=" claim is
judged the same way (the report cannot show equality; it shows "better" or it does not).

The claims (docs/methods.md):

- Liu et al. Table 3: RR.Top-K > Pass@1, Maj1@N > Pass@1, RR.Top-K >= Maj1@N, W.RR >= Maj1@N, and the gap
  closure ``(RR.Top-K - Pass@1) / (Pass@N - Pass@1)`` next to the published 0.49 (PaLM 2-L, N=64);
- Liu et al. Table 4: Sequential Pass@1 > SSFT Pass@1, Sequential Pass@1 > Control Pass@1 (the SSFT control
  trained for the same steps);
- Lightman et al.: PRM best-of-N > ORM best-of-N > Maj1@N at every N of the random-subset curves;
- Math-Shepherd: PRM-weighted voting >= Maj1@N.

Pass@1 is the sample average ``c / N`` per problem (the unbiased pass@1 of the same pools); the greedy decode
is reported in the table but is a different pool (one temperature-0 sample).

The evaluator table: for each score (verifier, ORM, PRM min/product/last, the generator's mean token
log-probability as a free baseline), the AUROC over all samples and the mean within-problem AUROC over the
problems that have both correct and wrong samples, each with a bootstrap interval over problems.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from mathray.core import metrics

PASS1 = "Pass@1 (sample avg)"
PUBLISHED_GAP_CLOSURE = 0.49   # Liu et al. Table 3, PaLM 2-L, N=64: (58.8 - 35.6) / (82.8 - 35.6)


@dataclass(frozen=True)
class Claim:
    source: str
    better: str          # report row expected to be higher
    worse: str
    relation: str = ">"  # ">" or ">="


def table3_claims(k: int) -> list[Claim]:
    src = "Liu et al. Table 3"
    return [Claim(src, f"RR.Top-{k}", PASS1), Claim(src, "Maj1@N", PASS1),
            Claim(src, f"RR.Top-{k}", "Maj1@N", ">="), Claim(src, "W.RR", "Maj1@N", ">=")]


def table4_claims() -> list[Claim]:
    src = "Liu et al. Table 4"
    return [Claim(src, f"Sequential: {PASS1}", PASS1), Claim(src, f"Sequential: {PASS1}", f"Control: {PASS1}")]


def lightman_claims(prm_row: str) -> list[Claim]:
    src = "Lightman et al."
    return [Claim(src, prm_row, "ORM BoN"), Claim(src, "ORM BoN", "Maj1@N"), Claim(src, prm_row, "Maj1@N")]


def shepherd_claims(vote_row: str) -> list[Claim]:
    return [Claim("Math-Shepherd", vote_row, "Maj1@N", ">=")]


def judge(claim: Claim, better: Sequence[float], worse: Sequence[float], resamples: int, confidence: float,
          seed: int, at_n: int | None = None) -> dict:
    """One finding row: the paired difference better - worse with its interval and the verdict."""
    diff, lo, hi = metrics.paired_difference(better, worse, resamples, confidence, seed)
    reading = "above 0" if lo > 0 else "below 0" if hi < 0 else "includes 0"
    return {"source": claim.source, "claim": f"{claim.better} {claim.relation} {claim.worse}",
            "better": claim.better, "worse": claim.worse, "n": at_n, "difference": diff, "ci_low": lo,
            "ci_high": hi, "reading": reading, "verdict": "shown" if lo > 0 else "not shown",
            "problems": len(better)}


def judge_all(claims: Sequence[Claim], values: Mapping[str, Sequence[float]], resamples: int,
              confidence: float, seed: int) -> list[dict]:
    """Rows for the claims whose two rows both exist in ``values`` ({row: per-problem values, same problem
    order}); a claim with a missing row gets a row saying so (never silently dropped)."""
    out = []
    for c in claims:
        if c.better in values and c.worse in values:
            out.append(judge(c, values[c.better], values[c.worse], resamples, confidence, seed))
        else:
            missing = [r for r in (c.better, c.worse) if r not in values]
            out.append({"source": c.source, "claim": f"{c.better} {c.relation} {c.worse}", "better": c.better,
                        "worse": c.worse, "n": None, "difference": None, "ci_low": None, "ci_high": None,
                        "reading": f"missing row: {', '.join(missing)}", "verdict": "not shown", "problems": 0})
    return out


def gap_closure(values: Mapping[str, Sequence[float]], k: int, resamples: int, confidence: float,
                seed: int) -> dict | None:
    """Liu et al.'s share of the Pass@1 -> Pass@N gap that RR.Top-K closes, with a paired bootstrap CI."""
    rr, oracle = values.get(f"RR.Top-{k}"), values.get("Pass@N (oracle)")
    p1 = values.get(PASS1)
    if rr is None or oracle is None or p1 is None:
        return None
    value, lo, hi = metrics.ratio_of_differences(rr, p1, oracle, p1, resamples, confidence, seed)
    shown = value is not None and not math.isnan(lo) and lo > 0
    return {"source": "Liu et al. Table 3", "n": None,
            "claim": f"gap closure (RR.Top-{k} - Pass@1) / (Pass@N - Pass@1)",
            "value": value, "ci_low": lo, "ci_high": hi, "published": PUBLISHED_GAP_CLOSURE,
            "verdict": "shown" if shown else "not shown",
            "reading": "above 0" if shown else "includes 0 or undefined"}


def curve_findings(claims: Sequence[Claim], per_problem: Mapping[str, Mapping[int, Sequence[float]]],
                   resamples: int, confidence: float, seed: int) -> list[dict]:
    """The claims at each N of the random-subset curves: ``per_problem[row][n]`` holds each problem's value
    averaged over the subset trials (the same subsets for every row), so the difference is paired."""
    out = []
    for c in claims:
        if c.better not in per_problem or c.worse not in per_problem:
            continue
        for n in sorted(per_problem[c.better]):
            if n >= 2 and n in per_problem[c.worse]:
                out.append(judge(c, per_problem[c.better][n], per_problem[c.worse][n], resamples, confidence,
                                 seed, at_n=n))
    return out


def evaluator_row(name: str, groups: Sequence[tuple[Sequence[float], Sequence[bool]]], resamples: int,
                  confidence: float, seed: int) -> dict:
    """AUROC over all samples and mean within-problem AUROC, with bootstrap intervals over problems.
    ``groups``: one (scores, labels) per problem, samples without a score left out."""
    def pooled(idx: Sequence[int]) -> float | None:
        return metrics.auroc([s for i in idx for s in groups[i][0]], [y for i in idx for y in groups[i][1]])

    within = metrics.within_problem_aurocs(groups)
    lo, hi = metrics.bootstrap_statistic(len(groups), pooled, resamples, confidence, seed)
    wlo, whi = metrics.bootstrap_ci(within, resamples, confidence, seed) if within else (math.nan, math.nan)
    return {"evaluator": name, "auroc": pooled(range(len(groups))), "auroc_ci_low": lo, "auroc_ci_high": hi,
            "within_auroc": metrics.mean(within) if within else None, "within_ci_low": wlo, "within_ci_high": whi,
            "mixed_problems": len(within), "samples": sum(len(g[0]) for g in groups)}
