"""The sync queue, forward and backward: batches, workers, the importer, peer scores and the
status line.  `era backfill` runs it backward, `era pull` and `era sync`'s follow stage
forward; the sources it asks are era_tools.sync.sources.BlockSource (Beacon API nodes,
era_tools range peers, era files).

    q = SyncQueue.backward(store, peers, verifier, top=..., expect=..., floor=..., ...)
    q = SyncQueue.forward(store, peers, verifier, start=..., parent=..., target=..., ...)
    result = q.run()             # blocks until done; raises PeerError / VerificationError

Forward (Nimbus `SyncQueue` Forward kind): batches oldest-first above the newest stored
block; the importer walks the ready run upwards, each block's parent_root must be the root
below it; the part up to the newest linked block is written, the empty slots above it wait
for a block that links over them or for the run to end at `target_root` (the finalized
checkpoint, or the parent of the stored block right above).  A break is a rewind: the
unproven empty claims below it and the batch at it are fetched again from other peers, and
attempts that differ from the accepted chain are blamed.  Forward sync checks roots and links
to the target root, not proposer signatures (`Verifier(network, None)`): the hash chain from
a trusted finalized root proves every block.  With `prove_first` (short spans: the follow
stage's steps) nothing is written before the run links all the way to the target root;
with `trusted` (longer spans: era_tools.sync.trusted.TrustedRoots) every block and empty
slot is checked against the finalized chain's roots before it is written.
`strict` (one node, `era pull`): its first bad answer is the error, nothing is retried
elsewhere.

Backward:

Design (after Nimbus `SyncQueue` in Backward mode, Lighthouse backfill and Prysm):

* **Batches** of `batch_slots` (one epoch) are made newest-first below the store's oldest
  block, aligned to epochs.  Several worker threads take the newest batch that waits, pick the
  best peer for it (highest score, least busy, not one that already failed this batch), fetch,
  and verify: every block decodes as the fork of its slot (and the range peer's fork digest
  agrees), slots lie in the batch and strictly increase, parents link inside the batch, and
  the proposer signatures batch-verify (random linear combination, era_tools.bls) with pubkeys
  from the checkpoint state and the domain of the block's fork version.  A range peer
  (era_tools server) is asked for up to `range_batches` adjacent queued batches in one request
  (<= 1024 slots): one HTTP round trip and one decompress + hash + BLS task (in the process
  pool when there is one), but one result per batch, so a bad block fails only its own batch
  (the peer is penalised once per reply, by its worst fault).
* **One importer** (the thread that calls `run`) accepts only the contiguous run of ready
  batches below the store's oldest block.  Walking it newest-first, each block's root must
  equal the parent the chain above expects.  The proven part (down to the lowest linked block;
  empty slots between linked blocks are proven empty) is written with its index entries and
  the new anchor in one atomic write.  Slots below the lowest linked block stay pending until
  a lower block links (an empty reply never proves anything on its own).  Writes are
  coalesced (a run of >= 8 epochs, or sooner when nothing else can arrive, a rewind or the
  end is in the run, or 2 s passed) and done without holding the queue lock.
* **Failures**: a batch whose reply is bad is retried with another peer.  When the run does
  not link, the batches that could be lying (the unproven empty claims above the break and the
  batch at the break) are re-downloaded from other peers, and the next request of the top one
  *includes the anchor block's slot*, so an empty or foreign reply is provably bad.  Every
  failed attempt keeps its claims (slot -> root); when the batch is finally accepted, attempts
  that differ from it are blamed on their peers (Lighthouse's attempt hashing).
* **Scores** (Nimbus `peer_scores.nim`): start 300, dropped at <= 0; bad data or signatures
  -1000, no answer / proven-empty -100, missing or short -25, accepted batch +100.  A REST
  peer that answers blocks in JSON only (older nodes; converted to SSZ here) is usable but
  slower: -100 once and a cap of 900 instead of 1000, so SSZ peers rank above it.
* **Stops** at `to_slot` (once a linked block at or below it is stored), at genesis (slot 0,
  zero signature), or at `floor` where front-filled era history ends: there the lowest block's
  parent must equal `floor_root` (the era root at slot floor - 1), else VerificationError and
  the final run is not written.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .. import bls, framing, ssz
from ..ssz import layout
from ..errors import FormatError, PeerError, VerificationError, hex0x
from ..procs import keep_freed_memory, usable_cpus
from ..signing import DOMAIN_BEACON_PROPOSER, compute_domain, compute_signing_root
from .peers import BackfillPeer, PeerFault, PeerReply

# Nimbus peer_scores.nim
SCORE_START = 300
SCORE_MAX = 1000
SCORE_GOOD = 100
SCORE_NO_VALUES = -100
SCORE_MISSING = -25
SCORE_BAD = -1000
SCORE_JSON = -100          # once, for a REST peer that answers JSON only (slower to use)
MAX_ATTEMPTS = 12
ZERO_ROOT = b"\x00" * 32
FORWARD, BACKWARD = "forward", "backward"
RANGE_BATCHES = 8          # batches per range request (era_tools peers)
MAX_RANGE_SLOTS = 1024     # slots per range request (the server's cap)
PENALTY = {"bad": SCORE_BAD, "link": SCORE_BAD, "timeout": SCORE_NO_VALUES, "empty": SCORE_NO_VALUES,
           "missing": SCORE_MISSING}


# --------------------------------------------------------------------------------------------
# Peers and scores


@dataclass
class PeerState:
    peer: BackfillPeer
    score: int = SCORE_START
    dropped: bool = False
    reason: str = ""
    busy: int = 0
    good_batches: int = 0
    faults: int = 0
    bytes: int = 0
    events: list = field(default_factory=list)
    json_noted: bool = False
    cap: int = SCORE_MAX

    @property
    def url(self) -> str:
        return self.peer.url

    @property
    def alive(self) -> bool:
        return not self.dropped

    def adjust(self, delta: int, why: str) -> None:
        self.score = min(self.cap, self.score + delta)
        if delta < 0:
            self.faults += 1
            self.reason = why
            if len(self.events) < 50:
                self.events.append(f"{delta:+d} {why}")
        if self.score <= 0 and not self.dropped:
            self.dropped = True

    def note_json(self) -> None:
        """A REST peer that answers blocks in JSON only: usable, but each block costs a JSON
        decode and an SSZ encode here, so it ranks below the SSZ peers (not a fault)."""
        if not self.json_noted:
            self.json_noted = True
            self.cap = SCORE_MAX + SCORE_JSON
            self.score = max(1, self.score + SCORE_JSON)
            self.events.append(f"{SCORE_JSON:+d} answers JSON only (converted, slower)")

    @property
    def kind(self) -> str | None:
        k = self.peer.kind
        return f"{k}-json" if k == "rest" and self.peer.answers_json else k

    def to_dict(self) -> dict:
        return {"url": self.url, "kind": self.kind, "score": self.score,
                "dropped": self.dropped, "good_batches": self.good_batches,
                "faults": self.faults, "bytes": self.bytes,
                "last_fault": self.reason or None}


# --------------------------------------------------------------------------------------------
# Verification of one batch (runs in the worker threads)


@dataclass
class Block:
    slot: int
    root: bytes
    parent: bytes
    framed: bytes


@dataclass
class Link:
    """The anchor block a request includes after a rewind."""
    slot: int
    root: bytes
    parent: bytes   # what the batch's newest block must hash to


_pk_cache: dict = {}  # decompressed proposer pubkeys, per process; cleared when it gets big
_PK_CACHE_MAX = 65536
_NO_LIMIT = contextlib.nullcontext()


def warm_task(fork: str, preset: str) -> None:
    """Pool warm-up, submitted when the pool is made: imports, the BLS backend and the
    compiled block-hashing plan are ready before the first batch arrives."""
    cls = ssz.types_for(fork, preset).BeaconBlock
    try:
        from ..ssz.fast import compile_sedes, native_plan

        native_plan(compile_sedes(cls))
    except Exception:  # pragma: no cover - only a warm-up
        pass
    bls.get_backend()


def _check_blocks_task(items: list, preset: str):
    """Hashing and signature side of `Verifier.check_group` (a process-pool entry point, or
    called in the worker thread): for each (payload, is_framed, length, fork, pubkey, domain)
    decompress (bounded; REST payloads, is_framed False, are compressed for the store
    instead), hash the block root and, when a pubkey is given, batch-verify the proposer
    signatures of all items together.  Returns (roots, framed payloads, {index: error}, bad
    signature indices, header bytes 4..148 of each block as decompressed here)."""
    roots, framed_out, sets, idx, errors, heads = [], [], [], [], {}, []
    for i, (payload, is_framed, length, fork, pubkey, domain) in enumerate(items):
        root = fo = head = None
        try:
            if is_framed:  # `length`: the chunk's announced size, checked against the cap
                # (read here only: the root, the head and the signature are copied out)
                data = framing.decompress_scratch(payload, length, where="block")
            else:
                data = payload
                fo = framing.compress(data)
            root = layout.block_root(data, fork, preset, "block")
            head = bytes(data[layout.BLOCK_TOP])
        except FormatError as exc:
            errors[i] = f"not a {fork} block: {exc}"
        roots.append(root)
        framed_out.append(fo)
        heads.append(head)
        if root is not None and pubkey is not None:
            sets.append(bls.SignatureSet(pubkey, compute_signing_root(root, domain),
                                         bytes(data[layout.SIGNATURE])))
            idx.append(i)
    if len(_pk_cache) > _PK_CACHE_MAX:
        _pk_cache.clear()
    # the pubkeys are the checkpoint state's registry (see bls.find_invalid)
    bad = bls.find_invalid(sets, _pk_cache=_pk_cache, registry_pubkeys=True) if sets else []
    return roots, framed_out, errors, [idx[j] for j in bad], heads


class Verifier:
    """Checks a peer's reply for one batch, or for several adjacent batches fetched in one
    range request (`check_group`: one result per batch, so a bad block only fails its own
    batch).  `pubkeys`: (n, 48) uint8 view of the checkpoint state's validators (never one
    object per validator).  `bls_pool`: an executor for decompression, hashing and the
    signature checks, or None to do them in the calling thread."""

    def __init__(self, network, pubkeys, bls_pool=None):
        self.network = network
        self.pubkeys = pubkeys
        self.gvr = network.genesis_validators_root
        self.bls_pool = bls_pool
        self._domains: dict[bytes, bytes] = {}
        self._digests: dict[int, bytes] = {}
        # hashing (and signature checks) in the calling threads: at most one per usable CPU
        # at a time.  More only take turns on the same CPUs, each evicting the other's
        # block from the cache and handing the GIL back and forth (forward sync, 8 workers
        # on one CPU: 1.03-1.05x the blocks/s with it, bench_sync.py)
        self.cpu_slots = threading.BoundedSemaphore(usable_cpus())

    def domain(self, version: bytes) -> bytes:
        d = self._domains.get(version)
        if d is None:
            d = self._domains[version] = compute_domain(DOMAIN_BEACON_PROPOSER, version, self.gvr)
        return d

    def fork_digest(self, slot: int) -> bytes:
        epoch = slot // self.network.slots_per_epoch
        d = self._digests.get(epoch)
        if d is None:
            from ..signing import compute_fork_data_root

            version = self.network.fork_at_epoch(epoch).version
            d = compute_fork_data_root(version, self.gvr)[:4]
            if len(self._digests) < 100000:
                self._digests[epoch] = d
        return d

    def check(self, lo: int, hi: int, reply: PeerReply, url: str,
              link: Link | None = None) -> tuple[list, int]:
        """Verified blocks of [lo, hi] in slot order, and the number of payload bytes.
        Raises PeerFault (kind bad / missing / empty)."""
        res = self.check_group([(lo, hi)], reply, url, link)[0]
        if isinstance(res, PeerFault):
            raise res
        return res

    def check_group(self, ranges: list, reply: PeerReply, url: str,
                    link: Link | None = None, tip: int | None = None) -> list:
        """`ranges`: adjacent (lo, hi) batches in slot order, all answered by `reply`.
        Returns, per range, (blocks, payload bytes) or the PeerFault that fails that batch.
        Raises PeerFault when the reply as a whole is bad (garbage, slots out of order or
        outside the request, a wrong or missing anchor block after a rewind).  `tip`: a
        slot the peer may stop one short of (forward sync's finalized slot: an archive does
        not hold the block that begins the next era)."""
        net = self.network
        lo, hi = ranges[0][0], ranges[-1][1]
        where = f"{url} slots {lo}..{hi}"
        faults: list = [None] * len(ranges)
        for k, (rlo, rhi) in enumerate(ranges):
            if tip is not None and rhi == tip and reply.last_slot == tip - 1:
                continue
            if reply.last_slot < rhi:
                faults[k] = PeerFault(f"{url} slots {rlo}..{rhi}: the peer covers only up to "
                                      f"slot {reply.last_slot}", "missing")
        if all(faults):
            raise faults[0] if len(ranges) == 1 else PeerFault(
                f"{where}: the peer covers only up to slot {reply.last_slot}", "missing")
        his = [r[1] for r in ranges]
        rest = bool(reply.blocks) and reply.blocks[0].framed is None

        def at(slot: int) -> str:  # where a block's fault is: its own URL over REST
            return f"{url}/eth/v2/beacon/blocks/{slot}" if rest else f"{where}: slot {slot}"

        # heads: (slot, parent, proposer, framed, range index, header bytes 4..148 as peeked)
        heads, items = [], []
        prev_slot = lo - 1
        # Without signatures to check (forward sync) nothing needs a block's header before
        # hashing: decompress each framed block once, here, into this thread's scratch
        # buffer, and hash it at once while it is in the cache (`inline`: roots and errors
        # by item), instead of a peek, a full decompression in the task and a group of
        # decompressed blocks held together (measured: BENCHMARKS.md).
        once = self.pubkeys is None and self.bls_pool is None
        inline: list = []
        with self.cpu_slots if once else _NO_LIMIT:  # (see __init__)
            for raw in reply.blocks:
                hash_now = raw.framed is not None and once
                if hash_now:
                    try:
                        payload = framing.decompress_scratch(raw.framed, raw.length, where=where)
                    except FormatError as exc:
                        raise PeerFault(f"{where}: bad snappy payload: {exc}") from exc
                    head, length = payload[:layout.BLOCK_HEAD], len(payload)
                elif raw.framed is not None:
                    try:  # CRC-less peek: the pool task decompresses it all and hands back the
                        # header it saw, compared below
                        head = framing.peek_prefix(raw.framed, layout.BLOCK_HEAD, where=where)
                    except FormatError as exc:
                        raise PeerFault(f"{where}: bad snappy payload: {exc}") from exc
                    payload, is_framed, length = raw.framed, True, raw.length
                else:
                    head = raw.ssz[:layout.BLOCK_HEAD]
                    payload, is_framed, length = raw.ssz, False, len(raw.ssz)
                try:
                    layout.check_block_head(head, length,
                                            at(raw.slot) if raw.slot >= 0 and rest else where)
                except FormatError as exc:
                    raise PeerFault(str(exc)) from exc
                slot = layout.block_slot(head)
                if raw.slot >= 0 and slot != raw.slot:
                    raise PeerFault(f"{where}: asked for slot {raw.slot}, got a block of slot "
                                    f"{slot}")
                if slot <= prev_slot:
                    raise PeerFault(f"{where}: block slot {slot} after slot {prev_slot} (slots "
                                    "must increase)")
                prev_slot = slot
                if raw.digest is not None and raw.digest != self.fork_digest(slot):
                    raise PeerFault(f"{where}: slot {slot}: fork digest {hex0x(raw.digest)}, "
                                    f"expected {hex0x(self.fork_digest(slot))}")
                if raw.fork is not None and raw.fork != net.fork_name_at_slot(slot):
                    raise PeerFault(f"{where}: slot {slot}: the peer says fork {raw.fork}, the "
                                    f"schedule has {net.fork_name_at_slot(slot)}")
                if slot < lo:
                    raise PeerFault(f"{where}: block of slot {slot} outside the request")
                if slot > reply.last_slot:
                    raise PeerFault(f"{where}: block of slot {slot} above the last slot "
                                    f"{reply.last_slot} the peer says it serves")
                if slot > hi:
                    if link is None or slot != link.slot:
                        raise PeerFault(f"{where}: block of slot {slot} outside the request")
                    k = -1  # the anchor block a rewound request includes
                else:
                    k = bisect.bisect_left(his, slot)
                proposer = layout.block_proposer(head)
                sig = bytes(head[layout.SIGNATURE])
                pubkey = domain = None
                if slot == 0:
                    if sig != bls.ZERO_SIGNATURE or layout.block_parent(head) != ZERO_ROOT:
                        faults[k] = faults[k] or PeerFault(
                            f"{where}: slot 0: the genesis block must carry the zero signature "
                            "and a zero parent_root")
                elif k >= 0 and self.pubkeys is not None:
                    if proposer >= len(self.pubkeys):
                        faults[k] = faults[k] or PeerFault(
                            f"{where}: slot {slot}: proposer_index {proposer} is not a validator "
                            f"of the checkpoint state ({len(self.pubkeys)})")
                        continue
                    pubkey = self.pubkeys[proposer].tobytes()
                    domain = self.domain(net.fork_at_epoch(slot // net.slots_per_epoch).version)
                if k >= 0 and faults[k] is not None:
                    continue  # that batch fails anyway: spare the hashing and BLS
                heads.append((slot, layout.block_parent(head), proposer, raw.framed, k,
                              bytes(head[layout.BLOCK_TOP])))
                fork = net.fork_name_at_slot(slot)
                if hash_now:  # hashed now: the scratch buffer is reused by the next block
                    try:
                        inline.append(layout.block_root(payload, fork, net.preset_base, "block"))
                    except FormatError as exc:
                        inline.append(f"not a {fork} block: {exc}")
                    continue
                items.append((payload, is_framed, length, fork, pubkey, domain))
        if inline:
            assert not items, "a reply is all framed blocks or all REST blocks"
            roots = [r if isinstance(r, bytes) else None for r in inline]
            errors = {i: r for i, r in enumerate(inline) if isinstance(r, str)}
            framed_out, bad, seen = [None] * len(inline), [], [None] * len(inline)
        elif not items:
            roots, framed_out, errors, bad, seen = [], [], {}, [], []
        elif self.bls_pool is not None:
            roots, framed_out, errors, bad, seen = self.bls_pool.submit(
                _check_blocks_task, items, net.preset_base).result()
        else:
            with self.cpu_slots:
                roots, framed_out, errors, bad, seen = _check_blocks_task(items,
                                                                          net.preset_base)
        for h, real in zip(heads, seen):
            if real is not None and real != h[5]:  # a stream whose prefix decodes two ways
                raise PeerFault(f"{where}: slot {h[0]}: block header differs between a "
                                "partial and a full decompression")
        for i, msg in sorted(errors.items()):
            slot, k = heads[i][0], heads[i][4]
            if k < 0:
                raise PeerFault(f"{at(slot)}: {msg}")
            faults[k] = faults[k] or PeerFault(f"{at(slot)}: {msg}")
        nbad = {}
        for i in bad:
            nbad[heads[i][4]] = nbad.get(heads[i][4], 0) + 1
        for i in bad:
            slot, _, proposer, _, k, _ = heads[i]
            faults[k] = faults[k] or PeerFault(
                f"{where}: slot {slot}: proposer signature does not verify (proposer "
                f"{proposer}; {nbad[k]} bad in the batch)")
        out: list = [([], 0) for _ in ranges]
        anchor_seen = False
        for (slot, parent, _, framed, k, _), root, fo in zip(heads, roots, framed_out):
            if k < 0:
                if root != link.root:
                    raise PeerFault(f"{where}: slot {slot}: block {hex0x(root)} is not the "
                                    "stored anchor block")
                anchor_seen = True
                continue
            if faults[k] is not None:
                continue
            blocks, nbytes = out[k]
            if blocks and parent != blocks[-1].root:
                faults[k] = PeerFault(f"{at(slot)}: block parent_root {hex0x(parent)} does "
                                      f"not link to the previous block {hex0x(blocks[-1].root)}"
                                      f" (slot {blocks[-1].slot})", "link")
                continue
            framed = framed if framed is not None else fo
            blocks.append(Block(slot, root, parent, framed))
            out[k] = (blocks, nbytes + len(framed))
        if link is not None and reply.last_slot >= link.slot:
            if not anchor_seen:
                raise PeerFault(f"{where}: the reply lacks the anchor block at slot "
                                f"{link.slot} (provably incomplete)", "empty")
            top = out[-1][0]
            if faults[-1] is None and top and top[-1].root != link.parent:
                raise PeerFault(f"{where}: block {top[-1].slot} {hex0x(top[-1].root)} "
                                f"is not the anchor's parent {hex0x(link.parent)}")
        return [f if f is not None else o for f, o in zip(faults, out)]


def _strict_error(fault: PeerFault) -> Exception:
    """What a strict queue raises for a fault: a chain that does not link is a verification
    failure (exit 1), anything else the peer's error (exit 2)."""
    if fault.kind == "link":
        return VerificationError(str(fault))
    return PeerError(str(fault))


