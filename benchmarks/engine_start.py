"""vLLM's engine core in processes of its own (vLLM's default) against inside the replica's process
(``EngineConfig.in_process``, the default on CPU): start-up time and steady generation on the tiny model.

Each side runs in a fresh Python process (vLLM fixes its environment once an engine has started): it builds the
engine as a replica does (``build_llm``), times that, makes one warm-up call, then times
one ``generate`` of PROBLEMS toy prompts x N seeded samples x MAX_TOKENS. Both sides must produce the same
token ids (the digest is compared): the option changes speed, not results.

    .venv/bin/python benchmarks/engine_start.py
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fresh_process import sides_on_tiny_model  # noqa: E402
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROBLEMS, N, MAX_TOKENS = 256, 8, 64


def one_side(model: str, in_process: bool) -> dict:
    """Runs in the child process: the timings and the token digest of one side."""
    from vllm import SamplingParams

    from mathray.core.prompts import sample_prompt
    from mathray.core.toy import ToyTaskConfig, generate_problems
    from mathray.runtime.engine import EngineConfig, build_llm

    cfg = EngineConfig(model=model, device="cpu", enforce_eager=True, max_model_len=512, in_process=in_process)
    t0 = time.perf_counter()
    llm = build_llm(cfg, "cpu")
    start_s = time.perf_counter() - t0
    problems = generate_problems(ToyTaskConfig(num_test=PROBLEMS), "test")
    prompts = [sample_prompt(p) for p in problems]
    params = [SamplingParams(n=N, max_tokens=MAX_TOKENS, temperature=1.0, seed=i) for i in range(len(prompts))]
    llm.generate(prompts[:8], params[:8], use_tqdm=False)
    t0 = time.perf_counter()
    out = llm.generate(prompts, params, use_tqdm=False)
    generate_s = time.perf_counter() - t0
    ids = [list(c.token_ids) for o in out for c in o.outputs]
    return {"start_s": start_s, "generate_s": generate_s, "tokens": sum(map(len, ids)),
            "digest": hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]}


def main() -> None:
    sides = sides_on_tiny_model("engine_start", {"processes": False, "in_process": True})
    for name, s in sides.items():
        print(f"{name}: start {s['start_s']:.1f} s, generate {s['tokens']} tokens in {s['generate_s']:.1f} s "
              f"({s['tokens'] / s['generate_s']:.0f} tokens/s), digest {s['digest']}")
    a, b = sides["processes"], sides["in_process"]
    print(f"RESULT start_s_processes={a['start_s']:.1f} start_s_in_process={b['start_s']:.1f} "
          f"tokens_per_s_processes={a['tokens'] / a['generate_s']:.0f} "
          f"tokens_per_s_in_process={b['tokens'] / b['generate_s']:.0f} same_tokens={a['digest'] == b['digest']}")


if __name__ == "__main__":
    main()
