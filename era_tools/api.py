"""The public Python API: open an era file, iterate its blocks, view its state, make tables.

    era = era_tools.open_era("minimal-00002-c3ec0173.era")   # network from beside the file
    for slot, block in era.blocks():        # SignedBeaconBlock objects (spec field names)
    for slot, ssz in era.blocks(raw=True):  # the blocks' SSZ bytes
    era.state_view().balances               # numpy view over the state bytes
    era.verify()                            # roots level; raises VerificationError
    era.to_arrow("blocks")                  # a pyarrow.Table (era_tools.tables)

This module joins the reader, the network lookup and the table builder; it prints nothing and
imports pyarrow only when a table is asked for.
"""

from __future__ import annotations

import os

__all__ = ["Era", "open_era"]


class Era:
    """An open era file with its network (fork schedule and preset)."""

    def __init__(self, path, network=None):
        from .era import EraReader

        self.path = os.fspath(path)
        self.reader = EraReader(self.path)
        try:
            self.network = network if network is not None else _network_beside(self.path)
        except BaseException:
            self.reader.close()
            raise

    @property
    def era(self) -> int:
        return self.reader.era

    @property
    def slots(self) -> range:
        return self.reader.slots

    def blocks(self, raw: bool = False):
        """(slot, block) for every block: decoded SignedBeaconBlock, or its SSZ when raw."""
        from . import ssz

        for slot, data in self.reader.iter_blocks():
            if raw:
                yield slot, data
            else:
                yield slot, ssz.decode_block(data, self.network.fork_name_at_slot(slot),
                                             self.network.preset_base,
                                             where=f"{self.path}: block at slot {slot}")

    def block(self, slot: int):
        """The decoded block at `slot`, or None for an empty slot."""
        return self.reader.block(slot, self.network)

    def state(self):
        """The era's BeaconState, decoded (slow for mainnet-sized states: see state_view)."""
        return self.reader.state(self.network)

    def state_view(self):
        """A zero-copy numpy view of the era's state (era_tools.ssz.view.StateView)."""
        from .ssz.view import StateView

        return StateView(self.reader.state_ssz(),
                         self.network.fork_name_at_slot(self.reader.state_slot),
                         self.network.preset_base)

    def verify(self, level: str = "roots") -> None:
        """Check the file at `level` (era_tools.verify: structure, roots, signatures); raises
        VerificationError naming the first failure.  Once the roots level passed, the blocks
        table takes each block's root from the state's block_roots (the check proved them
        equal) instead of hashing every block a second time."""
        from .e2store import version_of
        from .errors import VerificationError
        from .verify import level_index, verify_file

        before = version_of(self.path, self.reader._f)
        report = verify_file(self.path, self.network, level)
        if not report.ok:
            f = report.first_failure()
            raise VerificationError(f"{self.path}: fails verification at the {level} level "
                                    f"({f.check}: {f.message})")
        if version_of(self.path) != before:
            raise VerificationError(f"{self.path}: the file changed after it was opened")
        if level_index(level) >= level_index("roots"):
            self._roots_verified = True

    def _roots(self) -> str:
        return "state" if getattr(self, "_roots_verified", False) else "hash"

    def to_arrow(self, table: str):
        """One table of this era as a pyarrow.Table (names: era_tools.tables.TABLES)."""
        from .tables import build_tables

        return build_tables(self.reader, self.network, (table,), roots=self._roots())[table]

    def tables(self, names=None) -> dict:
        """Several tables at once, from one pass over the blocks."""
        from .tables import TABLES, build_tables

        return build_tables(self.reader, self.network, tuple(names or TABLES),
                            roots=self._roots())

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "Era":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Era({self.path!r}, era={self.era}, network={self.network.name!r})"


def _network_beside(path: str):
    from .config import resolve_network

    return resolve_network(None, None, [path])[0]


def open_era(path, network=None) -> Era:
    """Open the era file at `path`.  `network`: a Network (era_tools.config.load_config /
    get_network), a network name, or None to read the config beside the file."""
    if isinstance(network, str):
        from .config import get_network

        network = get_network(network)
    return Era(path, network)
