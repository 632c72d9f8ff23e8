"""Node and peer URLs: anything but an http(s) URL with a host is a usage error (exit 2) naming
the option, before any store is opened or any request is tried.  (`era download` checks its URL
itself: tests/test_download.py.)"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from era_tools.cli import main


@pytest.mark.parametrize("args,param", [
    (["pull", "--beacon-api", "ftp://node:5052", "--db", "{db}"], "'--beacon-api'"),
    (["checkpoint-sync", "--beacon-api", "localhost:5052", "--db", "{db}"], "'--beacon-api'"),
    (["backfill", "--peer", "http://127.0.0.1:9", "--peer", "node", "--db", "{db}"], "'--peer'"),
])
def test_non_http_urls_are_usage_errors(tmp_path, args, param):
    db = tmp_path / "db"
    res = CliRunner().invoke(main, [a.format(db=db) for a in args])
    assert res.exit_code == 2, res.output
    assert f"Invalid value for {param}: " in res.output
    assert "is not an http:// or https:// URL with a host" in res.output
    assert not db.exists()  # nothing was created
