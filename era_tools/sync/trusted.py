"""Block roots a forward sync checks its blocks against before it writes them.

A pull too long to hold in memory until it links to the finalized root takes its proof from
the top instead:
- the finalized checkpoint state, checked to hash into the finalized block, names the root
  of every slot of its last SLOTS_PER_HISTORICAL_ROOT (`block_roots`), and the era root of
  every era before (`historical_roots` / `historical_summaries`);
- an era-boundary state whose `block_roots` and `state_roots` hash to that era root names the
  roots of its era's slots.

With these, each block and each empty slot is checked on arrival, so nothing off the
finalized chain is written.

    t = TrustedRoots.from_finalized_state(ssz, network, fin_slot, fin_root, url)
    t.era_needed(slot)       # the era whose boundary state must be added first, or None
    t.add_era_state(prefix, url)
    t.block_summary_root(era)  # an era's block_roots root (after Capella), for an era
                             # whose state no node has: its blocks' roots must hash to it
    t.root_at(slot)          # block_roots meaning: the latest block root at or before slot

Knows SSZ layouts and the network; must not know the store, HTTP or the queue.
"""

from __future__ import annotations

from ..config import Network
from ..errors import FormatError, VerificationError, hex0x
from ..ssz import layout
from ..ssz.layout import StateHead, state_prefix_size

KEEP_ERAS = 2  # era block_roots kept (256 KB each on mainnet); a pull walks eras upwards


class TrustedRoots:
    """Per-slot trusted block roots below (and at) a verified finalized state's slot."""

    def __init__(self, network: Network, slot: int, root: bytes, block_roots: bytes,
                 history):
        self.sphr = network.slots_per_historical_root
        self.slot = slot                # the finalized state's slot
        self.root = root                # the finalized block root (latest block <= slot)
        self.window = block_roots       # the state's block_roots: [slot - SPHR, slot)
        self.history = history          # verify.TrustedState: its historical roots
        self.eras: dict[int, bytes] = {}

    @classmethod
    def from_finalized_state(cls, data: bytes, network: Network, slot: int, root: bytes,
                             where: str) -> "TrustedRoots":
        """Check the serialized state `data` is the state at `slot` of the finalized block
        `root` (its latest_block_header, the state root filled in, hashes to `root`);
        VerificationError (or FormatError for a malformed state) naming `where` otherwise."""
        from ..verify import load_trusted_state

        sphr = network.slots_per_historical_root
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
        return cls(network, slot, root, head.block_roots, ts)

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
        self.eras[era] = head.block_roots
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
        if slot == self.slot:
            return self.root
        if slot > self.slot:
            return None
        i = 32 * (slot % self.sphr)
        if slot >= self.slot - self.sphr:
            return self.window[i:i + 32]
        roots = self.eras.get(slot // self.sphr + 1)
        return roots[i:i + 32] if roots is not None else None
