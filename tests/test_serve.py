"""`era serve`: a real aiohttp server on 127.0.0.1 over sample_eras/ (and copies of it).

Listing, index.json, checksums (and their invalidation), file serving with Range/ETag/HEAD,
the Beacon API subset checked against the real-client fixture chain, the blocks_by_range
encoding parsed chunk by chunk, metrics, and abuse: traversal, bad ranges, huge counts,
missing slots, corrupt files, 500 concurrent connections.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from click.testing import CliRunner

from era_tools import framing
from era_tools.cli import main
from era_tools.download import parse_html
from era_tools.era import EraReader
from era_tools.serve.app import make_app
from era_tools.serve.testing import ServerThread
from era_tools.signing import compute_fork_data_root

SSZ = {"Accept": "application/octet-stream"}
SAMPLE = Path(__file__).resolve().parents[1] / "sample_eras"


@pytest.fixture(scope="module")
def server(network):
    with ServerThread(make_app(SAMPLE, network)) as srv:
        yield srv


def raw_get(srv, path: str, headers=None, method="GET"):
    """One request with the path sent byte for byte (no client-side normalisation)."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


def get(srv, path, headers=None):
    return raw_get(srv, path, headers)


def get_json(srv, path):
    status, _, body = get(srv, path)
    assert status == 200, body
    return json.loads(body)


# --------------------------------------------------------------------------------------------
# listing, index, checksums


