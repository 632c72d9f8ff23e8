"""The fault campaign of issue 14, as tables: SIGKILL at random points, a full disk under every
writer, `era serve` under abuse, and hostile peers.  Everything runs on this machine: the
`era` commands as subprocesses, their servers and peers on 127.0.0.1 only, every request loop
bounded in count and time.

    python3 scripts/fault_campaign.py [--only kill,disk,serve,peers] [--kills N] [--seed S]
        [--conns N] [--json FILE]

kill   each writer (pull, export, frontfill in reference and copy mode, backfill, download,
       checkpoint-sync, `sync --once` against a live chain) is SIGKILLed at N random times
       within its uninterrupted run time; after each kill the store must be consistent
       (every covered slot resolves) and no finished file partial (era sync: every published
       .era the reference's, checksums.txt and index.json naming only whole files); then a
       rerun must end equal to the uninterrupted run (every store key and value, every output
       file's sha256; era sync's store by content).  era sync's disk row fills its publish
       directory only (the store is on another disk).
disk   each writer runs with its output on a tmpfs too small for it: one `error:` line, exit
       2, no partial file under a final name, the store's contents unchanged by the failed
       batch (consistent); then the tmpfs is grown and a rerun must equal the reference.
       Needs root for `mount -t tmpfs` (else the section says so and is skipped).
serve  a real `era serve` over sample_eras/ under 500 concurrent connections, slowloris (each
       must be cut at its header deadline: how many, after how long), 500 idle sockets,
       oversized headers, malformed and overlapping Range, path traversal in many encodings
       and every URL shape of its listing; an honest client's latency is measured throughout.
       A 5xx answer or a byte of the canary file outside the root is a failure.
peers  backfill, pull, checkpoint-sync and download against raw-socket peers that close
       mid-chunk, send truncated SSZ, or announce a 10 GB Content-Length: exit code, one
       line, wall time and the child's peak RSS (wait4).

Exit status: 0 when every row passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
sys.path[:0] = [ROOT, TESTS]
SAMPLE = os.path.join(ROOT, "sample_eras")
FIXTURE = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "lodestar-minimal-1")
CLI = "import sys; from era_tools.cli import main; sys.exit(main())"


# ---------------------------------------------------------------------------------------------
# running `era`


def _env(extra=None):
    e = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("ERA_TOOLS_KILL_AFTER_BATCHES", "ERA_TOOLS_KILL_AFTER_RECORDS", "ERA_TOOLS_DEBUG"):
        e.pop(k, None)
    e.update(extra or {})
    return e


class Ran:
    def __init__(self, rc, out, err, seconds, maxrss_kb):
        self.rc, self.out, self.err, self.seconds, self.maxrss_kb = rc, out, err, seconds, maxrss_kb

    def error_lines(self):
        return [ln for ln in self.err.splitlines() if ln.startswith("error:")]

    def one_clear_line(self) -> bool:
        """Exactly one `error:` line and no traceback on stderr."""
        return len(self.error_lines()) == 1 and "Traceback" not in self.err


def era(args, timeout=600, kill_at: float | None = None, env=None) -> Ran:
    """Run `era ARGS` in a subprocess; with `kill_at`, SIGKILL it after that many seconds if it
    is still running (rc -9 then).  Peak RSS from wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, "-c", CLI, *map(str, args)], cwd=ROOT,
                             env=_env(env), stdout=out, stderr=err)
        deadline = t0 + (kill_at if kill_at is not None else timeout)
        status = ru = None
        hwm = 0  # VmHWM of the child's own image (wait4's ru_maxrss would also count this
        while True:  # process's pages, which the child had until its exec)
            hwm = max(hwm, _vm_hwm_kb(p.pid))
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() >= deadline:
                p.send_signal(signal.SIGKILL)
                _, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.005)
        p.returncode = os.waitstatus_to_exitcode(status)
        secs = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return Ran(p.returncode, out.read().decode("utf-8", "replace"),
                   err.read().decode("utf-8", "replace"), secs, hwm or ru.ru_maxrss)


