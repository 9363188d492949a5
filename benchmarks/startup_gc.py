"""Start-up CPU of a process's heavy imports with the garbage collector paused and the result frozen
(``runtime.startup.heavy_imports``, as shipped) against collecting as CPython does by default: each side in a
fresh Python process, as Ray starts a replica or a training worker, in rounds that alternate the sides.

    .venv/bin/python benchmarks/startup_gc.py

Two starts are timed (CPU seconds of the process, ``time.process_time``):
- ``engine``: an engine replica's ``build_llm`` on the tiny model (``from vllm import LLM`` and vLLM's engine
  start), then one seeded ``generate`` whose token ids both sides must share;
- ``worker``: a training worker's import of ``mathray.jobs.training.worker`` (transformers, peft), as
  ``job.train_func`` makes it once Ray Train's torch backend has loaded torch.
The best of each side over the rounds is kept (the machine may be shared).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fresh_process import run_side, sides_on_tiny_model  # noqa: E402
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROUNDS, PROMPTS, N, MAX_TOKENS = 3, 16, 4, 32


def _collecting() -> None:
    """The default side: ``heavy_imports`` replaced by a block that leaves the collector alone (before the
    modules that use it are imported)."""
    import mathray.runtime.startup as startup

    startup.heavy_imports = contextlib.nullcontext


def one_side(model: str, paused: bool) -> dict:
    """Runs in the child process: an engine replica's start-up CPU and the token digest of one generate."""
    if not paused:
        _collecting()
    from mathray.runtime.engine import EngineConfig, build_llm

    t0 = time.process_time()
    llm = build_llm(EngineConfig(model=model, device="cpu", enforce_eager=True, max_model_len=512), "cpu")
    cpu_s = time.process_time() - t0
    from vllm import SamplingParams

    from mathray.core.prompts import sample_prompt
    from mathray.core.toy import ToyTaskConfig, generate_problems

    prompts = [sample_prompt(p) for p in generate_problems(ToyTaskConfig(num_test=PROMPTS), "test")]
    params = [SamplingParams(n=N, max_tokens=MAX_TOKENS, temperature=1.0, seed=i) for i in range(len(prompts))]
    ids = [list(c.token_ids) for o in llm.generate(prompts, params, use_tqdm=False) for c in o.outputs]
    return {"cpu_s": cpu_s, "digest": hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]}


def worker_side(paused: bool) -> dict:
    """Runs in the child process: a training worker's import of its module (transformers, peft), as
    ``job.train_func`` does it, after Ray Train's torch backend has loaded torch."""
    if not paused:
        _collecting()
    import ray.train.torch  # noqa: F401

    from mathray.runtime import startup

    t0 = time.process_time()
    with startup.heavy_imports():
        import mathray.jobs.training.worker  # noqa: F401
    return {"cpu_s": time.process_time() - t0}


def main() -> None:
    sides = {"collecting": False, "paused": True}
    rounds = []
    for i in range(ROUNDS):
        engine = sides_on_tiny_model("startup_gc", sides)
        worker = {name: run_side("startup_gc", f"worker_side({flag})", name) for name, flag in sides.items()}
        rounds.append({"engine": engine, "worker": worker})
        print(f"round {i}: " + ", ".join(f"{kind} {name} {s['cpu_s']:.2f} CPU-s" for kind, by in rounds[-1].items()
                                         for name, s in by.items()), flush=True)
    best = {(kind, name): min(r[kind][name]["cpu_s"] for r in rounds) for kind in ("engine", "worker")
            for name in sides}
    same = len({s["digest"] for r in rounds for s in r["engine"].values()}) == 1
    print("RESULT " + " ".join(f"{kind}_cpu_s_{name}={v:.2f}" for (kind, name), v in best.items())
          + f" engine_saved_cpu_s={best['engine', 'collecting'] - best['engine', 'paused']:.2f}"
          + f" worker_saved_cpu_s={best['worker', 'collecting'] - best['worker', 'paused']:.2f} same_tokens={same}")


if __name__ == "__main__":
    main()
