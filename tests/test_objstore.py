"""Era archives in S3-compatible object storage, against a real SeaweedFS server (conftest `s3`).

Every era_tools call runs in an `era` subprocess (the S3 client's runtime threads would make
this pytest process start its later worker pools without fork); the bucket is inspected and
damaged with a separate client (boto3), as another writer would."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from conftest import SAMPLE_ERAS

CLI = [sys.executable, "-c", "from era_tools.cli import main; main()"]
SAMPLE_NAMES = sorted(p.name for p in SAMPLE_ERAS.glob("*.era"))


def era(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_error_line(stderr: str) -> str:
    """The stderr's error lines: exactly one, no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture
def store(tmp_path):
    """A chain store front-filled from sample_eras/ (what `era export` reads)."""
    db = tmp_path / "db"
    res = era("frontfill", "--db", db, SAMPLE_ERAS)
    assert res.returncode == 0, res.stderr
    return db


@pytest.fixture
def filled(s3):
    """sample_eras/ (eras and config) put into the bucket under eras/ by another client."""
    for p in sorted(SAMPLE_ERAS.iterdir()):
        if p.suffix in (".era", ".json"):
            s3.put(f"eras/{p.name}", p.read_bytes())
    return s3


# -- the round trip (acceptance) --------------------------------------------------------------
def test_sample_eras_round_trip_through_a_bucket(s3, store, tmp_path):
    url = f"{s3.url}/archive"
    res = era("export", "--db", store, "--out", url, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [u.rsplit("/", 1)[1] for u in out["written"]] == SAMPLE_NAMES
    keys = s3.keys("archive/")
    assert {k.split("/", 1)[1] for k in keys} == {*SAMPLE_NAMES, "spec.json", "genesis.json",
                                                  "checksums.txt"}
    for n in SAMPLE_NAMES:  # the exported objects are the sample files, byte for byte
        assert s3.get(f"archive/{n}") == (SAMPLE_ERAS / n).read_bytes(), n
    sums = dict(reversed(ln.split("  ")) for ln in
                s3.get("archive/checksums.txt").decode().splitlines())
    assert sums == {n: sha((SAMPLE_ERAS / n).read_bytes()) for n in SAMPLE_NAMES}

    # a rerun uploads nothing: every object has the same size and sha256
    res = era("export", "--db", store, "--out", url, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["written"] == [] and \
        len(json.loads(res.stdout)["skipped"]) == len(SAMPLE_NAMES)

    res = era("verify", "--level", "chain", url, "--json", "--trusted-root",
              "0xf033a9222da46566fc53f3225310f166c1fee1ba14ff8a4b0a6021a2dc67bcee")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["ok"] and len(rep["files"]) == len(SAMPLE_NAMES)
    assert all(f["path"].startswith(url + "/") for f in rep["files"])
    assert f"network: minimal (config {url}/spec.json)" in res.stderr

    res = era("info", "--json", url)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert [d["name"] for d in info] == SAMPLE_NAMES
    assert [d["file_size"] for d in info] == [(SAMPLE_ERAS / n).stat().st_size
                                              for n in SAMPLE_NAMES]

    # serve the bucket, mirror it over HTTP: byte-identical, with checksums
    srv = subprocess.Popen([*CLI, "serve", url, "--port", "0"], stderr=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in srv.stderr:
            m = re.search(r"on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "era serve did not start"
        base = f"http://127.0.0.1:{port}"
        mirror = tmp_path / "mirror"
        res = era("download", base + "/", mirror, "--verify", "signatures")
        assert res.returncode == 0, res.stderr
        assert "checksums: index.json" in res.stdout
        for n in SAMPLE_NAMES:
            assert (mirror / n).read_bytes() == (SAMPLE_ERAS / n).read_bytes(), n
        import urllib.request

        with urllib.request.urlopen(base + "/checksums.txt") as r:
            assert r.read().decode() == s3.get("archive/checksums.txt").decode()
        n = SAMPLE_NAMES[5]
        data = (SAMPLE_ERAS / n).read_bytes()
        req = urllib.request.Request(f"{base}/{n}", headers={"Range": "bytes=100-1099"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
            assert r.read() == data[100:1100]
        req = urllib.request.Request(f"{base}/{n}", headers={"Range": "bytes=-10"})
        with urllib.request.urlopen(req) as r:
            assert r.read() == data[-10:]
        # the Beacon API and the range endpoint answer from the bucket's objects
        with urllib.request.urlopen(base + "/eth/v1/beacon/headers/head") as r:
            head = json.loads(r.read())["data"]
        assert head["header"]["message"]["slot"] == "1023"
        local = subprocess.Popen([*CLI, "serve", SAMPLE_ERAS, "--port", "0", "--jobs", "1"],
                                 stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        try:
            for line in local.stderr:
                m = re.search(r"on http://127\.0\.0\.1:(\d+)/", line)
                if m:
                    lport = int(m.group(1))
                    break
            for path in ("/eth/v2/beacon/blocks/100", "/era_tools/v1/blocks_by_range?"
                         "start_slot=64&count=300", "/eth/v1/beacon/blocks/head/root"):
                got = [urllib.request.urlopen(
                    urllib.request.Request(b + path, headers={
                        "Accept": "application/octet-stream"})).read()
                    for b in (base, f"http://127.0.0.1:{lport}")]
                assert got[0] == got[1] and got[0], path
        finally:
            local.terminate()
            local.wait(30)
    finally:
        srv.terminate()
        srv.wait(30)

    # a bucket to a bucket, and a bucket to a directory
    res = era("download", url, f"{s3.url}/copy")
    assert res.returncode == 0, res.stderr
    assert "listing: s3 bucket, checksums: checksums.txt" in res.stdout
    for n in SAMPLE_NAMES:
        assert s3.get(f"copy/{n}") == (SAMPLE_ERAS / n).read_bytes(), n
    assert s3.get("copy/checksums.txt") == s3.get("archive/checksums.txt")
    res = era("download", url, f"{s3.url}/copy")
    assert res.returncode == 0 and "0 downloaded, 17 already present" in res.stdout, res.stdout
    res = era("download", f"{s3.url}/copy", tmp_path / "local")
    assert res.returncode == 0, res.stderr
    for n in SAMPLE_NAMES:
        assert (tmp_path / "local" / n).read_bytes() == (SAMPLE_ERAS / n).read_bytes(), n

    # front-fill a new store from the bucket (copy mode), export it locally: the same files
    db2 = tmp_path / "db2"
    res = era("frontfill", "--db", db2, "--mode", "copy", url)
    assert res.returncode == 0, res.stderr
    res = era("frontfill", "--db", tmp_path / "db3", url)
    assert res.returncode == 2
    assert "from a bucket use --mode copy" in one_error_line(res.stderr)
    res = era("export", "--db", db2, "--out", tmp_path / "again")
    assert res.returncode == 0, res.stderr
    for n in SAMPLE_NAMES:
        assert (tmp_path / "again" / n).read_bytes() == (SAMPLE_ERAS / n).read_bytes(), n


def test_a_bucket_is_served_by_several_workers(filled):
    """Each worker starts its own S3 client (the parent never starts one: it reads the
    bucket's config in a child), and every worker answers from the bucket."""
    import urllib.request

    srv = subprocess.Popen([*CLI, "serve", f"{filled.url}/eras", "--port", "0", "--jobs", "2"],
                           stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in srv.stderr:
            m = re.search(r"on http://127\.0\.0\.1:(\d+)/ \(network minimal, 2 workers\)",
                          line)
            if m:
                port = int(m.group(1))
                break
        assert port, "era serve did not start"
        base = f"http://127.0.0.1:{port}"
        for _ in range(20):  # many connections: both workers take some
            with urllib.request.urlopen(base + "/eth/v1/beacon/blocks/head/root") as r:
                assert r.status == 200
        n = SAMPLE_NAMES[9]
        with urllib.request.urlopen(f"{base}/{n}") as r:
            assert r.read() == (SAMPLE_ERAS / n).read_bytes()
        deadline = time.monotonic() + 30  # /metrics sums both workers' snapshots (~1 s old)
        while True:
            with urllib.request.urlopen(base + "/metrics") as r:
                text = r.read().decode()
            m = re.search(r"^era_serve_workers (\S+)$", text, re.M)
            if (m and float(m.group(1)) == 2.0) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert m and float(m.group(1)) == 2.0, text[:2000]
        sums = urllib.request.urlopen(base + "/checksums.txt").read().decode()
        assert sums == "".join(f"{sha((SAMPLE_ERAS / m).read_bytes())}  {m}\n"
                               for m in SAMPLE_NAMES)
    finally:
        srv.terminate()
        srv.wait(30)


# -- the reader's file object ------------------------------------------------------------------
def test_range_file_reads_what_the_file_holds_with_fewer_requests(filled):
    """RangeFile against the local bytes at random offsets and sizes, across read-ahead
    spans; read-ahead turns the era reader's header-then-data reads into fewer GETs."""
    n = SAMPLE_NAMES[-1]
    script = f"""
import json, os, random
from era_tools import objstore
from era_tools.era import EraReader
url = "{filled.url}/eras/{n}"
data = open({str(SAMPLE_ERAS / n)!r}, "rb").read()
f = objstore.RangeFile(url, readahead=4096)
rnd = random.Random(7)
bad = 0
for _ in range(300):
    off = rnd.randrange(0, len(data) + 10)
    k = rnd.choice([1, 8, 100, 4095, 4096, 5000, 70000])
    bad += f.pread(k, off) != data[off:off + k]
f.seek(len(data) - 5); bad += f.read() != data[-5:]
for ra in (4096, 1 << 20):  # in order, sizes crossing the buffer's end: windows widen
    g, off = objstore.RangeFile(url, readahead=ra), 0
    while off < len(data):
        k = rnd.choice([8, 100, 3000, 9000])
        bad += g.pread(k, off) != data[off:off + k]
        off += k
counts = {{}}
for ra in ("0", "1048576"):
    os.environ["ERA_TOOLS_S3_READAHEAD"] = ra
    objstore.STATS.clear()
    with EraReader(url) as r:
        blocks = [b for _, b in r.iter_blocks_framed()]
    with EraReader({str(SAMPLE_ERAS / n)!r}) as r:
        bad += blocks != [b for _, b in r.iter_blocks_framed()]
    counts[ra] = objstore.STATS.get("get_range", 0)
print(json.dumps({{"bad": bad, "counts": counts, "size": f.size}}))
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["bad"] == 0 and out["size"] == (SAMPLE_ERAS / n).stat().st_size
    assert out["counts"]["1048576"] <= 3 < 50 < out["counts"]["0"], out["counts"]


# -- faults: one clear line each, nothing half-written ------------------------------------------
def test_a_corrupt_object_fails_verification_and_is_not_mirrored(filled, tmp_path):
    n = SAMPLE_NAMES[4]
    data = bytearray((SAMPLE_ERAS / n).read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside a block's snappy frames
    filled.put(f"eras/{n}", bytes(data))
    res = era("verify", f"{filled.url}/eras")
    assert res.returncode == 1
    bad = [ln for ln in res.stdout.splitlines() if "OK" not in ln.split(": ", 1)[-1][:2]]
    assert any(n in ln for ln in bad), res.stdout
    assert "Traceback" not in res.stderr
    # the host's checksums are the good files': the corrupt one is caught by its sha256
    filled.put("eras/checksums.txt", "".join(
        f"{sha((SAMPLE_ERAS / m).read_bytes())}  {m}\n" for m in SAMPLE_NAMES).encode())
    res = era("download", f"{filled.url}/eras", tmp_path / "m")
    assert res.returncode == 1
    assert re.search(rf"^bad: {re.escape(n)}: sha256 [0-9a-f]{{64}}, the host's checksum is "
                     rf"{sha((SAMPLE_ERAS / n).read_bytes())} \(kept as {re.escape(n)}.bad\)$",
                     res.stderr, re.M), res.stderr
    assert not (tmp_path / "m" / n).exists() and (tmp_path / "m" / f"{n}.bad").exists()
    # into a bucket: the corrupt file never becomes an object there
    res = era("download", f"{filled.url}/eras", f"{filled.url}/mirror")
    assert res.returncode == 1
    keys = filled.keys("mirror/")
    assert f"mirror/{n}" not in keys and len([k for k in keys if k.endswith(".era")]) == 16
    kept = re.search(rf"^bad: {re.escape(n)}: .* \(kept as (/\S+\.bad)\)$", res.stderr, re.M)
    assert kept and os.path.exists(kept.group(1)), res.stderr  # local, named in the message
    import shutil

    shutil.rmtree(os.path.dirname(kept.group(1)))
    assert n not in filled.get("mirror/checksums.txt").decode()


def test_a_missing_object_is_one_line(filled):
    url = f"{filled.url}/eras/minimal-00099-00000000.era"
    for cmd in ("info", "verify"):
        res = era(cmd, url)
        assert res.returncode == 2, (cmd, res.stdout, res.stderr)
        assert one_error_line(res.stderr) == f"error: {url}: no such object"
    res = era("info", "s3://no-such-bucket-here/eras")
    assert res.returncode == 2
    assert one_error_line(res.stderr) == "error: s3://no-such-bucket-here/eras: no such bucket"


def test_an_object_of_the_wrong_size_is_one_line(filled, tmp_path):
    n = SAMPLE_NAMES[7]
    data = (SAMPLE_ERAS / n).read_bytes()
    filled.put(f"eras/{n}", data[:-100])  # cut short: its indices are gone
    url = f"{filled.url}/eras/{n}"
    res = era("info", url)
    assert res.returncode == 2
    assert one_error_line(res.stderr).startswith(f"error: {url}: offset ")
    res = era("verify", f"{filled.url}/eras")
    assert res.returncode == 1
    assert [ln for ln in res.stdout.splitlines() if ln.startswith(url + ": ")] and \
        f"{url}: OK" not in res.stdout
    # served: listed among the errors, never sent
    filled.put("eras/checksums.txt", "".join(
        f"{sha((SAMPLE_ERAS / m).read_bytes())}  {m}\n" for m in SAMPLE_NAMES).encode())
    res = era("download", f"{filled.url}/eras", f"{filled.url}/mirror")
    assert res.returncode == 1
    kept = re.search(rf"^bad: {re.escape(n)}: .* \(kept as (/\S+\.bad)\)$", res.stderr, re.M)
    assert kept, res.stderr
    assert f"mirror/{n}" not in filled.keys("mirror/")
    import shutil

    shutil.rmtree(os.path.dirname(kept.group(1)))


def test_a_stalled_server_is_one_line_and_writes_nothing(s3, store, tmp_path):
    with socket.socket() as s:  # accepts connections (the backlog), never answers
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        port = s.getsockname()[1]
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
               "ERA_TOOLS_S3_TIMEOUT": "1"}
        t = time.monotonic()
        res = era("info", "s3://stalled/eras", env=env, timeout=120)
        assert res.returncode == 2
        assert one_error_line(res.stderr) == (f"error: s3://stalled/eras: timed out after 1 s "
                                              f"(http://127.0.0.1:{port})")
        res = era("export", "--db", store, "--out", "s3://stalled/eras", env=env, timeout=120)
        assert res.returncode == 2
        line = one_error_line(res.stderr)
        assert line.startswith("error: s3://stalled/eras") and line.endswith(
            f"timed out after 1 s (http://127.0.0.1:{port})"), line
        assert time.monotonic() - t < 110  # (a bound for the test's sake, not a speed claim)
    # the local staging of the export was removed
    import tempfile

    assert not [p for p in os.listdir(tempfile.gettempdir())
                if p.startswith("era-export-") and
                os.path.isdir(os.path.join(tempfile.gettempdir(), p)) and
                os.listdir(os.path.join(tempfile.gettempdir(), p))]


def test_a_killed_export_leaves_only_whole_objects_and_a_rerun_finishes(s3, store):
    url = f"{s3.url}/archive"
    env = {**os.environ, "ERA_TOOLS_KILL_AFTER_RECORDS": "400"}
    res = era("export", "--db", store, "--out", url, env=env)
    assert res.returncode != 0
    keys = s3.keys("archive/")
    eras = [k.split("/", 1)[1] for k in keys if k.endswith(".era")]
    assert 0 < len(eras) < len(SAMPLE_NAMES)
    for n in eras:  # what a reader sees is whole
        assert s3.get(f"archive/{n}") == (SAMPLE_ERAS / n).read_bytes(), n
    assert "archive/checksums.txt" not in keys  # written only after every file
    res = era("export", "--db", store, "--out", url, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["skipped"]) == len(eras) and \
        len(out["written"]) == len(SAMPLE_NAMES) - len(eras)
    assert len(s3.get("archive/checksums.txt").decode().splitlines()) == len(SAMPLE_NAMES)


# -- era1 files and the usual AWS config files ------------------------------------------------
def test_era1_files_in_a_bucket_are_read_and_mirrored(s3, tmp_path):
    import era1_builder as B

    a = B.make_chain(20, start=3 * B.EPOCH_SIZE, seed=1)
    b = B.make_chain(20, start=4 * B.EPOCH_SIZE, seed=2, start_td=a[-1].td, parent=a[-1].hash)
    names = []
    (tmp_path / "src").mkdir()
    for chain in (a, b):
        p = B.write_era1(tmp_path / "src", chain)
        names.append(os.path.basename(p))
        s3.put(f"el/{names[-1]}", open(p, "rb").read())
    res = era("info", "--json", f"{s3.url}/el")
    assert res.returncode == 0, res.stderr
    assert [d["name"] for d in json.loads(res.stdout)] == names
    res = era("verify", "--level", "chain", f"{s3.url}/el")
    assert res.returncode == 0, res.stdout + res.stderr
    res = era("download", f"{s3.url}/el", tmp_path / "m")
    assert res.returncode == 0, res.stderr
    for n in names:
        assert (tmp_path / "m" / n).read_bytes() == (tmp_path / "src" / n).read_bytes()


def test_credentials_and_endpoint_from_the_aws_config_files(filled, s3_server, tmp_path):
    """No AWS_* keys in the environment: AWS_PROFILE picks them, and the endpoint, from
    ~/.aws/credentials and ~/.aws/config (here through AWS_SHARED_CREDENTIALS_FILE and
    AWS_CONFIG_FILE)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    creds, cfg = tmp_path / "credentials", tmp_path / "config"
    creds.write_text(f"[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n\n"
                     f"[eras]\naws_access_key_id = {s3_server.env()['AWS_ACCESS_KEY_ID']}\n"
                     f"aws_secret_access_key = {s3_server.env()['AWS_SECRET_ACCESS_KEY']}\n")
    cfg.write_text(f"[profile eras]\nregion = us-east-1\n"
                   f"endpoint_url = {s3_server.endpoint}\n")
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_CONFIG_FILE=str(cfg),
               AWS_PROFILE="eras", ERA_TOOLS_S3_TIMEOUT="10")
    url = f"{filled.url}/eras/{SAMPLE_NAMES[2]}"
    res = era("info", url, env=env)
    assert res.returncode == 0, res.stderr
    assert "name check: OK" in res.stdout
    # the environment wins over the files: a wrong key there is refused
    res = era("info", url, env={**env, "AWS_SECRET_ACCESS_KEY": "wrong",
                                "AWS_ACCESS_KEY_ID": "nobody"})
    assert res.returncode == 2
    line = one_error_line(res.stderr)  # (the first request lists the prefix for a config)
    assert line.startswith(f"error: {filled.url}/eras") and line.endswith(
        ": access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"), line


def test_export_refuses_another_file_for_an_era_in_the_bucket(s3, store):
    s3.put("archive/minimal-00003-deadbeef.era", b"not the store's era 3")
    res = era("export", "--db", store, "--out", f"{s3.url}/archive")
    assert res.returncode == 2
    assert one_error_line(res.stderr) == (
        f"error: {s3.url}/archive/minimal-00003-deadbeef.era: a different file for era 3 "
        f"exists (the store's is {SAMPLE_NAMES[3]}); refusing to overwrite")
    keys = s3.keys("archive/")
    assert f"archive/{SAMPLE_NAMES[3]}" not in keys and "archive/checksums.txt" not in keys


def test_publish_puts_the_files_then_the_listing_files_and_resumes(s3, tmp_path):
    """objstore.publish, the API a publisher of new eras (era sync --publish) calls."""
    import shutil

    src = tmp_path / "eras"
    src.mkdir()
    for n in SAMPLE_NAMES[:4]:
        shutil.copy(SAMPLE_ERAS / n, src / n)
    (src / "checksums.txt").write_text("".join(
        f"{sha((src / n).read_bytes())}  {n}\n" for n in SAMPLE_NAMES[:4]))
    script = f"""
import json
from era_tools import objstore
order = []
names = {SAMPLE_NAMES[:4]!r}
first = objstore.publish({str(src)!r}, "{s3.url}/pub", names,
                         progress=lambda n, up: order.append((n, up)))
again = objstore.publish({str(src)!r}, "{s3.url}/pub", names)
print(json.dumps({{"order": order, "again": again}}))
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["order"] == [[n, True] for n in SAMPLE_NAMES[:4]] + [["checksums.txt", True]]
    assert not any(out["again"].values())  # same size and sha256: nothing uploaded again
    for n in SAMPLE_NAMES[:4]:
        assert s3.get(f"pub/{n}") == (SAMPLE_ERAS / n).read_bytes()


def test_extract_and_tables_read_a_bucket(filled, tmp_path):
    n = SAMPLE_NAMES[2]
    got = era("extract", f"{filled.url}/eras/{n}", "--slot", "70")
    want = era("extract", SAMPLE_ERAS / n, "--slot", "70")
    assert got.returncode == 0 and want.returncode == 0, got.stderr
    assert got.stdout == want.stdout and '"slot": "70"' in got.stdout
    for src, out in ((f"{filled.url}/eras", tmp_path / "b"), (SAMPLE_ERAS, tmp_path / "l")):
        res = era("tables", src, "--out", out, "--tables", "blocks", "--from-era", "1",
                  "--to-era", "3", "--json")
        assert res.returncode == 0, res.stderr
    for e in (1, 2, 3):
        b = sorted((tmp_path / "b" / "blocks" / f"era={e}").iterdir())
        lo = sorted((tmp_path / "l" / "blocks" / f"era={e}").iterdir())
        assert [p.name for p in b] == [p.name for p in lo] and len(b) == 1
        import pyarrow.parquet as pq

        assert pq.read_table(b[0]).equals(pq.read_table(lo[0]))


def test_trusted_state_read_from_a_bucket(s3, fixture_dir, tmp_path):
    """`era verify --trusted-state s3://bucket/key`: the fixture's finalized state at slot 1024
    read from the bucket anchors the sample eras (local files) as the same file does; a
    missing object and a non-state object are one line and exit 2."""
    state = (fixture_dir / "states" / "1024.ssz").read_bytes()
    s3.put("trusted/state-1024.ssz", state)
    s3.put("trusted/not-a-state.ssz", b"\x00" * 40)
    url = f"{s3.url}/trusted/state-1024.ssz"
    res = era("verify", "--level", "chain", "--trusted-state", url, "--json", "-j", "1",
              SAMPLE_ERAS)
    assert res.returncode == 0, res.stderr
    from_bucket = json.loads(res.stdout)
    assert from_bucket["anchor"]["kind"] == "trusted_state"
    assert from_bucket["anchor"]["slot"] == 1024 and from_bucket["anchor"]["matched"]
    assert from_bucket["summary"]["unanchored"] == []
    local = tmp_path / "state.ssz"
    local.write_bytes(state)
    res = era("verify", "--level", "chain", "--trusted-state", local, "--json", "-j", "1",
              SAMPLE_ERAS)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["anchor"] == from_bucket["anchor"]
    # pinned to its root, text report
    root = from_bucket["anchor"]["root"]
    res = era("verify", "--level", "chain", "--trusted-state", url, "--trusted-state-root",
              root, "-j", "1", SAMPLE_ERAS)
    assert res.returncode == 0, res.stderr
    assert f"trusted state: slot 1024, root {root}" in res.stdout
    missing = f"{s3.url}/trusted/nothing.ssz"
    res = era("verify", "--level", "chain", "--trusted-state", missing, SAMPLE_ERAS)
    assert res.returncode == 2, res.stdout
    assert one_error_line(res.stderr) == f"error: {missing}: no such object"
    bad = f"{s3.url}/trusted/not-a-state.ssz"
    res = era("verify", "--level", "chain", "--trusted-state", bad, SAMPLE_ERAS)
    assert res.returncode == 2, res.stdout
    assert one_error_line(res.stderr).startswith(f"error: {bad}: 40 bytes is too short")


def _mirror(bucket, prefix: str, dest) -> list[str]:
    """Copy every object under `prefix` to `dest` with the bucket's own client (a local
    mirror of the dataset); returns the relative keys."""
    keys = sorted(k[len(prefix):] for k in bucket.keys(prefix))
    for k in keys:
        p = dest / k
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bucket.get(prefix + k))
    return keys


def test_tables_into_a_bucket_resume_and_duckdb_reads_them(s3, tmp_path):
    """`era tables --out s3://...`: every table of every era put as one object, the same
    Parquet as a local run; a rerun puts nothing; a missing object is written again alone;
    a run killed mid-way leaves whole objects only and a rerun finishes; DuckDB reads the
    dataset through a local mirror of the bucket."""
    import pyarrow.parquet as pq

    from era_tools.cli.tables import TABLE_NAMES

    duckdb = pytest.importorskip("duckdb")
    url = f"{s3.url}/tables"
    stage = tmp_path / "tmp"
    stage.mkdir()
    env = {**os.environ, "TMPDIR": str(stage)}
    res = era("tables", SAMPLE_ERAS, "--out", url, "--json", "-j", "2", env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["out"] == url and doc["ok"] and doc["eras_written"] == len(SAMPLE_NAMES)
    keys = s3.keys("tables/")
    assert len(keys) == len(SAMPLE_NAMES) * len(TABLE_NAMES) and doc["bytes"] == \
        sum(keys.values())
    assert all(re.fullmatch(r"tables/[a-z_]+/era=\d+/minimal-\d{5}-[0-9a-f]{8}\.parquet", k)
               for k in keys), keys
    assert not [p for p in stage.rglob("*") if p.is_file()]  # local temporaries removed
    local = tmp_path / "local"
    assert era("tables", SAMPLE_ERAS, "--out", local).returncode == 0
    mirror = tmp_path / "mirror"
    names = _mirror(s3, "tables/", mirror)
    assert names == sorted(str(p.relative_to(local)) for p in local.rglob("*.parquet"))
    for n in names:
        assert pq.read_table(mirror / n).equals(pq.read_table(local / n)), n
    q = """SELECT era, count(*), min(slot), max(slot) FROM read_parquet(
        '{}/blocks/*/*.parquet', hive_partitioning = true) GROUP BY era ORDER BY era"""
    got = duckdb.sql(q.format(mirror)).fetchall()
    # (era 0 holds the genesis state only: no blocks)
    assert got == duckdb.sql(q.format(local)).fetchall() and len(got) == len(SAMPLE_NAMES) - 1
    assert duckdb.sql(f"""SELECT count(*) FROM read_parquet('{mirror}/validators/*/*.parquet',
        hive_partitioning = true) WHERE era = 16""").fetchall() == [(64,)]

    # a rerun puts nothing, and removes the local copy a run killed after its put left
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder,) = stage.glob("era-tables-*")
    stale = folder / f".blocks-era=2-{SAMPLE_NAMES[2][:-4]}.parquet.tmp-{dead.pid}"
    stale.write_bytes(b"a whole table, already put")
    res = era("tables", SAMPLE_ERAS, "--out", url, "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["eras_written"] == 0 and json.loads(res.stdout)["bytes"] == 0
    assert not stale.exists()
    victim = next(k for k in keys if k.startswith("tables/withdrawals/era=3/"))
    s3.server.client().delete_object(Bucket=s3.name, Key=victim)
    res = era("tables", SAMPLE_ERAS, "--out", url, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [list(f["written"]) for f in doc["files"] if f["written"]] == [["withdrawals"]]
    assert s3.get(victim) == (mirror / victim[len("tables/"):]).read_bytes()

    # killed once the first object is there: whole objects only, a rerun finishes the job
    url2 = f"{s3.url}/killed"
    proc = subprocess.Popen([*CLI, "tables", str(SAMPLE_ERAS), "--out", url2], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(3000):
            if proc.poll() is not None or s3.keys("killed/"):
                break
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -9, "the run ended before it could be killed"
    part = s3.keys("killed/")
    assert 0 < len(part) < len(keys)
    for k in part:  # what a reader sees is whole
        assert s3.get(k) == (mirror / k[len("killed/"):]).read_bytes(), k
    res = era("tables", SAMPLE_ERAS, "--out", url2, "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert sum(len(f["skipped"]) for f in json.loads(res.stdout)["files"]) == len(part)
    assert {k[len("killed/"):]: v for k, v in s3.keys("killed/").items()} == \
        {k[len("tables/"):]: v for k, v in keys.items()}
    assert not [p for p in stage.rglob("*") if p.is_file()]  # the dead run's temporary too


def test_tables_on_dask_workers_from_a_bucket_into_a_bucket(filled, tmp_path):
    """Era files read from the bucket and tables put into it by Dask workers (the workers get
    the AWS_* settings from their environment): the same objects, byte for byte, and the same
    --json as a local run; a rerun on the cluster puts nothing."""
    pytest.importorskip("distributed")
    from conftest import Cluster

    c = Cluster(tmp_path)  # started after the s3 fixture set AWS_* in this environment
    try:
        src = f"{filled.url}/eras"
        args = ["tables", src, "--from-era", "10", "--json"]
        local = era(*args, "--out", f"{filled.url}/local")
        remote = era(*args, "--out", f"{filled.url}/remote", "--dask", c.address)
        assert local.returncode == remote.returncode == 0, remote.stderr
        ld, rd = json.loads(local.stdout), json.loads(remote.stdout)
        assert rd.pop("out") == f"{filled.url}/remote" and ld.pop("out")
        assert rd == ld and rd["eras_written"] == 7
        lk, rk = filled.keys("local/"), filled.keys("remote/")
        assert len(rk) == 7 * 13 and sorted(k[len("local/"):] for k in lk) == \
            sorted(k[len("remote/"):] for k in rk)
        for k in lk:
            assert filled.get(k) == filled.get("remote/" + k[len("local/"):]), k
        again = era(*args, "--out", f"{filled.url}/remote", "--dask", c.address)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["eras_written"] == 0
    finally:
        c.close()


def test_tables_into_a_missing_bucket_is_one_line(s3):
    res = era("tables", SAMPLE_ERAS, "--out", "s3://no-such-bucket-here/t", "--to-era", "3")
    assert res.returncode == 2
    assert one_error_line(res.stderr) == "error: s3://no-such-bucket-here/t: no such bucket"
