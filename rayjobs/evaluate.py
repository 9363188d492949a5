"""Evaluate every selector (Pass@1, pass@k, Maj1, MajK, RR.All, RR.Top-K, W.RR, W.RR.MajK, Maj1.TopN, PRM
best-of-N, PRM voting, ORM) on the same pools; write report.md, report.json and PNG plots; print the table.

    python -m rayjobs.evaluate --config rayjobs/configs/evaluate.yaml --set samples=runs/x/samples

Runs in the driver (no model, no Ray cluster needed). Exits 1 when there are no samples.
"""
import sys

from mathray.config import parse_job_args
from mathray.jobs.evaluation import EvaluateConfig, run_evaluate
from mathray.jobs.report import markdown_table


def main(argv=None) -> int:
    cfg = parse_job_args(EvaluateConfig, argv, description=__doc__)
    try:
        report, files = run_evaluate(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{report['num_problems']} problems, pool of up to {report['pool_size']} samples")
    print(markdown_table(report))
    for name, uri in files.items():
        print(f"wrote {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
