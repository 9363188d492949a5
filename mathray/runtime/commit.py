"""The worker side of a stage: input shards read as whole blocks, output shards committed where they are computed.

The unit of work and of commit is an input shard; its output shard has the same name. A shard's rows stay in
one Ray Data block from the read to the commit step, so the commit step sees all of them at once:
- ``run_stage`` makes a dataset of one item per pending shard, one block per item, and ``read_shards`` (a map
  task) turns each item into the shard's rows, tagged with their origin (``_src_shard``, ``_src_row``);
- Ray Data hands a map task whole input bundles: its bundler adds bundles until a task has ``batch_size``
  rows and never splits one (several small shards may share a task: ``commit_blocks`` commits each);
- the stage runs with ``DataContext.target_max_block_size = None``, under which a task's output is one block
  (otherwise Ray Data cuts task outputs into blocks of at most that size, which could split a shard).

``commit_blocks`` (a map task after the transform) checks that every input row of a shard is accounted for
(each ``_src_row`` 0..n-1 has exactly ``_n_out`` rows), de-duplicates by the output key, writes the shard,
its quarantine rows and its commit marker through ``ShardStore.commit_shard`` (marker last), and returns one
small summary row per shard: the only thing the driver receives. Rows with ``_skip`` set stand for input rows
that give no output (counted in the marker's stats, not written).

Exactly once under retries: a retried task recomputes a whole shard and its commit step finds the marker
of an earlier attempt and writes nothing ("already-committed"); a block that does not hold a whole shard is
never written ("incomplete"; the run then fails naming the shard). Two attempts committing the same shard
at the same moment (possible only if Ray re-executes a finished task while its first output is still
being committed) both write the same name: the later data/marker pair wins and, since the stages are
deterministic, both attempts wrote the same rows; the marker's sha256 is that of the data written with it
unless the two writes interleave.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from mathray.core import schemas
from mathray.runtime.storage import ShardStore

SRC_SHARD, SRC_ROW, N_OUT, QUARANTINE, RAW = "_src_shard", "_src_row", "_n_out", "_quarantine", "_raw"
WORKER = "_worker"   # the Ray actor (or process) that computed the row: which replicas did the work
# optional column: the input row gives no output row, for this reason (e.g. a record its data format leaves out);
# such rows are counted per reason in the shard's stats (``skipped``), neither written nor quarantined
SKIP = "_skip"
# optional columns: where a quarantined row came from when that is not its input shard's row (ingest: the source
# file and the record's position in it), as its quarantine row's ``source`` and ``row_index``
ORIGIN, ORIGIN_ROW = "_origin", "_origin_row"

COMMITTED, ALREADY_COMMITTED, INCOMPLETE = "committed", "already-committed", "incomplete"
SUMMARY_SCHEMA = pa.schema([
    pa.field("shard", pa.string()), pa.field("status", pa.string()), pa.field("rows", pa.int64()),
    pa.field("quarantined", pa.int64()), pa.field("reasons", pa.string()),   # JSON {reason: count}
    pa.field("stats", pa.string()), pa.field("at", pa.float64()),              # JSON stats; commit time
    pa.field("detail", pa.string()),
])


@dataclass(frozen=True)
class CommitTarget:
    """What a commit step needs to know (sent to every commit task, so it stays small: one int per shard)."""

    input_uri: str
    output_uri: str
    input_rows: dict[str, int]          # pending input shard -> its row count (from its commit marker)
    output_key: tuple[str, ...]
    output_schema: pa.Schema
    lineage: str                        # the run's lineage hash, recorded in every marker
    code_version: str
    stats: Callable[[pa.Table], dict]   # per committed shard, stored in its marker
    retry_s: float | None = None        # the driver's storage retry window (env.storage_retry_s)


def use_retry_window(retry_s: float | None) -> None:
    """Give this worker process the driver's storage retry window (workers may have started before the job
    set it, e.g. in a long-lived cluster)."""
    if retry_s is not None:
        os.environ["MATHRAY_STORAGE_RETRY_S"] = str(retry_s)


def read_shards(batch: pa.Table, uri: str, verify: bool = True, retry_s: float | None = None) -> pa.Table:
    """Map task: items ``{"shard": name}`` -> the rows of those input shards, tagged with their origin.
    With ``verify`` each shard's bytes are checked against its commit marker (``ShardStore.verify``)."""
    use_retry_window(retry_s)
    store = ShardStore(uri, verify=verify)
    tables = []
    for name in batch.column("shard").to_pylist():
        table = store.read_shard(name)
        n = table.num_rows
        tables.append(table.append_column(SRC_SHARD, pa.repeat(pa.scalar(name, pa.string()), n))
                      .append_column(SRC_ROW, pa.array(range(n), pa.int64())))
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def commit_blocks(block: pa.Table, target: CommitTarget) -> pa.Table:
    """Map task after the transform: commit every shard in ``block``; one summary row per shard."""
    use_retry_window(target.retry_s)
    store = ShardStore(target.output_uri)
    names = pc.unique(block.column(SRC_SHARD)).to_pylist()
    rows = [commit_part(store, name, block if len(names) == 1 else
                        block.filter(pc.equal(block.column(SRC_SHARD), name)), target) for name in names]
    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)


