"""The structure of a pipeline report (never its numbers): every selector row of the base and the sequential and
control generators, the evaluator table, every finding row with its paired interval and verdict, the PRM's
first-error table."""
from __future__ import annotations


def assert_report_structure(rep: dict, md: str, k: int, top_n: int) -> None:
    from mathray.core import selectors
    from mathray.jobs.report import SOURCE_ORDER

    rows = {r["selector"] for r in rep["table"]}
    expected = {"Pass@1 (greedy)", *selectors.build_selectors(k, top_n, "min", True, True, True, True)}
    expected |= {f"{g}: {r}" for g in ("Sequential", "Control")
                 for r in ("Pass@1 (greedy)", "Pass@1 (sample avg)", "Maj1@N", "Pass@N (oracle)")}
    assert expected <= rows, expected - rows

    evaluators = {r["evaluator"]: r for r in rep["evaluators"]}
    assert set(evaluators) == {"Verifier (S_cls)", "ORM", "PRM (min)", "PRM (product)", "PRM (last)",
                               "Generator mean log-prob (baseline)"}
    for r in evaluators.values():
        assert {"auroc", "auroc_ci_low", "auroc_ci_high", "within_auroc", "within_ci_low", "within_ci_high",
                "mixed_problems"} <= set(r)

    claims = {r["claim"] for r in rep["findings"] if r["n"] is None}
    assert {f"RR.Top-{k} > Pass@1 (sample avg)", "Maj1@N > Pass@1 (sample avg)", f"RR.Top-{k} >= Maj1@N",
            "W.RR >= Maj1@N", f"gap closure (RR.Top-{k} - Pass@1) / (Pass@N - Pass@1)",
            "Sequential: Pass@1 (sample avg) > Pass@1 (sample avg)",
            "Sequential: Pass@1 (sample avg) > Control: Pass@1 (sample avg)", "PRM BoN (product) > ORM BoN",
            "ORM BoN > Maj1@N", "PRM BoN (product) > Maj1@N", "PRM vote (min) >= Maj1@N"} <= claims, claims
    for r in rep["findings"]:
        assert r["source"] in SOURCE_ORDER and r["verdict"] in ("shown", "not shown"), r
        if r.get("difference") is not None:
            assert r["ci_low"] <= r["difference"] <= r["ci_high"], r
    assert {r["n"] for r in rep["findings"] if r["n"] is not None} >= {2}   # the curves' N >= 2

    first = rep["first_error"]           # the toy task's true first errors against the PRM's step scores
    assert set(first["subsets"]) == {"toy-exact"} and first["labelled"] > 0 and first["threshold"] == 0.5
    assert {"f1", "error_accuracy", "correct_accuracy", "step_auroc", "offsets"} <= set(first["subsets"]["toy-exact"])

    assert "## Evaluators" in md and "## Findings" in md and "## First errors" in md
    assert md.count("| shown") + md.count("| not shown") >= len(rep["findings"])
