"""Evaluation job: SAMPLES (+ greedy SAMPLES) + SCORES -> every selector on the same pools, curves vs N,
bootstrap CIs, evaluator cost -> report files (``mathray.jobs.report``).

Pass@1 (greedy) comes from a greedy run's SAMPLES (``greedy_samples``) or from the ``greedy_pass`` rows among
the samples (``mathray.jobs.sampling``): those rows are the problem's greedy decode, never a pool candidate,
and their scores (the scorer scores every row) are not read.

The job is light (no model runs), so it runs in the driver process without a Ray cluster, like ingest.
Pools: one per problem, candidates in ``sample_id`` order; a sample without a SCORES row has no score
(it ranks last, see ``mathray.core.selectors``). Answers are clustered once per problem on the full pool with
``mathray.grading.cluster_answers`` (equivalence by the grader); random subsets reuse those clusters.
Samples whose ``answer`` is null (none extracted) join no cluster.

Usage::

    python -m rayjobs.evaluate --config rayjobs/configs/evaluate.yaml --set samples=runs/x/samples
"""
from __future__ import annotations

import json
import posixpath
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Sequence

from pydantic import Field

from mathray.config import StrictModel, code_version, config_hash, outside_lineage
from mathray.core import findings, metrics, selectors
from mathray.core.selectors import Candidate
from mathray.grading import cluster_answers
from mathray.jobs.report import markdown_table, write_report
from mathray.jobs.step_evaluation import build_cases, first_error_table
from mathray.runtime.lease import OutputLease
from mathray.runtime.lineage import InputMismatch, InputNotReady, Lineage, shard_set_fingerprint
from mathray.runtime.storage import ShardStore, exists, join, read_bytes, write_bytes_atomic

DONE_MARK = "_COMPLETE.json"


class GeneratorPools(StrictModel):
    """Another generator's samples on the same problems (e.g. the sequential model and its control)."""
    samples: str = outside_lineage("")    # SAMPLES shards
    greedy_samples: str | None = outside_lineage(None)


class EvaluateConfig(StrictModel):
    samples: str = outside_lineage("runs/default/samples_test")  # SAMPLES shards: the candidate pools
    scores: str | None = outside_lineage(None)  # SCORES shards of those samples (None: voting/oracle rows only)
    # SAMPLES shards of a greedy run (one per problem): Pass@1 (greedy)
    greedy_samples: str | None = outside_lineage(None)
    # other generators' pools, reported by name with the score-free rows (Pass@1, Maj1@N, Pass@N)
    generators: dict[str, GeneratorPools] = outside_lineage({})
    output: str | None = outside_lineage(None)  # report directory; default: <parent of scores or samples>/report
    split: str = "test"                   # the data split, named in the report
    k: int = Field(8, ge=1)               # K of RR.Top-K, W.RR.MajK, MajK (Liu et al.: 8)
    top_n: int = Field(5, ge=1)           # N of Maj1.TopN
    prm_vote_aggregation: str = "min"     # PRM-weighted voting's step aggregation (Math-Shepherd: min)
    k_sweep: list[int] = [1, 2, 4, 8, 16]  # K values of the accuracy-vs-cost curves
    trials: int = Field(50, ge=1)         # random-subset trials per N (Lightman: 400)
    bootstrap_resamples: int = Field(1000, ge=10)
    # the PRM aggregation of the Lightman finding (PRM best-of-N): Lightman et al. score a solution by the
    # product of its step probabilities; fixed here, not chosen by which aggregation wins
    finding_prm_aggregation: str = "product"
    confidence: float = 0.95
    seed: int = 0                         # subsets and bootstrap
    verify_inputs: bool = outside_lineage(True)  # check shards against their commit markers' sha256 when read
    # STEP_LABELS of the same samples with their true first errors (e.g. exact_labels on the toy task): the
    # report gets a first-error table of the PRM's step scores (jobs.step_evaluation)
    step_labels: str | None = outside_lineage(None)
    first_error_threshold: float = 0.5    # a step scoring below it is the predicted first error


def cluster_ids(answers: Sequence[str | None]) -> list[int | None]:
    """Equivalence-cluster id per answer via the grader's ``cluster_answers``; None for no answer (the
    grader's ``NO_ANSWER``: a null or blank answer joins no cluster)."""
    return [c if c >= 0 else None for c in cluster_answers(list(answers))]


