"""The resumable stage runner on a real local Ray cluster, with a small pure transform."""
import json

import pyarrow as pa
import pytest

from mathray.core import schemas
from mathray.config import StrictModel
from mathray.runtime.lineage import Lineage, LineageMismatch
from mathray.runtime.spec import StageJobConfig, StageSpec, run_spec
from mathray.runtime.stage import is_quarantined, quarantined, rows_to_table, run_stage, validate_batch, with_source
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


def _problems(store: ShardStore, n_shards=3, rows=5):
    for s in range(n_shards):
        recs = [{"problem_id": f"p{s}-{i}", "source": "t", "problem": "BAD" if (s, i) == (1, 2) else f"q{s}{i}",
                 "reference_solution": None, "answer": "1", "subject": None, "level": None, "metadata": None}
                for i in range(rows)]
        if s == 2:
            recs[0]["problem"] = "   "  # empty problem: invalid for the schema
        store.commit_shard(shard_name(s), schemas.to_table(recs, schemas.PROBLEMS))
    store.write_manifest()


def _transform(ds):
    ds = ds.map_batches(validate_batch, batch_format="pyarrow", fn_kwargs={"schema": schemas.PROBLEMS})
    return ds.map_batches(Doubler, batch_format="pyarrow", batch_size=2,
                          compute=__import__("ray").data.ActorPoolStrategy(min_size=1, max_size=2))


def _run(inp, out, cfg=Cfg(), **kw):
    return run_stage(job="test", cfg=cfg, input_store=inp, output_store=out, input_key=["problem_id"],
                     output_key=["problem_id", "copy"], output_schema=OUT, transform=_transform,
                     lineage=Lineage.of("test", cfg, {"input": "shards@abc"}), **kw)


@pytest.mark.cluster
def test_stage_outputs_quarantine_and_resume(ray_cluster, tmp_path):
    inp, out = ShardStore(str(tmp_path / "in")), ShardStore(str(tmp_path / "out"))
    _problems(inp)
    first = _run(inp, out, max_shards=1)
    assert first.shards_committed == 1 and list(out.committed()) == ["part-00000"]
    sha0 = out.committed()["part-00000"].sha256
    second = _run(inp, out)
    assert second.shards_skipped == 1 and second.shards_committed == 2
    assert out.committed()["part-00000"].sha256 == sha0
    rows = out.read_all().to_pylist()
    keys = [(r["problem_id"], r["copy"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * (15 - 2)
    q = out.read_all_quarantine().to_pylist()
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


def _guard_spec():
    from ray.data import ActorPoolStrategy

    return StageSpec(job="guarded", input_schema=schemas.PROBLEMS, output_schema=OUT, input_key=("problem_id",),
                     output_key=("problem_id", "copy"), actor=Exploder,
                     pool=lambda cfg, device: {"compute": ActorPoolStrategy(min_size=1, max_size=1), "batch_size": 4},
                     device=lambda cfg: "cpu", models=lambda cfg: {}, stats=lambda t: {"rows": t.num_rows})


@pytest.mark.cluster
@pytest.mark.faults
def test_stage_code_raising_on_one_row_quarantines_it_and_the_job_continues(ray_cluster, tmp_path):
    inp = ShardStore(str(tmp_path / "in"))
    _problems(inp)
    spec = _guard_spec()
    reference = run_spec(spec, GuardCfg(input=inp.uri, output=str(tmp_path / "reference")))
    guarded = run_spec(spec, GuardCfg(input=inp.uri, output=str(tmp_path / "guarded"), explode="q03"))
    assert reference.complete and guarded.complete and guarded.shards_committed == 3
    ref_rows, rows = (sorted(ShardStore(str(tmp_path / sub)).read_all().to_pylist(),
                             key=lambda r: (r["problem_id"], r["copy"])) for sub in ("reference", "guarded"))
    assert rows == [r for r in ref_rows if r["problem_id"] != "p0-3"]   # every other row exactly as without the bug
    q = {json.loads(r["raw"])["problem_id"]: r["reason"]
         for r in ShardStore(str(tmp_path / "guarded")).read_all_quarantine().to_pylist()}
    assert q["p0-3"] == "Exploder raised ZeroDivisionError: division by zero in the stage's own code"
    assert guarded.rows_quarantined == reference.rows_quarantined + 1
