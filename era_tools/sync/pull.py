"""`era pull`: copy finalized blocks and era-boundary states from a beacon node into the store.

    net = node_network(api, expected=None)     # spec + genesis + syncing; refuses bad nodes
    store = ChainStore.open(db, net)           # StoreError if the store holds another network
    pull(store, api, from_slot, to_slot)

Blocks come from /eth/v2/beacon/blocks/{slot} (a 404 is an empty slot; or an era_tools
node's range endpoint, `source`), through a forward, strict era_tools.sync.queue.SyncQueue
(the same workers, checks and importer as backfill); states from
/eth/v2/debug/beacon/states/{slot} at multiples of SLOTS_PER_HISTORICAL_ROOT, each right after
its era's blocks are written.  Every block's parent_root must be the root of the block before
it (also across the store's existing history, below and above the pulled range), and every
state's block_roots must agree with the indexed blocks.  Slots are fetched concurrently and
committed in slot order, `batch_slots` at a time (at most an era), each batch one atomic
write: a killed pull resumes where it stopped.

Nothing off the finalized chain is written:
- a span of at most PROVE_FIRST_SLOTS ending at the finalized slot is held until it links to
  the finalized root, then written at once;
- any other span is checked slot by slot against era_tools.sync.trusted.TrustedRoots: the
  node's state at the finalized slot (it must hash into the finalized block) names the
  roots of its last SLOTS_PER_HISTORICAL_ROOT slots, and each older era's boundary state,
  fetched before that era's blocks (in a thread while the era before is pulled), must hash
  to its historical root;
- an era whose state the node pruned (with `missing_states`) is committed only once all its
  block roots hash to the finalized state's block_summary_root of the era (after Capella).
Where none of these applies, the span is written as it links (`PullResult.linked_only`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

from .. import framing
from ..config import Network, network_from_spec, spec_mismatch
from ..ssz.layout import StateHead, state_prefix_size
from ..errors import ConfigError, PeerError, VerificationError, hex0x
from ..hashing import merkleize
from ..ssz import layout
from ..ssz.json import json_to_ssz_for
from ..store import ChainStore, schema
from .peers import BeaconApiClient

ZERO_ROOT = b"\x00" * 32


@dataclass
class PullResult:
    slots: int = 0
    blocks: int = 0
    states: int = 0
    bytes: int = 0
    skipped_slots: int = 0
    from_slot: int = 0
    to_slot: int = 0
    batches: int = field(default=0)
    unheld_slot: int | None = None   # the finalized slot whose block the node did not give
    # slots written as they linked, with no trusted root to check them against before the
    # write (the node gave no finalized state, or no state of their era): [(first, last)]
    linked_only: list = field(default_factory=list)

    def add(self, q, commits: int) -> None:
        """Count a forward queue's QueueResult `q`, written in `commits` store writes."""
        self.slots += q.slots
        self.blocks += q.blocks
        self.bytes += q.bytes
        self.batches += commits


def node_network(api: BeaconApiClient, expected: Network | None = None) -> Network:
    """The node's network from /config/spec and /beacon/genesis, after checking it is synced
    and (when `expected` is given) that it is the expected network."""
    spec = api.spec()
    genesis = api.genesis()
    syncing = api.syncing()
    if _truthy(syncing.get("is_syncing")):
        raise PeerError(f"{api.base_url}: the node is syncing (head_slot "
                        f"{syncing.get('head_slot')}, sync_distance "
                        f"{syncing.get('sync_distance')}); pull from a synced node")
    try:
        net = network_from_spec(spec, genesis=genesis)
    except ConfigError as exc:  # the node's own answers do not make a network
        raise PeerError(f"{api.base_url}: {exc}") from None
    if net.genesis_validators_root is None:
        raise PeerError(f"{api.base_url}: /eth/v1/beacon/genesis gave no "
                        "genesis_validators_root")
    if expected is not None:
        if expected.genesis_validators_root and \
                expected.genesis_validators_root != net.genesis_validators_root:
            raise PeerError(
                f"{api.base_url}: node's genesis_validators_root "
                f"{hex0x(net.genesis_validators_root)} is not {expected.name}'s "
                f"{hex0x(expected.genesis_validators_root)} (another network)")
        check_spec(api.base_url, expected, spec)
        if (expected.config_name, expected.preset_base) != (net.config_name, net.preset_base):
            raise PeerError(f"{api.base_url}: node runs {net.config_name} "
                            f"({net.preset_base} preset), expected {expected.config_name}")
    if api.preset_base is None:
        api.preset_base = net.preset_base
        api._json_to_ssz = json_to_ssz_for(net.preset_base)
    return net


