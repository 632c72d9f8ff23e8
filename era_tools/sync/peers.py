"""HTTP to beacon nodes and peers: the only module that imports requests.

    HttpClient     the one retrying core every request goes through: per-thread sessions,
                   timeouts, the RetryPolicy (which failures are retried, how often, delays),
                   body caps and stall bounds, one-line PeerFault messages naming the URL, and
                   a fast path (`get_into`: http.client into a reused buffer) for range replies
    BeaconApiClient   the standard Beacon API over an HttpClient:
        api = BeaconApiClient("http://127.0.0.1:5052")
        api.spec(), api.genesis(), api.syncing(), api.finalized_checkpoint()
        api.block(slot)    -> BlockResponse(fork, ssz) or None (404: empty slot / not held)
        api.state(slot)    -> StateResponse(fork, ssz) or None
    BackfillPeer   a backfill peer (range endpoint or Beacon API) over an HttpClient

SSZ is asked for with `Accept: application/octet-stream`; a node that ignores it and answers
JSON (older nodes) is handled by converting the JSON `data` to SSZ with the fork named in
`version`.  The fork comes from `Eth-Consensus-Version` (or JSON `version`) and is checked
against the network's schedule by the caller.  Knows nothing of stores or files.
"""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlsplit
from dataclasses import dataclass
from typing import Callable

import requests

from .. import safejson
from ..errors import EraToolsError, PeerError

SSZ_MIME = "application/octet-stream"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_JSON_BYTES = 64 << 20      # a node's JSON answers (spec, genesis, ...)
MAX_STATE_BYTES = 8 << 30      # a state (mainnet: hundreds of MB, growing)
MAX_BLOCK_BYTES = 10 * 1024 * 1024      # MAX_CHUNK_SIZE of the p2p spec
MIN_BLOCK_BYTES = 100          # no SignedBeaconBlock is shorter (what a block chunk may announce)
ERROR_PAGE_BYTES = 4096        # what is kept of the body of an answer that is not 200
STALL_FACTOR = 4               # a body not complete within this many timeouts: a stall


class PeerFault(PeerError):
    """A peer answered badly.  `kind` says how bad: "bad" (garbage, lies), "timeout" (no
    answer, refused, reset, stalled), "missing" (404 / short / HTTP error)."""

    def __init__(self, message: str, kind: str = "bad"):
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------------------------
# The one HTTP core: every request era_tools makes to a beacon node or a peer goes through
# HttpClient (the retry policy, timeouts, body caps and the wording of failures live here).


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is tried and how long to wait between tries.  A transport failure
    (refused, reset, timed out) and an answer with a status in `statuses` are retried; try
    n + 1 waits `delay(n)` = backoff * 2^(n-1) s (at most `max_delay`).  Any other answer is
    the caller's to judge."""

    tries: int = 3
    backoff: float = 0.25
    max_delay: float = 5.0
    statuses: frozenset = RETRY_STATUS

    def __post_init__(self):
        object.__setattr__(self, "tries", max(1, int(self.tries)))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        return min(self.backoff * 2 ** (attempt - 1), self.max_delay)

    def give_up(self, url: str, last: str, kind: str) -> PeerFault:
        """The one-line error once every try failed; `last` says how the last one did."""
        return PeerFault(f"{url}: failed after {self.tries} tries: {last}", kind)


NO_RETRY = RetryPolicy(tries=1)
TRANSPORT_ERRORS = (requests.RequestException, OSError, http.client.HTTPException)


@dataclass
class Reply:
    """An answer: status, headers (case-insensitive), body (a memoryview of a reused buffer
    for `HttpClient.get_into`)."""

    status: int
    headers: object
    body: bytes | memoryview
    url: str
    stream: object = None   # get_into with a sink: what parsed the body (body: its rest)

    @property
    def status_code(self) -> int:   # the names of a requests.Response, for old callers
        return self.status

    @property
    def content(self):
        return self.body

    @property
    def media_type(self) -> str:
        return media_type(self.headers)

    def json(self, failure: str = "JSON response does not parse"):
        return parse_json(self.body, self.url, failure)

    def ok(self, allow_404: bool = False) -> "Reply | None":
        """This answer if it is a 200; None for a 404 when `allow_404`; any other status a
        PeerFault "missing" (`URL: HTTP 500: what the server said`)."""
        if self.status == 404 and allow_404:
            return None
        if self.status != 200:
            raise PeerFault(f"{self.url}: {self.describe()}", "missing")
        return self

    def describe(self) -> str:
        """"HTTP 503: what the peer said" (its Era-Tools-Error header, else its error page)."""
        said = self.headers.get("Era-Tools-Error") or bytes(
            self.body[:ERROR_PAGE_BYTES]).decode("utf-8", "replace")
        said = _short(said)
        return f"HTTP {self.status}: {said}" if said else f"HTTP {self.status}"


def parse_json(body, url: str, failure: str = "JSON response does not parse"):
    """`body` as JSON (nesting bounded: safejson); PeerFault `URL: failure` if it is not."""
    try:
        return safejson.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise PeerFault(f"{url}: {failure}") from exc


def media_type(headers) -> str:
    """"application/json" of "Application/JSON; charset=utf-8"."""
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