def test_listing_is_nginx_autoindex_shaped(server, sample_files):
    status, headers, body = get(server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    text = body.decode()
    assert text.startswith("<html>") and "<h1>Index of /</h1><hr><pre>" in text
    for f in sample_files:
        assert f'<a href="{f.name}">{f.name}</a>' in text
        assert f" {f.stat().st_size}\n" in text
    files, extras = parse_html(body, server.url)
    assert [f.name for f in files] == [f.name for f in sample_files]
    assert {x.name for x in extras} == {"spec.json", "genesis.json"}


def test_index_json_and_checksums(server, sample_files):
    idx = get_json(server, "/index.json")
    assert idx["network"] == "minimal" and idx["errors"] == [] and idx["gaps"] == []
    by_name = {f["name"]: f for f in idx["files"]}
    assert list(by_name) == [f.name for f in sample_files]
    for f in sample_files:
        entry = by_name[f.name]
        assert entry["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert entry["size"] == f.stat().st_size
        with EraReader(f) as r:
            assert entry["era"] == r.era
            assert entry["first_slot"] == r.start_slot and entry["last_slot"] == r.end_slot
    assert by_name["minimal-00001-3a1e96ab.era"]["forks"] == ["phase0", "altair", "bellatrix",
                                                              "capella"]
    assert by_name["minimal-00005-680f04e9.era"]["forks"] == ["capella"]
    status, headers, body = get(server, "/checksums.txt")
    assert status == 200
    lines = body.decode().splitlines()
    assert lines == [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}"
                     for f in sample_files]


def test_checksums_follow_file_changes_and_corrupt_file_is_skipped(era_copy, network):
    target = era_copy / "minimal-00004-2cfc1198.era"
    original = target.read_bytes()
    with ServerThread(make_app(era_copy, network)) as srv:
        first = get(srv, "/checksums.txt")[2].decode()
        assert f"{hashlib.sha256(original).hexdigest()}  {target.name}" in first
        # truncate the file: it must leave the checksums and the listing, and be reported
        target.write_bytes(original[:-100])
        os.utime(target, ns=(1, 1))
        second = get(srv, "/checksums.txt")[2].decode()
        assert target.name not in second
        idx = get_json(srv, "/index.json")
        assert [e["name"] for e in idx["errors"]] == [target.name]
        assert "SlotIndex" in idx["errors"][0]["error"] or "offset" in idx["errors"][0]["error"]
        status, _, body = get(srv, "/")
        assert status == 200
        assert f'href="{target.name}"' not in body.decode()
        assert f"{target.name}: " in body.decode()  # reported in the skipped section
        assert get(srv, "/" + target.name)[0] == 404
        # its blocks are gone, the others still served
        assert get(srv, "/eth/v2/beacon/blocks/200", SSZ)[0] == 404
        assert get(srv, "/eth/v2/beacon/blocks/130", SSZ)[0] == 200
        # restore: back in, with the right checksum (cache invalidated by size/mtime)
        target.write_bytes(original)
        third = get(srv, "/checksums.txt")[2].decode()
        assert f"{hashlib.sha256(original).hexdigest()}  {target.name}" in third
        assert get(srv, "/eth/v2/beacon/blocks/200", SSZ)[0] == 200


# --------------------------------------------------------------------------------------------
# files


NAME = "minimal-00003-00fea774.era"


def test_whole_file_head_etag_last_modified(server, sample_dir):
    data = (sample_dir / NAME).read_bytes()
    status, h, body = get(server, "/" + NAME)
    assert status == 200 and body == data
    assert h["content-length"] == str(len(data))
    assert h["etag"] and h["last-modified"] and h["accept-ranges"] == "bytes"
    status, h2, body = raw_get(server, "/" + NAME, method="HEAD")
    assert status == 200 and body == b"" and h2["content-length"] == str(len(data))
    assert h2["etag"] == h["etag"]
    assert get(server, "/" + NAME, {"If-None-Match": h["etag"]})[0] == 304
    assert get(server, "/" + NAME, {"If-Modified-Since": h["last-modified"]})[0] == 304
    for extra in ("spec.json", "genesis.json"):
        assert get(server, "/" + extra)[2] == (sample_dir / extra).read_bytes()


@pytest.mark.parametrize("rng, status, part", [
    ("bytes=0-99", 206, (0, 100)),
    ("bytes=100-", 206, (100, None)),
    ("bytes=-50", 206, (-50, None)),
    ("bytes=1000-1000", 206, (1000, 1001)),
    ("bytes=0-999999999", 206, (0, None)),
    ("bytes=999999999-", 416, None),
    ("bytes=abc", 416, None),
    ("bytes=5-1", 416, None),
    ("bytes=0-1,5-9", 416, None),
    ("bytes=-0", 416, None),
    ("bytes=", 416, None),
    ("items=0-5", 416, None),
    ("bytes=99999999999999999999999-", 416, None),
])
def test_ranges(server, sample_dir, rng, status, part):
    data = (sample_dir / NAME).read_bytes()
    got, h, body = get(server, "/" + NAME, {"Range": rng})
    assert got == status
    if status == 206:
        want = data[part[0]:part[1]]
        assert body == want
        start = part[0] % len(data)
        assert h["content-range"] == f"bytes {start}-{start + len(want) - 1}/{len(data)}"
    else:
        assert h["content-range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("path", [
    "/../sample_eras/" + NAME,
    "/../../../../etc/passwd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2e%2e%2fsetup.py",
    "/sample_eras%2f" + NAME,
    "/./" + NAME + "/..",
    "//etc/passwd",
    "/%00" + NAME,
    "/" + NAME + "%00",
    "/pyproject.toml",
    "/.." ,
])
def test_traversal_is_404(server, path):
    status, _, body = raw_get(server, path)
    assert status in (400, 404), (path, status)
    assert b"root:" not in body and b"[project]" not in body
    assert get(server, "/" + NAME)[0] == 200


def test_symlinks_out_of_the_directory_are_not_served(tmp_path, sample_dir, network):
    d = tmp_path / "eras"
    d.mkdir()
    for f in sample_dir.iterdir():
        shutil.copy(f, d / f.name)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    outside_era = tmp_path / "outside"
    outside_era.mkdir()
    shutil.copy(sample_dir / NAME, outside_era / "minimal-00099-00000000.era")
    os.symlink(secret, d / "evil.era")
    os.symlink(secret, d / "config.yaml")
    os.symlink(outside_era / "minimal-00099-00000000.era", d / "minimal-00099-00000000.era")
    os.symlink(d / "minimal-00002-c3ec0173.era", d / "inside-link.era")  # inside: allowed
    (d / "notes.txt").write_text("not an era file")
    with ServerThread(make_app(d, network)) as srv:
        for name in ("evil.era", "config.yaml", "minimal-00099-00000000.era", "notes.txt"):
            status, _, body = get(srv, "/" + name)
            assert status == 404, name
            assert b"top secret" not in body
        listing = get(srv, "/")[2].decode()
        assert "evil.era" not in listing and "minimal-00099" not in listing
        # a symlink that stays inside is an ordinary entry (here: a mis-named duplicate)
        idx = get_json(srv, "/index.json")
        assert "inside-link.era" in [e["name"] for e in idx["errors"]]


