"""The resumable stage runner on a real local Ray cluster, with a small pure transform; the worker-side commit
step on local disk and S3."""
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from helpers.quarantine import read_all_quarantine
from mathray.core import schemas
from mathray.config import StrictModel
from mathray.runtime.lineage import Lineage, LineageMismatch
from mathray.runtime.commit import ALREADY_COMMITTED, COMMITTED, INCOMPLETE, CommitTarget, commit_blocks
from mathray.runtime.spec import StageJobConfig, StageSpec, run_spec
from mathray.runtime.stage import (StageIncomplete, is_quarantined, quarantined, rows_to_table, run_stage,
                                   running_stage, validate_batch, with_source)
from mathray.runtime.storage import ShardStore, shard_name

OUT = pa.schema([pa.field("problem_id", pa.string(), nullable=False),
                 pa.field("copy", pa.int32(), nullable=False), pa.field("text", pa.string())])


class Cfg(StrictModel):
    copies: int = 2


class Doubler:
    """Stands in for an engine actor: 2 outputs per row, refuses problems containing BAD."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = []
        for row in batch.to_pylist():
            if is_quarantined(row):
                out.append(row)
            elif "BAD" in row["problem"]:
                out.append(quarantined(row, "problem marked BAD"))
            else:
                out += [with_source({"problem_id": row["problem_id"], "copy": c, "text": row["problem"]}, row, 2)
                        for c in range(2)]
        return rows_to_table(out, OUT)


BAD_ROW, EMPTY_ROW = (1, 2), (2, 0)     # (shard, row) of the problem marked BAD and of the empty problem


def _problems(store: ShardStore, n_shards=3, rows=5):
    for s in range(n_shards):
        recs = [{"problem_id": f"p{s}-{i}", "source": "t", "problem": "BAD" if (s, i) == BAD_ROW else f"q{s}{i}",
                 "reference_solution": None, "answer": "1", "subject": None, "level": None, "metadata": None}
                for i in range(rows)]
        if s == EMPTY_ROW[0]:
            recs[EMPTY_ROW[1]]["problem"] = "   "  # empty problem: invalid for the schema
        store.commit_shard(shard_name(s), schemas.to_table(recs, schemas.PROBLEMS))
    store.write_manifest()


def _expected_shards(n_shards=3, rows=5) -> dict[str, list[dict]]:
    """What the Doubler stage commits for ``_problems``, by hand: per shard, copies 0 and 1 of each valid
    problem in output-key order (the BAD and the empty problem are quarantined), 2 x 13 = 26 rows."""
    return {shard_name(s): [{"problem_id": f"p{s}-{i}", "copy": c, "text": f"q{s}{i}"}
                            for i in range(rows) if (s, i) not in (BAD_ROW, EMPTY_ROW) for c in range(2)]
            for s in range(n_shards)}


class CrashOnceDoubler(Doubler):
    """Kills its own process the first time it is handed shard part-00001 (a file remembers), so Ray restarts
    the actor and retries the task."""

    def __init__(self, flag: str):
        self.flag = Path(flag)

    def __call__(self, batch: pa.Table) -> pa.Table:
        if "part-00001" in batch.column("_src_shard").to_pylist() and not self.flag.exists():
            self.flag.touch()
            os._exit(1)
        return super().__call__(batch)


class DropsOneRow(Doubler):
    """Loses the outputs of the last input row of shard part-00002 (a broken transform)."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = super().__call__(batch).to_pylist()
        return rows_to_table([r for r in out if (r["_src_shard"], r["_src_row"]) != ("part-00002", 4)], OUT)


def _transform(ds, actor=Doubler, batch_size=2, **ctor):
    import ray

    ds = ds.map_batches(validate_batch, batch_format="pyarrow", fn_kwargs={"schema": schemas.PROBLEMS})
    return ds.map_batches(actor, batch_format="pyarrow", batch_size=batch_size, fn_constructor_kwargs=ctor,
                          compute=ray.data.ActorPoolStrategy(min_size=1, max_size=2))


