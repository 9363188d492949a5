"""Train on Ray Train: ``task:`` selects ssft | verifier | prm | orm | sequential (one job, one config model).

    python -m rayjobs.train --config rayjobs/configs/train_ssft.yaml [--set model=/path/to/hf_dir]
    ray job submit --working-dir . -- python -m rayjobs.train --config rayjobs/configs/train_verifier.yaml

The final model is exported to ``<output>/final`` (what the next sampling round loads), complete or absent;
re-running the same config resumes from the run's latest checkpoint.
"""
import sys

from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.job import run_training
from mathray.runtime.entry import job_main


def main(argv=None) -> int:
    return job_main(TrainJobConfig, run_training, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