# --------------------------------------------------------------------------------------------
# Beacon API


def test_block_by_slot_and_root_ssz_and_json(server, fixture_dir, manifest):
    blocks = {b["slot"]: b for b in manifest["blocks"] if b["file"]}
    for slot in (0, 1, 70, 130, 1023):
        want = (fixture_dir / blocks[slot]["file"]).read_bytes()
        status, h, body = get(server, f"/eth/v2/beacon/blocks/{slot}", SSZ)
        assert status == 200 and body == want
        assert h["eth-consensus-version"] == blocks[slot]["fork"]
        assert h["content-type"] == "application/octet-stream"
        status, h, body = get(server, f"/eth/v2/beacon/blocks/{blocks[slot]['root']}", SSZ)
        assert status == 200 and body == want
        doc = get_json(server, f"/eth/v2/beacon/blocks/{slot}")
        assert doc["version"] == blocks[slot]["fork"] and doc["finalized"] is True
        assert doc["data"]["message"]["slot"] == str(slot)
        root = get_json(server, f"/eth/v1/beacon/blocks/{slot}/root")["data"]["root"]
        assert root == blocks[slot]["root"]
        hdr = get_json(server, f"/eth/v1/beacon/headers/{slot}")["data"]
        assert hdr["root"] == blocks[slot]["root"] and hdr["canonical"] is True
        assert hdr["header"]["message"]["slot"] == str(slot)
    assert get_json(server, "/eth/v1/beacon/blocks/genesis/root")["data"]["root"] == \
        blocks[0]["root"]
    head = max(s for s in blocks if s <= 1023)
    assert get_json(server, "/eth/v1/beacon/blocks/head/root")["data"]["root"] == \
        blocks[head]["root"]


def test_block_errors(server, manifest):
    present = {b["slot"] for b in manifest["blocks"] if b["file"]}
    empty = min(s for s in range(1, 1024) if s not in present)
    for path, status in [
        (f"/eth/v2/beacon/blocks/{empty}", 404),
        (f"/eth/v1/beacon/blocks/{empty}/root", 404),
        ("/eth/v2/beacon/blocks/5000", 404),
        ("/eth/v2/beacon/blocks/0x" + "ab" * 32, 404),
        ("/eth/v2/beacon/blocks/0xzz" + "ab" * 31, 400),
        ("/eth/v2/beacon/blocks/0x1234", 400),
        ("/eth/v2/beacon/blocks/-1", 400),
        ("/eth/v2/beacon/blocks/1e3", 400),
        ("/eth/v2/beacon/blocks/99999999999999999999999", 400),
        ("/eth/v2/beacon/blocks/justified", 400),
        ("/eth/v1/beacon/headers/%ff%fe", 400),
        ("/eth/v2/debug/beacon/states/130", 404),
        ("/eth/v2/debug/beacon/states/99999", 404),
        ("/eth/v2/debug/beacon/states/abc", 400),
        ("/eth/v2/debug/beacon/states/0x" + "00" * 32, 400),
    ]:
        got, h, body = raw_get(server, path, SSZ)
        assert got == status, (path, got, body)
        assert json.loads(body)["code"] == status


def test_states_and_node_endpoints(server, fixture_dir, network):
    for slot in (0, 128, 1024):
        status, h, body = get(server, f"/eth/v2/debug/beacon/states/{slot}", SSZ)
        assert status == 200 and body == (fixture_dir / f"states/{slot}.ssz").read_bytes()
        assert h["eth-consensus-version"] == network.fork_name_at_slot(slot)
    doc = get_json(server, "/eth/v2/debug/beacon/states/64")
    assert doc["version"] == "capella" and doc["data"]["slot"] == "64"
    assert get(server, "/eth/v2/debug/beacon/states/finalized", SSZ)[2] == \
        (fixture_dir / "states/1024.ssz").read_bytes()
    g = get_json(server, "/eth/v1/beacon/genesis")["data"]
    assert g["genesis_validators_root"] == "0x" + network.genesis_validators_root.hex()
    spec = get_json(server, "/eth/v1/config/spec")["data"]
    assert spec["CAPELLA_FORK_EPOCH"] == "3" and spec["PRESET_BASE"] == "minimal"
    sched = get_json(server, "/eth/v1/config/fork_schedule")["data"]
    assert [s["current_version"] for s in sched] == ["0x" + f.version.hex()
                                                     for f in network.forks]
    sync = get_json(server, "/eth/v1/node/syncing")["data"]
    assert sync == {"head_slot": "1023", "sync_distance": "0", "is_syncing": False,
                    "is_optimistic": False, "el_offline": False}


