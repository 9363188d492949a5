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

    SCALE_BENCH_PARTS=ingest,labeling MATHRAY_DATA_DIR=... .venv/bin/python benchmarks/stage_scale.py
    (SCALE_BENCH_SIZES=200000,2000000 by default; SCALE_BENCH_PARTS default: stage)

Driver memory at two sizes (a flat driver has the same peak RSS at both), each size measured in a fresh driver
process (``--driver PART ROWS ROOT``; its data written beforehand by other processes):
- ``ingest``: ``run_ingest`` of a GSM8K-format JSONL of ROWS records (the real GSM8K train + test records in
  turn, each question suffixed with its record number so every problem is new), 10,000 records per shard, on
  a 2-CPU local Ray cluster: the driver streams the file into records shards, workers parse and commit;
- ``labeling``: the Math-Shepherd job's summary and export (``labeling_cost`` + ``export_text``) over a
  STEP_LABELS output of ROWS rows in shards of 10,000 (5 steps of ~120 characters, a labeller batch per
  shard, markers with ``shard_stats`` as the job writes them); no engine runs: a rollout of millions of
  solutions does not fit this machine, and the summary and export read only the output.
Prints each peak and ``RESULT ingest_driver_rss_mb_200k=... ingest_driver_rss_mb_2m=... ...``.
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


# -- driver memory of ingest and of the labeling summary at two sizes -----------------------------------
LABEL_SHARD_ROWS = INGEST_SHARD_ROWS = 10_000


def write_gsm8k_source(path: str, rows: int) -> None:
    """A GSM8K-format JSONL of ``rows`` records (runs in a spawned process)."""
    from tests.helpers.data_dirs import full_data_dir

    data = full_data_dir()
    recs = [json.loads(line) for split in ("train", "test")
            for line in (data / "gsm8k" / f"{split}.jsonl").read_text().splitlines() if line.strip()]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            rec = recs[i % len(recs)]
            f.write(json.dumps({"question": f"{rec['question']} (#{i})", "answer": rec["answer"]}) + "\n")


def write_label_shards(uri: str, shard_ids: list[int]) -> None:
    """STEP_LABELS shards ``shard_ids`` of ``LABEL_SHARD_ROWS`` rows, markers with the job's ``shard_stats``
    (runs in a spawned process)."""
    from mathray.core import schemas
    from mathray.jobs.labeling import shard_stats
    from mathray.runtime.storage import ShardStore, shard_name

    store = ShardStore(uri)
    for s in shard_ids:
        rng = random.Random(s)
        batch = json.dumps({"batch": {"id": f"b{s}", "engine_steps": 100, "generation_tokens": 5000,
                                      "prefix_cache_queries": 900, "prefix_cache_hits": 600}})
        rows = []
        for i in range(LABEL_SHARD_ROWS):
            hard = [1] * rng.randrange(6) + [0] * 5
            rows.append({"problem_id": f"p{s:04d}-{i // 64:03d}", "sample_id": i % 64,
                         "problem": f"Problem {s}-{i // 64}: " + "x" * 200,
                         "steps": [f"Step {k + 1}: " + "y" * 120 for k in range(5)], "hard_labels": hard[:5],
                         "label_source": "shepherd-full", "rollouts": [3] * 4 + [0], "tokens_generated": 240,
                         "metadata": batch, "soft_labels": None, "first_error_step": None, "prompt": None})
        table = schemas.to_table(rows, schemas.STEP_LABELS)
        store.commit_shard(shard_name(s), table, stats=shard_stats(table))


def prepare(part: str, rows: int, root: Path) -> str:
    """Write the data a driver of ``part`` reads, in two spawned processes; returns its location."""
    ctx = multiprocessing.get_context("spawn")
    if part == "ingest":
        path = str(root / "gsm8k.jsonl")
        procs = [ctx.Process(target=write_gsm8k_source, args=(path, rows))]
    else:
        path = str(root / "step_labels")
        n = -(-rows // LABEL_SHARD_ROWS)
        procs = [ctx.Process(target=write_label_shards, args=(path, list(range(i, n, 2)))) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"writing the {part} data failed"
    return path


def drive(part: str, rows: int, data: str, root: Path) -> None:
    """One measured driver (``--driver``): prints ``PEAK <MiB> <seconds> <checked rows>``."""
    if part == "ingest":
        from mathray.jobs.ingest import IngestConfig, run_ingest
        from mathray.runtime.entry import init_ray

        init_ray(num_cpus=2, object_store_memory=2**30, include_dashboard=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
        cfg = IngestConfig(source={"format": "gsm8k", "path": data}, output=str(root / "problems"),
                           shard_rows=INGEST_SHARD_ROWS)
        with PeakRss() as rss:
            t0 = time.time()
            summary = run_ingest(cfg)
            wall = time.time() - t0
        checked = summary.problems
    else:
        from mathray.jobs.labeling import export_text, labeling_cost
        from mathray.runtime.storage import ShardStore

        with PeakRss() as rss:
            t0 = time.time()
            cost = labeling_cost(ShardStore(data))
            export = export_text(ShardStore(data))
            wall = time.time() - t0
        with open(export, "rb") as f:
            lines = sum(1 for _ in f)
        assert lines == cost["solutions"], (lines, cost["solutions"])
        checked = lines
    assert checked == rows, (part, checked, rows)
    print(f"PEAK {rss.peak / 2**20:.0f} {wall:.1f} {checked}", flush=True)


def size_name(rows: int) -> str:
    return f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else f"{rows // 1000}k"


def driver_memory(parts: list[str], sizes: list[int]) -> None:
    import subprocess

    results = []
    for part in parts:
        for rows in sizes:
            root = Path(tempfile.mkdtemp(prefix=f"stage-scale-{part}-", dir=os.environ.get("SCALE_BENCH_DIR")))
            try:
                t0 = time.time()
                data = prepare(part, rows, root)
                prep_s = time.time() - t0
                out = subprocess.run([sys.executable, __file__, "--driver", part, str(rows), data, str(root)],
                                     capture_output=True, text=True, check=False)
                peak = [line for line in out.stdout.splitlines() if line.startswith("PEAK ")]
                assert out.returncode == 0 and peak, out.stdout[-2000:] + out.stderr[-4000:]
                mb, wall, _ = peak[0].split()[1:]
                print(f"{part} {rows} rows: driver peak RSS {mb} MiB, {wall}s (data written in {prep_s:.0f}s)",
                      flush=True)
                results.append(f"{part}_driver_rss_mb_{size_name(rows)}={mb} {part}_wall_s_{size_name(rows)}={wall}")
            finally:
                shutil.rmtree(root, ignore_errors=True)
    print("RESULT " + " ".join(results))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--driver":
        drive(sys.argv[2], int(sys.argv[3]), sys.argv[4], Path(sys.argv[5]))
    else:
        chosen = os.environ.get("SCALE_BENCH_PARTS", "stage").split(",")
        if "stage" in chosen:
            main()
        others = [p for p in chosen if p in ("ingest", "labeling")]
        if others:
            sizes = [int(n) for n in os.environ.get("SCALE_BENCH_SIZES", "200000,2000000").split(",")]
            driver_memory(others, sizes)
