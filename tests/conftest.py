"""Shared pytest fixtures: the real-client chain in ../shared/fixtures, sample_eras/, networks."""

from __future__ import annotations

import json
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