def _run(inp, out, cfg=Cfg(), transform=_transform, **kw):
    return run_stage(job="test", cfg=cfg, input_store=inp, output_store=out, input_key=["problem_id"],
                     output_key=["problem_id", "copy"], output_schema=OUT, transform=transform,
                     lineage=Lineage.of("test", cfg, {"input": "shards@abc"}), **kw)


def _contents(store: ShardStore) -> dict:
    return {n: store.read_shard(n).to_pylist() for n in store.committed()}


@pytest.fixture(scope="module")
def resumed(ray_cluster, tmp_path_factory):
    """One stage run stopped after its first shard, then resumed while another thread reads the live summary
    (what the pipeline's stage table shows): the resume test and the progress test both check it."""
    tmp = tmp_path_factory.mktemp("resumed")
    inp, out = ShardStore(str(tmp / "in")), ShardStore(str(tmp / "out"))
    _problems(inp)
    first = _run(inp, out, max_shards=1)
    after_first = SimpleNamespace(committed=dict(out.committed()), running=running_stage(out.uri))
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            if (s := running_stage(out.uri + "/")) is not None:
                seen.append((s, s.input_rows_done, s.rows_before + s.rows_written))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        second = _run(inp, out)
    finally:
        stop.set()
        watcher.join()
    return SimpleNamespace(inp=inp, out=out, first=first, after_first=after_first, second=second, seen=seen)


@pytest.mark.cluster
def test_stage_outputs_quarantine_and_resume(resumed):
    inp, out, first, second = resumed.inp, resumed.out, resumed.first, resumed.second
    assert first.shards_committed == 1 and list(resumed.after_first.committed) == ["part-00000"]
    sha0 = resumed.after_first.committed["part-00000"].sha256
    assert second.shards_skipped == 1 and second.shards_committed == 2
    assert out.committed()["part-00000"].sha256 == sha0
    assert _contents(out) == _expected_shards()
    q = read_all_quarantine(out).to_pylist()
    assert sorted(r["reason"] for r in q) == ["empty required field 'problem'", "problem marked BAD"]
    assert out.read_manifest()["rows"] == 26 and out.read_manifest()["quarantined_rows"] == 2
    assert _run(inp, out).shards_committed == 0
    assert out.read_manifest()["complete"] is True


@pytest.mark.cluster
@pytest.mark.faults
def test_other_lineage_refuses_then_overwrite_clears(ray_cluster, tmp_path):
    inp, out = ShardStore(str(tmp_path / "in")), ShardStore(str(tmp_path / "out"))
    _problems(inp)
    _run(inp, out, max_shards=1)
    assert out.read_manifest()["complete"] is False
    with pytest.raises(LineageMismatch) as err:
        _run(inp, out, cfg=Cfg(copies=3))
    msg = str(err.value)
    assert "config copies: 2 -> 3" in msg and "resume=overwrite" in msg and "new output URI" in msg
    assert list(out.committed()) == ["part-00000"]          # the refusal wrote nothing
    summary = _run(inp, out, cfg=Cfg(copies=3), resume="overwrite")
    assert summary.shards_committed == 3 and summary.complete
    assert {c.lineage for c in out.committed().values()} == {Lineage.of("test", Cfg(copies=3), {"input": "shards@abc"}).hash}


class Exploder(Doubler):
    """The stage's own code with a bug that one row triggers (a ``run_spec`` actor: ``(cfg, device)``)."""

    def __init__(self, cfg: dict, device: str):
        self.explode = cfg.get("explode", "")

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.explode and any(p == self.explode for p in batch.column("problem").to_pylist()):
            raise ZeroDivisionError("division by zero in the stage's own code")
        return super().__call__(batch)


class GuardCfg(StageJobConfig):
    explode: str = ""


