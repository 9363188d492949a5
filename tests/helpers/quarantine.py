"""Every quarantine row of a shard set, for the tests' checks of what was refused and why."""
from __future__ import annotations

import pyarrow as pa

from mathray.runtime.storage import ShardStore


def read_all_quarantine(store: ShardStore) -> pa.Table | None:
    """The quarantine rows of every committed shard, in shard order; None when no shard quarantined a row."""
    tables = [t for n in store.committed() if (t := store.read_quarantine(n)) is not None]
    return pa.concat_tables(tables, promote_options="default") if tables else None
