"""`era backfill`: fill the store downwards from its oldest block, from peers.

    res = backfill(store, ["http://a:5052", "http://b:8080"], to_slot=None, workers=4)

Plans the job from the store's anchor: the top is the oldest block of the newest covered
range (after `era checkpoint-sync`, the checkpoint block); the floor is slot 0 (genesis), or
the slot after the previous covered range (front-filled era history: there the chain must
link to the era root at floor - 1).  Pubkeys come from the newest state in the store (the
checkpoint state), as a numpy view over its validators.  Peers are probed once: an era_tools
server's range endpoint is used when offered, the standard Beacon API otherwise; a peer that
reports another genesis_validators_root is dropped before it is asked for anything.  Then
era_tools.sync.queue does the work.  A killed or interrupted run resumes from the anchor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from .. import bls, hashing
from ..errors import StoreError, hex0x
from ..procs import pool_context
from .peers import PeerFault
from .queue import (RANGE_BATCHES, SCORE_NO_VALUES, PeerState, QueueResult, SyncQueue,
                    Verifier, warm_task)
from .sources import make_source

ZERO_ROOT = b"\x00" * 32


@dataclass
class Plan:
    top: int                  # lowest slot of the newest covered range
    anchor_slot: int          # the lowest stored block there
    anchor_root: bytes
    expect: bytes             # its parent: the root the next block down must have
    floor: int                # lowest slot to fill
    floor_root: bytes | None  # era root at floor - 1 (None at genesis)
    state_slot: int           # the state whose validators give the pubkeys

    def to_dict(self) -> dict:
        return {"top": self.top, "anchor_slot": self.anchor_slot,
                "anchor_root": hex0x(self.anchor_root), "expect": hex0x(self.expect),
                "floor": self.floor,
                "floor_root": hex0x(self.floor_root) if self.floor_root else None,
                "state_slot": self.state_slot}


def plan(store) -> Plan | None:
    """What is left to fill, or None when the newest range already reaches genesis."""
    a = store.anchor
    if not a.covered or a.oldest_block_slot is None or a.oldest_block_parent is None:
        raise StoreError(f"{store.path}: the store has no anchor block; run `era "
                         "checkpoint-sync` first")
    top = a.covered[-1][0]
    if top == 0 or a.oldest_block_slot == 0:
        return None
    if len(a.covered) >= 2:
        boundary = a.covered[-2][1]
        floor = boundary + 1
        floor_root = store.block_root_at(boundary)
        if floor_root is None:
            raise StoreError(f"{store.path}: slot {boundary}: no block root known at the top "
                             "of the front-filled history")
    else:
        floor, floor_root = 0, None
    states = [s for s in store.state_slots() if s >= top]
    if not states:
        raise StoreError(f"{store.path}: no state at or above slot {top} to take proposer "
                         "keys from; run `era checkpoint-sync` first")
    return Plan(top, a.oldest_block_slot, a.oldest_block_root, a.oldest_block_parent, floor,
                floor_root, max(states))


@dataclass
class BackfillResult:
    plan: Plan | None
    queue: QueueResult
    peer_kinds: dict

    def to_dict(self) -> dict:
        q = self.queue
        return {"plan": self.plan.to_dict() if self.plan else None, "slots": q.slots,
                "blocks": q.blocks, "bytes": q.bytes, "commits": q.commits,
                "oldest_slot": q.oldest_slot, "stopped": q.stopped,
                "elapsed_s": round(q.elapsed, 3),
                "slots_per_s": round(q.slots / q.elapsed, 1) if q.elapsed else None,
                "peers": q.peers}


def load_pubkeys(store, slot: int):
    from ..verify import validator_pubkeys

    data = store.get_state(slot)
    net = store.network
    return validator_pubkeys(data, net.fork_name_at_slot(slot), net.preset_base)


def make_peers(urls, net, probe_slot: int, timeout: float) -> list[PeerState]:
    """A PeerState per URL (an HTTP server, probed for the range endpoint, or era files:
    sources.make_source); a peer whose genesis or config spec contradicts the store's
    network `net` is dropped before it is asked for blocks."""
    from ..config import spec_mismatch

    gvr = net.genesis_validators_root
    out = []
    for url in urls:
        p = make_source(url, net, timeout=timeout)
        st = PeerState(p)
        try:
            p.detect(probe_slot)
        except PeerFault as exc:
            p.kind = "rest"
            st.adjust(SCORE_NO_VALUES, str(exc))
        theirs = p.genesis_validators_root()
        spec = p.spec()
        diff = spec_mismatch(net, spec) if spec is not None else None
        why = None
        if theirs is not None and theirs != gvr:
            why = (f"{url}: genesis_validators_root {hex0x(theirs)}, expected {hex0x(gvr)} "
                   "(another network)")
        elif diff is not None:
            why = (f"{url}: /eth/v1/config/spec has {diff[0]}={diff[2]}, the store's network "
                   f"has {diff[1]} (another fork schedule)")
        if why is not None:
            st.score, st.dropped, st.reason = 0, True, why
        out.append(st)
    return out


def backfill(store, peer_urls, *, to_slot: int | None = None, workers: int = 4,
             max_rate: float | None = None, timeout: float = 30.0,
             batch_slots: int | None = None, bls_processes: int = 0,
             range_batches: int | None = None,
             progress: Callable[[int], None] | None = None,
             status: Callable[[str], None] | None = None, status_every: float = 5.0,
             on_plan: Callable[[Plan], None] | None = None) -> BackfillResult:
    p = plan(store)
    if p is None:
        return BackfillResult(None, QueueResult(stopped="already at genesis"), {})
    store.remove_unreferenced_files()  # block files of a run killed before its commit
    if on_plan:
        on_plan(p)
    net = store.network
    pool = None
    if bls_processes:
        # made first and warmed up (imports, BLS backend, hashing plan) while the pubkeys
        # load and the peers are probed
        import concurrent.futures as cf

        # not fork: the open LevelDB store has a compaction thread Python does not see
        ctx = pool_context([warm_task.__module__], allow_fork=False)
        pool = cf.ProcessPoolExecutor(bls_processes, mp_context=ctx)
        for _ in range(bls_processes):
            pool.submit(warm_task, net.fork_name_at_slot(max(0, p.top - 1)), net.preset_base)
    try:
        pubkeys = load_pubkeys(store, p.state_slot)
        peers = make_peers(peer_urls, net, p.top - 1, timeout)
        verifier = Verifier(net, pubkeys, pool)
        q = SyncQueue.backward(store, peers, verifier, top=p.top, expect=p.expect,
                               anchor_block=(p.anchor_slot, p.anchor_root), floor=p.floor,
                               floor_root=p.floor_root, to_slot=to_slot,
                               batch_slots=batch_slots, workers=workers, max_rate=max_rate,
                               progress=progress, range_batches=range_batches or RANGE_BATCHES,
                               status=status, status_every=status_every)
        res = q.run()
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    return BackfillResult(p, res, {s.url: s.peer.kind for s in peers})


def default_bls_processes() -> int:
    """0 (verify in the fetch worker threads) when the BLS backend and the block hasher both
    drop the GIL: no process start-up and no shipping of every block to another process
    (measured 1,276-1,359 against 1,239-1,250 slots/s with 2 processes, BENCHMARKS.md).
    Otherwise one process per core, at most 4."""
    cores = os.cpu_count() or 1
    if cores == 1 or (bls.get_backend().releases_gil and hashing.native()):
        return 0
    return min(4, cores)
