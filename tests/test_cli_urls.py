"""Node and peer URLs: anything but an http(s) URL with a host is a usage error (exit 2) naming
the option, before any store is opened or any request is tried.  (`era download` checks its URL
itself: tests/test_download.py.)"""

from __future__ import annotations

import socket

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


def test_an_unreachable_node_is_one_short_line(tmp_path):
    # was ~330 characters of requests' and urllib3's internals
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    res = CliRunner().invoke(main, ["pull", "--beacon-api", f"http://127.0.0.1:{port}",
                                    "--db", str(tmp_path / "db"), "--retries", "1"])
    assert res.exit_code == 2
    assert res.stderr == (f"error: http://127.0.0.1:{port}/eth/v1/config/spec: failed after 1 "
                          f"tries: connection refused (127.0.0.1:{port})\n")


def test_a_node_that_never_answers_times_out_in_one_short_line(tmp_path):
    with socket.socket() as s:  # accepts connections (the backlog), never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        res = CliRunner().invoke(main, ["pull", "--beacon-api", f"http://127.0.0.1:{port}",
                                        "--db", str(tmp_path / "db"), "--retries", "1",
                                        "--timeout", "0.2"])
    assert res.exit_code == 2
    assert res.stderr == (f"error: http://127.0.0.1:{port}/eth/v1/config/spec: failed after 1 "
                          f"tries: timed out after 0.2 s (127.0.0.1:{port})\n")
