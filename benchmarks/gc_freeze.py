"""A replica's engine start with the heap frozen before vLLM starts (``build_llm`` collects once and calls
``gc.freeze()``) against without (vLLM's own start-up collections walk every object its imports made, then it
freezes the heap itself): start-up time on the tiny model, each side in a fresh Python process as a replica
starts, and the same token ids from one seeded ``generate`` on both sides.

    .venv/bin/python benchmarks/gc_freeze.py
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fresh_process import sides_on_tiny_model  # noqa: E402
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROBLEMS, N, MAX_TOKENS = 64, 4, 32


def one_side(model: str, freeze: bool) -> dict:
    """Runs in the child process: the engine's start-up time and the token digest of one side."""
    from vllm import SamplingParams

    import mathray.runtime.engine as engine
    from mathray.core.prompts import sample_prompt
    from mathray.core.toy import ToyTaskConfig, generate_problems

    if not freeze:   # build_llm as it was before: no collection or freeze of its own
        engine.gc = types.SimpleNamespace(collect=lambda: 0, freeze=lambda: None)
    cfg = engine.EngineConfig(model=model, device="cpu", enforce_eager=True, max_model_len=512)
    t0 = time.perf_counter()
    llm = engine.build_llm(cfg, "cpu")
    start_s = time.perf_counter() - t0
    prompts = [sample_prompt(p) for p in generate_problems(ToyTaskConfig(num_test=PROBLEMS), "test")]
    params = [SamplingParams(n=N, max_tokens=MAX_TOKENS, temperature=1.0, seed=i) for i in range(len(prompts))]
    ids = [list(c.token_ids) for o in llm.generate(prompts, params, use_tqdm=False) for c in o.outputs]
    return {"start_s": start_s, "digest": hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]}


def main() -> None:
    rounds = [sides_on_tiny_model("gc_freeze", {"unfrozen": False, "frozen": True}) for _ in range(3)]
    for i, sides in enumerate(rounds):
        print(f"round {i}: " + ", ".join(f"{n} start {s['start_s']:.2f} s digest {s['digest']}"
                                         for n, s in sides.items()))
    best = {n: min(r[n]["start_s"] for r in rounds) for n in ("unfrozen", "frozen")}
    same = len({s["digest"] for r in rounds for s in r.values()}) == 1
    print(f"RESULT start_s_unfrozen={best['unfrozen']:.2f} start_s_frozen={best['frozen']:.2f} "
          f"saved_s={best['unfrozen'] - best['frozen']:.2f} same_tokens={same}")


if __name__ == "__main__":
    main()
