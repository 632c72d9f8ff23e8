"""Honest and hostile backfill peers: real HTTP servers on 127.0.0.1 (subclasses of the
fixture Beacon API server in tests/beacon_api_server.py).

    FixtureNode      honest; also answers state/block id `finalized` / `head`
    OtherChainNode   blocks of another chain: the fixture's blocks with a changed graffiti,
                     re-linked and *validly re-signed* with the interop keys, so only the link
                     to the trusted anchor can expose them
    EmptyNode        404 for every block (claims every slot is empty)
    StallNode        accepts block requests and answers after `stall` seconds
    GarbageNode      200 with random bytes, and every 4th answer an oversized body
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from beacon_api_server import BeaconApiServer

_ALT: dict = {}
_ALT_LOCK = threading.Lock()


class FixtureNode(BeaconApiServer):
    def _route(self, h, n):
        parts = h.path.split("?")[0].strip("/").split("/")
        fin = self.chain.finalized_epoch * int(self.chain.spec["SLOTS_PER_EPOCH"])
        if parts and parts[-1] in ("finalized", "head") and (
                parts[:5] == ["eth", "v2", "debug", "beacon", "states"] or
                parts[:4] == ["eth", "v2", "beacon", "blocks"]):
            h.path = "/" + "/".join(parts[:-1] + [str(fin)])
        return super()._route(h, n)


def _block_parts(path):
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) == 5 and parts[:4] == ["eth", "v2", "beacon", "blocks"]:
        try:
            return int(parts[4])
        except ValueError:
            return None
    return None


def interop_secret(index: int) -> int:
    from era_tools.bls import CURVE_ORDER

    return int.from_bytes(hashlib.sha256(index.to_bytes(32, "little")).digest(),
                          "little") % CURVE_ORDER


def alt_chain(chain, network) -> dict:
    """slot -> (fork, ssz) of a validly signed fork of the fixture chain (cached)."""
    key = str(chain.dir)
    with _ALT_LOCK:
        if key in _ALT:
            return _ALT[key]
        from era_tools import bls, ssz
        from era_tools.signing import (DOMAIN_BEACON_PROPOSER, compute_domain,
                                       compute_signing_root)
        from era_tools.ssz.fast import hash_tree_root_bytes

        out = {}
        parent = None
        for slot in sorted(chain.blocks):
            got = chain.block_ssz(slot)
            if got is None:
                continue
            fork, data = got
            d = bytearray(data)
            if slot == 0:
                parent = hash_tree_root_bytes(
                    ssz.types_for(fork, "minimal").BeaconBlock, memoryview(bytes(d))[100:])
                out[slot] = (fork, bytes(d))
                continue
            d[116:148] = parent
            d[352:384] = hashlib.sha256(b"another chain" + slot.to_bytes(8, "little")).digest()
            root = hash_tree_root_bytes(ssz.types_for(fork, "minimal").BeaconBlock,
                                        memoryview(bytes(d))[100:])
            proposer = int.from_bytes(d[108:116], "little")
            version = network.fork_at_epoch(slot // network.slots_per_epoch).version
            dom = compute_domain(DOMAIN_BEACON_PROPOSER, version,
                                 network.genesis_validators_root)
            d[4:100] = bls.sign(interop_secret(proposer), compute_signing_root(root, dom))
            out[slot] = (fork, bytes(d))
            parent = root
        _ALT[key] = out
        return out


class OtherChainNode(FixtureNode):
    def __init__(self, *a, network=None, **kw):
        super().__init__(*a, **kw)
        self.alt = alt_chain(self.chain, network)

    def _route(self, h, n):
        slot = _block_parts(h.path)
        if slot is not None:
            got = self.alt.get(slot)
            if got is None:
                return self._not_found(h, f"block at slot {slot}")
            return self._send(h, 200, got[1], "application/octet-stream",
                              {"Eth-Consensus-Version": got[0]})
        return super()._route(h, n)


class EmptyNode(FixtureNode):
    def _route(self, h, n):
        if _block_parts(h.path) is not None:
            return self._not_found(h, "block")
        return super()._route(h, n)


class StallNode(FixtureNode):
    stall = 3.0

    def _route(self, h, n):
        if _block_parts(h.path) is not None:
            time.sleep(self.stall)
        return super()._route(h, n)


class GarbageNode(FixtureNode):
    def _route(self, h, n):
        if _block_parts(h.path) is not None:
            if n % 4 == 0:  # oversized: more than any block may be
                return self._send(h, 200, b"\x00" * (11 * 1024 * 1024),
                                  "application/octet-stream",
                                  {"Eth-Consensus-Version": "capella"})
            body = os.urandom(300 + n % 500)
            return self._send(h, 200, body, "application/octet-stream",
                              {"Eth-Consensus-Version": "capella"})
        return super()._route(h, n)


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


class RangeNode(FixtureNode):
    """An era_tools range peer (`/era_tools/v1/blocks_by_range`, BeaconBlocksByRange chunks)
    over the fixture chain, besides the Beacon API.  Records the `start_slot` and `count` of
    every range request in `range_starts` and `range_counts`.  Lies on request, for slots with `slot % 32 in lie_slots`:
    `lie = "badsig"` flips a signature byte (a well-formed block whose signature fails);
    `lie = "omit"` leaves the block out (claims the slot is empty);
    `lie = "crc"` flips a byte of the parent_root inside the snappy stream (its CRC fails, but a
    decoder that reads only the header without the CRC would see another parent)."""

    lie: str | None = None
    lie_slots = frozenset({5})

    def __init__(self, *a, network=None, **kw):
        super().__init__(*a, **kw)
        self.network = network
        self.range_counts: list[int] = []
        self.range_starts: list[int] = []

    def _route(self, h, n):
        from era_tools import framing
        from era_tools.signing import compute_fork_data_root

        path, _, query = h.path.partition("?")
        if path != "/era_tools/v1/blocks_by_range":
            return super()._route(h, n)
        q = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        start, count = int(q["start_slot"]), int(q["count"])
        self.range_counts.append(count)
        self.range_starts.append(start)
        last = min(start + count - 1, max(self.chain.blocks))
        net = self.network
        body = bytearray()
        for slot in range(start, last + 1):
            got = self.chain.block_ssz(slot)
            if got is None:
                continue
            data = bytearray(got[1])
            if self.lie in ("badsig", "omit") and slot % 32 in self.lie_slots and slot > 0:
                if self.lie == "omit":
                    continue
                data[10] ^= 0x01  # inside the 96-byte signature at offset 4
            version = net.fork_at_epoch(slot // net.slots_per_epoch).version
            framed = framing.compress(bytes(data))
            if self.lie == "crc" and slot % 32 in self.lie_slots and slot > 0:
                framed = bytearray(framed)
                framed[framed.index(bytes(data[116:148])) + 7] ^= 0x01
                framed = bytes(framed)
            body += b"\x00" + compute_fork_data_root(version, net.genesis_validators_root)[:4]
            body += _uvarint(len(data)) + framed
        return self._send(h, 200, bytes(body), "application/octet-stream",
                          {"Era-Tools-Last-Slot": str(last)})
