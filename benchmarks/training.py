"""Ray Train overhead and readout memory: the same SSFT steps through the train job (TorchTrainer, 1 worker,
transformers/TRL Trainer inside) and through the same Trainer in one plain process (``worker.run_local``), in
one run; then the peak memory of a verifier step with the LM head at the read positions vs full logits on a
tiny model with Qwen2.5's vocabulary (151,936).

    .venv/bin/python benchmarks/training.py     (TRAIN_BENCH_STEPS=N, TRAIN_BENCH_THREADS=T: other settings)

Defaults: 1000 steps, and torch threads = cores - 1 on both sides (1 on a 2-core machine): the free core is for
Ray's own processes (raylet, GCS, the Train controller and its polls), which otherwise preempt an OpenMP
thread now and then (RESULTS.md, earlier sections). Both sides run ``worker.run_phases`` with identical
config, data order and threads and both export the final model; the Ray side adds the worker-group start,
process group, checkpoint reports and upload. Wall time is measured around ``run_training`` (Ray already
initialised) and ``run_local``; the plain side runs in this process. The CPU may be shared with other
processes: compare the numbers of one run, not runs across machines.

The memory ratio runs ``tests/training/peak_memory_probe.py`` in fresh processes (peak RSS of one verifier
forward + backward, 4 sequences of ~600 tokens).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
STEPS, BATCH = int(os.environ.get("TRAIN_BENCH_STEPS", 1000)), 8
THREADS = int(os.environ.get("TRAIN_BENCH_THREADS", max(1, (os.cpu_count() or 2) - 1)))


def peak_ratio(root: Path) -> tuple[float, int, int]:
    """Peak bytes of a verifier step, readout vs full logits, on the tiny model grown to 151,936 rows."""
    from transformers import AutoModelForCausalLM

    from mathray.jobs.tiny_model import build_tiny_model

    path = build_tiny_model(root / "qwen_vocab")
    model = AutoModelForCausalLM.from_pretrained(path)
    model.resize_token_embeddings(151_936)
    model.save_pretrained(path)
    peaks = []
    for mode in ("readout", "full"):
        out = subprocess.run([sys.executable, str(REPO / "tests/training/peak_memory_probe.py"), str(path), mode],
                             capture_output=True, text=True, check=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        peaks.append(int(next(x for x in out.stdout.splitlines() if x.startswith("PEAK_BYTES=")).split()[0][11:]))
    return peaks[0] / peaks[1], peaks[0], peaks[1]


def main() -> None:
    import ray

    from mathray.core.schemas import PROBLEMS, to_table
    from mathray.core.toy import ToyTaskConfig, generate_problems
    from mathray.jobs.tiny_model import TinyModelConfig, build_tiny_model
    from mathray.jobs.training.config import TrainJobConfig
    from mathray.jobs.training.job import run_training
    from mathray.jobs.training.worker import run_local
    from mathray.runtime.storage import ShardStore

    root = Path(tempfile.mkdtemp(prefix="bench_training_"))
    model = build_tiny_model(root / "model", TinyModelConfig(hidden_size=256, num_heads=4, num_kv_heads=4,
                                                             num_layers=4, intermediate_size=1024))
    ShardStore(str(root / "problems")).commit_shard(
        "part-00000", to_table(generate_problems(ToyTaskConfig(num_train=256, num_test=0), "train"), PROBLEMS))
    ShardStore(str(root / "problems")).write_manifest()

    def cfg(side: str) -> TrainJobConfig:
        return TrainJobConfig(task="ssft", model=str(model), output=str(root / side), num_workers=1,
                              cpus_per_worker=THREADS, data={"ssft": [str(root / "problems")], "max_len": 256},
                              optim={"lr": 1e-3, "steps": STEPS, "batch_size": BATCH, "warmup_ratio": 0.0},
                              checkpoint_every=STEPS, log_every=10, report_to=["none"])

    t0 = time.perf_counter()
    plain = run_local(cfg("plain"))
    plain_s = time.perf_counter() - t0

    ray.init(num_cpus=THREADS + 1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    t0 = time.perf_counter()
    result = run_training(cfg("ray"))
    ray_s = time.perf_counter() - t0
    ray.shutdown()

    tokens = plain["num_tokens"]   # TRL's count of the tokens trained on (prompt included), same on both sides
    assert result.metrics["num_tokens"] == tokens, (result.metrics["num_tokens"], tokens)
    samples = STEPS * BATCH
    ratio, readout_peak, full_peak = peak_ratio(root)
    print(f"model: hidden 256 x 4 layers, {STEPS} steps x {BATCH} sequences, {tokens} tokens, {THREADS} torch threads each, "
          f"cores on this machine: {os.cpu_count()}")
    print(f"plain Trainer:        {plain_s:7.2f} s  {samples / plain_s:7.1f} sequences/s  in-loop "
          f"{plain['train_samples_per_second']:.1f}/s  final loss {plain['loss']:.3f}")
    print(f"Ray Train (1 worker): {ray_s:7.2f} s  {samples / ray_s:7.1f} sequences/s  final loss "
          f"{result.metrics.get('loss', float('nan')):.3f}")
    print(f"verifier step peak memory: readout {readout_peak / 2**20:.0f} MiB, full logits "
          f"{full_peak / 2**20:.0f} MiB")
    tps_plain, tps_ray = tokens / plain_s, tokens / ray_s
    print(f"RESULT ratio_ray_vs_plain={ray_s / plain_s:.3f} tokens_per_s_ray={tps_ray:.0f} "
          f"tokens_per_s_plain={tps_plain:.0f} peak_mem_ratio_vs_full_logits={ratio:.3f}")


if __name__ == "__main__":
    main()