def _guard_spec(compute: str):
    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    strategy = ActorPoolStrategy(min_size=1, max_size=1) if compute == "actors" else TaskPoolStrategy(size=2)
    return StageSpec(job="guarded", input_schema=schemas.PROBLEMS, output_schema=OUT, input_key=("problem_id",),
                     output_key=("problem_id", "copy"), actor=Exploder,
                     pool=lambda cfg, device: {"compute": strategy, "batch_size": 4},
                     device=lambda cfg: "cpu", models=lambda cfg: {}, stats=lambda t: {"rows": t.num_rows})


@pytest.mark.cluster
@pytest.mark.faults
@pytest.mark.parametrize("compute", ["actors", "tasks"])
def test_stage_code_raising_on_one_row_quarantines_it_and_the_job_continues(ray_cluster, tmp_path, compute):
    inp = ShardStore(str(tmp_path / "in"))
    _problems(inp)
    guarded = run_spec(_guard_spec(compute), GuardCfg(input=inp.uri, output=str(tmp_path / "guarded"),
                                                      explode="q03"))
    assert guarded.complete and guarded.shards_committed == 3
    rows = sorted(ShardStore(str(tmp_path / "guarded")).read_all().to_pylist(),
                  key=lambda r: (r["problem_id"], r["copy"]))
    expected = [r for shard in _expected_shards().values() for r in shard]
    assert rows == [r for r in expected if r["problem_id"] != "p0-3"]   # every other row exactly as without the bug
    q = {json.loads(r["raw"])["problem_id"]: r["reason"]
         for r in read_all_quarantine(ShardStore(str(tmp_path / "guarded"))).to_pylist()}
    assert q["p0-3"] == "Exploder raised ZeroDivisionError: division by zero in the stage's own code"
    assert guarded.rows_quarantined == 3                       # the BAD and the empty problem, and p0-3


@pytest.mark.cluster
def test_retried_task_bundled_shards_and_broken_transform(ray_cluster, tmp_path):
    inp = ShardStore(str(tmp_path / "in"))
    _problems(inp)
    expected = _expected_shards()

    # an actor process dies mid-task: the retried task's shards are committed once, with the same rows
    retried = ShardStore(str(tmp_path / "retried"))
    flag = tmp_path / "crashed"
    summary = _run(inp, retried, transform=lambda ds: _transform(ds, CrashOnceDoubler, flag=str(flag)))
    assert flag.exists() and summary.shards_committed == 3 and _contents(retried) == expected
    assert summary.rows_written == 26 and len(summary.commits) == 3

    # calls of 100 rows: one task holds all three shards, the commit step writes each on its own
    bundled = ShardStore(str(tmp_path / "bundled"))
    _run(inp, bundled, transform=lambda ds: _transform(ds, batch_size=100))
    assert _contents(bundled) == expected
    assert {w for c in bundled.committed().values() for w in c.stats["workers"]}

    # a transform that loses rows: that shard is never written, the others are, the run says which
    broken = ShardStore(str(tmp_path / "broken"))
    with pytest.raises(StageIncomplete, match=r"part-00002.*4 of 5 input rows"):
        _run(inp, broken, transform=lambda ds: _transform(ds, DropsOneRow))
    assert sorted(broken.committed()) == ["part-00000", "part-00001"]
    assert broken.read_manifest() is None


def _tagged(shard: str, rows: list[tuple]) -> pa.Table:
    """Stage rows of ``shard``: (input row, problem_id, copy, n_out) outputs or (input row, reason) quarantined."""
    out = []
    for r in rows:
        src = {"_src_shard": shard, "_src_row": r[0], "problem": "q"}
        out.append(quarantined(src, r[1]) if len(r) == 2 else
                   with_source({"problem_id": r[1], "copy": r[2], "text": "t"}, src, r[3]))
    return rows_to_table(out, OUT)


