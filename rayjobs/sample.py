"""Sample N solutions per problem with vLLM replicas on Ray, grade them, and commit SAMPLES shards.

    python -m rayjobs.sample --config rayjobs/configs/sample.yaml [--set sampling.n=8 --set output=...]
    ray job submit --working-dir . -- python -m rayjobs.sample --config rayjobs/configs/sample_gpu.yaml

Re-running the same command resumes: committed output shards are kept, only the others are computed.
Bad problems (empty, prompt longer than max_model_len, non-UTF-8 text) are quarantined with a reason.
"""
import sys

from mathray.config import parse_job_args
from mathray.jobs.sampling import SampleJobConfig, run_sampling
from mathray.runtime.stage import init_ray


def main(argv=None) -> int:
    cfg = parse_job_args(SampleJobConfig, argv, description=__doc__)
    init_ray()
    summary = run_sampling(cfg)
    print("\n".join(summary.lines()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
