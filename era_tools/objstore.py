"""Era archives in S3-compatible object storage: `s3://bucket/prefix` URLs.

The only importer of obstore (Rust object_store; picked over boto3 by scripts/bench_objects.py,
see BENCHMARKS.md).  Configuration is the standard one and nothing else: AWS_ENDPOINT_URL
(or AWS_ENDPOINT_URL_S3), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
AWS_REGION (or AWS_DEFAULT_REGION), AWS_PROFILE, and the shared files ~/.aws/credentials and
~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), the environment winning.

What it offers: listing one "directory" level, heads, ranged and streamed reads, a file
object over ranged GETs with a read-ahead buffer (`RangeFile`, what EraReader opens for a
URL), and atomic writes (`put_file`: one PUT or a multipart upload, the object appearing
whole when it completes; `put_bytes`).  Objects this module uploads carry their sha256 as
user metadata (`x-amz-meta-sha256`), so a rerun skips an object whose size and sha256 match.

Every failure is an ObjectStoreError: one line naming the URL and what happened.  Knows
nothing of era files.  obstore's runtime threads do not survive fork(): a process that used
a bucket starts its worker pools with forkserver (procs.note_foreign_threads).
"""

from __future__ import annotations

import configparser
import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

from .errors import ObjectStoreError
from .fileio import sha256_file

SCHEME = "s3://"
CLIENT = "obstore (Rust object_store)"
# Parts of a multipart upload; files up to this size go in one PUT.
PART_SIZE = 8 << 20
# Largest read-ahead window of RangeFile (ERA_TOOLS_S3_READAHEAD overrides it, for
# measurements; 0 turns read-ahead off): what one open object may hold in memory.
DEFAULT_READAHEAD = 8 << 20
# RangeFile reads the last TAIL bytes of an object in one GET when a read lands there: a
# mainnet era's two indices (8 * 8192 + 48 bytes) and more.
TAIL = 128 << 10
# Largest object read whole into memory (config files, checksums.txt).
SMALL_OBJECT_MAX = 64 << 20
STATS: dict[str, int] = {}  # requests made, by kind (scripts/bench_objects.py reads it)


def is_url(p) -> bool:
    return isinstance(p, str) and p.startswith(SCHEME)


def split_url(url: str) -> tuple[str, str]:
    """('bucket', 'key/or/prefix') of an s3:// URL; ObjectStoreError if it has no bucket."""
    rest = url[len(SCHEME):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ObjectStoreError(f"{url}: no bucket in the URL (s3://BUCKET/PREFIX)")
    return bucket, key


def join(url: str, name: str) -> str:
    return url.rstrip("/") + "/" + name


def basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def dirname(url: str) -> str:
    """The URL of the "directory" holding the object at `url`."""
    return url.rsplit("/", 1)[0] if url.count("/") > 2 else url


def _count(kind: str) -> None:
    STATS[kind] = STATS.get(kind, 0) + 1


def isolated(fn, *args, **kwargs):
    """fn(*args, **kwargs) in a forked child, when this process has not used a bucket yet, so
    that it still may fork afterwards (`era serve`'s workers: each starts its own client);
    inline otherwise.  The result and any exception come back pickled."""
    from . import procs

    if procs._foreign_threads or not hasattr(os, "fork"):
        return fn(*args, **kwargs)
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
        return pool.submit(fn, *args, **kwargs).result()


# -- configuration ------------------------------------------------------------------------------
def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("ERA_TOOLS_S3_TIMEOUT", "30")))
    except ValueError:
        return 30.0


def _profile_settings() -> dict[str, str]:
    """Settings of AWS_PROFILE (default: "default") from ~/.aws/credentials and ~/.aws/config."""
    profile = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    out: dict[str, str] = {}
    files = [
        (os.environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config"),
         profile if profile == "default" else f"profile {profile}"),
        (os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or
         os.path.expanduser("~/.aws/credentials"), profile),
    ]
    for path, section in files:
        if not os.path.isfile(path):
            continue
        cp = configparser.RawConfigParser()
        try:
            cp.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError) as exc:
            raise ObjectStoreError(f"{path}: not a valid AWS config file: "
                                   f"{' '.join(str(exc).split())}") from exc
        if cp.has_section(section):
            out.update({k.lower(): v.strip() for k, v in cp.items(section)})
    return out


_ENV_KEYS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
             "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
             "AWS_SHARED_CREDENTIALS_FILE")
_settings_cache: dict[tuple, dict] = {}


