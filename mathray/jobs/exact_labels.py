"""Exact step labels of toy-task samples: each sample's first wrong step found by checking its lines against the
problem's expression (``core.toy.first_error``), written as STEP_LABELS rows (``label_source: toy-exact``).

The embedded task is the one place where first errors are known exactly, so a PRM's first-error metrics
(``core.first_error``; the ``evaluate`` report's first-error table) can be checked against the truth instead of
against rollout estimates. SAMPLES shards in (with the problems' shard set for the expressions), one
STEP_LABELS row per sample out. A sample whose steps (``steps.split_steps``, as the scorer splits them) are not
its lines, or whose first error lies after its last step (it stops before the answer), has no step to label
and is quarantined with that reason. No model: a small CPU pool.
"""
from __future__ import annotations

import json

import pyarrow as pa

from mathray.config import outside_lineage
from mathray.core import schemas, toy
from mathray.core.steps import step_texts
from mathray.runtime.spec import StageJobConfig, StageSpec, run_spec
from mathray.runtime.stage import is_quarantined, quarantined, rows_to_table, with_source
from mathray.runtime.storage import ShardStore


class ExactLabelConfig(StageJobConfig):
    input: str = outside_lineage("runs/default/samples/test")  # SAMPLES shards of toy-task problems
    output: str = outside_lineage("runs/default/step_labels/test_exact")
    problems: str = outside_lineage("runs/default/problems/test")  # their PROBLEMS shards (expressions in metadata)
    toy: dict = {}                                          # the task's ToyTaskConfig fields (names the error kinds)
    step_format: str = "auto"                               # as the scorer splits steps


def exact_row(row: dict, expression: str, task: toy.ToyTaskConfig, step_format: str) -> tuple[dict | None, str]:
    """(STEP_LABELS row, "") or (None, why the sample has no step to label)."""
    steps = step_texts(row["text"], step_format)
    lines = row["text"].strip().split("\n")
    if [s.strip() for s in steps] != [ln.strip() for ln in lines]:
        return None, f"{len(steps)} steps split from {len(lines)} lines: no line-exact labels"
    index, kind = toy.first_error(task, expression, row["text"])
    if index is not None and index >= len(steps):
        return None, "the first error lies after the last step (the solution stops before its answer)"
    first = len(steps) if index is None else index
    return {"problem_id": row["problem_id"], "sample_id": row["sample_id"], "problem": row["problem"],
            "steps": steps, "hard_labels": [1 if i < first else 0 for i in range(len(steps))], "soft_labels": None,
            "label_source": "toy-exact", "rollouts": None, "tokens_generated": None,
            "metadata": json.dumps({"kind": kind}), "first_error_step": index, "prompt": row.get("prompt")}, ""


class ExactLabeler:
    """Ray Data actor: SAMPLES rows -> STEP_LABELS rows with exact first errors."""

    def __init__(self, cfg: dict, device: str):
        self.cfg = ExactLabelConfig.model_validate(cfg)
        self.task = toy.ToyTaskConfig(**self.cfg.toy)
        rows = ShardStore(self.cfg.problems).read_all(["problem_id", "metadata"]).to_pylist()
        self.expressions = {r["problem_id"]: json.loads(r["metadata"])["expression"] for r in rows}

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = []
        for row in batch.to_pylist():
            if is_quarantined(row):
                out.append(row)
                continue
            expression = self.expressions.get(row["problem_id"])
            labels, why = (exact_row(row, expression, self.task, self.cfg.step_format) if expression
                           else (None, f"no toy expression for problem {row['problem_id']}"))
            out.append(with_source(labels, row, 1) if labels else quarantined(row, why))
        return rows_to_table(out, schemas.STEP_LABELS)


def label_stats(table: pa.Table) -> dict:
    firsts = table.column("first_error_step").to_pylist()
    return {"rows": table.num_rows, "with_error": sum(f is not None for f in firsts)}


def exact_pool(cfg: ExactLabelConfig, device: str) -> dict:
    """One Ray task at a time (the labeler holds the problems' expressions): no process started per stage."""
    from ray.data import TaskPoolStrategy

    return {"batch_size": 256, "num_cpus": 1, "compute": TaskPoolStrategy(size=1)}


EXACT_LABELS = StageSpec(
    job="exact_labels", input_schema=schemas.SAMPLES, output_schema=schemas.STEP_LABELS,
    input_key=("problem_id", "sample_id"), output_key=("problem_id", "sample_id"), actor=ExactLabeler,
    pool=exact_pool,
    device=lambda cfg: "cpu", models=lambda cfg: {}, stats=label_stats,
    shard_sets=lambda cfg: {"problems": cfg.problems})


def run_exact_labels(cfg: ExactLabelConfig):
    """Label every uncommitted input shard (Ray must be up: ``runtime.entry.init_ray``)."""
    return run_spec(EXACT_LABELS, cfg)
