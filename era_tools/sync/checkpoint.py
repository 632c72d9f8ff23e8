"""`era checkpoint-sync`: start a store from a trusted finalized state and its block.

    res = checkpoint_sync(store, api, state_id="finalized", trusted_block_root=None,
                          progress=cb)      # cb(bytes_so_far, total_or_None)

Fetches the state as SSZ (a stream with a generous timeout: mainnet states are hundreds of
MB), then the block at `state.latest_block_header.slot`, and checks before writing anything:

* hash_tree_root(latest_block_header, with state_root filled in when zero) == the block root;
* the state's genesis_validators_root and fork version are the network's (the store's);
* the state slot is an epoch boundary;
* the block has `trusted_block_root`, when given;
* where the store already holds history right below or at the block, it links.

Block, empty slots up to the state slot, and the state go into the store with the new anchor
in one atomic write.  A 404 for a named state (`finalized`: a node moving its finality) is
retried with growing delays (FINALIZED_RETRY_DELAYS).  When the node holds the state but not
the block at the state's own slot (an `era serve` archive: that block begins the next era),
the block the state's block_roots name for the slot before is used, and the store covers up
to the slot before the state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from .. import framing
from ..errors import FormatError, PeerError, StoreError, VerificationError, hex0x
from ..ssz import layout
from ..ssz.layout import StateHead, state_prefix_size
from .peers import BeaconApiClient, fetch_ssz_streaming

# Waits before the retries of a 404 for states/finalized: 0.5 s doubling to 4 s, ~28 s in all.
FINALIZED_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0)


@dataclass
class CheckpointResult:
    state_slot: int
    block_slot: int
    block_root: bytes
    state_root: bytes
    state_bytes: int
    already: bool = False

    def to_dict(self) -> dict:
        return {"state_slot": self.state_slot, "block_slot": self.block_slot,
                "block_root": hex0x(self.block_root), "state_root": hex0x(self.state_root),
                "state_bytes": self.state_bytes, "already_stored": self.already}


def fetch_state(api: BeaconApiClient, state_id: str = "finalized",
                progress: Callable[[int, int | None], None] | None = None,
                retry_delays=None):
    """GET /eth/v2/debug/beacon/states/{state_id} as SSZ (a stream).  A named state
    (`finalized`) is 404 for a while on a node that is moving its finalized checkpoint
    (Lodestar): retried with growing delays before giving up."""
    path = f"/eth/v2/debug/beacon/states/{state_id}"
    resp = fetch_ssz_streaming(api, path, api.state_timeout, progress)
    delays = () if str(state_id).isdigit() else (
        FINALIZED_RETRY_DELAYS if retry_delays is None else tuple(retry_delays))
    waited = 0.0
    for delay in delays:
        if resp is not None:
            break
        time.sleep(delay)
        waited += delay
        resp = fetch_ssz_streaming(api, path, api.state_timeout, progress)
    if resp is None:
        if delays:
            raise PeerError(f"{api.base_url}{path}: the node has no such state (404, "
                            f"{len(delays) + 1} tries over {waited:g} s; a node moving its "
                            "finalized checkpoint answers so for a while: try again)")
        raise PeerError(f"{api.base_url}{path}: the node has no such state (404)")
    return resp


def _check_state_front(resp, net, whose: str) -> tuple[int, str]:
    """(slot, fork) of a fetched state after checking its front against network `net`:
    length, Eth-Consensus-Version, genesis_validators_root and fork version."""
    data, where = resp.ssz, resp.url
    if len(data) < layout.STATE_HEADER.stop:
        raise PeerError(f"{where}: {len(data)} bytes is too short for a BeaconState")
    slot = layout.u64(data, layout.STATE_SLOT)
    fork = net.fork_name_at_slot(slot)
    if resp.fork and resp.fork != fork:
        raise PeerError(f"{where}: Eth-Consensus-Version {resp.fork}, but the network's "
                        f"schedule has {fork} at slot {slot}")
    gvr = bytes(data[layout.STATE_GVR])
    if net.genesis_validators_root is not None and gvr != net.genesis_validators_root:
        raise VerificationError(f"{where}: state genesis_validators_root {hex0x(gvr)} is not "
                                f"{whose} {hex0x(net.genesis_validators_root)} (another "
                                "network)")
    want_v = net.fork_at_slot(slot).version
    got_v = bytes(data[layout.STATE_FORK_CURRENT])
    if got_v != want_v:
        raise VerificationError(f"{where}: state slot {slot}: fork version {hex0x(got_v)}, "
                                f"network {net.name} has {hex0x(want_v)}")
    return slot, fork


def trusted_state_from_node(url: str, network, state_id: str = "finalized",
                            expected_root: bytes | None = None,
                            progress: Callable[[int, int | None], None] | None = None,
                            retry_delays=None):
    """The trusted state for `era verify --level chain` (era_tools.verify.TrustedState) from
    a beacon node's /eth/v2/debug/beacon/states/{state_id}.  Its front is checked against
    `network`; with `expected_root` (e.g. a state root a light client verified) the state
    must hash to it, else VerificationError.  Without it, the node is trusted."""
    from ..verify import load_trusted_state

    api = BeaconApiClient(url, preset_base=network.preset_base)
    resp = fetch_state(api, state_id, progress, retry_delays)
    _check_state_front(resp, network, f"network {network.name}'s")
    try:
        t = load_trusted_state(resp.ssz, network, where=resp.url)
    except FormatError as exc:
        raise PeerError(str(exc)) from exc
    if expected_root is not None and t.root != expected_root:
        raise VerificationError(f"{resp.url}: state (slot {t.slot}) root {hex0x(t.root)} is "
                                f"not the expected {hex0x(expected_root)}")
    return t


def checkpoint_sync(store, api: BeaconApiClient, state_id: str = "finalized",
                    trusted_block_root: bytes | None = None,
                    progress: Callable[[int, int | None], None] | None = None,
                    retry_delays=None) -> CheckpointResult:
    """See the module docstring.  `retry_delays`: seconds to wait before each retry of a 404
    for a named state id (default FINALIZED_RETRY_DELAYS)."""
    from ..verify import state_root as compute_state_root

    net = store.network
    resp = fetch_state(api, state_id, progress, retry_delays)
    data = resp.ssz
    where = resp.url
    slot, fork = _check_state_front(resp, net, "the store's")
    if slot % net.slots_per_epoch:
        raise VerificationError(f"{where}: state slot {slot} is not an epoch boundary "
                                f"(slots per epoch {net.slots_per_epoch}); ask for a "
                                "finalized state")
    try:
        sroot = compute_state_root(data, fork, net.preset_base)
    except FormatError as exc:
        raise PeerError(f"{where}: not a {fork} BeaconState: {exc}") from exc
    bslot, _, hroot = layout.header_root(data, sroot)
    if bslot > slot:
        raise VerificationError(f"{where}: latest_block_header.slot {bslot} is after the "
                                f"state slot {slot}")
    if trusted_block_root is not None and hroot != trusted_block_root:
        raise VerificationError(f"slot {bslot}: checkpoint block root {hex0x(hroot)} is not the "
                                f"trusted block root {hex0x(trusted_block_root)}")
    cover_to = slot
    blk = api.block(bslot)
    if blk is None and bslot == slot and slot > 0:
        # An archive (`era serve`) holds the era-boundary state but not the block at that very
        # slot (it begins the next era): start from the block the state's block_roots name
        # at slot - 1 instead, and cover up to there; the state still anchors its slot.
        want = StateHead.parse(data[:state_prefix_size(net.slots_per_historical_root)],
                               net.slots_per_historical_root, where).block_root_at(slot - 1)
        blk, hroot, cover_to = api.block(hex0x(want)), want, slot - 1
        if blk is None:
            raise PeerError(f"{api.base_url}/eth/v2/beacon/blocks/{slot}: the node has neither "
                            f"the checkpoint block nor the block {hex0x(want)} before it (404)")
        bslot = layout.block_slot(blk.ssz) if len(blk.ssz) >= layout.BLOCK_HEAD else slot
        if bslot >= slot:
            raise PeerError(f"{blk.url}: block of slot {bslot}, the state at {slot} names it "
                            "for a slot before")
    if blk is None:
        raise PeerError(f"{api.base_url}/eth/v2/beacon/blocks/{bslot}: the node has no block "
                        "at the checkpoint's latest_block_header.slot (404)")
    bfork = net.fork_name_at_slot(bslot)
    if blk.fork and blk.fork != bfork:
        raise PeerError(f"{blk.url}: Eth-Consensus-Version {blk.fork}, the schedule has {bfork}")
    root = layout.block_root(blk.ssz, bfork, net.preset_base, blk.url)
    got_slot = layout.block_slot(blk.ssz)
    parent = layout.block_parent(blk.ssz)
    if got_slot != bslot:
        raise PeerError(f"{blk.url}: block of slot {got_slot}, asked for {bslot}")
    if root != hroot:
        what = ("latest_block_header root" if cover_to == slot else
                f"block_roots entry for slot {slot - 1}")
        raise VerificationError(f"{blk.url}: block root {hex0x(root)} != the state's "
                                f"{what} {hex0x(hroot)} (state slot {slot})")
    res = CheckpointResult(slot, bslot, root, sroot, len(data))
    # agreement with what the store already holds
    have = store.index_entry(bslot)
    if have is not None and bytes(have) != root:
        raise StoreError(f"{store.path}: slot {bslot}: the store holds "
                         f"{hex0x(bytes(have)) if have else 'an empty slot'}, the checkpoint "
                         f"block is {hex0x(root)}")
    if store.is_covered(bslot, cover_to) and store.has_state(slot):
        res.already = True
        return res
    if bslot > 0 and store.index_entry(bslot - 1) is not None:
        below = store.block_root_at(bslot - 1)
        if below is not None and below != parent:
            raise VerificationError(
                f"slot {bslot - 1}: the stored root {hex0x(below)} is not the checkpoint "
                f"block's parent {hex0x(parent)}; nothing written")
    b = store.batch()
    b.put_block(bslot, root, parent, framing.compress(blk.ssz))
    for s in range(bslot + 1, cover_to + 1):
        b.put_empty(s)
    b.put_state(slot, framing.compress(data))
    b.cover(bslot, cover_to)
    store.commit(b)
    return res
