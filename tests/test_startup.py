"""``runtime.startup.heavy_imports``: the collector paused in the block, what exists frozen after it, and the
collector left as the caller had it."""
from __future__ import annotations

import gc

from mathray.runtime.startup import heavy_imports


def test_the_collector_is_paused_in_the_block_then_what_exists_is_frozen():
    gc.unfreeze()
    try:
        assert gc.isenabled()
        with heavy_imports():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]   # tracked objects created in the block
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made)
    finally:
        gc.unfreeze()


def test_a_collector_the_caller_disabled_stays_disabled_even_when_the_block_raises():
    gc.disable()
    try:
        try:
            with heavy_imports():
                raise ImportError("no such module")
        except ImportError:
            pass
        assert not gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()
