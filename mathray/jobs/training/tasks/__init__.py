"""The training tasks, one declaration each (``spec.Objective``, in the module named after the task): what
``TrainJobConfig.task`` accepts, what a run reads (``check_runnable``, ``lineage``), its phases (``worker``) and
its loss-head memory (``plan``). A new task is a module and one line here."""
from __future__ import annotations

from mathray.jobs.training.tasks import orm, orm_pairwise, prm, sequential, ssft, verifier
from mathray.jobs.training.tasks.spec import Objective, Phase

TASKS: dict[str, Objective] = {o.name: o for o in (
    ssft.SSFT,
    verifier.VERIFIER,
    prm.PRM,
    orm.ORM,
    sequential.SEQUENTIAL,
    orm_pairwise.ORM_PAIRWISE,
)}
TASK_NAMES = tuple(TASKS)
# the config sections that belong to an objective: a run's lineage keeps only those it reads
SECTIONS = tuple(sorted(o.section for o in TASKS.values() if o.section))


def phases(cfg) -> list[Phase]:
    return TASKS[cfg.task].phases(cfg)