# --------------------------------------------------------------------------------------------
# range endpoint


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7


def parse_chunks(body: bytes) -> list[tuple[int, bytes, bytes]]:
    """(result, fork digest or b"", uncompressed payload) per chunk, as docs/protocol.md says."""
    out, pos = [], 0
    while pos < len(body):
        result = body[pos]
        pos += 1
        digest = b""
        if result == 0:
            digest = body[pos:pos + 4]
            pos += 4
        length, pos = read_uvarint(body, pos)
        # the framed stream ends where its chunks have produced `length` bytes
        end = pos + 10
        got = 0
        while got < length:
            clen = int.from_bytes(body[end + 1:end + 4], "little")
            chunk = body[end:end + 4 + clen]
            got = len(framing.decompress(body[pos:end + 4 + clen]))
            end += 4 + clen
            del chunk
        payload = framing.decompress(body[pos:end])
        assert len(payload) == length
        out.append((result, digest, payload))
        pos = end
    return out


def test_blocks_by_range_encoding(server, fixture_dir, manifest, network):
    blocks = {b["slot"]: b for b in manifest["blocks"] if b["file"]}
    status, h, body = get(server, "/era_tools/v1/blocks_by_range?start_slot=40&count=100")
    assert status == 200 and h["era-tools-last-slot"] == "139"
    chunks = parse_chunks(body)
    want = [s for s in range(40, 140) if s in blocks]
    assert len(chunks) == len(want)
    for (result, digest, payload), slot in zip(chunks, want):
        assert result == 0
        fork = network.fork_at_slot(slot)
        assert digest == compute_fork_data_root(fork.version,
                                                network.genesis_validators_root)[:4]
        assert payload == (fixture_dir / blocks[slot]["file"]).read_bytes()
    # the framed bytes are the era file's, unchanged
    with EraReader(SAMPLE / NAME) as r:
        framed = r.block_framed(130)
    assert framed in body


def test_blocks_by_range_to_the_end_and_max_count(server, manifest):
    status, h, body = get(server, "/era_tools/v1/blocks_by_range?start_slot=1000&count=1024")
    assert status == 200 and h["era-tools-last-slot"] == "1023"
    assert len(parse_chunks(body)) == len([b for b in manifest["blocks"]
                                           if 1000 <= b["slot"] <= 1023 and b["file"]])
    status, h, body = get(server, "/era_tools/v1/blocks_by_range?start_slot=0&count=1024")
    assert status == 200 and len(parse_chunks(body)) == len(
        [b for b in manifest["blocks"] if b["slot"] <= 1023 and b["file"]])


@pytest.mark.parametrize("query, status, code", [
    ("start_slot=0&count=1025", 400, 1),
    ("start_slot=0&count=99999999999", 400, 1),
    ("start_slot=0&count=0", 400, 1),
    ("start_slot=0&count=-5", 400, 1),
    ("start_slot=abc&count=5", 400, 1),
    ("start_slot=0", 400, 1),
    ("count=5", 400, 1),
    ("start_slot=0&count=5&count=6", 400, 1),
    ("start_slot=0&count=5&step=2", 400, 1),
    ("start_slot=18446744073709551615&count=2", 400, 1),
    ("start_slot=%ff&count=1", 400, 1),
    ("start_slot=5000&count=10", 404, 3),
])
def test_blocks_by_range_errors(server, query, status, code):
    got, h, body = raw_get(server, "/era_tools/v1/blocks_by_range?" + query)
    assert got == status
    assert body[0] == code
    length, pos = read_uvarint(body, 1)
    msg = framing.decompress(body[pos:])
    assert len(msg) == length
    assert msg.decode().encode("ascii", "backslashreplace").decode() == h["era-tools-error"]


def test_concurrent_range_cap(network, sample_dir):
    with ServerThread(make_app(sample_dir, network, max_ranges=0)) as srv:
        status, h, body = get(srv, "/era_tools/v1/blocks_by_range?start_slot=0&count=10")
        assert status == 429 and body[0] == 3
        assert get(srv, "/eth/v2/beacon/blocks/1", SSZ)[0] == 200


# --------------------------------------------------------------------------------------------
# metrics and abuse


