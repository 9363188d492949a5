"""``python -m rayjobs.ingest`` with every shard commit of its Ray workers followed by a pause of
``MATHRAY_TEST_PAUSE_S`` seconds, so a test can SIGKILL the driver between commits.

    python tests/helpers/pausing_ingest.py --config FILE
"""
import os
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS.parent))
sys.path.insert(0, str(TESTS))


def pause_after_commits() -> None:
    """Ray's worker setup hook: ``ShardStore.commit_shard`` pauses after each commit in this worker."""
    from mathray.runtime.storage import ShardStore

    commit = ShardStore.commit_shard

    def slow_commit(self, *args, **kwargs):
        rec = commit(self, *args, **kwargs)
        time.sleep(float(os.environ.get("MATHRAY_TEST_PAUSE_S", "1")))
        return rec

    ShardStore.commit_shard = slow_commit


if __name__ == "__main__":
    from mathray.runtime.entry import init_ray
    from rayjobs import ingest

    init_ray(runtime_env={"env_vars": {"PYTHONPATH": f"{TESTS.parent}:{TESTS}",
                                       "MATHRAY_TEST_PAUSE_S": os.environ.get("MATHRAY_TEST_PAUSE_S", "1")},
                          "worker_process_setup_hook": "helpers.pausing_ingest.pause_after_commits"})
    sys.exit(ingest.main(sys.argv[1:]))
