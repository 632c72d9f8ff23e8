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

ROOT = Path(__file__).resolve().parents[1]

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
    c = Cluster(tmp_path_factory.mktemp("dask"))
    yield c
    c.close()


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


def test_a_file_whose_workers_keep_dying_is_one_line_exit_2(tmp_path, sample_dir):
    """The scheduler gives up on a task after `allowed-failures` worker deaths (here 0): the
    command names the scheduler and the file, exit 2, no traceback."""
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
        assert msg.startswith(f"{c.address}: {sample_dir}/"), msg
        assert "the workers running it died, as many times as the scheduler allows" in msg
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