def mean_logprob(row: dict) -> float | None:
    """The generator's mean token log-probability of a SAMPLES row (vLLM's cumulative log-prob of the sampled
    tokens / their count); None when the row has no log-probs."""
    lp, n = row.get("cumulative_logprob"), row.get("num_output_tokens")
    return lp / n if lp is not None and n else None


def build_pools(samples: list[dict], scores: list[dict]) -> dict[str, list[Candidate]]:
    """{problem_id: candidates in sample_id order} from SAMPLES rows and SCORES rows."""
    by_key = {(s["problem_id"], s["sample_id"]): s for s in scores}
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in samples:
        grouped[r["problem_id"]].append(r)
    pools = {}
    for pid in sorted(grouped):
        rows = sorted(grouped[pid], key=lambda r: r["sample_id"])
        clusters = cluster_ids([r.get("answer") for r in rows])
        pool = []
        for r, c in zip(rows, clusters):
            s = by_key.get((pid, r["sample_id"]), {})
            steps = s.get("step_scores")
            pool.append(Candidate(is_correct=bool(r["is_correct"]), cluster=c,
                                  verifier_score=s.get("verifier_score"), orm_score=s.get("orm_score"),
                                  step_scores=tuple(steps) if steps is not None else None,
                                  mean_logprob=mean_logprob(r)))
        pools[pid] = pool
    return pools


def candidates_and_greedy(rows: list[dict], greedy_uri: str | None,
                          verify: bool) -> tuple[list[dict], list[dict] | None]:
    """(pool candidates, greedy rows or None) of one generator's SAMPLES rows: the greedy rows are its
    greedy-pass rows, or its greedy run's (``greedy_uri``); refused (``InputMismatch``) when both hold some."""
    greedy = [r for r in rows if r.get("greedy_pass")] or None
    if greedy_uri:
        if greedy:
            raise InputMismatch(f"{len(greedy)} samples are greedy-pass rows and a greedy run is given "
                                f"({greedy_uri}): Pass@1 (greedy) must come from one of them")
        greedy = _read_rows(greedy_uri, verify)
    return [r for r in rows if not r.get("greedy_pass")], greedy


def greedy_accuracy(greedy: list[dict], problem_ids: Sequence[str]) -> list[float]:
    """Per problem (in ``problem_ids`` order) the greedy decode's correctness; 0 where it is missing."""
    by_pid: dict[str, list[bool]] = defaultdict(list)
    for r in greedy:
        by_pid[r["problem_id"]].append(bool(r["is_correct"]))
    return [metrics.mean([float(x) for x in by_pid[p]]) if by_pid.get(p) else 0.0 for p in problem_ids]


def _row(name: str, values: list[float], costs: list[float], cfg: EvaluateConfig) -> dict:
    lo, hi = metrics.bootstrap_ci(values, cfg.bootstrap_resamples, cfg.confidence, cfg.seed)
    return {"selector": name, "accuracy": metrics.mean(values), "ci_low": lo, "ci_high": hi,
            "cost": metrics.mean(costs)}


EVALUATORS = {"Verifier (S_cls)": lambda c: c.verifier_score, "ORM": lambda c: c.orm_score,
              **{f"PRM ({how})": (lambda how: lambda c: selectors.aggregate_steps(c.step_scores, how))(how)
                 for how in selectors.AGGREGATIONS},
              "Generator mean log-prob (baseline)": lambda c: c.mean_logprob}


def evaluator_table(plist: list[list[Candidate]], cfg: EvaluateConfig) -> list[dict]:
    """The evaluator table (``findings.evaluator_row``) for every score some candidate has."""
    rows = []
    for name, score in EVALUATORS.items():
        groups = [([score(c) for c in p if score(c) is not None], [c.is_correct for c in p if score(c) is not None])
                  for p in plist]
        if any(g[0] for g in groups):
            rows.append(findings.evaluator_row(name, groups, cfg.bootstrap_resamples, cfg.confidence, cfg.seed))
    return rows


