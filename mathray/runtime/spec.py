"""One declaration per Ray Data job: a ``StageSpec`` says what a job reads and writes and which actor does the
work; ``run_spec`` does the rest the same way for every job (stores, input and model checks in the driver,
lineage, the actor pool, ``runtime.stage.run_stage``, totals).

    SAMPLE = StageSpec(job="sample", input_schema=schemas.PROBLEMS, output_schema=schemas.SAMPLES,
                       input_key=("problem_id",), output_key=("problem_id", "sample_id"),
                       actor=SampleEngine, pool=sample_pool, device=lambda c: c.engine.device,
                       models=lambda c: {"generator": c.engine.model}, stats=shard_stats)
    summary = run_spec(SAMPLE, cfg)

The actor is a callable class ``Actor(cfg: dict, device: str)`` whose ``__call__`` maps a pyarrow batch of
validated input rows (plus the stage's bookkeeping columns) to output rows (``stage.with_source`` /
``stage.quarantined``). Every job config derives from ``StageJobConfig``.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Literal

import pyarrow as pa

from mathray.config import StrictModel, outside_lineage
from mathray.runtime.engine import resolve_device
from mathray.runtime.guard import row_guarded
from mathray.runtime.lineage import Lineage, shard_set_fingerprint
from mathray.runtime.models import check_model, model_fingerprint
from mathray.runtime.stage import StageSummary, run_stage, validate_batch
from mathray.runtime.storage import ShardStore


class StageJobConfig(StrictModel):
    """Fields every Ray Data stage job has. Input and output URIs are knobs: what the output depends on is
    the input's content (its fingerprint is part of the lineage), not where it lives."""

    input: str = outside_lineage("")
    output: str = outside_lineage("")
    resume: Literal["auto", "overwrite"] = outside_lineage("auto")  # overwrite: clear an output of another lineage
    max_shards: int | None = outside_lineage(None)        # take at most this many pending shards this run
    verify_inputs: bool = outside_lineage(True)  # check input shards against their commit markers' sha256 when read


@dataclass(frozen=True)
class StageSpec:
    job: str
    input_schema: pa.Schema
    output_schema: pa.Schema
    input_key: tuple[str, ...]
    output_key: tuple[str, ...]
    actor: type
    pool: Callable[[Any, str], dict]            # (cfg, device) -> map_batches kwargs of the actor pool
    device: Callable[[Any], str]                # cfg -> configured device: auto | gpu | cpu
    models: Callable[[Any], dict[str, str]]     # cfg -> {name: model URI}, checked and fingerprinted
    stats: Callable[[pa.Table], dict]           # per committed shard, in the commit task; stored in its marker
    # (cfg, ds) -> ds: map steps only (a shard's rows must stay in one block: runtime.stage)
    # cfg -> {name: URI} of shard sets read besides the input (e.g. few-shot exemplars): in the lineage
    shard_sets: Callable[[Any], dict[str, str]] | None = None
    before_actor: Callable[[Any, Any], Any] | None = None   # e.g. replicate rows
    after_actor: Callable[[Any, Any], Any] | None = None    # e.g. grading tasks
    # cfg -> Lineage, for a job whose output depends on more than its input shards and models (ingest: the
    # source files the input shards were read from); default ``stage_lineage``
    lineage: Callable[[Any], Any] | None = None


def stage_lineage(spec: StageSpec, cfg) -> Lineage:
    """The lineage a run of ``spec`` with ``cfg`` would write: config, input shard set, models. Raises
    ``InputNotReady``/``ModelNotReady`` (in the driver, before any actor starts) when one is not usable."""
    inputs = {"input": shard_set_fingerprint(ShardStore(cfg.input, verify=cfg.verify_inputs))}
    for name, uri in (spec.shard_sets(cfg) if spec.shard_sets else {}).items():
        inputs[name] = shard_set_fingerprint(ShardStore(uri, verify=cfg.verify_inputs))
    for name, uri in spec.models(cfg).items():
        check_model(uri)
        inputs[name] = model_fingerprint(uri)
    return Lineage.of(spec.job, cfg, inputs)


def run_spec(spec: StageSpec, cfg, *, actor: type | None = None,
             stats: Callable[[pa.Table], dict] | None = None) -> StageSummary:
    """Run the job ``spec`` with ``cfg`` (Ray must be up: ``runtime.entry.init_ray``). ``actor``/``stats``
    replace the spec's (tests and benchmarks wrap them)."""
    lineage = spec.lineage(cfg) if spec.lineage else stage_lineage(spec, cfg)
    device = resolve_device(spec.device(cfg))
    actor_cls = row_guarded(actor or spec.actor, spec.output_schema)   # a row its code raises on: quarantined

    def transform(ds):
        ds = ds.map_batches(validate_batch, batch_format="pyarrow", fn_kwargs={"schema": spec.input_schema})
        if spec.before_actor:
            ds = spec.before_actor(cfg, ds)
        ds = map_actor(ds, actor_cls, spec.pool(cfg, device), {"cfg": cfg.model_dump(mode="json"), "device": device})
        return spec.after_actor(cfg, ds) if spec.after_actor else ds

    output, inputs = ShardStore(cfg.output), ShardStore(cfg.input, verify=cfg.verify_inputs)
    summary = run_stage(job=spec.job, cfg=cfg, input_store=inputs, output_store=output,
                        input_key=list(spec.input_key), output_key=list(spec.output_key),
                        output_schema=spec.output_schema, transform=transform, lineage=lineage,
                        resume=cfg.resume, shard_stats=stats or spec.stats, max_shards=cfg.max_shards)
    summary.totals = totals(output)
    return summary


def map_actor(ds, actor_cls: type, pool: dict, args: dict):
    """``ds.map_batches`` through the stage's actor class: in an actor pool, or, when the pool's ``compute`` is
    a ``TaskPoolStrategy`` (a stage whose actor holds nothing costly), in Ray tasks, whose worker processes
    Ray keeps and reuses: no process is started for the stage."""
    from ray.data import TaskPoolStrategy

    if not isinstance(pool.get("compute"), TaskPoolStrategy):
        return ds.map_batches(actor_cls, batch_format="pyarrow", **pool, fn_constructor_kwargs=args)
    return ds.map_batches(call_in_task, batch_format="pyarrow", **pool,
                          fn_kwargs={"actor_cls": actor_cls, "args": args, "run": uuid.uuid4().hex})


_TASK_INSTANCE: dict[str, Any] = {}   # this worker process's instance of the running stage's actor class


def call_in_task(batch: pa.Table, actor_cls: type, args: dict, run: str) -> pa.Table:
    """One batch through ``actor_cls(**args)``, built once per worker process and stage run (``run``): a
    re-run after a failure builds afresh, as a restarted actor would."""
    if run not in _TASK_INSTANCE:
        _TASK_INSTANCE.clear()
        _TASK_INSTANCE[run] = actor_cls(**args)
    return _TASK_INSTANCE[run](batch)


def totals(store) -> dict:
    """Sums of the numeric per-shard stats over every committed shard (this run's and earlier ones)."""
    out: dict = {"shards": 0, "rows": 0, "quarantined": 0}
    for rec in store.committed().values():
        out["shards"] += 1
        out["rows"] += rec.rows
        out["quarantined"] += rec.quarantined_rows
        for k, v in (rec.stats or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
    return out
