"""The report's evaluator table and paired findings on hand-built values and pools with known answers."""

import pytest

from mathray.core import findings, metrics
from mathray.core.selectors import Candidate
from mathray.jobs.evaluation import EvaluateConfig, evaluate_pools
from mathray.jobs.report import evaluator_markdown, findings_markdown, render_markdown


def test_auroc_known_values_and_ties():
    assert metrics.auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert metrics.auroc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert metrics.auroc([0.5, 0.5], [True, False]) == 0.5             # a tie counts one half
    # 2 positives x 2 negatives: pairs (0.3>0.2 yes, 0.3>0.4 no, 0.6>0.2 yes, 0.6>0.4 yes) = 3/4
    assert metrics.auroc([0.3, 0.6, 0.2, 0.4], [True, True, False, False]) == 0.75
    assert metrics.auroc([0.1, 0.2], [True, True]) is None


def test_within_problem_auroc_ignores_problem_difficulty():
    # the score ranks problems perfectly by difficulty (easy problem: every score high) but ranks the
    # solutions of each problem backwards: pooled AUROC high, within-problem AUROC 0
    easy = ([0.9, 0.8], [False, True])
    hard = ([0.2, 0.1], [False, True])
    all_easy_right = ([0.95, 0.85, 0.9], [True, True, True])
    groups = [easy, hard, all_easy_right]
    assert metrics.within_problem_aurocs(groups) == [0.0, 0.0]      # the one-class problem is left out
    pooled = metrics.auroc([s for g in groups for s in g[0]], [y for g in groups for y in g[1]])
    assert pooled > 0.5
    row = findings.evaluator_row("x", groups, 200, 0.95, 0)
    assert row["within_auroc"] == 0.0 and row["mixed_problems"] == 2 and row["samples"] == 7
    assert row["auroc"] == pytest.approx(pooled)
    assert row["within_ci_low"] == row["within_ci_high"] == 0.0
    assert row["auroc_ci_low"] <= row["auroc"] <= row["auroc_ci_high"]


def test_paired_difference_cancels_the_shared_spread():
    # b is a + 0.1 on every problem, problems spread widely: the paired CI is exactly 0.1 wide-free
    a = [0.0, 0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6]
    b = [x + 0.1 for x in a]
    diff, lo, hi = metrics.paired_difference(b, a, 500, 0.95, 0)
    assert diff == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    lo_unpaired, hi_unpaired = metrics.bootstrap_ci(b, 500, 0.95, 0)
    assert hi_unpaired - lo_unpaired > 0.3      # the unpaired intervals overlap; the paired one does not
    with pytest.raises(ValueError, match="paired values need the same problems: 1 vs 2"):
        metrics.paired_difference([1.0], [1.0, 0.0])


def test_ratio_of_differences_is_the_gap_closure():
    rr, p1, oracle = [1, 1, 0, 0], [0.5, 0.5, 0.0, 0.0], [1, 1, 1, 0]
    value, lo, hi = metrics.ratio_of_differences(rr, p1, oracle, p1)
    assert value == pytest.approx((0.5 - 0.25) / (0.75 - 0.25))
    assert lo <= value <= hi
    assert metrics.ratio_of_differences([0], [0], [0], [0])[0] is None


def test_judge_verdicts():
    claim = findings.Claim("S", "A", "B")
    up = findings.judge(claim, [1, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0], 300, 0.95, 0)
    assert up["verdict"] == "shown" and up["reading"] == "above 0" and up["ci_low"] > 0
    flat = findings.judge(claim, [1, 0, 1, 0], [0, 1, 0, 1], 300, 0.95, 0)
    assert flat["verdict"] == "not shown" and flat["reading"] == "includes 0"
    down = findings.judge(claim, [0] * 6, [1] * 6, 300, 0.95, 0)
    assert down["verdict"] == "not shown" and down["reading"] == "below 0"
    rows = findings.judge_all([claim, findings.Claim("S", "A", "missing")], {"A": [1], "B": [0]}, 50, 0.95, 0)
    assert rows[1]["verdict"] == "not shown" and "missing" in rows[1]["reading"]