class _BodyCap:
    """The size and time bounds of one body: an announced Content-Length past `limit` is
    refused before anything is read, a body that grows past it while read is refused (an
    error page, `cut`, is cut instead), and one not complete within `stall` s is a stall."""

    def __init__(self, url: str, limit: int, stall: float | None, cut: bool = False):
        self.url, self.limit, self.cut = url, limit, cut
        self.deadline = None if stall is None else time.monotonic() + stall
        self.stall = stall

    def announced(self, clen: str | None) -> None:
        if clen and clen.isascii() and clen.isdigit() and int(clen) > self.limit and \
                not self.cut:
            raise PeerFault(f"{self.url}: response of {clen} bytes exceeds the limit "
                            f"{self.limit}")

    def check(self, size: int) -> bool:
        """False once an error page is long enough; raises past the limit or the time."""
        if size > self.limit:
            if self.cut:
                return False
            raise PeerFault(f"{self.url}: response exceeds the limit {self.limit} bytes")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise PeerFault(f"{self.url}: response not complete within {self.stall:g} s",
                            "timeout")
        return True


class HttpClient:
    """GETs to one server (`base_url`): per-thread `requests` sessions, a timeout on every
    request, retries by `retry` (a RetryPolicy), bodies capped (`limit`) and stall-bounded, and
    every failure a one-line PeerFault naming the URL.  `get` reads through `requests`;
    `get_into` is the fast path for binary answers (range replies, REST blocks): `http.client`
    over one kept-alive connection per thread, straight into a buffer the thread reuses
    (requests would hand over 1 MB chunks and join them: two more copies; BENCHMARKS.md), to
    the server directly, not through a proxy from the environment.  Thread-safe."""

    def __init__(self, base_url: str, timeout: float = 30.0, retry: RetryPolicy = RetryPolicy(),
                 user_agent: str = "era_tools"):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self.user_agent = user_agent
        self.requests_made = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: set = set()  # every thread's fast-path connection, for close()

    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
            s.headers["User-Agent"] = self.user_agent
        return s

    def describe(self, exc: BaseException, url: str, timeout: float | None = None) -> str:
        return transport_error(exc, url, timeout or self.timeout)

    def _count(self) -> None:
        with self._lock:
            self.requests_made += 1

    def _retrying(self, url: str, timeout: float, once: Callable[[], Reply]) -> Reply:
        """once() under the retry policy: the first answer whose status is not retried."""
        last, kind = "", "timeout"
        for attempt in range(self.retry.tries):
            if attempt:
                time.sleep(self.retry.delay(attempt))
            try:
                reply = once()
            except TRANSPORT_ERRORS as exc:
                last, kind = transport_error(exc, url, timeout), "timeout"
                continue
            if reply.status not in self.retry.statuses:
                return reply
            last, kind = reply.describe(), "missing"
        raise self.retry.give_up(url, last, kind)

    def get(self, path: str, accept: str = "application/json", timeout: float | None = None,
            limit: int = MAX_JSON_BYTES, stall: float | None = STALL_FACTOR,
            on_headers: Callable[[int, object], None] | None = None,
            progress: Callable[[int, int | None], None] | None = None) -> Reply:
        """GET `path` (retried): a Reply of any status the policy does not retry.  A 200 body
        is read whole, refused past `limit` bytes (or an announced Content-Length past it) and
        past `stall` timeouts (None: no bound); another status keeps the start of its body.
        `on_headers(status, headers)` may refuse an answer before its body is read;
        `progress(bytes_so_far, total_or_None)` follows a 200 body."""
        url = self.base_url + path
        t = timeout or self.timeout

        def once() -> Reply:
            with self.session().get(url, headers={"Accept": accept}, timeout=t,
                                    stream=True) as r:
                self._count()
                if on_headers is not None:
                    on_headers(r.status_code, r.headers)
                cap = _BodyCap(url, limit if r.status_code == 200 else ERROR_PAGE_BYTES,
                               None if stall is None else stall * t, r.status_code != 200)
                clen = r.headers.get("Content-Length")
                cap.announced(clen)
                total = int(clen) if clen and clen.isascii() and clen.isdigit() else None
                parts, size = [], 0   # joined once at the end: one copy of the body
                for chunk in r.iter_content(1 << 20):
                    parts.append(chunk)
                    size += len(chunk)
                    if not cap.check(size):
                        break
                    if progress is not None and r.status_code == 200:
                        progress(size, total)
                body = b"".join(parts)
                return Reply(r.status_code, r.headers,
                             body if r.status_code == 200 else body[:ERROR_PAGE_BYTES], url)

        return self._retrying(url, t, once)

    def get_ok(self, path: str, accept: str = "application/json", timeout: float | None = None,
               limit: int = MAX_JSON_BYTES, allow_404: bool = False, **kw) -> Reply | None:
        """`get`, and any answer but 200 a PeerFault "missing" (`URL: HTTP 500: what the
        server said`); a 404 is None when `allow_404` (Reply.ok)."""
        return self.get(path, accept, timeout, limit, **kw).ok(allow_404)

    # -- the fast path -------------------------------------------------------------------------
    def _conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn
        if conn is not None:
            self.drop_conn()
        u = urlsplit(self.base_url)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = self._local.conn = cls(u.hostname, u.port, timeout=self.timeout)
        with self._lock:
            self._conns.add(conn)
        return conn

    def drop_conn(self) -> None:
        """Close this thread's fast-path connection (a half-read answer makes it unusable)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                self._conns.discard(conn)

    @property
    def open_connections(self) -> set:
        return self._conns

    def get_into(self, path: str, accept: str, limit: int, timeout: float | None = None,
                 stall: float | None = STALL_FACTOR, sink: Callable[[], object] | None = None
                 ) -> Reply:
        """`get` over this thread's kept-alive http.client connection, the body a memoryview
        of this thread's reused buffer: valid until this thread's next call.  A kept-alive
        connection the server closed meanwhile is reopened once (not a failed try).

        With `sink` (a factory, called once per try: e.g. RangeBody), a 200 body is parsed
        while it arrives: the sink's `feed(view, base)` takes what it can from the start of
        the bytes received and not yet taken, and returns how many it took; the buffer only
        holds the rest (it grows only for one chunk bigger than it).  The Reply's `stream`
        is the sink, its `body` the bytes the sink never took."""
        url = self.base_url + path
        t = timeout or self.timeout
        target = urlsplit(self.base_url).path.rstrip("/") + path
        headers = {"Accept": accept, "Accept-Encoding": "identity",
                   "User-Agent": self.user_agent}

        def once() -> Reply:
            try:
                for attempt in (0, 1):
                    reused = getattr(self._local, "conn", None) is not None
                    conn = self._conn(fresh=attempt > 0)
                    conn.timeout = t
                    if conn.sock is not None:
                        conn.sock.settimeout(t)
                    try:
                        conn.request("GET", target, headers=headers)
                        resp = conn.getresponse()
                        break
                    except (http.client.RemoteDisconnected, BrokenPipeError,
                            ConnectionResetError):
                        if attempt or not reused:  # a kept-alive connection closed: once
                            raise
                self._count()
                return self._read_into(resp, url, limit, None if stall is None else stall * t,
                                       None if sink is None or resp.status != 200 else sink())
            except BaseException:
                self.drop_conn()  # a half-read response: the connection is unusable
                raise

        return self._retrying(url, t, once)

    def _read_into(self, resp, url: str, limit: int, stall: float | None,
                   stream=None) -> Reply:
        ok = resp.status == 200
        cap = _BodyCap(url, limit if ok else ERROR_PAGE_BYTES, stall, cut=not ok)
        cap.announced(resp.getheader("Content-Length"))
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = bytearray(4 << 20)
        fill = taken = 0   # bytes in buf; bytes of the body before buf[0] (the sink's)
        while True:
            if fill == len(buf):
                if taken + fill >= cap.limit + 1:
                    cap.check(taken + fill)
                    break
                grown = bytearray(min(2 * len(buf), cap.limit + 1 - taken))
                grown[:fill] = buf
                buf = self._local.buf = grown
            with memoryview(buf) as mv:
                k = resp.readinto(mv[fill:fill + (1 << 20)])
                if not k:
                    break
                fill += k
                if not cap.check(taken + fill):
                    self.drop_conn()   # an error page cut short: the rest is unread
                    fill = min(fill, ERROR_PAGE_BYTES)
                    break
                if stream is not None:
                    used = stream.feed(mv[:fill], taken)
                    if used:
                        mv[:fill - used] = mv[used:fill]
                        fill -= used
                        taken += used
        if resp.will_close:
            self.drop_conn()
        return Reply(resp.status, resp.headers, memoryview(buf)[:fill], url, stream)

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            conn.close()


@dataclass(frozen=True)
class SszResponse:
    fork: str | None
    ssz: bytes
    url: str
    digest: bytes | None = None   # the fork digest of an item of an SSZ list (light client)


LIGHT_CLIENT = "/eth/v1/beacon/light_client"
MAX_LIGHT_CLIENT_ITEM = 1 << 20   # a mainnet LightClientUpdate is ~26 KB


BlockResponse = StateResponse = SszResponse


class BeaconApiClient:
    def __init__(self, base_url: str, timeout: float = 30.0, state_timeout: float = 360.0,
                 retries: int = 3, backoff: float = 0.25,
                 json_to_ssz: Callable[[dict, str, str], bytes] | None = None,
                 preset_base: str | None = None, user_agent: str = "era_tools"):
        self.http = HttpClient(base_url, timeout, RetryPolicy(retries, backoff), user_agent)
        self.base_url = self.http.base_url
        self.timeout = timeout
        self.state_timeout = state_timeout
        self.preset_base = preset_base
        self._json_to_ssz = json_to_ssz
        self.user_agent = user_agent
        # slot -> fork name, when the network is known: names the fork of a light-client JSON
        # answer that carries no `version` (nor Eth-Consensus-Version header)
        self.fork_at_slot: Callable[[int], str] | None = None

    @property
    def retries(self) -> int:
        return self.http.retry.tries

    @property
    def backoff(self) -> float:
        return self.http.retry.backoff

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    # -- transport (HttpClient) ------------------------------------------------------------
    def get(self, path: str, accept: str = "application/json", timeout: float | None = None,
            allow_404: bool = False, limit: int = MAX_JSON_BYTES) -> Reply | None:
        """GET with retries.  Returns None for a 404 when allow_404.  The body is read in a
        stream and refused past `limit` bytes (or an announced Content-Length past it)."""
        return self.http.get_ok(path, accept, timeout, limit, allow_404)

    def get_json(self, path: str) -> dict:
        return parse_json(self.get(path).content, self.base_url + path, "response is not JSON")

    # -- node facts ------------------------------------------------------------------------
    def spec(self) -> dict:
        return _mapping(self.get_json("/eth/v1/config/spec"), "/eth/v1/config/spec", self)

    def genesis(self) -> dict:
        return _mapping(self.get_json("/eth/v1/beacon/genesis"), "/eth/v1/beacon/genesis", self)

    def syncing(self) -> dict:
        return _mapping(self.get_json("/eth/v1/node/syncing"), "/eth/v1/node/syncing", self)

    def finality_checkpoints(self, state_id: str = "head") -> dict:
        path = f"/eth/v1/beacon/states/{state_id}/finality_checkpoints"
        return _data(self.get_json(path), path, self)

    def finalized_epoch(self) -> int:
        return self.finalized_checkpoint()[0]

    def finalized_checkpoint(self) -> tuple[int, bytes | None]:
        """(epoch, block root or None when not 32 bytes of hex) of the finalized checkpoint."""
        cp = self.finality_checkpoints()
        try:
            epoch = int(cp["finalized"]["epoch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PeerError(f"{self.base_url}: finality_checkpoints has no finalized epoch") \
                from exc
        try:
            root = bytes.fromhex(str(cp["finalized"].get("root", ""))[2:])
        except ValueError:
            root = b""
        return epoch, root if len(root) == 32 else None

    # -- SSZ objects -----------------------------------------------------------------------
    def block(self, slot: int | str) -> SszResponse | None:
        return self._ssz(f"/eth/v2/beacon/blocks/{slot}", "SignedBeaconBlock", self.timeout)

    def state(self, slot: int | str) -> SszResponse | None:
        return self._ssz(f"/eth/v2/debug/beacon/states/{slot}", "BeaconState",
                         self.state_timeout)

    # -- light client (beacon-APIs `light_client` routes) --------------------------------------
    def light_client_bootstrap(self, block_root: bytes) -> SszResponse | None:
        """`LightClientBootstrap` for a block root, or None (404)."""
        return self._ssz(f"{LIGHT_CLIENT}/bootstrap/0x{bytes(block_root).hex()}",
                         "LightClientBootstrap", self.timeout, light_client=True)

    def light_client_finality_update(self) -> SszResponse | None:
        return self._ssz(f"{LIGHT_CLIENT}/finality_update", "LightClientFinalityUpdate",
                         self.timeout, light_client=True)

    def light_client_optimistic_update(self) -> SszResponse | None:
        return self._ssz(f"{LIGHT_CLIENT}/optimistic_update", "LightClientOptimisticUpdate",
                         self.timeout, light_client=True)

    def _light_client_fork(self, doc, fork: str | None) -> str | None:
        """The fork of a light-client JSON answer: `version`, else the header's fork, else
        the fork of its header's slot (`fork_at_slot`), for nodes that name none."""
        if fork or not isinstance(doc, dict) or doc.get("version") or self.fork_at_slot is None:
            return fork
        data = doc.get("data")
        header = (data.get("header") or data.get("attested_header")) if isinstance(
            data, dict) else None
        try:
            return self.fork_at_slot(int(header["beacon"]["slot"]))
        except (TypeError, KeyError, ValueError):
            return fork

    def light_client_updates(self, start_period: int, count: int) -> list[SszResponse]:
        """The best `LightClientUpdate` of each period in [start_period, start_period + count).
        SSZ answers are a sequence of chunks `<length: uint64 LE><fork digest: 4><ssz>`
        (`length` counts the digest and the payload); each item comes back with its `digest`
        and no fork: the caller maps digests to forks.  JSON answers (a list of
        `{"version", "data"}`) come back with their `fork`."""
        path = f"{LIGHT_CLIENT}/updates?start_period={int(start_period)}&count={int(count)}"
        url = self.base_url + path
        resp = self.get(path, accept=SSZ_MIME, allow_404=True)
        if resp is None:
            return []
        if resp.media_type == "application/json":
            doc = resp.json()
            if isinstance(doc, dict) and isinstance(doc.get("data"), list):
                doc = doc["data"]  # tolerate a wrapped list
            if not isinstance(doc, list):
                raise PeerError(f"{url}: JSON response is not a list")
            return [ssz_from_json(item, "LightClientUpdate", self._light_client_fork(item, None),
                                  self._json_to_ssz, url) for item in doc]
        return parse_light_client_chunks(resp.content, url)

    def _ssz(self, path: str, type_name: str, timeout: float,
             light_client: bool = False) -> SszResponse | None:
        url = self.base_url + path
        resp = self.get(path, accept=SSZ_MIME, timeout=timeout, allow_404=True,
                        limit=MAX_STATE_BYTES if type_name == "BeaconState" else
                        4 * MAX_BLOCK_BYTES)  # room for a JSON answer's hex
        if resp is None:
            return None
        fork = resp.headers.get("Eth-Consensus-Version")
        fork = fork.lower() if fork else None
        if resp.media_type == "application/json":
            doc = resp.json()
            if light_client:
                fork = self._light_client_fork(doc, fork)
            return ssz_from_json(doc, type_name, fork, self._json_to_ssz, url)
        return SszResponse(fork, resp.content, url)


