"""Score sampled solutions: verifier S_cls per sample and PRM p(good) per step, into SCORES shards.

    python -m rayjobs.score --config rayjobs/configs/score.yaml --set input=runs/x/samples
    ray job submit --working-dir . -- python -m rayjobs.score --config rayjobs/configs/score.yaml

One SCORES shard per SAMPLES shard (same name); re-running skips committed shards. Over-long or
step-less samples are quarantined with a reason and the job exits 0.
"""
import sys

from mathray.runtime.entry import job_main
from mathray.jobs.scoring import ScoreConfig, run_score


def main(argv=None) -> int:
    return job_main(ScoreConfig, run_score, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
