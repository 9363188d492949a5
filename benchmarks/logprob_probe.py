"""Where the generator's log-prob baseline gets its within-problem signal, on a finished demo run.

    .venv/bin/python benchmarks/logprob_probe.py [RUN_ROOT] [CONFIG]
        (defaults runs/default and rayjobs/configs/demo.yaml: run scripts/demo.sh first)

Reads the run's SSFT export (``<root>/train/ssft/final``) and its test samples (``<root>/samples/test``),
runs one forward pass per sample (prompt + the sample's text) and compares, within each problem that has
both correct and wrong samples, three scores of the same sample: its mean token log-prob (the report's
baseline), its lowest token log-prob, and minus the number of its tokens that are not the generator's own
argmax at that position ("left the mode"). Also: the share of wrong / correct samples with at least one such
token. If "left the mode" separates as well as the log-prob, the baseline is detecting sampled slips, which a
trained evaluator can only score by comparing a token with the network's own prediction of it.

It also classifies every wrong sample by its first error against the exact solution (``toy.first_error``, with
the run config's toy task): ``taught`` errors (the teacher's held wrong value) against the rest (slips).

Last line: ``RESULT within_mean_logprob=… within_min_logprob=… within_off_argmax=… wrong_off_argmax=…
correct_off_argmax=… problems=…``. Re-tokenising the decoded text can differ from the sampled token ids in
rare cases; the probe reads the text as the evaluators do.
"""
from __future__ import annotations

import os
import sys
from collections import defaultdict

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def first_error_kinds(root: str, config: str) -> dict[tuple[str, int], str]:
    """{(problem_id, sample_id): first-error kind} of the run's wrong test samples."""
    import json

    import yaml

    from mathray.core.toy import ToyTaskConfig, first_error
    from mathray.runtime.storage import ShardStore

    task = ToyTaskConfig(**yaml.safe_load(open(config))["data"]["test"]["toy"])
    expr = {r["problem_id"]: json.loads(r["metadata"])["expression"]
            for r in ShardStore(f"{root}/problems/test").read_all(["problem_id", "metadata"]).to_pylist()}
    rows = ShardStore(f"{root}/samples/test").read_all(["problem_id", "sample_id", "text", "is_correct"]).to_pylist()
    return {(r["problem_id"], r["sample_id"]): first_error(task, expr[r["problem_id"]], r["text"])[1] or "none"
            for r in rows if not r["is_correct"]}


def main(root: str = "runs/default", config: str = "rayjobs/configs/demo.yaml") -> None:
    from collections import Counter

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mathray.core import metrics
    from mathray.core.prompts import sample_prompt
    from mathray.runtime.models import fetch_model
    from mathray.runtime.storage import ShardStore

    torch.set_num_threads(1)
    model_dir = fetch_model(f"{root}/train/ssft/final")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    rows = ShardStore(f"{root}/samples/test").read_all(
        ["problem_id", "problem", "prompt", "text", "is_correct"]).to_pylist()

    per_problem = defaultdict(list)        # problem -> [(mean lp, min lp, off-argmax count, correct)]
    with torch.inference_mode():
        for r in rows:
            prompt = tok(sample_prompt(r), add_special_tokens=False)["input_ids"]
            text = tok(r["text"], add_special_tokens=False)["input_ids"]
            if not text:
                continue
            ids = torch.tensor([prompt + text])
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)[len(prompt) - 1:]
            target = ids[0, len(prompt):]
            token_lp = logp.gather(1, target[:, None])[:, 0]
            off_mode = int((logp.argmax(-1) != target).sum())
            per_problem[r["problem_id"]].append((token_lp.mean().item(), token_lp.min().item(), off_mode,
                                                 bool(r["is_correct"])))

    def within(score) -> float:
        groups = [([score(s) for s in v], [s[3] for s in v]) for v in per_problem.values()]
        values = metrics.within_problem_aurocs(groups)
        return sum(values) / len(values) if values else float("nan")

    samples = [s for v in per_problem.values() for s in v]
    wrong, right = [s for s in samples if not s[3]], [s for s in samples if s[3]]
    problems = sum(1 for v in per_problem.values() if len({s[3] for s in v}) == 2)
    result = {"within_mean_logprob": within(lambda s: s[0]), "within_min_logprob": within(lambda s: s[1]),
              "within_off_argmax": within(lambda s: -s[2]),
              "wrong_off_argmax": sum(s[2] > 0 for s in wrong) / max(len(wrong), 1),
              "correct_off_argmax": sum(s[2] > 0 for s in right) / max(len(right), 1)}
    kinds = first_error_kinds(root, config)
    print(f"{len(samples)} samples ({len(wrong)} wrong) of {len(per_problem)} problems")
    print("wrong samples by first error:", dict(Counter(kinds.values()).most_common()))
    result["wrong_taught"] = sum(k == "taught" for k in kinds.values()) / max(len(kinds), 1)
    print("RESULT " + " ".join(f"{k}={v:.3f}" for k, v in result.items()) + f" problems={problems}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