def settings() -> dict[str, str | None]:
    """endpoint, key id, secret, session token and region, the environment first (read once
    per set of AWS_* values)."""
    key = tuple(os.environ.get(k) for k in _ENV_KEYS)
    got = _settings_cache.get(key)
    if got is None:
        got = _settings_cache[key] = _settings()
    return got


def _settings() -> dict[str, str | None]:
    env, prof = os.environ, None

    def pick(*names, profile_key=None):
        nonlocal prof
        for n in names:
            if env.get(n):
                return env[n]
        if profile_key is None:
            return None
        if prof is None:
            prof = _profile_settings()
        return prof.get(profile_key)

    return {
        "endpoint": pick("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", profile_key="endpoint_url"),
        "access_key_id": pick("AWS_ACCESS_KEY_ID", profile_key="aws_access_key_id"),
        "secret_access_key": pick("AWS_SECRET_ACCESS_KEY",
                                  profile_key="aws_secret_access_key"),
        "token": pick("AWS_SESSION_TOKEN", profile_key="aws_session_token"),
        "region": pick("AWS_REGION", "AWS_DEFAULT_REGION", profile_key="region") or "us-east-1",
    }


_stores: dict[tuple, object] = {}
_stores_lock = threading.Lock()


def _store(bucket: str):
    """The obstore S3Store for `bucket` in this process (made on first use)."""
    s = settings()
    key = (os.getpid(), bucket, *s.values(), _timeout())
    with _stores_lock:
        st = _stores.get(key)
        if st is not None:
            return st
        from obstore.store import S3Store

        from .procs import note_foreign_threads

        note_foreign_threads()  # obstore's runtime threads: no fork() from here on
        kw = {k: v for k, v in (("access_key_id", s["access_key_id"]),
                                ("secret_access_key", s["secret_access_key"]),
                                ("token", s["token"])) if v}
        t = _timeout()
        client = {"connect_timeout": timedelta(seconds=min(t, 10)),
                  "timeout": timedelta(seconds=t)}
        if s["endpoint"]:
            kw["endpoint"] = s["endpoint"]
            kw["virtual_hosted_style_request"] = False  # path style: MinIO, SeaweedFS, Ceph
            if s["endpoint"].startswith("http://"):
                client["allow_http"] = True
        try:
            st = S3Store(bucket, region=s["region"], client_options=client,
                         retry_config={"max_retries": 2,
                                       "retry_timeout": timedelta(seconds=t),
                                       "backoff": {"init_backoff": timedelta(milliseconds=100),
                                                   "max_backoff": timedelta(seconds=2),
                                                   "base": 2}},
                         **kw)
        except Exception as exc:  # obstore's configuration errors
            raise ObjectStoreError(f"s3://{bucket}: cannot configure the S3 client: "
                                   f"{_short(exc)}") from exc
        _stores[key] = st
        return st


def _endpoint() -> str:
    return settings()["endpoint"] or "AWS"


def _short(exc: BaseException) -> str:
    """The useful part of an obstore error: its last line of cause, without the Debug dump."""
    text = " ".join(str(exc).split())
    low = text.lower()
    ep = _endpoint()
    if "timed out" in low or "timedout" in low or "deadline has elapsed" in low:
        return f"timed out after {_timeout():g} s ({ep})"
    if "connection refused" in low:
        return f"connection refused ({ep})"
    if "dns error" in low or "failed to lookup address" in low:
        return f"cannot resolve the endpoint host ({ep})"
    if "nosuchbucket" in low or "specified bucket does not exist" in low:
        return "no such bucket"
    if "accessdenied" in low or "signaturedoesnotmatch" in low or "invalidaccesskeyid" in low \
            or "403 forbidden" in low or "status: 403" in low:
        return "access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    for marker in ("Client error with status", "Server error with status", "error sending "
                   "request", "connection closed"):
        i = text.find(marker)
        if i >= 0:
            return text[i:i + 160]
    return text[:200]


def _call(url: str, fn, *args, **kwargs):
    """Run one obstore call; any failure becomes ObjectStoreError("<url>: <what>")."""
    import obstore.exceptions as oe

    try:
        return fn(*args, **kwargs)
    except (oe.NotFoundError, FileNotFoundError) as exc:
        raise ObjectNotFound(f"{url}: no such object") from exc
    except (oe.PermissionDeniedError, oe.UnauthenticatedError) as exc:
        raise ObjectStoreError(f"{url}: access denied (check AWS_ACCESS_KEY_ID / "
                               "AWS_SECRET_ACCESS_KEY)") from exc
    except (ObjectStoreError, StopIteration):
        raise
    except Exception as exc:
        raise ObjectStoreError(f"{url}: {_short(exc)}") from exc


