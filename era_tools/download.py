"""`era download`: mirror the era and era1 files of a host into a directory.

    report = download(url, dest, from_era=None, to_era=None, jobs=4, verify="roots",
                      network=None, on_event=callback)

1. Discover the host's files from our `/index.json`, an S3 `?list-type=2` XML listing, or an
   HTML directory listing (nginx autoindex, `python -m http.server`, ...).
2. Take checksums from index.json, or from `checksums.txt` (`sha256sum` lines, or one bare hash
   per line in listing order as era1 hosts publish).
   era1 files (`<network>-<epoch>-<root>.era1`, execution history) are mirrored beside era
   files; the two kinds are numbered apart (era numbers, era1 epochs) and handled kind by kind.
3. Download each wanted file to `<name>.tmp` with a streaming sha256; after an interruption a
   rerun (or a retry) resumes with `Range: bytes=N-`, re-hashing the N bytes already there.
4. Check the checksum, verify the file at the chosen level, then rename `.tmp` -> `.era`.  A
   file that fails is renamed `<name>.bad` and reported; nothing half-written is ever named
   `.era`.  era1 files are checked with era1.check_era1_file (no network needed).
5. Report gaps in the host's era numbering (and, apart, in its era1 epochs).  Asked-for eras
   past the host's first or last are reported apart (`beyond_host`): not gaps, the host has
   no more; a range with nothing of the host's in it is bad input.

Progress goes through `on_event(kind, **info)`; this module never prints.  Its HTTP goes
through `serve.client` (aiohttp lives in serve/).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urljoin, urlsplit

from . import safejson
from .fileio import sha256_file
from .era import fsync_dir, parse_era_file_name
from .era1 import parse_era1_file_name
from .errors import ConfigError, EraToolsError, PeerError, VerificationError
from .serve import client
from .ssz import layout
from .sync.peers import RetryPolicy

EXTRA_FILES = ("spec.json", "genesis.json", "config.yaml")
VERIFY_LEVELS = ("none", "structure", "roots", "signatures")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
# [^<>]: a tag's attributes never run into the next tag (with [^>] a page of "<a <a <a ..."
# took quadratic time: 14 s for 48 KB, and a listing may be 64 MB)
_HREF = re.compile(r"""<a\s[^<>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
# the retry policy of every era_tools HTTP client (sync.peers), with this flow's numbers:
# 4 tries, 0.4 s doubling to at most 5 s between them; 429 and 5xx answers retried too
RETRY = RetryPolicy(tries=4, backoff=0.4, max_delay=5.0)
STAGING = ".era-download"   # complete files wait here, under their own name, for verification


@dataclass
class RemoteFile:
    name: str
    url: str
    era: int | None = None           # era number; for an era1 file its epoch
    size: int | None = None
    sha256: str | None = None
    kind: str = ""                   # "era" | "era1" (from the name when not given)

    def __post_init__(self):
        if not self.kind:
            self.kind = _kind_of(self.name) or "era"


@dataclass
class Listing:
    source: str                      # "index.json" | "s3" | "html"
    files: list[RemoteFile]          # era and era1 files, sorted by name
    extras: list[RemoteFile] = field(default_factory=list)
    checksums: str | None = None     # where checksums came from, if anywhere
    warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    listing: Listing | None = None
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)      # already present and matching
    bad: dict[str, str] = field(default_factory=dict)     # name -> why (kept as .bad)
    failed: dict[str, str] = field(default_factory=dict)  # name -> network/IO error
    gaps: list[tuple[int, int]] = field(default_factory=list)        # in era numbers
    era1_gaps: list[tuple[int, int]] = field(default_factory=list)   # in era1 epochs
    # the asked-for range past what the host lists, per kind: not gaps (the host has no more)
    beyond_host: dict = field(default_factory=dict)                  # kind -> [(a, b)]
    host_has: dict = field(default_factory=dict)                     # kind -> (first, last)
    wanted: list[RemoteFile] = field(default_factory=list)
    verified_level: str = "none"
    warnings: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    bad_dir: str | None = None  # where .bad files are kept when not in DEST (a bucket DEST)

    @property
    def ok(self) -> bool:
        return not self.bad and not self.failed

    def status(self, name: str) -> str:
        if name in self.bad:
            return "bad"
        if name in self.failed:
            return "failed"
        return "present" if name in self.skipped else "downloaded"

    def to_json(self) -> dict:
        return {"source": self.listing.source if self.listing else None,
                "checksums": self.listing.checksums if self.listing else None,
                "downloaded": self.downloaded, "skipped": self.skipped, "bad": self.bad,
                "failed": self.failed, "gaps": [list(g) for g in self.gaps],
                "era1_gaps": [list(g) for g in self.era1_gaps],
                "host_has": {k: list(v) for k, v in self.host_has.items()},
                "beyond_host": {k: [list(g) for g in v] for k, v in self.beyond_host.items()},
                "files": [{"name": f.name, "kind": f.kind,
                           ("epoch" if f.kind == "era1" else "era"): f.era,
                           "status": self.status(f.name)}
                          for f in sorted(self.wanted, key=lambda f: f.name)],
                "verify": self.verified_level, "bytes": self.bytes_downloaded,
                "warnings": self.warnings}