def _vm_hwm_kb(pid: int) -> int:
    """Peak resident set of a running process (kB), 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


# ---------------------------------------------------------------------------------------------
# what a run leaves


def files_digest(d, skip_hidden=True) -> dict:
    """{relative path: sha256} of the regular files under d (LevelDB's own files excluded)."""
    out = {}
    if not os.path.isdir(d):
        return out
    for base, dirs, names in os.walk(d):
        if skip_hidden:
            dirs[:] = [x for x in dirs if not x.startswith(".")]
        for n in names:
            p = os.path.join(base, n)
            rel = os.path.relpath(p, d)
            if skip_hidden and n.startswith("."):
                continue
            if re.fullmatch(r"\d{6}\.(log|ldb)|CURRENT|LOCK|LOG(\.old)?|MANIFEST-\d+", n):
                continue
            with open(p, "rb") as f:
                out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def store_dump(db):
    from store_dump import dump
    return dump(db)


def store_problems(db) -> list[str]:
    """Consistency of a chain store: every slot of every covered range has an index entry,
    every indexed block and every stored state is readable."""
    from era_tools.store import ChainStore, schema
    if not os.path.exists(os.path.join(db, "CURRENT")):
        return []
    probs = []
    try:
        with ChainStore.open(db, readonly=True) as s:
            for a, b in s.covered_ranges():
                slots = []
                for k, v in s.iter_index(a, b):
                    slots.append(schema.slot_of_key(k))
                    if v and s.get_block_framed(bytes(v)) is None:
                        probs.append(f"slot {slots[-1]}: block {bytes(v).hex()[:16]} missing")
                if slots != list(range(a, b + 1)):
                    probs.append(f"covered {a}..{b}: {len(slots)} index entries")
            for slot in s.state_slots():
                if s.get_state_framed(slot) is None:
                    probs.append(f"state {slot} unreadable")
    except Exception as exc:  # noqa: BLE001 - any failure to read it is the finding
        if "an empty chain store" in str(exc):
            return []  # killed before its first write: nothing to be inconsistent
        probs.append(f"{type(exc).__name__}: {exc}")
    return probs[:3]


def logical_store(db):
    """What a store holds, whatever its file layout: slot -> root, root -> block SSZ, the
    covered ranges, the oldest block slot, state slot -> state SSZ.  (Backfill sizes its
    batches, and so its block files, by the peers' speed: two uninterrupted runs differ in
    layout, never in this.)"""
    from era_tools.store import ChainStore, schema
    with ChainStore.open(db, readonly=True) as s:
        index = [(schema.slot_of_key(k), bytes(v)) for k, v in s.iter_index(0, 1 << 40)]
        blocks = {r: s.get_block_ssz(r) for _, r in index if r}
        states = {slot: s.get_state(slot) for slot in s.state_slots()}
        return index, blocks, s.covered_ranges(), s.anchor.oldest_block_slot, states


def partial_finals(out, reference: dict) -> list[str]:
    """Files under a final name (not .tmp, not hidden) that differ from the reference run's."""
    return [n for n, h in files_digest(out).items()
            if not n.endswith(".tmp") and reference.get(n) not in (None, h)]


# ---------------------------------------------------------------------------------------------
# scenarios: a prepared starting point, the command, and how to compare outcomes


class Servers:
    """The HTTP servers the scenarios need, started once: a fixture Beacon API node (two for
    backfill) and an `era serve` application over sample_eras/ (for download)."""

    def __init__(self):
        from peers import FixtureNode
        from era_tools.config import load_config
        from era_tools.serve.app import make_app
        from era_tools.serve.testing import ServerThread
        self.node = FixtureNode(FIXTURE).__enter__()
        self.node2 = FixtureNode(FIXTURE).__enter__()
        for n in (self.node, self.node2):  # a killed client's reset is expected: no traceback
            n.httpd.handle_error = lambda *a: None
        self.host = ServerThread(make_app(SAMPLE, load_config(os.path.join(SAMPLE, "spec.json"))))
        self.host.start()

    def close(self):
        self.host.stop()
        self.node.__exit__(None, None, None)
        self.node2.__exit__(None, None, None)


class Scenario:
    """`prepare(dir)` -> ctx (paths; `ctx["close"]()`, if there, ends what it started);
    `finals(out, reference files)` -> files under a final name that must not be there (default
    partial_finals)."""

    def __init__(self, name, prepare, argv, outcome, partial, finals=None):
        self.name, self.prepare, self.argv = name, prepare, argv
        self.outcome, self.partial = outcome, partial
        self.finals = finals or partial_finals


def _close(ctx) -> None:
    if ctx and ctx.get("close"):
        ctx["close"]()


def publish_partials(out, reference: dict) -> list[str]:
    """A published directory mid-run: every .era file there is the reference's, byte for
    byte, and checksums.txt and index.json name only files that are there whole."""
    from era_tools.publish import CHECKSUMS, INDEX, read_checksums
    have = files_digest(out)
    bad = [n for n, h in have.items() if n.endswith(".era") and reference.get(n) != h]
    if os.path.exists(os.path.join(out, CHECKSUMS)):
        bad += [f"{CHECKSUMS} names {n}" for n, h in
                read_checksums(os.path.join(out, CHECKSUMS)).items() if have.get(n) != h]
    if os.path.exists(os.path.join(out, INDEX)):
        try:
            with open(os.path.join(out, INDEX)) as f:
                listed = json.load(f)["files"]
            bad += [f"{INDEX} names {x['name']}" for x in listed
                    if have.get(x["name"]) != x["sha256"]]
        except (ValueError, KeyError, TypeError) as exc:
            bad.append(f"{INDEX}: {exc}")
    return bad


def sync_stage(db) -> str | None:
    """The stage `era sync` recorded in a store (checkpoint, history, follow), if any."""
    from test_sync_crash import stage_of
    try:
        return stage_of(db)
    except Exception as exc:  # noqa: BLE001 - an unreadable store is the finding
        return f"unreadable ({type(exc).__name__})"


def sync_content(db):
    """What `era sync` left in a store, by content (test_sync_crash.content: index, blocks,
    summaries, states, anchor, stage; a rerun may lay blocks out in other files)."""
    from test_sync_crash import content
    return content(db)


def small_eras(work) -> str:
    d = os.path.join(work, "eras")
    if not os.path.isdir(d):
        os.makedirs(d)
        for n in os.listdir(SAMPLE):
            if not n.endswith(".era") or int(n.split("-")[1]) <= 5:
                shutil.copyfile(os.path.join(SAMPLE, n), os.path.join(d, n))
    return d


def scenarios(work, srv: Servers) -> list[Scenario]:
    eras = small_eras(work)
    base = {}

    def export_db():
        if "export" not in base:
            db = os.path.join(work, "export-src")
            r = era(["frontfill", "--db", db, "--check", "index", eras])
            assert r.rc == 0, r.err
            base["export"] = db
        return base["export"]

    def checkpointed():
        if "cp" not in base:
            db = os.path.join(work, "checkpointed")
            r = era(["checkpoint-sync", "--db", db, "--beacon-api", srv.node.url])
            assert r.rc == 0, r.err
            base["cp"] = db
        return base["cp"]

    def store_outcome(ctx):
        return store_dump(ctx["db"]), files_digest(ctx["db"])

    def store_partial(ctx):
        return store_problems(ctx["db"])

    def files_outcome(ctx):
        return files_digest(ctx["out"])

    def new_db(d):
        return {"db": os.path.join(d, "db")}

    def sync_live(d):
        """A live chain of its own (test_sync_crash.live_server: finality from slot 192,
        moving 8 epochs a poll, so the follow stage publishes eras one by one), the
        published directory in d and the store beside it (not on a full disk)."""
        from test_sync_crash import live_server
        node = live_server(FIXTURE).start()
        node.httpd.handle_error = lambda *a: None
        db = os.path.join(tempfile.mkdtemp(prefix="syncdb-", dir=work), "db")
        return {"db": db, "out": os.path.join(d, "pub"), "url": node.url, "close": node.stop}

    def copy_db(src):
        def prep(d):
            shutil.copytree(src(), os.path.join(d, "db"))
            return {"db": os.path.join(d, "db")}
        return prep

    return [
        Scenario("pull", new_db,
                 lambda c: ["pull", "--beacon-api", srv.node.url, "--db", c["db"], "--from-slot",
                            0, "--to-slot", 400, "--batch-slots", 16, "--jobs", 4],
                 store_outcome, store_partial),
        Scenario("export", lambda d: {"db": export_db(), "out": os.path.join(d, "out")},
                 lambda c: ["export", "--db", c["db"], "--out", c["out"]],
                 files_outcome, None),
        Scenario("frontfill (reference)", new_db,
                 lambda c: ["frontfill", "--db", c["db"], eras], store_outcome, store_partial),
        Scenario("frontfill (copy)", new_db,
                 lambda c: ["frontfill", "--db", c["db"], "--mode", "copy", eras],
                 store_outcome, store_partial),
        Scenario("backfill", copy_db(checkpointed),
                 lambda c: ["backfill", "--db", c["db"], "--peer", srv.node.url, "--peer",
                            srv.node2.url, "--check-jobs", 0],
                 lambda c: logical_store(c["db"]), store_partial),
        Scenario("download", lambda d: {"out": os.path.join(d, "out")},
                 lambda c: ["download", srv.host.url, c["out"], "--jobs", 2],
                 files_outcome, None),
        Scenario("checkpoint-sync", new_db,
                 lambda c: ["checkpoint-sync", "--db", c["db"], "--beacon-api", srv.node.url],
                 store_outcome, store_partial),
        Scenario("sync --once", sync_live,
                 lambda c: ["sync", "--db", c["db"], "--beacon-api", c["url"], "--publish",
                            c["out"], "--once", "--poll-interval", 0.1],
                 lambda c: (sync_content(c["db"]), files_digest(c["out"])), store_partial,
                 publish_partials),
    ]


def kill_section(work, srv, kills: int, rng: random.Random, only=None) -> list[dict]:
    rows = []
    for sc in scenarios(work, srv):
        if only and sc.name not in only and sc.name.split()[0] not in only:
            continue
        d = tempfile.mkdtemp(prefix="ref-", dir=work)
        ctx = sc.prepare(d)
        try:
            ref_run = era(sc.argv(ctx))
            if ref_run.rc != 0:
                rows.append({"writer": sc.name, "ok": False, "note": f"reference run failed: "
                             f"{ref_run.err.strip()[-200:]}"})
                continue
            ref = sc.outcome(ctx)
            ref_files = files_digest(ctx.get("out") or "")
        finally:
            _close(ctx)
        killed = finished = bad = 0
        notes = []
        t_kills = []
        stages: dict = {}
        i = 0
        while killed < kills and i < 3 * kills:  # runs that finish before their kill point
            i += 1                                # do not count: another point is drawn
            d = tempfile.mkdtemp(prefix=f"k{i}-", dir=work)
            c = sc.prepare(d)
            at = rng.uniform(0.1, 0.9) * ref_run.seconds
            r = era(sc.argv(c), kill_at=at)
            if r.rc == -signal.SIGKILL:
                killed += 1
                t_kills.append(at)
                if sc.name.startswith("sync"):  # the stage the store records
                    st = sync_stage(c["db"]) or "none yet"
                    stages[st] = stages.get(st, 0) + 1
            elif r.rc == 0:
                finished += 1
            else:
                bad += 1
                notes.append(f"kill run exit {r.rc}: {r.err.strip()[-160:]}")
            probs = sc.partial(c) if sc.partial else []
            if "out" in c:
                probs += [f"partial file {n}" for n in sc.finals(c["out"], ref_files)]
            if probs:
                bad += 1
                notes.append(f"after kill at {at:.2f} s: {'; '.join(probs)}")
            r2 = era(sc.argv(c))
            if r2.rc != 0 or sc.outcome(c) != ref:
                bad += 1
                notes.append(f"rerun after kill at {at:.2f} s: exit {r2.rc}, "
                             f"{'differs from' if r2.rc == 0 else r2.err.strip()[-160:]}"
                             f"{' the uninterrupted run' if r2.rc == 0 else ''}")
            if "out" in c:
                left = [n for n in os.listdir(c["out"]) if n.endswith(".tmp")]
                if left:
                    bad += 1
                    notes.append(f"rerun left {left}")
            _close(c)
            shutil.rmtree(d, ignore_errors=True)
        rows.append({"writer": sc.name, "uninterrupted_s": round(ref_run.seconds, 2),
                     "kills": killed, "finished_before_kill": finished, "failures": bad,
                     "kill_times_s": [round(t, 2) for t in sorted(t_kills)],
                     "killed_in_stage": " ".join(f"{k}:{v}" for k, v in sorted(stages.items())),
                     "ok": bad == 0 and killed > 0, "note": "; ".join(notes[:3])})
        print(f"  kill: {sc.name}: {killed} kills, {finished} finished first, {bad} failures",
              file=sys.stderr)
    return rows


# ---------------------------------------------------------------------------------------------
# output


def table(title: str, rows: list[dict], cols: list[str]) -> str:
    lines = [f"\n## {title}", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--only", default="kill,disk,serve,peers",
                    help="comma-separated sections: kill, disk, serve, peers (default: all)")
    ap.add_argument("--writers", default="",
                    help="comma-separated writers for kill/disk (default: all): pull, export, "
                         "frontfill, backfill, download, checkpoint-sync, sync")
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs per writer (default 10)")
    ap.add_argument("--conns", type=int, default=500,
                    help="concurrent connections against era serve (default 500)")
    ap.add_argument("--seconds", type=float, default=20,
                    help="length of the slowloris phase against era serve (default 20)")
    ap.add_argument("--seed", type=int, default=14, help="random seed (default 14)")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    a = ap.parse_args(argv)
    sections = set(a.only.split(","))
    writers = set(filter(None, a.writers.split(","))) or None
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="era-faults-")
    results, ok = {}, True
    srv = Servers() if sections & {"kill", "disk", "peers"} else None
    try:
        if "kill" in sections:
            rows = kill_section(work, srv, a.kills, rng, writers)
            results["kill"] = rows
            print(table("SIGKILL at random points, then rerun", rows,
                        ["writer", "uninterrupted_s", "kills", "finished_before_kill",
                         "failures", "ok", "killed_in_stage", "note"]))
        if "disk" in sections:
            rows = disk_section(work, srv, writers)
            results["disk"] = rows
            print(table("Full disk (tmpfs) under each writer, then rerun with space", rows,
                        ["writer", "tmpfs", "exit", "message", "partial_files",
                         "store_unchanged", "rerun_equal", "ok"]))
        if "serve" in sections:
            rows, honest = serve_section(work, a.conns, a.seconds, rng)
            results["serve"] = {"phases": rows, "honest": honest}
            print(table("era serve under abuse (127.0.0.1)", rows,
                        ["phase", "requests", "statuses", "5xx", "outside_root",
                         "honest_n", "honest_p50_ms", "honest_p99_ms", "honest_max_ms",
                         "honest_failed", "ok", "note"]))
            print(f"connections the server's limits closed (/metrics, both workers): "
                  f"{honest.get('connections_closed')}")
        if "peers" in sections:
            rows = peers_section(work, srv)
            results["peers"] = rows
            print(table("Hostile peers", rows,
                        ["command", "peer", "exit", "seconds", "peak_rss_mb", "message", "ok"]))
    finally:
        if srv is not None:
            srv.close()
        shutil.rmtree(work, ignore_errors=True)
    for sec in results.values():
        for r in (sec["phases"] if isinstance(sec, dict) else sec):
            ok &= bool(r.get("ok"))
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores "
          f"(shared with other work); {'all rows passed' if ok else 'FAILURES above'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if ok else 1