# --------------------------------------------------------------------------------------------
# Batches


@dataclass
class Batch:
    lo: int
    hi: int
    state: str = "queued"            # queued | active | ready
    attempts: int = 0
    excluded: set = field(default_factory=set)    # peer urls that failed this range
    failed: list = field(default_factory=list)    # (PeerState, claims {slot: root})
    blocks: list | None = None
    peer: PeerState | None = None
    need_anchor: bool = False
    errors: list = field(default_factory=list)

    @property
    def slots(self) -> int:
        return self.hi - self.lo + 1

    def claims(self) -> dict:
        return {b.slot: b.root for b in (self.blocks or [])}


def claims_hash(claims: dict) -> str:
    h = hashlib.sha256()
    for s in sorted(claims):
        h.update(s.to_bytes(8, "little") + claims[s])
    return h.hexdigest()[:16]


@dataclass
class QueueResult:
    slots: int = 0
    blocks: int = 0
    bytes: int = 0
    commits: int = 0
    top_slot: int = 0
    oldest_slot: int | None = None
    stopped: str = ""
    elapsed: float = 0.0
    peers: list = field(default_factory=list)


class RateLimiter:
    def __init__(self, rate: float | None):
        self.rate = rate
        self.next_time = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, n: int, stop: threading.Event) -> None:
        if not self.rate:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_time)
            self.next_time = start + n / self.rate
        while not stop.is_set() and time.monotonic() < start:
            time.sleep(min(0.2, start - time.monotonic()))