def finalized_events(api: BeaconApiClient, on_epoch: Callable[[int], None], stop,
                     timeout: float = 60.0, on_open: Callable[[], None] | None = None) -> bool:
    """Follow the node's `finalized_checkpoint` event stream (server-sent events on
    /eth/v1/events?topics=finalized_checkpoint), calling on_epoch(epoch) for each event,
    until `stop` (a threading.Event) is set or the stream ends.  False at once when the node
    has no event stream (404/400/501, or not `text/event-stream`); PeerError when it cannot
    be reached.  Quiet streams are fine: `timeout` bounds the wait for each line.
    `on_open()` is called once the stream is open (a move just before it is not sent: the
    caller polls once then)."""
    url = api.base_url + "/eth/v1/events?topics=finalized_checkpoint"
    try:
        with api.http.session().get(url, headers={"Accept": "text/event-stream"}, stream=True,
                                timeout=(api.timeout, timeout)) as r:
            if r.status_code != 200 or media_type(r.headers) != "text/event-stream":
                return False
            if on_open:
                on_open()
            event = None
            for line in r.iter_lines(chunk_size=1, decode_unicode=True):
                if stop.is_set():
                    return True
                if line is None:
                    continue
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in (None, "finalized_checkpoint"):
                    try:
                        on_epoch(int(safejson.loads(line[5:])["epoch"]))
                    except (ValueError, KeyError, TypeError, RecursionError):
                        pass  # a malformed event: the next poll catches up anyway
                elif not line:
                    event = None
            return True
    except requests.Timeout:
        return True  # quiet for `timeout` s: the caller reconnects
    except requests.RequestException as exc:
        raise PeerFault(f"{url}: {api.http.describe(exc, url)}", "timeout") from exc


