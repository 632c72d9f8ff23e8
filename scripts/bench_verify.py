#!/usr/bin/env python3
"""Benchmark `era verify` on one era file (e.g. from scripts/make_synthetic_era.py).

For each level (structure, roots, signatures), in a fresh subprocess: wall time, blocks/s and
peak RSS (sampled from /proc by this process and summed over the child's whole process tree: the
verifying process and its pool workers).  Baselines in the same run, with the same number of
processes: the BLS-only floor (the same proposer signature sets batch-verified with nothing
else) and the block-hashing-only figure (decompress + hash_tree_root of every block, what the
`roots` level adds), each with its CPU seconds, so the idle-machine wall time is bounded below by
(BLS CPU + hashing CPU) / cores.  The load average is printed beside the figures (the machine
is shared); each level starts with the file read into the page cache.  `--backends N` also
times N signatures through every installed BLS binding (blst's C API, pyblst, and with the
`bench` extra py_arkworks_bls12381 and blspy: RLC batch where the binding allows it, else one
by one).  `--cli-rounds N` runs the `era verify` command itself N times in fresh processes and
splits its CPU into the serial parts of the parent (interpreter start, imports before the pool,
the parent's work, interpreter exit after the report) and the workers; `--base-tree DIR`
alternates each round with another checkout of era_tools (e.g. `git archive` of main), for a
before/after in one run.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchenv import cpu_flags, cpu_model  # noqa: E402  (scripts/benchenv.py)


def warm_page_cache(path: str) -> float:
    """Read the file once (so the timed run finds it in the page cache); seconds taken."""
    t = time.perf_counter()
    buf = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    return time.perf_counter() - t


def _tree_pids(root: int) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(x) for x in fh.read().split())
        except OSError:
            continue
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _schedstat(pid: int) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for one) of all threads of pid."""
    run = wait = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                a, b, _ = fh.read().split()
            run += int(a)
            wait += int(b)
    except (OSError, ValueError):
        return None
    return run / 1e9, wait / 1e9


class TreeRss:
    """Peak of the summed RSS of process `root` and all its descendants, sampled every 50 ms
    from another process (a sampling thread inside the measured process would change how it
    starts its pool: era_tools.procs forks only from a single-threaded process); with it the
    scheduler's accounting of every process (/proc/PID/schedstat): time on a CPU, time
    runnable but waiting for a CPU (other load on the shared machine), time asleep (waiting
    for work or I/O: the pipeline's own bubbles)."""

    def __init__(self, root: int):
        self.root = root
        self.peak_kb = 0
        self.procs: dict[int, dict] = {}
        self.parent_wait: list[tuple[float, float]] = []  # (time, parent's runnable wait)
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            pids = _tree_pids(self.root)
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(p) for p in pids))
            now = time.perf_counter() - self._t0
            for p in pids:
                st = _schedstat(p)
                if st is None:
                    continue
                d = self.procs.setdefault(p, {"first": now})
                d["last"], d["run"], d["wait"] = now, st[0], st[1]
                if p == self.root:
                    self.parent_wait.append((now, st[1]))
            self._stop.wait(0.05)

    def summary(self, wall: float) -> dict:
        """Parent and workers: on CPU, runnable waiting, asleep; and the wall time with the
        critical path's runnable waiting taken out (parent until the first worker, the
        workers' mean, parent after the last worker), at least their CPU over the cores: an
        estimate for an idle machine."""
        par = self.procs.get(self.root)
        kids = [d for p, d in self.procs.items() if p != self.root]
        if par is None:
            return {}
        out = {"parent_run": par["run"], "parent_wait": par["wait"],
               "parent_sleep": max(0.0, par["last"] - par["first"] - par["run"] - par["wait"]),
               "workers": len(kids), "workers_run": sum(d["run"] for d in kids),
               "workers_wait": sum(d["wait"] for d in kids),
               "workers_sleep": sum(max(0.0, d["last"] - d["first"] - d["run"] - d["wait"])
                                    for d in kids)}
        if kids:
            t1 = min(d["first"] for d in kids)
            t2 = max(d["last"] for d in kids)

            def pw(t):
                return max((w for ts, w in self.parent_wait if ts <= t), default=0.0)

            crit = pw(t1) + out["workers_wait"] / len(kids) + (par["wait"] - pw(t2))
        else:
            crit = par["wait"]
        # never below the CPU spent over the cores (three runnable processes share two
        # cores even on an idle machine, so not all of the waiting is other load)
        cores = os.cpu_count() or 1
        out["idle_estimate"] = max(wall - crit, (out["parent_run"] + out["workers_run"]) / cores)
        return out

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def loadavg() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def hash_tag() -> str:
    """Which SHA-256 path runs here, and the CPU flags: printed beside every figure."""
    from era_tools import _sha256

    return f"[SHA-256 {_sha256.PATH}; {cpu_flags()}]"


