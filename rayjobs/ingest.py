"""Ingest a math data set into committed PROBLEMS (and STEP_LABELS) shards.

    python -m rayjobs.ingest --config rayjobs/configs/ingest_gsm8k.yaml [--set output=s3://bucket/x/problems]
    ray job submit --working-dir . -- python -m rayjobs.ingest --config rayjobs/configs/ingest_gsm8k.yaml

The driver streams the source's records into shards; Ray workers parse, validate and commit them (the
stage runner, as every data job). Malformed records are quarantined with a reason and the job exits 0; it
exits 1 when the whole input is unreadable.
"""
import sys

from mathray.runtime.entry import job_main
from mathray.jobs.ingest import IngestConfig, run_ingest


def main(argv=None) -> int:
    return job_main(IngestConfig, run_ingest, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
