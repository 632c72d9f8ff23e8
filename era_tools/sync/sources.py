"""Block sources for the sync queue: where blocks come from, behind one protocol.

    src = make_source("http://127.0.0.1:5052", net)     # a beacon node (REST) or `era serve`
    src = make_source("/archive/mainnet", net)          # era files (a directory or s3:// prefix)
    reply = src.fetch(first, last)                      # PeerReply: RawBlocks in slot order

A `BlockSource` answers "the blocks of slots [first, last]" with a `PeerReply` (the blocks it
has, in slot order, and the last slot its answer covers) or raises `PeerFault` (kind "bad",
"missing" or "timeout", which the queue scores).  `kind` tells the queue how to ask: "range"
sources take many adjacent batches in one request, "rest" ones a batch at a time.  The queue
(era_tools.sync.queue) checks every answer the same way whatever the source: slots, fork,
roots, links, signatures.

Implementations: `peers.BackfillPeer` (a standard Beacon API node, one GET per slot; an
era_tools server's range endpoint) and `EraFileSource` here (era files, read where they lie,
local or in object storage: blocks come out snappy-framed, stored as they are).

Knows nothing of stores, batches or scores.
"""

from __future__ import annotations

import os
from typing import Protocol

from .. import framing
from ..era import EraReader, era_files_in, parse_era_file_name
from ..errors import EraToolsError
from .peers import (MAX_BLOCK_BYTES, MIN_BLOCK_BYTES, BackfillPeer, PeerFault, PeerReply,
                    RawBlock)


class BlockSource(Protocol):
    url: str              # where, in messages and scores
    kind: str | None      # "range" (many slots per request) or "rest" (a batch per request)
    answers_json: bool    # answers converted from JSON (slower; ranked below SSZ sources)

    def fetch(self, first: int, last: int, extra_slots=()) -> PeerReply: ...

    def close(self) -> None: ...


def is_era_location(spec: str) -> bool:
    """Whether `spec` names era files (a directory, an .era file, or an s3:// URL) rather
    than an HTTP server."""
    return spec.startswith("s3://") or not spec.startswith(("http://", "https://"))


def make_source(spec: str, network, timeout: float = 30.0, **http) -> BlockSource:
    """The block source `spec` names: era files (see is_era_location), else an HTTP server
    (`detect()` it before use to choose its range endpoint or the standard route; `http`:
    more BackfillPeer arguments, e.g. rest_concurrency, retry)."""
    if is_era_location(spec):
        return EraFileSource(spec, network)
    from ..ssz.json import json_to_ssz_for

    return BackfillPeer(spec, timeout=timeout, json_to_ssz=json_to_ssz_for(network.preset_base),
                        **http)


class EraFileSource:
    """Blocks from era files: era N holds the blocks of slots [(N-1)*SPHR, N*SPHR - 1].
    Files are found by name once; each is opened when a request reaches it (its slot index
    read and checked against the file size by EraReader).  A file that is malformed, or
    whose index contradicts its name, makes the reply bad (the queue drops the source); a
    slot beyond the last file, or in a missing era, is "missing"."""

    kind = "range"
    answers_json = False

    def __init__(self, location: str, network):
        self.url = location.rstrip("/") if location.startswith("s3://") else \
            os.path.abspath(location)
        self.network = network
        sphr = network.slots_per_historical_root
        self._eras: dict[int, str] = {}
        self._error: str | None = None
        try:
            files = era_files_in([location])
        except (OSError, EraToolsError) as exc:
            files, self._error = [], f"{self.url}: cannot list era files: {exc}"
        for path in files:
            parsed = parse_era_file_name(os.path.basename(path))
            if parsed is None or parsed[0] != network.config_name or parsed[1] == 0:
                continue  # another network's file, or era 0 (no blocks)
            self._eras.setdefault(parsed[1], path)
        self._numbers = sorted(self._eras)
        if not self._numbers and self._error is None:
            self._error = f"{self.url}: no {network.config_name} era files here"
        self._sphr = sphr
        self.last_slot = (self._numbers[-1] * sphr - 1) if self._numbers else -1

    def __repr__(self) -> str:
        return f"EraFileSource({self.url}, {len(self._numbers)} eras)"

    def genesis_validators_root(self) -> bytes | None:
        """From the newest file's state (None when there is no file or it is unreadable)."""
        if not self._numbers:
            return None
        try:
            with EraReader(self._eras[self._numbers[-1]]) as r:
                return r.state_head(self._sphr).genesis_validators_root
        except (OSError, EraToolsError):
            return None

    def spec(self) -> dict | None:
        return None

    def detect(self, probe_slot: int) -> str:
        return self.kind

    def fetch(self, first: int, last: int, extra_slots=()) -> PeerReply:
        if self._error is not None:
            raise PeerFault(self._error, "missing")
        hi = max([last, *extra_slots])
        sphr = self._sphr
        blocks, nbytes, served = [], 0, first - 1
        era = first // sphr + 1
        while served < hi:
            path = self._eras.get(era)
            if path is None:
                break  # a missing era: the reply covers up to the slot before it
            lo, top = max(first, (era - 1) * sphr), min(hi, era * sphr - 1)
            where = f"{path}: slots {lo}..{top}"
            try:
                with EraReader(path) as r:
                    if r.start_slot != (era - 1) * sphr or r.state_slot != era * sphr:
                        raise PeerFault(f"{where}: the file holds slots {r.start_slot}.."
                                        f"{r.state_slot}, its name says era {era}")
                    for slot in range(lo, top + 1):
                        framed = r.block_framed(slot)
                        if framed is None:
                            continue
                        length = framing.uncompressed_length(framed, where=f"{path}: slot {slot}")
                        # bounded before anything inflates it
                        if not MIN_BLOCK_BYTES <= length <= MAX_BLOCK_BYTES:
                            raise PeerFault(
                                f"{path}: slot {slot}: block of {length} bytes announced, "
                                f"outside [{MIN_BLOCK_BYTES}, {MAX_BLOCK_BYTES}]")
                        blocks.append(RawBlock(slot=slot, framed=framed, length=length))
                        nbytes += len(framed)
            except OSError as exc:
                raise PeerFault(f"{where}: {exc.strerror or exc}", "missing") from exc
            except PeerFault:
                raise
            except EraToolsError as exc:
                raise PeerFault(f"{where}: {exc}") from exc
            served = top
            era += 1
        if served < first:
            raise PeerFault(f"{self.url}: no era file holds slot {first} (era "
                            f"{first // sphr + 1}; the newest here is "
                            f"{self._numbers[-1] if self._numbers else 'none'})", "missing")
        return PeerReply(blocks, served, nbytes)

    def close(self) -> None:
        pass
