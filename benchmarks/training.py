"""Ray Train overhead: the same SSFT steps on the same model through the train job (TorchTrainer, 1 worker)
and through the plain single-process loop (``loop.run_local``), in one run.

    .venv/bin/python benchmarks/training.py     (TRAIN_BENCH_STEPS=N, TRAIN_BENCH_THREADS=T: other settings)

Defaults: 1000 steps, and torch threads = cores - 1 on both sides (1 on a 2-core machine). The free core is
for Ray's own processes (raylet, GCS, the Train controller and its polls, idle prestarted workers): with every
core given to torch they preempt an OpenMP thread now and then, and each parallel region waits for its
slowest thread. Measured here with 2 threads on 2 cores, the Ray worker's steps were from equal to 10% slower
than the plain loop's, run to run; with 1 thread never more than 1% slower (RESULTS.md). Both sides get the same
threads, so the comparison stays like for like; ``TRAIN_BENCH_THREADS=2`` measures the all-cores setting.

Ray Train's fixed cost (controller, a fresh worker process importing torch/transformers, process group,
final checkpoint and the controller noticing the end; ~13 s here) is paid once per run, so a short run
measures start-up, not training; the script also prints the in-loop rates, which compare the per-step cost
alone. Both sides run ``loop.run_loop`` with identical config, data order and torch threads; both export
the final HF model; the Ray side adds the worker-group start, DDP setup, checkpoint reports and upload.
Wall time is measured around ``run_training`` (Ray already initialised) and ``run_local``; the plain side
runs in this process, whose torch/transformers are already imported. The CPU may be shared with other
processes: compare the two numbers of one run, not runs across machines.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

STEPS, BATCH = int(os.environ.get("TRAIN_BENCH_STEPS", 1000)), 8
THREADS = int(os.environ.get("TRAIN_BENCH_THREADS", max(1, (os.cpu_count() or 2) - 1)))


def main() -> None:
    import ray

    from mathray.core.schemas import PROBLEMS, to_table
    from mathray.runtime.storage import ShardStore
    from mathray.jobs.tiny_model import TinyModelConfig, build_tiny_model
    from mathray.core.toy import ToyTaskConfig, generate_problems
    from mathray.jobs.training.config import TrainJobConfig
    from mathray.jobs.training.job import run_training
    from mathray.jobs.training.loop import run_local

    root = Path(tempfile.mkdtemp(prefix="bench_training_"))
    model = build_tiny_model(root / "model", TinyModelConfig(hidden_size=256, num_heads=4, num_kv_heads=4,
                                                             num_layers=4, intermediate_size=1024))
    ShardStore(str(root / "problems")).commit_shard(
        "part-00000", to_table(generate_problems(ToyTaskConfig(num_train=256, num_test=0), "train"), PROBLEMS))
    ShardStore(str(root / "problems")).write_manifest()

    def cfg(side: str) -> TrainJobConfig:
        return TrainJobConfig(task="ssft", model=str(model), output=str(root / side), num_workers=1,
                              cpus_per_worker=THREADS, data={"ssft": [str(root / "problems")], "max_len": 256},
                              optim={"lr": 1e-3, "steps": STEPS, "batch_size": BATCH}, checkpoint_every=STEPS,
                              log_every=10)

    t0 = time.perf_counter()
    plain = run_local(cfg("plain"))
    plain_s = time.perf_counter() - t0

    ray.init(num_cpus=THREADS + 1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    t0 = time.perf_counter()
    result = run_training(cfg("ray"))
    ray_s = time.perf_counter() - t0
    ray.shutdown()

    tokens = plain["tokens"]
    assert result.metrics["tokens"] == tokens, (result.metrics["tokens"], tokens)
    print(f"model: hidden 256 x 4 layers, {STEPS} steps x {BATCH} examples, "
          f"{tokens} tokens, {THREADS} torch threads each, cores on this machine: {os.cpu_count()}")
    print(f"plain loop:           {plain_s:7.2f} s  {tokens / plain_s:9.0f} tokens/s  final loss {plain['loss']:.3f}")
    print(f"Ray Train (1 worker): {ray_s:7.2f} s  {tokens / ray_s:9.0f} tokens/s  final loss "
          f"{result.metrics['loss']:.3f}")
    # in-loop rate (from the loop's own clock, model loaded): separates Ray Train's fixed start-up cost
    # (controller, worker process with fresh imports, process group) from its per-step cost
    print(f"in-loop tokens/s: plain {plain['tokens_per_s']:.0f}, Ray worker {result.metrics['tokens_per_s']:.0f}; "
          f"fixed Ray start-up and teardown ~{ray_s - tokens / result.metrics['tokens_per_s']:.1f} s")
    print(f"RESULT ratio_ray_vs_plain={ray_s / plain_s:.3f} tokens_per_s_ray={tokens / ray_s:.0f} "
          f"tokens_per_s_plain={tokens / plain_s:.0f}")


if __name__ == "__main__":
    main()