def pool_findings(values: dict[str, list[float]], per_n: dict[str, dict[int, list[float]]],
                  cfg: EvaluateConfig) -> list[dict]:
    """Liu Table 3, Lightman and Math-Shepherd findings on the pools (Table 4 needs the other generators:
    ``build_report``), then the Lightman claims at each N of the subset curves."""
    args = (cfg.bootstrap_resamples, cfg.confidence, cfg.seed)
    prm_row = f"PRM BoN ({cfg.finding_prm_aggregation})"
    claims = [*findings.table3_claims(cfg.k), *findings.lightman_claims(prm_row),
              *findings.shepherd_claims(f"PRM vote ({cfg.prm_vote_aggregation})")]
    rows = findings.judge_all(claims, values, *args)
    gap = findings.gap_closure(values, cfg.k, *args)
    if gap:
        rows.insert(4, gap)
    return rows + findings.curve_findings(findings.lightman_claims(prm_row), per_n, *args)


def evaluate_pools(pools: dict[str, list[Candidate]], cfg: EvaluateConfig,
                   greedy: list[float] | None = None) -> dict:
    """Everything numeric of the report (table, curves, pass@k, cost sweeps, evaluator table, findings) for
    the given pools; ``per_problem`` keeps each row's per-problem values (paired comparisons)."""
    plist = list(pools.values())
    has_v = any(c.verifier_score is not None for p in plist for c in p)
    has_prm = any(c.step_scores is not None for p in plist for c in p)
    has_orm = any(c.orm_score is not None for p in plist for c in p)
    has_lp = any(c.mean_logprob is not None for p in plist for c in p)
    sels = selectors.build_selectors(cfg.k, cfg.top_n, cfg.prm_vote_aggregation, has_v, has_prm, has_orm, has_lp)
    table = [] if greedy is None else [_row("Pass@1 (greedy)", greedy, [0.0] * len(greedy), cfg)]
    values = {} if greedy is None else {"Pass@1 (greedy)": list(greedy)}
    for name, sel in sels.items():
        picks = [sel(p) for p in plist]
        values[name] = [s.value for s in picks]
        table.append(_row(name, values[name], [s.cost(len(p)) for s, p in zip(picks, plist)], cfg))

    def on_subset(p: int, idx: list[int]) -> dict[str, float]:
        sub = selectors.subset(plist[p], idx)
        return {name: sel(sub).value for name, sel in sels.items()}

    sizes = [len(p) for p in plist]
    pool_size = max(sizes, default=0)
    ns = metrics.curve_sizes(pool_size)
    matrix = metrics.subset_matrix(sizes, on_subset, ns, cfg.trials, cfg.seed)
    curves = metrics.subset_curves(sizes, on_subset, ns, cfg.trials, cfg.seed, matrix=matrix)
    pass_k = {"k": [], "value": []}
    for k in ns:
        vals = [metrics.pass_at_k(len(p), sum(c.is_correct for c in p), k) for p in plist if len(p) >= k]
        pass_k["k"].append(k)
        pass_k["value"].append(metrics.mean(vals))
    sweep: dict[str, list[dict]] = {}
    families = ({"RR.Top-K": selectors.rerank_top_k, "W.RR.MajK": selectors.weighted_rerank_top_k} if has_v else {})
    for family, fn in families.items():
        sweep[family] = []
        for k in cfg.k_sweep:
            picks = [fn(p, k) for p in plist]
            sweep[family].append({"k": k, "accuracy": metrics.mean([s.value for s in picks]),
                                  "cost": metrics.mean([s.cost(len(p)) for s, p in zip(picks, plist)])})
    return {"num_problems": len(plist), "pool_size": pool_size, "table": table,
            "curves": {name: {"n": list(c), "mean": [m for m, _ in c.values()], "std": [s for _, s in c.values()]}
                       for name, c in curves.items()},
            "pass_at_k": pass_k, "cost_sweep": sweep, "evaluators": evaluator_table(plist, cfg),
            "findings": pool_findings(values, metrics.per_problem_subset_means(matrix), cfg),
            "per_problem": {"problem_ids": list(pools), "values": values}}


def _run_config(uri: str | None) -> dict | None:
    if uri and exists(join(uri, "run.json")):
        return json.loads(read_bytes(join(uri, "run.json")))
    return None


