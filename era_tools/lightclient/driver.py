"""Sync a light-client store from several untrusted beacon nodes (Beacon API `light_client`
routes), in the manner of geth's blsync:

    servers = [LightClientServer(url) for url in urls]
    result = sync_light_client(servers, trusted_block_root, net)   # -> LightClientResult
    header = verified_finalized_header(servers, trusted_block_root, net)

Hooks for the store flows: `light_client_checkpoint` (checkpoint-sync, pull: the verified
checkpoint to download), `verify_store_anchor` / `verify_descends_from` (backfill: the store's
newest block must be the verified finalized block or its ancestor, by parent roots),
`verified_checkpoint_state` (verify: a state proven to belong to the verified block).

1. Bootstrap from the trusted block root: the first server whose `LightClientBootstrap`
   hashes to the root and proves its sync committee wins.
2. Every server is asked for its latest finality and optimistic updates (hints of how far the
   chain goes; they are verified like everything else before use).
3. `updates?start_period=P&count=N` in pages (MAX_PAGE periods; a server that fails a page is
   asked again for one period), until the store's period reaches the hints' period.
4. The finality updates, then the optimistic updates, of every server, best first.  When an
   optimistic update of a newer epoch than every finality update arrives, every server is
   asked again for its finality update.

No server is ever failed for good because of errors, timeouts or missing items (an overloaded
server and a missing period look alike): each failure pushes its next try back by a delay that
doubles up to a cap.  A server that serves a provably wrong item (bad signature, bad branch,
a header that does not hash to what it should, an item labelled with the wrong fork) is named
and dropped for the run.  Items are checked by `protocol` (the spec's functions); HTTP is
`era_tools.sync.peers` (the only HTTP client).  Nothing here prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .. import ssz
from ..config import Network
from ..errors import EraToolsError, FormatError, PeerError, VerificationError, hex0x
from ..ssz import layout
from ..sync.peers import BeaconApiClient, SszResponse
from .protocol import LightClientError, LightClientSpec, LightClientStore, UpdateView

MAX_PAGE = 8                 # periods per `updates` request (nodes cap it, some at 128)
PERIOD_TRIES = 3             # failed or empty answers per server before a period is given up
FAIL_DELAY = 0.5             # seconds before the first retry of a failed server ...
FAIL_DELAY_CAP = 8.0         # ... doubling up to this
TYPE_OF_KIND = {"bootstrap": "LightClientBootstrap", "update": "LightClientUpdate",
                "finality": "LightClientFinalityUpdate",
                "optimistic": "LightClientOptimisticUpdate"}


class NoServerError(PeerError):
    """No server could give what was needed (all unreachable, failing or withholding)."""


class AllServersWrongError(VerificationError):
    """Every server that answered served data that fails verification."""


@dataclass
class LightClientServer:
    """One beacon node.  `api` is made from `url` unless given."""

    url: str
    api: BeaconApiClient | None = None
    failures: int = 0
    next_try: float = 0.0
    dropped: str | None = None       # why it was dropped (a provably wrong item)
    last_error: str | None = None
    items: int = 0                   # verified items it served

    def __post_init__(self):
        self.url = self.url.rstrip("/")
        if self.api is None:
            self.api = BeaconApiClient(self.url, timeout=15.0, retries=1)

    def available(self, now: float) -> bool:
        return self.dropped is None and now >= self.next_try

    def fail(self, why: str, delay: float, cap: float) -> None:
        self.failures += 1
        self.last_error = why
        self.next_try = time.monotonic() + min(delay * 2 ** (self.failures - 1), cap)

    def ok(self) -> None:
        self.failures = 0
        self.next_try = 0.0

    def to_dict(self) -> dict:
        status = "dropped" if self.dropped else ("ok" if self.items or not self.last_error
                                                 else "failing")
        return {"url": self.url, "status": status, "verified_items": self.items,
                "dropped_for": self.dropped, "last_error": self.last_error}


def _header_dict(header) -> dict:
    b = header.beacon
    return {"slot": int(b.slot), "root": hex0x(ssz.hash_tree_root(b)),
            "state_root": hex0x(bytes(b.state_root))}


@dataclass
class LightClientResult:
    store: LightClientStore
    spec: LightClientSpec
    servers: list
    trusted_block_root: bytes
    trusted_slot: int
    warnings: list = field(default_factory=list)

    @property
    def finalized_header(self):
        return self.store.finalized_header

    def to_dict(self) -> dict:
        s = self.store
        return {"finalized": _header_dict(s.finalized_header),
                "optimistic": _header_dict(s.optimistic_header),
                "sync_committee_period": self.spec.compute_sync_committee_period_at_slot(
                    s.finalized_header.beacon.slot),
                "trusted_block_root": hex0x(self.trusted_block_root),
                "trusted_slot": self.trusted_slot,
                "servers": [srv.to_dict() for srv in self.servers],
                "warnings": list(self.warnings)}


class _Run:
    def __init__(self, servers, trusted_block_root: bytes, net: Network, spec_json: dict | None,
                 current_slot: int | None, deadline: float, fail_delay: float,
                 fail_delay_cap: float, status: Callable[[str], None] | None):
        self.servers = servers
        self.root = bytes(trusted_block_root)
        self.net = net
        self.spec = LightClientSpec(
            net, blob_schedule=(spec_json or {}).get("BLOB_SCHEDULE"),
            max_blobs_per_block_electra=_int_or_none(
                (spec_json or {}).get("MAX_BLOBS_PER_BLOCK_ELECTRA")))
        self.gvr = net.genesis_validators_root
        self.digests = self.spec.fork_digests(self.gvr)
        self.current_slot = current_slot
        self.deadline = deadline
        self.fail_delay, self.fail_delay_cap = fail_delay, fail_delay_cap
        self.status = status or (lambda line: None)
        self.wrong: list[str] = []
        self.warnings: list[str] = []
        self.store: LightClientStore | None = None

    # -- plumbing -------------------------------------------------------------------------------
    def now_slot(self) -> int:
        if self.current_slot is not None:
            return self.current_slot
        if self.net.genesis_time is None:
            return 2 ** 63
        return max(0, int((time.time() - self.net.genesis_time) // self.net.seconds_per_slot))

    def drop(self, srv: LightClientServer, why: str) -> None:
        srv.dropped = why
        self.wrong.append(f"{srv.url}: {why}")
        self.status(f"dropped {srv.url}: {why}")

    def decode(self, srv, resp: SszResponse, kind: str, where: str):
        """The item's object in the fork it is labelled with; a label that contradicts the
        item's own slot, or bytes that do not decode, are a wrong item."""
        fork = resp.fork
        if resp.digest is not None:
            fork = self.digests.get(resp.digest)
            if fork is None:
                raise LightClientError(f"{where}: fork digest {hex0x(resp.digest)} is no fork "
                                       f"of {self.net.name}")
        if fork is None:
            raise PeerError(f"{where}: the answer names no fork (no Eth-Consensus-Version)")
        if fork not in ssz.FORKS or fork == "phase0":
            raise LightClientError(f"{where}: fork {fork!r} has no light-client data")
        cls = getattr(ssz.types_for(fork, self.net.preset_base), TYPE_OF_KIND[kind])
        try:
            obj = ssz.decode(resp.ssz, cls, fork=fork, where=where)
        except FormatError as exc:
            raise LightClientError(str(exc)) from None
        header = obj.header if kind == "bootstrap" else obj.attested_header
        slot = int(header.beacon.slot)
        want = self.spec.fork_name_at_slot(slot)
        if want != fork:
            raise LightClientError(f"{where}: labelled {fork}, but its header slot {slot} is "
                                   f"in {want}")
        return obj

    def ask(self, srv, fn, what: str):
        """(True, fn(api)), or (False, None) after a transport/HTTP failure, noted on the
        server (its next try is pushed back)."""
        try:
            return True, fn(srv.api)
        except PeerError as exc:
            srv.fail(str(exc), self.fail_delay, self.fail_delay_cap)
            self.status(f"{srv.url}: {what}: {exc}")
            return False, None

    def live(self) -> list:
        return [s for s in self.servers if s.dropped is None]

    def wait_for_a_server(self) -> bool:
        """Sleep until some live server may be tried again; False past the deadline or when
        none is left."""
        live = self.live()
        if not live:
            return False
        t = min(s.next_try for s in live)
        now = time.monotonic()
        if t > now:
            if t > self.deadline:
                return False
            time.sleep(t - now)
        return time.monotonic() <= self.deadline

    # -- the steps ------------------------------------------------------------------------------
    def bootstrap(self) -> None:
        while True:
            for srv in self.live():
                if not srv.available(time.monotonic()):
                    continue
                ok, resp = self.ask(srv, lambda api: api.light_client_bootstrap(self.root),
                                    "bootstrap")
                if not ok:
                    continue
                if resp is None:
                    srv.fail("no bootstrap for the trusted root (404)", self.fail_delay,
                             self.fail_delay_cap)
                    continue
                where = f"bootstrap {hex0x(self.root)}"
                try:
                    obj = self.decode(srv, resp, "bootstrap", where)
                    self.store = self.spec.initialize_light_client_store(self.root, obj)
                except LightClientError as exc:
                    self.drop(srv, str(exc))
                    continue
                except PeerError as exc:
                    srv.fail(str(exc), self.fail_delay, self.fail_delay_cap)
                    continue
                srv.ok()
                srv.items += 1
                self.status(f"bootstrap from {srv.url}: slot {int(obj.header.beacon.slot)}")
                return
            if not self.wait_for_a_server():
                self.give_up(f"no server gave a bootstrap for {hex0x(self.root)}")

    def give_up(self, what: str):
        if self.wrong and not self.live():
            raise AllServersWrongError(f"{what}: every server that answered served wrong "
                                       f"data ({'; '.join(self.wrong)})")
        errors = [f"{s.url}: {s.dropped or s.last_error}" for s in self.servers
                  if s.dropped or s.last_error]
        raise NoServerError(f"{what}" + (f" ({'; '.join(errors)})" if errors else ""))

    def process(self, srv, obj, where: str) -> bool:
        """Process a verified-or-dropped item; True when the store took it."""
        try:
            self.spec.process_light_client_update(self.store, UpdateView.of(obj),
                                                  self.now_slot(), self.gvr)
        except LightClientError as exc:
            if _stale(str(exc)):
                return False  # valid data the store has no use for (older), not a lie
            self.drop(srv, f"{where}: {exc}")
            return False
        srv.items += 1
        return True

    def hints(self) -> tuple[list, list]:
        fins, opts = [], []
        for srv in self.live():
            for kind, out in (("finality", fins), ("optimistic", opts)):
                fn = (BeaconApiClient.light_client_finality_update if kind == "finality"
                      else BeaconApiClient.light_client_optimistic_update)
                ok, resp = self.ask(srv, fn, f"{kind} update")
                if resp is None:
                    continue
                where = f"{kind}_update"
                try:
                    out.append((srv, self.decode(srv, resp, kind, where), where))
                except LightClientError as exc:
                    self.drop(srv, str(exc))
                except PeerError as exc:
                    srv.fail(str(exc), self.fail_delay, self.fail_delay_cap)
        return fins, opts

    def store_period(self) -> int:
        return self.spec.compute_sync_committee_period_at_slot(
            self.store.finalized_header.beacon.slot)

    def sync_periods(self, target: int) -> None:
        """Pages of updates until the store's period reaches `target` (and knows the next
        committee)."""
        page = MAX_PAGE
        misses: dict = {}   # (url, start period) -> failed or empty answers
        first = (self.store_period(), self.spec.is_next_sync_committee_known(self.store))
        while True:
            known = self.spec.is_next_sync_committee_known(self.store)
            start = self.store_period() + (1 if known else 0)
            if start > target or (start == target and known):
                return
            if time.monotonic() > self.deadline:
                self.give_up(f"light-client sync stuck at period {self.store_period()}")
            live = self.live()
            if live and all(misses.get((s.url, start), 0) >= PERIOD_TRIES for s in live):
                if (self.store_period(), known) == first:
                    self.give_up(f"no server served the update of period {start}")
                # a server announced more than any server proves (a stale or lying
                # announcement): keep what is proven
                self.warnings.append(f"a server announced sync-committee period {target}, "
                                     f"but none served the update of period {start}")
                return
            candidates = [s for s in live if s.available(time.monotonic())
                          and misses.get((s.url, start), 0) < PERIOD_TRIES]
            if not candidates:
                if not self.wait_for_a_server():
                    self.give_up(f"no server served the update of period {start}")
                continue
            srv = min(candidates, key=lambda s: (s.failures, -s.items))
            count = max(1, min(page, target - start + 1))
            ok, resps = self.ask(srv, lambda api: api.light_client_updates(start, count),
                                 f"updates {start}+{count}")
            if not ok:
                misses[srv.url, start] = misses.get((srv.url, start), 0) + 1
                page = 1
                continue
            if len(resps) > count:
                self.drop(srv, f"updates?start_period={start}&count={count}: "
                               f"{len(resps)} items")
                continue
            progressed = False
            for k, resp in enumerate(resps):
                where = f"update of period {start + k}"
                try:
                    obj = self.decode(srv, resp, "update", where)
                except LightClientError as exc:
                    self.drop(srv, str(exc))
                    break
                except PeerError as exc:
                    srv.fail(str(exc), self.fail_delay, self.fail_delay_cap)
                    break
                before = (self.store_period(),
                          self.spec.is_next_sync_committee_known(self.store))
                took = self.process(srv, obj, where)
                if srv.dropped:
                    break
                after = (self.store_period(), self.spec.is_next_sync_committee_known(self.store))
                progressed |= took and after != before
            if progressed:
                srv.ok()
                self.status(f"period {self.store_period()} from {srv.url}")
            elif srv.dropped is None:
                srv.fail(f"updates from period {start}: nothing new (withheld or missing)",
                         self.fail_delay, self.fail_delay_cap)
                misses[srv.url, start] = misses.get((srv.url, start), 0) + 1
                page = 1

    def finish(self, fins, opts) -> None:
        """Finality updates (best first), then optimistic ones; more finality updates when an
        optimistic one is of a newer epoch than all of them."""
        spe = self.net.slots_per_epoch

        def apply(items):
            for srv, obj, where in sorted(items, key=lambda t: -int(t[1].signature_slot)):
                if srv.dropped is None:
                    self.process(srv, obj, where)

        apply(fins)
        apply(opts)
        newest_fin = max((int(o.attested_header.beacon.slot) // spe for _, o, _ in fins),
                         default=-1)
        if any(int(o.attested_header.beacon.slot) // spe > newest_fin for _, o, _ in opts):
            more, _ = self.hints()
            apply([m for m in more if int(m[1].attested_header.beacon.slot) // spe
                   > newest_fin])


def _stale(message: str) -> bool:
    """Checks that valid data can fail: older than the store, or newer than our clock."""
    return any(s in message for s in ("not newer than the finalized slot",
                                      "is not the store's period", "is in the future"))


def _int_or_none(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def sync_light_client(servers: list, trusted_block_root: bytes, net: Network,
                      spec_json: dict | None = None, current_slot: int | None = None,
                      timeout: float = 120.0, fail_delay: float = FAIL_DELAY,
                      fail_delay_cap: float = FAIL_DELAY_CAP,
                      status: Callable[[str], None] | None = None) -> LightClientResult:
    """Bootstrap from `trusted_block_root` and follow the sync committees to the newest
    finalized header the servers can prove.  `net` needs `genesis_validators_root`.
    Raises NoServerError (nothing reachable or nothing served within `timeout` seconds) or
    AllServersWrongError (every server that answered served wrong data)."""
    if net.genesis_validators_root is None:
        raise PeerError("light client: the network's genesis_validators_root is unknown")
    if not servers:
        raise NoServerError("light client: no server given")
    run = _Run(servers, trusted_block_root, net, spec_json, current_slot,
               time.monotonic() + timeout, fail_delay, fail_delay_cap, status)
    run.bootstrap()
    trusted_slot = int(run.store.finalized_header.beacon.slot)
    fins, opts = run.hints()
    heads = [int(o.signature_slot) for _, o, _ in fins + opts]
    target = max([run.spec.compute_sync_committee_period_at_slot(s) for s in heads]
                 + [run.store_period()])
    run.sync_periods(target)
    run.finish(fins, opts)
    result = LightClientResult(run.store, run.spec, servers, bytes(trusted_block_root),
                               trusted_slot, warnings=run.warnings)
    age = run.now_slot() - trusted_slot
    ws_slots = _ws_period_epochs(run.spec) * net.slots_per_epoch
    if net.genesis_time is not None and age > ws_slots:
        result.warnings.append(
            f"the trusted block root (slot {trusted_slot}) is {age // net.slots_per_epoch} "
            f"epochs old, more than the shortest weak-subjectivity period "
            f"({_ws_period_epochs(run.spec)} epochs; about {WS_PERIOD_LARGE_STAKE} with a "
            "mainnet-sized stake): a chain signed by committees that have since exited could "
            "fool it; check the root against a recent source")
    return result


# phase0 weak-subjectivity.md / electra `compute_weak_subjectivity_period`: the period is
# MIN_VALIDATOR_WITHDRAWABILITY_DELAY + SAFETY_DECAY * total_stake / (2 * 100 * churn); a light
# client knows no total stake, so it warns past the first term (the shortest period).  With a
# stake whose churn is total / CHURN_LIMIT_QUOTIENT (mainnet) the second term is
# 10 * 65536 / 200 = 3276 epochs.
WS_PERIOD_LARGE_STAKE = 256 + 10 * 65536 // 200


def _ws_period_epochs(spec: LightClientSpec) -> int:
    from .protocol import MIN_VALIDATOR_WITHDRAWABILITY_DELAY

    return MIN_VALIDATOR_WITHDRAWABILITY_DELAY


def network_from_servers(servers: list, expected: Network | None = None
                         ) -> tuple[Network, dict | None]:
    """The network (and a node's spec JSON) from the servers' /eth/v1/config/spec and
    /eth/v1/beacon/genesis.  Without `expected` (--network/--config) every server that
    answers is asked, and they must agree on the genesis_validators_root and the fork
    schedule: a node lying about them would make every honest signature fail, so a
    disagreement is a ConfigError asking for --network or --config rather than a guess.
    With `expected`, a server on another network is marked failing; the genesis root comes
    from a node when `expected` lacks one."""
    from ..errors import ConfigError
    from ..sync.pull import node_network

    errors, found = [], []
    for srv in servers:
        try:
            spec_json = srv.api.spec()
            net = node_network(srv.api, expected)
        except EraToolsError as exc:
            errors.append(f"{srv.url}: {exc}")
            srv.fail(str(exc), FAIL_DELAY, FAIL_DELAY_CAP)
            continue
        found.append((srv, net, spec_json))
        if expected is not None:
            break
    if not found:
        raise NoServerError("no server answered its network (config/spec, genesis): "
                            + "; ".join(errors))
    srv, net, spec_json = found[0]
    for other, onet, _ in found[1:]:
        if (onet.genesis_validators_root, onet.forks) != (net.genesis_validators_root,
                                                          net.forks):
            raise ConfigError(
                f"the servers disagree on the network: {srv.url} has genesis_validators_root "
                f"{hex0x(net.genesis_validators_root)} and forks "
                f"{_schedule(net)}, {other.url} {hex0x(onet.genesis_validators_root)} and "
                f"{_schedule(onet)}; pass --network or --config")
    for other in servers:  # JSON-only nodes need the converter for this preset
        other.api.fork_at_slot = net.fork_name_at_slot
        if other.api.preset_base is None:
            other.api.preset_base = net.preset_base
            from ..ssz.json import json_to_ssz_for

            other.api._json_to_ssz = json_to_ssz_for(net.preset_base)
    return (expected.with_genesis(net.genesis_validators_root, net.genesis_time)
            if expected is not None else net), spec_json


def _schedule(net: Network) -> str:
    return ", ".join(f"{f.name}@{f.epoch}" for f in net.forks)


def verified_finalized_header(clients: list, trusted_root: bytes, network: Network | None = None,
                              status: Callable[[str], None] | None = None, **kw):
    """The newest finalized `LightClientHeader` the servers (URLs, `LightClientServer`s or
    `BeaconApiClient`s) can prove from `trusted_root`: the hook for checkpoint sync, pull,
    backfill and verify."""
    servers = [c if isinstance(c, LightClientServer) else
               LightClientServer(c.base_url, api=c) if isinstance(c, BeaconApiClient) else
               LightClientServer(str(c)) for c in clients]
    net, spec_json = network_from_servers(servers, network)
    return sync_light_client(servers, trusted_root, net, spec_json, status=status,
                             **kw).finalized_header


def light_client_checkpoint(api: BeaconApiClient, trusted_root: bytes, net: Network,
                            status: Callable[[str], None] | None = None,
                            timeout: float = 120.0) -> LightClientResult | None:
    """For `era checkpoint-sync --trusted-block-root` (and pull): the light client run from
    `trusted_root` over the node `api`, or None when the node serves no bootstrap for the root
    at all (no light-client routes, or a root it holds none for): the caller then falls back
    to requiring the root to be the checkpoint block itself.  The verified finalized header is
    `result.finalized_header`; `checkpoint_slot(result, net)` is the epoch-boundary state
    whose latest block it is."""
    api.fork_at_slot = net.fork_name_at_slot
    try:
        probe = api.light_client_bootstrap(trusted_root)
    except PeerError as exc:
        if status:
            status(f"{api.base_url}: no light-client bootstrap for {hex0x(trusted_root)} "
                   f"({exc})")
        return None
    if probe is None:
        return None
    try:
        spec_json = api.spec()
    except PeerError:
        spec_json = None
    srv = LightClientServer(api.base_url, api=api)
    return sync_light_client([srv], trusted_root, net, spec_json, timeout=timeout,
                             status=status)


def checkpoint_slot(result: LightClientResult, net: Network) -> int:
    """The first epoch boundary at or after the verified finalized block: the checkpoint state
    there has that block as its latest block header."""
    slot = int(result.finalized_header.beacon.slot)
    spe = net.slots_per_epoch
    return -(-slot // spe) * spe


MAX_WALK = 8192   # blocks walked down from a verified header (a day of mainnet)


def verify_descends_from(api: BeaconApiClient, header, slot: int, root: bytes, net: Network,
                         max_blocks: int = MAX_WALK) -> int:
    """Check, by parent roots fetched from `api`, that `root` (a store's newest block, at or
    below `slot`) is the verified `header`'s block or one of its ancestors.  Returns the
    number of blocks fetched.  LightClientError when the verified chain holds another block
    there; PeerError when the node cannot give (or lies about) a block on the way."""
    want = ssz.hash_tree_root(header.beacon)
    top = int(header.beacon.slot)
    if top < slot:
        raise LightClientError(f"slot {slot}: the store's newest block is newer than the newest "
                               f"light-client verified finalized block (slot {top}); nothing "
                               "proves it")
    fetched = 0
    while want != bytes(root):
        if fetched >= max_blocks:
            raise LightClientError(f"slot {slot}: more than {max_blocks} blocks between the "
                                   f"verified block at slot {top} and the store's; checkpoint-"
                                   "sync a newer store")
        resp = api.block(hex0x(want))
        if resp is None:
            raise PeerError(f"{api.base_url}: no block {hex0x(want)} (404)")
        if len(resp.ssz) < layout.BLOCK_HEAD:
            raise PeerError(f"{resp.url}: {len(resp.ssz)} bytes are not a SignedBeaconBlock")
        bslot = layout.block_slot(resp.ssz)
        got = layout.block_root(resp.ssz, net.fork_name_at_slot(bslot), net.preset_base, resp.url)
        if got != want:
            raise PeerError(f"{resp.url}: the block served for {hex0x(want)} hashes to "
                            f"{hex0x(got)}")
        fetched += 1
        if bslot <= slot:
            raise LightClientError(
                f"slot {slot}: the store holds {hex0x(root)}, but the light-client verified "
                f"chain has {hex0x(want)} at slot {bslot} there: the store is on another chain")
        want = layout.block_parent(resp.ssz)
    return fetched


def verify_store_anchor(urls: list, trusted_root: bytes, store_net: Network, slot: int,
                        root: bytes, status: Callable[[str], None] | None = None,
                        timeout: float = 120.0) -> LightClientResult:
    """For `era backfill --trusted-block-root`: the light client over `urls` from
    `trusted_root`, then the store's newest block (`slot`, `root`) checked to be the verified
    finalized block or its ancestor (verify_descends_from, with the first server that can)."""
    servers = [LightClientServer(u) for u in urls]
    net, spec_json = network_from_servers(servers, store_net)
    res = sync_light_client(servers, trusted_root, net, spec_json, status=status,
                            timeout=timeout)
    errors = []
    for srv in servers:
        if srv.dropped:
            continue
        try:
            n = verify_descends_from(srv.api, res.finalized_header, slot, root, net)
        except PeerError as exc:
            errors.append(str(exc))
            continue
        if status:
            status(f"store block {hex0x(root)} (slot {slot}) is the verified finalized block "
                   f"or its ancestor ({n} blocks walked via {srv.url})")
        return res
    raise NoServerError("no server gave the blocks between the verified finalized block and "
                        f"the store's: {'; '.join(errors)}")


def verified_checkpoint_state(clients: list, trusted_root: bytes, network: Network | None = None,
                              status: Callable[[str], None] | None = None,
                              warn: Callable[[str], None] | None = None, **kw):
    """(verified finalized header, state slot, state SSZ): the light client from
    `trusted_root`, then the epoch-boundary state whose latest block is the verified one,
    downloaded from the first server that has it and checked to hash into the header (its
    latest_block_header, with the state root filled in, is the verified block).  When empty
    slots follow the block, that binds only the state's header, so the state at the block's
    own slot is taken instead and must hash to the header's state_root.  For anchoring
    an archive's `historical_roots`/`historical_summaries` (`era verify --trusted-block-root`).
    VerificationError when a server's state does not match; NoServerError when none has it.
    `warn` gets the light client's warnings (e.g. a trusted root older than the
    weak-subjectivity period)."""
    from ..verify import state_root

    servers = [c if isinstance(c, LightClientServer) else
               LightClientServer(c.base_url, api=c) if isinstance(c, BeaconApiClient) else
               LightClientServer(str(c)) for c in clients]
    net, spec_json = network_from_servers(servers, network)
    res = sync_light_client(servers, trusted_root, net, spec_json, status=status, **kw)
    for w in res.warnings if warn is not None else ():
        warn(w)
    header = res.finalized_header
    want = ssz.hash_tree_root(header.beacon)
    slot = checkpoint_slot(res, net)
    bslot = int(header.beacon.slot)
    errors: list[str] = []

    def fetch(srv, at: int, why: str = ""):
        """(response, state root) of `srv`'s state at slot `at`, or None (the reason noted)."""
        try:
            resp = srv.api.state(at)
        except PeerError as exc:
            errors.append(str(exc))
            return None
        if resp is None:
            errors.append(f"{srv.url}: no state at slot {at} (404{why})")
            return None
        fork = net.fork_name_at_slot(at)
        try:
            return resp, state_root(resp.ssz, fork, net.preset_base)
        except FormatError as exc:
            errors.append(f"{resp.url}: not a {fork} BeaconState: {exc}")
            return None

    for srv in servers:
        if srv.dropped:
            continue
        got = fetch(srv, slot)
        if got is None:
            continue
        resp, root = got
        _, _, block = layout.header_root(resp.ssz, root)
        if block != want:
            raise VerificationError(f"{resp.url}: the state at slot {slot} (root {hex0x(root)}) "
                                    f"does not belong to the verified finalized block "
                                    f"{hex0x(want)}")
        if slot == bslot:
            return header, slot, resp.ssz
        # empty slots follow the block: only the state's header is bound to it, so the
        # state at the block's own slot is the one whose root the header carries
        got = fetch(srv, bslot, f"; the state at slot {slot} follows that block by empty "
                    "slots, so only its header is bound to it")
        if got is None:
            continue
        resp, root = got
        if root != bytes(header.beacon.state_root):
            raise VerificationError(f"{resp.url}: the state at slot {bslot} hashes to "
                                    f"{hex0x(root)}, the verified block's state_root is "
                                    f"{hex0x(bytes(header.beacon.state_root))}")
        return header, bslot, resp.ssz
    raise NoServerError(f"no server gave the state at slot {slot}: {'; '.join(errors)}")
