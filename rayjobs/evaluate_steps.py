"""Measure a PRM on first errors (ProcessBench's task): F1 of the accuracies on erroneous and correct solutions
per subset, at the configured threshold and at the best threshold chosen on other problems; step AUROC; where
predicted first errors fall. Writes report.md and report.json.

    python -m rayjobs.score --config rayjobs/configs/score.yaml --set input_kind=step_labels \
        --set input=runs/x/step_labels --set output=runs/x/step_scores --set scorer.prm=runs/x/models/prm
    python -m rayjobs.evaluate_steps --config rayjobs/configs/evaluate_steps.yaml \
        --set labels=runs/x/step_labels --set scores=runs/x/step_scores

Runs in the driver (no model, no Ray cluster needed). Exits 2 when an input is missing, incomplete or does not
match the other.
"""
import sys

from mathray.jobs.step_evaluation import StepEvalConfig, run_step_evaluation
from mathray.runtime.entry import job_main


def main(argv=None) -> int:
    return job_main(StepEvalConfig, run_step_evaluation, argv, __doc__, needs_ray=False)


if __name__ == "__main__":
    sys.exit(main())
