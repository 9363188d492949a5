"""Evaluate every selector (Pass@1, pass@k, Maj1, MajK, RR.All, RR.Top-K, W.RR, W.RR.MajK, Maj1.TopN, PRM
best-of-N, PRM voting, ORM) on the same pools; write report.md, report.json and PNG plots; print the table.

    python -m rayjobs.evaluate --config rayjobs/configs/evaluate.yaml --set samples=runs/x/samples

Runs in the driver (no model, no Ray cluster needed). Exits 2 when an input is missing or incomplete.
"""
import sys

from mathray.jobs.evaluation import EvaluateConfig, run_evaluate
from mathray.runtime.entry import job_main


def main(argv=None) -> int:
    return job_main(EvaluateConfig, run_evaluate, argv, __doc__, needs_ray=False)


if __name__ == "__main__":
    sys.exit(main())
