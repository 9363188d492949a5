"""Resumable sharded stages on Ray Data: input shards -> transform (actor pools) -> committed output shards.

One Ray Data pipeline runs over every input shard not yet committed in the output, so engine actors start
once per job, not per shard. Every row carries its origin (``_src_shard``, ``_src_row``: its input shard
and its position there); output rows also say how many outputs their input row produced (``_n_out``).
Output shards are written where they are computed (``runtime.commit``): a commit step after the transform
checks that every input row of a shard is accounted for, de-duplicates by the output key, writes the shard
and its commit marker, and sends the driver one small summary row. The driver only reads commit markers and
those summaries, so its memory does not grow with the rows a stage writes. A crash loses only uncommitted
shards; the re-run skips committed ones (Ray Data's own checkpointing did not resume partial progress in
our tests).

Shard size: an input shard is the unit of commit and of retry. ``ingest.shard_rows`` sets it for the whole
pipeline (a sample shard then holds the N samples of each of its problems). Larger shards mean fewer files
and markers and, for an actor that takes whole shards (labeling), larger engine calls; smaller shards mean
earlier and finer commits, less work redone after a crash, and less memory per task (a task holds a shard's
inputs and outputs until its commit). Rows per actor call are set separately (``engine.batch_size`` for
sampling, ``labeling.solutions_per_call``): a task holds whole shards and calls its actor once per batch.

A transform's contract (see ``with_source``/``quarantined``/``rows_to_table``): for every input row it
emits at least one row; quarantined rows have ``_quarantine`` set to the reason and pass through later
transforms unchanged. It may add ``map_batches``/``map`` steps (any ``batch_size``, tasks or actor pools),
never steps that move rows between blocks (``repartition``, shuffles): a shard must reach the commit step
in one block.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import pyarrow as pa

from mathray.config import code_version, resolved_config
from mathray.core import schemas
from mathray.runtime.env import storage_retry_s
from mathray.runtime.errors import StorageUnavailable
from mathray.runtime.lease import holding_output_lease
from mathray.runtime.commit import (ALREADY_COMMITTED, COMMITTED, N_OUT, QUARANTINE, RAW, SRC_ROW, SRC_SHARD,
                                    WORKER, CommitTarget, commit_blocks, commit_part, read_shards)
from mathray.runtime.lineage import Lineage, LineageMismatch, mismatch_message
from mathray.runtime.storage import ShardStore

log = logging.getLogger(__name__)

META_FIELDS = [
    pa.field(SRC_SHARD, pa.string()), pa.field(SRC_ROW, pa.int64()), pa.field(N_OUT, pa.int32()),
    pa.field(QUARANTINE, pa.string()), pa.field(RAW, pa.string()), pa.field(WORKER, pa.string()),
]


def stage_schema(output_schema: pa.Schema) -> pa.Schema:
    """Output columns (all nullable, since quarantined rows leave them empty) plus the bookkeeping columns."""
    return pa.schema([f.with_nullable(True) for f in output_schema] + META_FIELDS)


_worker_id: str | None = None


def worker_id() -> str:
    """This process's Ray actor id (a pool replica), else ``pid@host``."""
    global _worker_id
    if _worker_id is None:
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
    out[SRC_SHARD], out[SRC_ROW], out[N_OUT] = src[SRC_SHARD], src[SRC_ROW], n_out
    out[QUARANTINE], out[WORKER] = None, worker_id()
    return out


