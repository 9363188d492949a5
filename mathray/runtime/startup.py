"""A process's heavy imports (torch, transformers, vLLM) without the cyclic garbage collector.

Importing those libraries allocates a few million objects, almost none of them garbage. CPython runs a
collection every 700 net allocations and, as the objects pile up, scans the older generations again and again
while they load: a tenth or more of an engine replica's or a training worker's start-up CPU
(``benchmarks/startup_gc.py``). ``heavy_imports()`` pauses the collector for a block of imports, then freezes
what exists (``gc.freeze``: a permanent generation that later collections skip), so that the process's later
collections only scan what it allocates from then on.

The frozen objects are unfrozen at exit: the interpreter's shutdown then frees them as usual (native
extensions that count their objects at exit, as nanobind's do for Triton, would otherwise report each as a
leak)."""
from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Iterator

atexit.register(gc.unfreeze)


@contextlib.contextmanager
def heavy_imports() -> Iterator[None]:
    """Run the block with the garbage collector paused, then freeze every object that exists and restore the
    collector as it was (a caller that had disabled it keeps it disabled)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
