"""SSFT (Liu et al. 2.1): completion-only MLE of the solutions given the plain prompt, through TRL's
``SFTTrainer`` on PROBLEMS reference solutions and/or correct SAMPLES rows (``data.ssft``)."""
from __future__ import annotations

from mathray.jobs.training import data
from mathray.jobs.training.tasks.spec import Memory, Objective, PhaseSpec, Reads, eos_id, single_phase


def _examples(cfg, tokenizer, labels):
    return lambda rows: data.ssft_examples(tokenizer, rows, cfg.data.max_len, eos_id(cfg, tokenizer))


SSFT_PHASE = PhaseSpec("ssft", reads="ssft", examples=_examples)

SSFT = Objective("ssft", phases=single_phase(SSFT_PHASE), reads=lambda cfg: Reads(("ssft",), {}),
                 memory=lambda cfg: Memory())
