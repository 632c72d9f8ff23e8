"""`era sync`: one staged, resumable pipeline from a checkpoint to the live finalized head,
publishing each era as it completes.

    servers = make_servers(urls, timeout=30)
    net = connect(servers, expected=None)       # each node's network; others are dropped
    p = SyncPipeline(store, servers, SyncOptions(publish_dir=..., once=True))
    p.run()

Stages, persisted in the store's sync record (`m` + `sync`, docs/store.md) so a killed run
resumes in the stage it was in:

1. **checkpoint**: `checkpoint.checkpoint_sync` from the first server that answers (skipped
   when the store already has an anchor);
2. **history**: front-fill from the era directory (when given), then `backfill.backfill` from
   the peers and the beacon APIs down to where the era files end or to genesis, then the
   era-boundary states of the eras that history covers (a state no server has is listed in
   the record's `missing_states`, not skipped silently);
3. **follow**: `pull.pull` from the newest stored slot to a server's finalized slot, over and
   over as the chain finalizes: woken by the server's `finalized_checkpoint` event stream
   where it has one, else by polling.  Only finalized slots are asked for.  Before each step
   the server's finalized chain must contain the store's newest block (and, when the server
   is behind, its finalized root must be the store's root at that slot): otherwise
   `FinalityConflict` names both roots and nothing more is written.
4. **publish** (a publish directory given): each era boundary state the follow stage commits
   is exported at once (`publish.Publisher`: era file, then checksums.txt and index.json).

With a trusted block root, the light client (`lightclient.driver`, the servers as
light-client servers) verifies the finalized checkpoint from it: the checkpoint stage downloads
that checkpoint, and each follow step pulls only up to the checkpoint verified just before it.
Servers without light-client data: the root must be the checkpoint block (a note says so).

Servers: a failure (timeout, 5xx, 404 where an answer was due) delays that server for a time
that doubles per consecutive failure up to `retry_cap` seconds, never a ban; a server whose
data does not verify (wrong root, broken link, another network) is dropped.  Knows the store,
the sync flows and the publisher; prints nothing (status lines go to a callback).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import FormatError, PeerError, VerificationError, hex0x
from ..publish import Publisher
from .peers import BeaconApiClient, finalized_events

RETRY_BASE = 1.0     # seconds a server waits after its first failure; doubles per failure
RETRY_CAP = 60.0     # ... up to this
ONCE_MAX_FAILURES = 6  # --once gives up when every server failed this many times in a row
PUBLISH_STAGING = "publish"  # DB/publish: the local copy of an s3:// publish prefix


class FinalityConflict(VerificationError):
    """A node's finalized chain does not contain what the store holds (a rewound finality,
    or another chain under the same genesis)."""


@dataclass
class Server:
    url: str
    api: BeaconApiClient
    failures: int = 0
    next_try: float = 0.0
    dropped: bool = False
    reason: str = ""
    events: bool | None = None      # None: not tried yet; False: the node has no event stream
    finalized_slot: int | None = None
    requests_failed: int = 0
    range_peer: object = None       # its range endpoint (peers.BackfillPeer), False: none

    def usable(self, now: float) -> bool:
        return not self.dropped and now >= self.next_try

    def failed(self, why: str, now: float, base: float, cap: float) -> float:
        self.failures += 1
        self.requests_failed += 1
        self.reason = why
        delay = min(cap, base * 2 ** (self.failures - 1))
        self.next_try = now + delay
        return delay

    def ok(self) -> None:
        self.failures = 0
        self.next_try = 0.0

    def drop(self, why: str) -> None:
        self.dropped, self.reason = True, why

    def state(self, now: float) -> str:
        if self.dropped:
            return "dropped"
        if now < self.next_try:
            return f"retry in {self.next_try - now:.0f} s"
        return "ok" if not self.failures else "retrying"

    def to_dict(self, now: float) -> dict:
        return {"url": self.url, "state": self.state(now), "failures": self.failures,
                "finalized_slot": self.finalized_slot,
                "range_endpoint": (None if self.range_peer is None else
                                   bool(self.range_peer)),
                "events": self.events, "last_error": self.reason or None}


def make_servers(urls, timeout: float = 30.0, state_timeout: float = 360.0) -> list[Server]:
    return [Server(u, BeaconApiClient(u, timeout=timeout, state_timeout=state_timeout,
                                      retries=2))
            for u in dict.fromkeys(urls)]


def connect(servers: list[Server], expected=None):
    """Each server's network (node_network).  Without `expected` (a new store) the network
    most servers report is taken (the first listed on a tie).  Servers on another network
    are dropped; ones that fail are left to retry later.  PeerError when no server gives
    the network."""
    from .pull import node_network

    errors, got = [], {}
    for s in servers:
        try:
            got[s.url] = node_network(s.api, expected)
        except PeerError as exc:
            msg = str(exc)
            if "another network" in msg or "another fork schedule" in msg or \
                    "node runs" in msg:
                s.drop(msg)
            else:
                s.failed(msg, time.monotonic(), RETRY_BASE, RETRY_CAP)
            errors.append(msg)
    net = expected
    if net is None and got:
        votes: dict = {}
        for n in got.values():
            votes.setdefault(n.genesis_validators_root, []).append(n)
        net = max(votes.values(), key=len)[0]  # max keeps the first on a tie
        for s in servers:
            n = got.get(s.url)
            if n is not None and n.genesis_validators_root != net.genesis_validators_root:
                s.drop(f"{s.url}: genesis_validators_root {hex0x(n.genesis_validators_root)}, "
                       f"most servers have {hex0x(net.genesis_validators_root)} (another "
                       "network)")
    if net is None:
        raise PeerError("no beacon API gave its network: " + "; ".join(errors))
    if all(s.dropped for s in servers):
        raise PeerError("every beacon API is on another network: " + "; ".join(errors))
    return net


@dataclass
class SyncOptions:
    peers: list = field(default_factory=list)   # extra backfill peers (era_tools servers)
    era_dir: str | None = None
    publish_dir: str | None = None
    trusted_block_root: bytes | None = None
    once: bool = False
    poll_interval: float = 6.0
    status_every: float = 10.0
    retry_base: float = RETRY_BASE
    retry_cap: float = RETRY_CAP
    workers: int = 8
    backfill_workers: int = 4
    bls_processes: int = 0
    timeout: float = 30.0


@dataclass
class Counters:
    """What /metrics reports (plain numbers; the CLI turns them into Prometheus text)."""
    slots: int = 0
    blocks: int = 0
    states: int = 0
    bytes: int = 0
    eras_published: int = 0
    follow_steps: int = 0
    server_failures: int = 0
    finalized_slot: int = 0
    newest_slot: int = 0
    head_slot: int = 0
    last_publish_seconds: float = 0.0   # finality seen -> era file and listings in place


class SyncPipeline:
    def __init__(self, store, servers: list[Server], opts: SyncOptions,
                 status: Callable[[str], None] | None = None,
                 on_stage: Callable[[str], None] | None = None,
                 on_publish: Callable[[str, float], None] | None = None):
        self.store = store
        self.servers = servers
        self.opts = opts
        self.status = status or (lambda line: None)
        self.on_stage = on_stage or (lambda stage: None)
        self.on_publish = on_publish
        self.counters = Counters()
        self.publish_url: str | None = None   # an s3:// prefix: the local copy is uploaded
        pub_dir = opts.publish_dir
        if pub_dir and str(pub_dir).startswith("s3://"):
            self.publish_url = str(pub_dir).rstrip("/")
            pub_dir = os.path.join(store.path, PUBLISH_STAGING)
        self.publisher = Publisher(store, pub_dir) if pub_dir else None
        self._uploaded_once = False
        self.missing_states: list[int] = []
        self.stage = "checkpoint"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._event_threads: dict[str, threading.Thread] = {}
        self._last_status = 0.0
        self._seen_finality_at: float | None = None
        # light client (opts.trusted_block_root): roots to bootstrap from, newest verified
        # first; None once no server serves light-client data (the root's old meaning)
        self.light_roots: list[bytes] | None = (
            [opts.trusted_block_root] if opts.trusted_block_root is not None else None)
        self.light: dict | None = None    # the last verification (LightClientResult.to_dict)
        self.warnings: list[str] = []

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict:
        rec = self.store.sync_record() or {}
        self.missing_states = list(rec.get("missing_states", []))
        stage = rec.get("stage", "checkpoint")
        try:
            if stage == "checkpoint":
                self._enter("checkpoint")
                if not self.store.anchor.covered:
                    self._checkpoint()
                stage = "history"
            if stage == "history":
                self._enter("history")
                self._history()
                stage = "follow"
            self._enter("follow")
            self._follow()
        finally:
            self._stop.set()
            self._wake.set()
        return self.summary()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _enter(self, stage: str) -> None:
        self.stage = stage
        rec = self.store.sync_record() or {}
        if rec.get("stage") != stage:
            self._save_record()
        self.on_stage(stage)
        self.status(f"sync: stage {stage}")

    def _save_record(self, **extra) -> None:
        now = time.monotonic()
        a = self.store.anchor
        c = self.counters
        rec = {"stage": self.stage, "newest_slot": a.newest_slot,
               "finalized_slot": c.finalized_slot or None,
               "lag_slots": (max(0, c.finalized_slot - (a.newest_slot or 0))
                             if c.finalized_slot else None),
               "head_slot": c.head_slot or None,
               "missing_states": sorted(set(self.missing_states)),
               "published_eras": (len(self.publisher.published) if self.publisher else None),
               "servers": [s.to_dict(now) for s in self.servers],
               "updated": int(time.time()), **extra}
        self.store.put_sync_record(rec)

    def summary(self) -> dict:
        now = time.monotonic()
        a = self.store.anchor
        c = self.counters
        return {"stage": self.stage, "newest_slot": a.newest_slot,
                "finalized_slot": c.finalized_slot or None,
                "lag_slots": max(0, c.finalized_slot - (a.newest_slot or 0)),
                "covered": [[x, y] for x, y in a.covered],
                "slots": c.slots, "blocks": c.blocks, "states": c.states, "bytes": c.bytes,
                "eras_published": c.eras_published,
                "missing_states": sorted(set(self.missing_states)),
                "light_client": self.light,
                "servers": [s.to_dict(now) for s in self.servers]}

    # -- servers ---------------------------------------------------------------------------
    def _usable(self) -> list[Server]:
        now = time.monotonic()
        alive = [s for s in self.servers if not s.dropped]
        if not alive:
            raise PeerError("no usable beacon API left: " + "; ".join(
                f"{s.url}: {s.reason}" for s in self.servers))
        return sorted((s for s in alive if s.usable(now)),
                      key=lambda s: (s.failures, -(s.finalized_slot or 0)))

    def _fail(self, s: Server, exc: Exception) -> None:
        delay = s.failed(str(exc), time.monotonic(), self.opts.retry_base, self.opts.retry_cap)
        self.counters.server_failures += 1
        self.status(f"sync: {s.url}: {exc} (retry in {delay:.0f} s)")
        if self.opts.once and all(x.dropped or x.failures >= ONCE_MAX_FAILURES
                                  for x in self.servers):
            raise PeerError(f"every beacon API failed {ONCE_MAX_FAILURES} times in a row; "
                            f"last: {s.url}: {exc}")

    def _wait_for_a_server(self) -> None:
        now = time.monotonic()
        alive = [s for s in self.servers if not s.dropped]
        if alive:
            self._sleep(max(0.0, min(s.next_try for s in alive) - now))

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._wake.wait(seconds)
            self._wake.clear()

    def _with_servers(self, what: str, fn):
        """fn(server) on the best usable server, failing over; VerificationError drops it."""
        while not self._stop.is_set():
            usable = self._usable()
            if not usable:
                self._wait_for_a_server()
                continue
            s = usable[0]
            try:
                out = fn(s)
            except FinalityConflict:
                raise
            except (VerificationError, FormatError) as exc:  # wrong data: a lying server
                s.drop(f"{what}: {exc}")
                self.status(f"sync: dropped {s.url}: {exc}")
                continue
            except PeerError as exc:
                self._fail(s, exc)
                continue
            s.ok()
            return out
        raise KeyboardInterrupt

    # -- the light client ------------------------------------------------------------------
    def _light_checkpoint(self) -> tuple[int, bytes] | None:
        """(epoch, block root) of the finalized checkpoint the light client verifies over the
        servers (as light-client servers) from the trusted root, bootstrapping from the newest
        root it verified before when a server still serves that bootstrap.  None when no
        server serves a bootstrap for any of the roots (no light-client data): the trusted
        root then keeps its old meaning (the checkpoint block itself), said once.
        AllServersWrongError (exit 1) when every server that answered lied; a server caught
        serving a wrong item is dropped here too."""
        from .. import ssz
        from ..lightclient.driver import (LightClientServer, NoServerError, checkpoint_slot,
                                          sync_light_client)

        if self.light_roots is None:
            return None
        net = self.store.network
        if net.genesis_validators_root is None:
            net = net.with_genesis(self.store.genesis_validators_root, net.genesis_time)
        for root in self.light_roots:
            lcs, spec_json = [], None
            for s in self.servers:
                if s.dropped:
                    continue
                s.api.fork_at_slot = net.fork_name_at_slot
                try:
                    if s.api.light_client_bootstrap(root) is None:
                        continue
                    if spec_json is None:
                        spec_json = s.api.spec()
                except PeerError:
                    continue
                lcs.append((s, LightClientServer(s.url, api=s.api)))
            if lcs:
                break
        else:
            if self.light is not None:  # verified before: never fall back to a node's word
                raise NoServerError("light client: no beacon API serves a bootstrap for "
                                    + ", ".join(hex0x(r) for r in self.light_roots))
            self.light_roots = None
            self.status(f"sync: note: no beacon API serves a light-client bootstrap for "
                        f"{hex0x(self.opts.trusted_block_root)}: the checkpoint block itself "
                        "must have that root, and the follow stage takes the nodes' word for "
                        "finality")
            return None
        try:
            res = sync_light_client([lc for _, lc in lcs], root, net, spec_json,
                                    timeout=max(120.0, 4 * self.opts.timeout),
                                    status=lambda line: self.status(f"sync: light client: "
                                                                    f"{line}"))
        finally:
            for s, lc in lcs:
                if lc.dropped:
                    s.drop(f"light client: {lc.dropped}")
        for w in res.warnings:
            if w not in self.warnings:
                self.warnings.append(w)
                self.status(f"sync: warning: {w}")
        verified = ssz.hash_tree_root(res.finalized_header.beacon)
        slot = checkpoint_slot(res, net)
        if verified != root:
            self.light_roots = [verified, self.opts.trusted_block_root]
        self.light = res.to_dict()
        self.status(f"sync: light client: finalized block {hex0x(verified)} at slot "
                    f"{int(res.finalized_header.beacon.slot)} verified")
        return slot // net.slots_per_epoch, verified

    # -- stage 1 ---------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        from .checkpoint import checkpoint_sync

        light = self._light_checkpoint()
        state_id, root = "finalized", self.opts.trusted_block_root
        if light is not None:
            state_id, root = str(light[0] * self.store.network.slots_per_epoch), light[1]

        def one(s):
            return checkpoint_sync(self.store, s.api, state_id, root)

        try:
            res = self._with_servers("checkpoint", one)
        except PeerError as exc:
            if light is not None and all(s.dropped for s in self.servers):
                raise VerificationError(f"no beacon API gave the checkpoint the light client "
                                        f"verified (block {hex0x(root)}): {exc}") from None
            raise
        self.status(f"sync: checkpoint at slot {res.state_slot}, block {res.block_slot} "
                    f"{hex0x(res.block_root)}")

    # -- stage 2 ---------------------------------------------------------------------------
    def _history(self) -> None:
        from .backfill import backfill, plan

        if self.opts.era_dir:
            from ..era import era_files_in
            from ..frontfill import frontfill

            if era_files_in([self.opts.era_dir]):
                res = frontfill(self.store, [self.opts.era_dir])
                self.status(f"sync: front-filled {len(res.eras_written)} eras from "
                            f"{self.opts.era_dir} ({len(res.eras_skipped)} already held)")
        if plan(self.store) is not None:
            urls = list(dict.fromkeys(list(self.opts.peers) +
                                      [s.url for s in self.servers if not s.dropped]))
            res = backfill(self.store, urls, workers=self.opts.backfill_workers,
                           timeout=self.opts.timeout, bls_processes=self.opts.bls_processes,
                           status=self.status)
            q = res.queue
            self.counters.slots += q.slots
            self.counters.blocks += q.blocks
            self.counters.bytes += q.bytes
            self.status(f"sync: backfilled {q.slots} slots down to {q.oldest_slot} "
                        f"({q.stopped})")
        self._fetch_history_states()
        self._publish()

    def _fetch_history_states(self) -> None:
        """Era-boundary states of the covered history the store lacks, from any server that
        has them; those none has go to missing_states."""
        from .pull import PullResult, _pull_state

        net = self.store.network
        sphr = net.slots_per_historical_root
        want = []
        for a, b in self.store.covered_ranges():
            first = -(-a // sphr) * sphr
            want += [s for s in range(first, b + 1, sphr)
                     if (s == 0 or self.store.is_covered(s - sphr, s - 1))
                     and not self.store.has_state(s)]
        for slot in want:
            res = PullResult()
            got = False
            now = time.monotonic()  # healthy servers first; one in its retry delay last
            order = sorted((x for x in self.servers if not x.dropped),
                           key=lambda x: (now < x.next_try, x.failures))
            for s in order:
                try:
                    if _pull_state(self.store, s.api, net, slot, res, allow_404=True):
                        got = True
                        s.ok()
                        break
                except VerificationError as exc:
                    s.drop(f"state {slot}: {exc}")
                except PeerError as exc:
                    delay = s.failed(str(exc), time.monotonic(), self.opts.retry_base,
                                     self.opts.retry_cap)
                    self.counters.server_failures += 1
                    self.status(f"sync: {s.url}: state {slot}: {exc} (retry in {delay:.0f} s)")
            if got:
                self.counters.states += 1
                self.counters.bytes += res.bytes
                if slot in self.missing_states:
                    self.missing_states.remove(slot)
            elif slot not in self.missing_states:
                self.missing_states.append(slot)
        if self.missing_states:
            self.status("sync: no server has the states at slots "
                        f"{', '.join(map(str, sorted(self.missing_states)))}: those eras "
                        "cannot be exported")

    # -- stage 3 and 4 ---------------------------------------------------------------------
    def _follow(self) -> None:
        if not self.opts.once:
            self._start_event_streams()
        from ..lightclient.driver import NoServerError

        while not self._stop.is_set():
            try:
                light = self._light_checkpoint()
            except NoServerError as exc:  # nothing proven now: store nothing, ask again later
                if self.opts.once:
                    raise
                self.status(f"sync: light client: {exc} (again in {self.opts.poll_interval} s)")
                self._sleep(self.opts.poll_interval)
                continue
            caught_up = self._with_servers("follow",
                                           lambda s: self._follow_step(s, light))
            if caught_up and self.opts.once:
                self._publish()
                self._save_record()
                return
            if caught_up:
                self._start_event_streams()
                self._tick_status(force=False)
                self._sleep(self.opts.poll_interval)
        raise KeyboardInterrupt

    def _follow_step(self, s: Server, light: tuple[int, bytes] | None = None) -> bool:
        """Pull from the store's newest slot to `s`'s finalized slot (or to `light`, the
        light-client verified (epoch, root)); True when caught up with it (nothing was left
        to pull: --once stops only after a step that found nothing new, so a chain that
        finalized during the pull is followed too)."""
        from .pull import pull

        net = self.store.network
        api = s.api
        epoch, fin_root = light if light is not None else api.finalized_checkpoint()
        fin = epoch * net.slots_per_epoch
        if s.finalized_slot != fin:
            self._seen_finality_at = time.monotonic()
        s.finalized_slot = fin
        c = self.counters
        c.finalized_slot = max(c.finalized_slot, fin)
        try:
            c.head_slot = int(api.syncing().get("head_slot", 0))
        except (PeerError, TypeError, ValueError):
            pass
        a = self.store.anchor
        newest = a.newest_slot if a.newest_slot is not None else -1
        c.newest_slot = max(newest, 0)
        self._check_finality(s, fin, fin_root, newest)
        c.follow_steps += 1
        self._boundary_state(s, newest, fin)
        if fin <= newest:
            self._publish()
            return True
        missing: list[int] = []
        res = pull(self.store, api, newest + 1, fin, workers=self.opts.workers,
                   missing_states=missing, on_state=self._published_state,
                   finalized=light,
                   source=self._range_source(s, newest + 1))
        for slot in missing:
            if slot not in self.missing_states:
                self.missing_states.append(slot)
        for x, y in res.linked_only:
            self.status(f"sync: {s.url}: slots {x}..{y} were checked by their links only "
                        "(no finalized state, or no state of their era, to check them "
                        "against before the write)")
        c.slots += res.slots
        c.blocks += res.blocks
        c.states += res.states
        c.bytes += res.bytes
        c.newest_slot = self.store.anchor.newest_slot or 0
        self._publish()
        self._save_record()
        self._tick_status(force=True)
        if res.slots == 0 and res.states == 0:
            # no progress: the node does not hold the block at its own finalized slot (an
            # archive such as `era serve`; the slot stays uncovered until a later step)
            return True
        return False  # ask again at once: finality may have moved meanwhile

    def _range_source(self, s: Server, probe_slot: int):
        """The server's range endpoint (an era_tools node) as the block source of the
        follow stage, or None (a standard node: one GET per slot).  Probed once."""
        if s.range_peer is None:
            from .peers import PeerFault
            from .sources import make_source

            peer = make_source(s.url, self.store.network, timeout=self.opts.timeout)
            try:
                kind = peer.detect(max(0, probe_slot))
            except PeerFault:
                return None  # not decided: ask again next step
            s.range_peer = peer if kind == "range" else False
        return s.range_peer or None

    def _boundary_state(self, s: Server, newest: int, fin: int) -> None:
        """The state of the last era whose blocks the store holds, when it lacks it (a run
        killed between an era's last blocks and its state): pull resumes above the newest
        slot and would not ask for it again."""
        from .pull import PullResult, _pull_state

        sphr = self.store.sphr
        slot = (newest + 1) - (newest + 1) % sphr
        if newest < 0 or slot > fin or self.store.has_state(slot) or \
                slot in self.missing_states or \
                not self.store.is_covered(max(0, slot - sphr), max(0, slot - 1)):
            return
        res = PullResult()
        if _pull_state(self.store, s.api, self.store.network, slot, res, allow_404=True):
            self.counters.states += 1
            self.counters.bytes += res.bytes
            self._publish()
        else:
            self.missing_states.append(slot)

    def _check_finality(self, s: Server, fin: int, fin_root: bytes | None,
                        newest: int) -> None:
        """The server's finalized chain must contain the store's newest block."""
        if newest < 0:
            return
        store = self.store
        if fin <= newest:
            have = store.block_root_at(fin)
            if fin_root is not None and have is not None and have != fin_root:
                raise FinalityConflict(
                    f"{s.url}: the node's finalized checkpoint at slot {fin} is block "
                    f"{hex0x(fin_root)}, the store holds {hex0x(have)} there; nothing more "
                    "written")
            return
        root = store.block_root_at(newest)
        if root is None:
            return
        sm = store.get_summary(root)
        if sm is None:
            return
        slot = sm[0]
        from ..ssz.layout import block_root

        resp = s.api.block(slot)
        theirs = None
        if resp is not None:
            fork = store.network.fork_name_at_slot(slot)
            try:
                theirs = block_root(resp.ssz, fork, store.network.preset_base, resp.url)
            except Exception as exc:  # malformed: a lying server, not a conflict
                raise VerificationError(f"{resp.url}: {exc}") from exc
        if theirs != root:
            raise FinalityConflict(
                f"{s.url}: the node's finalized chain (to slot {fin}) has "
                f"{hex0x(theirs) if theirs else 'no block'} at slot {slot}, the store holds "
                f"{hex0x(root)}; nothing more written")

    def _published_state(self, slot: int) -> None:
        """pull committed the era-boundary state at `slot`: publish that era now."""
        if slot in self.missing_states:
            self.missing_states.remove(slot)
        self._publish()

    def _publish(self) -> None:
        if self.publisher is None:
            return
        t0 = self._seen_finality_at
        written = self.publisher.publish()
        if self.publish_url is not None:
            self._upload(written)
        if written:
            self.counters.eras_published += len(written)
            if t0 is not None:
                self.counters.last_publish_seconds = time.monotonic() - t0
            for p in written:
                self.status(f"sync: published {os.path.basename(p)}")
                if self.on_publish:
                    self.on_publish(p, time.monotonic())

    def _upload(self, written: list[str]) -> None:
        """Bring the s3:// prefix up to the local copy: the new era files (every file of the
        copy on the run's first call: a killed run may have left some not uploaded), then
        checksums.txt and index.json (objstore.publish; objects already there with the same
        size and sha256 are skipped)."""
        from .. import objstore

        local = self.publisher.out
        if not os.path.isdir(local):
            return
        if self._uploaded_once and not written:
            return
        listings = ("checksums.txt", "index.json")
        names = ([n for n in sorted(os.listdir(local))
                  if not n.endswith(".tmp") and n not in listings]
                 if not self._uploaded_once else [os.path.basename(p) for p in written])
        done = objstore.publish(local, self.publish_url, names)
        self._uploaded_once = True
        up = [n for n, new in done.items() if new]
        if up:
            self.status(f"sync: uploaded {len(up)} objects to {self.publish_url}")

    # -- waking up -------------------------------------------------------------------------
    def _start_event_streams(self) -> None:
        for s in self.servers:
            if s.dropped or s.events is False or s.url in self._event_threads:
                continue
            t = threading.Thread(target=self._events, args=(s,), daemon=True,
                                 name=f"events {s.url}")
            self._event_threads[s.url] = t
            t.start()

    def _events(self, s: Server) -> None:
        def on_epoch(epoch: int) -> None:
            s.events = True
            self._seen_finality_at = time.monotonic()
            self._wake.set()

        def on_open() -> None:
            s.events = True
            self._wake.set()  # a move between the last poll and now was not streamed

        while not self._stop.is_set() and not s.dropped:
            try:
                if not finalized_events(s.api, on_epoch, self._stop, on_open=on_open,
                                        timeout=max(30.0, self.opts.poll_interval * 4)):
                    s.events = False  # no event stream: polling only
                    return
            except PeerError:
                pass
            self._stop.wait(self.opts.retry_base)

    def _tick_status(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < self.opts.status_every:
            return
        self._last_status = now
        c = self.counters
        a = self.store.anchor
        lag = max(0, c.finalized_slot - (a.newest_slot or 0))
        srv = ", ".join(f"{s.url} {s.state(now)}" for s in self.servers)
        pub = (f", {len(self.publisher.published)} eras published" if self.publisher else "")
        self.status(f"sync: {self.stage}: slot {a.newest_slot}, finalized {c.finalized_slot} "
                    f"(lag {lag} slots){pub}; servers: {srv}")

