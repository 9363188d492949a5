"""The S3 server kept down in the middle of a stage (the scoring job, input and output on S3) past the retry
window: the job ends with a message naming the endpoint, every shard committed before stays intact, and a
re-run completes exactly. (An outage within the retry window is one of the chaos pipeline test's faults.)

The session's moto server is stopped and restarted on its fixed port (clients get "connection refused"
meanwhile, as in an outage; it comes back with its objects). The scorer pauses after each batch (registry
actor) so the run lasts long enough for the outage to land between commits."""
from __future__ import annotations

import threading
import time

import pytest
from helpers.faults import assert_same_rows
from helpers.sampling_engines import REGISTRY, EngineRegistry
from helpers.score_data import commit_samples, sample_rows
from helpers.stage_actors import ObservableScorer

from mathray.jobs.scoring import SCORE, ScoreConfig, ScorerConfig, run_score
from mathray.runtime.retries import StorageUnavailable
from mathray.runtime.spec import run_spec
from mathray.runtime.storage import ShardStore

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.faults]
SHARDS, KEY = 4, ("problem_id", "sample_id")


@pytest.fixture(scope="module")
def scorer(tmp_path_factory) -> str:
    from mathray.jobs.tiny_model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("outage") / "verifier", seed=1))


def _cfg(scorer: str, inp: str, out: str) -> ScoreConfig:
    return ScoreConfig(input=inp, output=out, scorer=ScorerConfig(verifier=scorer, batch_size=4, rows_per_call=2))


@pytest.fixture
def run(ray_cluster, s3_bucket, scorer):
    """Samples on S3 and an uninterrupted reference; ``start(out)`` runs the paced job in a thread."""
    samples = f"{s3_bucket}/samples"
    commit_samples(samples, sample_rows(8, 3, seed=2), shards=SHARDS)
    reference = f"{s3_bucket}/reference"
    run_score(_cfg(scorer, samples, reference))
    registry = EngineRegistry.options(name=REGISTRY).remote(1.0)
    result: dict = {}

    def start(out: str) -> threading.Thread:
        def work():
            try:
                result["summary"] = run_spec(SCORE, _cfg(scorer, samples, out), actor=ObservableScorer)
            except BaseException as e:  # noqa: BLE001 - the test inspects it
                result["error"] = e
        thread = threading.Thread(target=work)
        thread.start()
        return thread

    yield start, result, reference
    import ray

    ray.kill(registry)


def _wait_for_a_commit(store: ShardStore, thread: threading.Thread, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not store.committed() and thread.is_alive() and time.time() < deadline:
        time.sleep(0.05)
    assert thread.is_alive() and store.committed(), "the stage ended (or never committed) before the outage"


def test_store_kept_down_fails_naming_the_endpoint_then_rerun_is_exact(run, s3_moto, s3_bucket, scorer,
                                                                        monkeypatch):
    start, result, reference = run
    monkeypatch.setenv("MATHRAY_STORAGE_RETRY_S", "6")
    out = f"{s3_bucket}/scores"
    store = ShardStore(out)
    thread = start(out)
    _wait_for_a_commit(store, thread)
    s3_moto.stop()
    try:
        thread.join(timeout=300)
        assert not thread.is_alive()
    finally:
        s3_moto.start()
    error = result.get("error")
    assert isinstance(error, StorageUnavailable), repr(error)
    assert s3_moto.endpoint in str(error) and "unreachable for 6 s" in str(error)
    committed = {n: (c.sha256, c.committed_at) for n, c in store.committed().items()}
    assert 1 <= len(committed) < SHARDS
    assert store.read_all().num_rows == sum(c.rows for c in store.committed().values())   # intact: verified
    monkeypatch.setenv("MATHRAY_STORAGE_RETRY_S", "120")
    summary = run_score(_cfg(scorer, f"{s3_bucket}/samples", out))
    assert summary.shards_skipped == len(committed) and summary.complete
    assert all((store.committed()[n].sha256, store.committed()[n].committed_at) == v for n, v in committed.items())
    assert_same_rows(out, reference, KEY)