def provenance(cfg: EvaluateConfig, samples: list[dict], scores: list[dict], greedy_pass: bool = False) -> dict:
    """What every number of the report comes from (``samples``: the pool candidates; ``greedy_pass``: Pass@1
    (greedy) from the samples' greedy-pass rows)."""
    sample_run = _run_config(cfg.samples) or {}
    sample_cfg = sample_run.get("config", {})
    return {
        "generator": sorted({r["generator"] for r in samples}),
        "scorer (verifier/PRM checkpoints)": sorted({r["scorer"] for r in scores}) or None,
        "sampling params hash": sorted({r["sampling_params_hash"] for r in samples}),
        "sampling params": sample_cfg.get("sampling"),
        "sample seeds": sorted({r["seed"] for r in samples if r.get("seed") is not None})[:10],
        "split": cfg.split,
        "evaluation seed": cfg.seed,
        "samples": cfg.samples, "scores": cfg.scores,
        "greedy samples": cfg.greedy_samples or (f"{cfg.samples} (greedy-pass rows)" if greedy_pass else None),
        "sample run config hash": sample_run.get("config_hash"),
        "evaluate config hash": config_hash(cfg), "code version": code_version(),
    }


def default_output(cfg: EvaluateConfig) -> str:
    if cfg.output:
        return cfg.output
    return join(posixpath.dirname((cfg.scores or cfg.samples).rstrip("/")), "report")


def _read_rows(uri: str, verify: bool = True) -> list[dict]:
    try:
        return ShardStore(uri, verify=verify).read_all().to_pylist()
    except FileNotFoundError as e:
        raise InputNotReady(str(e)) from None


def generator_rows(name: str, samples: list[dict], greedy: list[dict] | None, cfg: EvaluateConfig,
                   problem_ids: list[str] | None = None) -> tuple[list[dict], dict[str, list[float]]]:
    """The score-free rows of one more generator, prefixed with its name, and their per-problem values in
    ``problem_ids`` order (the main pools' problems; a problem this generator lacks counts 0)."""
    pools = build_pools(samples, [])
    ids = problem_ids if problem_ids is not None else list(pools)
    plist = [pools.get(pid, []) for pid in ids]
    rows, values = [], {}
    if greedy is not None:
        values[f"{name}: Pass@1 (greedy)"] = greedy_accuracy(greedy, ids)
    for label, sel in (("Pass@1 (sample avg)", selectors.sample_average), ("Maj1@N", selectors.majority),
                       ("Pass@N (oracle)", selectors.oracle)):
        values[f"{name}: {label}"] = [sel(p).value for p in plist]
    for row, vals in values.items():
        rows.append(_row(row, vals, [0.0] * len(vals), cfg))
    return rows, values


def evaluation_inputs(cfg: EvaluateConfig) -> dict[str, str]:
    """{input name: URI} of every shard set the report reads."""
    out = {"samples": cfg.samples}
    if cfg.scores:
        out["scores"] = cfg.scores
    if cfg.greedy_samples:
        out["greedy"] = cfg.greedy_samples
    if cfg.step_labels:
        out["step_labels"] = cfg.step_labels
    for name, g in cfg.generators.items():
        out[f"{name}.samples"] = g.samples
        if g.greedy_samples:
            out[f"{name}.greedy"] = g.greedy_samples
    return out


def evaluation_lineage(cfg: EvaluateConfig):
    return Lineage.of("evaluate", cfg, {k: shard_set_fingerprint(ShardStore(u, verify=cfg.verify_inputs))
                                        for k, u in evaluation_inputs(cfg).items()})


def check_pools_input(samples: list[dict], scores: list[dict], cfg: EvaluateConfig,
                      greedy: list[dict] | None = None) -> None:
    """Refuse (``InputMismatch``, with counts) inputs that would be counted wrong: a (problem_id, sample_id)
    twice in the samples or the scores (counted twice), scores that match no sample (another sample set's
    scores), greedy rows with a problem twice, and scores whose recorded input is not these samples."""
    problems = []
    for name, rows in (("samples", samples), ("scores", scores)):
        keys = Counter((r["problem_id"], r["sample_id"]) for r in rows)
        dups = {k: n for k, n in keys.items() if n > 1}
        if dups:
            problems.append(f"{len(dups)} (problem_id, sample_id) keys occur more than once in the {name} "
                            f"({sum(dups.values()) - len(dups)} extra rows; e.g. {sorted(dups)[:3]})")
    sample_keys = {(r["problem_id"], r["sample_id"]) for r in samples}
    orphans = sorted({(r["problem_id"], r["sample_id"]) for r in scores} - sample_keys)
    if orphans:
        problems.append(f"{len(orphans)} scores match no sample (e.g. {orphans[:3]}): these scores belong to "
                        "other samples")
    if greedy is not None:
        per_problem = Counter(r["problem_id"] for r in greedy)
        twice = sorted(p for p, n in per_problem.items() if n > 1)
        if twice:
            problems.append(f"{len(twice)} problems have more than one greedy sample (e.g. {twice[:3]})")
    if cfg.scores:
        recorded = ((ShardStore(cfg.scores).read_manifest() or {}).get("lineage") or {}).get("inputs", {})
        if recorded.get("input") and recorded["input"] != shard_set_fingerprint(ShardStore(cfg.samples)):
            problems.append(f"the scores at {cfg.scores} were computed from another sample set "
                            f"({recorded['input']}) than {cfg.samples}")
    if problems:
        raise InputMismatch("evaluation inputs do not belong together:\n  " + "\n  ".join(problems))


