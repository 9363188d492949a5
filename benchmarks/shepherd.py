"""Math-Shepherd labelling: the engine-loop labeler against synchronous rounds, and first-error vs full.

    .venv/bin/python benchmarks/shepherd.py
    (SHEPHERD_TRAIN_STEPS=N changes the training length; SHEPHERD_MODEL_DIR=DIR reuses a model this script
    trained and saved there before, skipping step 1)

1. Build the tiny model and train it on the toy task (plain torch loop, loss on the solution; 2500 steps,
   about 4 minutes on 2 cores) so rollouts reach the answer often enough for labels to mean something:
   with 1200 steps the completer solved 37% of its samples and its full-mode labels were monotone for
   only 93% of solutions (see benchmarks/RESULTS.md).
2. Sample solutions of toy test problems with it in one ``vllm.LLM`` (CPU), grade them.
3. Label the same solutions with the same engine (prefix cache reset before each run) and the same
   per-prefix seeds, so a prefix evaluated twice gets the same rollouts:
   - sync: the previous labeler, synchronous rounds (one ``llm.generate`` per round over every unfinished
     solution, grading in the loop), in calls of 64 solutions as the job's actor did (``LABEL_BATCH``), and
     in one call over all solutions;
   - engine loop (``jobs.rollout.RolloutLabeler``): requests advanced as they return, grading in the loop's
     own process (``grading_processes=0``, the CPU demo's setting: vLLM's engine core generates in its own
     process meanwhile) and, once per alternation, in a grading process (``grading_processes=1``, the GPU
     default); in calls of 64 and in one call over all solutions (the job labels a whole input shard per call);
     first-error mode stops each prefix at its first correct completion and probes where the expected
     rollouts are lowest (``search: weighted``; its defaults); once per alternation it runs with bisection
     instead (``search: bisect``) and with all K completions of every prefix (which is bisection too), each
     mechanism's own share of the speed;
   - first-error and full modes of the engine loop (token cost and agreement of the first-error step).
     Token counts: the engine's generated tokens (vLLM's counter), which include completions dropped
     part-way; the rows' ``tokens_generated`` count only the completions the labels rest on.
   The sync and engine-loop first-error runs alternate, three times each, and each one's fastest run is
   kept (the 2-core machine is shared). Also label reference solutions with an error injected at a known step.
Prints labels (labelled steps) per second, generated tokens, wall time, prefix-cache hit rate per run, the
agreements, and the ratios. Last line: ``RESULT token_ratio=... first_error_agreement=...
labels_per_s_ratio_vs_sync=...``.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # helpers.rounds: the round driver
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TRAIN_STEPS, BATCH, LR = int(os.environ.get("SHEPHERD_TRAIN_STEPS", 2500)), 64, 3e-3
PROBLEMS, SAMPLES_PER_PROBLEM, INJECTED = 600, 2, 40
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


def sync_label(labeler, rows: list[dict]) -> list[dict]:
    """The previous labeler: synchronous rounds (``tests/helpers/rounds.run_rounds``), one ``llm.generate`` per round
    over the next prefix of every unfinished solution, rollouts graded in the loop while the engine idles."""
    from helpers.rounds import run_rounds
    from mathray.core.shepherd import make_search
    from mathray.core.steps import prefix_text, split_steps
    from mathray.core.prompts import sample_prompt
    from mathray.jobs.rollout import final_grade, is_correct_answer, rollout_prompt

    cfg = labeler.cfg
    all_steps = [split_steps(r["text"], cfg.step_format) for r in rows]
    searches = [make_search(cfg.mode, len(st), cfg.k, final_grade(r, cfg.free_last_step))
                for r, st in zip(rows, all_steps)]
    tokens = [0] * len(rows)

    def evaluate(requests):
        outputs = labeler.llm.generate(
            [rollout_prompt(sample_prompt(rows[j]), rows[j]["text"], all_steps[j], i) for j, i in requests],
            [labeler._params(rows[j], i) for j, i in requests], use_tqdm=False)
        results = []
        for (j, i), res in zip(requests, outputs):
            prefix = prefix_text(rows[j]["text"], all_steps[j], i)
            tokens[j] += sum(len(c.token_ids) for c in res.outputs)
            results.append(sum(c.finish_reason != "length" and is_correct_answer(prefix + "\n" + c.text,
                                                                                 rows[j]["reference_answer"])
                               for c in res.outputs))
        return results

    run_rounds(searches, evaluate)
    out = []
    for r, st, s, t in zip(rows, all_steps, searches, tokens):
        lab = s.labels()
        out.append({"problem_id": r["problem_id"], "sample_id": r["sample_id"], "steps": [x.text for x in st],
                    "hard_labels": lab.hard, "first_error_step": lab.first_error, "tokens_generated": t,
                    "rollouts": lab.rollouts})
    return out


def label_run(labeler, rows: list[dict], mode: str, how: str, per_call: int | None,
              stop_at_correct: bool | None = None, search: str = "weighted") -> tuple[dict, dict]:
    """Label ``rows`` in calls of ``per_call`` solutions (None: one call); ({key: row}, cost)."""
    from mathray.jobs.rollout import LabelingConfig, engine_counters

    labeler.cfg = LabelingConfig(mode=mode, k=K, max_tokens=MAX_TOKENS, temperature=TEMPERATURE,
                                 grading_processes=labeler.cfg.grading_processes, stop_at_correct=stop_at_correct,
                                 search=search)
    labeler.llm.reset_prefix_cache()
    before = engine_counters(labeler.llm)
    per_call = per_call or len(rows)
    t0, out = time.time(), []
    for i in range(0, len(rows), per_call):
        chunk = rows[i: i + per_call]
        out += sync_label(labeler, chunk) if how == "sync" else labeler.label(chunk)
    wall = time.time() - t0
    after = engine_counters(labeler.llm)
    steps = sum(len(r["steps"]) for r in out)
    queries = after["prefix_cache_queries"] - before["prefix_cache_queries"]
    cost = {"wall_s": wall, "steps": steps, "labels_per_s": steps / wall,
            # the completions the labels rest on, and all the engine generated (with completions dropped
            # part-way when a prefix stopped at a correct one)
            "tokens_generated": sum(r["tokens_generated"] for r in out),
            "engine_tokens": after["generation_tokens"] - before["generation_tokens"],
            "rollouts": sum(sum(r["rollouts"]) for r in out),
            "prefix_cache_hit_rate": (after["prefix_cache_hits"] - before["prefix_cache_hits"]) / queries
            if queries else float("nan")}
    return {(r["problem_id"], r["sample_id"]): r for r in out}, cost



def agreement(a: dict, b: dict, keys=None) -> float:
    keys = list(keys if keys is not None else a)
    return sum(a[k]["first_error_step"] == b[k]["first_error_step"] for k in keys) / max(len(keys), 1)


def main() -> None:
    from mathray.runtime.engine import EngineConfig, build_llm
    from mathray.jobs.rollout import LabelingConfig, RolloutLabeler
    from mathray.core.shepherd import is_monotone
    from mathray.core.steps import split_steps
    from mathray.core.toy import ToyTaskConfig, generate_problems

    # the embedded task's default operands (1..20, results <= 200) are too hard for a few minutes of CPU
    # training (run 1: 4% of samples correct); single-digit operands keep 2-4 steps of arithmetic
    task = ToyTaskConfig(num_train=20000, num_test=PROBLEMS + INJECTED, min_ops=2, max_ops=4, max_operand=9,
                         max_result=99)
    if os.environ.get("SHEPHERD_MODEL_DIR") and (Path(os.environ["SHEPHERD_MODEL_DIR"]) / "config.json").exists():
        model_dir, info = Path(os.environ["SHEPHERD_MODEL_DIR"]), {"train_s": 0.0, "loss": float("nan")}
        print(f"reusing the model trained earlier in {model_dir}")
    else:
        model_dir = Path(os.environ.get("SHEPHERD_MODEL_DIR") or Path(tempfile.mkdtemp(prefix="shepherd-bench-")) / "model")
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
    labeler = RolloutLabeler(engine, LabelingConfig(k=K, grading_processes=0), llm=llm)
    pooled = RolloutLabeler(engine, LabelingConfig(k=K, grading_processes=1), llm=llm)   # same engine

    runs: dict[str, tuple[dict, dict]] = {}

    def run(name: str, mode: str, how: str, per_call: int | None, which=labeler, stop=None,
            search="weighted") -> None:
        labels, cost = label_run(which, rows, mode, how, per_call, stop, search)
        if name not in runs or cost["wall_s"] < runs[name][1]["wall_s"]:
            runs[name] = (labels, cost)
        print(f"{name:30s} labels/s={cost['labels_per_s']:7.1f} wall_s={cost['wall_s']:6.2f} "
              f"tokens={cost['tokens_generated']} engine_tokens={cost['engine_tokens']} rollouts={cost['rollouts']} "
              f"prefix_cache_hit_rate={cost['prefix_cache_hit_rate']:.3f}", flush=True)

    for _ in range(3):   # alternate the sides of the ratios; keep each side's fastest run
        run("sync first-error @64", "first-error", "sync", LABEL_BATCH)
        run("loop first-error @all", "first-error", "loop", None)
        run("sync first-error @all", "first-error", "sync", None)
        run("loop first-error bisect @all", "first-error", "loop", None, search="bisect")
        run("loop first-error all K @all", "first-error", "loop", None, stop=False)
        run("loop+process first-error @all", "first-error", "loop", None, pooled)
    run("loop first-error @64", "first-error", "loop", LABEL_BATCH)
    run("loop full @all", "full", "loop", None)
    sync, fe, fe64, full = (runs[n][0] for n in ("sync first-error @64", "loop first-error @all",
                                                 "loop first-error @64", "loop full @all"))
    wrong = [k for k in full if not next(r for r in rows if (r["problem_id"], r["sample_id"]) == k)["is_correct"]]
    agree = agreement(full, fe)
    monotone = sum(is_monotone(r["hard_labels"]) for r in full.values()) / len(full)
    tokens_full, tokens_fe = (runs[n][1]["engine_tokens"] for n in ("loop full @all", "loop first-error @all"))
    ratio = tokens_fe / tokens_full
    speed = runs["loop first-error @all"][1]["labels_per_s"] / runs["sync first-error @64"][1]["labels_per_s"]
    speed64 = runs["loop first-error @64"][1]["labels_per_s"] / runs["sync first-error @64"][1]["labels_per_s"]
    speed_all = runs["loop first-error @all"][1]["labels_per_s"] / runs["sync first-error @all"][1]["labels_per_s"]
    speed_pool = (runs["loop+process first-error @all"][1]["labels_per_s"]
                  / runs["sync first-error @64"][1]["labels_per_s"])
    vs_full = runs["loop first-error @all"][1]["labels_per_s"] / runs["loop full @all"][1]["labels_per_s"]
    per_s = {name: cost["labels_per_s"] for name, (_, cost) in runs.items()}
    stop_gain = per_s["loop first-error bisect @all"] / per_s["loop first-error all K @all"]
    search_gain = per_s["loop first-error @all"] / per_s["loop first-error bisect @all"]
    all_k, bisect = runs["loop first-error all K @all"][0], runs["loop first-error bisect @all"][0]
    print(f"first-error agreement with full: {agree:.3f} over {len(full)} solutions ({agreement(full, fe, wrong):.3f} "
          f"over the {len(wrong)} wrong ones); full labels monotone: {monotone:.3f}")
    print(f"stopping prefixes at their first correct completion (both bisecting): same labels as all K "
          f"{sum(bisect[k]['hard_labels'] == all_k[k]['hard_labels'] for k in fe) / len(fe):.3f}, engine tokens "
          f"{runs['loop first-error bisect @all'][1]['engine_tokens']} vs "
          f"{runs['loop first-error all K @all'][1]['engine_tokens']}, labels/s ratio {stop_gain:.3f}")
    print(f"weighted search vs bisection (both stopping): same first error {agreement(bisect, fe):.3f}, "
          f"rollouts {runs['loop first-error @all'][1]['rollouts']} vs {runs['loop first-error bisect @all'][1]['rollouts']}, "
          f"engine tokens {runs['loop first-error @all'][1]['engine_tokens']} vs "
          f"{runs['loop first-error bisect @all'][1]['engine_tokens']}, labels/s ratio {search_gain:.3f}; "
          f"first-error agreement with full: bisection {agreement(full, bisect):.3f}")
    print(f"engine loop vs sync rounds (first-error): same first error {agreement(sync, fe):.3f} "
          f"(@64: {agreement(sync, fe64):.3f}); labels/s ratio {speed:.3f} (loop, whole set per call, vs the "
          f"previous job's calls of {LABEL_BATCH}), {speed_all:.3f} (both whole set per call), {speed64:.3f} (both "
          f"in calls of {LABEL_BATCH})")

    inj_rows, known = injected_solutions(test[PROBLEMS:PROBLEMS + INJECTED])
    for mode in ("full", "first-error"):
        out, cost = label_run(labeler, inj_rows, mode, "loop", None)
        hit = sum(r["first_error_step"] == known[r["problem_id"]] for r in out.values()) / len(out)
        print(f"injected errors, {mode:12s}: first error found at the injected step {hit:.3f} "
              f"({len(out)} solutions, tokens={cost['tokens_generated']})", flush=True)
    labeler.close()
    pooled.close()
    print(json.dumps({name: cost for name, (_, cost) in runs.items()}))
    print(f"RESULT token_ratio={ratio:.3f} first_error_agreement={agree:.3f} labels_per_s_ratio_vs_sync={speed:.3f} "
          f"ratio_vs_sync_whole_set={speed_all:.3f} ratio_vs_sync_calls_of_64={speed64:.3f} "
          f"ratio_with_grading_process={speed_pool:.3f} ratio_stop_at_correct_vs_all_k={stop_gain:.3f} "
          f"ratio_weighted_vs_bisect={search_gain:.3f} "
          f"labels_per_s_ratio_vs_full={vs_full:.3f} agreement_vs_sync={agreement(sync, fe):.3f} "
          f"tokens_full={tokens_full} tokens_first_error={tokens_fe}")


if __name__ == "__main__":
    main()
