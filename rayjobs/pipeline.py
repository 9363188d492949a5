"""Run the whole method (ingest -> SSFT -> sampling -> Math-Shepherd labels -> verifier, PRM, ORM,
sequential + control -> test sampling -> scoring -> evaluation report) as one job under one run root.

    python -m rayjobs.pipeline --config rayjobs/configs/demo.yaml
    ray job submit --working-dir . -- python -m rayjobs.pipeline --config rayjobs/configs/demo.yaml \
        --set root=s3://BUCKET/run1

Every stage's inputs and outputs are derived from ``root``. Re-running skips every stage whose output is
complete with the same lineage; a changed stage config re-runs that stage and what depends on it.
"""
import sys

from mathray.pipeline import PipelineConfig, run_pipeline
from mathray.runtime.entry import job_main


def main(argv=None) -> int:
    return job_main(PipelineConfig, run_pipeline, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