def build_report(cfg: EvaluateConfig) -> dict:
    all_rows = _read_rows(cfg.samples, cfg.verify_inputs)
    scores = _read_rows(cfg.scores, cfg.verify_inputs) if cfg.scores else []
    samples, greedy = candidates_and_greedy(all_rows, cfg.greedy_samples, cfg.verify_inputs)
    if not samples:
        raise InputNotReady(f"no committed SAMPLES rows under {cfg.samples}")
    check_pools_input(all_rows, scores, cfg, greedy)
    sampled = {(r["problem_id"], r["sample_id"]) for r in samples}
    scores = [s for s in scores if (s["problem_id"], s["sample_id"]) in sampled]   # not the greedy rows'
    pools = build_pools(samples, scores)
    report = evaluate_pools(pools, cfg, greedy_accuracy(greedy, list(pools)) if greedy is not None else None)
    values = report["per_problem"]["values"]
    for name, g in cfg.generators.items():
        g_rows = _read_rows(g.samples, cfg.verify_inputs)
        g_samples, g_greedy = candidates_and_greedy(g_rows, g.greedy_samples, cfg.verify_inputs)
        check_pools_input(g_rows, [], cfg.model_copy(update={"scores": None}), g_greedy)
        rows, vals = generator_rows(name, g_samples, g_greedy, cfg, list(pools))
        report["table"] += rows
        values.update(vals)
    if cfg.generators:
        report["findings"] += findings.judge_all(findings.table4_claims(), values, cfg.bootstrap_resamples,
                                                 cfg.confidence, cfg.seed)
    if cfg.step_labels and scores:
        report["first_error"] = first_error_report(cfg, scores, sampled)
    report["provenance"] = provenance(cfg, samples, scores, greedy is not None and not cfg.greedy_samples)
    report["settings"] = cfg.model_dump(mode="json")
    return report


def first_error_report(cfg: EvaluateConfig, scores: list[dict], samples: set[tuple[str, int]]) -> dict:
    """The PRM's first-error table on the ``samples`` (keys) whose true first errors ``step_labels`` holds."""
    labels = [r for r in _read_rows(cfg.step_labels, cfg.verify_inputs) if (r["problem_id"], r["sample_id"]) in samples]
    scored = [s for s in scores if s["step_scores"] is not None]
    keys = {(r["problem_id"], r["sample_id"]) for r in labels}
    subsets, unscored = build_cases(labels, [s for s in scored if (s["problem_id"], s["sample_id"]) in keys])
    table = first_error_table({n: [c for _, c in pairs] for n, pairs in subsets.items()}, cfg.first_error_threshold)
    return {**table, "labelled": len(labels), "unscored": unscored}


@dataclass
class EvaluateSummary:
    report: dict
    files: dict

    def lines(self) -> list[str]:
        return [f"{self.report['num_problems']} problems, pool of up to {self.report['pool_size']} samples",
                markdown_table(self.report), *(f"wrote {uri}" for uri in self.files.values())]


def run_evaluate(cfg: EvaluateConfig) -> EvaluateSummary:
    """Build the report and write its files, then the completion mark with the lineage (last), holding the
    report directory's writer lease."""
    out = default_output(cfg)
    with OutputLease(out, "evaluate"):
        lineage = evaluation_lineage(cfg)
        report = build_report(cfg)
        report["provenance"]["lineage"] = lineage.hash
        files = write_report(report, out)
        write_bytes_atomic(join(out, DONE_MARK), json.dumps({"lineage": lineage.record(),
                                                              "code_version": code_version()}).encode())
    return EvaluateSummary(report, files)
