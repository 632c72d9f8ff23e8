#!/usr/bin/env python3
"""Benchmark `era serve` against nginx on the same machine, in the same run.

    python scripts/bench_serve.py [--duration 10] [--big-mb 256] [--repeat 3] [--workers N]

Measures, with `wrk` as the load generator (installed with apt-get when missing, as is nginx),
era serve with N worker processes (default: the number of cores) and nginx with the same
worker_processes, each figure --repeat times (servers alternating), reporting the median, every
run and the load average after it (the machine is shared):
  1. whole-file download MB/s of one big era file: era serve vs nginx (sendfile);
  2. block requests/s: GET /eth/v2/beacon/blocks/{slot} (SSZ), cycling over the sample slots,
     with N workers and with one process; also the JSON headers and JSON blocks (no target);
  3. blocks/s through /era_tools/v1/blocks_by_range?start_slot=64&count=960 (1024 slots is the cap);
  and, for scale, nginx requests/s for a small (110 KB) era file.

The big file is a valid era file made for the run: the sample era-1 state with 64 blocks of
4 MB random (incompressible) payload, so it is served, listed and indexed like any other.
Targets (issue 6): >= 80% of nginx MB/s, >= 3,000 block requests/s, >= 20,000 blocks/s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "sample_eras"


def need(tool: str, package: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}")
                                  else None)
    if path:
        return path
    print(f"installing {package} (apt-get)...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", package], check=True,
                   stdout=subprocess.DEVNULL)
    path = shutil.which(tool) or f"/usr/sbin/{tool}"
    if not os.path.exists(path):
        sys.exit(f"{tool} not available after installing {package}")
    return path


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listening on {port}")


def make_bench_dir(d: Path, big_mb: int) -> str:
    from era_tools import framing
    from era_tools.era import EraReader, EraWriter

    for f in SAMPLE.iterdir():
        if f.name != "minimal-00001-3a1e96ab.era":
            shutil.copy(f, d / f.name)
    with EraReader(SAMPLE / "minimal-00001-3a1e96ab.era") as r:
        state = r.state_framed()
    per_block = 4 << 20
    nblocks = max(1, min(64, big_mb * (1 << 20) // per_block))
    w = EraWriter(d, "minimal", 1, 64, fsync=False)
    for slot in range(nblocks):
        w.add_block(slot, framed=framing.compress(os.urandom(per_block)))
    w.set_state(framed=state)
    return os.path.basename(w.finish())


WRK_RE = {
    "rps": re.compile(r"Requests/sec:\s+([\d.]+)"),
    "transfer": re.compile(r"Transfer/sec:\s+([\d.]+)([KMG]?B)"),
    "non2xx": re.compile(r"Non-2xx or 3xx responses:\s+(\d+)"),
    "errors": re.compile(r"Socket errors:(.*)"),
}
UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def wrk(wrk_bin, url, duration, conns, threads=1, headers=(), script=None) -> dict:
    cmd = [wrk_bin, f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    res = {"rps": float(WRK_RE["rps"].search(out).group(1))}
    m = WRK_RE["transfer"].search(out)
    res["bytes_per_s"] = float(m.group(1)) * UNITS[m.group(2)]
    m = WRK_RE["non2xx"].search(out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = WRK_RE["errors"].search(out)
    res["socket_errors"] = m.group(1).strip() if m else ""
    return res


NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
        autoindex on;
    }}
}}
"""


def slot_script(path: Path, slots, url_prefix: str, accept: str | None) -> str:
    hdr = f"{{['Accept']='{accept}'}}" if accept else "{}"
    path.write_text(
        "local slots = {" + ",".join(str(s) for s in slots) + "}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #slots + 1\n"
        f"  return wrk.format('GET', '{url_prefix}' .. slots[i], {hdr})\n"
        "end\n")
    return str(path)