def _du(d) -> int:
    total = 0
    for base, _, names in os.walk(d):
        for n in names:
            try:
                total += os.stat(os.path.join(base, n)).st_blocks * 512
            except OSError:
                pass
    return total


def _mount_tmpfs(d, size: int) -> str | None:
    os.makedirs(d, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", d],
                       capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or f"mount exit {r.returncode}")


def _umount(d):
    subprocess.run(["umount", d], capture_output=True)


def disk_section(work, srv, only=None) -> list[dict]:
    """Each writer with its output on a tmpfs of the space it had before plus half of what its
    uninterrupted run added; then the tmpfs is grown and the same command rerun."""
    rows = []
    for sc in scenarios(work, srv):
        if only and sc.name not in only and sc.name.split()[0] not in only:
            continue
        d = tempfile.mkdtemp(prefix="dref-", dir=work)
        ctx = sc.prepare(d)
        try:
            before = _du(d)
            ref_run = era(sc.argv(ctx))
            if ref_run.rc != 0:
                rows.append({"writer": sc.name, "ok": False, "message": "reference run failed"})
                continue
            ref = sc.outcome(ctx)
            ref_files = files_digest(ctx.get("out") or "")
            added = _du(d) - before
        finally:
            _close(ctx)
        size = (before + added // 2 + 8191) // 4096 * 4096
        mnt = tempfile.mkdtemp(prefix="full-", dir=work)
        why = _mount_tmpfs(mnt, size)
        if why:
            rows.append({"writer": sc.name, "ok": False,
                         "message": f"cannot mount a tmpfs here ({why}): not run"})
            continue
        c = None
        try:
            c = sc.prepare(mnt)
            pre = store_dump(c["db"]) if "db" in c and c["db"].startswith(mnt) else None
            r = era(sc.argv(c))
            msg = r.error_lines()[0] if r.error_lines() else (r.err.strip().splitlines() or
                                                               [""])[-1]
            partial = sc.finals(c["out"], ref_files) if "out" in c else []
            tmp_left = [n for n in files_digest(c["out"]) if n.endswith(".tmp")] if "out" in c \
                else []
            # the space comes back first: opening LevelDB replays its log into a new table
            _umount_ok = subprocess.run(["mount", "-o", f"remount,size={4 * (before + added) + (8 << 20)}",
                                         mnt], capture_output=True).returncode == 0
            if pre is not None:
                probs = store_problems(c["db"])
                post = store_dump(c["db"])
                store = ("INCONSISTENT: " + "; ".join(probs)) if probs else (
                    "unchanged" if post == pre else
                    f"consistent, {len(post) - len(pre):+d} keys of batches committed before "
                    "the disk filled")
                stray = [n for n in files_digest(c["db"]) if n.endswith(".tmp")]
                partial += stray
            elif "db" in c and sc.partial is not None:  # a store it writes, on another disk
                # (era sync: only its publish directory is on the full disk)
                probs = store_problems(c["db"])
                store = ("INCONSISTENT: " + "; ".join(probs)) if probs else \
                    "consistent (not on the full disk)"
            else:
                store, probs = "(no store written)", []
            r2 = era(sc.argv(c))
            equal = r2.rc == 0 and sc.outcome(c) == ref
            ok = (r.rc == 2 and r.one_clear_line() and "space" in msg.lower() and not partial
                  and not probs and equal and _umount_ok)
            rows.append({"writer": sc.name, "tmpfs": f"{size // 1024} KiB of "
                         f"{(before + added) // 1024} KiB", "exit": r.rc, "message": msg[:150],
                         "partial_files": (", ".join(partial) or "none") + (
                             f" ({len(tmp_left)} resumable .tmp kept)" if tmp_left else ""),
                         "store_unchanged": store, "rerun_equal": equal, "ok": ok})
        finally:
            _close(c)
            _umount(mnt)
        print(f"  disk: {sc.name}: exit {r.rc}, {msg[:100]}", file=sys.stderr)
    return rows


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _honest_client(port, files, stop, out):
    """A separate process: GET /index.json, a Range of an era file (bytes checked) and
    /eth/v1/beacon/genesis in turn, 20 ms apart, until `stop`; sends [(t, latency, ok)]."""
    import http.client
    rec, i = [], 0
    names = sorted(files)
    while not stop.is_set():
        name = names[i % len(names)]
        kind = i % 3
        i += 1
        t0 = time.time()
        ok = False
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            if kind == 0:
                c.request("GET", "/index.json")
                r = c.getresponse()
                ok = r.status == 200 and b'"files"' in r.read()
            elif kind == 1:
                c.request("GET", "/" + name, headers={"Range": "bytes=100-4195"})
                r = c.getresponse()
                ok = r.status == 206 and r.read() == files[name][100:4196]
            else:
                c.request("GET", "/eth/v1/beacon/genesis")
                r = c.getresponse()
                ok = r.status == 200 and b"genesis_validators_root" in r.read()
            c.close()
        except OSError:
            ok = False
        rec.append((t0, time.time() - t0, ok))
        time.sleep(0.02)
    out.send(rec)


async def _raw(port, data: bytes, timeout=15.0, hold: float = 0.0):
    """Send raw bytes, read to EOF: (status or None, response bytes)."""
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError):
        return None, b""
    try:
        w.write(data)
        await w.drain()
        if hold:
            await asyncio.sleep(hold)
        resp = await asyncio.wait_for(r.read(), timeout)
    except (OSError, asyncio.TimeoutError):
        resp = b""
    finally:
        w.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    return (int(m.group(1)) if m else None), resp


