"""Block roots a forward sync checks its blocks against before it writes them.

A pull too long to hold in memory until it links to the finalized root takes its proof from
the top instead:
- the finalized block's post-state (the state at the finalized slot when a block is there,
  else the state at the block's own slot), checked to hash into that block, names the root
  of every slot of its last SLOTS_PER_HISTORICAL_ROOT (`block_roots`), and the era root of
  every era before (`historical_roots` / `historical_summaries`);
- an era-boundary state whose `block_roots` and `state_roots` hash to that era root names the
  roots of its era's slots.

With these, each block and each empty slot is checked on arrival, so nothing off the
finalized chain is written.

    t = TrustedRoots.from_finalized_state(ssz, network, block_slot, fin_root, url, fin_slot)
    t.era_needed(slot)       # the era whose boundary state must be added first, or None
    t.add_era_state(prefix, url)
    t.block_summary_root(era)  # an era's block_roots root (after Capella), for an era
                             # whose state no node has: its blocks' roots must hash to it
    t.root_at(slot)          # block_roots meaning: the latest block root at or before slot
    t.state_root_at(slot)    # the state root at slot (an era state's, checked before storing)

Knows SSZ layouts and the network; must not know the store, HTTP or the queue.
"""

from __future__ import annotations

from ..config import Network
from ..errors import FormatError, VerificationError, hex0x
from ..ssz import layout
from ..ssz.layout import StateHead, state_prefix_size

KEEP_ERAS = 2  # era roots kept (512 KB each on mainnet); a pull walks eras upwards


class TrustedRoots:
    """Per-slot trusted block (and state) roots up to the finalized slot, from the finalized
    block's verified post-state and the era states added to it."""

    def __init__(self, network: Network, slot: int, root: bytes, block_roots: bytes,
                 history, top: int | None = None):
        self.sphr = network.slots_per_historical_root
        self.slot = slot                # the state's slot: the finalized block's
        self.top = slot if top is None else top  # the finalized slot (empty above `slot`)
        self.root = root                # the finalized block root (latest block <= top)
        self.window = block_roots       # the state's block_roots: [slot - SPHR, slot)
        self.history = history          # verify.TrustedState: its historical roots
        self.eras: dict[int, tuple[bytes, bytes]] = {}  # era -> (block_roots, state_roots)

    @staticmethod
    def block_slot(data: bytes, where: str) -> int | None:
        """The slot of a state's latest block when the state is not that block's post-state
        (its header's state_root is filled in: empty slots followed the block), else None.
        Such a state hashes into its block by its header alone, so nothing binds the rest
        of it: the roots must come from the state at the block's own slot."""
        if len(data) < layout.STATE_HEADER.stop:
            raise FormatError(f"{where}: {len(data)} bytes is too short for a BeaconState")
        h = bytes(data[layout.STATE_HEADER])
        if h[layout.HEADER_STATE_ROOT] == b"\x00" * 32:
            return None
        return int.from_bytes(h[layout.HEADER_SLOT], "little")

    @classmethod
    def from_finalized_state(cls, data: bytes, network: Network, slot: int, root: bytes,
                             where: str, top: int | None = None) -> "TrustedRoots":
        """Check the serialized state `data` is the post-state of the finalized block `root`
        at `slot` (its latest_block_header, the state root filled in by its own root, hashes
        to `root`), `top` the finalized slot when empty slots follow; VerificationError (or
        FormatError for a malformed state) naming `where` otherwise."""
        from ..verify import load_trusted_state

        sphr = network.slots_per_historical_root
        after = cls.block_slot(data, where)
        if after is not None:
            raise VerificationError(
                f"{where}: the state at slot {slot} follows its block (slot {after}) by empty "
                "slots, so only its header is bound to the block; the state at the block's "
                "slot is needed")
        ts = load_trusted_state(data, network, where)
        if ts.slot != slot:
            raise VerificationError(f"{where}: the finalized state has slot {ts.slot}, "
                                    f"not the checkpoint's {slot}")
        if network.genesis_validators_root and \
                ts.genesis_validators_root != network.genesis_validators_root:
            raise VerificationError(
                f"{where}: state genesis_validators_root {hex0x(ts.genesis_validators_root)}"
                f" is not the network's {hex0x(network.genesis_validators_root)}")
        _, _, header = layout.header_root(data, ts.root)
        if header != root:
            raise VerificationError(
                f"{where}: the state at slot {slot} (root {hex0x(ts.root)}) belongs to block "
                f"{hex0x(header)}, not to the finalized checkpoint {hex0x(root)}")
        head = StateHead.parse(data[:state_prefix_size(sphr)], sphr, where)
        return cls(network, slot, root, head.block_roots, ts, top)

    def era_needed(self, slot: int) -> int | None:
        """The era (file numbering) whose boundary state names `slot`'s root, when neither
        the finalized state's window nor an added era state does; else None."""
        if slot >= self.slot - self.sphr:
            return None
        era = slot // self.sphr + 1
        return None if era in self.eras else era

    def add_era_state(self, prefix: bytes, where: str) -> None:
        """Trust the block_roots of an era-boundary state (its fixed front: `prefix`) once
        its block_roots and state_roots hash to the finalized state's root of that era."""
        head = StateHead.parse(prefix, self.sphr, where)
        if head.slot % self.sphr or head.slot == 0:
            raise FormatError(f"{where}: slot {head.slot} is not an era boundary")
        era = head.slot // self.sphr
        want = self.history.era_root(era)
        if want is None:
            raise VerificationError(f"{where}: the finalized state (slot {self.slot}) has no "
                                    f"historical root for era {era}")
        got = head.era_root()
        if got != want:
            raise VerificationError(
                f"{where}: era {era}'s block_roots and state_roots hash to {hex0x(got)}, the "
                f"finalized state's historical root of that era is {hex0x(want)} (a state of "
                "another chain)")
        self.eras[era] = (head.block_roots, head.state_roots)
        for old in sorted(self.eras)[:-KEEP_ERAS]:
            del self.eras[old]

    def block_summary_root(self, era: int) -> bytes | None:
        """hash_tree_root of era `era`'s block_roots, when the finalized state holds it on
        its own: a `historical_summaries` entry (eras after Capella).  An older era's
        `historical_roots` entry also needs its state_roots, which only its state has."""
        i = era - 1 - len(self.history.historical_roots) // 32
        hs = self.history.historical_summaries
        return bytes(hs[64 * i:64 * i + 32]) if 0 <= i and 64 * i + 64 <= len(hs) else None

    def root_at(self, slot: int) -> bytes | None:
        """The trusted root of the latest block at or before `slot`, or None if unknown."""
        if self.slot <= slot <= self.top:
            return self.root
        if slot > self.top:
            return None
        i = 32 * (slot % self.sphr)
        if slot >= self.slot - self.sphr:
            return self.window[i:i + 32]
        era = self.eras.get(slot // self.sphr + 1)
        return era[0][i:i + 32] if era is not None else None

    def state_root_at(self, slot: int) -> bytes | None:
        """The trusted hash_tree_root of the state at `slot` (after its block, if any), or
        None if unknown: the finalized state's own root, its state_roots, or those of an
        added era state (an era state's root is the next era state's state_roots[0])."""
        if slot == self.slot:
            return self.history.root
        if slot > self.slot:
            return None
        i = 32 * (slot % self.sphr)
        if slot >= self.slot - self.sphr:
            return bytes(self.history.state_roots[i:i + 32])
        era = self.eras.get(slot // self.sphr + 1)
        return era[1][i:i + 32] if era is not None else None