def run_level(path: str, level: str, jobs: int, network: str) -> dict:
    from era_tools.config import get_network
    from era_tools.verify import verify_archive

    from era_tools import _sha256

    def cpu(who):
        ru = resource.getrusage(who)
        return ru.ru_utime + ru.ru_stime

    t = time.perf_counter()
    c_self, c_kids = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    rep = verify_archive([path], get_network(network), level, jobs=jobs)
    dt = time.perf_counter() - t
    # the pool's workers are reaped when verify_archive shuts the pool down
    c_self, c_kids = cpu(resource.RUSAGE_SELF) - c_self, cpu(resource.RUSAGE_CHILDREN) - c_kids
    f = rep.files[0]
    own_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"level": level, "seconds": dt, "blocks": f.blocks, "ok": f.ok, "line": f.line(),
            "blocks_per_s": f.blocks / dt if dt else 0, "own_peak_rss_mb": own_kb / 1024,
            "parent_cpu": c_self, "workers_cpu": c_kids, "path": _sha256.PATH}


def measure_level(path: str, level: str, jobs: int, network: str) -> dict:
    """run_level in a fresh subprocess, its process tree's peak RSS sampled from here.  Each
    level starts with the file in the page cache (the VM this was measured on reclaims it
    within a minute), so levels compare on their checks, not on disk reads."""
    warm = warm_page_cache(path)
    child = subprocess.Popen([sys.executable, __file__, path, "--_child", level, "--jobs",
                              str(jobs), "--network", network], stdout=subprocess.PIPE, text=True)
    with TreeRss(child.pid) as rss:
        stdout, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"level {level}: the verifying process exited {child.returncode}")
    r = json.loads(stdout.strip().splitlines()[-1])
    r["peak_rss_mb"] = max(rss.peak_kb / 1024, r["own_peak_rss_mb"])
    r["sched"] = rss.summary(r["seconds"])
    r["warm_s"] = warm
    return r


def print_sched(r: dict) -> None:
    sc = r.get("sched")
    if not sc:
        return
    print(f"    schedstat: parent on CPU {sc['parent_run']:.2f} s, runnable waiting "
          f"{sc['parent_wait']:.2f} s, asleep {sc['parent_sleep']:.2f} s; {sc['workers']} "
          f"workers on CPU {sc['workers_run']:.2f} s, runnable waiting {sc['workers_wait']:.2f} s, "
          f"asleep {sc['workers_sleep']:.2f} s; wall without the critical path's waiting for a "
          f"CPU (idle-machine estimate) {sc['idle_estimate']:.2f} s")