def _req(path: str, headers: dict | None = None, method: str = "GET") -> bytes:
    h = {"Host": "127.0.0.1", "Connection": "close"}
    h.update(headers or {})
    return (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
            + "\r\n").encode("latin-1")


def _body(resp: bytes) -> bytes:
    return resp.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in resp else b""


RANGES = ["bytes=0-99", "bytes=100-", "bytes=-500", "bytes=", "bytes=-", "bytes=5-2",
          "bytes=-0", "bytes=0-0,0-0", "bytes=0-99,50-149", "bytes=0-99, 50-149",
          ",".join(["bytes=0-1"] + [f"{i}-{i + 1}" for i in range(2, 400, 2)]),
          "bytes=99999999-", "bytes=0-99999999999", "bytes=18446744073709551616-",
          "bytes=99999999999999999999999-", "items=0-5", "bytes=1e3-", "bytes=+5-",
          "bytes=0x10-", " bytes = 0 - 5 ", "bytes=\u00b2-", "bytes=0-1\t", "bytes=--5",
          "bytes=5--", "bytes=0-99;q=1", "BYTES=0-99", "bytes=0-" + "9" * 4000]

TRAVERSAL = ["/../secret.txt", "/..%2fsecret.txt", "/%2e%2e/secret.txt", "/%2e%2e%2fsecret.txt",
             "/%252e%252e%252fsecret.txt", "/..%5csecret.txt", "/..\\secret.txt",
             "/%c0%ae%c0%ae/secret.txt", "/%c0%ae%c0%ae%c0%afsecret.txt", "/....//secret.txt",
             "/.%2e/secret.txt", "//secret.txt", "/./../secret.txt", "/x/../../secret.txt",
             "/%2F..%2Fsecret.txt", "/..;/secret.txt", "/%00../secret.txt",
             "/secret.txt%00.era", "/%u002e%u002e/secret.txt", "/..%252fsecret.txt",
             "/%2e%2e%5csecret.txt", "/..%c0%afsecret.txt", "/..%ef%bc%8fsecret.txt",
             "/eth/v2/beacon/blocks/..%2f..%2fsecret.txt", "/eth/v2/debug/beacon/states/..%2f",
             "/era_tools/v1/blocks_by_range?start_slot=../secret.txt&count=1",
             "http://127.0.0.1/../secret.txt", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
             "/../../../../../../etc/passwd", "/..%2f..%2f..%2f..%2fetc%2fpasswd"]


