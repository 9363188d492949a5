"""Published-convention scoring on CPU: the scorer (the scoring pool's actor) vs the model card's own loop.

    .venv/bin/python benchmarks/conventions.py

Makes toy solutions (half with an injected error) and scores every step two ways in two conventions:
1. Math-Shepherd's (``core.conventions``, "Step k: ... ки", softmax over +/-) on the tiny causal LM
   (``mathray.jobs.tiny_model``):
   (a) ``mathray.jobs.scoring.Scorer`` (batched by length, the LM head at the tag positions only),
   (b) as the model card does: one sequence at a time, a full forward, every position's logits.
2. Qwen2.5-Math-PRM's (steps joined by a separator, a 2-class head read at each separator) on a tiny random
   model in that checkpoint layout (``tests/helpers/tiny_reward_models.py``):
   (c) the Scorer, whose PRM runs on vLLM's pooling runner (step pooling at the separator),
   (d) a plain transformers forward of the same weights, one sequence at a time, the head at every position.
Torch on one CPU thread for (a), (b) and (d); vLLM's CPU engine in (c) sets its own threads (all cores). Rounds
alternate and the best of each is kept (the machine may be shared). Prints the wall times, the speed-ups of
(a) over (b) and (c) over (d), and the max |difference| of the step scores of each pair.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROUNDS, SAMPLES = 3, int(os.environ.get("CONVENTIONS_SAMPLES", 256))


def samples(num: int) -> list[dict]:
    """``scoring_methods``' toy solutions (half with an injected error), with the stage's source columns."""
    from scoring_methods import samples as toy_samples   # benchmarks/ is on the path when run as a script

    return [dict(r, _src_shard="s", _src_row=i) for i, r in enumerate(toy_samples(num))]


def card_loop(model_dir: str, rows: list[dict]) -> list[list[float]]:
    """Math-Shepherd's card: encode "question Step 1: ... ки\\nStep 2: ... ки", one forward per solution."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    plus, minus, tag = (tok.encode(t, add_special_tokens=False)[-1] for t in ("+", "-", " ки"))
    out = []
    with torch.inference_mode():
        for r in rows:
            output = "\n".join(f"Step {k + 1}: {s.strip()} ки" for k, s in enumerate(r["text"].split("\n")))
            ids = torch.tensor([tok.encode(f"{r['problem']} {output}")])
            probs = model(ids).logits[:, :, [plus, minus]].softmax(dim=-1)[:, :, 0]
            out.append(probs[ids == tag].tolist())
    return out


def separator_loop(model_dir: str, rows: list[dict]) -> list[list[float]]:
    """Qwen2.5-Math-PRM's card with the weights in plain torch: one forward per solution, the head's softmax at
    every position, class 1 read at the separators."""
    from helpers.tiny_reward_models import load_separator_prm   # tests/ is on the path (above)
    from transformers import AutoTokenizer

    from mathray.core.conventions import convention
    from mathray.core.steps import step_texts

    forward = load_separator_prm(model_dir)
    tok, conv = AutoTokenizer.from_pretrained(model_dir), convention("qwen-math-prm")
    out = []
    for r in rows:
        ids, positions = conv.encode(tok, r["problem"], step_texts(r["text"], "auto"))
        out.append(forward(ids)[positions, 1].tolist())
    return out


def race(scorer, rows: list[dict], card) -> tuple[float, float, float, int]:
    """Best wall time of the scorer and of the card loop over ROUNDS alternating rounds, the max |difference|
    of their step scores, and the number of steps."""
    import pyarrow as pa

    batch = pa.Table.from_pylist(rows)
    best_scorer = best_card = float("inf")
    for _ in range(ROUNDS):
        t = time.perf_counter()
        got = scorer(batch).to_pylist()
        best_scorer = min(best_scorer, time.perf_counter() - t)
        t = time.perf_counter()
        want = card(rows)
        best_card = min(best_card, time.perf_counter() - t)
    by_row = {r["_src_row"]: r["step_scores"] for r in got}
    diff = max(abs(a - b) for i, w in enumerate(want) for a, b in zip(by_row[i], w))
    return best_scorer, best_card, diff, sum(len(w) for w in want)


def main() -> None:
    import torch
    from helpers.tiny_reward_models import build_separator_prm   # tests/ is on the path (below)

    from mathray.jobs.scoring import Scorer, ScorerConfig
    from mathray.jobs.tiny_model import build_tiny_model

    torch.set_num_threads(1)
    rows = samples(SAMPLES)
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model(Path(tmp) / "prm", seed=1))
        scorer = Scorer(ScorerConfig(prm=model, prm_convention="math-shepherd", batch_size=32).model_dump(), "cpu")
        a_s, b_s, diff_ab, steps = race(scorer, rows, lambda rs: card_loop(model, rs))
        print(f"math-shepherd: {len(rows)} solutions, {steps} steps: scorer {a_s:.2f} s, card loop {b_s:.2f} s")
        sep = str(build_separator_prm(Path(tmp) / "sep-prm", seed=4))
        pooled = Scorer(ScorerConfig(prm=sep, prm_convention="qwen-math-prm", max_length=512).model_dump(), "cpu")
        c_s, d_s, diff_cd, _ = race(pooled, rows, lambda rs: separator_loop(sep, rs))
        print(f"qwen-math-prm: scorer on vLLM pooling {c_s:.2f} s, transformers forward loop {d_s:.2f} s")
    print(f"RESULT samples={len(rows)} steps={steps} scorer_s={a_s:.3f} card_loop_s={b_s:.3f} "
          f"speedup={b_s / a_s:.2f} max_abs_diff={diff_ab:.2e} pooling_s={c_s:.3f} forward_loop_s={d_s:.3f} "
          f"pooling_speedup={d_s / c_s:.2f} pooling_max_abs_diff={diff_cd:.2e}")


if __name__ == "__main__":
    main()
