"""Resumable sharded stages on Ray Data: input shards -> transform (actor pools) -> committed output shards.

One Ray Data pipeline runs over every input shard not yet committed in the output, so engine actors start
once per job, not per shard. Every row carries its origin (``_src_shard``, ``_src_key``); output rows also
say how many outputs their input row produced (``_n_out``). The driver streams results, de-duplicates them
by the output key (a retried task cannot duplicate rows), and commits an output shard as soon as every input
row of its input shard is accounted for (none lost). A crash loses only uncommitted shards; the re-run skips
committed ones (Ray Data's own checkpointing did not resume partial progress in our tests).

A transform's contract (see ``with_source``/``quarantined``/``rows_to_table``): for every input row it
emits at least one row; quarantined rows have ``_quarantine`` set to the reason and pass through later
transforms unchanged.
"""
from __future__ import annotations

import json
import logging
import posixpath
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import pyarrow as pa

from mathray.config import code_version, resolved_config
from mathray.core import schemas
from mathray.runtime.lease import holding_output_lease
from mathray.runtime.lineage import Lineage, LineageMismatch, mismatch_message
from mathray.runtime.storage import ShardStore

log = logging.getLogger(__name__)

SRC_SHARD, SRC_KEY, N_OUT, QUARANTINE, RAW = "_src_shard", "_src_key", "_n_out", "_quarantine", "_raw"
WORKER = "_worker"   # the Ray actor (or process) that computed the row: which replicas did the work
META_FIELDS = [
    pa.field(SRC_SHARD, pa.string()), pa.field(SRC_KEY, pa.string()), pa.field(N_OUT, pa.int32()),
    pa.field(QUARANTINE, pa.string()), pa.field(RAW, pa.string()), pa.field(WORKER, pa.string()),
]


def key_of(row: dict, columns: list[str]) -> str:
    return json.dumps([row.get(c) for c in columns], ensure_ascii=False)


def stage_schema(output_schema: pa.Schema) -> pa.Schema:
    """Output columns (all nullable, since quarantined rows leave them empty) plus the bookkeeping columns."""
    return pa.schema([f.with_nullable(True) for f in output_schema] + META_FIELDS)


_worker_id: str | None = None


def worker_id() -> str:
    """This process's Ray actor id (a pool replica), else ``pid@host``."""
    global _worker_id
    if _worker_id is None:
        import os
        import socket

        actor = None
        try:
            import ray

            actor = ray.get_runtime_context().get_actor_id() if ray.is_initialized() else None
        except Exception:  # noqa: BLE001 - outside a Ray worker
            actor = None
        _worker_id = actor or f"{os.getpid()}@{socket.gethostname()}"
    return _worker_id


def with_source(out: dict, src: dict, n_out: int) -> dict:
    """Tag an output row with the origin of ``src`` (an input row of the transform) and its worker."""
    out[SRC_SHARD], out[SRC_KEY], out[N_OUT] = src[SRC_SHARD], src[SRC_KEY], n_out
    out[QUARANTINE], out[WORKER] = None, worker_id()
    return out


def quarantined(src: dict, reason: str) -> dict:
    """The single output row of an input row refused with ``reason``."""
    raw = {k: v for k, v in src.items() if not k.startswith("_")}
    return {SRC_SHARD: src[SRC_SHARD], SRC_KEY: src[SRC_KEY], N_OUT: 1, QUARANTINE: reason,
            RAW: schemas.raw_json(raw)}


def is_quarantined(row: dict) -> bool:
    return row.get(QUARANTINE) is not None


def rows_to_table(rows: list[dict], output_schema: pa.Schema) -> pa.Table:
    """Rows (outputs and quarantined) as one table of ``stage_schema(output_schema)``."""
    schema = stage_schema(output_schema)
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)


def decoded_rows(table: pa.Table) -> tuple[list[dict], list[str | None]]:
    """``table.to_pylist()`` that survives string cells holding invalid UTF-8 (parquet does not check them,
    and one such cell makes ``to_pylist`` raise for the whole batch): those cells are decoded with
    replacement characters and their row gets a reason; other rows get None."""
    bad_cells: dict[int, list[str]] = defaultdict(list)
    for name in table.column_names:
        col = table.column(name)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        try:
            col.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        as_bytes = pa.large_binary() if pa.types.is_large_string(col.type) else pa.binary()
        raws = [raw for chunk in col.chunks for raw in chunk.view(as_bytes).to_pylist()]
        fixed = []
        for i, raw in enumerate(raws):
            if raw is None:
                fixed.append(None)
                continue
            try:
                fixed.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                fixed.append(raw.decode("utf-8", "replace"))
                bad_cells[i].append(name)
        table = table.set_column(table.column_names.index(name), name, pa.array(fixed, col.type))
    reasons = [f"field {bad_cells[i][0]!r}: not valid UTF-8 text" if i in bad_cells else None
               for i in range(table.num_rows)]
    return table.to_pylist(), reasons


