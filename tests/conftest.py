"""Shared fixtures: the data folders (the repository's fixtures; the full data sets when MATHRAY_DATA_DIR
names them), a real S3-protocol server (moto over HTTP on 127.0.0.1), and one local Ray cluster per test
session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.data_dirs import DATA_DIR_ENV, FIXTURE_DATA, full_data_dir
from helpers.moto_s3 import MotoS3, new_bucket

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

# Ray 2.60 turns token auth on for local clusters; tests run their own throwaway clusters.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_addoption(parser):
    parser.addoption("--chaos-seeds", type=int, default=0, metavar="N",
                     help="run the chaos pipeline test (tests/test_ray_cluster.py) with seeds 1..N instead of its CI seed")


# the modules that run whole pipelines, clusters or several Ray Train fits of their own, longest first (one to
# twelve minutes each in the suite): started first, they leave the quick modules to even out the workers' ends
LONGEST_MODULES = ("test_ray_cluster.py", "test_multinode.py", "training/test_job.py", "test_quickstart.py")


def pytest_collection_modifyitems(config, items):
    """Modules by cost, longest first (the LONGEST_MODULES, then a module with a cluster test, then one with a
    slow test, then the rest), each module's tests kept together and in order: the suite's workers
    (``scripts/test.sh`` runs pytest-xdist, one module at a time per worker, in this order) start on the
    pipeline runs and fill in with quick modules at the end."""
    def cost(item) -> int:
        module = item.path.relative_to(TESTS).as_posix()
        if module in LONGEST_MODULES:
            return LONGEST_MODULES.index(module) - len(LONGEST_MODULES)
        return 0 if item.get_closest_marker("cluster") else 1 if item.get_closest_marker("slow") else 2

    module_cost: dict[str, int] = {}
    for item in items:
        module_cost[str(item.path)] = min(module_cost.get(str(item.path), 2), cost(item))
    items.sort(key=lambda item: module_cost[str(item.path)])


@pytest.fixture(scope="session")
def fixture_data() -> Path:
    """A few dozen records of each public data set, in the repository (tests/fixtures/data/README.md)."""
    return FIXTURE_DATA


@pytest.fixture(scope="session")
def full_data() -> Path:
    """The full data sets, in the layout of tests/fixtures/data; the test is skipped unless MATHRAY_DATA_DIR
    names them."""
    try:
        path = full_data_dir()
    except ValueError as e:
        pytest.fail(str(e))
    if path is None:
        pytest.skip(f"needs the full data sets: set {DATA_DIR_ENV} to a folder laid out as tests/fixtures/data")
    return path


@pytest.fixture(scope="session")
def s3_moto():
    """The session's S3 server itself (outage tests stop and restart it)."""
    server = MotoS3()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3_server(s3_moto):
    """The moto S3 server's endpoint URL, set in the environment with dummy credentials."""
    endpoint = s3_moto.endpoint
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                                            "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    os.environ.update(AWS_ENDPOINT_URL_S3=endpoint, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    yield endpoint
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh bucket; yields ``s3://<bucket>``."""
    return new_bucket(s3_server)


@pytest.fixture(params=["local", "s3"])
def storage_root(request, tmp_path) -> str:
    """A stage-output root on local disk and on the S3 server."""
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("s3_bucket") + "/store"


@pytest.fixture(scope="session")
def ray_cluster(s3_server):
    """One local Ray cluster for the whole session (starting one costs seconds). The S3 server's endpoint
    and dummy credentials are in the environment first, so every Ray worker inherits them from the raylet
    (mathray forwards endpoints, never credentials)."""
    import ray

    if not ray.is_initialized():
        # address="local": a cluster of its own, even when other Ray clusters run on this machine (ray.init()
        # would join the latest one it finds)
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ingested(ray_cluster, tmp_path_factory):
    """Ingests that tests only read, run once per session: ``ingested(source, **config)`` runs
    ``run_ingest`` the first time a (source, config) pair is asked for and gives its summary (a copy) and its
    PROBLEMS store every time. A test that re-runs, changes or refuses an output makes its own."""
    import dataclasses
    import json

    from mathray.jobs.ingest import IngestConfig, run_ingest
    from mathray.runtime.storage import ShardStore

    runs: dict[str, tuple] = {}

    def ingest(source: dict, **config):
        key = json.dumps([source, config], sort_keys=True)
        if key not in runs:
            cfg = IngestConfig(source=source, output=str(tmp_path_factory.mktemp("ingested") / "problems"),
                               **config)
            runs[key] = (run_ingest(cfg), cfg.output)
        summary, output = runs[key]
        return dataclasses.replace(summary), ShardStore(output)

    return ingest
