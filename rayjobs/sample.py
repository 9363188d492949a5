"""Sample N solutions per problem with vLLM replicas on Ray, grade them, and commit SAMPLES shards.

    python -m rayjobs.sample --config rayjobs/configs/sample.yaml [--set sampling.n=8 --set output=...]
    ray job submit --working-dir . -- python -m rayjobs.sample --config rayjobs/configs/sample_gpu.yaml

Re-running the same command resumes: committed output shards are kept, only the others are computed.
Bad problems (empty, prompt longer than max_model_len, non-UTF-8 text) are quarantined with a reason.
"""
import sys

from mathray.runtime.entry import job_main
from mathray.jobs.sampling import SampleJobConfig, run_sampling


def main(argv=None) -> int:
    return job_main(SampleJobConfig, run_sampling, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
