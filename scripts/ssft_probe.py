"""Which SSFT generator the toy task yields, and what its wrong samples are: trains the tiny model from the same
initialisation either through the training job (``--path job``: ``training.worker.run_local``, the Trainer /
TRL stack the pipeline's SSFT stage runs) or through a plain torch loop (``--path plain``: batches drawn with
replacement, AdamW, linear warmup over 3% of the steps, cosine decay, gradient norm clipped at 1), then samples
``--k`` solutions per test problem with transformers at ``--temperature`` and classifies every wrong one by
its first error against the exact arithmetic (``toy.first_error``: ``taught`` or the other kinds).

    PYTHONPATH=$PWD .venv/bin/python scripts/ssft_probe.py --path job --seed 0 --task.min_ops=1 ...

Every ``ToyTaskConfig`` / ``TinyModelConfig`` knob as ``--task.name=value`` / ``--model.name=value``.
Last line: ``RESULT path=… seed=… per_sample=… maj=… mixed_problems=… kinds={…} train_s=…``.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import tempfile
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from mathray.core import schemas  # noqa: E402
from mathray.core.prompts import completion, plain_prompt  # noqa: E402
from mathray.core.toy import ToyTaskConfig, first_error, generate_problems  # noqa: E402
from mathray.grading.extract import last_boxed  # noqa: E402
from mathray.jobs.tiny_model import TinyModelConfig, build_tiny_model  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--path", choices=["job", "plain"], default="job")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--adam_beta2", type=float, default=0.999)
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--batches", choices=["replacement", "epochs"], default="replacement",
                   help="plain loop: batches drawn with replacement, or each example once per epoch (as the Trainer)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--eval_problems", type=int, default=150)
    p.add_argument("--k", type=int, default=8)
    args, rest = p.parse_known_args()
    overrides = {"task": {}, "model": {}}
    for item in rest:
        key, value = item.lstrip("-").split("=", 1)
        section, name = key.split(".", 1)
        overrides[section][name] = value
    return args, ToyTaskConfig(**overrides["task"]), TinyModelConfig(**overrides["model"])


def train_with_job(args, train: list[dict], base: str, work: str) -> str:
    from mathray.jobs.training.config import TrainJobConfig
    from mathray.jobs.training.worker import run_local
    from mathray.runtime.models import fetch_model
    from mathray.runtime.storage import ShardStore, shard_name

    store = ShardStore(f"{work}/problems")
    store.commit_shard(shard_name(0), schemas.to_table(train, schemas.PROBLEMS))
    store.write_manifest()
    cfg = TrainJobConfig(task="ssft", model=base, output=f"{work}/out", seed=args.seed, report_to=["none"],
                         checkpoint_every=10 * args.steps, data={"ssft": [f"{work}/problems"], "max_len": 256},
                         optim={"lr": args.lr, "steps": args.steps, "batch_size": args.batch,
                                "adam_beta2": args.adam_beta2, "weight_decay": args.weight_decay})
    run_local(cfg)
    return fetch_model(f"{work}/out/final")


def train_with_plain_loop(args, train: list[dict], base: str, work: str) -> str:
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    examples = []
    for row in train:
        prompt = tok.encode(plain_prompt(row["problem"]), add_special_tokens=False)
        target = tok.encode(completion(row["reference_solution"]), add_special_tokens=False) + [tok.eos_token_id]
        examples.append((prompt + target, len(prompt)))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay,
                            betas=(0.9, args.adam_beta2))
    gen = torch.Generator().manual_seed(args.seed)
    warmup = max(1, int(0.03 * args.steps))
    order: list[int] = []
    model.train()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = (args.lr * min(1.0, (step + 1) / warmup)
                           * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        if args.batches == "replacement":
            picked = torch.randint(len(examples), (args.batch,), generator=gen).tolist()
        else:
            if len(order) < args.batch:
                order = torch.randperm(len(examples), generator=gen).tolist()
            picked, order = order[: args.batch], order[args.batch :]
        batch = [examples[i] for i in picked]
        width = max(len(seq) for seq, _ in batch)
        ids = torch.full((args.batch, width), tok.pad_token_id)
        labels = torch.full((args.batch, width), -100)
        for r, (seq, n_prompt) in enumerate(batch):
            ids[r, : len(seq)] = torch.tensor(seq)
            labels[r, n_prompt : len(seq)] = torch.tensor(seq[n_prompt:])   # loss on the solution only
        mask = ((labels != -100) | (ids != tok.pad_token_id)).long()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    out = f"{work}/plain"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@torch.no_grad()
def sample(model_dir: str, prompts: list[str], k: int, temperature: float) -> list[list[str]]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    texts = []
    for i in range(0, len(prompts), 50):
        enc = tok(prompts[i : i + 50], return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                             num_return_sequences=k, max_new_tokens=64, pad_token_id=tok.pad_token_id)
        texts += tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]


def main() -> None:
    args, task, model_cfg = parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    work = tempfile.mkdtemp(prefix="ssft-probe-")
    build_tiny_model(f"{work}/base", model_cfg, seed=args.seed)
    train = generate_problems(task, "train")
    test = generate_problems(task.model_copy(update={"distinct": True}), "test")[: args.eval_problems]
    t0 = time.time()
    trainer = train_with_job if args.path == "job" else train_with_plain_loop
    model_dir = trainer(args, train, f"{work}/base", work)
    train_s = time.time() - t0
    samples = sample(model_dir, [plain_prompt(r["problem"]) for r in test], args.k, args.temperature)
    right = [[last_boxed(s) == r["answer"] for s in ss] for ss, r in zip(samples, test)]
    per_sample = sum(map(sum, right)) / (len(test) * args.k)
    majority = sum(collections.Counter(map(last_boxed, ss)).most_common(1)[0][0] == r["answer"]
                   for ss, r in zip(samples, test)) / len(test)
    mixed = sum(0 < sum(x) < args.k for x in right)
    kinds = collections.Counter(first_error(task, json.loads(r["metadata"])["expression"], s)[1]
                                for ss, r, ok in zip(samples, test, right) for s, o in zip(ss, ok) if not o)
    print(f"RESULT path={args.path} seed={args.seed} steps={args.steps} per_sample={per_sample:.3f} "
          f"maj={majority:.3f} mixed_problems={mixed} kinds={dict(kinds.most_common())} train_s={train_s:.0f}")


if __name__ == "__main__":
    main()