# --------------------------------------------------------------------------------------------
# The queue


class SyncQueue:
    """One queue for both directions (Nimbus `SyncQueue` has Forward and Backward kinds).
    Make it with `SyncQueue.backward(...)` (backfill: down from the store's oldest block) or
    `SyncQueue.forward(...)` (pull, `era sync`'s follow stage: up from the newest block)."""

    def __init__(self, store, peers: list[PeerState], verifier: Verifier, *, kind: str,
                 batch_slots: int | None = None, workers: int = 4,
                 max_rate: float | None = None, range_batches: int = RANGE_BATCHES,
                 progress: Callable[[int], None] | None = None,
                 status: Callable[[str], None] | None = None, status_every: float = 5.0,
                 strict: bool = False, commit_slots: int | None = None):
        assert kind in (FORWARD, BACKWARD)
        self.kind = kind
        self.store = store
        self.peers = peers
        self.verifier = verifier
        # strict: a single trusted-for-availability source (`era pull` of one node): its
        # first fault is the error, nothing is retried elsewhere
        self.strict = strict
        self.bs = batch_slots or store.network.slots_per_epoch
        self.nworkers = max(1, workers)
        # A range peer answers up to `range_batches` adjacent batches in one request (one
        # HTTP round trip, one hashing + BLS task); a REST peer one batch.
        self.range_batches = max(1, range_batches)
        # Batches in flight or waiting for the importer: each worker one request, plus one
        # request's worth ready (bounds memory: ~70 KB per framed mainnet block).
        self.window = max(self.nworkers * 3, (self.nworkers + 1) * self.range_batches) + 2
        # The importer writes a ready run once it spans `commit_slots` (fewer, larger LevelDB
        # batches), or sooner when nothing else can arrive, the run ends the job, or
        # `commit_every` seconds passed since the last write.
        self.commit_slots = commit_slots or min(8 * self.bs,
                                                (self.window - self.nworkers) * self.bs)
        self.commit_every = 2.0
        self._last_commit = time.monotonic()
        self.rate = RateLimiter(max_rate)
        self.progress = progress
        self.status = status
        self.status_every = status_every
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.batches: dict[int, Batch] = {}     # backward: hi -> batch; forward: lo -> batch
        self.fatal: BaseException | None = None
        self.done = False
        self.worker_map = ["s"] * self.nworkers
        self.boundary_votes: dict[str, set] = {}
        self._speed = 0.0
        self._last_status = time.monotonic()
        self._last_done = 0
        self._committed: list = []              # (lo, hi) commits for `on_commit`, in order
        self.on_commit: Callable[[int, int], None] | None = None
        self.prove_first = False                # forward: write only once linked to target
        # backward
        self.to_slot = None
        self.lower_ok = False
        self.floor = 0
        # forward
        self.tip: int | None = None
        self.target_root: bytes | None = None
        self.trusted: Callable[[int], bytes | None] | None = None
        self.deferred = False                   # forward: commit nothing, fill `pending`
        self.pending = None                     # the store batch of a deferred queue
        self.written: list[tuple[int, bytes]] = []
        self.unheld_slot: int | None = None

    @classmethod
    def backward(cls, store, peers, verifier, *, top: int, expect: bytes,
                 anchor_block: tuple[int, bytes], floor: int, floor_root: bytes | None,
                 to_slot: int | None = None, **kw) -> "SyncQueue":
        """Fill [floor, top - 1] downwards: the block below must hash to `expect` (the
        parent of `anchor_block`, the lowest stored block); stop at `to_slot`, at genesis,
        or at `floor` where the chain must meet `floor_root` (front-filled era history)."""
        q = cls(store, peers, verifier, kind=BACKWARD, **kw)
        q.top0 = q.cur_top = top          # lowest covered slot of the newest range
        q.expect = expect                 # root the next block down must have
        q.anchor_block = anchor_block     # (slot, root) of the lowest stored block
        q.floor = floor                   # lowest slot to fill
        q.floor_root = floor_root         # era root at floor - 1 (None: genesis)
        q.to_slot = to_slot
        q.next_hi = top - 1
        q.result = QueueResult(top_slot=top)
        return q

    @classmethod
    def forward(cls, store, peers, verifier, *, start: int, parent: bytes | None,
                target: int, target_root: bytes | None = None,
                target_what: str = "the expected root", tip_unheld_ok: bool = False,
                on_commit: Callable[[int, int], None] | None = None,
                prove_first: bool = False,
                trusted: Callable[[int], bytes | None] | None = None,
                deferred: bool = False, **kw) -> "SyncQueue":
        """Fill [start, target] upwards: the first block's parent_root must be `parent` (the
        root of the stored block below `start`; ZERO_ROOT at genesis; None when the store
        holds nothing below: then anything links).  The chain must end at `target_root`
        when given (the finalized checkpoint's root, or the parent of the stored block right
        above `target`).  `tip_unheld_ok`: a source may lack the block at `target` (an
        archive does not hold the block that begins the next era): the chain below is
        stored and `target` left uncovered (`unheld_slot`).  `on_commit(lo, hi)` is called
        after each write, in slot order, outside the queue's lock (pull fetches era-boundary
        states there).  `prove_first` (with `target_root`): nothing is written until the
        chain links all the way to `target_root`, then [start, target] in one write; the
        whole span is held in memory meanwhile, so callers ask for it on short spans only
        (the follow stage's steps).  Without it, linked blocks are written as they come and
        a chain that does not end at `target_root` is only found at the end, unless
        `trusted(slot)` (era_tools.sync.trusted.TrustedRoots.root_at) names the root of the
        latest block at or before a slot: then every block, and every empty slot, is checked
        against it before it is written.  `deferred`: block files are written as usual but
        nothing is committed; every write goes into one store batch, `q.pending`, with
        `q.written` ([(slot, root)] of its blocks), for the caller to check and commit (an
        era proven only once all its roots are known)."""
        q = cls(store, peers, verifier, kind=FORWARD, **kw)
        q.trusted = trusted
        q.deferred = deferred
        q.prove_first = prove_first and target_root is not None
        if q.prove_first:  # one write, and room in the window for every batch of the span
            q.commit_slots = max(q.commit_slots, target - start + 1)
            q.window = max(q.window, (target - start) // q.bs + 2 + q.nworkers)
        q.start0 = q.cur_lo = start       # lowest slot not yet written
        q.expect = parent                 # parent_root the next block up must have
        q.head_slot = start - 1 if parent is not None else None
        q.target = target
        q.target_root = target_root
        q.target_what = target_what       # what target_root is, for messages
        q.tip = target if tip_unheld_ok else None
        q.next_lo = start
        q.on_commit = on_commit
        q.result = QueueResult(top_slot=target)
        return q

    # -- scheduling (lock held) ------------------------------------------------------------
    def _heavy(self) -> int:
        return sum(1 for b in self.batches.values()
                   if b.state == "active" or (b.state == "ready" and b.blocks))

    def _new_batch(self):
        """The next batch beyond everything made so far (below, backward; above, forward),
        or None when none may be made now."""
        if self._heavy() >= self.window or self.done:
            return None
        if self.kind == FORWARD:
            lo = self.next_lo
            if lo > self.target:
                return None
            hi = min(self.target, (lo // self.bs + 1) * self.bs - 1)
            batch = self.batches[lo] = Batch(lo, hi)
            self.next_lo = hi + 1
            return batch
        if self.next_hi < self.floor:
            return None
        hi = self.next_hi
        if self.to_slot is not None and hi < self.to_slot and (not self.lower_ok or any(
                b.state != "ready" for b in self.batches.values())):
            return None  # below --to-slot only once everything above is in and imported
        lo = max(self.floor, (hi // self.bs) * self.bs)
        batch = self.batches[hi] = Batch(lo, hi)
        self.next_hi = lo - 1
        return batch

    def _adjacent(self, b: Batch) -> Batch | None:
        """The batch after `b` in the queue's direction, made if it is the next one due."""
        if self.kind == FORWARD:
            nb = self.batches.get(b.hi + 1)
            if nb is None and b.hi + 1 == self.next_lo:
                nb = self._new_batch()
        else:
            nb = self.batches.get(b.lo - 1)
            if nb is None and b.lo - 1 == self.next_hi:
                nb = self._new_batch()
        return nb

    def _pick(self):
        """(batches in the queue's direction, peer, link) for a worker, or None.  A range
        peer gets up to `range_batches` adjacent batches in one request."""
        alive = [p for p in self.peers if p.alive]
        if not alive:
            return None
        queued = [b for b in self.batches.values() if b.state == "queued"]
        if queued:  # the one the importer needs first
            batch = min(queued, key=lambda b: b.lo) if self.kind == FORWARD else \
                max(queued, key=lambda b: b.hi)
        else:
            batch = self._new_batch()
        if batch is None:
            return None
        cands = [p for p in alive if p.url not in batch.excluded] or alive
        if len(cands) == len(alive) and batch.excluded:
            batch.excluded.clear()
        peer = min(cands, key=lambda p: (p.busy, -p.score))
        link = None
        if self.kind == BACKWARD and batch.need_anchor and batch.hi == self.cur_top - 1:
            link = Link(self.anchor_block[0], self.anchor_block[1], self.expect)
        group = [batch]
        batch.state = "active"
        if peer.peer.kind == "range":
            top = link.slot if link else batch.hi
            limit = self._group_limit()
            while len(group) < limit:
                nb = self._adjacent(group[-1])
                if nb is None:
                    break
                if nb.state != "queued" or peer.url in nb.excluded or nb.need_anchor:
                    break  # (a batch just made stays queued for the next worker)
                span = nb.hi - batch.lo + 1 if self.kind == FORWARD else top - nb.lo + 1
                if span > MAX_RANGE_SLOTS:
                    break
                nb.state = "active"
                group.append(nb)
        peer.busy += 1
        return group, peer, link

    def _group_limit(self) -> int:
        """Batches per range request: `range_batches`, tapering near the end so the last
        requests are small and the workers finish together (no core idles while one worker
        checks a full-size last group)."""
        queued = sum(1 for b in self.batches.values() if b.state == "queued")
        if self.kind == FORWARD:
            unmade = max(0, (self.target - self.next_lo) // self.bs + 1)
        else:
            end = max(self.floor, self.to_slot or 0)
            unmade = max(0, (self.next_hi - end) // self.bs + 1)
        return max(1, min(self.range_batches, -(-(queued + unmade) // self.nworkers)))

    # -- workers -----------------------------------------------------------------------------
    def _worker(self, i: int) -> None:
        while not self.stop.is_set():
            with self.cond:
                task = None
                while not self.stop.is_set():
                    task = self._pick()
                    if task is not None:
                        break
                    self.worker_map[i] = "w" if not any(p.alive for p in self.peers) else "s"
                    self.cond.wait(0.5)
                if task is None:
                    return
                group, peer, link = task
                self.worker_map[i] = "R"
            group = sorted(group, key=lambda b: b.lo)  # slot order, either direction
            lo, hi = group[0].lo, group[-1].hi
            self.rate.acquire(hi - lo + 1, self.stop)
            try:
                extra = (link.slot,) if link else ()
                try:
                    reply = peer.peer.fetch(lo, hi, extra)
                except PeerFault as exc:
                    if not (exc.kind == "missing" and lo == hi == self.tip):
                        raise
                    reply = PeerReply([], lo - 1)  # the tip alone, not held (a REST 404)
                self.worker_map[i] = "P"
                results = self.verifier.check_group([(b.lo, b.hi) for b in group], reply,
                                                    peer.url, link, tip=self.tip)
            except PeerFault as exc:
                results = [exc] * len(group)
            except Exception as exc:  # our fault, not the peer's: stop, don't hang
                with self.cond:
                    peer.busy -= 1
                    for b in group:
                        b.state = "queued"
                    if self.fatal is None:
                        self.fatal = PeerError(f"slots {lo}..{hi}: internal error while "
                                               f"checking a batch: {type(exc).__name__}: {exc}")
                    self.cond.notify_all()
                return
            with self.cond:
                peer.busy -= 1
                self.worker_map[i] = "Q"
                if peer.peer.answers_json:
                    peer.note_json()
                faults = [r for r in results if isinstance(r, PeerFault)]
                lies = [r for r in faults if r.kind in ("bad", "link")]
                if lies and self.strict and self.fatal is None:
                    self.fatal = _strict_error(lies[0])
                if faults:  # one penalty per reply: the worst of its faults
                    worst = min(faults, key=lambda e: PENALTY.get(e.kind, SCORE_BAD))
                    peer.adjust(PENALTY.get(worst.kind, SCORE_BAD), str(worst))
                for b, r in zip(group, results):
                    if isinstance(r, PeerFault):
                        self._retry(b, peer, str(r))
                    else:
                        b.state = "ready"
                        b.blocks, nbytes = r
                        b.peer = peer
                        peer.bytes += nbytes
                        self.result.bytes += nbytes
                self.cond.notify_all()

    def _retry(self, batch: Batch, peer: PeerState | None, why: str) -> None:
        batch.state = "queued"
        batch.blocks = None
        batch.attempts += 1
        batch.errors.append(why)
        if peer is not None:
            batch.excluded.add(peer.url)
        if batch.attempts >= MAX_ATTEMPTS and self.fatal is None:
            self.fatal = PeerError(f"slots {batch.lo}..{batch.hi}: {batch.attempts} attempts "
                                   f"failed; last: {why}")
        if not any(p.alive for p in self.peers) and self.fatal is None:
            self.fatal = self._no_peers()

    def _no_peers(self) -> PeerError:
        where = f"above slot {self.cur_lo - 1}" if self.kind == FORWARD else \
            f"below slot {self.cur_top}"
        return PeerError(f"no usable peers left {where}, nothing unverified "
                         "was stored: " + "; ".join(
                             f"{p.url} dropped (score {p.score}: {p.reason or 'no reason'})"
                             for p in self.peers))

    # -- writing and blame, either direction (lock held) ----------------------------------
    def _write(self, lo: int, hi: int, blocks: list) -> None:
        """[lo, hi] into the store in one atomic write: `blocks` (one immutable block file;
        LevelDB holds the references), every other slot empty.  The lock is released for the
        write: workers keep handing in batches meanwhile (they only touch queued and active
        batches; the run is ready and only the importer changes it)."""
        if self.deferred and self.pending is None:
            self.pending = self.store.batch()
        wb = self.pending if self.deferred else self.store.batch()
        have = {blk.slot for blk in blocks}
        for s in range(lo, hi + 1):
            if s not in have:
                wb.put_empty(s)
        wb.cover(lo, hi)
        self.cond.release()
        try:
            if blocks:
                wb.put_blocks_file([(b.slot, b.root, b.parent, b.framed) for b in blocks],
                                   f"{lo:012d}-{hi:012d}")
            if self.deferred:
                self.written.extend((b.slot, b.root) for b in blocks)
            else:
                self.store.commit(wb)
        finally:
            self.cond.acquire()
        self._last_commit = time.monotonic()

    def _written(self, n: int, nblocks: int, final: str | None) -> bool:
        """Count a write of `n` slots (`nblocks` blocks; n may be 0 when only bookkeeping
        changed), report progress, wake the workers, and end the job when `final` says why."""
        self.result.slots += n
        self.result.blocks += nblocks
        if n:
            self.result.commits += 1
            if self.progress:
                self.progress(n)
        self.cond.notify_all()  # the window has room again
        if final:
            self.result.stopped = final
            self.done = True
        return True

    def _settle(self, b: Batch, part_lo: int, part_hi: int, whole: bool) -> None:
        """[part_lo, part_hi] of batch `b` was written: blame the earlier attempts at it that
        differ from what was accepted (Lighthouse's attempt hashing), and reward the peer
        that served `b` when all of it was written."""
        accepted = {s: r for s, r in b.claims().items() if part_lo <= s <= part_hi} \
            if b.failed else {}
        for peer, claims in b.failed:
            mine = {s: r for s, r in claims.items() if part_lo <= s <= part_hi}
            if mine != accepted:
                extra = any(accepted.get(s) != r for s, r in mine.items())
                peer.adjust(SCORE_BAD if extra else SCORE_NO_VALUES,
                            f"slots {part_lo}..{part_hi}: served "
                            f"{'blocks not on the chain' if extra else 'too few blocks'}"
                            f" (attempt {claims_hash(mine)}, accepted "
                            f"{claims_hash(accepted)})")
        if whole and b.peer is not None:
            b.peer.adjust(SCORE_GOOD, "")
            b.peer.good_batches += 1

    # -- importer (lock held) ----------------------------------------------------------------
    def _run_from_top(self) -> list[Batch]:
        run, s = [], self.cur_top - 1
        while s >= self.floor:
            b = self.batches.get(s)
            if b is None or b.state != "ready":
                break
            run.append(b)
            s = b.lo - 1
        return run

    def _flush_now(self, run: list) -> bool:
        """Whether to write the ready run now rather than wait for it to grow."""
        if sum(b.slots for b in run) >= self.commit_slots or run[-1].lo <= self.floor:
            return True
        if self.to_slot is not None and run[-1].lo <= self.to_slot:
            return True
        if any(b.need_anchor or b.failed for b in run):
            return True  # settle rewinds and blame at once
        if self._heavy() >= self.window - 1 or time.monotonic() - self._last_commit >= \
                self.commit_every:
            return True
        # nothing below the run is on its way
        return not any(b.state != "ready" for b in self.batches.values()) and \
            self.next_hi < self.floor

    def _import(self) -> bool:
        run = self._run_from_top()
        if not run or not self._flush_now(run):
            return False
        expect = self.expect
        linked: list[Block] = []
        broken_at = None
        for k, b in enumerate(run):
            for blk in reversed(b.blocks):
                if blk.root != expect:
                    broken_at = k
                    break
                linked.append(blk)
                expect = blk.parent
            if broken_at is not None:
                break
        reached_floor = broken_at is None and run[-1].lo == self.floor
        if reached_floor:
            if self.floor == 0:
                if linked and linked[-1].slot == 0:
                    return self._commit(run, linked, 0, final="genesis")
                # slot 0 always has a block: the empty claims below the last link are lies
                return self._rewind(run, linked, len(run) - 1, "no genesis block")
            if expect == self.floor_root:
                return self._commit(run, linked, self.floor, final="era history")
            return self._boundary_mismatch(run, linked, expect)
        if broken_at is not None:
            breaker = run[broken_at]
            if linked:
                self._commit(run, linked, linked[-1].slot, final=None)
                if self.done:
                    return True
                run = self._run_from_top()
                broken_at = next((i for i, b in enumerate(run) if b is breaker), len(run) - 1)
            return self._rewind(run, [], broken_at, "does not link")
        if linked:
            return self._commit(run, linked, linked[-1].slot, final=None)
        return False

    def _commit(self, run, linked, lo, final) -> bool:
        """Write [lo, cur_top - 1] (blocks `linked`, the rest empty) in one atomic batch."""
        hi = self.cur_top - 1
        if self.to_slot is not None and final is None and linked and linked[-1].slot <= self.to_slot:
            final = f"--to-slot {self.to_slot}"
        self._write(lo, hi, linked)
        for b in run:
            if b.hi < lo:
                break
            self._settle(b, max(b.lo, lo), b.hi, whole=b.lo >= lo)
            del self.batches[b.hi]
            if b.lo < lo:  # the unproven rest stays as a claim of the same peer
                rest = Batch(b.lo, lo - 1, state="ready", attempts=b.attempts,
                             excluded=set(b.excluded), blocks=[], peer=b.peer,
                             failed=[(p, {s: r for s, r in c.items() if s < lo})
                                     for p, c in b.failed])
                self.batches[rest.hi] = rest
        self.cur_top = lo
        if linked:
            self.anchor_block = (linked[-1].slot, linked[-1].root)
            self.expect = linked[-1].parent
        self.result.oldest_slot = lo
        return self._written(hi - lo + 1, len(linked), final)

    def _rewind(self, run, linked, upto, why) -> bool:
        """Batches run[0..upto] (all of `run` when upto is None) could be lying: fetch them
        again from other peers; the top one includes the anchor block."""
        if not run:
            return False
        suspects = run if upto is None else run[:upto + 1]
        for b in suspects:
            if b.peer is not None:
                b.failed.append((b.peer, b.claims()))
            self._retry(b, b.peer, f"slots {b.lo}..{b.hi}: chain {why}")
            b.peer = None
        suspects[0].need_anchor = True
        return True

    def _boundary_mismatch(self, run, linked, expect) -> bool:
        era_root = self.floor_root
        lowest = linked[-1].slot if linked else self.cur_top
        msg = (f"slot {self.floor - 1}: the backfilled chain's parent {hex0x(expect)} (below "
               f"the block at slot {lowest}) is not the front-filled era root "
               f"{hex0x(era_root)} at that slot: the era history or the checkpoint is of "
               "another chain; nothing of the last run was written")
        # Empty claims between the lowest linked block and the floor might be withheld
        # blocks: have another peer confirm them before calling the history corrupt.
        claimers = [b for b in run if b.lo < lowest]
        key = claims_hash({b.lo: b.hi.to_bytes(8, "little") for b in claimers})
        votes = self.boundary_votes.setdefault(key, set())
        votes.update(b.peer.url for b in claimers if b.peer is not None)
        alive = [p for p in self.peers if p.alive]
        if not claimers or len(votes) >= 2 or len(alive) <= 1 or \
                all(p.url in votes for p in alive):
            self.fatal = VerificationError(msg)
            return True
        for b in claimers:
            if b.peer is not None:
                b.failed.append((b.peer, b.claims()))
            self._retry(b, b.peer, "confirming empty slots above the era boundary")
            b.attempts -= 1  # not a failure
            b.peer = None
        return True

    # -- forward importer (lock held) --------------------------------------------------------
    def _run_from_bottom(self) -> list[Batch]:
        """The ready batches from the lowest unwritten slot up, at most `commit_slots` (one
        write's worth; a batch's unproven rest counts with the batch after it)."""
        run, s, n = [], self.cur_lo, 0
        while s <= self.target and n < self.commit_slots:
            b = self.batches.get(s)
            if b is None or b.state != "ready":
                break
            run.append(b)
            n += b.slots if b.blocks else 0
            s = b.hi + 1
        return run

    def _flush_forward(self, run: list) -> bool:
        if sum(b.slots for b in run) >= self.commit_slots or run[-1].hi >= self.target:
            return True
        if any(b.failed for b in run):
            return True  # settle blame at once
        if self.prove_first:
            return False  # nothing is written before the run reaches the target
        if self._heavy() >= self.window - 1 or time.monotonic() - self._last_commit >= \
                self.commit_every:
            return True
        return not any(b.state != "ready" for b in self.batches.values()) and \
            self.next_lo > self.target

    def _import_forward(self) -> bool:
        """Walk the ready run upwards: each block's parent_root must be the root below it
        (and, with `trusted`, each block and empty slot must have its trusted root).
        The part up to the newest linked block is written; the empty slots above it wait
        for a block that links over them, or for the run to end at `target_root`."""
        run = self._run_from_bottom()
        if not run or not self._flush_forward(run):
            return False
        expect, head = self.expect, self.head_slot
        linked: list[Block] = []
        broken_at, detail = None, None
        for k, b in enumerate(run):
            for blk in b.blocks:
                if self.trusted is not None:  # the empty slots below it, then the block
                    detail = self._untrusted(head, blk.slot - 1, expect) or (
                        self._untrusted(blk.slot - 1, blk.slot, blk.root)
                        if expect is None or blk.parent == expect else None)
                    if detail is not None:
                        break
                if (expect is not None and blk.parent != expect) or \
                        (expect == ZERO_ROOT and blk.slot != 0):
                    broken_at = k  # (from genesis the first block must be slot 0's)
                    break
                linked.append(blk)
                expect, head = blk.root, blk.slot
            if broken_at is not None or detail is not None:
                break
        if detail is not None:
            return self._not_finalized(run, linked, detail)
        if broken_at is None and run[-1].hi == self.target:
            end = self.target if self.tip is None or head == self.tip else self.tip - 1
            if self.trusted is not None:
                detail = self._untrusted(head, end, expect)
                if detail is not None:
                    return self._not_finalized(run, linked, detail)
            if self.target_root is None or expect == self.target_root:
                return self._commit_forward(run, linked, self.target, final="target")
            if self.tip is not None and head != self.tip:
                # no block at the finalized slot and the chain does not end at its root:
                # the source does not hold that block; store the chain below it
                self.unheld_slot = self.tip
                return self._commit_forward(run, linked, self.tip - 1, final="unheld tip")
            return self._broken_forward(run, linked, len(run) - 1,
                                        f"does not end at {self.target_what}")
        if broken_at is not None:
            return self._broken_forward(run, linked, broken_at, "does not link")
        if linked and not self.prove_first:
            return self._commit_forward(run, linked, linked[-1].slot, final=None)
        return False

    def _not_finalized(self, run, linked, detail) -> bool:
        """`_broken_forward` at the batch holding `detail`'s slot (see `_untrusted`)."""
        at = next(i for i, b in enumerate(run) if b.hi >= detail[0])
        return self._broken_forward(run, linked, at, "is not the finalized chain", detail)

    def _untrusted(self, after: int | None, upto: int, root: bytes | None):
        """(slot, trusted root, what the run has) for the first slot in (after, upto] whose
        trusted root is known and is not `root` (the latest root of the run there); None
        when they all agree.  `after` None: from the lowest unwritten slot."""
        if root is None:
            return None  # nothing stored below: the first block has nothing to agree with
        lo = self.cur_lo if after is None else max(after + 1, self.cur_lo)
        for s in range(lo, upto + 1):
            want = self.trusted(s)
            if want is not None and want != root:
                return s, want, root
        return None

    def _broken_forward(self, run, linked, broken_at, why, detail=None) -> bool:
        """The run does not link at run[broken_at] (or does not end at `target_root`, or
        `detail` names a slot whose trusted root it does not have):
        strict, that is the error and nothing of the run is written; else the linked part is
        written and the batches that could be lying (the unproven empty claims below the
        break, and the break) are fetched again from other peers."""
        breaker = run[broken_at]
        if self.strict:
            url = breaker.peer.url if breaker.peer is not None else "?"
            prev = linked[-1].root if linked else self.expect
            below = {x.slot for x in linked}
            blk = next((x for x in breaker.blocks if x.slot not in below), None)
            if detail is not None:
                slot, want, got = detail
                what = (f"block {hex0x(got)}" if any(x.slot == slot for x in breaker.blocks)
                        else f"no block (the latest root is {hex0x(got)})")
                self.fatal = VerificationError(
                    f"{url} slots {breaker.lo}..{breaker.hi}: slot {slot}: {what}, but the "
                    f"finalized chain's block_roots name {hex0x(want)} there (a chain that is "
                    f"not finalized); nothing of slots {self.cur_lo}..{breaker.hi} was "
                    "written")
            elif why == "does not link" and blk is not None:
                self.fatal = VerificationError(
                    f"{url} slots {breaker.lo}..{breaker.hi}: slot {blk.slot}: parent_root "
                    f"{hex0x(blk.parent)} does not link to the previous block "
                    f"{hex0x(prev or ZERO_ROOT)}; nothing of slots {self.cur_lo}.."
                    f"{breaker.hi} was written")
            else:
                self.fatal = VerificationError(
                    f"{url} slots {self.cur_lo}..{self.target}: the chain ends at "
                    f"{hex0x(prev or ZERO_ROOT)}, not at {self.target_what} "
                    f"{hex0x(self.target_root)}; nothing of these slots was written")
            return True
        if linked and not self.prove_first:
            self._commit_forward(run, linked, linked[-1].slot, final=None)
            if self.done:
                return True
            run = self._run_from_bottom()
            broken_at = next((i for i, b in enumerate(run) if b.hi >= breaker.lo),
                             len(run) - 1)
        for b in run[:broken_at + 1]:
            if b.peer is not None:
                b.failed.append((b.peer, b.claims()))
            self._retry(b, b.peer, f"slots {b.lo}..{b.hi}: chain {why}")
            b.peer = None
        return True

    def _commit_forward(self, run, linked, hi, final) -> bool:
        """Write [cur_lo, hi] (blocks `linked` up to hi, the rest empty) in one atomic batch."""
        lo = self.cur_lo
        blocks = [b for b in linked if b.slot <= hi]
        if hi >= lo:
            self._write(lo, hi, blocks)
            self._committed.append((lo, hi))
        for b in run:
            if b.lo > hi:
                break
            self._settle(b, b.lo, min(b.hi, hi), whole=b.hi <= hi)
            del self.batches[b.lo]
            if b.hi > hi:  # the unproven rest stays as a claim of the same peer
                rest = Batch(hi + 1, b.hi, state="ready", attempts=b.attempts,
                             excluded=set(b.excluded), peer=b.peer,
                             blocks=[x for x in b.blocks if x.slot > hi],
                             failed=[(p, {s: r for s, r in c.items() if s > hi})
                                     for p, c in b.failed])
                self.batches[rest.lo] = rest
        self.cur_lo = hi + 1
        if blocks:
            self.expect = blocks[-1].root
            self.head_slot = blocks[-1].slot
        if self.result.oldest_slot is None:
            self.result.oldest_slot = lo
        return self._written(max(0, hi - lo + 1), len(blocks), final)

    # -- status ----------------------------------------------------------------------------
    def total_slots(self) -> int:
        if self.kind == FORWARD:
            return max(1, self.target - self.start0 + 1)
        low = self.floor if self.to_slot is None else max(self.floor, self.to_slot)
        return max(1, self.top0 - low)

    def status_line(self, now: float) -> str:
        done = self.cur_lo - self.start0 if self.kind == FORWARD else self.top0 - self.cur_top
        dt = max(1e-6, now - self._last_status)
        inst = (done - self._last_done) / dt
        self._speed = inst if self._speed == 0 else 0.7 * self._speed + 0.3 * inst
        self._last_status, self._last_done = now, done
        total = self.total_slots()
        left = max(0, total - done)
        if self._speed > 0:
            secs = int(left / self._speed)
            eta = f"{secs // 3600:02d}h{secs % 3600 // 60:02d}m{secs % 60:02d}s"
        else:
            eta = "--h--m--s"
        return (f"{eta} ({100 * min(done, total) / total:.2f}%) {self._speed:.1f} slots/s "
                f"({''.join(self.worker_map)}:"
                f"{self.cur_lo if self.kind == FORWARD else self.cur_top})")

    # -- run -------------------------------------------------------------------------------
    def run(self) -> QueueResult:
        t0 = time.monotonic()
        self._last_status = t0
        if (self.cur_lo > self.target) if self.kind == FORWARD else (
                self.cur_top <= self.floor or (self.to_slot is not None and
                                               self.anchor_block[0] <= self.to_slot)):
            self.result.stopped = "nothing to do"
            return self.result
        keep_freed_memory()  # blocks come and go by the hundred: reuse their memory
        threads = [threading.Thread(target=self._worker, args=(i,), daemon=True,
                                    name=f"sync-{self.kind}-{i}") for i in range(self.nworkers)]
        for t in threads:
            t.start()
        try:
            while True:
                importer = self._import_forward if self.kind == FORWARD else self._import
                with self.cond:
                    progressed = self.fatal is None and not self.done and importer()
                    committed, self._committed = self._committed, []
                    if self.kind == BACKWARD and self.to_slot is not None and \
                            not progressed and not self.lower_ok and not self.done \
                            and self.next_hi < self.to_slot and \
                            all(b.state == "ready" for b in self.batches.values()):
                        # everything down to --to-slot is in and imported (this pass
                        # imported nothing more: a long run is written in several passes)
                        # and did not reach a block at or below it: batches below may be
                        # fetched now
                        self.lower_ok = True
                        self.cond.notify_all()
                    fatal, done = self.fatal, self.done
                if self.on_commit is not None:
                    # after each write, before the next (the same order on every run: pull's
                    # era states come right after their era's blocks); outside the lock, so
                    # the workers go on meanwhile
                    for lo, hi in committed:
                        self.on_commit(lo, hi)
                if progressed and fatal is None and not done:
                    continue  # import more at once
                with self.cond:
                    if fatal is not None:
                        raise fatal
                    if done:
                        break
                    if not any(p.alive for p in self.peers):
                        raise self._no_peers()
                    self.cond.wait(0.2)
                now = time.monotonic()
                if self.status and now - self._last_status >= self.status_every:
                    with self.cond:
                        line = self.status_line(now)
                    self.status(line)
        finally:
            self.stop.set()
            with self.cond:
                self.cond.notify_all()
            for t in threads:
                t.join(timeout=0.5)
            for p in self.peers:
                p.peer.close()
            self.result.elapsed = time.monotonic() - t0
            self.result.peers = [p.to_dict() for p in self.peers]
        return self.result