def collect_sets(path: str, network: str):
    from era_tools.config import get_network
    from era_tools.era import EraReader
    from era_tools.signing import DOMAIN_BEACON_PROPOSER, compute_domain, compute_signing_root
    from era_tools.verify import _decode_block_root, validator_pubkeys

    net = get_network(network)
    sets = []
    with EraReader(path) as r:
        state = r.state_ssz()
        fork = net.fork_name_at_slot(r.state_slot)
        pks = validator_pubkeys(state, fork, net.preset_base)
        gvr = state[8:40]
        for slot, data in r.iter_blocks():
            if slot == 0:
                continue
            root = _decode_block_root(data, net.fork_name_at_slot(slot), net.preset_base, "")
            proposer = int.from_bytes(data[108:116], "little")
            v = net.fork_at_epoch(slot // net.slots_per_epoch).version
            msg = compute_signing_root(root, compute_domain(DOMAIN_BEACON_PROPOSER, v, gvr))
            sets.append((pks[proposer].tobytes(), msg, bytes(data[4:100])))
    return sets


def _timed(fn, *args):
    t = time.process_time()
    out = fn(*args)
    return out, time.process_time() - t


def _in_pool(jobs: int, fn, arglists) -> tuple[list, float, float]:
    """Results, wall seconds, CPU seconds (summed over workers) of fn over arglists."""
    from era_tools import verify

    if jobs > 1:
        with cf.ProcessPoolExecutor(jobs, mp_context=verify._mp_context()) as pool:
            # warm the workers so pool start-up is not counted against the floor
            list(pool.map(_timed, [len] * jobs, [[]] * jobs))
            t = time.perf_counter()
            res = list(pool.map(_timed, [fn] * len(arglists), *zip(*arglists)))
    else:
        t = time.perf_counter()
        res = [_timed(fn, *a) for a in arglists]
    dt = time.perf_counter() - t
    return [r for r, _ in res], dt, sum(c for _, c in res)


def bls_floor(sets, jobs: int) -> dict:
    from era_tools import verify

    chunk = verify.BLS_CHUNK
    chunks = [(sets[i:i + chunk],) for i in range(0, len(sets), chunk)]
    res, dt, cpu = _in_pool(jobs, verify._bls_chunk, chunks)
    bad = [i for b in res for i in b]
    return {"seconds": dt, "cpu": cpu, "signatures": len(sets), "bad": len(bad),
            "per_signature_us": dt / max(1, len(sets)) * 1e6,
            "cpu_per_signature_us": cpu / max(1, len(sets)) * 1e6}


def hashing_only(path: str, network: str, jobs: int) -> dict:
    """Decompress and hash every block (the facts `era verify` computes in its workers)."""
    from era_tools.config import get_network
    from era_tools.era import EraReader
    from era_tools import verify

    net = get_network(network)
    with EraReader(path) as r:
        slots = r.block_slots()
    chunks = [(path, net, slots[i:i + verify.FACTS_CHUNK])
              for i in range(0, len(slots), verify.FACTS_CHUNK)]
    res, dt, cpu = _in_pool(jobs, verify._facts_task, chunks)
    n = sum(len(x) for x in res)
    return {"seconds": dt, "cpu": cpu, "blocks": n, "cpu_per_block_ms": cpu / max(1, n) * 1e3}


def bench_backends(n: int) -> list[dict]:
    import hashlib
    import secrets

    from era_tools import bls

    out = []
    sks = [int.from_bytes(hashlib.sha256(b"k%d" % i).digest(), "big") % bls.CURVE_ORDER
           for i in range(n)]
    msgs = [hashlib.sha256(b"m%d" % i).digest() for i in range(n)]
    pks = [bls.secret_to_pubkey(k) for k in sks]
    sigs = [bls.sign(k, m) for k, m in zip(sks, msgs)]
    sets = [bls.SignatureSet(*x) for x in zip(pks, msgs, sigs)]
    for name, what in (("blst", "blst C API via ckzg (era_tools.bls default, RLC batch in blst)"),
                       ("pyblst", "pyblst (era_tools.bls pyblst, RLC batch assembled in Python)")):
        try:
            backend = bls.get_backend(name)
        except ImportError:
            continue
        t = time.perf_counter()
        ok = bls.batch_verify(sets, backend)
        out.append({"binding": what, "ok": ok,
                    "us_per_sig": (time.perf_counter() - t) / n * 1e6})
    try:
        import py_arkworks_bls12381 as ark

        t = time.perf_counter()
        g1 = ark.G1Point()
        P = [ark.G1Point.from_compressed_bytes(p) for p in pks]
        S = [ark.G2Point.from_compressed_bytes(s) for s in sigs]
        H = [ark.G2Point.hash_to_curve(m, bls.DST) for m in msgs]
        sc = [ark.Scalar(secrets.randbits(64) | 1) for _ in range(n)]
        agg = ark.G2Point.multiexp_unchecked(S, sc)
        ok = ark.GT.pairing_check([p * s for p, s in zip(P, sc)] + [-g1], H + [agg])
        out.append({"binding": "py_arkworks_bls12381 (RLC batch, multi-pairing)", "ok": ok,
                    "us_per_sig": (time.perf_counter() - t) / n * 1e6})
    except ImportError:
        pass
    try:
        import blspy

        t = time.perf_counter()
        ok = all(blspy.PopSchemeMPL.verify(blspy.G1Element.from_bytes(p), m,
                                           blspy.G2Element.from_bytes(s))
                 for p, m, s in zip(pks, msgs, sigs))
        out.append({"binding": "blspy (one by one: no point scalar multiplication, so no "
                               "RLC batch)", "ok": ok,
                    "us_per_sig": (time.perf_counter() - t) / n * 1e6})
    except ImportError:
        pass
    return out


# Runs `era verify` in a fresh process; the CPU of each phase is written (JSON) to the file named
# by ERA_BENCH_OUT from an atexit hook, which runs after the command's report and its pool's
# shutdown, before the interpreter's final garbage collection and module teardown.
_CLI_WRAPPER = r"""
import atexit, json, os, resource, sys, time
def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime
start = cpu(resource.RUSAGE_SELF)
t = time.perf_counter()
import era_tools.cli.verify, era_tools.verify  # what `era verify` imports before its pool
from era_tools.cli import main
from era_tools import _sha256
imports = cpu(resource.RUSAGE_SELF) - start
def done():
    with open(os.environ["ERA_BENCH_OUT"], "w") as f:
        json.dump({"start": start, "imports": imports, "self": cpu(resource.RUSAGE_SELF),
                   "workers": cpu(resource.RUSAGE_CHILDREN), "path": _sha256.PATH,
                   "wall_to_exit": time.perf_counter() - t}, f)
atexit.register(done)
sys.argv[0] = "era"
main()
"""


def cli_round(path: str, level: str, jobs: int, network: str, tree: str) -> dict:
    """`era verify --level LEVEL` from `tree` in a fresh process: CPU of interpreter start,
    imports, the parent's run, the workers and the interpreter's exit (the process's total
    from wait4 minus what the atexit hook saw)."""
    import tempfile

    warm_page_cache(path)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = dict(os.environ, PYTHONPATH=tree, ERA_BENCH_OUT=out.name)
        t = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", _CLI_WRAPPER, "verify", "--level", level,
                                  "-j", str(jobs), "--network", network, path], env=env,
                                 stdout=subprocess.DEVNULL, cwd=tree)
        _, status, ru = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"era verify from {tree} exited {child.returncode}")
        r = json.loads(Path(out.name).read_text())
    total = ru.ru_utime + ru.ru_stime
    return {"tree": tree, "wall": wall, "total": total, "start": r["start"],
            "imports": r["imports"], "parent_run": r["self"] - r["start"] - r["imports"],
            "workers": r["workers"], "exit": total - r["self"] - r["workers"],
            "exit_wall": wall - r["wall_to_exit"], "path": r["path"]}


