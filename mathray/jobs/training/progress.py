"""How far a training run is, readable while it runs: rank 0 writes ``<output>/progress.json`` (the run's
global step, its total steps, the phase, and the host and pid of the process writing it: where rank 0 runs now)
at every Trainer log, so a driver on any machine reads it with one small GET. The file is replaced whole; a
reader ignores one written before the run it watches started.
Progress is best effort: neither side retries (training does not wait on an object-store outage for it, and
the pipeline's stage table does not stall), a failed write is logged and a failed read shows no progress."""
from __future__ import annotations

import json
import logging
import os
import socket
import time

from mathray.runtime.object_io import is_local, join, read_whole, resolve, write_local_durable, write_object

log = logging.getLogger(__name__)
PROGRESS_FILE = "progress.json"


def write_progress(output: str, step: int, total: int, phase: str) -> None:
    data = json.dumps({"step": step, "total": total, "phase": phase, "time": time.time(),
                       "host": socket.gethostname(), "pid": os.getpid()}).encode()
    try:
        fs, path = resolve(join(output, PROGRESS_FILE))
        if is_local(fs):
            write_local_durable(path, data)   # temporary file and rename: a reader never sees half of it
        else:
            write_object(fs, path, data)      # one PUT: whole or nothing
    except OSError as e:
        log.warning("training progress not written to %s: %s", output, e)


def read_progress(output: str, since: float = 0.0) -> dict | None:
    """The run's last progress record, None when there is none written at or after ``since`` (unix time) or
    it cannot be read."""
    try:
        fs, path = resolve(join(output, PROGRESS_FILE))
        record = json.loads(read_whole(fs, path))
    except (OSError, ValueError):   # not written yet (FileNotFoundError is an OSError), or unreadable
        return None
    if not isinstance(record, dict) or not isinstance(record.get("time"), (int, float)) or record["time"] < since:
        return None
    return record


def progress_text(record: dict | None, total: int) -> str:
    """``step 40/120 (verifier)``; before the first record, the run's size."""
    if record is None:
        return f"starting, {total} steps"
    return f"step {record.get('step')}/{record.get('total', total)} ({record.get('phase')})"
