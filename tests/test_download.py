"""`era download` against real servers on 127.0.0.1: `era serve`, a plain `http.server`
directory listing, an S3-style ListObjectsV2 host; interrupted downloads (a cut connection, a
SIGKILLed process) resume with Range; corrupt files end up as .bad with exit 1; gaps reported.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from aiohttp import web
from click.testing import CliRunner

from era_tools.cli import main
from era_tools.download import era_gaps, parse_checksums, parse_html, RemoteFile
from era_tools.era import EraReader
from era_tools.serve.app import make_app
from era_tools.serve.testing import ServerThread

SAMPLE = Path(__file__).resolve().parents[1] / "sample_eras"
ERA_NAMES = sorted(p.name for p in SAMPLE.glob("*.era"))


def era_names(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.era"))


def assert_mirror(src: Path, dst: Path, names=None) -> None:
    names = names or era_names(src)
    assert era_names(dst) == sorted(names)
    for n in names:
        assert (dst / n).read_bytes() == (src / n).read_bytes(), n
    assert not list(dst.glob("*.tmp")) and not list(dst.glob("*.bad"))


def run_cli(*args):
    return CliRunner().invoke(main, ["download", *map(str, args)])


class Recorder:
    """aiohttp middleware that records (path, Range header) and can misbehave on purpose."""

    def __init__(self, mode: str | None = None, only: str | None = None):
        self.mode = mode          # None | "cut" (half, then close) | "hang" (half, then wait)
        self.only = only          # file name to misbehave on (None: every era file)
        self.seen: list[tuple[str, str | None]] = []
        self.misbehaved: set[str] = set()

    @web.middleware
    async def middleware(self, request, handler):
        name = request.path.lstrip("/")
        rng = request.headers.get("Range")
        self.seen.append((name, rng))
        if (self.mode and name.endswith(".era") and rng is None and name not in self.misbehaved
                and (self.only is None or name == self.only)):
            self.misbehaved.add(name)
            data = (SAMPLE / name).read_bytes()
            resp = web.StreamResponse()
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[:len(data) // 2])
            if self.mode == "hang":
                import asyncio

                await asyncio.sleep(3600)
            request.transport.close()
            return resp
        return await handler(request)

    def ranges(self, name):
        return [r for n, r in self.seen if n == name and r]


@pytest.fixture
def era_host(network):
    """Start `era serve` (in a thread) over a directory, optionally with a Recorder."""
    servers = []

    def start(directory=SAMPLE, recorder=None):
        mw = [recorder.middleware] if recorder else []
        srv = ServerThread(make_app(directory, network, middlewares=mw)).start()
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        s.stop()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def plain_host():
    """`python -m http.server` (the stdlib handler, threaded) over a directory."""
    servers = []

    def start(directory):
        handler = functools.partial(_Quiet, directory=str(directory))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


# --------------------------------------------------------------------------------------------
# mirror from era serve


def test_mirror_from_era_serve(era_host, tmp_path):
    srv = era_host()
    dest = tmp_path / "mirror"
    r = run_cli(srv.url, dest)
    assert r.exit_code == 0, r.output
    assert "17 downloaded, 0 already present, 0 bad, 0 failed (listing: index.json, " \
           "checksums: index.json, verify: roots)" in r.output
    assert_mirror(SAMPLE, dest)
    assert not (dest / ".era-download").exists()  # the staging directory was left, empty
    assert (dest / "spec.json").read_bytes() == (SAMPLE / "spec.json").read_bytes()
    # checksums match the host's
    sums = dict(line.split("  ")[::-1] for line in
                (srv.url and __import__("urllib.request").request.urlopen(
                    srv.url + "checksums.txt").read().decode().splitlines()))
    for n in ERA_NAMES:
        assert hashlib.sha256((dest / n).read_bytes()).hexdigest() == sums[n]
    # a rerun has nothing to do
    r = run_cli(srv.url, dest, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["downloaded"] == [] and rep["skipped"] == ERA_NAMES and rep["gaps"] == []


def test_cut_connection_is_resumed_with_range(era_host, tmp_path):
    rec = Recorder(mode="cut")
    srv = era_host(recorder=rec)
    dest = tmp_path / "mirror"
    r = run_cli(srv.url, dest, "--jobs", "3", "--verify", "structure")
    assert r.exit_code == 0, r.output
    assert_mirror(SAMPLE, dest)
    for n in ERA_NAMES:
        half = (SAMPLE / n).stat().st_size // 2
        assert rec.ranges(n) == [f"bytes={half}-"], (n, rec.ranges(n))


def test_killed_download_resumes_and_does_not_start_over(era_host, tmp_path):
    target = "minimal-00005-680f04e9.era"
    size = (SAMPLE / target).stat().st_size
    rec = Recorder(mode="hang", only=target)
    srv = era_host(recorder=rec)
    dest = tmp_path / "mirror"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from era_tools.cli import main; main()", "download", srv.url,
         str(dest), "--from-era", "4", "--to-era", "6", "--jobs", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = dest / (target + ".tmp")
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if tmp.exists() and tmp.stat().st_size >= size // 2:
                break
            time.sleep(0.05)
        assert tmp.exists() and tmp.stat().st_size == size // 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert not (dest / target).exists()  # nothing half-written carries the .era name
    gets_before = [x for x in rec.seen if x[0] == target]
    r = run_cli(srv.url, dest, "--from-era", "4", "--to-era", "6")
    assert r.exit_code == 0, r.output
    assert_mirror(SAMPLE, dest, [n for n in ERA_NAMES if "-0000" in n and
                                 int(n.split("-")[1]) in (4, 5, 6)])
    gets_after = [x for x in rec.seen if x[0] == target][len(gets_before):]
    assert gets_after == [(target, f"bytes={size // 2}-")]


# --------------------------------------------------------------------------------------------
# other hosts


def test_plain_http_server_listing_without_checksums(plain_host, tmp_path):
    url = plain_host(SAMPLE)
    dest = tmp_path / "mirror"
    r = run_cli(url, dest)
    assert r.exit_code == 0, r.output
    assert "(listing: html, checksums: none, verify: roots)" in r.output
    assert_mirror(SAMPLE, dest)


def _corrupt_block(path: Path, slot: int) -> None:
    with EraReader(path) as rd:
        off = rd.block_record(slot).data_offset + 40
    data = bytearray(path.read_bytes())
    data[off] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_file_is_kept_aside_as_bad(plain_host, era_copy, tmp_path):
    bad = "minimal-00007-9b6c7743.era"
    _corrupt_block(era_copy / bad, 400)
    url = plain_host(era_copy)
    dest = tmp_path / "mirror"
    r = run_cli(url, dest)
    assert r.exit_code == 1, r.output
    assert (dest / (bad + ".bad")).read_bytes() == (era_copy / bad).read_bytes()
    assert not (dest / bad).exists()
    assert era_names(dest) == [n for n in ERA_NAMES if n != bad]
    lines = [ln for ln in r.output.splitlines() if ln.startswith("bad: ")]
    assert len(lines) == 1 and lines[0].startswith(f"bad: {bad}: ")
    assert lines[0].endswith(f"(kept as {bad}.bad)")
    assert "16 downloaded, 0 already present, 1 bad, 0 failed" in r.output


def test_checksum_mismatch_is_bad(plain_host, era_copy, tmp_path):
    lines = []
    for n in ERA_NAMES:
        h = hashlib.sha256((era_copy / n).read_bytes()).hexdigest()
        if n == ERA_NAMES[3]:
            h = "0" * 64
        lines.append(f"{h}  {n}\n")
    (era_copy / "checksums.txt").write_text("".join(lines))
    dest = tmp_path / "mirror"
    r = run_cli(plain_host(era_copy), dest, "--verify", "none")
    assert r.exit_code == 1, r.output
    assert "checksums: checksums.txt" in r.output
    assert f"bad: {ERA_NAMES[3]}: sha256 " in r.output
    assert (dest / (ERA_NAMES[3] + ".bad")).exists()
    assert len(era_names(dest)) == 16


def _s3_app(directory: Path, page: int = 5) -> web.Application:
    """A ListObjectsV2 host: `?list-type=2` pages of `page` keys, then the objects."""
    keys = sorted(p.name for p in directory.iterdir())

    async def root(request):
        q = request.query
        if q.get("list-type") != "2":
            return web.Response(status=403, text="AccessDenied")
        start = int(q.get("continuation-token", "0"))
        chunk = keys[start:start + page]
        more = start + page < len(keys)
        items = "".join(
            f"<Contents><Key>{escape(k)}</Key><Size>{(directory / k).stat().st_size}</Size>"
            f"</Contents>" for k in chunk)
        token = f"<NextContinuationToken>{start + page}</NextContinuationToken>" if more else ""
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns='
                '"http://s3.amazonaws.com/doc/2006-03-01/"><Name>eras</Name>'
                f"<KeyCount>{len(chunk)}</KeyCount><IsTruncated>{str(more).lower()}"
                f"</IsTruncated>{token}{items}</ListBucketResult>")
        return web.Response(text=body, content_type="application/xml")

    async def obj(request):
        name = request.match_info["key"]
        if name not in keys:
            return web.Response(status=404, text="NoSuchKey")
        return web.FileResponse(directory / name)

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/{key}", obj)
    return app


def test_s3_listing_with_pagination(tmp_path):
    with ServerThread(_s3_app(SAMPLE)) as srv:
        dest = tmp_path / "mirror"
        r = run_cli(srv.url, dest, "--verify", "structure")
        assert r.exit_code == 0, r.output
        assert "(listing: s3, checksums: none" in r.output
        assert_mirror(SAMPLE, dest)


def test_gaps_are_reported_and_fail_unless_allowed(plain_host, era_copy, tmp_path):
    (era_copy / "minimal-00005-680f04e9.era").unlink()
    (era_copy / "minimal-00009-c993b1d9.era").unlink()
    (era_copy / "minimal-00010-24f67137.era").unlink()
    url = plain_host(era_copy)
    r = run_cli(url, tmp_path / "a", "--verify", "none")
    assert r.exit_code == 1, r.output
    gap_lines = [ln for ln in r.output.splitlines() if ln.startswith("gap:")]
    assert gap_lines == ["gap: the host has no file for era 5",
                         "gap: the host has no file for eras 9-10"]
    r = run_cli(url, tmp_path / "b", "--verify", "none", "--allow-gaps", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output[r.output.index("{"):r.output.rindex("}") + 1])["gaps"] == \
        [[5, 5], [9, 10]]
    # an explicit range past the host's last era is no gap: the host has no more
    r = run_cli(url, tmp_path / "c", "--verify", "none", "--from-era", "15", "--to-era", "18")
    assert r.exit_code == 0, r.output  # was 1, "gap: the host has no file for eras 17-18"
    assert "note: the host has eras 0..16; eras 17..18 asked for are beyond it" in r.output
    assert not [ln for ln in r.output.splitlines() if ln.startswith("gap:")]
    assert era_names(tmp_path / "c") == ERA_NAMES[15:17]
    # ... nor is a huge one: it was a loop over every number up to it (minutes, gigabytes)
    r = run_cli(url, tmp_path / "e", "--verify", "none", "--from-era", "16", "--to-era",
                "99999999999999999999", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output[r.output.index("{"):r.output.rindex("}") + 1])
    assert rep["beyond_host"] == {"era": [[17, 99999999999999999999]]}
    assert rep["host_has"] == {"era": [0, 16]} and rep["gaps"] == []
    # a range with none of the host's eras is bad input
    r = run_cli(url, tmp_path / "f", "--verify", "none", "--from-era", "20", "--to-era", "30")
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines()[-1] == (
        f"error: {url}: the host has eras 0..16; none in the range asked for (20..30)")


def test_unreachable_host_and_bad_url(tmp_path):
    r = run_cli("ftp://example.invalid/", tmp_path / "d")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == "error: ftp://example.invalid/: not an http(s) URL"
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run_cli(f"http://127.0.0.1:{port}/", tmp_path / "d")
    assert r.exit_code == 2
    last = r.output.strip().splitlines()[-1]
    assert last.startswith(f"error: http://127.0.0.1:{port}/index.json: ClientConnectorError")
    r = run_cli("http://127.0.0.1:1/", tmp_path / "d", "--from-era", "5", "--to-era", "3")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == "error: --from-era 5 is after --to-era 3"


def test_a_listing_without_era_files_is_an_error(plain_host, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html><body>hello</body></html>")
    url = plain_host(site)
    r = run_cli(url, tmp_path / "d")
    assert r.exit_code == 2  # was exit 0: "0 downloaded" from a page that lists nothing
    assert r.stderr.strip().splitlines()[-1] == \
        f"error: {url}: the html listing names no .era or .era1 files"
    (site / "index.json").write_text('{"files": [{"name": 5}]}')
    r = run_cli(url, tmp_path / "d")
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines()[-1] == \
        f"error: {url}: the index.json listing names no .era or .era1 files"


# --------------------------------------------------------------------------------------------
# parsing units


NGINX = b"""<html>
<head><title>Index of /</title></head>
<body>
<h1>Index of /</h1><hr><pre><a href="../">../</a>
<a href="mainnet-00000-4b363db9.era">mainnet-00000-4b363db9.era</a>                         02-Dec-2022 08:47             1815726
<a href="mainnet-00001-40cf2f3c.era">mainnet-00001-40cf2f3c.era</a>                         02-Dec-2022 08:47            18559489
<a href="mainnet-00003-d8b8a40b.era">mainnet-00003-d8b8a40b.era</a>                         02-Dec-2022 08:47            18705262
<a href="sub/">sub/</a>                                               02-Dec-2022 08:47                   -
<a href="../../etc/passwd.era">x</a>
<a href="http://elsewhere.example/mainnet-00002-aaaaaaaa.era">y</a>
</pre><hr></body>
</html>
"""


def test_parse_nginx_autoindex_and_gaps():
    files, extras = parse_html(NGINX, "http://host.example/eras/")
    assert [f.name for f in files] == ["mainnet-00000-4b363db9.era", "mainnet-00001-40cf2f3c.era",
                                       "mainnet-00003-d8b8a40b.era"]
    assert files[1].url == "http://host.example/eras/mainnet-00001-40cf2f3c.era"
    assert [f.era for f in files] == [0, 1, 3]
    assert era_gaps([0, 1, 3]) == [(2, 2)]
    assert era_gaps([0, 1, 3], 0, 5) == [(2, 2)]  # 4..5: past the host's last, no gap
    assert era_gaps([], 0, 1) == []
    assert era_gaps([2, 5], 0, 10**20) == [(3, 4)]


def test_parse_checksums_styles():
    files = [RemoteFile(n, "u/" + n) for n in ("b.era", "a.era")]
    h1, h2 = "1" * 64, "A" * 64
    assert parse_checksums(f"{h1}  a.era\n{h2} *b.era\n", files) == (
        {"a.era": h1, "b.era": h2.lower()}, None)
    # bare hashes: line N = file N in listing order
    assert parse_checksums(f"{h1}\n{h2}\n", files) == ({"a.era": h1, "b.era": h2.lower()}, None)
    got, warn = parse_checksums(f"{h1}\n", files)
    assert got == {} and warn == "checksums.txt has 1 bare hashes for 2 files; ignored"
    assert parse_checksums("<html>not found</html>", files) == ({}, None)