def ssz_from_json(doc, type_name: str, fork: str | None,
                  convert: Callable[[dict, str, str], bytes] | None, url: str,
                  error=PeerError) -> SszResponse:
    """A JSON answer of a node that ignores `Accept: application/octet-stream` (older nodes,
    Lodestar 1.5.1): the fork from `version` (else the Eth-Consensus-Version header `fork`),
    `data` converted to SSZ by `convert` (era_tools.ssz.json.json_to_ssz_for)."""
    if not isinstance(doc, dict):
        raise error(f"{url}: JSON response is not an object")
    fork = (str(doc.get("version") or fork or "")).lower() or None
    if fork is None:
        raise error(f"{url}: JSON response names no fork (no `version`, no "
                    "Eth-Consensus-Version header)")
    if convert is None:
        raise error(f"{url}: node answered JSON and no JSON decoder is set")
    if "data" not in doc:
        raise error(f"{url}: JSON response has no `data`")
    try:
        data = convert(doc["data"], type_name, fork)
    except EraToolsError as exc:
        raise error(f"{url}: {exc}") from exc
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # malformed JSON data
        raise error(f"{url}: JSON `data` is not a {fork} {type_name}: "
                    f"{type(exc).__name__}: {exc}") from exc
    return SszResponse(fork, data, url)


