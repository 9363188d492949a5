"""The stage runner at scale: ``run_stage`` (workers commit) against Ray Data's own read -> map -> write.

    MATHRAY_DATA_DIR=/path/to/data .venv/bin/python benchmarks/stage_scale.py
    (SCALE_BENCH_SHARDS=N: N shards of 10,240 rows; default 200; the data folder holds math/{train,test}.jsonl)

Data: 200 SAMPLES shards of 160 problems x 64 samples = 2,048,000 rows, written through ``ShardStore`` by two
spawned processes (the driver never holds them). Problem texts are real MATH problems; each sample's text
is a 600-2000 character slice (mean ~1300, a MATH-sized solution of ~300-400 tokens) of the concatenated
real MATH solutions, at a random offset. Same trivial transform on both sides (``num_output_tokens`` =
characters / 4, vectorised), same 2-CPU local Ray cluster (object store 1 GiB), zstd parquet output:
(a) ``runtime.stage.run_stage``: read tasks per shard, the transform, the commit step (completeness check,
    de-duplication, sort, shard + marker per shard), the driver reading summary rows and markers;
(b) ``ray.data.read_parquet(files) -> map_batches -> write_parquet``.
Each side runs once on 4 shards first (worker start-up, imports), then once on everything. Prints rows/s of
each, their ratio, and the driver's peak RSS while each ran (sampled every 50 ms). The data is deleted at
the end. Last line: ``RESULT rows=... ratio_vs_ray_data=... driver_peak_rss_mb=...``.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
SHARDS = int(os.environ.get("SCALE_BENCH_SHARDS", 200))
PROBLEMS_PER_SHARD, N = 160, 64


def corpus() -> tuple[list[str], str]:
    """Problems and shuffled solutions of the full MATH train and test files (MATHRAY_DATA_DIR)."""
    from tests.helpers.data_dirs import DATA_DIR_ENV, full_data_dir

    data = full_data_dir()
    if data is None:
        raise SystemExit(f"set {DATA_DIR_ENV} to a folder with math/train.jsonl and math/test.jsonl")
    problems, solutions = [], []
    for split in ("train", "test"):
        for line in (data / "math" / f"{split}.jsonl").read_text().splitlines():
            rec = json.loads(line)
            problems.append(rec["problem"])
            solutions.append(rec["solution"])
    random.Random(0).shuffle(solutions)
    return problems, "\n".join(solutions)


def write_shards(uri: str, shard_ids: list[int]) -> None:
    """Write SAMPLES shards ``shard_ids`` (runs in a spawned process)."""
    import pyarrow as pa

    from mathray.core import schemas
    from mathray.runtime.storage import ShardStore, shard_name

    problems, text = corpus()
    store = ShardStore(uri)
    for s in shard_ids:
        rng = random.Random(s)
        n = PROBLEMS_PER_SHARD * N
        pids = [f"p{s:04d}-{i:03d}" for i in range(PROBLEMS_PER_SHARD) for _ in range(N)]
        probs = [problems[(s * PROBLEMS_PER_SHARD + i) % len(problems)] for i in range(PROBLEMS_PER_SHARD) for _ in range(N)]
        lengths = [rng.randint(600, 2000) for _ in range(n)]
        starts = [rng.randrange(len(text) - 2000) for _ in range(n)]
        texts = [text[a:a + k] for a, k in zip(starts, lengths)]
        correct = [rng.random() < 0.4 for _ in range(n)]
        cols = {
            "problem_id": pids, "sample_id": [j for _ in range(PROBLEMS_PER_SHARD) for j in range(N)],
            "problem": probs, "reference_answer": [str(i % 97) for i in range(n)],
            "prompt_hash": ["0123456789abcdef"] * n, "prompt": [None] * n, "text": texts,
            "answer": [str(rng.randrange(100)) for _ in range(n)], "is_correct": correct,
            "grade_reason": ["equal" if c else "not-equal" for c in correct],
            "num_prompt_tokens": [len(p) // 4 for p in probs], "num_output_tokens": [k // 4 for k in lengths],
            "finish_reason": ["stop"] * n, "cumulative_logprob": [-rng.random() * 100 for _ in range(n)],
            "generator": ["model@0123456789abcdef"] * n, "sampling_params_hash": ["fedcba9876543210"] * n,
            "seed": list(range(s * n, (s + 1) * n)),
        }
        store.commit_shard(shard_name(s), pa.table(cols, schema=schemas.SAMPLES))


def recount(batch):
    """The trivial transform (both sides): num_output_tokens = characters / 4."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tokens = pc.cast(pc.divide(pc.utf8_length(batch.column("text")), 4), pa.int32())
    return batch.set_column(batch.column_names.index("num_output_tokens"), "num_output_tokens", tokens)


def recount_stage_rows(batch):
    """``recount`` as a stage transform: each input row gives one output row (bookkeeping columns added)."""
    import pyarrow as pa

    from mathray.runtime.stage import N_OUT, QUARANTINE, RAW, WORKER, worker_id

    out, n = recount(batch), batch.num_rows
    return (out.append_column(N_OUT, pa.repeat(pa.scalar(1, pa.int32()), n))
            .append_column(QUARANTINE, pa.nulls(n, pa.string())).append_column(RAW, pa.nulls(n, pa.string()))
            .append_column(WORKER, pa.repeat(pa.scalar(worker_id(), pa.string()), n)))