def validate_batch(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    """Mark rows that do not fit ``schema`` (or hold non-UTF-8 text) as quarantined (a map_batches step;
    keeps all columns)."""
    rows, text_problems = decoded_rows(batch)
    reasons = [None if is_quarantined(r) else (bad or schemas.row_problem(r, schema))
               for r, bad in zip(rows, text_problems)]
    for r, reason in zip(rows, reasons):
        if reason is not None:
            r[QUARANTINE], r[N_OUT] = reason, 1
            r[RAW] = schemas.raw_json({k: v for k, v in r.items() if not k.startswith("_")})
    cols = {name: [r.get(name) for r in rows] for name in batch.column_names}
    for name, typ in ((QUARANTINE, pa.string()), (RAW, pa.string()), (N_OUT, pa.int32())):
        cols[name] = pa.array([r.get(name) for r in rows], typ)
    return pa.table(cols)


@dataclass
class StageSummary:
    job: str
    output_uri: str
    shards_total: int = 0
    shards_skipped: int = 0          # already committed before this run
    shards_committed: int = 0        # committed by this run
    rows_written: int = 0
    rows_quarantined: int = 0
    wall_s: float = 0.0
    complete: bool = False           # every input shard has its output shard
    quarantine_reasons: dict = field(default_factory=dict)
    totals: dict = field(default_factory=dict)   # per-shard stats summed over all committed shards

    def lines(self) -> list[str]:
        out = [f"[{self.job}] output: {self.output_uri}",
               f"[{self.job}] shards: {self.shards_total} total, {self.shards_skipped} already committed, "
               f"{self.shards_committed} committed now",
               f"[{self.job}] rows written: {self.rows_written}, quarantined: {self.rows_quarantined}",
               f"[{self.job}] wall time: {self.wall_s:.1f}s"]
        for reason, n in sorted(self.quarantine_reasons.items(), key=lambda kv: -kv[1])[:10]:
            out.append(f"[{self.job}]   quarantined {n}: {reason}")
        return out


class StageIncomplete(RuntimeError):
    pass


class _ShardBuffer:
    def __init__(self, expected_keys: set[str]):
        self.expected = expected_keys
        self.rows: dict[str, dict] = {}
        self.quarantine: dict[str, dict] = {}
        self.n_out: dict[str, int] = {}
        self.workers: set[str] = set()

    def add(self, row: dict, output_key: list[str]) -> None:
        src = row[SRC_KEY]
        if src not in self.expected:
            raise StageIncomplete(f"row from unknown input key {src} in shard {row[SRC_SHARD]}")
        self.n_out[src] = row[N_OUT]
        if row.get(WORKER):
            self.workers.add(row[WORKER])
        if is_quarantined(row):
            self.quarantine[src] = row
        else:
            self.rows[key_of(row, output_key)] = row

    def complete(self) -> bool:
        return len(self.n_out) == len(self.expected) and sum(self.n_out.values()) == len(self.rows) + len(
            self.quarantine)


def _tag_source(batch: pa.Table, input_key: list[str]) -> pa.Table:
    names = [posixpath.basename(p).removesuffix(".parquet") for p in batch.column("path").to_pylist()]
    keys = [key_of(r, input_key) for r in decoded_rows(batch.select(input_key))[0]]
    batch = batch.drop_columns(["path"])
    return batch.append_column(SRC_SHARD, pa.array(names, pa.string())).append_column(
        SRC_KEY, pa.array(keys, pa.string()))


@holding_output_lease("output_store")   # one writer per output: taken before any write, released at the end
def run_stage(
    *,
    job: str,
    cfg,
    input_store: ShardStore,
    output_store: ShardStore,
    input_key: list[str],
    output_key: list[str],
    output_schema: pa.Schema,
    transform: Callable,
    lineage: Lineage,
    resume: str = "auto",
    shard_stats: Callable[[pa.Table], dict] | None = None,
    max_shards: int | None = None,
) -> StageSummary:
    """Run ``transform(ds) -> ds`` over the uncommitted input shards and commit outputs shard by shard.

    Committed shards of another ``lineage`` refuse the run (``LineageMismatch``) unless ``resume`` is
    ``overwrite``, which clears the output first. ``max_shards`` limits how many pending shards this run
    takes (a large input in several sittings; a later run continues where this one stopped).
    """
    import ray

    t0 = time.time()
    chash, version = lineage.hash, code_version()
    check_lineage(output_store, lineage, resume)
    output_store.write_run_info(resolved_config(cfg), chash, version, job, lineage.record())
    output_store.clear_uncommitted()
    inputs, done = input_store.committed(), output_store.committed()
    summary = StageSummary(job=job, output_uri=output_store.uri, shards_total=len(inputs),
                           shards_skipped=sum(1 for n in inputs if n in done))
    pending = [n for n in inputs if n not in done][: max_shards or None]
    expected = {
        n: {key_of(r, input_key)   # read_shard checks the bytes against the marker (ShardStore.verify)
            for r in decoded_rows(input_store.read_shard(n, columns=input_key, commit=inputs[n]))[0]}
        for n in pending
    }
    stats_fn = shard_stats or (lambda t: {})

    def commit(name: str, buf: _ShardBuffer | None) -> None:
        rows = sorted(buf.rows.values(), key=lambda r: [r.get(c) for c in output_key]) if buf else []
        table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in output_schema} for r in rows],
                                     schema=output_schema)
        q_rows = [schemas.quarantine_row(f"{input_store.uri}/{name}", None, r[QUARANTINE], r.get(RAW))
                  for r in (buf.quarantine.values() if buf else [])]
        for r in q_rows:
            summary.quarantine_reasons[r["reason"]] = summary.quarantine_reasons.get(r["reason"], 0) + 1
        qtable = schemas.to_table(q_rows, schemas.QUARANTINE)
        stats = {**stats_fn(table), "workers": sorted(buf.workers) if buf else []}
        output_store.commit_shard(name, table, qtable, config_hash=chash, lineage=chash,
                                  code_version=version, stats=stats)
        summary.shards_committed += 1
        summary.rows_written += table.num_rows
        summary.rows_quarantined += qtable.num_rows
        log.info("[%s] committed %s: %d rows, %d quarantined", job, name, table.num_rows, qtable.num_rows)

    for name in [n for n in pending if not expected[n]]:  # empty input shards: nothing to compute
        commit(name, None)
    pending = [n for n in pending if expected[n]]
    if pending:
        # At least one block per input shard, so a map task never holds several shards' rows until it
        # ends: Ray Data's V1 parquet read gives each file its own block (override_num_blocks). The V2
        # reader (ListFiles -> ReadFiles, default in Ray 2.60) packs small files together; with it, all
        # shards of a run were seen to reach the driver in one burst at the end (no commit mid-run).
        from ray.data import DataContext

        ctx = DataContext.get_current()
        saved_v2, ctx.use_datasource_v2 = ctx.use_datasource_v2, False
        try:
            ds = ray.data.read_parquet([input_store.shard_path(n) for n in pending], filesystem=input_store.fs,
                                       include_paths=True, override_num_blocks=len(pending))
            ds = ds.map_batches(_tag_source, batch_format="pyarrow", fn_kwargs={"input_key": input_key})
            ds = transform(ds)
            buffers: dict[str, _ShardBuffer] = {}
            finished: set[str] = set()
            for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                touched = set()
                for row in batch.to_pylist():
                    name = row[SRC_SHARD]
                    if name not in expected:
                        raise StageIncomplete(f"output row names unknown shard {name!r}")
                    if name in finished:
                        continue  # a late duplicate (retried task) of a shard committed in this run
                    if name not in buffers:
                        buffers[name] = _ShardBuffer(expected[name])
                    buffers[name].add(row, output_key)
                    touched.add(name)
                for name in touched:
                    if buffers[name].complete():
                        commit(name, buffers.pop(name))
                        finished.add(name)
        finally:
            ctx.use_datasource_v2 = saved_v2
        if buffers:
            missing = {n: len(b.expected) - len(b.n_out) for n, b in buffers.items()}
            raise StageIncomplete(f"shards left incomplete (input rows without output): {missing}")
    complete = len(output_store.committed()) >= len(inputs)
    output_store.write_manifest({"job": job, "lineage": lineage.record(), "code_version": version}, complete)
    summary.complete = complete
    summary.wall_s = time.time() - t0
    return summary


def check_lineage(store: ShardStore, lineage: Lineage, resume: str) -> None:
    """Refuse to add to an output that holds committed shards of another lineage; ``resume="overwrite"``
    clears the output instead."""
    if resume == "overwrite":
        store.clear()
        return
    foreign = {c.lineage for c in store.committed().values() if c.lineage != lineage.hash}
    if foreign:
        info = store.read_run_info() or {}
        rec = info.get("lineage")
        old = Lineage.from_record(rec) if rec and rec.get("hash") in foreign else None
        raise LineageMismatch(mismatch_message(store.uri, old, lineage, sorted(foreign)[0]))
