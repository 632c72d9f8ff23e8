"""Compare chain stores by full iteration: every raw key and value, metadata included."""

from __future__ import annotations

import os

from era_tools.store.db import KV


def dump(db) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of the LevelDB store at `db`; [] when no store is there."""
    db = os.fspath(db)
    if not os.path.exists(os.path.join(db, "CURRENT")):
        return []
    kv = KV.open(db, readonly=True)
    try:
        return [(bytes(k), bytes(v)) for k, v in kv.items()]
    finally:
        kv.close()
