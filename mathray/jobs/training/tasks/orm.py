"""Lightman et al.'s ORM on graded SAMPLES (``data.samples``): cross-entropy on (+, -) at the single tag after
the whole solution (``prompts.encode_orm``, the PRM layout), candidates balanced per problem like the
verifier's."""
from __future__ import annotations

from mathray.jobs.training import data
from mathray.jobs.training.tasks.prm import step_scores
from mathray.jobs.training.tasks.spec import Memory, Objective, PhaseSpec, Reads, single_phase


def _examples(cfg, tokenizer, labels):
    d = cfg.data
    return lambda rows: data.orm_examples(tokenizer, rows, labels.step_tag, d.per_problem, d.max_len, d.seed)


def _loss(trainer, model, examples):
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    return objectives.prm_loss(model, examples, trainer.label_ids, trainer.pad_id, trainer.args.device,
                               "hard")[0]


ORM_PHASE = PhaseSpec("orm", reads="samples", examples=_examples, loss=_loss, scores=step_scores)

ORM = Objective("orm", phases=single_phase(ORM_PHASE), reads=lambda cfg: Reads(("samples",), {}),
                memory=lambda cfg: Memory(read_positions=1))