def _pool(spec):
    """(is_correct, answer cluster, verifier, orm, prm steps, mean logprob) per candidate."""
    return [Candidate(is_correct=c, cluster=k, verifier_score=v, orm_score=o, step_scores=s, mean_logprob=lp)
            for c, k, v, o, s, lp in spec]


def test_evaluate_pools_reports_evaluators_and_every_finding():
    # 12 identical problems: majority (cluster 0, wrong x3) loses to the correct cluster 1 that every score
    # ranks first; the generator's log-prob ranks it last
    spec = [(False, 0, 0.2, 0.3, (0.9, 0.1), -0.1), (False, 0, 0.3, 0.2, (0.8, 0.2), -0.2),
            (False, 0, 0.1, 0.1, (0.7, 0.3), -0.3), (True, 1, 0.9, 0.8, (0.9, 0.9), -0.9)]
    pools = {f"p{i}": _pool(spec) for i in range(12)}
    cfg = EvaluateConfig(k=2, top_n=2, trials=5, bootstrap_resamples=100, k_sweep=[1])
    rep = evaluate_pools(pools, cfg)
    ev = {r["evaluator"]: r for r in rep["evaluators"]}
    assert set(ev) == {"Verifier (S_cls)", "ORM", "PRM (min)", "PRM (product)", "PRM (last)",
                       "Generator mean log-prob (baseline)"}
    # every problem: the correct candidate's verifier 0.9, ORM 0.8, PRM min 0.9, product 0.81, last 0.9 are
    # above all three wrong ones (at most 0.3, 0.3, 0.3, 0.21, 0.3); its log-prob -0.9 is below theirs (>= -0.3).
    # The problems are identical, so the pooled AUROC is the within-problem one.
    for name, want in [("Verifier (S_cls)", 1.0), ("ORM", 1.0), ("PRM (min)", 1.0), ("PRM (product)", 1.0),
                       ("PRM (last)", 1.0), ("Generator mean log-prob (baseline)", 0.0)]:
        assert (ev[name]["within_auroc"], ev[name]["auroc"], ev[name]["samples"]) == (want, want, 48), name
    by_claim = {(r["claim"], r["n"]): r for r in rep["findings"]}
    for claim in ("RR.Top-2 > Pass@1 (sample avg)", "RR.Top-2 >= Maj1@N", "W.RR >= Maj1@N",
                  "PRM BoN (product) > ORM BoN", "ORM BoN > Maj1@N", "PRM vote (min) >= Maj1@N"):
        assert claim in {c for c, _ in by_claim}, claim
    assert by_claim[("RR.Top-2 >= Maj1@N", None)]["verdict"] == "shown"
    assert by_claim[("Maj1@N > Pass@1 (sample avg)", None)]["reading"] == "below 0"
    assert by_claim[("PRM BoN (product) > ORM BoN", None)]["reading"] == "includes 0"   # both always right
    gap = next(r for r in rep["findings"] if "gap closure" in r["claim"])
    assert gap["value"] == pytest.approx(1.0) and gap["published"] == 0.49
    curve = [r for r in rep["findings"] if r["n"] is not None]
    assert {r["n"] for r in curve} == {2, 4} and all("BoN" in r["claim"] or "Maj1" in r["claim"] for r in curve)
    assert rep["per_problem"]["problem_ids"] == list(pools)
    rep["settings"], rep["provenance"] = cfg.model_dump(mode="json"), {}
    md = render_markdown(rep)
    assert evaluator_markdown(rep) in md and findings_markdown(rep) in md
    assert "| Liu et al. Table 3 | RR.Top-2 > Pass@1 (sample avg) |" in md and "published 0.49" in md
