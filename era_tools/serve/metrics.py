"""Cheap request metrics for `era serve`, exported through prometheus-client.

Counting a request is two dict updates and a bisect (no locks, no label objects): the numbers
live in plain dicts and are turned into Prometheus families only when /metrics is scraped, by a
collector registered in the app's own CollectorRegistry.

With several worker processes (`era serve --workers N`) each worker writes a snapshot of its
numbers to a shared directory about once a second; /metrics on any worker reports the sum over
all workers (its own numbers live, the others' as of their last snapshot).  This module is the
only importer of prometheus_client.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

__all__ = ["Stats", "CONTENT_TYPE_LATEST", "new_registry", "render"]

BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)


class Stats:
    """Request counts by (route, method, status), latency histograms by route, range blocks."""

    def __init__(self, worker: int | None = None, share_dir: str | None = None):
        self.worker = worker
        self.share_dir = share_dir
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, list[int]] = {}   # route -> counts per bucket (+Inf last)
        self.latency_sum: dict[str, float] = {}
        self.range_blocks = 0
        self.closed: dict[str, int] = {}          # connections closed by a limit, by reason
        self.changes = 0                           # bumps on every update (snapshot writer)
        self._written = -1

    # -- counting (event loop thread) ------------------------------------------------------
    def request(self, route: str, method: str, status: str, seconds: float | None) -> None:
        k = (route, method, status)
        r = self.requests
        r[k] = r.get(k, 0) + 1
        if seconds is not None:
            h = self.latency.get(route)
            if h is None:
                h = self.latency[route] = [0] * (len(BUCKETS) + 1)
                self.latency_sum[route] = 0.0
            h[bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum[route] += seconds
        self.changes += 1

    def add_range_blocks(self, n: int) -> None:
        self.range_blocks += n
        self.changes += 1

    def connection_closed(self, reason: str) -> None:
        """A connection closed by a limit (serve/limits.py): header_timeout, idle, evicted,
        refused."""
        self.closed[reason] = self.closed.get(reason, 0) + 1
        self.changes += 1

    # -- snapshots (several workers) -------------------------------------------------------
    def snapshot(self) -> dict:
        return {"requests": [[*k, n] for k, n in self.requests.items()],
                "latency": {k: [v, self.latency_sum[k]] for k, v in self.latency.items()},
                "range_blocks": self.range_blocks, "closed": dict(self.closed)}

    def _path(self, worker) -> str:
        return os.path.join(self.share_dir, f"metrics-{worker}.json")

    def write_snapshot(self) -> bool:
        """Write this worker's numbers for the others to read (tmp + rename; only when they
        changed).  True if written."""
        if self.share_dir is None or self.changes == self._written:
            return False
        changes = self.changes
        path = self._path(self.worker)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self.snapshot(), f)
            os.replace(tmp, path)
        except OSError:
            return False
        self._written = changes
        return True

    def others(self) -> list[dict]:
        if self.share_dir is None:
            return []
        out = []
        mine = os.path.basename(self._path(self.worker))
        try:
            names = os.listdir(self.share_dir)
        except OSError:
            return []
        for name in names:
            if name == mine or not (name.startswith("metrics-") and name.endswith(".json")):
                continue
            try:
                with open(os.path.join(self.share_dir, name)) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                continue
        return out

    def merged(self) -> dict:
        """This worker's numbers plus the other workers' latest snapshots."""
        snaps = [self.snapshot(), *self.others()]
        req: dict[tuple, int] = {}
        lat: dict[str, list] = {}
        blocks = 0
        closed: dict[str, int] = {}
        for s in snaps:
            for reason, n in s.get("closed", {}).items():
                closed[reason] = closed.get(reason, 0) + int(n)
            for *k, n in s.get("requests", []):
                k = tuple(k)
                req[k] = req.get(k, 0) + int(n)
            for route, (counts, total) in s.get("latency", {}).items():
                cur = lat.get(route)
                if cur is None:
                    lat[route] = [list(counts), float(total)]
                else:
                    cur[0] = [a + b for a, b in zip(cur[0], counts)]
                    cur[1] += float(total)
            blocks += int(s.get("range_blocks", 0))
        return {"requests": req, "latency": lat, "range_blocks": blocks, "closed": closed,
                "workers": len(snaps)}


class _Collector:
    def __init__(self, stats: Stats):
        self.stats = stats

    def collect(self):
        m = self.stats.merged()
        c = CounterMetricFamily("era_serve_requests", "HTTP requests served",
                                labels=["route", "method", "status"])
        for (route, method, status), n in sorted(m["requests"].items()):
            c.add_metric([route, method, status], n)
        yield c
        h = HistogramMetricFamily("era_serve_request_seconds", "Request latency",
                                  labels=["route"])
        for route, (counts, total) in sorted(m["latency"].items()):
            cum, buckets = 0, []
            for le, n in zip((*[repr(float(b)) for b in BUCKETS], "+Inf"), counts):
                cum += n
                buckets.append((le, cum))
            h.add_metric([route], buckets, total)
        yield h
        b = CounterMetricFamily("era_serve_range_blocks",
                                "Blocks streamed by the range endpoint")
        b.add_metric([], m["range_blocks"])
        yield b
        cl = CounterMetricFamily("era_serve_connections_closed", "Connections closed by a "
                                 "limit: header_timeout (request headers too slow), idle (no "
                                 "request for --idle-timeout), evicted (a waiting connection "
                                 "closed at the connection cap), refused (503 at the cap)",
                                 labels=["reason"])
        for reason in ("header_timeout", "idle", "evicted", "refused"):
            cl.add_metric([reason], m["closed"].get(reason, 0))
        yield cl
        w = GaugeMetricFamily("era_serve_workers", "Worker processes whose numbers are summed "
                              "here")
        w.add_metric([], m["workers"])
        yield w


def new_registry(stats: Stats) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(_Collector(stats))
    return reg


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


# -- `era sync` ------------------------------------------------------------------------------
SYNC_COUNTERS = {  # name in sync.pipeline.Counters -> help; counters, the rest are gauges
    "slots": "Slots indexed by this run", "blocks": "Blocks stored by this run",
    "states": "Era-boundary states stored by this run", "bytes": "Bytes fetched by this run",
    "eras_published": "Era files published by this run",
    "follow_steps": "Follow-stage steps (one per finalized head seen)",
    "server_failures": "Failed requests to beacon APIs (each delays that server)",
}
SYNC_GAUGES = {
    "finalized_slot": "Highest finalized slot a beacon API reported",
    "newest_slot": "Newest slot the store indexes",
    "head_slot": "Head slot a beacon API reported",
    "last_publish_seconds": "Seconds from seeing finality move to the last era published",
}


class _SyncCollector:
    def __init__(self, snapshot):
        self.snapshot = snapshot

    def collect(self):
        snap = self.snapshot()   # {"counters": {...}, "stage": str, "servers": [...]}
        c = snap["counters"]
        for name, text in SYNC_COUNTERS.items():
            m = CounterMetricFamily(f"era_sync_{name}", text)
            m.add_metric([], c.get(name, 0))
            yield m
        for name, text in SYNC_GAUGES.items():
            m = GaugeMetricFamily(f"era_sync_{name}", text)
            m.add_metric([], c.get(name, 0))
            yield m
        st = GaugeMetricFamily("era_sync_stage", "1 for the stage the run is in",
                               labels=["stage"])
        for stage in ("checkpoint", "history", "follow"):
            st.add_metric([stage], 1 if snap["stage"] == stage else 0)
        yield st
        sv = GaugeMetricFamily("era_sync_server_failures", "Consecutive failures per beacon "
                               "API (0 = healthy); -1 = dropped", labels=["url"])
        for s in snap["servers"]:
            sv.add_metric([s["url"]], -1 if s["state"] == "dropped" else s["failures"])
        yield sv


def serve_sync_metrics(port: int, snapshot, addr: str = "127.0.0.1"):
    """Serve `era sync`'s numbers as Prometheus text on http://addr:port/metrics (a daemon
    thread).  `snapshot()` returns {"counters", "stage", "servers"}.  Returns the server."""
    from prometheus_client import start_http_server

    reg = CollectorRegistry()
    reg.register(_SyncCollector(snapshot))
    server, _thread = start_http_server(port, addr=addr, registry=reg)
    return server
