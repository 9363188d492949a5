"""``python -m rayjobs.sample`` with an engine that pauses after each batch (tests/helpers/sampling_engines.py),
so a test can SIGKILL this driver after some shards are committed and before all are."""
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from helpers.sampling_engines import PausingEngine  # noqa: E402
from mathray.config import parse_job_args  # noqa: E402
from mathray.jobs.sampling import SampleJobConfig, run_sampling  # noqa: E402
from mathray.runtime.entry import init_ray  # noqa: E402

if __name__ == "__main__":
    cfg = parse_job_args(SampleJobConfig, sys.argv[1:])
    import os

    init_ray(runtime_env={"env_vars": {"PYTHONPATH": f"{TESTS.parent}:{TESTS}",
                                       "MATHRAY_TEST_PAUSE_S": os.environ.get("MATHRAY_TEST_PAUSE_S", "1.5")}})  # workers import helpers
    print("\n".join(run_sampling(cfg, engine_cls=PausingEngine).lines()), flush=True)
