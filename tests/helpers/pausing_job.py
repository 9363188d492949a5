"""``python -m rayjobs.<job>`` (sample, shepherd or score) with the job's real actor made to pause after each
batch (``MATHRAY_TEST_PAUSE_S``; until the test releases the stage, when ``MATHRAY_TEST_CALLS_DIR`` is set:
``helpers.sampling_engines.release``), so a test can SIGKILL this driver after some shards are committed and
before all are, or start a second driver while this one still runs.

    python tests/helpers/pausing_job.py JOB --config FILE
"""
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from mathray.runtime.entry import init_ray, job_main  # noqa: E402


def main(job: str, argv: list[str]) -> int:
    from helpers.sampling_engines import PausingEngine, worker_env
    from helpers.stage_actors import ObservableLabeler, ObservableScorer
    from mathray.jobs.labeling import SHEPHERD, ShepherdConfig
    from mathray.jobs.sampling import SAMPLE, SampleJobConfig
    from mathray.jobs.scoring import SCORE, ScoreConfig
    from mathray.runtime.spec import run_spec

    config_cls, spec, actor = {"sample": (SampleJobConfig, SAMPLE, PausingEngine),
                               "shepherd": (ShepherdConfig, SHEPHERD, ObservableLabeler),
                               "score": (ScoreConfig, SCORE, ObservableScorer)}[job]
    init_ray(runtime_env={"env_vars": worker_env(MATHRAY_TEST_PAUSE_S="1.5")})
    return job_main(config_cls, lambda cfg: run_spec(spec, cfg, actor=actor), argv, None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
