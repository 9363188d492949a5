"""A stage's actor raising on one row quarantines that row instead of failing the job.

``row_guarded(actor_cls, output_schema)`` is a subclass of the actor class whose ``__call__`` runs the
batch as usual and, when the stage's own code raises, runs the batch's rows one at a time: a row that raises
again becomes a quarantined row whose reason names the exception, the others are computed normally (a
stage's output rows depend only on their own input row, so one row alone gives what it gives in a batch).

What is not a row's fault is raised, never quarantined: failures of the machinery (vLLM's engine dead, out
of memory, Ray errors, storage unavailable, a lost lease), and a batch of several rows in which every row
raises on its own (the code is broken, not the rows). Ray then retries or fails the task as before.
"""
from __future__ import annotations

import logging

import pyarrow as pa

from mathray.runtime.errors import LeaseLost, StorageUnavailable
from mathray.runtime.stage import quarantined, rows_to_table

log = logging.getLogger(__name__)
_REASON_LIMIT = 500


def _systemic(exc: BaseException) -> bool:
    """True for failures of the machinery rather than of one input row."""
    if isinstance(exc, (MemoryError, SystemError, KeyboardInterrupt)):
        return True
    if isinstance(exc, (StorageUnavailable, LeaseLost)):
        return True
    kinds = {f"{c.__module__}.{c.__name__}" for c in type(exc).__mro__}
    return bool(kinds & {"vllm.exceptions.VLLMServerError", "ray.exceptions.RayError",
                         "torch.OutOfMemoryError", "torch.cuda.OutOfMemoryError"})


def row_guarded(actor_cls: type, output_schema: pa.Schema) -> type:
    """``actor_cls`` with a ``__call__`` that quarantines rows its code raises on (see the module docstring)."""
    class Guarded(actor_cls):
        def __call__(self, batch: pa.Table) -> pa.Table:
            try:
                return super().__call__(batch)
            except Exception as e:  # noqa: BLE001 - sorted below: machinery failures are re-raised
                if _systemic(e) or batch.num_rows == 0:
                    raise
                first = e
            log.warning("%s raised on a batch of %d rows (%s: %s); running its rows one at a time",
                        actor_cls.__name__, batch.num_rows, type(first).__name__, first)
            parts, failed = [], 0
            for i in range(batch.num_rows):
                one = batch.slice(i, 1)
                try:
                    parts.append(super().__call__(one))
                except Exception as e:  # noqa: BLE001 - see above
                    if _systemic(e):
                        raise
                    failed += 1
                    reason = f"{actor_cls.__name__} raised {type(e).__name__}: {e}"[:_REASON_LIMIT]
                    parts.append(rows_to_table([quarantined(one.to_pylist()[0], reason)], output_schema))
            if failed == batch.num_rows > 1:
                raise first   # every row raises on its own: the code is broken, not the rows
            return pa.concat_tables(parts, promote_options="default")

    Guarded.__name__ = actor_cls.__name__   # what Ray Data names the pool's operator after
    return Guarded