def parse_light_client_chunks(body: bytes, url: str) -> list[SszResponse]:
    """Split an SSZ `updates` answer into its items; every length is checked against what is
    left of the body (and a 1 MiB bound) before it is used."""
    out, pos, n = [], 0, len(body)
    while pos < n:
        if n - pos < 12:
            raise PeerError(f"{url}: byte {pos}: truncated light-client chunk header")
        length = int.from_bytes(body[pos:pos + 8], "little")
        if length < 4 or length > MAX_LIGHT_CLIENT_ITEM + 4 or pos + 8 + length > n:
            raise PeerError(f"{url}: byte {pos}: light-client chunk length {length} does not "
                            f"fit the {n - pos - 8} bytes left")
        out.append(SszResponse(None, bytes(body[pos + 12:pos + 8 + length]), url,
                               digest=bytes(body[pos + 8:pos + 12])))
        pos += 8 + length
    return out


def transport_error(exc: BaseException, url: str, timeout: float) -> str:
    """What went wrong under an HTTP request, in a few words: "connection refused
    (HOST:PORT)", "timed out after N s", "cannot resolve host HOST", ... (requests and urllib3
    wrap the OS error in several layers of their own text)."""
    import socket

    u = urlsplit(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    where = f"{u.hostname}:{port}"
    chain, e = [], exc
    while e is not None and len(chain) < 10:  # the exception and what caused it
        chain.append(e)
        e = e.__cause__ or e.__context__ or (e.args[0] if e.args and isinstance(
            e.args[0], BaseException) else None) or getattr(e, "reason", None)
        if not isinstance(e, BaseException):
            e = None
    text = " ".join(str(x) for x in chain).lower()
    if any(isinstance(x, (requests.Timeout, TimeoutError, socket.timeout)) for x in chain) \
            or "timed out" in text:
        return f"timed out after {timeout:g} s ({where})"
    if any(isinstance(x, ConnectionRefusedError) for x in chain) or "refused" in text:
        return f"connection refused ({where})"
    if any(isinstance(x, socket.gaierror) for x in chain) or "name or service not known" in \
            text or "name resolution" in text or "nodename nor servname" in text:
        return f"cannot resolve host {u.hostname}"
    if any(isinstance(x, (ConnectionResetError, http.client.RemoteDisconnected))
           for x in chain) or "reset by peer" in text or "remote end closed" in text:
        return f"connection closed by the peer ({where})"
    return f"{type(exc).__name__}: {_short(str(exc), 120)}"


def _data(doc, path, client):
    if not isinstance(doc, dict) or "data" not in doc:
        raise PeerError(f"{client.base_url}{path}: response has no `data`")
    return doc["data"]


def _mapping(doc, path, client) -> dict:
    data = _data(doc, path, client)
    if not isinstance(data, dict):
        raise PeerError(f"{client.base_url}{path}: `data` is {type(data).__name__}, not an object")
    return data


def _short(text: str, n: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[:n] + "…"


# --------------------------------------------------------------------------------------------
# Backfill peers (added for `era backfill`): standard beacon nodes (one GET per slot) or
# era_tools servers (the range endpoint, docs/protocol.md).  No retries here: the backward
# sync queue retries a failed batch with another peer and keeps the scores.

RANGE_PATH = "/era_tools/v1/blocks_by_range"


@dataclass
class RawBlock:
    slot: int
    ssz: bytes | None = None         # uncompressed SSZ (REST peers)
    framed: bytes | None = None      # snappy-framed SSZ (range peers, stored as is)
    digest: bytes | None = None      # fork digest of the chunk (range peers)
    length: int | None = None        # announced uncompressed length (range peers)
    fork: str | None = None          # the fork a JSON answer named (REST peers)


@dataclass
class PeerReply:
    blocks: list                     # RawBlock, slot order
    last_slot: int                   # the reply covers [first, last_slot]
    nbytes: int = 0


class _Short(Exception):
    """A chunk runs past the bytes received so far (only while a body is still arriving)."""


def _read_uvarint(buf, pos: int, end: int, where: str, short: bool = False,
                  base: int = 0) -> tuple[int, int]:
    """(value, position after it) of the uvarint at `pos`; messages name body offsets
    (`base` + position in `buf`)."""
    result = shift = 0
    for i in range(10):
        if pos + i >= end:
            if short:
                raise _Short()
            raise PeerFault(f"{where}: truncated uvarint at byte {base + pos + i}")
        b = buf[pos + i]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos + i + 1
        shift += 7
    raise PeerFault(f"{where}: uvarint at byte {base + pos} longer than 10 bytes")


def _framed_end(buf, pos: int, end: int, length: int, where: str, base: int = 0,
                short: bool = False) -> int:
    """End of a snappy framed stream starting at `pos` that decompresses to `length` bytes
    (walks the chunk headers only).  Messages name body offsets (`base` + position in
    `buf`); with `short`, running out of bytes raises _Short instead of a PeerFault."""
    if end - pos < 10:
        if short:
            raise _Short()
        raise PeerFault(f"{where}: byte {base + pos}: framed payload truncated (stream "
                        "identifier)")
    if bytes(buf[pos:pos + 10]) != b"\xff\x06\x00\x00sNaPpY":
        raise PeerFault(f"{where}: byte {base + pos}: no snappy stream identifier")
    p = pos + 10
    total = 0
    while total < length:
        if p + 4 > end:
            if short:
                raise _Short()
            raise PeerFault(f"{where}: byte {base + p}: framed payload truncated ({total} of "
                            f"{length} bytes)")
        ctype = buf[p]
        clen = buf[p + 1] | (buf[p + 2] << 8) | (buf[p + 3] << 16)
        body = p + 4
        if body + clen > end:
            if short:
                raise _Short()
            raise PeerFault(f"{where}: byte {base + p}: snappy chunk runs past the response")
        if ctype == 0x00:
            ulen, _ = _read_uvarint(buf, body + 4, body + clen, where, base=base)
            total += ulen
        elif ctype == 0x01:
            total += clen - 4
        elif 0x02 <= ctype <= 0x7F:
            raise PeerFault(f"{where}: byte {base + p}: reserved snappy chunk type "
                            f"0x{ctype:02x}")
        p = body + clen
    if total != length:
        raise PeerFault(f"{where}: framed payload is {total} bytes, chunk header says {length}")
    return p


# A block's chunk may take this many bytes before it is complete (its framing included): an
# honest encoder's framing adds 8 bytes per 64 KiB, so twice the largest block is generous;
# past it the peer is padding a chunk without end.
MAX_CHUNK_WIRE_BYTES = 2 * MAX_BLOCK_BYTES + (1 << 20)


class RangeBody:
    """The chunks of a blocks_by_range answer, parsed while it arrives, so the answer is never
    held whole (a reply of 512 mainnet slots is ~40 MB): `feed(buf, base)` takes the complete
    block chunks at the start of `buf` (body bytes from offset `base` on) and returns how many
    bytes it used; `finish(rest)`, once the body has ended with `rest` unused, parses that (an
    error chunk, the body's last, or a truncated chunk) and returns the RawBlocks.  Framing
    is checked, not decoded; each block's bytes are copied out of `buf`."""

    def __init__(self, where: str):
        self.where = where
        self.blocks: list[RawBlock] = []
        self.taken = 0   # body bytes parsed so far
        self._again = 0  # bytes `buf` must hold before an unfinished chunk is walked again

    def feed(self, buf, base: int) -> int:
        if len(buf) < self._again:
            return 0
        used = self._parse(buf, base, short=True)
        self.taken = base + used
        # an unfinished chunk is walked again only once the bytes held have doubled: a peer
        # trickling one long chunk in tiny pieces costs linear time, not quadratic
        # (and at the latest once they pass the bound of one chunk, to refuse it there)
        self._again = min(2 * (len(buf) - used), MAX_CHUNK_WIRE_BYTES + 1)
        return used

    def finish(self, rest) -> list:
        self._parse(rest, self.taken, short=False)
        self.taken += len(rest)
        return self.blocks

    def _parse(self, buf, base: int, short: bool) -> int:
        where, out = self.where, self.blocks
        pos, n = 0, len(buf)
        mv = memoryview(buf)
        while pos < n:
            result = buf[pos]
            if result != 0:
                if short:  # the answer's last chunk: read whole, then parsed by finish()
                    return pos
                msg = ""
                try:
                    ln, p = _read_uvarint(buf, pos + 1, n, where)
                    from ..framing import decompress

                    msg = decompress(bytes(mv[p:]), max_size=256, where=where)[:ln].decode(
                        "utf-8", "replace")
                except Exception:  # the error text is only informative
                    pass
                raise PeerFault(f"{where}: error chunk {result} after {len(out)} blocks: "
                                f"{msg}", "missing" if result == 3 else "bad")
            try:
                if pos + 5 > n:
                    if short:
                        raise _Short()
                    raise PeerFault(f"{where}: byte {base + pos}: chunk header truncated")
                length, p = _read_uvarint(buf, pos + 5, n, where, short, base)
                if not MIN_BLOCK_BYTES <= length <= MAX_BLOCK_BYTES:
                    raise PeerFault(f"{where}: byte {base + pos}: block length {length} "
                                    f"outside [{MIN_BLOCK_BYTES}, {MAX_BLOCK_BYTES}]")
                end = _framed_end(buf, p, n, length, where, base, short)
            except _Short:
                if n - pos > MAX_CHUNK_WIRE_BYTES:
                    raise PeerFault(f"{where}: byte {base + pos}: a block chunk runs past "
                                    f"{MAX_CHUNK_WIRE_BYTES} bytes") from None
                return pos
            out.append(RawBlock(slot=-1, framed=bytes(mv[p:end]), digest=bytes(
                mv[pos + 1:pos + 5]), length=length))
            pos = end
        return pos


def parse_range_body(body: bytes, first: int, last: int, where: str) -> list:
    """Chunks of a whole blocks_by_range response -> RawBlock list (framing checked, not
    decoded)."""
    return RangeBody(where).finish(body)


class BackfillPeer:
    """One backfill peer.  `kind` is "range" (era_tools server) or "rest" (Beacon API), found
    by `detect()`.  `fetch(first, last)` returns a PeerReply or raises PeerFault.

    HTTP goes through an HttpClient (`self.http`): range replies (~18 MB for 8 mainnet
    epochs) and the REST block GETs take its fast path (`get_into`: a kept-alive connection
    and a reused buffer per thread; each block is copied out once), everything else
    `requests`.  `retry` defaults to one try: the backward sync queue
    retries a failed batch with another peer and keeps the scores."""

    def __init__(self, url: str, timeout: float = 30.0, rest_concurrency: int = 16,
                 json_to_ssz: Callable[[dict, str, str], bytes] | None = None,
                 retry: RetryPolicy = NO_RETRY):
        self.http = HttpClient(url, timeout, retry, "era_tools-backfill")
        self.url = self.http.base_url
        self.timeout = timeout
        self.kind: str | None = None
        self.json_to_ssz = json_to_ssz   # for REST nodes that answer blocks in JSON only
        self.answers_json = False        # set once such an answer came (slower: scored so)
        self._rest_concurrency = rest_concurrency
        self._pool = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BackfillPeer({self.url}, {self.kind})"

    @property
    def _conns(self) -> set:
        return self.http.open_connections

    def _get(self, path: str, accept: str, limit: int, timeout: float | None = None):
        """(status, headers, body) with the body capped at `limit` bytes (HttpClient.get)."""
        r = self.http.get(path, accept, timeout, limit)
        return r.status, r.headers, r.body

    def _get_into(self, path: str, accept: str, limit: int, timeout: float | None = None):
        """(status, headers, body) like `_get`, the body a memoryview of this thread's reused
        buffer: valid until this thread's next call (HttpClient.get_into)."""
        r = self.http.get_into(path, accept, limit, timeout)
        return r.status, r.headers, r.body

    def _get_data(self, path: str):
        """The `data` of a small JSON answer, or None when the peer does not give one."""
        try:
            st, _, body = self._get(path, "application/json", 1 << 20)
            if st != 200:
                return None
            return safejson.loads(body)["data"]
        except (PeerFault, ValueError, KeyError, TypeError, RecursionError):
            return None

    def genesis_validators_root(self) -> bytes | None:
        """The peer's genesis_validators_root, or None when it does not say."""
        try:
            return bytes.fromhex(self._get_data("/eth/v1/beacon/genesis")
                                 ["genesis_validators_root"][2:])
        except (ValueError, KeyError, TypeError):
            return None

    def spec(self) -> dict | None:
        """The peer's /eth/v1/config/spec, or None when it does not say."""
        data = self._get_data("/eth/v1/config/spec")
        return data if isinstance(data, dict) else None

    def detect(self, probe_slot: int) -> str:
        """Range endpoint if the peer answers it sensibly, else the standard Beacon API."""
        try:
            st, h, _ = self._get(f"{RANGE_PATH}?start_slot={probe_slot}&count=1",
                                 SSZ_MIME, MAX_BLOCK_BYTES + 64)
            ok = st in (200, 404) and ("Era-Tools-Last-Slot" in h or "Era-Tools-Error" in h)
        except PeerFault as exc:
            if exc.kind == "timeout":
                raise
            ok = False
        self.kind = "range" if ok else "rest"
        return self.kind

    def fetch(self, first: int, last: int, extra_slots=()) -> PeerReply:
        if self.kind == "range":
            return self._fetch_range(first, last, extra_slots)
        return self._fetch_rest(first, last, extra_slots)

    def _fetch_range(self, first, last, extra_slots) -> PeerReply:
        hi = max([last, *extra_slots])
        count = hi - first + 1
        path = f"{RANGE_PATH}?start_slot={first}&count={count}"
        where = self.url + path
        r = self.http.get_into(path, SSZ_MIME, count * MAX_BLOCK_BYTES // 8 + (1 << 20),
                               sink=lambda: RangeBody(where))
        st, h, body = r.status, r.headers, r.body
        if st in (404, 429) or st >= 500:  # (those the HttpClient retries: after its tries)
            raise PeerFault(f"{where}: HTTP {st}: {h.get('Era-Tools-Error', '')}", "missing")
        if st != 200:
            raise PeerFault(f"{where}: HTTP {st}")
        try:
            served_last = int(h.get("Era-Tools-Last-Slot", ""))
        except ValueError as exc:
            raise PeerFault(f"{where}: no Era-Tools-Last-Slot header") from exc
        if not first - 1 <= served_last <= hi:
            raise PeerFault(f"{where}: Era-Tools-Last-Slot {served_last} outside "
                            f"[{first - 1}, {hi}]")
        parsed = r.stream
        nbytes = parsed.taken + len(body)
        return PeerReply(parsed.finish(body), served_last, nbytes)

    def _fetch_rest(self, first, last, extra_slots) -> PeerReply:
        from concurrent.futures import ThreadPoolExecutor

        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._rest_concurrency,
                                                thread_name_prefix="rest-peer")
        slots = list(range(first, last + 1)) + [s for s in extra_slots if s > last]

        def one(slot):
            # this thread's kept-alive http.client connection (get_into): a block costs a
            # quarter of the client CPU it takes through requests (BENCHMARKS.md)
            r = self.http.get_into(f"/eth/v2/beacon/blocks/{slot}", SSZ_MIME,
                                   MAX_BLOCK_BYTES).ok(allow_404=True)
            if r is None:
                return None
            if r.media_type == "application/json":  # a node that ignores Accept (Lodestar)
                resp = ssz_from_json(parse_json(bytes(r.body), r.url), "SignedBeaconBlock",
                                     r.headers.get("Eth-Consensus-Version"), self.json_to_ssz,
                                     r.url, error=PeerFault)
                self.answers_json = True
                return RawBlock(slot=slot, ssz=resp.ssz, fork=resp.fork)
            return RawBlock(slot=slot, ssz=bytes(r.body))  # (the buffer is reused)

        out, nbytes = [], 0
        for r in self._pool.map(one, slots):
            if r is not None:
                out.append(r)
                nbytes += len(r.ssz)
        return PeerReply(out, max(slots), nbytes)

    def close(self) -> None:
        pool, self._pool = self._pool, None  # a later fetch makes a new one
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self.http.close()


def fetch_ssz_streaming(api: BeaconApiClient, path: str, timeout: float,
                        progress: Callable[[int, int | None], None] | None = None,
                        limit: int = MAX_STATE_BYTES) -> SszResponse | None:
    """GET an SSZ object (a state: hundreds of MB on mainnet) in a stream, reporting
    progress(bytes_so_far, total_or_None).  None for a 404.  Retried as every request of
    `api`; no stall bound (a slow link may take long), only `timeout` between reads."""
    def refuse_json(status, headers):
        if status == 200 and media_type(headers) == "application/json":
            raise PeerFault(f"{api.base_url}{path}: the node answered JSON; a state must come "
                            "as SSZ")

    r = api.http.get_ok(path, SSZ_MIME, timeout, limit, allow_404=True, stall=None,
                        on_headers=refuse_json, progress=progress)
    if r is None:
        return None
    fork = r.headers.get("Eth-Consensus-Version")
    return SszResponse(fork.lower() if fork else None, r.body, r.url)
