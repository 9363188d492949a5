"""A CPU engine replica's first request with log-probs: vLLM's sampler helper compiled by ``torch.compile`` (vLLM's
default, even under ``enforce_eager``) against run eagerly (TorchDynamo off: what ``runtime.engine.build_llm`` sets
for a CPU replica with ``enforce_eager``).

Each side runs in a fresh Python process: it builds the engine as a replica does (``build_llm``), sets TorchDynamo on
or off, then times the first ``generate`` of PROBLEMS toy prompts x N seeded samples x MAX_TOKENS asking for each
token's log-prob (as the sampling job does) and then a second, identical one. Both sides must give the same token
ids, log-probs and ranks (the digest is compared): the setting changes start-up time, not results.

    .venv/bin/python benchmarks/eager_sampler.py
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

PROBLEMS, N, MAX_TOKENS = 64, 4, 32


def one_side(model: str, compiled: bool) -> dict:
    """Runs in the child process: the timings and the output digest of one side."""
    import torch._dynamo
    from vllm import SamplingParams

    from mathray.core.prompts import sample_prompt
    from mathray.core.toy import ToyTaskConfig, generate_problems
    from mathray.runtime.engine import EngineConfig, build_llm

    llm = build_llm(EngineConfig(model=model, device="cpu", enforce_eager=True, max_model_len=256), "cpu")
    torch._dynamo.config.disable = not compiled
    prompts = [sample_prompt(p) for p in generate_problems(ToyTaskConfig(num_test=PROBLEMS), "test")]
    params = [SamplingParams(n=N, max_tokens=MAX_TOKENS, temperature=1.0, seed=i, logprobs=0)
              for i in range(len(prompts))]
    times, outputs = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        out = llm.generate(prompts, params, use_tqdm=False)
        times.append(time.perf_counter() - t0)
        outputs.append([(list(c.token_ids), c.cumulative_logprob, [next(iter(d.values())).rank for d in c.logprobs])
                        for o in out for c in o.outputs])
    return {"first_s": times[0], "second_s": times[1],
            "digest": hashlib.sha256(json.dumps(outputs).encode()).hexdigest()[:16]}


def main() -> None:
    sides = sides_on_tiny_model("eager_sampler", {"compiled": True, "eager": False})
    for name, s in sides.items():
        print(f"{name}: first request {s['first_s']:.2f} s, second {s['second_s']:.2f} s, digest {s['digest']}")
    a, b = sides["compiled"], sides["eager"]
    print(f"RESULT first_request_s_compiled={a['first_s']:.2f} first_request_s_eager={b['first_s']:.2f} "
          f"second_request_s_compiled={a['second_s']:.2f} second_request_s_eager={b['second_s']:.2f} "
          f"same_outputs={a['digest'] == b['digest']}")


if __name__ == "__main__":
    main()
