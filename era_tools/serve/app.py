"""The `era serve` aiohttp application.

    app = make_app(era_dir, network, store=None)
    web.run_app(app, host=..., port=...)

Routes (docs/protocol.md has the details):
    /                         nginx-autoindex-shaped HTML listing
    /index.json               name, era, size, sha256, first/last slot, forks (+ errors)
    /checksums.txt            sha256sum lines, cached per (size, mtime)
    /<file>                   the era files (HEAD, single Range, ETag, Last-Modified, sendfile)
                              and any .era1 files, as plain files (not opened or checked)
    /eth/...                  a Beacon API subset answered from the era files and the store
    /era_tools/v1/blocks_by_range?start_slot=&count=   libp2p BeaconBlocksByRange chunks
    /metrics                  Prometheus

Safety: names are looked up in the catalog, never joined onto a path; every query parameter is
parsed strictly (bad -> 400); unexpected failures inside a handler are logged and answered 500
with a JSON message (the server keeps serving).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import time
from datetime import datetime, timezone
from urllib.parse import quote

from aiohttp import web

from .. import framing
from ..config import Network
from ..errors import EraToolsError, FormatError, hex0x
from ..signing import compute_fork_data_root
from ..ssz import layout
from .catalog import Catalog, uvarint
from .metrics import CONTENT_TYPE_LATEST, Stats, new_registry, render

log = logging.getLogger("era_tools.serve")

MAX_RANGE_COUNT = 1024
INLINE_DECOMPRESS = 256 * 1024
SSZ = "application/octet-stream"
JSON = "application/json"
RESULT_OK, RESULT_INVALID, RESULT_SERVER_ERROR, RESULT_UNAVAILABLE = 0, 1, 2, 3
U64_MAX = 2**64 - 1

CATALOG = web.AppKey("catalog", Catalog)
STATE = web.AppKey("state", dict)


# --------------------------------------------------------------------------------------------
# helpers


def _json(obj, status=200, headers=None) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type=JSON,
                        headers=headers)


def api_error(status: int, message: str) -> web.Response:
    return _json({"code": status, "message": message}, status=status)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def wants_ssz(request: web.Request) -> bool:
    """True when the Accept header prefers application/octet-stream over JSON."""
    accept = request.headers.get("Accept", "")
    if accept == SSZ:
        return True
    if not accept or accept == JSON or accept == "*/*":
        return False
    best_ssz = best_json = -1.0
    for part in accept.split(","):
        bits = [b.strip() for b in part.split(";")]
        mt = bits[0].lower()
        q = 1.0
        for b in bits[1:]:
            if b.lower().startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if mt == SSZ:
            best_ssz = max(best_ssz, q)
        elif mt in (JSON, "application/*", "*/*"):
            best_json = max(best_json, q - (0.001 if mt != JSON else 0))
    return best_ssz > 0 and best_ssz >= best_json


def _parse_u64(text: str, what: str) -> int:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 20:
        raise ApiError(400, f"{what} must be a decimal integer, got {text[:40]!r}")
    n = int(text)
    if n > U64_MAX:
        raise ApiError(400, f"{what} {n} does not fit in uint64")
    return n


def _parse_root(text: str) -> bytes | None:
    if text.startswith("0x") and len(text) == 66:
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            raise ApiError(400, f"invalid block id {text[:80]!r}") from None
    return None


def _http_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


# --------------------------------------------------------------------------------------------
# data sources: era files first, then the store


class Sources:
    """Block and state lookups over the catalog and an optional ChainStore."""

    def __init__(self, catalog: Catalog, network: Network, store=None):
        self.catalog = catalog
        self.network = network
        self.store = store
        self._digests: dict[bytes, bytes] = {}
        self._checkpoints: dict[tuple, tuple[int, bytes]] = {}

    def fork_digest(self, slot: int) -> bytes:
        version = self.network.fork_at_slot(slot).version
        d = self._digests.get(version)
        if d is None:
            gvr = self.network.genesis_validators_root or b"\x00" * 32
            d = self._digests[version] = compute_fork_data_root(version, gvr)[:4]
        return d

    # -- blocks ----------------------------------------------------------------------------
    def head_slot(self) -> int | None:
        best = None
        e = self.catalog.latest()
        if e is not None:
            best = e.last_slot if e.last_slot is not None else e.state_slot
        if self.store is not None:
            a = self.store.anchor
            if a.newest_slot is not None and (best is None or a.newest_slot > best):
                best = a.newest_slot
        return best

    def finalized(self) -> tuple[int, bytes, int] | None:
        """The archive's finalized checkpoint (everything served is final) as (epoch, block
        root, the block's slot), or None when nothing is served.  It covers everything
        served: the epoch of the newest state, or of the newest epoch start among the served
        blocks when those reach further (`era serve --db`).  At the newest state the root is
        its latest_block_header's (the block at the state's own slot begins the next era, so
        an archive of era files does not hold it)."""
        spe = self.network.slots_per_epoch
        head, state_slot = self.head_slot(), self.latest_state_slot()
        if head is None and state_slot is None:
            return None
        if state_slot is None or (head is not None and head // spe * spe > state_slot):
            slot = head // spe * spe
            found = self.latest_block_at_or_below(slot)
            if found is None:
                return None
            return slot // spe, found[1], found[0]
        got = self._state_checkpoint(state_slot)
        if got is None:
            return None
        return state_slot // spe, got[1], got[0]

    def latest_block_at_or_below(self, slot: int) -> tuple[int, bytes] | None:
        for s in range(slot, max(-1, slot - 4 * self.network.slots_per_historical_root), -1):
            r = self.block_root(s)
            if r is not None:
                return s, r
        return None

    def _state_checkpoint(self, slot: int) -> tuple[int, bytes] | None:
        """(slot, root) of the block in the state at `slot`'s latest_block_header (cached:
        when that block is at the state's own slot, its root needs the state's root)."""
        framed = self.state_framed(slot)
        if framed is None:
            return None
        head = framing.decompress_prefix(framed, layout.STATE_HEADER.stop,
                                         where=f"state at slot {slot}")
        h = bytes(head[layout.STATE_HEADER])
        key = (slot, h)
        got = self._checkpoints.get(key)
        if got is None:
            state_root = layout.ZERO_ROOT
            if h[layout.HEADER_STATE_ROOT] == layout.ZERO_ROOT:  # a block at `slot` itself
                from ..verify import state_root as compute_state_root

                state_root = compute_state_root(
                    framing.decompress(framed, where=f"state at slot {slot}"),
                    self.network.fork_name_at_slot(slot), self.network.preset_base)
            bslot, _, root = layout.header_root(head, state_root)
            got = self._checkpoints[key] = (bslot, root)
            if len(self._checkpoints) > 64:
                self._checkpoints.pop(next(iter(self._checkpoints)))
        return got

    def resolve_block_id(self, block_id: str) -> tuple[int, bytes | None]:
        """(slot, root or None) for a block id; raises ApiError 400/404."""
        if block_id == "finalized":
            cp = self.finalized()
            if cp is None:
                raise ApiError(404, "no blocks served")
            _, root, slot = cp
            if self.block_framed(slot) is None:
                raise ApiError(404, f"the finalized block (slot {slot}, root {hex0x(root)}) "
                                    "begins the next era: this archive holds its state "
                                    "(states/finalized), not the block")
            return slot, root
        if block_id == "head":
            slot = self.head_slot()
            found = None if slot is None else self.latest_block_at_or_below(slot)
            if found is None:
                raise ApiError(404, "no blocks served")
            return found[0], found[1]
        if block_id == "genesis":
            return 0, None
        if block_id == "justified":
            raise ApiError(400, "block id 'justified' is not served by an archive")
        root = _parse_root(block_id)
        if root is not None:
            slot = self.catalog.slot_of_root(root)
            if slot is None and self.store is not None:
                summ = self.store.get_summary(root)
                if summ is not None:
                    slot = summ[0]
            if slot is None:
                raise ApiError(404, f"block {block_id} not found")
            return slot, root
        if block_id.startswith("0x"):
            raise ApiError(400, f"invalid block id {block_id[:80]!r}")
        return _parse_u64(block_id, "block id"), None

    def block_framed(self, slot: int) -> bytes | None:
        e = self.catalog.entry_for_block_slot(slot)
        if e is not None:
            return self.catalog.opened(e).block_framed(slot)
        if self.store is not None:
            root = self.store.index_entry(slot)
            if root:
                return self.store.get_block_framed(root)
        return None

    def block_root(self, slot: int) -> bytes | None:
        e = self.catalog.entry_for_block_slot(slot)
        if e is not None:
            return self.catalog.block_root(slot)
        if self.store is not None:
            root = self.store.index_entry(slot)
            return bytes(root) if root else None
        return None

    def covered_end(self, start: int, count: int) -> int:
        """The last slot of the contiguous run [start, start+count) this server holds
        (start - 1 when it holds none of it)."""
        slot, end = start, start + count
        sphr = self.network.slots_per_historical_root
        while slot < end:
            e = self.catalog.entry_for_block_slot(slot)
            if e is not None:
                slot = min(end, e.state_slot)
                continue
            stop = min(end, (slot // sphr + 1) * sphr)
            if self.store is not None:
                held = next((b for a, b in self.store.covered_ranges() if a <= slot <= b), None)
                if held is not None:
                    slot = min(stop, held + 1)
                    if slot == stop:
                        continue
            break
        return slot - 1

    def covers_block_slot(self, slot: int) -> bool:
        if self.catalog.entry_for_block_slot(slot) is not None:
            return True
        return self.store is not None and self.store.index_entry(slot) is not None

    def iter_range(self, start: int, count: int):
        """(slot, framed view) for non-empty slots in [start, start+count) that are covered,
        stopping at the first slot neither source covers.  Returns via StopIteration the last
        covered slot (or start-1)."""
        slot = start
        end = start + count  # exclusive
        sphr = self.network.slots_per_historical_root
        while slot < end:
            e = self.catalog.entry_for_block_slot(slot)
            if e is not None:
                era_end = min(end, e.state_slot)
                yield from self.catalog.framed_blocks(e, slot, era_end - 1)
                slot = era_end
                continue
            if self.store is None:
                return slot - 1
            # store: walk the index until the next era boundary or a hole
            stop = min(end, (slot // sphr + 1) * sphr)
            expect = slot
            for k, v in self.store.iter_index(slot, stop - 1):
                s = int.from_bytes(k[-8:], "big")
                if s != expect:
                    return expect - 1
                if v:
                    framed = self.store.get_block_framed(bytes(v))
                    if framed is None:
                        return s - 1
                    yield s, memoryview(framed)
                expect = s + 1
            if expect < stop:
                return expect - 1
            slot = stop
        return end - 1

    # -- states ----------------------------------------------------------------------------
    def state_framed(self, slot: int) -> bytes | None:
        e = self.catalog.entry_for_state_slot(slot)
        if e is not None:
            return self.catalog.opened(e).reader.state_framed()
        if self.store is not None:
            return self.store.get_state_framed(slot)
        return None

    def latest_state_slot(self) -> int | None:
        best = None
        e = self.catalog.latest()
        if e is not None:
            best = e.state_slot
        if self.store is not None:
            slots = self.store.state_slots()
            if slots and (best is None or slots[-1] > best):
                best = slots[-1]
        return best


# --------------------------------------------------------------------------------------------
# listing, index, checksums, files


def _listing_html(cat: Catalog) -> str:
    rows = []
    files = [(e.name, e.mtime_ns, e.size) for e in cat.entries.values() if e.ok]
    files += [(x.name, x.mtime_ns, x.size) for x in cat.extras.values()]
    files += [(x.name, x.mtime_ns, x.size) for x in cat.era1.values()]
    files.append(("checksums.txt", max((f[1] for f in files), default=0), None))
    files.sort()
    for name, mtime_ns, size in files:
        shown = name if len(name) <= 50 else name[:47] + "..>"
        date = datetime.fromtimestamp(mtime_ns / 1e9, timezone.utc).strftime("%d-%b-%Y %H:%M")
        pad = " " * (51 - len(shown))
        size_s = "-" if size is None else str(size)
        rows.append(f'<a href="{quote(name)}">{html.escape(shown)}</a>{pad}{date} '
                    f'{size_s:>19}\n')
    bad = [e for e in cat.entries.values() if not e.ok]
    notes = ""
    if bad:
        notes = "<h2>Skipped (not valid era files)</h2><pre>\n" + "".join(
            f"{html.escape(e.name)}: {html.escape(e.error or '')}\n" for e in bad) + "</pre><hr>"
    return ("<html>\r\n<head><title>Index of /</title></head>\r\n<body>\r\n"
            "<h1>Index of /</h1><hr><pre><a href=\"../\">../</a>\n" + "".join(rows) +
            "</pre><hr>" + notes + "</body>\r\n</html>\r\n")


async def _refresh(app: web.Application, force: bool = False) -> None:
    """Rescan ERA_DIR at most once a second (always when forced), off the event loop."""
    st = app[STATE]
    now = time.monotonic()
    if not force and now - st["scanned"] < 1.0:
        return
    async with st["scan_lock"]:
        if not force and time.monotonic() - st["scanned"] < 1.0:
            return
        await asyncio.get_running_loop().run_in_executor(None, app[CATALOG].refresh)
        st["scanned"] = time.monotonic()


async def handle_listing(request: web.Request) -> web.Response:
    await _refresh(request.app, force=True)
    return web.Response(text=_listing_html(request.app[CATALOG]), content_type="text/html")


async def _checksums(app: web.Application) -> dict[str, str]:
    st = app[STATE]
    async with st["hash_lock"]:
        return await asyncio.get_running_loop().run_in_executor(None, app[CATALOG].checksums)


async def handle_index(request: web.Request) -> web.Response:
    app = request.app
    await _refresh(app, force=True)
    await _checksums(app)
    cat = app[CATALOG]
    net = app[STATE]["network"]
    entries = sorted(cat.entries.values(), key=lambda e: e.name)
    body = {
        "network": net.config_name if net else None,
        "slots_per_historical_root": cat.sphr,
        "files": [e.to_json() for e in entries if e.ok] +
                 [x.to_json() for _, x in sorted(cat.era1.items())],
        "errors": [e.to_json() for e in entries if not e.ok],
        "extras": [{"name": x.name, "size": x.size} for x in cat.extras.values()],
        "gaps": _gaps([e.era for e in entries if e.ok]),
    }
    return _json(body)


def _gaps(eras) -> list[list[int]]:
    eras = sorted(set(e for e in eras if e is not None))
    out = []
    for a, b in zip(eras, eras[1:]):
        if b > a + 1:
            out.append([a + 1, b - 1])
    return out


async def handle_checksums(request: web.Request) -> web.Response:
    await _refresh(request.app, force=True)
    sums = await _checksums(request.app)
    cat = request.app[CATALOG]
    lines = [f"{sums[e.name]}  {e.name}\n" for e in sorted(cat.entries.values(),
                                                           key=lambda e: e.name)
             if e.ok and e.name in sums]
    lines += [f"{sums[n]}  {n}\n" for n in sorted(cat.era1) if n in sums]
    return web.Response(text="".join(lines), content_type="text/plain")


async def handle_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    app = request.app
    cat = app[CATALOG]
    e = cat.entries.get(name) or cat.extras.get(name) or cat.era1.get(name)
    if e is None:
        await _refresh(app)
        e = cat.entries.get(name) or cat.extras.get(name) or cat.era1.get(name)
    if e is None or (hasattr(e, "error") and e.error):
        raise ApiError(404, "not found")
    rng = request.headers.get("Range")
    if rng is not None and not _range_ok(rng):
        return web.Response(status=416, headers={"Content-Range": f"bytes */{e.size}"})
    if e.path.startswith("s3://"):
        return await _object_response(request, e, rng)
    return web.FileResponse(e.path, chunk_size=256 * 1024)


async def _object_response(request: web.Request, e, rng: str | None) -> web.StreamResponse:
    """An object of an s3:// ERA_DIR, streamed from ranged GETs (never held whole): the
    single Range, ETag and Last-Modified a file gets, from the listing's size and time."""
    from .. import objstore

    size = e.size
    etag = f'"{e.mtime_ns:x}-{size:x}"'
    headers = {"ETag": etag, "Last-Modified": _http_date(e.mtime_ns / 1e9),
               "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    start, end, status = 0, size - 1, 200
    if rng is not None and request.headers.get("If-Range", etag) in (etag, headers[
            "Last-Modified"]):
        a, _, b = rng.strip()[6:].strip().partition("-")
        a, b = a.strip(), b.strip()
        if a:
            start, end = int(a), min(int(b), size - 1) if b else size - 1
        else:
            start, end = max(0, size - int(b)), size - 1
        if start >= size:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.headers.get("If-None-Match") == etag and status == 200:
        return web.Response(status=304, headers={"ETag": etag})
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = end - start + 1
    await resp.prepare(request)
    if request.method == "HEAD" or end < start:
        await resp.write_eof()
        return resp
    loop = asyncio.get_running_loop()
    it = objstore.iter_chunks(e.path, 1 << 20, start=start, end=end + 1)
    sent = 0
    while sent < end - start + 1:
        piece = await loop.run_in_executor(None, next, it, None)
        if piece is None:
            break
        await resp.write(piece)
        sent += len(piece)
    if sent != end - start + 1:  # the object changed or shrank under us: cut the reply short
        raise ConnectionResetError(f"{e.path}: object ended at {start + sent} of {end + 1}")
    await resp.write_eof()
    return resp


def _range_ok(value: str) -> bool:
    """A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range; anything else is refused (416)."""
    v = value.strip()
    if not v.startswith("bytes=") or "," in v:
        return False
    spec = v[6:].strip()
    a, sep, b = spec.partition("-")
    if not sep:
        return False
    a, b = a.strip(), b.strip()
    if a and not (a.isascii() and a.isdigit()) or b and not (b.isascii() and b.isdigit()):
        return False
    if not a and not b:
        return False
    if len(a) > 19 or len(b) > 19:
        return False
    if a and b and int(b) < int(a):
        return False
    if not a and int(b) == 0:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Beacon API


def _decode_block(app, slot: int, ssz_bytes: bytes):
    from .. import ssz

    net = app[STATE]["network"]
    return ssz.decode_block(ssz_bytes, net.fork_name_at_slot(slot), net.preset_base,
                            where=f"block at slot {slot}")


async def _run(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _resolve_block_id(src: Sources, block_id: str):
    """Sources.resolve_block_id; `finalized` in the thread pool (the first time for a new
    newest state it may hash that state)."""
    if block_id == "finalized":
        return await _run(src.resolve_block_id, block_id)
    return src.resolve_block_id(block_id)


def _block_ssz(src: Sources, slot: int) -> bytes | None:
    framed = src.block_framed(slot)
    if framed is None:
        return None
    return framing.decompress(framed, where=f"block at slot {slot}")


async def _lookup_block(request: web.Request) -> tuple[int, bytes]:
    src: Sources = request.app[STATE]["sources"]
    slot, root = await _resolve_block_id(src, request.match_info["block_id"])
    # small reads from the page cache are cheaper inline than a hop to the thread pool
    framed = src.block_framed(slot)
    if framed is None:
        data = None
    elif len(framed) <= INLINE_DECOMPRESS:
        data = framing.decompress(framed, where=f"block at slot {slot}")
    else:
        data = await _run(framing.decompress, framed, framing.DEFAULT_MAX_SIZE,
                          f"block at slot {slot}")
    if data is None:
        if src.covers_block_slot(slot):
            raise ApiError(404, f"no block at slot {slot} (empty slot)")
        raise ApiError(404, f"slot {slot} is not in this archive")
    return slot, data


def _meta(fork: str) -> dict:
    return {"version": fork, "execution_optimistic": False, "finalized": True}


async def handle_block(request: web.Request) -> web.Response:
    slot, data = await _lookup_block(request)
    net = request.app[STATE]["network"]
    fork = net.fork_name_at_slot(slot)
    headers = {"Eth-Consensus-Version": fork}
    if wants_ssz(request):
        return web.Response(body=data, content_type=SSZ, headers=headers)
    from ..ssz.json import to_json

    def enc():
        return json.dumps(dict(_meta(fork), data=to_json(_decode_block(request.app, slot,
                                                                        data)))).encode()

    return web.Response(body=await _run(enc), content_type=JSON, headers=headers)


async def handle_block_root(request: web.Request) -> web.Response:
    src: Sources = request.app[STATE]["sources"]
    slot, root = await _resolve_block_id(src, request.match_info["block_id"])
    if root is None:
        root = await _run(src.block_root, slot)
        if root is None:
            if src.covers_block_slot(slot):
                raise ApiError(404, f"no block at slot {slot} (empty slot)")
            raise ApiError(404, f"slot {slot} is not in this archive")
    return _json({"execution_optimistic": False, "finalized": True,
                  "data": {"root": hex0x(root)}})


def header_json(network: Network, slot: int, data: bytes) -> bytes:
    """The /eth/v1/beacon/headers body for the SSZ SignedBeaconBlock `data`, straight from the
    bytes: the fixed fields of the message are sliced out, body_root is hashed from the body's
    bytes (ssz.fast, which also checks the body is well-formed SSZ) and the block root is the
    root of the 112-byte BeaconBlockHeader they make.  No py-ssz objects."""
    from .. import ssz
    from ..ssz import fast

    fork = network.fork_name_at_slot(slot)
    t = ssz.types_for(fork, network.preset_base)
    try:
        outer = fast.container_field_ranges(t.SignedBeaconBlock, data)
        a, b = outer["message"]
        mv = memoryview(data)
        msg = mv[a:b]
        fields = fast.container_field_ranges(t.BeaconBlock, msg)
        ba, bb = fields["body"]
        body_root = fast.hash_tree_root_bytes(t.BeaconBlockBody, msg[ba:bb])
        fixed = bytes(msg[:fields["state_root"][1]])        # slot | proposer | parent | state
        root = fast.hash_tree_root_bytes(t.BeaconBlockHeader, fixed + body_root)
        sa, sb = outer["signature"]
        signature = bytes(mv[sa:sb])
    except FormatError as exc:
        raise FormatError(f"block at slot {slot}: {exc}") from exc
    header = {"slot": str(layout.u64(fixed, layout.HEADER_SLOT)),
              "proposer_index": str(layout.u64(fixed, layout.HEADER_PROPOSER)),
              "parent_root": hex0x(fixed[layout.HEADER_PARENT]),
              "state_root": hex0x(fixed[layout.HEADER_STATE_ROOT]),
              "body_root": hex0x(body_root)}
    return json.dumps({"execution_optimistic": False, "finalized": True, "data": {
        "root": hex0x(root), "canonical": True,
        "header": {"message": header, "signature": hex0x(signature)}}}).encode()


async def handle_header(request: web.Request) -> web.Response:
    slot, data = await _lookup_block(request)
    net = request.app[STATE]["network"]
    fork = net.fork_name_at_slot(slot)
    if len(data) <= INLINE_DECOMPRESS:
        body = header_json(net, slot, data)  # tens of microseconds: cheaper than a thread hop
    else:
        body = await _run(header_json, net, slot, data)
    return web.Response(body=body, content_type=JSON, headers={"Eth-Consensus-Version": fork})


MAX_JSON_STATE = 64 * 1024 * 1024


async def handle_state(request: web.Request) -> web.Response:
    app = request.app
    src: Sources = app[STATE]["sources"]
    net = app[STATE]["network"]
    sid = request.match_info["state_id"]
    if sid in ("head", "finalized"):
        slot = src.latest_state_slot()
        if slot is None:
            raise ApiError(404, "no states served")
    elif sid == "genesis":
        slot = 0
    elif sid == "justified" or sid.startswith("0x"):
        raise ApiError(400, f"state id {sid[:80]!r}: only slots, genesis, head and finalized "
                            "are served")
    else:
        slot = _parse_u64(sid, "state id")
    sphr = net.slots_per_historical_root
    if slot % sphr:
        raise ApiError(404, f"slot {slot} is not an era boundary (multiple of {sphr}); only "
                            "era-boundary states are served")
    sem: asyncio.Semaphore = app[STATE]["state_sem"]
    if sem.locked():
        raise ApiError(503, "too many state requests in flight; retry later")
    async with sem:
        framed = await _run(src.state_framed, slot)
        if framed is None:
            raise ApiError(404, f"no state at slot {slot} in this archive")
        fork = net.fork_name_at_slot(slot)
        headers = {"Eth-Consensus-Version": fork}
        if wants_ssz(request):
            data = await _run(framing.decompress, framed, framing.DEFAULT_MAX_SIZE,
                              f"state at slot {slot}")
            return web.Response(body=data, content_type=SSZ, headers=headers)
        size = framing.uncompressed_length(framed, f"state at slot {slot}")
        if size > MAX_JSON_STATE:
            raise ApiError(406, f"state at slot {slot} is {size} bytes; ask for SSZ "
                                "(Accept: application/octet-stream)")

        def enc():
            from .. import ssz
            from ..ssz.json import to_json

            st = ssz.decode_state(framing.decompress(framed), fork, net.preset_base,
                                  where=f"state at slot {slot}")
            return json.dumps(dict(_meta(fork), data=to_json(st))).encode()

        return web.Response(body=await _run(enc), content_type=JSON, headers=headers)


async def handle_genesis(request: web.Request) -> web.Response:
    net: Network = request.app[STATE]["network"]
    if net.genesis_validators_root is None:
        raise ApiError(404, "genesis is not known (no genesis.json beside the eras)")
    return _json({"data": {"genesis_time": str(net.genesis_time or 0),
                           "genesis_validators_root": hex0x(net.genesis_validators_root),
                           "genesis_fork_version": hex0x(net.genesis_fork_version)}})


async def handle_spec(request: web.Request) -> web.Response:
    return _json({"data": request.app[STATE]["network"].to_spec_json()})


async def handle_fork_schedule(request: web.Request) -> web.Response:
    net: Network = request.app[STATE]["network"]
    out = []
    prev = net.forks[0].version
    for f in net.forks:
        out.append({"previous_version": hex0x(prev), "current_version": hex0x(f.version),
                    "epoch": str(f.epoch)})
        prev = f.version
    return _json({"data": out})


async def handle_finality(request: web.Request) -> web.Response:
    """Everything served is final: the checkpoint of Sources.finalized (the newest state's,
    or the newest epoch start among the served blocks when they reach further)."""
    sid = request.match_info["state_id"]
    if sid not in ("head", "finalized", "justified", "genesis"):
        _parse_u64(sid, "state id") if not sid.startswith("0x") else None
    src: Sources = request.app[STATE]["sources"]
    got = await _run(src.finalized)
    if got is None:
        raise ApiError(404, "no blocks served")
    epoch, root, _ = got
    cp = {"epoch": str(epoch), "root": hex0x(root)}
    return _json({"execution_optimistic": False, "finalized": True, "data": {
        "previous_justified": cp, "current_justified": cp, "finalized": cp}})


async def handle_syncing(request: web.Request) -> web.Response:
    head = request.app[STATE]["sources"].head_slot() or 0
    return _json({"data": {"head_slot": str(head), "sync_distance": "0", "is_syncing": False,
                           "is_optimistic": False, "el_offline": False}})


# --------------------------------------------------------------------------------------------
# range endpoint


def error_chunk(code: int, message: str) -> bytes:
    """A libp2p error response chunk: result byte, uvarint length, snappy-framed message
    (ErrorMessage = List[byte, 256], so at most 256 bytes)."""
    msg = message.encode()[:256]
    return bytes([code]) + uvarint(len(msg)) + framing.compress(msg)


def _range_error(status: int, code: int, message: str) -> web.Response:
    return web.Response(body=error_chunk(code, message), status=status, content_type=SSZ,
                        headers={"Era-Tools-Error": message.encode(
                            "ascii", "backslashreplace").decode()[:200]})


async def handle_blocks_by_range(request: web.Request) -> web.StreamResponse:
    app = request.app
    q = request.rel_url.query
    try:
        if set(q) - {"start_slot", "count"}:
            raise ApiError(400, f"unknown parameter(s): {', '.join(sorted(set(q) - {'start_slot', 'count'}))}")
        if len(q.getall("start_slot", [])) != 1 or len(q.getall("count", [])) != 1:
            raise ApiError(400, "give start_slot and count exactly once")
        start = _parse_u64(q["start_slot"], "start_slot")
        count = _parse_u64(q["count"], "count")
        if not 1 <= count <= MAX_RANGE_COUNT:
            raise ApiError(400, f"count must be 1..{MAX_RANGE_COUNT}, got {count}")
        if start + count - 1 > U64_MAX:
            raise ApiError(400, "start_slot + count overflows uint64")
    except ApiError as exc:
        return _range_error(400, RESULT_INVALID, exc.message)
    src: Sources = app[STATE]["sources"]
    last = src.covered_end(start, count)
    if last < start:
        return _range_error(404, RESULT_UNAVAILABLE, f"slot {start} is not in this archive")
    sem: asyncio.Semaphore = app[STATE]["range_sem"]
    if sem.locked():
        return _range_error(429, RESULT_UNAVAILABLE, "too many concurrent range requests")
    async with sem:
        resp = web.StreamResponse(headers={"Content-Type": SSZ,
                                           "Era-Tools-Last-Slot": str(last)})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        it = src.iter_range(start, last - start + 1)
        blocks = 0
        buf = bytearray()
        try:
            while True:
                try:
                    slot, framed = next(it)
                except StopIteration:
                    break
                ulen = framing.uncompressed_length(framed, f"block at slot {slot}")
                buf += b"\x00"
                buf += src.fork_digest(slot)
                buf += uvarint(ulen)
                buf += framed
                blocks += 1
                if len(buf) >= 256 * 1024:
                    await resp.write(buf)  # handed over, not copied: a new buffer follows
                    buf = bytearray()
        except EraToolsError as exc:
            log.warning("range %s+%s: %s", start, count, exc)
            buf += error_chunk(RESULT_SERVER_ERROR, str(exc))
        app[STATE]["stats"].add_range_blocks(blocks)
        if buf:
            await resp.write(buf)
        await resp.write_eof()
        return resp


# --------------------------------------------------------------------------------------------
# metrics, errors, limits


async def handle_metrics(request: web.Request) -> web.Response:
    reg = request.app[STATE]["registry"]
    return web.Response(body=render(reg),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def _guarded(handler, label: str, st: dict):
    """`handler` wrapped with the metrics, the in-flight cap and the error policy (400 for bad
    input, JSON messages).  One closure per route, so a request pays for no middleware chain
    and no label lookup: the route label is fixed here."""
    stats: Stats = st["stats"]
    clock = time.perf_counter

    async def guarded(request: web.Request):
        t0 = clock()
        status = 500
        if st["inflight"] >= st["max_inflight"]:
            stats.request(label, request.method, "503", None)
            return api_error(503, "server busy; retry later")
        st["inflight"] += 1
        try:
            try:
                resp = await handler(request)
            except ApiError as exc:
                resp = api_error(exc.status, exc.message)
            except web.HTTPException as exc:
                if exc.status >= 400 and exc.content_type != JSON:
                    resp = api_error(exc.status, exc.reason)
                else:
                    raise
            except EraToolsError as exc:
                log.warning("%s %s: %s", request.method, request.path, exc)
                resp = api_error(500, str(exc))
            except (asyncio.CancelledError, ConnectionResetError):
                status = 499
                raise
            except Exception as exc:  # a bug: log it, keep serving
                log.exception("%s %s", request.method, request.path)
                resp = api_error(500, f"internal error: {type(exc).__name__}")
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            st["inflight"] -= 1
            stats.request(label, request.method, str(status), clock() - t0)

    return guarded


async def handle_unmatched(request: web.Request) -> web.Response:
    """Every path and method no route takes: JSON 404 (405 for methods other than GET/HEAD)."""
    if request.method not in ("GET", "HEAD"):
        raise ApiError(405, "Method Not Allowed")
    raise ApiError(404, "Not Found")


async def _startup(app: web.Application) -> None:
    st = app[STATE]
    st["scan_lock"] = asyncio.Lock()
    st["hash_lock"] = asyncio.Lock()
    st["range_sem"] = asyncio.Semaphore(st["max_ranges"])
    st["state_sem"] = asyncio.Semaphore(st["max_states"])
    if st["hash_on_start"]:
        st["hash_task"] = asyncio.get_running_loop().create_task(_checksums(app))
    if st["stats"].share_dir is not None:
        st["stats_task"] = asyncio.get_running_loop().create_task(_share_stats(st["stats"]))


async def _share_stats(stats: Stats, every: float = 1.0) -> None:
    """Several workers: publish this worker's metric numbers about once a second."""
    while True:
        stats.write_snapshot()
        await asyncio.sleep(every)


async def _cleanup(app: web.Application) -> None:
    for key in ("hash_task", "stats_task"):
        t = app[STATE].get(key)
        if t is not None and not t.done():
            t.cancel()
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
    app[STATE]["stats"].write_snapshot()
    app[CATALOG].close()


def app_connection_closed(app: web.Application):
    """The callback serve/limits.py calls for each connection a limit closes: counted in
    /metrics (era_serve_connections_closed)."""
    return app[STATE]["stats"].connection_closed


def make_app(era_dir, network: Network, store=None, *, max_ranges: int = 16,
             max_states: int = 2, max_inflight: int = 2048, hash_on_start: bool = True,
             middlewares=(), worker: int | None = None, share_dir: str | None = None,
             ) -> web.Application:
    """Build the application over `era_dir` (scanned now) and an optional open ChainStore.

    `worker`/`share_dir`: set by `run_workers` when several processes serve the same port;
    the workers share /metrics numbers and computed checksums through `share_dir`."""
    catalog = Catalog(era_dir, network, share_dir=share_dir)
    catalog.refresh()
    stats = Stats(worker, share_dir)
    st = {
        "network": network,
        "store": store,
        "sources": Sources(catalog, network, store),
        "stats": stats,
        "registry": new_registry(stats),
        "max_ranges": max_ranges,
        "max_states": max_states,
        "max_inflight": max_inflight,
        "inflight": 0,
        "scanned": time.monotonic(),
        "hash_on_start": hash_on_start,
        "worker": worker,
    }
    app = web.Application(middlewares=list(middlewares), client_max_size=64 * 1024)
    app[CATALOG] = catalog
    app[STATE] = st
    r = app.router

    def get(path, handler):
        r.add_get(path, _guarded(handler, path, st))  # add_get also answers HEAD

    get("/", handle_listing)
    get("/index.json", handle_index)
    get("/checksums.txt", handle_checksums)
    get("/metrics", handle_metrics)
    get("/eth/v2/beacon/blocks/{block_id}", handle_block)
    get("/eth/v1/beacon/blocks/{block_id}/root", handle_block_root)
    get("/eth/v1/beacon/headers/{block_id}", handle_header)
    get("/eth/v2/debug/beacon/states/{state_id}", handle_state)
    get("/eth/v1/beacon/genesis", handle_genesis)
    get("/eth/v1/config/spec", handle_spec)
    get("/eth/v1/config/fork_schedule", handle_fork_schedule)
    get("/eth/v1/node/syncing", handle_syncing)
    get("/eth/v1/beacon/states/{state_id}/finality_checkpoints", handle_finality)
    get("/era_tools/v1/blocks_by_range", handle_blocks_by_range)
    get("/{name}", handle_file)
    r.add_route("*", "/{tail:.*}", _guarded(handle_unmatched, "unmatched", st))
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app
