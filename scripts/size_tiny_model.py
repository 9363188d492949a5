"""Sizing study for the embedded default: train the tiny model from scratch on the toy task with a plain
single-process torch loop (no Ray), then measure sampled per-sample accuracy, greedy accuracy, majority-of-k
and pass@k on test problems. Prints one ``RESULT`` line.

    PYTHONPATH=$PWD .venv/bin/python scripts/size_tiny_model.py --steps 1500 --out /tmp/tiny-trained

Every knob of ``ToyTaskConfig`` / ``TinyModelConfig`` can be set as ``--task.max_ops=4`` / ``--model.hidden_size=96``.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mathray.grading.extract import last_boxed
from mathray.core.prompts import completion, plain_prompt
from mathray.jobs.tiny_model import TinyModelConfig, build_tiny_model
from mathray.core.toy import ToyTaskConfig, first_error, generate_problems

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=1500)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--warmup", type=int, default=50)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--eval_problems", type=int, default=100)
p.add_argument("--k", type=int, default=8)
p.add_argument("--temperature", type=float, default=1.0)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--out", default=None, help="save the trained model here")
p.add_argument("--eval_at", default="", help="also evaluate after these steps, e.g. 1000,2000")
args, rest = p.parse_known_args()
overrides = {"task": {}, "model": {}}
for item in rest:  # --task.key=value / --model.key=value
    key, value = item.lstrip("-").split("=", 1)
    section, name = key.split(".", 1)
    overrides[section][name] = value
task = ToyTaskConfig(**overrides["task"])
model_cfg = TinyModelConfig(**overrides["model"])
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)

# --- model and data
model_dir = args.out or tempfile.mkdtemp(prefix="tiny-")
build_tiny_model(model_dir, model_cfg, seed=args.seed)
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir)
print(f"params={sum(x.numel() for x in model.parameters())} vocab={len(tok)}", flush=True)
train = generate_problems(task, "train")
test = generate_problems(task, "test")[: args.eval_problems]
examples = []
for row in train:
    prompt = tok.encode(plain_prompt(row["problem"]), add_special_tokens=False)
    target = tok.encode(completion(row["reference_solution"]), add_special_tokens=False) + [tok.eos_token_id]
    examples.append((prompt + target, len(prompt)))


def get_batch(gen: torch.Generator):
    idx = torch.randint(len(examples), (args.batch,), generator=gen).tolist()
    width = max(len(examples[i][0]) for i in idx)
    ids = torch.full((args.batch, width), tok.pad_token_id)
    labels = torch.full((args.batch, width), -100)
    for r, i in enumerate(idx):
        seq, n_prompt = examples[i]
        ids[r, : len(seq)] = torch.tensor(seq)
        labels[r, n_prompt : len(seq)] = torch.tensor(seq[n_prompt:])  # loss on the solution only
    return ids, labels, (labels != -100) | (ids != tok.pad_token_id)


# --- evaluate
@torch.no_grad()
def sample(prompts: list[str], do_sample: bool, n: int) -> list[list[str]]:
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**enc, do_sample=do_sample, temperature=args.temperature if do_sample else None,
                         top_k=0 if do_sample else None, top_p=1.0 if do_sample else None,
                         num_return_sequences=n, max_new_tokens=64, pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]


def is_right(text: str, answer: str) -> bool:
    return last_boxed(text) == answer


def evaluate(step: int, train_s: float, loss: float) -> None:
    model.eval()
    t1 = time.time()
    prompts = [plain_prompt(r["problem"]) for r in test]
    greedy = sample(prompts, False, 1)
    samples = sample(prompts, True, args.k)
    eval_s = time.time() - t1
    greedy_acc = sum(is_right(g[0], r["answer"]) for g, r in zip(greedy, test)) / len(test)
    per_sample = sum(is_right(s, r["answer"]) for ss, r in zip(samples, test) for s in ss) / (len(test) * args.k)
    pass_k = sum(any(is_right(s, r["answer"]) for s in ss) for ss, r in zip(samples, test)) / len(test)
    majority = 0
    for ss, r in zip(samples, test):
        votes = collections.Counter(a for a in (last_boxed(s) for s in ss) if a is not None)
        majority += bool(votes) and votes.most_common(1)[0][0] == r["answer"]  # ties: first seen wins
    majority /= len(test)
    print("example:", repr(samples[0][0]))
    by_level = collections.defaultdict(list)
    for ss, r in zip(samples, test):
        by_level[r["level"]] += [is_right(s, r["answer"]) for s in ss]
    print("per-sample by level:", {k: round(sum(v) / len(v), 3) for k, v in sorted(by_level.items())})
    kinds = collections.Counter(first_error(task, json.loads(r["metadata"])["expression"], s)[1]
                                for ss, r in zip(samples, test) for s in ss if not is_right(s, r["answer"]))
    print("wrong samples by first error:", dict(kinds.most_common()))
    print(f"RESULT steps={step} batch={args.batch} train_s={train_s:.0f} steps_per_s={step / train_s:.2f} "
          f"loss={loss:.4f} per_sample_acc={per_sample:.3f} greedy_acc={greedy_acc:.3f} "
          f"maj@{args.k}={majority:.3f} pass@{args.k}={pass_k:.3f} eval_s={eval_s:.0f}")
    model.train()


# --- train
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
gen = torch.Generator().manual_seed(args.seed)
model.train()
eval_at = {int(x) for x in args.eval_at.split(",") if x}
t0, eval_time = time.time(), 0.0  # eval_time: seconds spent in intermediate evaluations, not training
for step in range(args.steps):
    lr = args.lr * min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
    for g in opt.param_groups:
        g["lr"] = lr
    ids, labels, mask = get_batch(gen)
    loss = model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if step + 1 in eval_at:
        t_eval = time.time()
        evaluate(step + 1, t_eval - t0 - eval_time, loss.item())
        eval_time += time.time() - t_eval
    if step % 100 == 0 or step == args.steps - 1:
        print(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {time.time() - t0 - eval_time:.0f}s", flush=True)
train_s = time.time() - t0 - eval_time
if args.out:
    model.save_pretrained(args.out)
evaluate(args.steps, train_s, loss.item())