def _url_shapes(names, root_hex) -> list[tuple[str, dict, str]]:
    ids = ["0", "1", "8", "70", "64", "1023", "head", "finalized", "genesis", "justified",
           root_hex, "0x" + "00" * 32, "0x12", "-1", "18446744073709551615",
           "18446744073709551616", "99999999999999999999999", "abc", "%ff", "0x" + "zz" * 32]
    paths = ["/", "/index.json", "/checksums.txt", "/metrics", "/eth/v1/beacon/genesis",
             "/eth/v1/config/spec", "/eth/v1/config/fork_schedule", "/eth/v1/node/syncing",
             "/nonexistent.era", "/index.json/x", "/?list-type=2", "/?a=" + "b" * 5000]
    paths += ["/" + n for n in names] + ["/" + n + "?x=1" for n in names[:3]]
    for i in ids:
        paths += [f"/eth/v2/beacon/blocks/{i}", f"/eth/v1/beacon/blocks/{i}/root",
                  f"/eth/v1/beacon/headers/{i}", f"/eth/v2/debug/beacon/states/{i}",
                  f"/eth/v1/beacon/states/{i}/finality_checkpoints"]
    for q in ["start_slot=0&count=1", "start_slot=8&count=64", "start_slot=1&count=1024",
              "start_slot=1&count=1025", "start_slot=1&count=0", "start_slot=-1&count=1",
              "start_slot=18446744073709551615&count=2", "start_slot=1", "count=1",
              "start_slot=1&start_slot=2&count=1", "start_slot=1&count=1&x=2",
              "start_slot=0x10&count=1", "start_slot=%00&count=1", ""]:
        paths.append("/era_tools/v1/blocks_by_range?" + q)
    out = []
    for p in paths:
        for method in ("GET", "HEAD"):
            out.append((p, {}, method))
        out.append((p, {"Accept": "application/octet-stream"}, "GET"))
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "GETX"):
        out.append(("/index.json", {"Content-Length": "0"}, method))
    return out


