"""Ingest a math data set into committed PROBLEMS (and STEP_LABELS) shards.

    python -m rayjobs.ingest --config rayjobs/configs/ingest_gsm8k.yaml [--set output=s3://bucket/x/problems]
    ray job submit --working-dir . -- python -m rayjobs.ingest --config rayjobs/configs/ingest_gsm8k.yaml

Ingest is I/O-bound and runs in the driver process (no Ray cluster needed). Malformed records are
quarantined with a reason and the job exits 0; it exits 1 when the whole input is unreadable.
"""
import sys

from mathray.config import parse_job_args
from mathray.jobs.ingest import IngestConfig, UnreadableInput, run_ingest


def main(argv=None) -> int:
    cfg = parse_job_args(IngestConfig, argv, description=__doc__)
    try:
        summary = run_ingest(cfg)
    except UnreadableInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
