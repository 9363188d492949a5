"""Math-Shepherd labelling cost: ``full`` (every prefix) vs ``first-error`` (binary search) on toy samples.

    .venv/bin/python benchmarks/shepherd.py        (SHEPHERD_TRAIN_STEPS=N changes the training length)

1. Build the tiny model and train it on the toy task (plain torch loop, loss on the solution; 2500 steps,
   about 4 minutes on 2 cores) so rollouts reach the answer often enough for labels to mean something:
   with 1200 steps the completer solved 37% of its samples and its full-mode labels were monotone for
   only 93% of solutions (see benchmarks/RESULTS.md).
2. Sample solutions of toy test problems with it in one ``vllm.LLM`` (CPU), grade them.
3. Label the same solutions in both modes with the same engine (prefix cache reset between modes) and
   the same per-prefix seeds, so a prefix evaluated by both modes gets the same rollouts and the comparison
   isolates the search. Also label reference solutions with an error injected at a known step.
Prints generated tokens, wall time, engine calls and prefix-cache hit rate per mode, the agreement of the
first-error position between the modes, and the ratio. Last line: ``RESULT token_ratio=...``.
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TRAIN_STEPS, BATCH, LR = int(os.environ.get("SHEPHERD_TRAIN_STEPS", 2500)), 64, 3e-3
PROBLEMS, SAMPLES_PER_PROBLEM, INJECTED = 150, 2, 40
K, MAX_TOKENS, TEMPERATURE, LABEL_BATCH = 8, 96, 0.7, 64


def train_tiny_model(model_dir: Path, task) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mathray.core.prompts import completion, plain_prompt
    from mathray.jobs.tiny_model import build_tiny_model
    from mathray.core.toy import generate_problems

    torch.set_num_threads(2)
    torch.manual_seed(0)
    build_tiny_model(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    examples = []
    for row in generate_problems(task, "train"):
        prompt = tok.encode(plain_prompt(row["problem"]), add_special_tokens=False)
        target = tok.encode(completion(row["reference_solution"]), add_special_tokens=False) + [tok.eos_token_id]
        examples.append((prompt + target, len(prompt)))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(TRAIN_STEPS):
        lr = LR * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / TRAIN_STEPS))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(len(examples), (BATCH,), generator=gen).tolist()
        width = max(len(examples[i][0]) for i in idx)
        ids = torch.full((BATCH, width), tok.pad_token_id)
        labels = torch.full((BATCH, width), -100)
        for r, i in enumerate(idx):
            seq, n_prompt = examples[i]
            ids[r, : len(seq)] = torch.tensor(seq)
            labels[r, n_prompt: len(seq)] = torch.tensor(seq[n_prompt:])
        mask = (labels != -100) | (ids != tok.pad_token_id)
        loss = model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 200 == 0 or step == TRAIN_STEPS - 1:
            print(f"train step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return {"train_s": time.time() - t0, "loss": loss.item()}


def sample_solutions(llm, problems: list[dict]) -> list[dict]:
    from vllm import SamplingParams

    from mathray.grading import grade
    from mathray.core.prompts import STOP_STRINGS, plain_prompt

    params = SamplingParams(n=SAMPLES_PER_PROBLEM, temperature=TEMPERATURE, max_tokens=MAX_TOKENS, stop=STOP_STRINGS,
                            seed=12345)
    outs = llm.generate([plain_prompt(p["problem"]) for p in problems], params, use_tqdm=False)
    rows = []
    for p, out in zip(problems, outs):
        for sid, c in enumerate(out.outputs):
            g = grade(c.text, p["answer"])
            rows.append({"problem_id": p["problem_id"], "sample_id": sid, "problem": p["problem"],
                         "reference_answer": p["answer"], "text": c.text, "answer": g.answer,
                         "is_correct": g.is_correct, "finish_reason": c.finish_reason})
    return rows


def injected_solutions(problems: list[dict]) -> tuple[list[dict], dict]:
    from mathray.core.toy import inject_error

    rng, rows, known = random.Random(1), [], {}
    for p in problems:
        lines = p["reference_solution"].split("\n")
        step = rng.randrange(len(lines) - 1)
        wrong = inject_error(lines, step, rng)
        rows.append({"problem_id": p["problem_id"], "sample_id": 100, "problem": p["problem"],
                     "reference_answer": p["answer"], "text": "\n".join(wrong),
                     "answer": wrong[-1].split("{")[1].split("}")[0], "is_correct": False,
                     "finish_reason": "stop"})
        known[p["problem_id"]] = step
    return rows, known


def label_mode(labeler, llm, rows: list[dict], mode: str) -> tuple[list[dict], dict]:
    from mathray.jobs.rollout import LabelingConfig, cost_summary
    from mathray.core.schemas import STEP_LABELS, to_table

    labeler.cfg = LabelingConfig(mode=mode, k=K, max_tokens=MAX_TOKENS, temperature=TEMPERATURE)
    llm.reset_prefix_cache()
    t0, out = time.time(), []
    for i in range(0, len(rows), LABEL_BATCH):   # the job's actor batches: one round loop per batch
        out += labeler.label(rows[i: i + LABEL_BATCH])
    wall = time.time() - t0
    cost = cost_summary(to_table(out, STEP_LABELS))
    cost["wall_s"] = wall
    return out, cost


def main() -> None:
    from mathray.runtime.engine import EngineConfig, build_llm
    from mathray.jobs.rollout import RolloutLabeler
    from mathray.core.shepherd import is_monotone
    from mathray.core.steps import split_steps
    from mathray.core.toy import ToyTaskConfig, generate_problems

    # the embedded task's default operands (1..20, results <= 200) are too hard for a few minutes of CPU
    # training (run 1: 4% of samples correct); single-digit operands keep 2-4 steps of arithmetic
    task = ToyTaskConfig(num_train=20000, num_test=PROBLEMS + INJECTED, min_ops=2, max_ops=4, max_operand=9,
                         max_result=99)
    tmp = Path(tempfile.mkdtemp(prefix="shepherd-bench-"))
    model_dir = tmp / "model"
    info = train_tiny_model(model_dir, task)
    engine = EngineConfig(model=str(model_dir), device="cpu", enforce_eager=True, max_model_len=512,
                          kv_cache_memory_bytes=256 * 2**20,
                          engine_kwargs={"block_size": 32, "disable_log_stats": False})
    llm = build_llm(engine, "cpu")
    test = generate_problems(task, "test")
    rows = [r for r in sample_solutions(llm, test[:PROBLEMS]) if split_steps(r["text"])]
    n_correct = sum(r["is_correct"] for r in rows)
    print(f"trained {TRAIN_STEPS} steps in {info['train_s']:.0f}s (loss {info['loss']:.3f}); "
          f"{len(rows)} sampled solutions, {n_correct} correct ({n_correct / len(rows):.1%})", flush=True)
    labeler = RolloutLabeler(engine, None, llm=llm)

    results = {}
    for mode in ("full", "first-error"):
        out, cost = label_mode(labeler, llm, rows, mode)
        results[mode] = ({(r["problem_id"], r["sample_id"]): r for r in out}, cost)
        print(f"{mode:12s} tokens={cost['tokens_generated']} rollouts={cost['rollouts']} "
              f"tokens/solution={cost['tokens_per_solution']:.1f} tokens/step={cost['tokens_per_step']:.1f} "
              f"engine_calls={cost['engine_calls']} wall_s={cost['wall_s']:.1f} "
              f"prefix_cache_hit_rate={cost['prefix_cache_hit_rate']:.3f}", flush=True)
    full, fe = results["full"][0], results["first-error"][0]
    agree = sum(full[k]["first_error_step"] == fe[k]["first_error_step"] for k in full) / len(full)
    wrong = [k for k in full if not next(r for r in rows if (r["problem_id"], r["sample_id"]) == k)["is_correct"]]
    agree_wrong = sum(full[k]["first_error_step"] == fe[k]["first_error_step"] for k in wrong) / max(len(wrong), 1)
    monotone = sum(is_monotone(r["hard_labels"]) for r in full.values()) / len(full)
    tokens_full = results["full"][1]["tokens_generated"]
    tokens_fe = results["first-error"][1]["tokens_generated"]
    ratio = tokens_fe / tokens_full
    print(f"first-error agreement: {agree:.3f} over {len(full)} solutions ({agree_wrong:.3f} over the "
          f"{len(wrong)} wrong ones); full labels monotone: {monotone:.3f}")
    print(f"wall time ratio first-error/full: {results['first-error'][1]['wall_s'] / results['full'][1]['wall_s']:.3f}")

    inj_rows, known = injected_solutions(test[PROBLEMS:PROBLEMS + INJECTED])
    for mode in ("full", "first-error"):
        out, cost = label_mode(labeler, llm, inj_rows, mode)
        hit = sum(r["first_error_step"] == known[r["problem_id"]] for r in out) / len(out)
        print(f"injected errors, {mode:12s}: first error found at the injected step {hit:.3f} "
              f"({len(out)} solutions, tokens={cost['tokens_generated']})", flush=True)
    print(json.dumps({m: {k: v for k, v in c.items()} for m, (_, c) in results.items()}))
    print(f"RESULT token_ratio={ratio:.3f} first_error_agreement={agree:.3f} tokens_full={tokens_full} "
          f"tokens_first_error={tokens_fe}")


if __name__ == "__main__":
    main()
