"""``python -m rayjobs.ingest`` pausing ``MATHRAY_TEST_PAUSE_S`` after each shard commit, so a test can SIGKILL
the driver between commits.

    python tests/helpers/pausing_ingest.py --config FILE
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mathray.runtime.storage import ShardStore  # noqa: E402
from rayjobs import ingest  # noqa: E402

_commit = ShardStore.commit_shard


def _slow_commit(self, *args, **kwargs):
    rec = _commit(self, *args, **kwargs)
    time.sleep(float(os.environ.get("MATHRAY_TEST_PAUSE_S", "1")))
    return rec


if __name__ == "__main__":
    ShardStore.commit_shard = _slow_commit
    sys.exit(ingest.main(sys.argv[1:]))
