"""Ray Train overhead: the same SSFT steps on the same model through the train job (TorchTrainer, 1 worker)
and through the plain single-process loop (``loop.run_local``), in one run.

    .venv/bin/python benchmarks/training.py            (TRAIN_BENCH_STEPS=N: another run length)

1500 steps by default (about 3.5 minutes per side on 2 cores): Ray Train's fixed cost (controller, a fresh
worker process importing torch/transformers, process group, final checkpoint; ~16 s here) is paid once
per run, so a short run measures start-up, not training; the script also prints the in-loop rates, which
compare the per-step cost alone. Both sides run ``loop.run_loop`` with identical config, data order and torch threads; both export the final
HF model; the Ray side adds the worker-group start, DDP setup, metric reports and the checkpoint upload.
Wall time is measured around ``run_training`` (Ray already initialised) and ``run_local``. The CPU may be
shared with other processes: compare the two numbers of one run, not runs across machines.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

STEPS, BATCH, THREADS = int(os.environ.get("TRAIN_BENCH_STEPS", 1500)), 8, 2


def main() -> None:
    import ray

    from mathray.schemas import PROBLEMS, to_table
    from mathray.storage import ShardStore
    from mathray.tiny_model import TinyModelConfig, build_tiny_model
    from mathray.toy import ToyTaskConfig, generate_problems
    from mathray.training.config import TrainJobConfig
    from mathray.training.job import run_training
    from mathray.training.loop import run_local

    root = Path(tempfile.mkdtemp(prefix="bench_training_"))
    model = build_tiny_model(root / "model", TinyModelConfig(hidden_size=256, num_heads=4, num_kv_heads=4,
                                                             num_layers=4, intermediate_size=1024))
    ShardStore(str(root / "problems")).commit_shard(
        "part-00000", to_table(generate_problems(ToyTaskConfig(num_train=256, num_test=0), "train"), PROBLEMS))

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
