"""`era verify --dask` and `era info --dask` on a real Dask cluster: a `dask scheduler` and two
`dask worker` processes started here on 127.0.0.1 (free ports, PYTHONPATH so the workers import
this checkout's era_tools).  The per-file results, the report, `--json` and the exit codes must
be those of a local run; a worker killed mid-era has its task rerun elsewhere, same result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from click.testing import CliRunner  # noqa: E402

from era_tools.cli import main  # noqa: E402
from era_tools.verify import load_trusted_state, verify_archive  # noqa: E402
from conftest import Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

def test_verify_on_the_cluster_equals_the_local_run(cluster, sample_dir, network):
    from era_tools.verify import verify_archive

    local = verify_archive([sample_dir], network, "signatures", jobs=1).to_dict()
    seen = []
    remote = verify_archive([sample_dir], network, "signatures", dask=cluster.address,
                            progress=seen.append).to_dict()
    assert remote == local
    assert remote["ok"] and remote["summary"]["files"] == 17
    assert sum(seen) == remote["summary"]["blocks"] == 889


def test_cli_verify_dask_json_and_exit_codes(cluster, sample_dir, tmp_path, fixture_dir):
    runner = CliRunner()
    for name in sorted(os.listdir(sample_dir)):
        if name.endswith(".era") and int(name.split("-")[1]) >= 12:
            shutil.copy(sample_dir / name, tmp_path / name)
    state = str(fixture_dir / "states" / "1024.ssz")
    args = ["verify", str(tmp_path), "--level", "chain", "--trusted-state", state,
            "--config", str(sample_dir / "spec.json"), "--json"]
    local = runner.invoke(main, args + ["-j", "1"])
    remote = runner.invoke(main, args + ["--dask", cluster.address])
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    # a broken file: exit 1 on both, the same failure
    victim = sorted(tmp_path.glob("*-00014-*.era"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    local = runner.invoke(main, args + ["-j", "1"])
    remote = runner.invoke(main, args + ["--dask", cluster.address])
    assert local.exit_code == remote.exit_code == 1, remote.output
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    text = runner.invoke(main, args[:-1] + ["--dask", cluster.address])
    assert text.exit_code == 1 and f"{victim}: FAIL " in text.stdout


def test_cli_info_dask_equals_local(cluster, sample_dir):
    runner = CliRunner()
    local = runner.invoke(main, ["info", str(sample_dir), "--json"])
    remote = runner.invoke(main, ["info", str(sample_dir), "--json", "--dask", cluster.address])
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    text = runner.invoke(main, ["info", str(sample_dir), "--dask", cluster.address])
    assert text.stdout == runner.invoke(main, ["info", str(sample_dir)]).stdout


def test_cli_info_dask_malformed_file_like_local(cluster, sample_dir, tmp_path):
    for name in sorted(os.listdir(sample_dir)):
        if name.endswith(".era") and int(name.split("-")[1]) in (3, 4):
            shutil.copy(sample_dir / name, tmp_path / name)
    shutil.copy(sample_dir / "spec.json", tmp_path / "spec.json")
    victim = sorted(tmp_path.glob("*-00004-*.era"))[0]
    victim.write_bytes(victim.read_bytes()[:3000])  # truncated: a FormatError on the worker
    runner = CliRunner()
    for extra in (["--json"], []):
        local = runner.invoke(main, ["info", str(tmp_path), *extra])
        remote = runner.invoke(main, ["info", str(tmp_path), *extra, "--dask", cluster.address])
        assert local.exit_code == remote.exit_code == 2, remote.output
        assert remote.stdout == local.stdout and remote.stderr == local.stderr
        assert str(victim) in remote.stdout + remote.stderr


def test_unreachable_scheduler_is_one_line_exit_2(sample_dir):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(main, ["verify", str(sample_dir), "--dask",
                                    f"tcp://127.0.0.1:{port}"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: tcp://127.0.0.1:{port}: no Dask scheduler answers"), \
        res.stderr


def test_worker_killed_mid_era_is_retried(tmp_path, sample_dir, network):
    """Kill a worker while it verifies an era: the scheduler reruns that era on the other
    worker; the report equals the local one."""
    c = Cluster(tmp_path)
    try:
        local = verify_archive([sample_dir], network, "signatures", jobs=1).to_dict()
        killed = []

        def kill_one(_n):
            if killed:
                return
            with c.client() as cl:
                busy = {w: ts for w, ts in cl.processing().items() if ts}
                info = cl.scheduler_info()["workers"]
            for addr in busy:  # workers are named w0, w1 after their index in c.workers
                p = c.workers[int(str(info[addr]["name"])[1:])]
                os.kill(p.pid, signal.SIGKILL)
                killed.append((addr, busy[addr]))
                return

        remote = verify_archive([sample_dir], network, "signatures", dask=c.address,
                                progress=kill_one).to_dict()
        assert killed, "no worker was busy when the first result came back"
        assert remote == local
        with c.client() as cl:  # the killed worker is gone: its task ran on the other one
            for _ in range(300):
                if len(cl.scheduler_info()["workers"]) == 1:
                    break
                time.sleep(0.1)
            assert list(cl.scheduler_info()["workers"]) != [killed[0][0]]
            assert len(cl.scheduler_info()["workers"]) == 1
    finally:
        c.close()


def test_trusted_state_from_the_cluster_matches(cluster, sample_dir, network, fixture_dir):
    t = load_trusted_state((fixture_dir / "states" / "1024.ssz").read_bytes(), network)
    local = verify_archive([sample_dir], network, "chain", jobs=1, trusted_state=t).to_dict()
    remote = verify_archive([sample_dir], network, "chain", trusted_state=t,
                            dask=cluster.address).to_dict()
    assert remote == local and remote["ok"]
    assert remote["summary"]["unanchored"] == []
    assert all(f["anchored"] for f in remote["files"])


def test_a_file_whose_workers_keep_dying_is_one_line_exit_2(tmp_path, sample_dir, monkeypatch):
    """Every worker is killed after the first result.  The scheduler gives up on the tasks that
    were running (`allowed-failures` is 0): the error names the scheduler and the file.  If the
    kill lands between tasks (a finished result lost with its worker, the rest queued with no
    worker left) the client gives up after NO_WORKER_GRACE instead of waiting forever (it hung
    on a CI machine once, before the grace existed)."""
    from era_tools import cluster as cluster_mod

    monkeypatch.setattr(cluster_mod, "NO_WORKER_GRACE", 5.0)
    c = Cluster(tmp_path, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    try:
        from era_tools.config import load_config

        net = load_config(sample_dir / "spec.json")
        done = []

        def kill_all(_r):
            if done:
                return
            done.append(1)
            for p in c.workers:
                os.kill(p.pid, signal.SIGKILL)

        from era_tools.errors import PeerError

        with pytest.raises(PeerError) as exc:
            verify_archive([sample_dir], net, "signatures", dask=c.address, progress=kill_all)
        msg = str(exc.value)
        assert msg.startswith(f"{c.address}: "), msg
        assert "\n" not in msg
        if "the workers running it died" in msg:
            assert msg.startswith(f"{c.address}: {sample_dir}/"), msg
            assert "as many times as the scheduler allows" in msg
        else:
            assert "no workers for 5 s" in msg and f"(first: {sample_dir}/" in msg, msg
    finally:
        c.close()


def test_a_cluster_left_without_workers_is_one_line_not_a_hang(tmp_path, sample_dir,
                                                               monkeypatch):
    """The only worker dies after the first result and none comes back: the tasks it held are
    rescheduled (allowed-failures not reached) but nothing can run them.  The client gives up
    after NO_WORKER_GRACE with one line naming the first unfinished file."""
    from era_tools import cluster as cluster_mod
    from era_tools.config import load_config
    from era_tools.errors import PeerError

    monkeypatch.setattr(cluster_mod, "NO_WORKER_GRACE", 3.0)
    c = Cluster(tmp_path, n=1)
    try:
        net = load_config(sample_dir / "spec.json")
        seen = []

        def kill_worker(_r):
            seen.append(1)
            if len(seen) == 1:
                os.kill(c.workers[0].pid, signal.SIGKILL)

        with pytest.raises(PeerError) as exc:
            verify_archive([sample_dir], net, "signatures", dask=c.address,
                           progress=kill_worker)
        msg = str(exc.value)
        assert msg.startswith(f"{c.address}: no workers for 3 s, "), msg
        n_files = len(list(sample_dir.glob("*.era")))
        assert f" of {n_files} files unfinished (first: {sample_dir}/" in msg, msg
        assert len(seen) < n_files
    finally:
        c.close()


def test_spec_chain_on_the_cluster_with_a_trusted_state(cluster):
    """deneb -> electra -> fulu (executable spec): the trusted-state check runs on the workers
    (each era alone) and the report equals the local one."""
    from era_tools.config import load_config
    from era_tools.era import EraReader

    data = ROOT / "tests" / "data" / "spec_chain"
    net = load_config(data / "spec.json")
    files = sorted(data.glob("*.era"))
    with EraReader(files[-1]) as r:
        t = load_trusted_state(r.state_ssz(), net)
    local = verify_archive([data], net, "chain", jobs=1, trusted_state=t).to_dict()
    remote = verify_archive([data], net, "chain", trusted_state=t, dask=cluster.address)
    assert remote.to_dict() == local and local["ok"]
    assert [f.checks.get("historical_roots", {}).get("status") for f in remote.files] == \
        [None] + ["ok"] * (len(files) - 1)  # era 0 has no era root; the others matched


# -- era tables --dask ------------------------------------------------------------------------
def _parquet_files(out: Path) -> dict:
    """{relative path: pyarrow.Table} of every Parquet file under `out`."""
    import pyarrow.parquet as pq

    return {str(p.relative_to(out)): pq.read_table(p) for p in sorted(out.rglob("*.parquet"))}


def _same_tables(a: Path, b: Path) -> int:
    ta, tb = _parquet_files(a), _parquet_files(b)
    assert sorted(ta) == sorted(tb)
    for k in ta:
        assert ta[k].equals(tb[k]), k
    return len(ta)


def test_cli_tables_dask_equals_local_and_resumes(cluster, sample_dir, tmp_path):
    """Each era's tables written on a worker: the same files, --json and exit codes as a
    local run; a rerun skips every era; a file failing verification exits like locally."""
    from era_tools.cli.tables import TABLE_NAMES

    runner = CliRunner()
    local, remote = tmp_path / "local", tmp_path / "remote"
    lr = runner.invoke(main, ["tables", str(sample_dir), "--out", str(local), "--json"])
    rr = runner.invoke(main, ["tables", str(sample_dir), "--out", str(remote), "--json",
                              "--dask", cluster.address])
    assert lr.exit_code == rr.exit_code == 0, rr.output
    ldoc, rdoc = json.loads(lr.stdout), json.loads(rr.stdout)
    assert rdoc.pop("out") == str(remote) and ldoc.pop("out") == str(local)
    assert rdoc == ldoc and rdoc["eras_written"] == 17 and rdoc["ok"]
    assert _same_tables(local, remote) == 17 * len(TABLE_NAMES)
    assert not [p for p in remote.rglob(".*") if ".tmp-" in p.name]
    # a rerun on the cluster: every table is there, nothing is written
    mtimes = {p: p.stat().st_mtime_ns for p in remote.rglob("*.parquet")}
    again = runner.invoke(main, ["tables", str(sample_dir), "--out", str(remote), "--json",
                                 "--dask", cluster.address])
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["eras_written"] == 0 and doc["bytes"] == 0
    assert all(sorted(f["skipped"]) == sorted(TABLE_NAMES) for f in doc["files"])
    assert {p: p.stat().st_mtime_ns for p in remote.rglob("*.parquet")} == mtimes

    # a file that fails verification: the same exit code, error line and JSON
    src = tmp_path / "eras"
    src.mkdir()
    for name in sorted(os.listdir(sample_dir)):
        if name.endswith(".json") or (name.endswith(".era") and
                                      int(name.split("-")[1]) in (5, 6)):
            shutil.copy(sample_dir / name, src / name)
    victim = sorted(src.glob("*-00006-*.era"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    for extra in (["--json"], []):
        outs = [tmp_path / f"bad-l{len(extra)}", tmp_path / f"bad-r{len(extra)}"]
        lr = runner.invoke(main, ["tables", str(src), "--out", str(outs[0]), *extra])
        rr = runner.invoke(main, ["tables", str(src), "--out", str(outs[1]), *extra,
                                  "--dask", cluster.address])
        assert lr.exit_code == rr.exit_code and lr.exit_code in (1, 2), rr.output
        errors = [ln for ln in rr.stderr.splitlines() if ln.startswith("error:")]
        assert errors == [ln for ln in lr.stderr.splitlines() if ln.startswith("error:")]
        assert "Traceback" not in rr.output
        if extra:  # the error is in the document
            ld, rd = json.loads(lr.stdout), json.loads(rr.stdout)
            assert ld.pop("out") != rd.pop("out") and ld == rd and rd["failures"] == 1
            assert victim.name in rd["files"][1]["error"] and errors == []
        else:
            assert len(errors) == 1 and victim.name in errors[0]
        assert _same_tables(*outs) == len(TABLE_NAMES)  # era 5 only
        assert {p.parent.name for p in outs[1].rglob("*.parquet")} == {"era=5"}


def test_tables_worker_killed_mid_era_is_retried(tmp_path, sample_dir):
    """`era tables --dask` in a subprocess; a worker is killed while it converts an era (once
    the first table is in place): the scheduler reruns the era on the other worker, the run
    exits 0, and the dataset equals a local run's, with no temporary file left."""
    c = Cluster(tmp_path)
    try:
        out = tmp_path / "out"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-c", "from era_tools.cli import main; main()",
                                 "tables", str(sample_dir), "--out", str(out), "--json",
                                 "--dask", c.address], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        killed = []
        try:
            with c.client() as cl:
                for _ in range(12000):
                    if proc.poll() is not None:
                        break
                    if list(out.rglob("*.parquet")):
                        busy = {w: ts for w, ts in cl.processing().items() if ts}
                        info = cl.scheduler_info()["workers"]
                        if busy:
                            addr = next(iter(busy))
                            p = c.workers[int(str(info[addr]["name"])[1:])]
                            os.kill(p.pid, signal.SIGKILL)
                            p.wait()  # reaped, as its parent would (a zombie looks alive)
                            killed.append((addr, busy[addr]))
                            break
                    time.sleep(0.005)
            stdout, stderr = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert killed, "the run ended before a worker could be killed"
        assert proc.returncode == 0, stderr
        doc = json.loads(stdout)
        assert doc["ok"] and len(doc["files"]) == 17
        # every era's tables are there (some maybe written by the killed worker before it died)
        assert all(len(f["written"]) + len(f["skipped"]) == 13 for f in doc["files"])
        local = tmp_path / "local"
        assert CliRunner().invoke(main, ["tables", str(sample_dir), "--out",
                                         str(local)]).exit_code == 0
        assert _same_tables(local, out) == 17 * 13
        assert not [p for p in out.rglob(".*") if ".tmp-" in p.name]
        with c.client() as cl:
            assert len(cl.scheduler_info()["workers"]) == 1
    finally:
        c.close()
