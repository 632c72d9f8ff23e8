"""Raw byte layouts of the SSZ objects the sync flows handle without decoding them: the head
of a SignedBeaconBlock, the fixed prefix of a BeaconState, and roots computed from bytes.

Identical in every fork (phase0 .. fulu):

    SignedBeaconBlock: offset(message) u32 = 100 | signature 96 | message:
        slot u64 | proposer_index u64 | parent_root 32 | state_root 32 | offset(body) u32 ...
    BeaconState: genesis_time u64 | genesis_validators_root 32 | slot u64 |
        fork (previous_version 4, current_version 4, epoch u64) |
        latest_block_header (slot, proposer_index, parent_root, state_root, body_root) |
        block_roots ...

The one place these offsets live (pull, checkpoint sync, the backward queue, front-fill and
`era sync` use them).  Roots come from era_tools.ssz.fast (a checked walk over the bytes: a
malformed block raises FormatError).  Knows nothing of stores, peers or files.
"""

from __future__ import annotations

from ..errors import FormatError
from ..hashing import merkleize

ZERO_ROOT = b"\x00" * 32

# -- SignedBeaconBlock --------------------------------------------------------------------
MESSAGE_OFFSET = 4 + 96                       # the value of offset(message), and its start
SIGNATURE = slice(4, MESSAGE_OFFSET)
BLOCK_SLOT = slice(MESSAGE_OFFSET, MESSAGE_OFFSET + 8)
BLOCK_PROPOSER = slice(MESSAGE_OFFSET + 8, MESSAGE_OFFSET + 16)
BLOCK_PARENT = slice(MESSAGE_OFFSET + 16, MESSAGE_OFFSET + 48)
BLOCK_HEAD = BLOCK_PARENT.stop                # bytes needed for slot, proposer and parent
MIN_SIGNED_BLOCK = MESSAGE_OFFSET + 84        # fixed part of the smallest (phase0) message

# -- BeaconState --------------------------------------------------------------------------
STATE_GENESIS_TIME = slice(0, 8)
STATE_GVR = slice(8, 40)
STATE_SLOT = slice(40, 48)
STATE_FORK = slice(48, 64)
STATE_FORK_CURRENT = slice(52, 56)
STATE_HEADER = slice(64, 176)                 # latest_block_header (5 fields, 112 bytes)
STATE_BLOCK_ROOTS = 176                       # block_roots starts here


def block_slot(data) -> int:
    return int.from_bytes(data[BLOCK_SLOT], "little")


def block_proposer(data) -> int:
    return int.from_bytes(data[BLOCK_PROPOSER], "little")


def block_parent(data) -> bytes:
    return bytes(data[BLOCK_PARENT])


def check_block_head(head, length: int, where: str) -> None:
    """FormatError unless `head` (at least the first BLOCK_HEAD bytes of a serialized
    SignedBeaconBlock of `length` bytes) can begin one."""
    if length < MIN_SIGNED_BLOCK or len(head) < min(length, BLOCK_HEAD):
        raise FormatError(f"{where}: SignedBeaconBlock of {length} bytes is too short")
    off = int.from_bytes(head[0:4], "little")
    if off != MESSAGE_OFFSET:
        raise FormatError(f"{where}: SignedBeaconBlock message offset {off}, expected "
                          f"{MESSAGE_OFFSET}")


def block_root(data, fork: str, preset: str, where: str) -> bytes:
    """hash_tree_root(message) of a serialized SignedBeaconBlock of `fork`, from its bytes.
    The whole message is walked, so malformed bytes raise FormatError naming `where`."""
    from .. import ssz
    from .fast import hash_tree_root_bytes

    check_block_head(data, len(data), where)
    try:
        return hash_tree_root_bytes(ssz.types_for(fork, preset).BeaconBlock,
                                    memoryview(data)[MESSAGE_OFFSET:])
    except FormatError as exc:
        raise FormatError(f"{where}: {exc}") from exc


def block_summary(data, fork: str, preset: str, where: str) -> tuple[int, bytes, bytes]:
    """(slot, root, parent_root) of a serialized SignedBeaconBlock (see block_root)."""
    root = block_root(data, fork, preset, where)
    return block_slot(data), root, block_parent(data)


def header_root(state, state_root: bytes) -> tuple[int, bytes, bytes]:
    """(slot, parent_root, root) of state.latest_block_header, its state_root filled in with
    `state_root` when zero (as process_slot does)."""
    h = bytes(state[STATE_HEADER])
    slot = int.from_bytes(h[0:8], "little")
    parent = bytes(h[16:48])
    sr = bytes(h[48:80])
    if sr == ZERO_ROOT:
        sr = state_root
    leaves = h[0:8].ljust(32, b"\0") + h[8:16].ljust(32, b"\0") + parent + sr + bytes(h[80:112])
    return slot, parent, merkleize(leaves, 8)
