"""The first-error evaluation: how well a PRM's step scores find each solution's first wrong step.

Inputs: step-labelled solutions (STEP_LABELS shards: ingested PRM800K, Math-Shepherd or ProcessBench cases, or
a labeling job's output) and their step scores (SCORES shards from ``score`` with ``input_kind:
step_labels``). A solution's labelled first error is its ``first_error_step``, else its first step with hard
label 0, else none (-1). The metric is ProcessBench's (``core.first_error``): per subset, the accuracy on
erroneous and on correct solutions and their F1, and the mean F1 over subsets; a subset is the ``subset``
field of a row's metadata (ProcessBench: gsm8k, math, olympiadbench, omnimath), else its ``label_source``.

Two thresholds are reported: the configured one (published PRMs flag a step whose score is below 0.5), and
the best one, chosen on a random share of the problems (``choose_share``) and scored on the others only.
Also: step AUROC up to the first error, and where the predicted first errors fall (exact, early, late,
missed, false alarm). Labelled solutions without a score (quarantined by the scorer) are counted, not
dropped silently. Runs in the driver like ``evaluate``; writes ``report.json``, ``report.md`` and a
completion mark with the lineage under ``output``.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
from collections import defaultdict

from pydantic import Field

from mathray.config import StrictModel, code_version, outside_lineage
from mathray.core import first_error
from mathray.core.first_error import NO_ERROR, Case
from mathray.runtime.lease import OutputLease
from mathray.runtime.lineage import InputMismatch, InputNotReady, Lineage, shard_set_fingerprint
from mathray.runtime.storage import ShardStore, join, write_bytes_atomic

DONE_MARK = "_COMPLETE.json"
LABEL_COLUMNS = ["problem_id", "sample_id", "hard_labels", "first_error_step", "label_source", "metadata"]


class StepEvalConfig(StrictModel):
    labels: str = outside_lineage("runs/default/step_labels")  # STEP_LABELS shards: the labelled first errors
    scores: str = outside_lineage("runs/default/step_scores")  # SCORES shards of the same rows (score, step_labels)
    output: str | None = outside_lineage(None)  # report directory; default: <scores>/../first_error
    threshold: float = 0.5                            # a step scoring below it is flagged
    choose_share: float = Field(0.5, gt=0, lt=1)      # share of problems the best threshold is chosen on
    seed: int = 0                                     # which problems those are
    verify_inputs: bool = outside_lineage(True)       # check shards against their commit markers' sha256


def labelled_first_error(row: dict) -> int:
    if row["first_error_step"] is not None:
        return row["first_error_step"]
    return next((i for i, h in enumerate(row["hard_labels"]) if h == 0), NO_ERROR)


def subset_of(row: dict) -> str:
    try:
        meta = json.loads(row["metadata"] or "{}")
    except ValueError:
        meta = {}
    return str(meta["subset"]) if isinstance(meta, dict) and meta.get("subset") else row["label_source"]


def _rows(uri: str, verify: bool, columns: list[str] | None = None) -> list[dict]:
    try:
        return ShardStore(uri, verify=verify).read_all(columns).to_pylist()
    except FileNotFoundError as e:
        raise InputNotReady(str(e)) from e


def build_cases(labels: list[dict], scores: list[dict]) -> tuple[dict[str, list[tuple[str, Case]]], int]:
    """({subset: [(problem_id, case)]}, labelled solutions without a score). Raises ``InputMismatch`` for
    scores of unknown solutions or with another number of steps than the labels."""
    by_key = {(s["problem_id"], s["sample_id"]): s["step_scores"] for s in scores}
    known = {(r["problem_id"], r["sample_id"]) for r in labels}
    if stray := [k for k in by_key if k not in known]:
        raise InputMismatch(f"{len(stray)} scores of solutions that are not in the labels, e.g. {stray[0]}")
    subsets: dict[str, list[tuple[str, Case]]] = defaultdict(list)
    unscored = 0
    for row in labels:
        steps = by_key.get((row["problem_id"], row["sample_id"]))
        if steps is None:
            unscored += 1
            continue
        if len(steps) != len(row["hard_labels"]):
            raise InputMismatch(f"{row['problem_id']}/{row['sample_id']}: {len(steps)} step scores for "
                                f"{len(row['hard_labels'])} labelled steps (scored with another step split?)")
        label = labelled_first_error(row)
        if not NO_ERROR <= label < len(steps):
            raise InputMismatch(f"{row['problem_id']}/{row['sample_id']}: first error {label} outside its "
                                f"{len(steps)} steps")
        subsets[subset_of(row)].append((row["problem_id"], Case(steps, label)))
    return dict(subsets), unscored


def _chosen(problem_id: str, seed: int, share: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def first_error_table(subsets: dict[str, list[Case]], threshold: float) -> dict:
    rep = first_error.subset_report(subsets, threshold)
    rows = {}
    for name, r in rep["subsets"].items():
        cases = subsets[name]
        preds = [first_error.predicted_first_error(c.scores, threshold) for c in cases]
        rows[name] = {"error_accuracy": r.error_accuracy, "correct_accuracy": r.correct_accuracy, "f1": r.f1,
                      "num_error": r.num_error, "num_correct": r.num_correct,
                      "step_auroc": first_error.step_auroc(cases),
                      "offsets": first_error.error_offsets([c.label for c in cases], preds)}
    return {"threshold": threshold, "subsets": rows, "mean_f1": rep["mean_f1"]}


def build_step_report(cfg: StepEvalConfig) -> dict:
    labels = _rows(cfg.labels, cfg.verify_inputs, LABEL_COLUMNS)
    scores = _rows(cfg.scores, cfg.verify_inputs, ["problem_id", "sample_id", "step_scores"])
    subsets, unscored = build_cases(labels, scores)
    if not subsets:
        raise InputNotReady(f"no scored step-labelled solution in {cfg.scores}")
    every = {name: [c for _, c in pairs] for name, pairs in subsets.items()}
    choose = [c for pairs in subsets.values() for p, c in pairs if _chosen(p, cfg.seed, cfg.choose_share)]
    held_out = {name: [c for p, c in pairs if not _chosen(p, cfg.seed, cfg.choose_share)]
                for name, pairs in subsets.items()}
    try:
        best, _ = first_error.best_threshold(choose)
        tuned = first_error_table({n: cs for n, cs in held_out.items() if cs}, best)
    except ValueError as e:    # the chosen share lacks erroneous or correct solutions
        tuned = {"threshold": None, "why_not": str(e)}
    return {"solutions": sum(len(cs) for cs in every.values()), "unscored": unscored,
            "at_threshold": first_error_table(every, cfg.threshold), "best_threshold_held_out": tuned,
            "provenance": {"labels": cfg.labels, "scores": cfg.scores, "code_version": code_version()}}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def table_markdown(table: dict) -> str:
    """One first-error table: per subset both accuracies and F1, step AUROC, where predictions fall."""
    lines = ["| subset | erroneous | correct | acc. erroneous | acc. correct | F1 | step AUROC | exact / early / "
             "late / missed / false alarm |", "|---|---|---|---|---|---|---|---|"]
    for name, r in sorted(table["subsets"].items()):
        o = r["offsets"]
        auroc = "n/a" if r["step_auroc"] is None else f"{r['step_auroc']:.3f}"
        lines.append(f"| {name} | {r['num_error']} | {r['num_correct']} | {_pct(r['error_accuracy'])} | "
                     f"{_pct(r['correct_accuracy'])} | {_pct(r['f1'])} | {auroc} | {o['exact']} / {o['early']} / "
                     f"{o['late']} / {o['missed']} / {o['false_alarm']} |")
    return "\n".join(lines) + f"\n\nMean F1 over subsets: {_pct(table['mean_f1'])}"


def render_markdown(report: dict) -> str:
    lines = [f"# First-error evaluation\n\n{report['solutions']} scored solutions ({report['unscored']} labelled "
             "but not scored).\n"]
    for title, table in (("Configured threshold", report["at_threshold"]),
                         ("Best threshold (chosen on other problems)", report["best_threshold_held_out"])):
        if table.get("threshold") is None:
            lines.append(f"## {title}\n\nnot computed: {table.get('why_not')}\n")
        else:
            lines.append(f"## {title}: {table['threshold']:.4g}\n\n{table_markdown(table)}\n")
    return "\n".join(lines)


def default_output(cfg: StepEvalConfig) -> str:
    return cfg.output or join(posixpath.dirname(cfg.scores.rstrip("/")), "first_error")


class StepEvalSummary:
    def __init__(self, report: dict, files: list[str]):
        self.report, self.files = report, files

    def lines(self) -> list[str]:
        return [render_markdown(self.report), *(f"wrote {uri}" for uri in self.files)]


def run_step_evaluation(cfg: StepEvalConfig) -> StepEvalSummary:
    """Build the report, write it, then the completion mark with the lineage (last), holding the output's lease."""
    out = default_output(cfg)
    with OutputLease(out, "evaluate_steps"):
        inputs = {k: shard_set_fingerprint(ShardStore(u, verify=cfg.verify_inputs))
                  for k, u in (("labels", cfg.labels), ("scores", cfg.scores))}
        lineage = Lineage.of("evaluate_steps", cfg, inputs)
        report = build_step_report(cfg)
        report["provenance"]["lineage"] = lineage.hash
        files = []
        for name, data in (("report.json", json.dumps(report, indent=1)), ("report.md", render_markdown(report))):
            files.append(join(out, name))
            write_bytes_atomic(files[-1], data.encode())
        write_bytes_atomic(join(out, DONE_MARK), json.dumps({"lineage": lineage.record(),
                                                              "code_version": code_version()}).encode())
    return StepEvalSummary(report, files)
