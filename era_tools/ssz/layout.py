"""Raw byte layouts of the SSZ objects the sync flows handle without decoding them: the head
of a SignedBeaconBlock, the fixed prefix of a BeaconState, and roots computed from bytes.

Identical in every fork (phase0 .. fulu):

    SignedBeaconBlock: offset(message) u32 = 100 | signature 96 | message:
        slot u64 | proposer_index u64 | parent_root 32 | state_root 32 | offset(body) u32 ...
    BeaconBlockHeader: slot u64 | proposer_index u64 | parent_root 32 | state_root 32 |
        body_root 32
    BeaconState: genesis_time u64 | genesis_validators_root 32 | slot u64 |
        fork (previous_version 4, current_version 4, epoch u64) |
        latest_block_header (a BeaconBlockHeader) | block_roots | state_roots | ...

The one place these offsets live: era files (StateHead, the state prefix that names a file),
verification, the server, download, pull, checkpoint sync, the backward queue, front-fill, the
light client and `era sync` all use them.  Roots come from era_tools.ssz.fast (a checked walk
over the bytes: a malformed block raises FormatError).  Cheap to import (no py-ssz).  Knows
nothing of stores, peers or files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FormatError
from ..hashing import merkleize, sha256

ZERO_ROOT = b"\x00" * 32

# -- SignedBeaconBlock --------------------------------------------------------------------
MESSAGE_OFFSET = 4 + 96                       # the value of offset(message), and its start
SIGNATURE = slice(4, MESSAGE_OFFSET)
BLOCK_SLOT = slice(MESSAGE_OFFSET, MESSAGE_OFFSET + 8)
BLOCK_PROPOSER = slice(MESSAGE_OFFSET + 8, MESSAGE_OFFSET + 16)
BLOCK_PARENT = slice(MESSAGE_OFFSET + 16, MESSAGE_OFFSET + 48)
BLOCK_STATE_ROOT = slice(MESSAGE_OFFSET + 48, MESSAGE_OFFSET + 80)
BLOCK_HEAD = BLOCK_PARENT.stop                # bytes needed for slot, proposer and parent
BLOCK_TOP = slice(4, BLOCK_HEAD)              # signature | slot | proposer | parent
MIN_SIGNED_BLOCK = MESSAGE_OFFSET + 84        # fixed part of the smallest (phase0) message

# -- BeaconBlockHeader ----------------------------------------------------------------------
HEADER_SLOT = slice(0, 8)
HEADER_PROPOSER = slice(8, 16)
HEADER_PARENT = slice(16, 48)
HEADER_STATE_ROOT = slice(48, 80)
HEADER_BODY_ROOT = slice(80, 112)
HEADER_SIZE = 112

# -- BeaconState --------------------------------------------------------------------------
STATE_GENESIS_TIME = slice(0, 8)
STATE_GVR = slice(8, 40)
STATE_SLOT = slice(40, 48)
STATE_FORK = slice(48, 64)
STATE_FORK_PREVIOUS = slice(48, 52)
STATE_FORK_CURRENT = slice(52, 56)
STATE_FORK_EPOCH = slice(56, 64)
STATE_HEADER = slice(64, 64 + HEADER_SIZE)    # latest_block_header
STATE_BLOCK_ROOTS = STATE_HEADER.stop         # block_roots starts here (176)


def state_prefix_size(slots_per_historical_root: int) -> int:
    """Bytes of a BeaconState up to the end of state_roots: what names an era file."""
    return STATE_BLOCK_ROOTS + 64 * slots_per_historical_root


def u64(data, where: slice) -> int:
    return int.from_bytes(data[where], "little")


def block_slot(data) -> int:
    return u64(data, BLOCK_SLOT)


def block_proposer(data) -> int:
    return u64(data, BLOCK_PROPOSER)


def block_parent(data) -> bytes:
    return bytes(data[BLOCK_PARENT])


def block_state_root(data) -> bytes:
    return bytes(data[BLOCK_STATE_ROOT])


def block_signature(data) -> bytes:
    return bytes(data[SIGNATURE])


def check_block_head(head, length: int, where: str) -> None:
    """FormatError naming `where` unless `head` (at least the first BLOCK_HEAD bytes, or all,
    of a serialized SignedBeaconBlock of `length` bytes) can begin one: long enough, and
    offset(message) is MESSAGE_OFFSET."""
    if length < MIN_SIGNED_BLOCK or len(head) < min(length, BLOCK_HEAD):
        raise FormatError(f"{where}: SignedBeaconBlock of {length} bytes is too short")
    off = int.from_bytes(head[0:4], "little")
    if off != MESSAGE_OFFSET:
        raise FormatError(f"{where}: SignedBeaconBlock message offset {off}, expected "
                          f"{MESSAGE_OFFSET}")


def block_message(data, where: str) -> memoryview:
    """The message of a serialized SignedBeaconBlock, after check_block_head."""
    check_block_head(data, len(data), where)
    return memoryview(data)[MESSAGE_OFFSET:]


def message_root(data, fork: str, preset: str, where: str) -> bytes:
    """hash_tree_root(message) of a serialized SignedBeaconBlock; a malformed message raises
    FormatError as era_tools.ssz.fast words it (without `where`)."""
    return _message_root(block_message(data, where), fork, preset)


def block_root(data, fork: str, preset: str, where: str) -> bytes:
    """hash_tree_root(message) of a serialized SignedBeaconBlock of `fork`, from its bytes.
    The whole message is walked, so malformed bytes raise FormatError naming `where`."""
    message = block_message(data, where)
    try:
        return _message_root(message, fork, preset)
    except FormatError as exc:
        raise FormatError(f"{where}: {exc}") from exc


def _message_root(message, fork: str, preset: str) -> bytes:
    from .. import ssz
    from .fast import hash_tree_root_bytes

    return hash_tree_root_bytes(ssz.types_for(fork, preset).BeaconBlock, message)


def block_summary(data, fork: str, preset: str, where: str) -> tuple[int, bytes, bytes]:
    """(slot, root, parent_root) of a serialized SignedBeaconBlock (see block_root)."""
    root = block_root(data, fork, preset, where)
    return block_slot(data), root, block_parent(data)


def header_root(state, state_root: bytes) -> tuple[int, bytes, bytes]:
    """(slot, parent_root, root) of state.latest_block_header, its state_root filled in with
    `state_root` when zero (as process_slot does)."""
    h = bytes(state[STATE_HEADER])
    parent = h[HEADER_PARENT]
    sr = h[HEADER_STATE_ROOT]
    if sr == ZERO_ROOT:
        sr = state_root
    leaves = (h[HEADER_SLOT].ljust(32, b"\0") + h[HEADER_PROPOSER].ljust(32, b"\0") + parent +
              sr + h[HEADER_BODY_ROOT])
    return u64(h, HEADER_SLOT), parent, merkleize(leaves, 8)


def era_root(block_roots: bytes, state_roots: bytes) -> bytes:
    """sha256(hash_tree_root(block_roots) || hash_tree_root(state_roots)): the
    HistoricalBatch root and the HistoricalSummary root alike."""
    return sha256(merkleize(block_roots) + merkleize(state_roots))


@dataclass(frozen=True)
class StateHead:
    """The fixed front of a BeaconState, read without decoding the whole state."""

    genesis_time: int
    genesis_validators_root: bytes
    slot: int
    fork_previous_version: bytes
    fork_current_version: bytes
    fork_epoch: int
    latest_block_header: bytes
    block_roots: bytes  # 32 * SPHR bytes, or b"" when SPHR is unknown
    state_roots: bytes

    @staticmethod
    def parse(prefix: bytes, slots_per_historical_root: int | None, where: str) -> "StateHead":
        need = STATE_BLOCK_ROOTS if not slots_per_historical_root else state_prefix_size(
            slots_per_historical_root)
        if len(prefix) < need:
            raise FormatError(f"{where}: BeaconState is {len(prefix)} bytes, shorter than its "
                              f"fixed front ({need} bytes)")
        sphr = slots_per_historical_root or 0
        br = STATE_BLOCK_ROOTS
        return StateHead(
            genesis_time=u64(prefix, STATE_GENESIS_TIME),
            genesis_validators_root=bytes(prefix[STATE_GVR]),
            slot=u64(prefix, STATE_SLOT),
            fork_previous_version=bytes(prefix[STATE_FORK_PREVIOUS]),
            fork_current_version=bytes(prefix[STATE_FORK_CURRENT]),
            fork_epoch=u64(prefix, STATE_FORK_EPOCH),
            latest_block_header=bytes(prefix[STATE_HEADER]),
            block_roots=bytes(prefix[br:br + 32 * sphr]),
            state_roots=bytes(prefix[br + 32 * sphr:br + 64 * sphr]),
        )

    @property
    def sphr(self) -> int:
        return len(self.block_roots) // 32

    def block_root_at(self, slot: int) -> bytes:
        i = (slot % self.sphr) * 32
        return self.block_roots[i:i + 32]

    def state_root_at(self, slot: int) -> bytes:
        i = (slot % self.sphr) * 32
        return self.state_roots[i:i + 32]

    def block_roots_array(self) -> np.ndarray:
        return np.frombuffer(self.block_roots, dtype=np.uint8).reshape(-1, 32)

    def era_root(self) -> bytes:
        return era_root(self.block_roots, self.state_roots)

    def short_root(self, era: int) -> bytes:
        """The 4 bytes that name the era file: genesis_validators_root for era 0, else the
        era root computed from this state."""
        if era == 0:
            return self.genesis_validators_root[:4]
        return self.era_root()[:4]