def start_serve(eras: Path, port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from era_tools.cli import main; main()",
                             "serve", str(eras), "--port", str(port), "--jobs",
                             str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def median(xs):
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--big-mb", type=int, default=256, help="size of the big era file")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each figure (alternating servers); the median is reported")
    ap.add_argument("--workers", type=int, default=None,
                    help="era serve worker processes, and nginx worker_processes "
                         "(default: the number of cores)")
    ap.add_argument("--no-single", action="store_true",
                    help="skip the one-process era serve figures (block requests)")
    args = ap.parse_args()
    wrk_bin = need("wrk", "wrk")
    nginx_bin = need("nginx", "nginx")
    from era_tools.era import EraReader
    from era_tools.serve.workers import default_workers

    workers = args.workers or default_workers()
    reps = max(1, args.repeat)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp = Path(tmp)
        eras = tmp / "eras"
        eras.mkdir()
        big = make_bench_dir(eras, args.big_mb)
        # nginx workers run as an unprivileged user: let them read the directory
        for p in (tmp, eras, *eras.iterdir()):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        big_size = (eras / big).stat().st_size
        slots = []
        for f in sorted(SAMPLE.glob("*.era")):
            with EraReader(f) as r:
                slots += r.block_slots()
        bslots = [s for s in slots if s >= 64]  # era 1 is the big synthetic file
        ssz_script = slot_script(tmp / "blocks.lua", bslots, "/eth/v2/beacon/blocks/",
                                 "application/octet-stream")
        json_script = slot_script(tmp / "json.lua", bslots, "/eth/v2/beacon/blocks/",
                                  "application/json")
        hdr_script = slot_script(tmp / "headers.lua", bslots, "/eth/v1/beacon/headers/", None)
        era_port, one_port, nginx_port = free_port(), free_port(), free_port()
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=nginx_port, root=eras,
                                                          workers=workers))
        procs = [start_serve(eras, era_port, workers)]
        if not args.no_single:
            procs.append(start_serve(eras, one_port, 1))
        procs.append(subprocess.Popen([nginx_bin, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            for port in (era_port, nginx_port) + (() if args.no_single else (one_port,)):
                wait_port(port)
            for port in (era_port,) + (() if args.no_single else (one_port,)):
                subprocess.run(["curl", "-s", "-o", "/dev/null",
                                f"http://127.0.0.1:{port}/index.json"], check=False)
            d = args.duration
            print(f"big file {big}: {big_size / 2**20:.0f} MiB; wrk {d}s per run, {reps} runs "
                  f"per figure (median; alternating servers); {os.cpu_count()} cores shared "
                  f"with the load generator; era serve --jobs {workers}, nginx "
                  f"worker_processes {workers}; load average at start {load()}")

            def series(name, url, conns, script=None, check=True):
                out = []
                for _ in range(reps):
                    r = wrk(wrk_bin, url, d, conns=conns, script=script)
                    if check and r["non2xx"]:
                        sys.exit(f"{name}: {r['non2xx']} non-2xx responses from {url}")
                    r["load"] = load()
                    out.append(r)
                return out

            # 1. whole files: alternate era serve and nginx
            res = {"nginx": [], "era serve": []}
            loads = []
            for _ in range(reps):
                for name, port in (("nginx", nginx_port), ("era serve", era_port)):
                    r = wrk(wrk_bin, f"http://127.0.0.1:{port}/{big}", d, conns=4)
                    if r["non2xx"]:
                        sys.exit(f"{name}: {r['non2xx']} non-2xx responses for {big}")
                    res[name].append(r["bytes_per_s"] / 2**20)
                loads.append(load())
            ng, es = median(res["nginx"]), median(res["era serve"])
            print(f"whole-file MB/s: era serve {es:,.0f}   nginx {ng:,.0f}   "
                  f"ratio {es / ng:.0%} (target >= 80%)   runs: era serve "
                  f"{[round(x) for x in res['era serve']]}, nginx "
                  f"{[round(x) for x in res['nginx']]}; load {loads}")
            # 2. block requests (SSZ), N workers and one process, alternating
            many, one = [], []
            for _ in range(reps):
                many += series("blocks", f"http://127.0.0.1:{era_port}/", 64, ssz_script)[:1]
                if not args.no_single:
                    one += series("blocks", f"http://127.0.0.1:{one_port}/", 64,
                                  ssz_script)[:1]
            print(f"block requests/s (SSZ, {len(bslots)} slots cycled, 64 connections), "
                  f"{workers} workers: {median([r['rps'] for r in many]):,.0f} "
                  f"(target >= 3,000)   runs {[round(r['rps']) for r in many]}; "
                  f"load {[r['load'] for r in many]}")
            if one:
                print(f"  same, one process: {median([r['rps'] for r in one]):,.0f}   runs "
                      f"{[round(r['rps']) for r in one]}; load {[r['load'] for r in one]}")
            # 2b. the JSON forms (no target): headers from the SSZ bytes, blocks via py-ssz
            for label, script in (("headers (JSON)", hdr_script),
                                  ("blocks (JSON)", json_script)):
                rs = series(label, f"http://127.0.0.1:{era_port}/", 64, script)
                print(f"{label} requests/s, {workers} workers: "
                      f"{median([r['rps'] for r in rs]):,.0f}   runs "
                      f"{[round(r['rps']) for r in rs]}; load {[r['load'] for r in rs]}")
            # 3. range endpoint: slots 64..1023
            with_blocks = len([s for s in slots if 64 <= s < 1024])
            rs = series("range", f"http://127.0.0.1:{era_port}/era_tools/v1/blocks_by_range"
                        "?start_slot=64&count=960", 8)
            rps = median([r["rps"] for r in rs])
            print(f"range endpoint: {rps:,.1f} responses/s x {with_blocks} blocks = "
                  f"{rps * with_blocks:,.0f} blocks/s (target >= 20,000), "
                  f"{median([r['bytes_per_s'] for r in rs]) / 2**20:,.0f} MB/s   runs "
                  f"{[round(r['rps'] * with_blocks) for r in rs]}; "
                  f"load {[r['load'] for r in rs]}")
            # nginx baseline for small requests, for scale
            rs = series("nginx small", f"http://127.0.0.1:{nginx_port}/minimal-00002-c3ec0173.era",
                        64)
            print(f"(scale) nginx small-file requests/s (110 KB era file, 64 connections, "
                  f"{workers} workers): {median([r['rps'] for r in rs]):,.0f}   runs "
                  f"{[round(r['rps']) for r in rs]}; load {[r['load'] for r in rs]}")
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
