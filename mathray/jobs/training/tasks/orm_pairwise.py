"""An ORM trained on pairs with a Bradley-Terry loss: for each (correct, incorrect) pair of one problem's graded
SAMPLES (``data.candidate_pairs``, the pairing of cls-margin), -log sigmoid(s_correct - s_incorrect), where s is
the ORM's outcome score as log-odds, s = z(+) - z(-) at the tag after the whole solution (sigmoid(s) is the
p(+) the scorer reads). Only the order of the two scores within a problem is trained, not their level. The
examples are the ORM's (``prompts.encode_orm``), so the scorer reads the trained position and label tokens."""
from __future__ import annotations

from mathray.core.prompts import sample_prompt
from mathray.jobs.training import data
from mathray.jobs.training.tasks.spec import Memory, Objective, PhaseSpec, Reads, single_phase


def bradley_terry(two_way_correct, two_way_incorrect):
    """Mean over pairs of -log sigmoid(s_c - s_i), with s = z(+) - z(-) from ``[pairs, 2]`` label logits."""
    import torch.nn.functional as F

    s_correct = two_way_correct[:, 0].float() - two_way_correct[:, 1].float()
    s_incorrect = two_way_incorrect[:, 0].float() - two_way_incorrect[:, 1].float()
    return -F.logsigmoid(s_correct - s_incorrect).mean()


def _examples(cfg, tokenizer, labels):
    d = cfg.data
    return lambda rows: data.pair_examples(rows, d.per_problem, d.seed, lambda r, ok: data.orm_example(
        tokenizer, sample_prompt(r), r["text"], ok, labels.step_tag, d.max_len))


def _member_logits(trainer, model, pairs):
    """``[2 * pairs, 2]`` label logits at each member's tag: the correct members, then the incorrect ones."""
    from mathray.jobs.training import objectives   # imports torch: only training workers call this

    members = [p["correct"] for p in pairs] + [p["incorrect"] for p in pairs]
    return objectives.step_two_way(model, members, trainer.label_ids, trainer.pad_id, trainer.args.device)[0]


def _loss(trainer, model, pairs):
    two_way, k = _member_logits(trainer, model, pairs), len(pairs)
    return bradley_terry(two_way[:k], two_way[k:])


def _scores(trainer, model, pairs):
    """The ORM score p(+) of each pair's correct then incorrect member, labelled 1 and 0."""
    from mathray.core import readout   # imports torch: only training workers call this

    s, k = readout.positive_prob(_member_logits(trainer, model, pairs)).tolist(), len(pairs)
    return [[s[i], s[k + i]] for i in range(k)], [[1.0, 0.0]] * k


ORM_PAIRWISE_PHASE = PhaseSpec("orm_pairwise", reads="samples", examples=_examples, loss=_loss, scores=_scores)

ORM_PAIRWISE = Objective("orm_pairwise", phases=single_phase(ORM_PAIRWISE_PHASE),
                         reads=lambda cfg: Reads(("samples",), {}),
                         memory=lambda cfg: Memory(sequences=2, read_positions=2))
