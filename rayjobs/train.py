"""Train on Ray Train: ``task:`` selects ssft | verifier | prm | sequential (one job, one config model).

    python -m rayjobs.train --config rayjobs/configs/train_ssft.yaml [--set model=/path/to/hf_dir]
    ray job submit --working-dir . -- python -m rayjobs.train --config rayjobs/configs/train_verifier.yaml

The final model is exported in HF format to ``<output>/final`` (what the next sampling round loads);
re-running the same config resumes from the run's latest checkpoint.
"""
import sys

from mathray.config import parse_job_args
from mathray.runtime.entry import init_ray
from mathray.jobs.training.config import TrainJobConfig
from mathray.jobs.training.job import run_training


def main(argv=None) -> int:
    cfg = parse_job_args(TrainJobConfig, argv, description=__doc__)
    try:
        cfg.check_runnable()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    init_ray()
    result = run_training(cfg)
    print(f"run {result.run_name}: final model {result.final_model}")
    print(f"last metrics: {result.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