def _summary(name: str, status: str, detail: str = "", **kw) -> dict:
    return {"shard": name, "status": status, "rows": 0, "quarantined": 0, "reasons": "{}", "stats": "{}",
            "at": time.time(), "detail": detail, **kw}


def completeness_problem(part: pa.Table, n_in: int) -> str | None:
    """None when every input row 0..n_in-1 of the shard has exactly its ``_n_out`` rows in ``part``."""
    counts = part.select([SRC_ROW, N_OUT]).group_by([SRC_ROW], use_threads=False).aggregate(
        [([], "count_all"), (N_OUT, "min"), (N_OUT, "max")])
    if counts.num_rows != n_in:
        return f"{counts.num_rows} of {n_in} input rows have output rows in this block"
    if n_in and (pc.min(counts.column(SRC_ROW)).as_py() < 0 or pc.max(counts.column(SRC_ROW)).as_py() >= n_in):
        return f"input row numbers outside 0..{n_in - 1}"
    n_min, n_max = counts.column(f"{N_OUT}_min"), counts.column(f"{N_OUT}_max")
    wrong = pc.sum(pc.or_(pc.not_equal(n_min, n_max), pc.not_equal(counts.column("count_all"),
                                                                      pc.cast(n_max, pa.int64())))).as_py()
    if wrong:
        return f"{wrong} input rows have a different number of output rows than their {N_OUT}"
    return None


def unique_by(table: pa.Table, key: list[str]) -> pa.Table:
    """The first row of each output key (a transform that emitted a key twice), sorted by the key."""
    if table.num_rows:
        indexed = table.select(key).append_column("_i", pa.array(range(table.num_rows), pa.int64()))
        first = indexed.group_by(key, use_threads=False).aggregate([("_i", "min")])
        if first.num_rows < table.num_rows:
            keep = first.column("_i_min")
            table = table.take(pc.take(keep, pc.sort_indices(keep)))
    return table.sort_by([(k, "ascending") for k in key])


def as_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns of ``schema``, cast where a type differs (nullability is not re-checked)."""
    cols = [table.column(f.name) if table.column(f.name).type == f.type else table.column(f.name).cast(f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def quarantine_table(bad: list[dict], source: str) -> pa.Table:
    """QUARANTINE rows of a shard's refused rows, in input-row order; each names ``source`` and its input row,
    or its own origin where it has one (``ORIGIN``/``ORIGIN_ROW``)."""
    rows = []
    for r in sorted(bad, key=lambda r: r[SRC_ROW]):
        row_index = r[SRC_ROW] if r.get(ORIGIN_ROW) is None else r[ORIGIN_ROW]
        rows.append(schemas.quarantine_row(r.get(ORIGIN) or source, row_index, r[QUARANTINE], r[RAW]))
    return schemas.to_table(rows, schemas.QUARANTINE)


def commit_part(store: ShardStore, name: str, part: pa.Table, target: CommitTarget) -> dict:
    """Check, write and mark one output shard from all of its rows (``part``)."""
    if name not in target.input_rows:
        raise ValueError(f"output rows name shard {name!r}, which this run did not read")
    problem = completeness_problem(part, target.input_rows[name])
    if problem:
        return _summary(name, INCOMPLETE, problem)
    if store.is_committed(name):   # an earlier attempt of a retried task committed it
        return _summary(name, ALREADY_COMMITTED)
    bad_mask = part.column(QUARANTINE).is_valid()
    kept, skips = pc.invert(bad_mask), Counter()
    if SKIP in part.column_names:
        skip_mask = pc.and_(kept, part.column(SKIP).is_valid())
        skips = Counter(part.filter(skip_mask).column(SKIP).to_pylist())
        kept = pc.and_(kept, pc.invert(skip_mask))
    table = as_schema(unique_by(part.filter(kept), list(target.output_key)), target.output_schema)
    origin = [c for c in (ORIGIN, ORIGIN_ROW) if c in part.column_names]
    bad = part.filter(bad_mask).select([SRC_ROW, QUARANTINE, RAW, *origin]).to_pylist()
    qtable = quarantine_table(bad, f"{target.input_uri}/{name}")
    workers = []
    if WORKER in part.column_names:
        workers = sorted(pc.unique(part.column(WORKER).drop_null()).to_pylist())
    stats = {**target.stats(table), "workers": workers, **({"skipped": dict(skips)} if skips else {})}
    store.commit_shard(name, table, qtable, config_hash=target.lineage, lineage=target.lineage,
                       code_version=target.code_version, stats=stats)
    reasons = Counter(r[QUARANTINE] for r in bad)
    return _summary(name, COMMITTED, rows=table.num_rows, quarantined=qtable.num_rows,
                    reasons=json.dumps(reasons), stats=json.dumps(stats, default=str))
