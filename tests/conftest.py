"""Shared pytest fixtures: the real-client chain in ../shared/fixtures, sample_eras/, networks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from era_tools.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ERAS = ROOT / "sample_eras"
FIXTURE = ROOT.parent / "shared" / "fixtures" / "lodestar-minimal-1"


def _need_fixture():
    if not (FIXTURE / "manifest.json").exists():
        pytest.skip(f"fixture chain not found at {FIXTURE}")


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    _need_fixture()
    return FIXTURE


@pytest.fixture(scope="session")
def manifest(fixture_dir) -> dict:
    return json.loads((fixture_dir / "manifest.json").read_text())


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_ERAS


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    return sorted(SAMPLE_ERAS.glob("*.era"))


@pytest.fixture(scope="session")
def network():
    """The fixture chain's network, from the config shipped beside the sample eras."""
    return load_config(SAMPLE_ERAS / "spec.json")


@pytest.fixture
def sample_host(network):
    """`era serve`'s application over sample_eras/, on 127.0.0.1 in a thread."""
    from era_tools.serve.app import make_app
    from era_tools.serve.testing import ServerThread

    srv = ServerThread(make_app(SAMPLE_ERAS, network)).start()
    yield srv
    srv.stop()


@pytest.fixture
def era_copy(tmp_path, sample_dir):
    """A writable copy of sample_eras/ (era files + config)."""
    dst = tmp_path / "eras"
    shutil.copytree(sample_dir, dst)
    return dst


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes; runs only with ERA_TOOLS_SLOW=1")


# -- S3-compatible object storage: a real SeaweedFS server, once per session ----------------
@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """`weed server -s3` on 127.0.0.1 (tests/s3server.py).  Skipped, with the reason, only
    when `weed` cannot start here; under CI (CI=true) that is a failure instead."""
    from s3server import SeaweedS3, WeedUnavailable

    srv = SeaweedS3(str(tmp_path_factory.mktemp("seaweedfs")))
    try:
        srv.start()
    except WeedUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"S3 test server: {exc}")
        pytest.skip(f"S3 test server unavailable: {exc}")
    yield srv
    srv.stop()


_bucket_seq = [0]


class Bucket:
    def __init__(self, server, name):
        self.server, self.name, self.url = server, name, f"s3://{name}"

    def put(self, key: str, data: bytes) -> None:
        self.server.client().put_object(Bucket=self.name, Key=key, Body=data)

    def keys(self, prefix: str = "") -> dict[str, int]:
        """{key: size} of every object under `prefix` (what a reader of the bucket sees)."""
        c = self.server.client()
        out, token = {}, None
        while True:
            kw = {"Bucket": self.name, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            page = c.list_objects_v2(**kw)
            out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]

    def get(self, key: str) -> bytes:
        return self.server.client().get_object(Bucket=self.name, Key=key)["Body"].read()

    def multipart_uploads(self) -> list:
        return self.server.client().list_multipart_uploads(Bucket=self.name).get("Uploads", [])


@pytest.fixture
def s3(s3_server, monkeypatch):
    """A fresh bucket on the session's S3 server, with AWS_* set for era_tools (and for the
    `era` subprocesses the test starts)."""
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(k, raising=False)
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ERA_TOOLS_S3_TIMEOUT", "10")
    _bucket_seq[0] += 1
    name = s3_server.create_bucket(f"eras-{os.getpid()}-{_bucket_seq[0]}")
    return Bucket(s3_server, name)


# -- a real Dask cluster: a scheduler and worker processes on 127.0.0.1 (test_dask, test_objstore)
def _dask_cmd(*args) -> list[str]:
    """`dask scheduler ...` / `dask worker ...` as this interpreter's modules (the `dask`
    script is the same code; a pyenv shim in front of it would put a process between)."""
    return [sys.executable, "-m", f"distributed.cli.dask_{args[0]}", *args[1:]]


class Cluster:
    """A scheduler and `n` single-threaded worker processes (no nanny: a killed worker stays
    dead, so its tasks must move to the other one)."""

    def __init__(self, tmp: Path, n: int = 2, **config):
        self.tmp = tmp
        self.env = dict(os.environ, PYTHONPATH=str(ROOT),
                        DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED="False", **config)
        self.sched_file = tmp / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--no-dashboard", "--scheduler-file",
                                      str(self.sched_file)], "scheduler")
        deadline = time.monotonic() + 60
        while not self.sched_file.exists() or not self.sched_file.read_text().strip():
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                raise RuntimeError("dask scheduler did not start: "
                                   + (tmp / "scheduler.log").read_text()[-2000:])
            time.sleep(0.1)
        self.address = json.loads(self.sched_file.read_text())["address"]
        self.workers = [self._start(["worker", "--scheduler-file", str(self.sched_file),
                                     "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                     "--no-dashboard", "--memory-limit", "0",
                                     "--name", f"w{i}"], f"worker{i}")
                        for i in range(n)]
        self.wait_for_workers(n)

    def _start(self, args, log) -> subprocess.Popen:
        out = open(self.tmp / f"{log}.log", "wb")
        p = subprocess.Popen(_dask_cmd(*args), env=self.env, stdout=out, stderr=out,
                             cwd=self.tmp)
        self.procs.append(p)
        return p

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30, set_as_default=False)

    def wait_for_workers(self, n: int) -> None:
        with self.client() as c:
            c.wait_for_workers(n, timeout=120)

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers, shared by the tests of a module."""
    pytest.importorskip("distributed")
    c = Cluster(tmp_path_factory.mktemp("dask"))
    yield c
    c.close()
