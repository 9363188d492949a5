"""``python -m rayjobs.pipeline`` limited to some stages (``--only``), with the sampling engine pausing after each
batch (``MATHRAY_TEST_PAUSE_S``, 0 for no pause), so a test can SIGKILL the pipeline driver in the middle of a
sampling stage and re-run it.

    python tests/helpers/pausing_pipeline.py --only sample_train --config FILE
"""
import os
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from mathray.runtime.entry import init_ray, job_main  # noqa: E402


def main(argv: list[str]) -> int:
    import mathray.jobs.sampling as sampling
    from helpers.sampling_engines import PausingEngine
    from mathray.pipeline import PipelineConfig, run_pipeline

    only = argv[argv.index("--only") + 1].split(",")
    argv = [a for i, a in enumerate(argv) if a != "--only" and (i == 0 or argv[i - 1] != "--only")]
    sampling.run_sampling.__defaults__ = (PausingEngine,)   # the pipeline's sampling stages use it
    init_ray(runtime_env={"env_vars": {"PYTHONPATH": f"{TESTS.parent}:{TESTS}",
                                       "MATHRAY_TEST_PAUSE_S": os.environ.get("MATHRAY_TEST_PAUSE_S", "0")}})
    return job_main(PipelineConfig, lambda cfg: run_pipeline(cfg, only=only), argv, None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
