"""Label solution steps Math-Shepherd style: K rollouts per step prefix (full or first-error search).

    python -m rayjobs.shepherd --config rayjobs/configs/shepherd.yaml [--set labeling.mode=full]
    ray job submit --working-dir . -- python -m rayjobs.shepherd --config rayjobs/configs/shepherd.yaml

Reads SAMPLES shards (the sampling job), writes STEP_LABELS shards plus <output>/math_shepherd.jsonl.
Committed shards are never redone; bad rows are quarantined with a reason and the job exits 0.
"""
import sys

from mathray.config import parse_job_args
from mathray.jobs.labeling import ShepherdConfig, run_shepherd


def main(argv=None) -> int:
    cfg = parse_job_args(ShepherdConfig, argv, description=__doc__)
    summary = run_shepherd(cfg)
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
