"""Label solution steps Math-Shepherd style: K rollouts per step prefix (full or first-error search).

    python -m rayjobs.shepherd --config rayjobs/configs/shepherd.yaml [--set labeling.mode=full]
    ray job submit --working-dir . -- python -m rayjobs.shepherd --config rayjobs/configs/shepherd.yaml

Reads SAMPLES shards (the sampling job), writes STEP_LABELS shards plus <output>/math_shepherd.jsonl.
Committed shards are never redone; bad rows are quarantined with a reason and the job exits 0.
"""
import sys

from mathray.runtime.entry import job_main
from mathray.jobs.labeling import ShepherdConfig, run_shepherd


def main(argv=None) -> int:
    return job_main(ShepherdConfig, run_shepherd, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