def test_metrics_count_requests(server):
    get(server, "/index.json")
    get(server, "/eth/v2/beacon/blocks/99999", SSZ)
    text = get(server, "/metrics")[2].decode()
    assert 'era_serve_requests_total{method="GET",route="/index.json",status="200"}' in text
    assert 'route="/eth/v2/beacon/blocks/{block_id}",status="404"' in text
    assert "era_serve_request_seconds_bucket" in text
    # a second app has its own registry
    from era_tools.serve.app import STATE

    a = make_app(SAMPLE, server.app[STATE]["network"], hash_on_start=False)
    assert a[STATE]["registry"] is not server.app[STATE]["registry"]


def test_garbage_and_oversized_requests_keep_the_server_up(server):
    for payload in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n" +
                    b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n", b"GET /" + b"a" * 20000 +
                    b" HTTP/1.1\r\n\r\n"):
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(payload)
            reply = s.recv(200)
        assert reply.startswith(b"HTTP/1.") and reply.split()[1] in (b"400", b"414", b"431")
    assert get(server, "/" + NAME)[0] == 200


def test_500_concurrent_connections(server, sample_dir):
    data = (sample_dir / NAME).read_bytes()

    async def run():
        conn = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=conn) as s:
            async def one(i):
                path = [f"/{NAME}", "/eth/v2/beacon/blocks/130",
                        "/era_tools/v1/blocks_by_range?start_slot=100&count=50",
                        "/eth/v2/beacon/blocks/0x" + "ab" * 32][i % 4]
                async with s.get(server.url.rstrip("/") + path, headers=SSZ) as r:
                    body = await r.read()
                    return path, r.status, body

            return await asyncio.gather(*(one(i) for i in range(500)))

    results = asyncio.run(run())
    for path, status, body in results:
        if path == f"/{NAME}":
            assert status == 200 and body == data
        elif "0xabab" in path:
            assert status == 404
        else:
            assert status in (200, 429), (path, status)
    assert get(server, "/" + NAME)[0] == 200
    assert get(server, "/eth/v1/node/syncing")[0] == 200


# --------------------------------------------------------------------------------------------
# CLI