def test_commit_step_checks_dedupes_and_skips_committed(storage_root):
    out = ShardStore(storage_root)
    target = CommitTarget(input_uri="in", output_uri=storage_root, input_rows={"a": 3, "b": 2, "c": 1, "d": 2},
                          output_key=("problem_id", "copy"), output_schema=OUT, lineage="L", code_version="v",
                          stats=lambda t: {"n": t.num_rows})
    a = _tagged("a", [(2, "p2", 0, 1), (0, "p0", 1, 2), (1, "bad row"), (0, "p0", 0, 2)])
    b = _tagged("b", [(0, "p0", 0, 1)])                                     # input row 1 missing
    c = _tagged("c", [(0, "p0", 0, 2), (0, "p0", 1, 2), (0, "p0", 2, 2)])   # 3 rows, n_out says 2
    d = _tagged("d", [(0, "p0", 0, 1), (1, "p0", 0, 1)])                    # two input rows, same key
    summary = {r["shard"]: r for r in commit_blocks(pa.concat_tables([a, b, c, d]), target).to_pylist()}
    assert {n: r["status"] for n, r in summary.items()} == {"a": COMMITTED, "b": INCOMPLETE, "c": INCOMPLETE,
                                                            "d": COMMITTED}
    assert "1 of 2 input rows" in summary["b"]["detail"]
    assert "different number of output rows" in summary["c"]["detail"]
    assert sorted(out.committed()) == ["a", "d"]
    assert out.read_shard("d").num_rows == 1      # de-duplicated by the output key

    rec = out.committed()["a"]
    assert (summary["a"]["rows"], summary["a"]["quarantined"]) == (3, 1)
    assert rec.lineage == "L" and rec.stats["n"] == 3 and rec.stats["workers"]
    assert [(r["problem_id"], r["copy"]) for r in out.read_shard("a").to_pylist()] == [("p0", 0), ("p0", 1), ("p2", 0)]
    assert out.read_shard("a").schema.equals(OUT)
    q = out.read_quarantine("a").to_pylist()
    assert [(x["source"], x["row_index"], x["reason"]) for x in q] == [("in/a", 1, "bad row")]

    again = commit_blocks(a, target).to_pylist()   # a retried task: the marker is there, nothing is rewritten
    assert again[0]["status"] == ALREADY_COMMITTED
    assert (out.committed()["a"].sha256, out.committed()["a"].committed_at) == (rec.sha256, rec.committed_at)


@pytest.mark.cluster
def test_progress_is_visible_while_the_stage_runs(resumed):
    """The live summary a caller in another thread reads (the pipeline's stage table): input rows done only
    grow, and end at the input's 15 rows with 26 output rows (2 of the 15 rows are quarantined, the other 13
    give 2 rows each)."""
    first, second, seen, out = resumed.first, resumed.second, resumed.seen, resumed.out
    assert first.progress() == "10 rows (5/15 input rows)" and resumed.after_first.running is None
    assert second.progress() == "26 rows (15/15 input rows)"
    assert seen and all(s is second for s, _, _ in seen)
    done = [d for _, d, _ in seen]
    assert done == sorted(done) and done[0] >= 5 and done[-1] <= 15
    assert running_stage(out.uri) is None


def test_a_task_pool_stage_builds_its_actor_once_per_process_and_run():
    """``call_in_task`` (a stage's actor class run in Ray tasks) keeps one instance per worker process for the
    run it was built in, and builds afresh for another run (a re-run after a failure)."""
    from mathray.runtime.spec import call_in_task

    built = []

    class Counting:
        def __init__(self, cfg: dict, device: str):
            built.append(cfg["n"])

        def __call__(self, batch: pa.Table) -> pa.Table:
            return batch.append_column("built", pa.array([len(built)] * batch.num_rows))

    batch = pa.table({"x": [1, 2]})
    args = {"cfg": {"n": 1}, "device": "cpu"}
    assert call_in_task(batch, Counting, args, "run-a").column("built").to_pylist() == [1, 1]
    assert call_in_task(batch, Counting, args, "run-a").column("built").to_pylist() == [1, 1]
    assert call_in_task(batch, Counting, {**args, "cfg": {"n": 2}}, "run-b").column("built").to_pylist() == [2, 2]
    assert built == [1, 2]