class ObjectNotFound(ObjectStoreError):
    """No object at that URL."""


# -- reading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectInfo:
    url: str
    name: str          # the part after the listed prefix
    size: int
    etag: str | None
    mtime_ns: int

    @property
    def key(self) -> tuple[int, int]:
        """(size, mtime_ns): what identifies a version, like a file's stat."""
        return (self.size, self.mtime_ns)


def _info(bucket: str, meta: dict, prefix: str) -> ObjectInfo:
    path = meta["path"]
    lm = meta.get("last_modified")
    mtime_ns = int(lm.timestamp() * 1e9) if lm is not None else 0
    return ObjectInfo(f"{SCHEME}{bucket}/{path}", path[len(prefix):], int(meta["size"]),
                      meta.get("e_tag"), mtime_ns)


def list_objects(url: str) -> list[ObjectInfo]:
    """The objects directly under the prefix `url` (one "directory" level), sorted by name."""
    import obstore

    bucket, prefix = split_url(url)
    prefix = prefix.rstrip("/")
    st = _store(bucket)
    _count("list")
    res = _call(url, obstore.list_with_delimiter, st, prefix or None)
    p = prefix + "/" if prefix else ""
    return sorted((_info(bucket, m, p) for m in res["objects"]), key=lambda o: o.name)


def files_in(url: str, suffix: str, objects_too: bool = True) -> list[str]:
    """URLs of the objects ending in `suffix` directly under the prefix `url`; `url` itself
    when it names an .era or .era1 object (and `objects_too`)."""
    if url.endswith((".era", ".era1")):
        return [url] if objects_too else []
    return [o.url for o in list_objects(url) if o.name.endswith(suffix)]


_config_copies: dict[str, str | None] = {}
CONFIG_ORIGIN: dict[str, str] = {}  # local copy -> the object's URL (for messages)


def config_beside(url: str, names, companions=()) -> str | None:
    """A local copy of the first of `names` under the prefix `url` (with any `companions`
    beside it, e.g. genesis.json), made once per process; None if there is none."""
    if url in _config_copies:
        return _config_copies[url]
    import atexit
    import shutil
    import tempfile

    have = {o.name: o for o in list_objects(url)}
    found = next((n for n in names if n in have), None)
    local = None
    if found is not None:
        d = tempfile.mkdtemp(prefix="era-s3-config-")
        atexit.register(shutil.rmtree, d, True)
        for n in (found, *companions):
            if n in have:
                with open(os.path.join(d, n), "wb") as f:
                    f.write(get_bytes(join(url, n), max_size=16 << 20))
        local = os.path.join(d, found)
        CONFIG_ORIGIN[local] = join(url, found)
    _config_copies[url] = local
    return local


def prefix_exists(url: str) -> bool:
    """True if anything lies under the prefix `url` (an object or a "subdirectory")."""
    import obstore

    bucket, prefix = split_url(url)
    prefix = prefix.rstrip("/")
    _count("list")
    res = _call(url, obstore.list_with_delimiter, _store(bucket), prefix or None)
    return bool(res["objects"] or res["common_prefixes"])


def head(url: str) -> ObjectInfo | None:
    """Size, ETag and time of the object at `url`, or None if there is none."""
    import obstore

    bucket, key = split_url(url)
    _count("head")
    try:
        meta = _call(url, obstore.head, _store(bucket), key)
    except ObjectNotFound:
        return None
    return _info(bucket, meta, dirname(key) + "/" if "/" in key else "")


def stored_sha256(url: str) -> str | None:
    """The sha256 this module recorded when it uploaded the object (None: none recorded)."""
    import obstore

    bucket, key = split_url(url)
    _count("head")
    res = _call(url, obstore.get, _store(bucket), key, options={"head": True})
    v = res.attributes.get("sha256")
    return v if isinstance(v, str) and len(v) == 64 else None


def get_range(url: str, start: int, length: int) -> bytes:
    """`length` bytes at `start` (fewer only where the object ends)."""
    import obstore

    if length <= 0:
        return b""
    bucket, key = split_url(url)
    _count("get_range")
    return bytes(_call(url, obstore.get_range, _store(bucket), key, start=start,
                       length=length))


