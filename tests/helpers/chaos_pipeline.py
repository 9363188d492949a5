"""``python -m rayjobs.pipeline`` limited to some stages (``--only``), with every engine actor of the pipeline's
sampling, labelling and scoring stages pausing after each batch (``MATHRAY_TEST_PAUSE_S``: 0 for no pause, or
a JSON object {stage output: seconds}; ``helpers.sampling_engines.pause_s``) and logging each batch to a local
file under ``MATHRAY_TEST_CALLS_DIR`` when set, so a chaos test can kill actors, workers, this driver or the S3
server between commits.

    python tests/helpers/chaos_pipeline.py --only evaluate --config FILE
"""
import dataclasses
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from mathray.runtime.entry import init_ray, job_main  # noqa: E402


def use_pausing_actors() -> None:
    """The pipeline's stages run these actors: the real ones, pausing after each batch."""
    import mathray.jobs.labeling as labeling
    import mathray.jobs.sampling as sampling
    import mathray.jobs.scoring as scoring
    from helpers.sampling_engines import PausingEngine
    from helpers.stage_actors import ObservableLabeler, ObservableScorer

    sampling.run_sampling.__defaults__ = (PausingEngine,)
    labeling.SHEPHERD = dataclasses.replace(labeling.SHEPHERD, actor=ObservableLabeler)
    scoring.SCORE = dataclasses.replace(scoring.SCORE, actor=ObservableScorer)
    scoring.SCORE_STEPS = dataclasses.replace(scoring.SCORE_STEPS, actor=ObservableScorer)   # step-label input


def main(argv: list[str]) -> int:
    from helpers.sampling_engines import worker_env
    from mathray.pipeline import PipelineConfig, run_pipeline

    only = argv[argv.index("--only") + 1].split(",")
    argv = [a for i, a in enumerate(argv) if a != "--only" and (i == 0 or argv[i - 1] != "--only")]
    use_pausing_actors()
    init_ray(runtime_env={"env_vars": worker_env()})
    return job_main(PipelineConfig, lambda cfg: run_pipeline(cfg, only=only), argv, None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
