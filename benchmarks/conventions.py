"""Published-convention scoring on CPU: the scorer's batched forward vs the model card's own loop.

    .venv/bin/python benchmarks/conventions.py

Builds the tiny model (``mathray.jobs.tiny_model``), makes toy solutions (half with an injected error) and
scores every step in Math-Shepherd's convention (``core.conventions``, "Step k: ... ки", softmax over +/-)
  (a) with ``mathray.jobs.scoring.Scorer`` (batched by length, the LM head at the tag positions only),
  (b) as the model card does: one sequence at a time, a full forward, every position's logits.
Both on one CPU thread; rounds alternate and the best of each is kept (the machine may be shared). Prints the
wall times, the speed-up of (a) over (b) and the max |difference| of their step scores.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
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


def main() -> None:
    import pyarrow as pa
    import torch

    from mathray.jobs.scoring import Scorer, ScorerConfig
    from mathray.jobs.tiny_model import build_tiny_model

    torch.set_num_threads(1)
    rows = samples(SAMPLES)
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model(Path(tmp) / "prm", seed=1))
        scorer = Scorer(ScorerConfig(prm=model, prm_convention="math-shepherd", batch_size=32).model_dump(), "cpu")
        batch = pa.Table.from_pylist(rows)
        best_a = best_b = float("inf")
        for _ in range(ROUNDS):
            t = time.perf_counter()
            got = scorer(batch).to_pylist()
            best_a = min(best_a, time.perf_counter() - t)
            t = time.perf_counter()
            want = card_loop(model, rows)
            best_b = min(best_b, time.perf_counter() - t)
        by_row = {r["_src_row"]: r["step_scores"] for r in got}
        diff = max(abs(a - b) for i, w in enumerate(want) for a, b in zip(by_row[i], w))
    steps = sum(len(w) for w in want)
    print(f"{len(rows)} solutions, {steps} steps: scorer {best_a:.2f} s, model-card loop {best_b:.2f} s")
    print(f"RESULT samples={len(rows)} steps={steps} scorer_s={best_a:.3f} card_loop_s={best_b:.3f} "
          f"speedup={best_b / best_a:.2f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