class PeakRss:
    """The driver's RSS, sampled every 50 ms while in the ``with`` block, and the CPU time it used."""

    def __enter__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._cpu0 = sum(self.proc.cpu_times()[:2])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.cpu_s = sum(self.proc.cpu_times()[:2]) - self._cpu0


def run_ours(inp: str, out: str) -> tuple[float, int, PeakRss]:
    from mathray.config import StrictModel
    from mathray.core import schemas
    from mathray.runtime.lineage import Lineage
    from mathray.runtime.stage import run_stage
    from mathray.runtime.storage import ShardStore

    class Cfg(StrictModel):
        transform: str = "recount"

    with PeakRss() as rss:
        t0 = time.time()
        summary = run_stage(job="scale", cfg=Cfg(), input_store=ShardStore(inp), output_store=ShardStore(out),
                            input_key=["problem_id", "sample_id"], output_key=["problem_id", "sample_id"],
                            output_schema=schemas.SAMPLES, lineage=Lineage.of("scale", Cfg(), {"input": "bench"}),
                            transform=lambda ds: ds.map_batches(recount_stage_rows, batch_format="pyarrow"))
        wall = time.time() - t0
    assert summary.complete and summary.rows_written == ShardStore(out).read_manifest()["rows"]
    return wall, summary.rows_written, rss


def run_ray_data(files: list[str], out: str) -> tuple[float, int, PeakRss]:
    import pyarrow.parquet as pq
    import ray

    with PeakRss() as rss:
        t0 = time.time()
        ray.data.read_parquet(files).map_batches(recount, batch_format="pyarrow").write_parquet(
            out, compression="zstd")
        wall = time.time() - t0
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in Path(out).glob("*.parquet"))
    return wall, rows, rss


def token_sum(folder: Path) -> int:
    """Sum of ``num_output_tokens`` over a folder of parquet files (both sides computed the same values?)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    return sum(pc.sum(pq.read_table(p, columns=["num_output_tokens"]).column(0)).as_py()
               for p in folder.glob("*.parquet"))


def main() -> None:
    import ray

    from mathray.runtime.storage import ShardStore, shard_name

    root = Path(tempfile.mkdtemp(prefix="stage-scale-", dir=os.environ.get("SCALE_BENCH_DIR")))
    try:
        inp = str(root / "input")
        t0 = time.time()
        ctx = multiprocessing.get_context("spawn")
        workers = [ctx.Process(target=write_shards, args=(inp, list(range(i, SHARDS, 2)))) for i in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
            assert w.exitcode == 0, "data generation failed"
        store = ShardStore(inp)
        store.write_manifest()
        rows_in = sum(c.rows for c in store.committed().values())
        size = sum(p.stat().st_size for p in (root / "input" / "shards").glob("*.parquet"))
        print(f"data: {SHARDS} shards, {rows_in} rows, {size / 2**30:.2f} GiB parquet (zstd) "
              f"({size / rows_in:.0f} B/row on disk), written in {time.time() - t0:.0f}s", flush=True)
        files = [store.shard_path(shard_name(s)) for s in range(SHARDS)]

        ray.init(address="local", num_cpus=2, object_store_memory=2**30, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
        warm = str(root / "warm_input")
        warm_store = ShardStore(warm)
        for s in range(4):
            warm_store.commit_shard(shard_name(s), store.read_shard(shard_name(s)))
        warm_store.write_manifest()
        run_ours(warm, str(root / "warm_ours"))
        run_ray_data(files[:4], str(root / "warm_ray"))

        ours_s, ours_rows, ours_rss = run_ours(inp, str(root / "ours"))
        ray_s, ray_rows, ray_rss = run_ray_data(files, str(root / "ray_data"))
        assert ours_rows == ray_rows == rows_in, (ours_rows, ray_rows, rows_in)
        tokens = [token_sum(root / side) for side in ("ours/shards", "ray_data")]
        assert tokens[0] == tokens[1], f"the two sides computed different num_output_tokens: {tokens}"
        out_size = sum(p.stat().st_size for p in (root / "ours" / "shards").glob("*.parquet"))
        ours_rate, ray_rate = ours_rows / ours_s, ray_rows / ray_s
        print(f"(a) run_stage, workers commit: {ours_s:.1f}s, {ours_rate:,.0f} rows/s, driver peak RSS "
              f"{ours_rss.peak / 2**20:.0f} MiB, driver CPU {ours_rss.cpu_s:.1f}s, output {out_size / 2**30:.2f} GiB")
        print(f"(b) Ray Data read_parquet -> map_batches -> write_parquet: {ray_s:.1f}s, {ray_rate:,.0f} rows/s, "
              f"driver peak RSS {ray_rss.peak / 2**20:.0f} MiB, driver CPU {ray_rss.cpu_s:.1f}s")
        print(f"RESULT rows={ours_rows} ratio_vs_ray_data={ours_rate / ray_rate:.3f} "
              f"driver_peak_rss_mb={ours_rss.peak / 2**20:.0f} rows_per_s={ours_rate:.0f} "
              f"ray_data_rows_per_s={ray_rate:.0f} ray_data_driver_peak_rss_mb={ray_rss.peak / 2**20:.0f} "
              f"driver_cpu_s={ours_rss.cpu_s:.1f}")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
