"""The one shape of every entry point (``python -m rayjobs.<job>``): parse the config, start or join Ray, run,
print the summary; every refusal is one message on stderr and a non-zero exit, never a traceback.

    def main(argv=None) -> int:
        return job_main(SampleJobConfig, run_sampling, argv, __doc__)

Exit codes: 0 done; 2 the config or the command cannot be run as given (bad key, missing or corrupt input,
lineage mismatch, model not ready, another live driver writing the same output); 1 the job ran and failed
(e.g. an unreadable input file, the object store unreachable for the whole retry window).
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
from typing import Callable

from mathray.config import parse_job_args
from mathray.runtime.errors import USAGE_ERRORS, JobFailed


def init_ray(**kwargs) -> None:
    """Join the cluster at ``RAY_ADDRESS`` (``ray job submit`` sets it) or the one ``ray start`` runs on this
    machine; start a local single-node cluster when there is none. Unlike a bare ``ray.init()``, a cluster
    that ``ray start`` left in ``/tmp/ray/ray_current_cluster`` and that is gone (killed, machine rebooted)
    is not joined: ``ray.init()`` would wait on its dead GCS and fail after a minute."""
    import ray

    if ray.is_initialized():
        return
    if "address" not in kwargs and not os.environ.get("RAY_ADDRESS") and not _running_cluster_on_this_machine():
        kwargs["address"] = "local"
    ray.init(log_to_driver=True, **kwargs)


def _running_cluster_on_this_machine() -> bool:
    """True when ``ray start`` recorded a cluster on this machine and its GCS port accepts a connection."""
    path = os.path.join(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir(), "ray", "ray_current_cluster")
    try:
        host, _, port = open(path).read().strip().rpartition(":")
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def started_local_cluster() -> bool:
    """True when this driver process started its own single-node Ray (there is no cluster to autoscale)."""
    import ray

    node = getattr(ray._private.worker, "_global_node", None)   # set only in the process that started Ray
    return ray.is_initialized() and node is not None and node.is_head()


def job_main(config_cls: type, run: Callable, argv: list[str] | None, doc: str | None,
             needs_ray: bool = True) -> int:
    cfg = parse_job_args(config_cls, argv, description=doc)
    try:
        if needs_ray:
            init_ray()
        summary = run(cfg)
    except USAGE_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except JobFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    lines = summary.lines() if hasattr(summary, "lines") else [str(summary)]
    print("\n".join(lines), flush=True)
    return 0
