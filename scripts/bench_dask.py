#!/usr/bin/env python3
"""Benchmark `era verify --dask`: eras/s with 1, 2, ... Dask worker processes against the local
`--jobs` run, all in one run, and the overhead Dask adds per era.

The eras: copies (hard links, one directory each) of one mainnet-shaped era made by
scripts/make_synthetic_era.py (default: 100,000 validators, blocks in the first 1,024 slots, so
that a run takes seconds on two shared cores), or `--sample` for the 17 small sample eras.
Every configuration verifies the same files at the same level:

- local, --jobs 1 (one process, files one after another) and --jobs N (a process per file);
- Dask, a `dask scheduler` and K single-threaded `dask worker` processes started here on
  127.0.0.1 (K = 1, 2, ...), their imports done before the clock starts (cluster.warm_up);
- Dask overhead: a task that only stats the file, per file, and (Dask 1 worker - local
  --jobs 1) / eras.

Scaling per worker = (eras/s with K workers) / (K x eras/s with 1 worker); the goal is >= 0.9 on
this machine's cores.  Printed beside: CPU flags, the SHA-256 and BLS code paths, the load
average before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchenv import cpu_flags, cpu_model  # noqa: E402  (scripts/benchenv.py)


def code_paths() -> str:
    from era_tools import bls, hashing

    try:
        from era_tools import _sha256

        sha = getattr(_sha256, "BACKEND", "native")
    except ImportError:
        sha = "hashlib"
    return (f"SHA-256 {'native ' + str(sha) if hashing.native() else 'hashlib'}; "
            f"BLS {type(bls.get_backend()).__name__}")


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


PROFILE = True  # --no-profile: workers without Dask's profiler


class Cluster:
    def __init__(self, workdir: Path, n: int):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if not PROFILE:  # Dask's statistical profiler samples every worker thread each 10 ms
            env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
        self.procs = []
        sched = workdir / f"scheduler-{n}.json"
        log = open(workdir / f"dask-{n}.log", "wb")
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(sched)],
            env=env, stdout=log, stderr=log))
        while not sched.exists() or not sched.read_text().strip():
            time.sleep(0.1)
        self.address = json.loads(sched.read_text())["address"]
        for i in range(n):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                 str(sched), "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--memory-limit", "0", "--name", f"w{i}"],
                env=env, stdout=log, stderr=log))
        from era_tools.cluster import warm_up

        for _ in range(600):
            if warm_up(self.address) >= n:
                break
            time.sleep(0.1)
        warm_up(self.address)  # every worker, once all are there

    def close(self):
        for p in self.procs[1:]:  # workers first (SIGKILL: their work is done), then the
            p.kill()              # scheduler
        self.procs[0].terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def proc_cpu(pids) -> float:
    """CPU seconds (user + system) of running processes, from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def timed(fn, worker_pids=()):
    """(wall, CPU of this process and its reaped children + of `worker_pids`, result)."""
    t0, c0, w0 = time.perf_counter(), os.times(), proc_cpu(worker_pids)
    out = fn()
    c1, w1 = os.times(), proc_cpu(worker_pids)
    cpu = (c1.user - c0.user) + (c1.system - c0.system) + (c1.children_user - c0.children_user) \
        + (c1.children_system - c0.children_system) + (w1 - w0)
    return time.perf_counter() - t0, cpu, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--era", type=Path, help="one era file to copy (default: a synthetic one, "
                                             "made once in bench_out/dask/)")
    ap.add_argument("--copies", type=int, default=8, help="eras per run [8]")
    ap.add_argument("--sample", action="store_true", help="the 17 sample eras instead")
    ap.add_argument("--level", default="signatures", help="verification level [signatures]")
    ap.add_argument("--workers", default="1,2", help="Dask worker counts [1,2]")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="the local --jobs N run [all cores]")
    ap.add_argument("--no-profile", action="store_true",
                    help="start the workers with Dask's statistical profiler off")
    args = ap.parse_args()
    global PROFILE
    PROFILE = not args.no_profile
    work = Path(tempfile.mkdtemp(prefix="bench_dask_"))
    try:
        run_all(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the copies (hard links) and the Dask logs


def run_all(args, work: Path) -> None:
    from era_tools.config import get_network, load_config
    from era_tools.verify import verify_archive

    if args.sample:
        net = load_config(ROOT / "sample_eras" / "spec.json")
        paths = [str(p) for p in sorted((ROOT / "sample_eras").glob("*.era"))]
        what = f"{len(paths)} sample eras (minimal preset, 889 blocks in all)"
    else:
        net = get_network("mainnet")
        src = args.era
        if src is None:
            out = ROOT / "bench_out" / "dask"
            found = sorted(out.glob("*.era"))
            if not found:
                subprocess.run([sys.executable, str(ROOT / "scripts" / "make_synthetic_era.py"),
                                "--out", str(out), "--validators", "100000", "--slots", "1024"],
                               check=True)
                found = sorted(out.glob("*.era"))
            src = found[0]
        paths = []
        for i in range(args.copies):
            d = work / f"c{i}"
            d.mkdir()
            dst = d / src.name
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy(src, dst)
            paths.append(str(dst))
        from era_tools.era import EraReader

        with EraReader(src) as r:
            nblk = len(r.block_slots())
        what = (f"{args.copies} copies of {src.name} (mainnet preset, {nblk} blocks, "
                f"{os.path.getsize(src) / 1e6:.0f} MB each)")
        for p in paths[:1]:  # page cache
            open(p, "rb").read()
    n = len(paths)
    print(f"eras: {what}; level {args.level}; Dask worker profiler "
          f"{'on' if PROFILE else 'off'}")
    print(f"CPU: {cpu_model()}; {cpu_flags()}; {os.cpu_count()} cores; {code_paths()}")
    print(f"load average before: {loadavg()}")

    rows = []

    def run(label, fn, procs, worker_pids=()):
        wall, cpu, rep = timed(fn, worker_pids)
        assert rep.ok, [f.line() for f in rep.files if not f.ok][:3]
        rows.append((label, procs, wall, cpu))
        print(f"  {label:22s} {wall:7.2f} s  {n / wall:6.3f} eras/s  {wall / n:6.2f} s/era  "
              f"CPU {cpu / n:6.2f} s/era (client + workers)", flush=True)
        return wall, cpu

    print("runs:")
    local1, local1_cpu = run("local --jobs 1",
                             lambda: verify_archive(paths, net, args.level, jobs=1), 1)
    localj = None
    if args.jobs > 1:
        localj, _ = run(f"local --jobs {args.jobs}",
                        lambda: verify_archive(paths, net, args.level, jobs=args.jobs),
                        args.jobs)
    per_worker = {}
    cpu_per_era = {}
    stat_cost = {}
    for k in [int(x) for x in args.workers.split(",")]:
        c = Cluster(work, k)
        try:
            from era_tools.cluster import run_per_file

            t0 = time.perf_counter()
            run_per_file(c.address, os.path.getsize, paths, name="stat")
            stat_cost[k] = (time.perf_counter() - t0) / n
            w, cpu = run(f"dask, {k} worker{'s' if k > 1 else ''}",
                         lambda: verify_archive(paths, net, args.level, dask=c.address), k,
                         [p.pid for p in c.procs[1:]])
            per_worker[k] = n / w / k
            cpu_per_era[k] = cpu / n
        finally:
            c.close()
    print(f"load average after: {loadavg()}")
    print("figures:")
    if localj is not None:
        print(f"  the machine's parallelism now: local --jobs {args.jobs} is "
              f"{local1 / localj:.2f}x local --jobs 1 (linear: {args.jobs}x)")
    if 1 in per_worker:
        for k, v in per_worker.items():
            if k > 1:
                print(f"  scaling with {k} workers: {v / per_worker[1]:.2f}x linear per worker "
                      f"(goal >= 0.9); CPU per era {cpu_per_era[k]:.2f} s against "
                      f"{cpu_per_era[1]:.2f} s with 1 worker "
                      f"({cpu_per_era[k] / cpu_per_era[1]:.2f}x)")
        d1 = next(w for lbl, p, w, _ in rows if lbl.startswith("dask, 1 "))
        print(f"  Dask overhead per era: wall {(d1 - local1) / n * 1000:+.1f} ms "
              f"((dask 1 worker - local --jobs 1) / {n}, {d1 / local1:.3f}x); CPU "
              f"{(cpu_per_era[1] - local1_cpu / n) * 1000:+.1f} ms "
              f"({cpu_per_era[1] / (local1_cpu / n):.3f}x)")
    for k, s in stat_cost.items():
        print(f"  a stat-only task per file, {k} worker(s): {s * 1000:.1f} ms per file")


if __name__ == "__main__":
    main()
