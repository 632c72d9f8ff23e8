"""Shared pytest fixtures: the real-client chain in ../shared/fixtures, sample_eras/, networks."""

from __future__ import annotations

import json
import os
import shutil
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