# --------------------------------------------------------------------------------------------
# discovery


def _base(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EraToolsError(f"{url}: not an http(s) URL")
    base = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
    return base if base.endswith("/") else base + "/"


def _kind_of(name: str) -> str | None:
    """"era" or "era1" by the file's extension; None for any other file."""
    return "era1" if name.endswith(".era1") else "era" if name.endswith(".era") else None


def _era_of(name: str) -> int | None:
    """The era number of an era file, the epoch of an era1 file, or None (bad name)."""
    p = parse_era1_file_name(name) if name.endswith(".era1") else parse_era_file_name(name)
    return p[1] if p else None


def _size(v) -> int | None:
    """A listed size: a non-negative JSON integer, else unknown (not 1.1, "12", true)."""
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def parse_index_json(body: bytes, base: str) -> Listing | None:
    try:
        doc = safejson.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested too deep
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        return None
    files, extras = [], []
    for f in doc["files"]:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            continue
        name = f["name"]
        if not _safe_name(name) or _kind_of(name) is None:
            continue
        sha = f.get("sha256") if isinstance(f.get("sha256"), str) and _HEX64.match(
            f.get("sha256") or "") else None
        size = _size(f.get("size"))
        files.append(RemoteFile(name, urljoin(base, quote(name)), _era_of(name), size,
                                sha.lower() if sha else None))
    for x in doc.get("extras") or []:
        if isinstance(x, dict) and x.get("name") in EXTRA_FILES:
            extras.append(RemoteFile(x["name"], urljoin(base, x["name"]), None,
                                     _size(x.get("size"))))
    lst = Listing("index.json", sorted(files, key=lambda r: r.name), extras)
    if any(f.sha256 for f in files):
        lst.checksums = "index.json"
    return lst


def parse_s3(body: bytes, base: str) -> tuple[list[RemoteFile], list[RemoteFile], str | None]:
    """Files of one ListObjectsV2 page and its NextContinuationToken."""
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: unknown encoding=
        raise PeerError(f"{base}: bad S3 listing XML: {exc}") from exc
    ns = ""
    if root.tag.startswith("{"):
        ns = root.tag[:root.tag.index("}") + 1]
    files, extras = [], []
    for c in root.iter(f"{ns}Contents"):
        key = c.findtext(f"{ns}Key") or ""
        size = c.findtext(f"{ns}Size")
        name = key.rsplit("/", 1)[-1]
        if not _safe_name(name):
            continue
        url = base + quote(key.lstrip("/"))  # a key "//host/..." stays on the listing's host
        sz = int(size) if size and size.isascii() and size.isdigit() else None
        if _kind_of(name):
            files.append(RemoteFile(name, url, _era_of(name), sz))
        elif name in EXTRA_FILES:
            extras.append(RemoteFile(name, url, None, sz))
    token = None
    if (root.findtext(f"{ns}IsTruncated") or "").strip().lower() == "true":
        token = root.findtext(f"{ns}NextContinuationToken")
    return files, extras, token


def parse_html(body: bytes, base: str) -> tuple[list[RemoteFile], list[RemoteFile]]:
    """Links of an HTML directory listing (nginx autoindex, Apache, python http.server)."""
    text = body.decode("utf-8", "replace")
    files, extras, seen = [], [], set()
    for m in _HREF.finditer(text):
        href = m.group(1) or m.group(2) or m.group(3) or ""
        href = href.split("#", 1)[0].split("?", 1)[0]
        if not href or href.endswith("/"):
            continue
        url = urljoin(base, href)
        if not url.startswith(base):  # only files under the listing
            continue
        name = unquote(url[len(base):])
        if "/" in name or not _safe_name(name) or name in seen:
            continue
        seen.add(name)
        if _kind_of(name):
            files.append(RemoteFile(name, url, _era_of(name)))
        elif name in EXTRA_FILES:
            extras.append(RemoteFile(name, url))
    return files, extras


def _safe_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") \
        and not name.startswith(".") and "\x00" not in name


def parse_checksums(text: str, files: list[RemoteFile]) -> tuple[dict[str, str], str | None]:
    """name -> sha256 hex from `sha256sum` lines, or bare hashes (line N = file N: the Nth
    era1 file by epoch when the listing has era1 files, as era1 hosts publish them, else the
    Nth file by name).  Returns (mapping, warning or None)."""
    named, bare = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        h = parts[0].lower()
        if not _HEX64.match(h):
            continue
        if len(parts) == 2:
            name = parts[1].strip().lstrip("*").rsplit("/", 1)[-1]
            named[name] = h
        else:
            bare.append(h)
    if named:
        return named, None
    if bare:
        era1 = sorted((f for f in files if f.kind == "era1"),
                      key=lambda f: (f.era is None, f.era or 0, f.name))
        if era1:
            names, what = [f.name for f in era1], "era1 files"
        else:
            names, what = sorted(f.name for f in files), "files"
        if len(bare) != len(names):
            return {}, (f"checksums.txt has {len(bare)} bare hashes for {len(names)} {what}; "
                        "ignored")
        return dict(zip(names, bare)), None
    return {}, None


def discover_bucket(url: str) -> Listing:
    """The files under an s3://bucket/prefix (objstore listing), with checksums.txt there or
    else the sha256 era_tools recorded on each object it uploaded."""
    from . import objstore

    objs = objstore.list_objects(url)
    files, extras = [], []
    for o in objs:
        if _kind_of(o.name) and _safe_name(o.name):
            files.append(RemoteFile(o.name, o.url, _era_of(o.name), o.size))
        elif o.name in EXTRA_FILES:
            extras.append(RemoteFile(o.name, o.url, None, o.size))
    lst = Listing("s3 bucket", sorted(files, key=lambda f: f.name), extras)
    if any(o.name == "checksums.txt" for o in objs):
        text = objstore.get_bytes(objstore.join(url, "checksums.txt")).decode("utf-8", "replace")
        sums, warn = parse_checksums(text, lst.files)
        if warn:
            lst.warnings.append(warn)
        for f in lst.files:
            f.sha256 = sums.get(f.name)
        lst.checksums = "checksums.txt" if sums else None
    else:
        for f in lst.files:
            f.sha256 = objstore.stored_sha256(f.url)
        if any(f.sha256 for f in lst.files):
            lst.checksums = "object metadata"
    return lst


def _fetch_object(rf: RemoteFile, tmp: str, emit) -> str:
    """Append the object rf.url to `tmp` from its current size on (a resumed download);
    returns the sha256 of the whole file."""
    from . import objstore

    offset = os.path.getsize(tmp) if os.path.exists(tmp) else 0
    if rf.size is not None and offset > rf.size:
        os.truncate(tmp, 0)
        offset = 0
    h, offset = _hash_file(tmp, offset) if offset else (hashlib.sha256(), 0)
    emit("start", name=rf.name, total=rf.size, offset=offset)
    if rf.size is None or offset < rf.size:
        with open(tmp, "ab") as f:
            for piece in objstore.iter_chunks(rf.url, start=offset):
                f.write(piece)
                h.update(piece)
                emit("progress", name=rf.name, n=len(piece))
            f.flush()
            os.fsync(f.fileno())
    return h.hexdigest()


async def discover(sess, url: str) -> Listing:
    if url.startswith("s3://"):
        return await asyncio.get_running_loop().run_in_executor(None, discover_bucket, url)
    base = _base(url)
    # 1. our own index.json
    r = await client.fetch(sess, urljoin(base, "index.json"))
    if r.status == 200:
        lst = parse_index_json(r.body, base)
        if lst is not None:
            return lst
    # 2. S3 ListObjectsV2 (an HTML host ignores the query and sends its listing)
    r = await client.fetch(sess, base + "?list-type=2")
    files: list[RemoteFile] = []
    extras: list[RemoteFile] = []
    ctype = r.headers.get("Content-Type", "")
    if r.status == 200 and ("xml" in ctype or r.body.lstrip()[:5] in (b"<?xml", b"<List")):
        source = "s3"
        body, pages = r.body, 0
        while True:
            f, x, token = parse_s3(body, base)
            files += f
            extras += x
            pages += 1
            if not token or pages > 10000:
                break
            r = await client.fetch(sess, base + "?list-type=2&continuation-token=" +
                                   quote(token, safe=""))
            if r.status != 200:
                raise PeerError(f"{base}: S3 listing page {pages + 1}: HTTP {r.status}")
            body = r.body
    else:
        if r.status != 200:
            r = await client.fetch(sess, base)
        if r.status != 200:
            raise PeerError(f"{base}: listing: HTTP {r.status}")
        source = "html"
        files, extras = parse_html(r.body, base)
    lst = Listing(source, sorted(files, key=lambda f: f.name), extras)
    # checksums
    r = await client.fetch(sess, urljoin(base, "checksums.txt"))
    if r.status == 200:
        sums, warn = parse_checksums(r.body.decode("utf-8", "replace"), lst.files)
        if warn:
            lst.warnings.append(warn)
        hit = 0
        for f in lst.files:
            if f.name in sums:
                f.sha256 = sums[f.name]
                hit += 1
        if hit:
            lst.checksums = "checksums.txt"
    return lst


def era_gaps(eras, lo: int | None = None, hi: int | None = None) -> list[tuple[int, int]]:
    """Missing era numbers in [lo, hi] within the host's own numbering (its smallest to its
    largest era): numbers outside it are `beyond_host`, not gaps.  Linear in the number of
    eras listed, whatever the bounds (a --to-era of 10**20 costs nothing)."""
    have = sorted(set(e for e in eras if e is not None))
    if not have:
        return []
    lo = have[0] if lo is None else max(lo, have[0])
    hi = have[-1] if hi is None else min(hi, have[-1])
    out, prev = [], lo - 1
    for e in have:
        if e < lo:
            continue
        if e > hi:
            break
        if e > prev + 1:
            out.append((prev + 1, e - 1))
        prev = e
    return out


def beyond_host(eras, lo: int | None, hi: int | None) -> list[tuple[int, int]]:
    """The parts of an asked-for range [lo, hi] below the host's first or above its last
    era (all of it when the host lists none)."""
    have = [e for e in eras if e is not None]
    if not have:
        return [(lo if lo is not None else 0, hi)] if hi is not None else []
    first, last = min(have), max(have)
    out = []
    if lo is not None and lo < first:
        out.append((lo, min(first - 1, hi) if hi is not None else first - 1))
    if hi is not None and hi > last:
        out.append((max(last + 1, lo if lo is not None else 0), hi))
    return out


# --------------------------------------------------------------------------------------------
# downloading one file


def _hash_file(path: str, limit: int | None = None):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while limit is None or n < limit:
            chunk = f.read(min(4 << 20, (limit - n) if limit is not None else 4 << 20))
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    return h, n


async def _download_one(sess, rf: RemoteFile, dest: str, emit) -> tuple[str, str]:
    """Fetch rf into dest/<name>.tmp; returns (tmp path, sha256 hex).  Raises PeerError."""
    tmp = os.path.join(dest, rf.name + ".tmp")
    if rf.url.startswith("s3://"):
        from .errors import ObjectStoreError

        try:
            digest = await asyncio.get_running_loop().run_in_executor(
                None, _fetch_object, rf, tmp, emit)
        except ObjectStoreError as exc:
            raise PeerError(str(exc)) from exc
        return tmp, digest
    meta = tmp + ".meta"
    offset = os.path.getsize(tmp) if os.path.exists(tmp) else 0
    if_range = None
    if offset and os.path.exists(meta):
        try:
            with open(meta) as mf:
                if_range = json.load(mf).get("last_modified")
        except (OSError, ValueError):
            if_range = None
    loop = asyncio.get_running_loop()
    h, offset = await loop.run_in_executor(None, _hash_file, tmp, offset) if offset else (
        hashlib.sha256(), 0)
    state = {"h": h}
    emit("start", name=rf.name, total=rf.size, offset=offset)

    def on_data(chunk):
        state["h"].update(chunk)
        emit("progress", name=rf.name, n=len(chunk))

    def on_restart():
        state["h"] = hashlib.sha256()
        emit("restart", name=rf.name)

    def on_headers(headers):
        lm = headers.get("Last-Modified")
        if lm and not os.path.exists(meta):
            try:
                with open(meta, "w") as mf:
                    json.dump({"last_modified": lm, "url": rf.url}, mf)
            except OSError:
                pass

    attempt = 0
    while True:
        attempt += 1
        try:
            with open(tmp, "ab") as f:
                try:
                    res = await client.stream_to_file(sess, rf.url, f, offset,
                                                      if_range=if_range, on_data=on_data,
                                                      on_restart=on_restart,
                                                      on_headers=on_headers)
                except PeerError as exc:
                    f.flush()
                    offset = f.tell()
                    if attempt >= RETRY.tries:
                        raise RETRY.give_up(rf.url, str(exc).removeprefix(f"{rf.url}: "),
                                            "timeout") from exc
                    emit("retry", name=rf.name, offset=offset, error=str(exc))
                    await asyncio.sleep(RETRY.delay(attempt))
                    continue
        except OSError as exc:  # a write into the .tmp (a full disk): say which file
            if exc.filename is None:
                raise OSError(exc.errno, exc.strerror, tmp) from exc
            raise
        if res.status == 416:
            if rf.size is not None and offset == rf.size:
                break  # the partial file was in fact complete
            # the server's copy is shorter than ours: start over
            os.truncate(tmp, 0)
            offset = 0
            on_restart()
            if attempt >= RETRY.tries:
                raise PeerError(f"{rf.url}: HTTP 416 for bytes={offset}-")
            continue
        if res.status in RETRY.statuses:  # busy: wait and ask again, from where we are
            if attempt >= RETRY.tries:
                raise RETRY.give_up(rf.url, f"HTTP {res.status}", "missing")
            emit("retry", name=rf.name, offset=offset, error=f"HTTP {res.status}")
            await asyncio.sleep(RETRY.delay(attempt))
            continue
        if res.status not in (200, 206):
            raise PeerError(f"{rf.url}: HTTP {res.status}")
        offset = res.offset
        total = res.headers.get("Content-Range", "").rsplit("/", 1)[-1] if res.status == 206 \
            else res.headers.get("Content-Length")
        if total and total.isascii() and total.isdigit() and int(total) != offset:
            if attempt >= RETRY.tries:
                raise PeerError(f"{rf.url}: got {offset} of {total} bytes")
            emit("retry", name=rf.name, offset=offset, error=f"short body ({offset}/{total})")
            continue
        break
    try:
        os.unlink(meta)
    except FileNotFoundError:
        pass
    return tmp, state["h"].hexdigest()


# --------------------------------------------------------------------------------------------
# verification


def verify_file(path: str, name: str, level: str, network) -> None:
    """Check a downloaded file at `level` (see VERIFY_LEVELS); raise VerificationError.

    `path` must already carry its final base name `name` (the name is checked against the
    state).  With a network, era_tools.verify does the work; without one, only the structure
    and the name are checked here.  An era1 file needs no network: `structure` requires its
    structure check, `roots` and `signatures` every check of era1.check_era1_file (era1 blocks
    carry no signatures)."""
    if level == "none":
        return
    if _kind_of(name) == "era1":
        _verify_era1(path, name, level)
        return
    if network is not None:
        from . import verify as _verify

        rep = _verify.verify_file(path, network, level)
        if not rep.ok:
            f = rep.first_failure()
            raise VerificationError(f"{name}: {f.level} check {f.check} failed: {f.message}")
        return
    _structure_without_network(path, name)


def _verify_era1(path: str, name: str, level: str) -> None:
    from .era1 import check_era1_file

    for res in check_era1_file(path):
        if res.ok or (level == "structure" and res.check != "structure"):
            continue
        detail = res.detail
        if detail.startswith(path + ": "):
            detail = detail[len(path) + 2:]  # the staging path; the report names the file
        raise VerificationError(f"{name}: era1 check {res.check} failed: {detail}")


def _structure_without_network(path: str, name: str) -> None:
    """Without a network: the records walk, every block carries its index slot, the name
    matches the state inside, and every payload decompresses."""
    from . import framing
    from .era import EraReader

    parsed = parse_era_file_name(name)
    if parsed is None:
        raise VerificationError(f"{name}: not an era file name")
    with EraReader(path) as r:
        if r.era != parsed[1]:
            raise VerificationError(f"{name}: file holds era {r.era}, its name says "
                                    f"{parsed[1]}")
        for rec in r.records():
            pass  # every header is in bounds with zero reserved bytes
        head = r.state_head(r.slots_per_historical_root)
        expected = r.expected_name(parsed[0], head)
        if expected != name:
            raise VerificationError(f"{name}: name does not match the state inside "
                                    f"(expected {expected})")
        for slot, rec in r.iter_block_records():
            data = framing.decompress(r.block_framed(slot), where=f"{name}: slot {slot}",
                                      base=rec.data_offset)
            if len(data) < layout.BLOCK_SLOT.stop or layout.block_slot(data) != slot:
                raise VerificationError(f"{name}: offset {rec.offset}: block at index slot "
                                        f"{slot} does not carry that slot")
        framing.uncompressed_length(r.state_framed(), where=f"{name}: state")
        framing.decompress(r.state_framed(), where=f"{name}: state")


# --------------------------------------------------------------------------------------------
# the whole flow


def _unstage(dest: str) -> None:
    """A run killed during verification left complete files in the staging directory: make
    them `.tmp` files again, so this run re-checks them (a Range request past the end gets
    416, which counts as complete)."""
    stage = os.path.join(dest, STAGING)
    if not os.path.isdir(stage):
        return
    for name in os.listdir(stage):
        tmp = os.path.join(dest, name + ".tmp")
        if not os.path.exists(tmp):
            os.replace(os.path.join(stage, name), tmp)
        else:
            os.unlink(os.path.join(stage, name))


async def _download_async(url, dest, from_era, to_era, jobs, level, network, network_loader,
                          emit, present=None, on_final=None) -> Report:
    rep = Report(verified_level=level)
    async with client.session(jobs) as sess:
        lst = await discover(sess, url)
        rep.listing = lst
        rep.warnings += lst.warnings
        emit("listing", source=lst.source, files=len(lst.files), checksums=lst.checksums,
             era1=sum(f.kind == "era1" for f in lst.files))
        for w in lst.warnings:
            emit("warning", message=w)
        if not lst.files:  # a wrong URL, not an empty mirror
            raise PeerError(f"{_base(url)}: the {lst.source} listing names no .era or .era1 "
                            "files")
        wanted = []
        for kind, what in (("era", "era"), ("era1", "era1 epoch")):
            # era numbers and era1 epochs are different counts: each kind on its own
            files = [f for f in lst.files if f.kind == kind]
            if not files:
                continue
            seen = {}
            for f in files:
                if f.era is not None and f.era in seen:
                    w = f"host lists two files for {what} {f.era}: {seen[f.era]} and {f.name}"
                    rep.warnings.append(w)
                    emit("warning", message=w)
                seen.setdefault(f.era, f.name)
            numbers = [f.era for f in files]
            gaps = era_gaps(numbers, from_era, to_era)
            if kind == "era":
                rep.gaps = gaps
            else:
                rep.era1_gaps = gaps
            for a, b in gaps:
                emit("gap", first=a, last=b, file_kind=kind)
            known = [n for n in numbers if n is not None]
            if known:
                rep.host_has[kind] = (min(known), max(known))
            past = beyond_host(numbers, from_era, to_era)
            if past:
                rep.beyond_host[kind] = past
            wanted += [f for f in files if f.era is not None
                       and (from_era is None or f.era >= from_era)
                       and (to_era is None or f.era <= to_era)]
            unnamed = [f.name for f in files if f.era is None]
            if unnamed:
                w = (f"{len(unnamed)} listed .{kind} file(s) do not follow the naming rule, "
                     "skipped")
                rep.warnings.append(w)
                emit("warning", message=w)
        rep.wanted = wanted
        if not wanted and (from_era is not None or to_era is not None):
            has = "; ".join(f"{'eras' if k == 'era' else 'era1 epochs'} {a}..{b}"
                            for k, (a, b) in rep.host_has.items()) or "no numbered files"
            asked = f"{from_era if from_era is not None else 0}..{'' if to_era is None else to_era}"
            raise ConfigError(f"{_base(url)}: the host has {has}; none in the range asked for "
                              f"({asked})")
        os.makedirs(dest, exist_ok=True)
        _unstage(dest)
        loop = asyncio.get_running_loop()
        # small config files first: they name the network for verification
        for x in lst.extras:
            target = os.path.join(dest, x.name)
            if os.path.exists(target):
                continue
            if x.url.startswith("s3://"):
                from . import objstore

                body = await loop.run_in_executor(None, objstore.get_bytes, x.url, 1 << 20)
            else:
                r = await client.fetch(sess, x.url, max_bytes=1 << 20)
                body = r.body if r.status == 200 else None
            if body is not None:
                with open(target + ".tmp", "wb") as fh:
                    fh.write(body)
                os.replace(target + ".tmp", target)
        era_names = [f.name for f in wanted if f.kind == "era"]  # era1 files need no network
        if level != "none" and network is None and network_loader is not None and era_names:
            network = network_loader(dest, era_names)
        emit("plan", files=len(wanted), bytes=sum(f.size or 0 for f in wanted),
             sizes_known=all(f.size is not None for f in wanted))
        sem = asyncio.Semaphore(max(1, jobs))

        def counting_emit(kind, **info):
            if kind == "progress":
                rep.bytes_downloaded += info["n"]
            emit(kind, **info)

        async def one(rf: RemoteFile):
            final = os.path.join(dest, rf.name)
            async with sem:
                if present is not None and await loop.run_in_executor(None, present, rf):
                    rep.skipped.append(rf.name)
                    emit("done", name=rf.name, status="present")
                    return
                if os.path.exists(final):
                    size = os.path.getsize(final)
                    same = rf.size is None or size == rf.size
                    if same and rf.sha256:
                        h, _ = await loop.run_in_executor(None, _hash_file, final, None)
                        same = h.hexdigest() == rf.sha256
                    if same:
                        rep.skipped.append(rf.name)
                        emit("done", name=rf.name, status="present")
                        return
                    rep.bad[rf.name] = (f"{final} exists and differs from the host's copy; "
                                        "not overwritten")
                    emit("done", name=rf.name, status="conflict")
                    return
                try:
                    tmp, digest = await _download_one(sess, rf, dest, counting_emit)
                except PeerError as exc:
                    rep.failed[rf.name] = str(exc)
                    emit("done", name=rf.name, status="failed", error=str(exc))
                    return
                why = None
                if rf.size is not None and os.path.getsize(tmp) != rf.size:
                    why = (f"size {os.path.getsize(tmp)}, the listing says {rf.size}")
                elif rf.sha256 and digest != rf.sha256:
                    why = f"sha256 {digest}, the host's checksum is {rf.sha256}"
                staged = tmp
                if why is None:
                    # the name is part of what is verified: move the file under its own name
                    # into a staging directory first (same file system, atomic renames)
                    os.makedirs(os.path.join(dest, STAGING), exist_ok=True)
                    staged = os.path.join(dest, STAGING, rf.name)
                    os.replace(tmp, staged)
                    emit("verifying", name=rf.name)
                    try:
                        await loop.run_in_executor(None, verify_file, staged, rf.name, level,
                                                   network)
                    except EraToolsError as exc:
                        why = str(exc)
                    except Exception as exc:  # a decoder bug must not lose the file
                        why = f"{type(exc).__name__}: {exc}"
                if why is not None:
                    bad = os.path.join(dest, rf.name + ".bad")
                    os.replace(staged, bad)
                    rep.bad[rf.name] = why
                    emit("done", name=rf.name, status="bad", error=why)
                    return
                os.replace(staged, final)
                fsync_dir(dest)
                if on_final is not None:
                    try:
                        await loop.run_in_executor(None, on_final, final, rf)
                    except EraToolsError as exc:
                        rep.failed[rf.name] = str(exc)
                        emit("done", name=rf.name, status="failed", error=str(exc))
                        return
                rep.downloaded.append(rf.name)
                emit("done", name=rf.name, status="ok")

        await asyncio.gather(*(one(f) for f in wanted))
    try:  # every staged file was renamed: drop the staging directory (kept if not empty)
        os.rmdir(os.path.join(dest, STAGING))
    except OSError:
        pass
    rep.downloaded.sort()
    rep.skipped.sort()
    return rep


def download(url: str, dest: str, from_era: int | None = None, to_era: int | None = None,
             jobs: int = 4, verify: str = "roots", network=None, network_loader=None,
             on_event=None) -> Report:
    """Mirror the era and era1 files at `url` into `dest`; see the module docstring.
    `from_era`/`to_era` bound era numbers and era1 epochs alike.

    `network_loader(dest, names)` is called (after config files are fetched) when verification
    needs a network and none was given; it may return None."""
    if verify not in VERIFY_LEVELS:
        raise EraToolsError(f"unknown verify level {verify!r}; one of {', '.join(VERIFY_LEVELS)}")
    if from_era is not None and to_era is not None and from_era > to_era:
        raise EraToolsError(f"--from-era {from_era} is after --to-era {to_era}")

    def emit(kind, **info):
        if on_event is not None:
            on_event(kind, **info)

    dest = os.fspath(dest)
    if dest.startswith("s3://"):
        return _download_to_bucket(url, dest, from_era, to_era, jobs, verify, network,
                                   network_loader, emit)
    return client.run(_download_async(url, dest, from_era, to_era, jobs, verify,
                                      network, network_loader, emit))


def _download_to_bucket(url, dest, from_era, to_era, jobs, level, network, network_loader,
                        emit) -> Report:
    """`download` into an s3://bucket/prefix: files download and verify in a local staging
    directory exactly as into a local DEST (partial .tmp files there resume on a rerun), each
    good file is then uploaded (objstore.put_file: whole or not at all) and deleted locally.
    An object already in the bucket with the host's size and sha256 is skipped.
    checksums.txt (every era/era1 object under the prefix) is written last."""
    import hashlib as _h
    import shutil
    import tempfile

    from . import objstore

    dest = dest.rstrip("/")
    staging = os.path.join(tempfile.gettempdir(), "era-download-" +
                           _h.sha256(dest.encode()).hexdigest()[:16])
    sums: dict[str, str] = {}
    if os.path.isdir(staging):  # a killed run's files that passed but were not uploaded yet
        for n in os.listdir(staging):
            if _kind_of(n) and os.path.isfile(os.path.join(staging, n)):
                objstore.put_file(os.path.join(staging, n), objstore.join(dest, n))
                os.unlink(os.path.join(staging, n))
    have = {o.name: o for o in objstore.list_objects(dest)}

    def present(rf: RemoteFile) -> bool:
        o = have.get(rf.name)
        if o is None or (rf.size is not None and o.size != rf.size):
            return False
        digest = objstore.stored_sha256(o.url)
        if digest is None or (rf.sha256 and digest != rf.sha256):
            return False
        sums[rf.name] = digest
        return True

    def on_final(path: str, rf: RemoteFile) -> None:
        digest = sha256_file(path)
        objstore.put_file(path, objstore.join(dest, rf.name), sha256=digest, skip_same=False)
        sums[rf.name] = digest
        os.unlink(path)

    rep = client.run(_download_async(url, staging, from_era, to_era, jobs, level, network,
                                     network_loader, emit, present, on_final))
    for n in EXTRA_FILES:  # the config files the run fetched beside the eras
        p = os.path.join(staging, n)
        if os.path.isfile(p):
            objstore.put_file(p, objstore.join(dest, n))
    objstore.write_checksums(dest, sums)  # last: after every file it lists
    if not rep.bad and not rep.failed:
        shutil.rmtree(staging, ignore_errors=True)
    else:  # partial .tmp files resume from here; .bad files stay here, never in the bucket
        rep.bad_dir = staging
    return rep