def test_cli_serve_help_and_bad_dir(tmp_path):
    r = CliRunner().invoke(main, ["serve", "--help"])
    assert r.exit_code == 0 and "ERA_DIR" in r.output
    r = CliRunner().invoke(main, ["serve", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == (
        "error: cannot infer the network: pass --network NAME or --config FILE")


def test_cli_serve_subprocess(sample_dir):
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", "from era_tools.cli import main; main()", "serve",
         str(sample_dir), "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "serving" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert "serving" in line, line
        url = line.split(" on ", 1)[1].split()[0]
        u = urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("GET", "/eth/v1/node/syncing")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(30)


# --------------------------------------------------------------------------------------------
# several worker processes (era serve --workers N), clean stops, cheap metrics, headers


def _start_serve(args, **popen):
    """`era serve ARGS` as a real subprocess; (proc, url) once it prints its serving line."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", "from era_tools.cli import main; main()", "serve", *args],
        stderr=subprocess.PIPE, text=True, **popen)
    line = ""
    deadline = time.monotonic() + 60
    while "serving" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
    assert "serving" in line, line
    return proc, line.split(" on ", 1)[1].split()[0], line


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _http(url: str, path: str, headers=None):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _metric(text: str, prefix: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait_for(cond, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_cli_serve_two_workers_serve_and_stop_cleanly(sample_dir, fixture_dir, manifest):
    import signal

    proc, url, line = _start_serve([str(sample_dir), "--port", "0", "--workers", "2"])
    try:
        assert "2 workers" in line
        workers = _children(proc.pid)
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        blocks = {b["slot"]: b for b in manifest["blocks"] if b["file"]}
        want = (fixture_dir / blocks[130]["file"]).read_bytes()
        for _ in range(40):  # a new connection each time: the kernel spreads them
            status, body = _http(url, "/eth/v2/beacon/blocks/130", SSZ)
            assert status == 200 and body == want
        sums = _http(url, "/checksums.txt")[1].decode()
        for f in sorted(sample_dir.glob("*.era")):
            assert f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n" in sums
        # /metrics on either worker sums both (the other's numbers within about a second)
        route = 'era_serve_requests_total{method="GET",route="/eth/v2/beacon/blocks/{block_id}"'

        def counted():
            text = _http(url, "/metrics")[1].decode()
            return (_metric(text, "era_serve_workers ") == 2.0 and
                    _metric(text, route + ',status="200"}') == 40.0)

        assert _wait_for(counted)
        port = urlsplit(url).port
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        err = proc.stderr.read()
        assert "SIGTERM: stopping" in err and "Traceback" not in err
        assert not any(_alive(p) for p in workers)
        with socket.socket() as s:  # nothing holds the port any more
            s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_cli_serve_ctrl_c_stops_every_process_exit_0(sample_dir):
    import signal

    proc, url, _ = _start_serve([str(sample_dir), "--port", "0", "--workers", "2"],
                                start_new_session=True)
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2
        assert _http(url, "/eth/v1/node/syncing")[0] == 200
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
        assert proc.wait(30) == 0
        assert "Traceback" not in proc.stderr.read()
        assert not any(_alive(p) for p in workers)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def test_cli_serve_one_process_sigterm_exit_0(sample_dir):
    import signal

    proc, url, line = _start_serve([str(sample_dir), "--port", "0", "--workers", "1"])
    try:
        assert "workers" not in line
        assert _children(proc.pid) == []
        assert _http(url, "/eth/v2/beacon/blocks/130", SSZ)[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_cli_serve_restarts_a_dead_worker(sample_dir):
    import signal

    proc, url, _ = _start_serve([str(sample_dir), "--port", "0", "--workers", "2"])
    try:
        first = _children(proc.pid)
        os.kill(first[0], signal.SIGKILL)
        assert _wait_for(lambda: len(_children(proc.pid)) == 2 and
                         first[0] not in _children(proc.pid))
        line = proc.stderr.readline()
        assert line.startswith("warning: worker ") and "restarting it" in line
        # the replacement has listened once its metrics snapshot is there; both answer
        assert _wait_for(lambda: _metric(_http(url, "/metrics")[1].decode(),
                                         "era_serve_workers ") == 2.0)
        for _ in range(20):
            assert _http(url, "/eth/v2/beacon/blocks/130", SSZ)[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_cli_serve_workers_usage_errors(sample_dir, tmp_path):
    r = CliRunner().invoke(main, ["serve", str(sample_dir), "--db", str(tmp_path / "db"),
                                  "--workers", "2"])
    assert r.exit_code == 2
    assert "--db serves from one process" in r.output
    r = CliRunner().invoke(main, ["serve", str(sample_dir), "--workers", "0"])
    assert r.exit_code == 2 and "--workers" in r.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(main, ["serve", str(sample_dir), "--port", str(port),
                                      "--workers", "2"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_serve_cannot_listen_names_host_and_port(sample_dir, workers):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(main, ["serve", str(sample_dir), "--port", str(port),
                                      "--workers", workers])
    assert r.exit_code == 2  # one worker said aiohttp's long message
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use")
    r = CliRunner().invoke(main, ["serve", str(sample_dir), "--host", "256.1.1.1", "--port",
                                  "0", "--workers", workers])
    assert r.exit_code == 2  # was "error: Name or service not known": no host
    assert r.stderr.strip().splitlines()[-1].startswith(
        "error: cannot listen on 256.1.1.1:0: ")


@pytest.mark.parametrize("first", ["1", "2"])
def test_cli_serve_second_server_on_a_busy_port_exits_2(sample_dir, first):
    """Another `era serve` on the port, whatever either one's --jobs: the newcomer refuses
    (with SO_REUSEPORT it used to start silently and take half of the connections)."""
    import signal
    import subprocess
    import sys

    proc, url, _ = _start_serve([str(sample_dir), "--port", "0", "--jobs", first])
    try:
        port = urlsplit(url).port
        for jobs in ("1", "2", "3"):
            r = subprocess.run([sys.executable, "-c", "from era_tools.cli import main; main()",
                                "serve", str(sample_dir), "--port", str(port), "--jobs", jobs],
                               capture_output=True, text=True, timeout=120,
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 2, (jobs, r.stderr)
            assert r.stderr.strip().splitlines()[-1] == (
                f"error: cannot listen on 127.0.0.1:{port}: address already in use"), jobs
            assert "serving" not in r.stderr
        for _ in range(10):  # the first server still takes every connection
            assert _http(url, "/eth/v1/node/syncing")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_metrics_stats_sum_over_workers(tmp_path):
    from era_tools.serve.metrics import Stats, new_registry, render

    a, b = Stats(0, str(tmp_path)), Stats(1, str(tmp_path))
    a.request("/x", "GET", "200", 0.0004)
    a.request("/x", "GET", "200", 0.002)
    b.request("/x", "GET", "200", 0.7)
    b.request("/x", "GET", "503", None)
    b.add_range_blocks(5)
    assert b.write_snapshot() and not b.write_snapshot()  # unchanged: not rewritten
    text = render(new_registry(a)).decode()
    assert 'era_serve_requests_total{method="GET",route="/x",status="200"} 3.0' in text
    assert 'era_serve_requests_total{method="GET",route="/x",status="503"} 1.0' in text
    assert 'era_serve_request_seconds_bucket{le="0.0005",route="/x"} 1.0' in text
    assert 'era_serve_request_seconds_bucket{le="0.0025",route="/x"} 2.0' in text
    assert 'era_serve_request_seconds_bucket{le="+Inf",route="/x"} 3.0' in text
    assert 'era_serve_request_seconds_count{route="/x"} 3.0' in text
    assert "era_serve_range_blocks_total 5.0" in text
    assert "era_serve_workers 2.0" in text
    # without a shared directory a Stats is on its own
    assert "era_serve_workers 1.0" in render(new_registry(Stats())).decode()


def test_shared_checksum_is_computed_once_and_follows_changes(tmp_path):
    from era_tools.serve.catalog import shared_sha256

    share = tmp_path / "share"
    share.mkdir()
    f = tmp_path / "x.era"
    f.write_bytes(b"abc")
    st = f.stat()
    key = (st.st_size, st.st_mtime_ns)
    want = hashlib.sha256(b"abc").hexdigest()
    assert shared_sha256(str(share), f.name, str(f), key) == want
    cached = share / f"sha256-x.era-{key[0]}-{key[1]}"
    assert cached.read_text() == want
    cached.write_text("f" * 64)  # a second process reads the cache, it does not re-hash
    assert shared_sha256(str(share), f.name, str(f), key) == "f" * 64
    f.write_bytes(b"abcd")
    st = f.stat()
    assert shared_sha256(str(share), f.name, str(f), (st.st_size, st.st_mtime_ns)) == \
        hashlib.sha256(b"abcd").hexdigest()


def test_headers_from_bytes_match_py_ssz(server, network):
    from era_tools import ssz

    for f in sorted(SAMPLE.glob("*.era")):
        with EraReader(f) as r:
            slots = r.block_slots()
            for slot in slots[:2] + slots[-1:]:
                blk = ssz.decode_block(r.block_ssz(slot), network.fork_name_at_slot(slot),
                                       network.preset_base)
                m = blk.message
                status, h, body = get(server, f"/eth/v1/beacon/headers/{slot}")
                assert status == 200 and h["eth-consensus-version"] == \
                    network.fork_name_at_slot(slot)
                d = json.loads(body)["data"]
                assert d["root"] == "0x" + ssz.block_root(blk).hex()
                assert d["header"]["signature"] == "0x" + bytes(blk.signature).hex()
                assert d["header"]["message"] == {
                    "slot": str(m.slot), "proposer_index": str(m.proposer_index),
                    "parent_root": "0x" + bytes(m.parent_root).hex(),
                    "state_root": "0x" + bytes(m.state_root).hex(),
                    "body_root": "0x" + ssz.hash_tree_root(m.body).hex()}


def test_unmatched_paths_and_methods_get_json_errors(server):
    status, h, body = raw_get(server, "/a/b/c")
    assert status == 404 and h["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == 404
    status, h, body = raw_get(server, "/index.json", method="POST")
    assert status == 405 and json.loads(body)["code"] == 405
    text = get(server, "/metrics")[2].decode()
    assert 'route="unmatched",status="404"' in text


def test_cli_serve_killed_parent_leaves_no_worker(sample_dir):
    import signal

    proc, url, _ = _start_serve([str(sample_dir), "--port", "0", "--workers", "2"])
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2
        port = urlsplit(url).port
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        # the workers get SIGTERM from the kernel (PR_SET_PDEATHSIG) and stop
        assert _wait_for(lambda: not any(_alive(p) for p in workers))

        def port_free():
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                    return True
                except OSError:
                    return False

        assert _wait_for(port_free)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