def iter_chunks(url: str, chunk: int = 4 << 20, start: int = 0,
                end: int | None = None) -> Iterator[bytes]:
    """The object's bytes from `start` to `end` (exclusive; default: its end), streamed in
    pieces of about `chunk`."""
    import obstore

    bucket, key = split_url(url)
    _count("get")
    opts = ({"range": (start, end)} if end is not None else
            {"range": {"offset": start}} if start else None)
    res = _call(url, obstore.get, _store(bucket), key, options=opts)
    it = iter(res.stream(min_chunk_size=chunk))
    while True:
        try:
            piece = _call(url, next, it)
        except StopIteration:
            return
        yield bytes(piece)


def get_bytes(url: str, max_size: int = SMALL_OBJECT_MAX) -> bytes:
    """A small object whole (config files, checksums.txt); refused above `max_size`."""
    info = head(url)
    if info is None:
        raise ObjectNotFound(f"{url}: no such object")
    if info.size > max_size:
        raise ObjectStoreError(f"{url}: {info.size} bytes, more than the {max_size} read whole")
    return b"".join(iter_chunks(url))


def download_file(url: str, dest: str, expected_size: int | None = None,
                  progress=None) -> str:
    """Stream the object at `url` to local `dest` (through `dest`.tmp, renamed when whole);
    returns its sha256 hex."""
    tmp = dest + ".tmp"
    h = hashlib.sha256()
    n = 0
    try:
        with open(tmp, "wb") as f:
            for piece in iter_chunks(url):
                f.write(piece)
                h.update(piece)
                n += len(piece)
                if progress:
                    progress(len(piece))
            f.flush()
            os.fsync(f.fileno())
        if expected_size is not None and n != expected_size:
            raise ObjectStoreError(f"{url}: read {n} bytes, the listing said {expected_size}")
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return h.hexdigest()