def check_spec(url: str, expected: Network, spec: dict) -> None:
    """PeerError naming the first key where the node's /eth/v1/config/spec contradicts the
    named network (fork versions and epochs, preset values): the same name can mean another
    fork schedule (the spec's `minimal` schedules no fork, dev chains do)."""
    diff = spec_mismatch(expected, spec)
    if diff is not None:
        key, want, got = diff
        raise PeerError(f"{url}: the node's /eth/v1/config/spec has {key}={got}, network "
                        f"{expected.name} has {want} (another fork schedule or preset; pass "
                        "the node's spec with --config, or give no --network)")


def _truthy(v) -> bool:
    return v is True or str(v).lower() == "true"


def pull(store: ChainStore, api: BeaconApiClient, from_slot: int | None = None,
         to_slot: int | None = None, workers: int = 8, batch_slots: int = 256,
         progress: Callable[[int], None] | None = None,
         finalized: tuple[int, bytes] | None = None,
         missing_states: list | None = None,
         on_state: Callable[[int], None] | None = None,
         source=None) -> PullResult:
    """`finalized`: (epoch, root) of the finalized checkpoint to pull up to, when it comes
    from elsewhere than the node (the light client: era_tools.lightclient.driver).
    `missing_states`: when a list, an era-boundary state the node does not serve (404) is
    appended to it (its slot) and the pull goes on; else that is a PeerError.  `on_state(slot)`
    is called after each era-boundary state is committed (`era sync` publishes the era).
    `source`: a peers.BackfillPeer of kind "range" (an era_tools node) to take the blocks
    from, one range request per batch, instead of one GET per slot from `api`; the checks
    and the commits are the same."""
    net = store.network
    sphr = net.slots_per_historical_root
    fin_epoch, fin_root = finalized if finalized is not None else api.finalized_checkpoint()
    fin = fin_epoch * net.slots_per_epoch
    a = 0 if from_slot is None else from_slot
    b = fin if to_slot is None else to_slot
    if b > fin:
        raise PeerError(f"{api.base_url}: --to-slot {b} is past the node's finalized slot "
                        f"{fin}; only finalized history is pulled")
    if a > b:
        raise PeerError(f"--from-slot {a} is after --to-slot {b}")
    res = PullResult(from_slot=a, to_slot=b)
    store.remove_unreferenced_files()  # files of a run killed before their commit
    # era 0: the genesis state
    if a == 0 and not store.has_state(0):
        _pull_state(store, api, net, 0, res)
    peer = source if source is not None else _rest_source(api, net, workers)

    def states_up_to(hi: int, trusted=None) -> None:
        """The era-boundary states whose era's blocks are now all stored (in slot order);
        each must hash to its root in `trusted` (TrustedRoots) where that knows it."""
        for state_slot in range((a // sphr + 1) * sphr, min(b, hi + 1) + 1, sphr):
            if store.has_state(state_slot) or state_slot in done_states:
                continue
            done_states.add(state_slot)
            want = None if trusted is None or state_slot in verified else \
                trusted.state_root_at(state_slot)
            if _pull_state(store, api, net, state_slot, res,
                           allow_404=missing_states is not None,
                           resp=held.pop(state_slot, False), want_root=want):
                if on_state:
                    on_state(state_slot)
            else:
                missing_states.append(state_slot)

    done_states: set = set()
    held: dict = {}  # state slot -> a state already fetched (and checked) for the trust
    verified: set = set()  # slots of held states whose root is already checked
    todo = _uncovered(store, a, b)  # a rerun resumes after the newest stored slot
    res.skipped_slots = (b - a + 1) - sum(y - x + 1 for x, y in todo)
    if progress and res.skipped_slots:
        progress(res.skipped_slots)
    batch_slots = min(batch_slots, sphr)  # a write never spans two eras

    def blocks(x: int, y: int, trusted=None, states=True) -> None:
        _pull_blocks(store, peer, net, x, y, res, workers, batch_slots,
                     fin_root if y == fin else None, progress,
                     (lambda hi: states_up_to(hi, trusted)) if states else (lambda hi: None),
                     trusted=None if trusted is None else trusted.root_at)

    prefetch = _StatePrefetch(store, api, net, missing_states is not None)
    for x, y in todo:
        short = y == fin and y - x + 1 <= PROVE_FIRST_SLOTS  # proven whole before its write
        trusted = None if short else _trusted_roots(store, api, net, fin, fin_root, held,
                                                    verified, x)
        if trusted is None:
            states_up_to(x - 1)
            if not short:
                res.linked_only.append((x, y))
            blocks(x, y)
            continue
        # proven from the top: each era below the finalized state's window is pulled once
        # its boundary state hashes to the finalized state's historical root of that era;
        # the state below it is stored then, its root being that state's state_roots[0]
        while x <= y:
            era = trusted.era_needed(x)
            z = y if era is None else min(y, era * sphr - 1)
            stated = era is None or _trust_era(store, api, net, trusted, era * sphr, held,
                                               missing_states is not None, prefetch)
            states_up_to(x - 1, trusted)
            nxt = trusted.era_needed(z + 1) if z < y else None
            if nxt is not None:  # the next era's state arrives while this era's blocks do
                prefetch.start(nxt * sphr)
            if stated:
                blocks(x, z, trusted, states=era is None)
            elif not _pull_era_by_summary(store, peer, net, x, z, era, trusted, res, workers,
                                          batch_slots, progress):
                res.linked_only.append((x, z))
                blocks(x, z, trusted, states=False)
            x = z + 1
        states_up_to(y, trusted)
    states_up_to(b)
    return res


def _trusted_roots(store: ChainStore, api: BeaconApiClient, net: Network, fin: int,
                   fin_root: bytes, held: dict, verified: set, first: int):
    """TrustedRoots from the node's state at the finalized slot, checked to be the post-state
    of the finalized block (when that slot is empty, the state at the block's slot instead);
    None when the node has no such state (404).  The state is kept in
    `held` when it is the era state the pull from `first` stores next (a pull of more
    eras fetches it again at the end rather than hold hundreds of MB meanwhile)."""
    from .trusted import TrustedRoots

    resp = _fetch_state(store, api, net, fin, allow_404=True)
    if resp is None:
        return None
    block_slot = TrustedRoots.block_slot(resp.ssz, resp.url)
    if block_slot is not None:  # the finalized slot is empty: its block's own state
        resp = _fetch_state(store, api, net, block_slot, allow_404=True)
        if resp is None:
            return None
    trusted = TrustedRoots.from_finalized_state(resp.ssz, net, block_slot or fin, fin_root,
                                                resp.url, fin)
    sphr = net.slots_per_historical_root
    if block_slot is None and fin % sphr == 0 and fin - sphr <= first < fin and \
            not store.has_state(fin):
        held[fin] = resp  # the era state of the pull's only era: stored after its blocks
        verified.add(fin)  # (its root was just checked)
    return trusted


def _pull_era_by_summary(store: ChainStore, peer, net: Network, first: int, last: int,
                         era: int, trusted, res: PullResult, workers: int, batch_slots: int,
                         progress) -> bool:
    """Pull [first, last] of era `era`, whose state no node gave, with its block files
    written but nothing committed until the era's roots (the store's below `first`, the
    pulled ones, the trusted ones above `last`) hash to the finalized state's
    block_summary_root of the era; then one commit.  False (nothing fetched) when that
    root or a root of the era is not known: before Capella, or a pull that stops inside
    the era."""
    want = trusted.block_summary_root(era)
    sphr = net.slots_per_historical_root
    lo, hi = (era - 1) * sphr, era * sphr - 1
    above = [trusted.root_at(s) for s in range(last + 1, hi + 1)]
    below = [store.block_root_at(s) for s in range(lo, first)]
    parent = ZERO_ROOT if first == 0 else store.block_root_at(first - 1)
    if want is None or parent is None or None in above or None in below:
        return False
    q = _forward_queue(store, peer, net, first, last, parent, workers, batch_slots, progress,
                       deferred=True)
    qr = q.run()
    got = dict(q.written)
    roots, latest = [], parent
    for s in range(first, last + 1):
        latest = got.get(s, latest)
        roots.append(latest)
    root = merkleize(b"".join(below + roots + above))
    if root != want:
        store.remove_unreferenced_files()  # the block files the batch would have referenced
        raise VerificationError(
            f"{peer.url} slots {first}..{last}: era {era}'s block roots hash to {hex0x(root)}, "
            f"the finalized state's block_summary_root of that era is {hex0x(want)} (a chain "
            f"that is not finalized); nothing of these slots was written")
    if q.pending is not None:
        store.commit(q.pending)
    res.add(qr, 1)
    return True


def _trust_era(store: ChainStore, api: BeaconApiClient, net: Network, trusted, slot: int,
               held: dict, allow_404: bool, prefetch: "_StatePrefetch | None" = None) -> bool:
    """Fetch the era-boundary state at `slot` (unless `prefetch` has it) and add its
    block_roots to `trusted` (it is then kept in `held` for its commit after the era's
    blocks); False when the node has no such state and `allow_404` (the era is then checked
    by its links only)."""
    resp = held.get(slot) or (prefetch and prefetch.take(slot)) or \
        _fetch_state(store, api, net, slot, allow_404)
    if resp is None:
        held[slot] = None
        return False
    sphr = net.slots_per_historical_root
    trusted.add_era_state(resp.ssz[:state_prefix_size(sphr)], resp.url)
    held[slot] = resp
    return True


class _StatePrefetch:
    """The next era's boundary state, fetched in a thread while the current era's blocks are
    pulled: a long pull otherwise waits for each state (~250 MB on mainnet) between eras.
    One at a time, so at most one more state is held in memory.  A failed or refused
    prefetch is forgotten: the pull then fetches the state itself, with its usual errors.
    A daemon thread: an interrupted pull does not wait for a download it no longer needs."""

    def __init__(self, store: ChainStore, api: BeaconApiClient, net: Network,
                 allow_404: bool):
        self._args = (store, api, net)
        self._allow_404 = allow_404
        self._pending: tuple | None = None  # (slot, done, [response]) of the last start()

    def start(self, slot: int) -> None:
        if self._pending is not None and self._pending[0] == slot:
            return
        done, box = threading.Event(), []
        self._pending = (slot, done, box)

        def run():
            try:
                box.append(_fetch_state(*self._args, slot, self._allow_404))
            except Exception:  # forgotten: take() then has nothing, the pull fetches again
                pass
            finally:
                done.set()

        threading.Thread(target=run, name=f"state-prefetch-{slot}", daemon=True).start()

    def take(self, slot: int):
        """The state fetched for `slot` (an SszResponse), or None when there is none: not
        started for it, failed, or a 404."""
        if self._pending is None or self._pending[0] != slot:
            return None
        _, done, box = self._pending
        self._pending = None
        done.wait()
        return box[0] if box else None


def _rest_source(api: BeaconApiClient, net: Network, workers: int):
    """The node's standard block route as a block source (one GET per slot, `workers` at a
    time)."""
    from .sources import make_source

    p = make_source(api.base_url, net, timeout=api.timeout, rest_concurrency=max(1, workers),
                    retry=api.http.retry)
    p.kind = "rest"
    return p


def _stored_parent_above(store: ChainStore, last: int) -> tuple[bytes, int] | None:
    """(parent_root, slot) of the first stored block above `last` when the store covers
    every slot from last + 1 up to it (the pulled chain must end at that parent)."""
    expect = last + 1
    for k, v in store.iter_index(last + 1, last + 1 + 2 * store.network.slots_per_historical_root):
        if schema.slot_of_key(k) != expect:
            return None  # a hole: nothing stored right above
        expect += 1
        if v:
            sm = store.get_summary(bytes(v))
            return (sm[1], sm[0]) if sm else None
    return None


def _uncovered(store: ChainStore, first: int, last: int) -> list[tuple[int, int]]:
    """The sub-ranges of [first, last] the store does not cover yet, ascending."""
    out, s = [], first
    for x, y in store.covered_ranges():
        if y < s:
            continue
        if x > last:
            break
        if x > s:
            out.append((s, x - 1))
        s = y + 1
        if s > last:
            return out
    out.append((s, last))
    return out


# (slot, root, parent_root) of a serialized SignedBeaconBlock, from its bytes (kept under
# this name for callers of era_tools.sync.pull)
block_root_of = layout.block_summary


# A span of at most this many slots is checked all the way to its target root before any
# of it is written (held in memory meanwhile: ~80 MB of mainnet blocks): the follow stage's
# steps, a pull that catches up a few hours.  Longer spans are checked against the
# finalized state's roots (TrustedRoots) as they come.
PROVE_FIRST_SLOTS = 1024


def _pull_blocks(store: ChainStore, peer, net: Network, first: int, last: int,
                 res: PullResult, workers: int, batch_slots: int,
                 tip_root: bytes | None, progress, on_commit, trusted=None) -> None:
    """Fetch [first, last] through a forward, strict SyncQueue (one source: its first bad
    answer is the error) and commit it in slot-ordered batches; each block's parent_root
    must be the root below it, from the store's history below `first` up to the store's
    history above `last` (or `tip_root`, the finalized checkpoint root, when `last` is the
    finalized slot).  A source without the block at the finalized slot (an archive holds
    the boundary state, not the block that begins the next era) leaves that slot
    uncovered, for a later pull.  Spans of up to PROVE_FIRST_SLOTS with a target root are
    written only once the whole span links to it; `trusted(slot)` (longer spans) names the
    root every block and empty slot must have before it is written."""
    parent = ZERO_ROOT if first == 0 else store.block_root_at(first - 1)
    target_root, what = tip_root, "the node's finalized checkpoint root"
    above = _stored_parent_above(store, last)
    if above is not None and tip_root is None:
        target_root, what = above[0], f"the parent of the stored block at slot {above[1]}"
    q = _forward_queue(
        store, peer, net, first, last, parent, workers, batch_slots, progress,
        target_root=target_root, target_what=what, tip_unheld_ok=tip_root is not None,
        prove_first=last - first + 1 <= PROVE_FIRST_SLOTS, trusted=trusted,
        on_commit=lambda lo, hi: on_commit(hi))
    qr = q.run()
    res.add(qr, qr.commits)
    if q.unheld_slot is not None:
        res.unheld_slot = q.unheld_slot


def _forward_queue(store: ChainStore, peer, net: Network, first: int, last: int,
                   parent: bytes | None, workers: int, batch_slots: int, progress, **kw):
    """The strict forward SyncQueue over [first, last] from one source, `batch_slots` per
    batch and per atomic write (--batch-slots); `kw` are SyncQueue.forward's options."""
    from .queue import PeerState, SyncQueue, Verifier

    return SyncQueue.forward(
        store, [PeerState(peer)], Verifier(net, None), start=first, parent=parent,
        target=last, batch_slots=batch_slots, commit_slots=batch_slots,
        workers=max(1, min(workers, 4)) if peer.kind == "range" else 2,
        range_batches=max(1, 512 // max(1, batch_slots)), strict=True, progress=progress,
        **kw)


def _pull_state(store: ChainStore, api: BeaconApiClient, net: Network, slot: int,
                res: PullResult, allow_404: bool = False, resp=False,
                want_root: bytes | None = None) -> bool:
    """Fetch (unless `resp` is the state already fetched, or None for a 404), check and
    commit the state at `slot`; False when the node has none and `allow_404`.  With
    `want_root` (a trusted state root), the state must hash to it."""
    if resp is False:
        resp = _fetch_state(store, api, net, slot, allow_404)
    if resp is None:  # (a 404 is an error from _fetch_state unless allowed)
        return False
    if want_root is not None:
        from ..verify import state_root

        got = state_root(resp.ssz, net.fork_name_at_slot(slot), net.preset_base)
        if got != want_root:
            raise VerificationError(
                f"{resp.url}: the state hashes to {hex0x(got)}, the finalized chain's "
                f"state_roots name {hex0x(want_root)} at slot {slot} (a state of another "
                "chain, or altered)")
    if slot > 0:
        sphr = net.slots_per_historical_root
        head = StateHead.parse(resp.ssz[:state_prefix_size(sphr)], sphr, resp.url)
        _check_block_roots(store, head, slot, resp.url)
    b = store.batch()
    b.put_state_file(slot, framing.compress(resp.ssz))  # a file beside the tables
    store.commit(b)
    res.states += 1
    res.bytes += len(resp.ssz)
    return True


def _fetch_state(store: ChainStore, api: BeaconApiClient, net: Network, slot: int,
                 allow_404: bool):
    """The node's state at `slot` (its response), checked for fork, slot and genesis; None
    for a 404 when `allow_404`, else PeerError."""
    resp = api.state(slot)
    if resp is None and allow_404:
        return None
    if resp is None:
        raise PeerError(f"{api.base_url}/eth/v2/debug/beacon/states/{slot}: the node does not "
                        "serve this historical state (404)")
    fork = net.fork_name_at_slot(slot)
    if resp.fork and resp.fork != fork:
        raise PeerError(f"{resp.url}: node says fork {resp.fork}, the schedule says {fork} at "
                        f"slot {slot}")
    sphr = net.slots_per_historical_root
    head = StateHead.parse(resp.ssz[:state_prefix_size(sphr)], sphr, resp.url)
    if head.slot != slot:
        raise PeerError(f"{resp.url}: state has slot {head.slot}, asked for {slot}")
    if head.genesis_validators_root != store.genesis_validators_root:
        raise VerificationError(
            f"{resp.url}: state genesis_validators_root {hex0x(head.genesis_validators_root)}"
            f" is not the store's {hex0x(store.genesis_validators_root)}")
    return resp


def _check_block_roots(store: ChainStore, head: StateHead, state_slot: int, url: str) -> None:
    """state.block_roots must agree with every indexed slot of [state_slot - SPHR, state_slot)."""
    sphr = head.sphr
    start = state_slot - sphr
    last = store.block_root_at(start - 1) if start > 0 else None
    expect = start
    for k, v in store.iter_index(start, state_slot - 1):
        s = schema.slot_of_key(k)
        if s != expect:  # a hole: the root before is unknown
            last = None
        expect = s + 1
        if v:
            last = bytes(v)
        if last is None:
            continue
        want = head.block_root_at(s)
        if want != last:
            raise VerificationError(
                f"{url}: state block_roots[{s % sphr}] (slot {s}) is {hex0x(want)}, the "
                f"indexed chain has {hex0x(last)}")
