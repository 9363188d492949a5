"""The Math-Shepherd labelling job: SAMPLES shards -> STEP_LABELS shards (+ a Math-Shepherd text export).

The stage ``SHEPHERD`` (``runtime.spec``): rows are validated against SAMPLES, then a pool of
``ShepherdLabeler`` actors (one vLLM engine each, GPU or CPU, grading in processes beside it) labels them
a whole input shard per call by default (``jobs.rollout``: no rounds inside a call); committed shards are
never redone; invalid rows and solutions with no parsable step are quarantined with a reason.
The summary adds the cost of labelling: rollouts and generated tokens per labelled step and per solution,
the prefix-cache hit rate (vLLM metrics), engine steps, the time the engine sat empty waiting on grades,
and the time the mode took.

Output columns: ``schemas.STEP_LABELS`` (``label_source`` = ``shepherd-full`` | ``shepherd-first-error``,
``first_error_step``; ``metadata`` JSON holds the mode, K, completer checkpoint, evaluations, the batch's
engine counters).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

from mathray.config import outside_lineage
from mathray.core import schemas
from mathray.core.shepherd import shepherd_text
from mathray.jobs.rollout import OUTPUT_SCHEMA, LabelingConfig, RolloutLabeler, merge_costs, shard_cost
from mathray.runtime.engine import EngineConfig, pool_kwargs
from mathray.runtime.spec import StageJobConfig, StageSpec, run_spec
from mathray.runtime.stage import StageSummary
from mathray.runtime.storage import ShardStore, join, write_chunks_atomic

KEY = ("problem_id", "sample_id")
EXPORT_NAME = "math_shepherd.jsonl"


class ShepherdConfig(StageJobConfig):
    input: str = outside_lineage("runs/default/samples")  # SAMPLES shards (the sampling job's output)
    output: str = outside_lineage("runs/default/step_labels")
    engine: EngineConfig = EngineConfig()             # the completer (usually the generator itself)
    labeling: LabelingConfig = LabelingConfig()
    export_text: bool = outside_lineage(True)         # also write <output>/math_shepherd.jsonl (ки + +/-)


class ShepherdLabeler(RolloutLabeler):
    """The stage's actor: a ``RolloutLabeler`` built from the job config."""

    def __init__(self, cfg: dict, device: str):
        c = ShepherdConfig.model_validate(cfg)
        super().__init__(c.engine, c.labeling, device=device)


@dataclass
class ShepherdSummary:
    stage: StageSummary
    mode: str
    cost: dict = field(default_factory=dict)
    export_uri: str | None = None

    def lines(self) -> list[str]:
        c, job = self.cost, self.stage.job
        out = self.stage.lines()
        out.append(f"[{job}] mode {self.mode}: elapsed {self.stage.wall_s:.1f}s")
        if c.get("solutions"):
            rate = c["prefix_cache_hit_rate"]
            out += [
                f"[{job}] labelled {c['solutions']} solutions, {c['steps']} steps in {c['engine_steps']} "
                f"engine steps ({c['engine_empty_s']:.1f}s with the engine empty, waiting on grades)",
                f"[{job}] rollouts: {c['rollouts']} ({c['rollouts_per_step']:.2f}/step, "
                f"{c['rollouts_per_solution']:.2f}/solution)",
                f"[{job}] generated tokens: {c['tokens_generated']} ({c['tokens_per_step']:.1f}/step, "
                f"{c['tokens_per_solution']:.1f}/solution) in the labels' completions; {c['engine_tokens']} "
                f"by the engine, with {c['rollouts_dropped']} completions dropped once their prefix was decided",
                f"[{job}] prefix cache: {c['prefix_cache_hits']}/{c['prefix_cache_queries']} tokens hit"
                + (f" ({rate:.1%})" if rate is not None else " (no metrics)"),
            ]
        if self.export_uri:
            out.append(f"[{job}] Math-Shepherd text: {self.export_uri}")
        return out


def shard_stats(table: pa.Table) -> dict:
    """A shard's cost parts (``rollout.shard_cost``), kept in its commit marker: the summary is built from
    the markers, never from the rows."""
    return shard_cost(table)


def labeling_cost(store: ShardStore) -> dict:
    """The cost summary of every committed shard, from the shards' markers (one small record per shard)."""
    return merge_costs(c.stats or {} for c in store.committed().values())


EXPORT_COLUMNS = ["problem_id", "sample_id", "problem", "steps", "hard_labels"]


def _export_lines(store: ShardStore):
    """The Math-Shepherd JSON lines of each committed shard in turn (one shard's rows in memory at a time)."""
    for name in store.committed():
        lines = []
        for r in store.read_shard(name, columns=EXPORT_COLUMNS).to_pylist():
            rec = shepherd_text(r["problem"], r["steps"], r["hard_labels"])
            lines.append(json.dumps({**rec, "problem_id": r["problem_id"], "sample_id": r["sample_id"]},
                                    ensure_ascii=False) + "\n")
        yield "".join(lines).encode()


def export_text(store: ShardStore) -> str:
    """Every committed STEP_LABELS row as one Math-Shepherd JSON line (``input``/``label``), written shard by
    shard."""
    uri = join(store.uri, EXPORT_NAME)
    write_chunks_atomic(uri, _export_lines(store))
    return uri


def shepherd_pool(cfg: ShepherdConfig, device: str) -> dict:
    """The engine pool; each call labels ``labeling.solutions_per_call`` rows, by default whole input shards:
    the labeler keeps the engine full within a call, and a call's end is the only point where it drains.
    On GPU each replica also reserves a CPU per grading process, which runs beside it. On CPU the engine and
    its grading processes share the replica's one CPU reservation: reserving more there would let one
    replica hold every core of a small node (2 on the demo machine), and the stage's own read and commit
    tasks, or a training stage running beside it, would wait for a CPU forever."""
    pool = {**pool_kwargs(cfg.engine, device), "batch_size": cfg.labeling.solutions_per_call}
    if device == "gpu":
        pool["num_cpus"] = pool.get("num_cpus", 1) + cfg.labeling.grading_processes
    return pool


SHEPHERD = StageSpec(
    job="shepherd", input_schema=schemas.SAMPLES, output_schema=OUTPUT_SCHEMA, input_key=KEY, output_key=KEY,
    actor=ShepherdLabeler, pool=shepherd_pool,
    device=lambda cfg: cfg.engine.device, models=lambda cfg: {"completer": cfg.engine.model}, stats=shard_stats)


def run_shepherd(cfg: ShepherdConfig) -> ShepherdSummary:
    """Label every uncommitted input shard (Ray must be up: ``runtime.entry.init_ray``)."""
    stage = run_spec(SHEPHERD, cfg)
    out_store = ShardStore(cfg.output)
    summary = ShepherdSummary(stage=stage, mode=cfg.labeling.mode, cost=labeling_cost(out_store))
    if cfg.export_text and stage.totals.get("shards"):
        summary.export_uri = export_text(out_store)
    return summary