class RangeFile:
    """A read-only, seekable binary file over one object, read with ranged GETs.

    Read-ahead adapts like the kernel's: a read that misses the buffer fetches a window
    instead of just its bytes; the window starts at MIN_WINDOW and doubles (up to the
    read-ahead, ERA_TOOLS_S3_READAHEAD) while reads follow each other in order, and falls
    back to MIN_WINDOW on a jump (backwards, or forward by more than the window).  So a reader walking records in order (header, then data)
    makes a few large GETs, and a server answering one block here and one there does not
    fetch megabytes for each.  A read that runs past the buffer's end keeps the part it has
    and fetches the rest.  `pread(n, offset)` is thread-safe (the serve catalog calls it from
    several threads); the size comes from one HEAD at open, or from the caller's listing."""

    MIN_WINDOW = 64 << 10

    def __init__(self, url: str, size: int | None = None, readahead: int | None = None):
        self.url = self.name = url
        if size is None:
            info = head(url)
            if info is None:
                raise ObjectNotFound(f"{url}: no such object")
            size = info.size
        self.size = size
        if readahead is None:
            try:
                readahead = int(os.environ.get("ERA_TOOLS_S3_READAHEAD", DEFAULT_READAHEAD))
            except ValueError:
                readahead = DEFAULT_READAHEAD
        self.readahead = max(0, readahead)
        self._window = min(self.MIN_WINDOW, self.readahead)
        self._buf, self._buf_at, self._last_end = b"", 0, 0
        self._pos = 0
        self._lock = threading.Lock()
        self.closed = False

    def pread(self, n: int, offset: int) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if offset >= self.size or n <= 0:
            return b""
        n = min(n, self.size - offset)
        with self._lock:
            buf, at, last_end, window = self._buf, self._buf_at, self._last_end, self._window
        end = at + len(buf)
        if at <= offset and offset + n <= end:  # a hit
            with self._lock:
                self._last_end = offset + n
            return buf[offset - at:offset - at + n]
        if not self.readahead:
            return get_range(self.url, offset, n)
        # in order (from inside the buffer, or forward from the last read by less than the
        # window: a walk over record headers skips each record's data): widen
        sequential = at <= offset <= end or last_end <= offset <= max(end, last_end) + window
        window = min(window * 2, self.readahead) if sequential else \
            min(self.MIN_WINDOW, self.readahead)
        if not sequential and offset + n + TAIL >= self.size:
            # near the end, where readers start (an era file's indices are read backwards
            # from its last byte): the whole tail in one GET
            start = max(0, self.size - max(TAIL, n))
            data = get_range(self.url, start, self.size - start)
            with self._lock:
                self._buf, self._buf_at, self._last_end = data, start, offset + n
            return data[offset - start:offset - start + n]
        keep = buf[offset - at:] if at <= offset < end else b""
        fetch_at = offset + len(keep)
        want = min(max(n - len(keep), window), self.size - fetch_at)
        data = keep + get_range(self.url, fetch_at, want)
        with self._lock:
            self._buf, self._buf_at = data, offset
            self._last_end, self._window = offset + n, window
        return data[:n]

    # the io interface EraReader and e2store use
    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        data = self.pread(n, self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def fileno(self) -> int:
        import io

        raise io.UnsupportedOperation("an object in a bucket has no file descriptor")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True
        self._buf = b""

    def __enter__(self) -> "RangeFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_file(url: str, size: int | None = None) -> RangeFile:
    return RangeFile(url, size)


# -- writing ------------------------------------------------------------------------------------
def put_file(path, url: str, sha256: str | None = None, skip_same: bool = True) -> bool:
    """Upload local file `path` to `url` atomically: a single PUT up to PART_SIZE, else a
    multipart upload that becomes the object only when it completes (a killed upload leaves
    no object; the bucket's lifecycle rules reclaim its parts).  The object carries the
    file's sha256 as metadata.  With `skip_same`, an object of the same size and recorded
    sha256 is left as it is (an interrupted run resumes per file).  True if it uploaded."""
    import obstore
    from pathlib import Path

    path = os.fspath(path)
    size = os.path.getsize(path)
    digest = sha256 or sha256_file(path)
    if skip_same:
        info = head(url)
        if info is not None and info.size == size and stored_sha256(url) == digest:
            return False
    bucket, key = split_url(url)
    _count("put")
    _call(url, obstore.put, _store(bucket), key, Path(path),
          attributes={"sha256": digest, "Content-Type": "application/octet-stream"},
          use_multipart=size > PART_SIZE, chunk_size=PART_SIZE, max_concurrency=4)
    return True


def put_bytes(url: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    """Write a small object whole (checksums.txt, index.json, config files): one PUT, so it
    appears complete or not at all."""
    import obstore

    bucket, key = split_url(url)
    _count("put")
    _call(url, obstore.put, _store(bucket), key, bytes(data),
          attributes={"sha256": hashlib.sha256(data).hexdigest(),
                      "Content-Type": content_type},
          use_multipart=False)


def write_checksums(url: str, known: dict[str, str], suffixes=(".era", ".era1")) -> dict:
    """Write `url`/checksums.txt (`sha256sum` lines) for every object under the prefix whose
    name ends in `suffixes`: the sha256 in `known`, else the one recorded on the object,
    else the object hashed as it streams.  Call it after the files it lists are uploaded."""
    sums = {n: h for n, h in known.items() if n.endswith(suffixes)}
    for o in list_objects(url):
        if o.name.endswith(suffixes) and o.name not in sums:
            digest = stored_sha256(o.url)
            if digest is None:
                h = hashlib.sha256()
                for piece in iter_chunks(o.url):
                    h.update(piece)
                digest = h.hexdigest()
            sums[o.name] = digest
    put_bytes(join(url, "checksums.txt"),
              "".join(f"{sums[n]}  {n}\n" for n in sorted(sums)).encode(),
              content_type="text/plain")
    return sums


def delete(url: str) -> None:
    import obstore

    bucket, key = split_url(url)
    _count("delete")
    try:
        _call(url, obstore.delete, _store(bucket), key)
    except ObjectNotFound:
        pass


def publish(local_dir, url: str, names, *, listing_files=("checksums.txt", "index.json"),
            progress=None) -> dict[str, bool]:
    """Upload the files `names` of `local_dir` to the prefix `url`, then (after all of them)
    whichever of `listing_files` exist in `local_dir`: a reader never sees a checksums.txt
    or index.json naming an object that is not there yet.  Objects whose size and sha256
    already match are skipped.  Returns {name: uploaded?}.  The API a publisher of new eras
    (era sync --publish) calls after writing them locally."""
    done: dict[str, bool] = {}
    for n in names:
        done[n] = put_file(os.path.join(os.fspath(local_dir), n), join(url, n))
        if progress:
            progress(n, done[n])
    for n in listing_files:
        p = os.path.join(os.fspath(local_dir), n)
        if n not in done and os.path.isfile(p):
            done[n] = put_file(p, join(url, n))
            if progress:
                progress(n, done[n])
    return done
