"""Score sampled solutions: verifier S_cls per sample and PRM p(good) per step, into SCORES shards.

    python -m rayjobs.score --config rayjobs/configs/score.yaml --set input=runs/x/samples
    ray job submit --working-dir . -- python -m rayjobs.score --config rayjobs/configs/score.yaml

One SCORES shard per SAMPLES shard (same name); re-running skips committed shards. Over-long or
step-less samples are quarantined with a reason and the job exits 0.
"""
import sys

from mathray.config import parse_job_args
from mathray.jobs.scoring import ScoreConfig, run_score


def main(argv=None) -> int:
    cfg = parse_job_args(ScoreConfig, argv, description=__doc__)
    try:
        summary = run_score(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