def cli_rounds(path: str, level: str, jobs: int, network: str, rounds: int,
               base: str | None) -> None:
    trees = ([("base", base)] if base else []) + [("this tree", str(ROOT))]
    got = {name: [] for name, _ in trees}
    keys = ("start", "imports", "parent_run", "exit", "workers", "total")
    for i in range(rounds):
        for name, tree in (trees if i % 2 == 0 else trees[::-1]):
            r = cli_round(path, level, jobs, network, tree)
            got[name].append(r)
            print(f"  cli round {i + 1} {name:<9}: CPU start {r['start']:.3f} + imports "
                  f"{r['imports']:.3f} + parent {r['parent_run']:.3f} + exit {r['exit']:.3f} "
                  f"(exit wall {r['exit_wall']:.3f}) + workers {r['workers']:.2f} = "
                  f"{r['total']:.2f} s; wall {r['wall']:.2f} s  [SHA-256 {r['path']}; "
                  f"{cpu_flags()}] ({loadavg()})", flush=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    for name, _ in trees:
        rs = got[name]
        print(f"  cli median over {len(rs)} rounds, {name}: " + ", ".join(
            f"{k} {med([r[k] for r in rs]):.3f}" for k in keys)
            + f", serial (start + imports + parent + exit) "
              f"{med([r['start'] + r['imports'] + r['parent_run'] + r['exit'] for r in rs]):.3f}"
              f" s CPU")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", help="era file (default: the newest in bench_out/)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="verifying processes (default: the CPU count)")
    ap.add_argument("--network", default="mainnet", help="network of the era file")
    ap.add_argument("--levels", default="structure,roots,signatures",
                    help="comma-separated levels to time, each in a fresh process")
    ap.add_argument("--backends", type=int, default=0, metavar="N",
                    help="also compare BLS bindings on N signatures")
    ap.add_argument("--rounds", type=int, default=1, metavar="N",
                    help="measure signatures level and BLS-only floor N times, alternating, "
                         "and print the median ratio (this machine's speed drifts by up to "
                         "1.6x within minutes, so one pair can mislead)")
    ap.add_argument("--cli-rounds", type=int, default=0, metavar="N",
                    help="run `era verify --level signatures` itself N times (fresh processes) "
                         "and print the CPU of its serial parts (start, imports, parent, exit) "
                         "and of its workers, then stop")
    ap.add_argument("--cli-level", default="signatures", help="level for --cli-rounds")
    ap.add_argument("--base-tree", metavar="DIR",
                    help="with --cli-rounds: alternate with this checkout of era_tools (its "
                         "PYTHONPATH), for a before/after in the same run")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        print(json.dumps(run_level(args.path, args._child, args.jobs, args.network)))
        return 0
    path = args.path or str(sorted((ROOT / "bench_out").glob("*.era"))[-1])
    from era_tools import _sha256

    tag = hash_tag()
    print(f"era file: {path} ({os.path.getsize(path) / 1e6:.0f} MB), jobs={args.jobs}, "
          f"{cpu_model()}, CPU flags {cpu_flags()}, SHA-256 path {_sha256.PATH} (usable: "
          f"{', '.join(_sha256.PATHS)}), {loadavg()}")
    if args.cli_rounds:
        cli_rounds(path, args.cli_level, args.jobs, args.network, args.cli_rounds,
                   args.base_tree)
        return 0
    results = []
    for level in args.levels.split(","):
        r = measure_level(path, level, args.jobs, args.network)
        results.append(r)
        print(f"  {level:<11} {r['seconds']:7.2f} s  {r['blocks_per_s']:8.0f} blocks/s  "
              f"CPU parent {r['parent_cpu']:.2f} s + workers {r['workers_cpu']:.2f} s  "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB  {r['line']}  [SHA-256 {r['path']}; "
              f"{cpu_flags()}] ({loadavg()}; file read into the page cache first, "
              f"{r['warm_s']:.1f} s)")
        print_sched(r)
    sets = collect_sets(path, args.network)
    floor = bls_floor(sets, args.jobs)
    print(f"  BLS-only floor: {floor['seconds']:.2f} s for {floor['signatures']} signatures "
          f"({floor['per_signature_us']:.0f} us each, {args.jobs} processes; "
          f"CPU {floor['cpu']:.1f} s = {floor['cpu_per_signature_us']:.0f} us/signature)  "
          f"{tag} ({loadavg()})")
    hs = hashing_only(path, args.network, args.jobs)
    print(f"  block hashing only: {hs['seconds']:.2f} s for {hs['blocks']} blocks "
          f"({args.jobs} processes; CPU {hs['cpu']:.1f} s = {hs['cpu_per_block_ms']:.2f} ms/block)"
          f"  {tag} ({loadavg()})")
    cores = min(args.jobs, os.cpu_count() or 1)
    bound = (floor['cpu'] + hs['cpu']) / cores
    print(f"  idle-machine lower bound for signatures: (BLS CPU + hashing CPU) / {cores} cores = "
          f"{bound:.2f} s  {tag}")
    sig = next((r for r in results if r["level"] == "signatures"), None)
    if sig:
        print(f"  signatures level / BLS floor = {sig['seconds'] / floor['seconds']:.2f}x, "
              f"/ bound = {sig['seconds'] / bound:.2f}x; its CPU (parent + workers) / "
              f"(BLS + hashing CPU) = {(sig['parent_cpu'] + sig['workers_cpu']) / (floor['cpu'] + hs['cpu']):.2f}x  {tag}")
    if args.rounds > 1:
        ratios, bratios, secs, cratios, eratios = [], [], [], [], []
        for i in range(args.rounds):
            r = measure_level(path, "signatures", args.jobs, args.network)
            f = bls_floor(sets, args.jobs)
            h = hashing_only(path, args.network, args.jobs)
            b = (f["cpu"] + h["cpu"]) / cores
            secs.append(r["seconds"])
            ratios.append(r["seconds"] / f["seconds"])
            bratios.append(r["seconds"] / b)
            cratios.append((r["parent_cpu"] + r["workers_cpu"]) / (f["cpu"] + h["cpu"]))
            est = r.get("sched", {}).get("idle_estimate")
            if est:
                eratios.append(est / b)
            print(f"  round {i + 1}: signatures {r['seconds']:.2f} s (CPU parent "
                  f"{r['parent_cpu']:.2f} + workers {r['workers_cpu']:.2f} s), BLS-only floor "
                  f"{f['seconds']:.2f} s (CPU {f['cpu']:.2f} s), hashing CPU {h['cpu']:.2f} s "
                  f"({h['cpu_per_block_ms']:.3f} ms/block), bound {b:.2f} s; / floor "
                  f"{ratios[-1]:.2f}x, / bound {bratios[-1]:.2f}x, CPU / (BLS + hashing CPU) "
                  f"{cratios[-1]:.2f}x  {tag} ({loadavg()})")
            print_sched(r)
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        print(f"  median over {args.rounds} rounds: signatures {med(secs):.2f} s "
              f"(range {min(secs):.2f}-{max(secs):.2f}), / floor {med(ratios):.2f}x "
              f"(range {min(ratios):.2f}-{max(ratios):.2f}x), / bound {med(bratios):.2f}x "
              f"(range {min(bratios):.2f}-{max(bratios):.2f}x), CPU / (BLS + hashing CPU) "
              f"{med(cratios):.2f}x"
              + (f", idle-machine estimate / bound {med(eratios):.2f}x (range "
                 f"{min(eratios):.2f}-{max(eratios):.2f}x)" if eratios else "") + f"  {tag}")
    if args.backends:
        for b in bench_backends(args.backends):
            print(f"  backend {b['binding']}: {b['us_per_sig']:.0f} us/signature "
                  f"(ok={b['ok']}, one process)  {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