def quarantined(src: dict, reason: str) -> dict:
    """The single output row of an input row refused with ``reason``."""
    raw = {k: v for k, v in src.items() if not k.startswith("_")}
    return {SRC_SHARD: src[SRC_SHARD], SRC_ROW: src[SRC_ROW], N_OUT: 1, QUARANTINE: reason,
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
    commits: list = field(default_factory=list)  # this run's commits: {shard, at, rows, stats}, in arrival order
    input_rows: int = 0              # rows of every input shard
    input_rows_done: int = 0         # rows of the input shards whose output is committed (earlier runs too)
    rows_before: int = 0             # output rows committed by earlier runs

    @classmethod
    def before_run(cls, job: str, output_uri: str, inputs: dict, done: dict) -> "StageSummary":
        """The counts before this run commits anything: ``inputs`` and ``done`` map shard names to commits."""
        return cls(job=job, output_uri=output_uri, shards_total=len(inputs),
                   shards_skipped=sum(1 for n in inputs if n in done),
                   input_rows=sum(c.rows for c in inputs.values()),
                   input_rows_done=sum(c.rows for n, c in inputs.items() if n in done),
                   rows_before=sum(c.rows for n, c in done.items() if n in inputs))

    def record_commit(self, row: dict, input_rows: int) -> None:
        """Count one committed output shard (a commit task's summary row) whose input shard has ``input_rows``."""
        self.shards_committed += 1
        self.rows_written += row["rows"]
        self.input_rows_done += input_rows
        self.rows_quarantined += row["quarantined"]
        for reason, n in json.loads(row["reasons"]).items():
            self.quarantine_reasons[reason] = self.quarantine_reasons.get(reason, 0) + n
        self.commits.append({"shard": row["shard"], "at": row["at"], "rows": row["rows"],
                             "stats": json.loads(row["stats"])})

    def record_late(self, commit, input_rows: int) -> None:
        """Count a shard committed by a task attempt whose summary row was lost (its retry found the marker)."""
        self.shards_committed += 1
        self.rows_written += commit.rows
        self.rows_quarantined += commit.quarantined_rows
        self.input_rows_done += input_rows

    def progress(self) -> str:
        """Output rows committed and how far through its input the stage is (kept current while it runs)."""
        return f"{self.rows_before + self.rows_written} rows ({self.input_rows_done}/{self.input_rows} input rows)"

    def lines(self) -> list[str]:
        out = [f"[{self.job}] output: {self.output_uri}",
               f"[{self.job}] shards: {self.shards_total} total, {self.shards_skipped} already committed, "
               f"{self.shards_committed} committed now",
               f"[{self.job}] rows written: {self.rows_written}, quarantined: {self.rows_quarantined}",
               f"[{self.job}] elapsed: {self.wall_s:.1f}s"]
        for reason, n in sorted(self.quarantine_reasons.items(), key=lambda kv: -kv[1])[:10]:
            out.append(f"[{self.job}]   quarantined {n}: {reason}")
        return out


class StageIncomplete(RuntimeError):
    pass


# The summaries of the stages running in this process, by output URI, so that a caller in another thread (the
# pipeline's stage table) can show their progress; updated as commit summaries reach the driver, no I/O.
_running: dict[str, StageSummary] = {}


def running_stage(output_uri: str) -> StageSummary | None:
    """The live summary of the stage writing ``output_uri`` in this process; None when none is running."""
    return _running.get(output_uri.rstrip("/"))


def _listed_while_running(run: Callable) -> Callable:
    """``run`` (which adds its summary to ``_running``) with the summary taken out when it ends, however."""
    @functools.wraps(run)
    def wrapper(*, output_store: ShardStore, **kwargs):
        try:
            return run(output_store=output_store, **kwargs)
        finally:
            _running.pop(output_store.uri, None)
    return wrapper


def _storage_cause(exc: BaseException):
    """The ``StorageUnavailable`` behind a failed task (workers read and commit shards, so an outage reaches the
    driver wrapped in Ray's task errors), so the job ends with its message naming the endpoint; else None."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, StorageUnavailable):
            return e
        # a worker's exception reaches the driver pickled without its __cause__; its traceback text remains
        found = re.search(r"StorageUnavailable: (.+)", f"{getattr(e, 'traceback_str', '')}\n{e}")
        if found:
            return StorageUnavailable(found.group(1).strip())
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return None


@holding_output_lease("output_store")   # one writer per output: taken before any write, released at the end
@_listed_while_running
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
    """Run ``transform(ds) -> ds`` over the uncommitted input shards; workers commit outputs shard by shard.

    Committed shards of another ``lineage`` refuse the run (``LineageMismatch``) unless ``resume`` is
    ``overwrite``, which clears the output first. ``max_shards`` limits how many pending shards this run
    takes (a large input in several sittings; a later run continues where this one stopped).
    ``input_key`` names the input's key columns; it documents the stage's shape and is not used here:
    completeness is checked by input row position, so input rows need not have unique keys. ``shard_stats`` runs in the
    commit tasks, so it must be picklable and must not rely on driver state.
    """
    t0 = time.time()
    chash, version = lineage.hash, code_version()
    check_lineage(output_store, lineage, resume)
    output_store.write_run_info(resolved_config(cfg), chash, version, job, lineage.record())
    output_store.clear_uncommitted()
    inputs, done = input_store.committed(), output_store.committed()
    summary = StageSummary.before_run(job, output_store.uri, inputs, done)
    _running[output_store.uri] = summary
    pending = [n for n in inputs if n not in done][: max_shards or None]
    target = CommitTarget(input_uri=input_store.uri, output_uri=output_store.uri,
                          input_rows={n: inputs[n].rows for n in pending}, output_key=tuple(output_key),
                          output_schema=output_schema, lineage=chash, code_version=version,
                          stats=shard_stats or (lambda t: {}), retry_s=storage_retry_s())
    commits = _CommitLog(job, summary, inputs)
    # empty input shards never reach a map task (Ray Data calls no UDF on an empty block): commit them here
    empty_rows = rows_to_table([], output_schema)
    for name in [n for n in pending if inputs[n].rows == 0]:
        commits.record(commit_part(output_store, name, empty_rows, target))
    work = [n for n in pending if inputs[n].rows > 0]
    if work:
        for row in _commit_rows(work, input_store, transform, target):
            commits.record(row)
    committed = output_store.committed()
    reported = {c["shard"] for c in summary.commits}
    for name in [n for n in pending if n in committed and n not in reported]:
        summary.record_late(committed[name], inputs[name].rows)
    missing = [n for n in pending if n not in committed]
    if missing:
        detail = {n: commits.problems.get(n, "no output reached the commit step") for n in missing[:10]}
        raise StageIncomplete(f"{len(missing)} shards left uncommitted: {detail}")
    complete = len(committed) >= len(inputs)
    output_store.write_manifest({"job": job, "lineage": lineage.record(), "code_version": version}, complete)
    summary.complete = complete
    summary.wall_s = time.time() - t0
    return summary


class _CommitLog:
    """Counts the commit tasks' summary rows into the stage summary as they arrive, and keeps the last problem
    reported for each shard that is not committed (the message if it stays uncommitted)."""

    def __init__(self, job: str, summary: StageSummary, inputs: dict):
        self.job, self.summary, self.inputs = job, summary, inputs
        self.problems: dict[str, str] = {}

    def record(self, row: dict) -> None:
        name = row["shard"]
        if row["status"] == COMMITTED:
            self.summary.record_commit(row, self.inputs[name].rows)
            self.problems.pop(name, None)
            log.info("[%s] committed %s: %d rows, %d quarantined", self.job, name, row["rows"], row["quarantined"])
        elif row["status"] != ALREADY_COMMITTED:
            self.problems.setdefault(name, row["detail"])


def _commit_rows(work: list[str], input_store: ShardStore, transform: Callable, target: CommitTarget):
    """Ray Data over the input shards ``work``: read, ``transform``, commit; yields each commit task's summary
    row as it arrives. A task's output is one block (``target_max_block_size = None``), so a shard's rows reach
    its commit step together."""
    import ray
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved, ctx.target_max_block_size = ctx.target_max_block_size, None
    try:
        ds = ray.data.from_items([{"shard": n} for n in work], override_num_blocks=len(work))
        ds = ds.map_batches(read_shards, batch_format="pyarrow", fn_kwargs={"uri": input_store.uri,
                                                                              "verify": input_store.verify,
                                                                              "retry_s": storage_retry_s()})
        ds = transform(ds)
        ds = ds.map_batches(commit_blocks, batch_format="pyarrow", fn_kwargs={"target": target})
        try:
            for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                yield from batch.to_pylist()
        except Exception as e:  # noqa: BLE001 - re-raised, unwrapped when storage is the cause
            raise _storage_cause(e) or e
    finally:
        ctx.target_max_block_size = saved


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
