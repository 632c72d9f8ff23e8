"""The LevelDB chain store (plyvel): schema.py builds every key, db.py is the only plyvel
importer, chain.py is the API the importers and exporters use.  See docs/store.md."""

from .chain import Batch, ChainStore
from .schema import Anchor

__all__ = ["ChainStore", "Batch", "Anchor"]
