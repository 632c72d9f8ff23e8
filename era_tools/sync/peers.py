"""A standard Beacon API client (HTTP, `requests`): the only module that imports requests.

    api = BeaconApiClient("http://127.0.0.1:5052")
    api.spec(), api.genesis(), api.syncing(), api.finalized_slot()
    api.block(slot)    -> BlockResponse(fork, ssz) or None (404: empty slot / not held)
    api.state(slot)    -> StateResponse(fork, ssz) or None

SSZ is asked for with `Accept: application/octet-stream`; a node that ignores it and answers
JSON (older nodes) is handled by converting the JSON `data` to SSZ with the fork named in
`version`.  The fork comes from `Eth-Consensus-Version` (or JSON `version`) and is checked
against the network's schedule by the caller.  Every request has a timeout and is retried with
exponential backoff on connection errors, timeouts, 429 and 5xx.  Sessions are per thread, so
one client can be shared by a thread pool.  Errors are PeerError with the URL and what failed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests

from ..errors import PeerError

SSZ_MIME = "application/octet-stream"
RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class SszResponse:
    fork: str | None
    ssz: bytes
    url: str


BlockResponse = StateResponse = SszResponse


class BeaconApiClient:
    def __init__(self, base_url: str, timeout: float = 30.0, state_timeout: float = 360.0,
                 retries: int = 3, backoff: float = 0.25,
                 json_to_ssz: Callable[[dict, str, str], bytes] | None = None,
                 preset_base: str | None = None, user_agent: str = "era_tools"):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.state_timeout = state_timeout
        self.retries = max(1, retries)
        self.backoff = backoff
        self.preset_base = preset_base
        self._json_to_ssz = json_to_ssz
        self._local = threading.local()
        self.user_agent = user_agent
        self.requests_made = 0

    # -- transport -------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = self.user_agent
            self._local.session = s
        return s

    def get(self, path: str, accept: str = "application/json", timeout: float | None = None,
            allow_404: bool = False) -> requests.Response | None:
        """GET with retries.  Returns None for a 404 when allow_404."""
        url = self.base_url + path
        last = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                resp = self._session().get(url, headers={"Accept": accept},
                                           timeout=timeout or self.timeout)
                self.requests_made += 1
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code == 404 and allow_404:
                return None
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code != 200:
                raise PeerError(f"{url}: HTTP {resp.status_code}: {_short(resp.text)}")
            return resp
        raise PeerError(f"{url}: failed after {self.retries} tries: {last}")

    def get_json(self, path: str) -> dict:
        resp = self.get(path)
        try:
            return resp.json()
        except ValueError as exc:
            raise PeerError(f"{self.base_url + path}: response is not JSON") from exc

    # -- node facts ------------------------------------------------------------------------
    def spec(self) -> dict:
        return _data(self.get_json("/eth/v1/config/spec"), "/eth/v1/config/spec", self)

    def genesis(self) -> dict:
        return _data(self.get_json("/eth/v1/beacon/genesis"), "/eth/v1/beacon/genesis", self)

    def syncing(self) -> dict:
        return _data(self.get_json("/eth/v1/node/syncing"), "/eth/v1/node/syncing", self)

    def finality_checkpoints(self, state_id: str = "head") -> dict:
        path = f"/eth/v1/beacon/states/{state_id}/finality_checkpoints"
        return _data(self.get_json(path), path, self)

    def finalized_epoch(self) -> int:
        cp = self.finality_checkpoints()
        try:
            return int(cp["finalized"]["epoch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PeerError(f"{self.base_url}: finality_checkpoints has no finalized epoch") \
                from exc

    # -- SSZ objects -----------------------------------------------------------------------
    def block(self, slot: int | str) -> SszResponse | None:
        return self._ssz(f"/eth/v2/beacon/blocks/{slot}", "SignedBeaconBlock", self.timeout)

    def state(self, slot: int | str) -> SszResponse | None:
        return self._ssz(f"/eth/v2/debug/beacon/states/{slot}", "BeaconState",
                         self.state_timeout)

    def _ssz(self, path: str, type_name: str, timeout: float) -> SszResponse | None:
        url = self.base_url + path
        resp = self.get(path, accept=SSZ_MIME, timeout=timeout, allow_404=True)
        if resp is None:
            return None
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        fork = resp.headers.get("Eth-Consensus-Version")
        fork = fork.lower() if fork else None
        if ctype == "application/json":
            try:
                doc = resp.json()
            except ValueError as exc:
                raise PeerError(f"{url}: JSON response does not parse") from exc
            fork = (doc.get("version") or fork or "").lower() or None
            if fork is None:
                raise PeerError(f"{url}: JSON response names no fork (no `version`, no "
                                "Eth-Consensus-Version header)")
            if self._json_to_ssz is None:
                raise PeerError(f"{url}: node answered JSON and no JSON decoder is set")
            try:
                data = self._json_to_ssz(doc["data"], type_name, fork)
            except KeyError as exc:
                raise PeerError(f"{url}: JSON response has no `data`") from exc
            return SszResponse(fork, data, url)
        return SszResponse(fork, resp.content, url)


def _data(doc, path, client):
    if not isinstance(doc, dict) or "data" not in doc:
        raise PeerError(f"{client.base_url}{path}: response has no `data`")
    return doc["data"]


def _short(text: str, n: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[:n] + "…"