def serve_section(work, conns: int, slow_seconds: float, rng: random.Random,
                  header_timeout: float | None = None, max_connections: int | None = None):
    """`era serve` (2 worker processes) over a copy of sample_eras/ in ROOT/eras, with a
    canary ROOT/secret.txt beside it; the phases run one after the other while an honest
    client in another process measures its latency.  `header_timeout` (`era serve
    --header-timeout`, default half the slowloris phase, at most 10 s): the slowloris
    connections must all be cut by it.  `max_connections` (per worker; default 1024, at
    least `conns` so that the flood's busy connections fit): the idle phase opens three times
    that many sockets, more than both workers hold."""
    if header_timeout is None:
        header_timeout = min(10.0, slow_seconds / 2)
    if max_connections is None:
        max_connections = max(1024, conns)
    import multiprocessing as mp
    base = os.path.join(work, "serve-root")
    eras = os.path.join(base, "eras")
    shutil.copytree(SAMPLE, eras)
    canary = b"CANARY-" + os.urandom(8).hex().encode()
    with open(os.path.join(base, "secret.txt"), "wb") as f:
        f.write(canary)
    files = {n: open(os.path.join(eras, n), "rb").read() for n in os.listdir(eras)
             if n.endswith(".era")}
    port = _free_port()
    log = open(os.path.join(work, "serve.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", eras, "--port", str(port),
                             "--jobs", "2", "--header-timeout", f"{header_timeout:g}",
                             "--max-connections", str(max_connections)],
                            cwd=ROOT, env=_env(), stdout=log, stderr=log)
    rows = []
    try:
        import http.client
        for _ in range(300):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/index.json")
                index = json.loads(c.getresponse().read())
                break
            except (OSError, ValueError):
                time.sleep(0.1)
        else:
            raise RuntimeError("era serve did not start: " + open(log.name).read()[-500:])
        ctx = mp.get_context("fork")
        stop = ctx.Event()
        recv, send = ctx.Pipe(False)
        honest = ctx.Process(target=_honest_client, args=(port, files, stop, send))
        honest.start()
        phases = []

        def phase(name, coro_fn):
            t0 = time.time()
            results = asyncio.run(coro_fn())
            phases.append((name, t0, time.time(), results))

        async def idle():
            await asyncio.sleep(min(3.0, slow_seconds))
            return []

        big = sorted(files)[-1]

        async def flood():
            reqs = [_req("/" + big) if i % 2 else
                    _req(rng.choice(["/index.json", "/", "/eth/v2/beacon/blocks/70",
                                     "/era_tools/v1/blocks_by_range?start_slot=1&count=64"]))
                    for i in range(conns)]
            return await asyncio.gather(*[_raw(port, r, timeout=60) for r in reqs])

        cut_after: list[float] = []

        async def slowloris():
            n = min(conns, 400)

            async def one(i):
                try:
                    r, w = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    return (None, b"")
                t0 = time.monotonic()
                w.write(b"GET /index.json HTTP/1.1\r\nHost: x\r\n")
                t_end = t0 + slow_seconds
                closed, got = False, b""
                try:
                    while time.monotonic() < t_end:
                        w.write(b"X-%d: %d\r\n" % (i, int(time.monotonic())))
                        await w.drain()
                        try:
                            chunk = await asyncio.wait_for(r.read(4096), 1.0)
                        except asyncio.TimeoutError:
                            continue
                        got += chunk
                        if chunk == b"":
                            closed = True
                            break
                except OSError:
                    closed = True
                w.close()
                if closed:
                    cut_after.append(time.monotonic() - t0)
                m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
                return (int(m.group(1)) if m else -1) if closed else 0, got
            return await asyncio.gather(*[one(i) for i in range(n)])

        n_idle = 3 * max_connections

        async def idle_sockets():
            """3 x max_connections connections that send nothing, held for the slowloris
            phase's length: each worker closes its oldest idle ones for new connections."""
            socks = []
            for _ in range(n_idle):
                try:
                    socks.append(await asyncio.open_connection("127.0.0.1", port))
                except OSError:
                    break
            await asyncio.sleep(slow_seconds)
            out = []
            for r, w in socks:
                try:
                    gone = await asyncio.wait_for(r.read(1), 0.01) == b""
                except (asyncio.TimeoutError, OSError):
                    gone = False
                out.append((-1 if gone else 0, b""))
                w.close()
            return out

        async def headers():
            out = []
            for size in (4 << 10, 8 << 10, 16 << 10, 64 << 10, 1 << 20):
                out.append(await _raw(port, _req("/index.json", {"X-Big": "a" * size})))
            out.append(await _raw(port, _req("/index.json", {f"X-{i}": "v" for i in
                                                           range(1000)})))
            out.append(await _raw(port, _req("/" + "a" * (100 << 10))))
            out.append(await _raw(port, b"GET /index.json HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 10737418240\r\n\r\nabc", timeout=5))
            out.append(await _raw(port, b"GET /index.json HTTP/1.1\r\nHost: x\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\nffffffffffff\r\n",
                                  timeout=5))
            out.append(await _raw(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                                  + os.urandom(200)))
            out.append(await _raw(port, b"GET / HTTP/9.9\r\n\r\n"))
            out.append(await _raw(port, b"GET /\x00\xff HTTP/1.1\r\nHost: x\r\n\r\n"))
            return out

        bad_range = []

        async def ranges():
            out = []
            name = sorted(files)[1]
            data = files[name]
            for v in RANGES:
                st, resp = await _raw(port, _req("/" + name, {"Range": v}))
                out.append((st, resp))
                if st == 206:
                    m = re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", resp, re.I)
                    if not m or _body(resp) != data[int(m.group(1)):int(m.group(2)) + 1]:
                        bad_range.append(v)
                elif st not in (200, 416, 400):
                    bad_range.append(v)
            return out

        async def traversal():
            out = []
            for p in TRAVERSAL:
                for method in ("GET", "HEAD"):
                    out.append(await _raw(port, _req(p, method=method)))
            return out

        async def shapes():
            root_hex = "0x" + "11" * 32
            try:
                st, resp = await _raw(port, _req("/eth/v1/beacon/blocks/70/root"))
                root_hex = json.loads(_body(resp))["data"]["root"]
            except (ValueError, KeyError, TypeError):
                pass
            names = [f["name"] for f in index["files"]] + [x["name"] for x in
                                                          index.get("extras", [])]
            out = []
            for p, h, method in _url_shapes(names, root_hex):
                out.append(await _raw(port, _req(p, h, method)))
            return out

        phase("baseline (honest client alone)", idle)
        phase(f"{conns} concurrent connections (files, listing, API, range)", flood)
        phase(f"slowloris: {min(conns, 400)} connections, a header line a second for up to "
              f"{slow_seconds:g} s (--header-timeout {header_timeout:g})", slowloris)
        phase(f"{n_idle} idle connections (no byte sent) for {slow_seconds:g} s, "
              f"--max-connections {max_connections} per worker", idle_sockets)
        phase("oversized headers, request line, bodies, garbage", headers)
        phase(f"malformed and overlapping Range ({len(RANGES)} values)", ranges)
        phase(f"path traversal ({len(TRAVERSAL)} encodings x GET/HEAD)", traversal)
        phase("every URL shape of the listing and the API (GET, HEAD, SSZ; other methods)",
              shapes)
        phase("after (honest client alone)", idle)
        stop.set()
        rec = recv.recv()
        honest.join(30)
        alive = proc.poll() is None
        for name, t0, t1, results in phases:
            lat = [x[1] for x in rec if t0 <= x[0] <= t1]
            failed = sum(1 for x in rec if t0 <= x[0] <= t1 and not x[2])
            sts: dict = {}
            for st, _ in results:
                key = "still-open" if st == 0 else "closed-by-server" if st == -1 else \
                    str(st) if st is not None else "no-answer"
                sts[key] = sts.get(key, 0) + 1
            five = sum(v for k, v in sts.items() if k.isdigit() and k.startswith("5"))
            leak = sum(1 for _, resp in results if canary in resp)
            q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else lat * 99
            row = {"phase": name, "requests": len(results),
                   "statuses": " ".join(f"{k}:{v}" for k, v in sorted(sts.items())),
                   "5xx": five, "outside_root": leak, "honest_n": len(lat),
                   "honest_p50_ms": round(1000 * q[49], 1) if lat else "",
                   "honest_p99_ms": round(1000 * q[98], 1) if lat else "",
                   "honest_max_ms": round(1000 * max(lat), 1) if lat else "",
                   "honest_failed": failed}
            row["ok"] = five == 0 and leak == 0 and failed == 0 and alive and len(lat) > 0
            if name.startswith("malformed") and bad_range:
                row["ok"] = False
                row["statuses"] += f" WRONG: {bad_range[:3]}"
            if name.startswith("slowloris"):  # every one cut with 408, none before its deadline
                cuts = sorted(cut_after)
                row["cut"] = len(cuts)
                row["cut_s_min"] = round(cuts[0], 2) if cuts else ""
                row["cut_s_p50"] = round(statistics.median(cuts), 2) if cuts else ""
                row["cut_s_max"] = round(cuts[-1], 2) if cuts else ""
                row["note"] = (f"{len(cuts)} of {len(results)} cut by the server, "
                               f"{row['cut_s_min']}/{row['cut_s_p50']}/{row['cut_s_max']} s "
                               f"after connecting (min/median/max), --header-timeout "
                               f"{header_timeout:g}")
                row["ok"] &= (sts.get("408", 0) == len(results) and bool(cuts)
                              and cuts[0] >= 0.9 * header_timeout)
            rows.append(row)
        summary = {"server_alive_after": alive, "honest_requests": len(rec),
                   "connections_closed": _closed_counts(port)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return rows, summary


def _closed_counts(port) -> dict:
    """era_serve_connections_closed_total by reason, from the server's /metrics (summed over
    its workers)."""
    import http.client
    time.sleep(1.5)  # workers publish their numbers about once a second
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    except OSError:
        return {}
    return {m.group(1): int(float(m.group(2))) for m in re.finditer(
        r'era_serve_connections_closed_total\{reason="(\w+)"\} (\S+)', text)}


def _upstream(base: str, path: str, accept: str):
    req = urllib.request.Request(base.rstrip("/") + path, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


_KEEP = ("content-type", "eth-consensus-version", "era-tools-last-slot", "era-tools-error",
         "last-modified", "etag")


def _relay(base, path, body_fn=None, accept=None):
    """The honest upstream's answer to `path`, its body passed through body_fn(body) ->
    parts (default: sent whole)."""
    ssz = "/blocks/" in path or "/states/" in path or "blocks_by_range" in path
    st, h, body = _upstream(base, path, accept or ("application/octet-stream" if ssz else
                                                   "application/json"))
    keep = {k: v for k, v in h.items() if k.lower() in _KEEP}
    if body_fn is None or st != 200:
        from hostile_http import response
        return [response(f"{st} X", keep, body)]
    return body_fn(body, keep)


def _cut(frac):
    """Announce the whole body, send `frac` of it, close: a peer that dies mid-chunk."""
    def fn(body, keep):
        from hostile_http import CLOSE, response
        return [response("200 OK", keep, body[:int(len(body) * frac)],
                         content_length=str(len(body))), CLOSE]
    return fn


def _truncated(frac):
    """A complete HTTP answer whose body is `frac` of the real one: truncated SSZ."""
    def fn(body, keep):
        from hostile_http import response
        return [response("200 OK", keep, body[:int(len(body) * frac)])]
    return fn


def _huge(sent_mb: int):
    """Content-Length: 10 GB, then `sent_mb` MiB of zeros at full speed, then close."""
    def fn(body, keep):
        from hostile_http import CLOSE, response
        return [response("200 OK", keep, b"", content_length=str(10 << 30))] + \
            [bytes(1 << 20)] * sent_mb + [CLOSE]
    return fn


def peers_section(work, srv, sent_mb: int = 64, only=None) -> list[dict]:
    """`only`: a set of (command, peer description substring) to run instead of every case."""
    from hostile_http import HostilePeer, response
    from era_tools.sync.peers import RANGE_PATH
    rows = []
    ckpt = os.path.join(work, "peers-checkpointed")
    r = era(["checkpoint-sync", "--db", ckpt, "--beacon-api", srv.node.url])
    assert r.rc == 0, r.err

    def on(match, fn, base):
        return lambda path: _relay(base, path, fn if match(path) else None)

    def is_range(p):  # not the count=1 probe: the peer must be taken for a range peer
        return p.startswith(RANGE_PATH) and not p.endswith("&count=1")

    def is_block(p):
        return p.startswith("/eth/v2/beacon/blocks/")

    def is_state(p):
        return p.startswith("/eth/v2/debug/beacon/states/")

    def is_era(p):
        return p.endswith(".era")

    def no_range(p):  # a plain Beacon API: the range probe finds nothing
        return None

    def rest(match, fn):
        def respond(path):
            if is_range(path):
                return [response("404 Not Found", {}, b"{}")]
            return _relay(srv.node.url, path, fn if match(path) else None)
        return respond

    def fresh_db():
        d = tempfile.mkdtemp(prefix="peer-", dir=work)
        shutil.copytree(ckpt, os.path.join(d, "db"))
        return os.path.join(d, "db")

    def new_dir():
        return os.path.join(tempfile.mkdtemp(prefix="peer-", dir=work), "x")

    big = f"10 GB Content-Length, {sent_mb} MiB sent"
    cases = [
        ("backfill", "honest range peer (era serve)", on(is_range, None, srv.host.url),
         lambda u: ["backfill", "--db", fresh_db(), "--peer", u, "--timeout", 5], 0),
        ("backfill", "range peer closes mid-chunk", on(is_range, _cut(0.5), srv.host.url),
         lambda u: ["backfill", "--db", fresh_db(), "--peer", u, "--timeout", 5], 2),
        ("backfill", "range peer sends truncated chunks", on(is_range, _truncated(0.6),
                                                             srv.host.url),
         lambda u: ["backfill", "--db", fresh_db(), "--peer", u, "--timeout", 5], 2),
        ("backfill", f"range peer: {big}", on(is_range, _huge(sent_mb), srv.host.url),
         lambda u: ["backfill", "--db", fresh_db(), "--peer", u, "--timeout", 5], 2),
        ("backfill", "REST peer sends truncated SSZ blocks", rest(is_block, _truncated(0.5)),
         lambda u: ["backfill", "--db", fresh_db(), "--peer", u, "--timeout", 5], 2),
        ("backfill", f"REST peer: {big}", rest(is_block, _huge(sent_mb)),
         lambda u: ["backfill", "--db", fresh_db(), "--peer", u, "--timeout", 5], 2),
        ("pull", "honest node", on(no_range, None, srv.node.url),
         lambda u: ["pull", "--beacon-api", u, "--db", new_dir(), "--to-slot", 64,
                    "--retries", 2], 0),
        ("pull", "node closes mid-block", on(is_block, _cut(0.5), srv.node.url),
         lambda u: ["pull", "--beacon-api", u, "--db", new_dir(), "--to-slot", 64,
                    "--retries", 2], 2),
        ("pull", "node sends truncated SSZ blocks", on(is_block, _truncated(0.5),
                                                       srv.node.url),
         lambda u: ["pull", "--beacon-api", u, "--db", new_dir(), "--to-slot", 64,
                    "--retries", 2], 2),
        ("pull", f"node: {big} (blocks)", on(is_block, _huge(sent_mb), srv.node.url),
         lambda u: ["pull", "--beacon-api", u, "--db", new_dir(), "--to-slot", 64,
                    "--retries", 2], 2),
        ("checkpoint-sync", "honest node", on(no_range, None, srv.node.url),
         lambda u: ["checkpoint-sync", "--beacon-api", u, "--db", new_dir()], 0),
        ("checkpoint-sync", "node closes mid-state", on(is_state, _cut(0.5), srv.node.url),
         lambda u: ["checkpoint-sync", "--beacon-api", u, "--db", new_dir()], 2),
        ("checkpoint-sync", "node sends a truncated SSZ state",
         on(is_state, _truncated(0.5), srv.node.url),
         lambda u: ["checkpoint-sync", "--beacon-api", u, "--db", new_dir()], 2),
        ("checkpoint-sync", f"node: {big} (state)", on(is_state, _huge(sent_mb),
                                                       srv.node.url),
         lambda u: ["checkpoint-sync", "--beacon-api", u, "--db", new_dir()], 2),
        ("download", "honest host (era serve)", on(no_range, None, srv.host.url),
         lambda u: ["download", u + "/", new_dir(), "--to-era", 3], 0),
        ("download", "host closes mid-file", on(is_era, _cut(0.5), srv.host.url),
         lambda u: ["download", u + "/", new_dir(), "--to-era", 3], 2),
        ("download", f"host: {big} (era files)", on(is_era, _huge(sent_mb // 4),
                                                    srv.host.url),
         lambda u: ["download", u + "/", new_dir(), "--to-era", 3], 2),
    ]
    for cmd, what, respond, argv, want in cases:
        if only and not any(cmd == c and w in what for c, w in only):
            continue
        with HostilePeer(respond) as peer:
            args = argv(peer.url)
            r = era(args, timeout=300)
        out_dir = args[args.index("download") + 2] if cmd == "download" else None
        finals = [n for n in os.listdir(out_dir) if n.endswith(".era")] if out_dir and \
            os.path.isdir(out_dir) else []
        lines = r.error_lines()
        if cmd == "download":  # one `failed: NAME: URL: offset N: why` line per file
            lines = [ln for ln in r.err.splitlines() if ln.startswith("failed:")]
            clear = bool(lines) and "Traceback" not in r.err and len(lines) == len(
                [ln for ln in r.err.splitlines() if ".era" in ln and "failed" in ln])
        else:
            clear = r.one_clear_line()
        msg = (f"{len(lines)} x " if len(lines) > 1 else "") + (lines[0] if lines else "")
        ok = r.rc == want and (want == 0 or clear) and (want == 0 or not finals)
        rows.append({"command": cmd, "peer": what, "exit": r.rc, "seconds": round(r.seconds, 1),
                     "peak_rss_mb": round(r.maxrss_kb / 1024), "message": msg[:160], "ok": ok})
        print(f"  peers: {cmd}: {what}: exit {r.rc} in {r.seconds:.1f} s, "
              f"{r.maxrss_kb // 1024} MB", file=sys.stderr)
    return rows


if __name__ == "__main__":
    sys.exit(main())
