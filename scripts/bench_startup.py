#!/usr/bin/env python3
"""Start-up time of the `era` command: wall time of short commands beside the interpreter's own.

    python scripts/bench_startup.py [--runs 15] [--heavy]

Each command runs as `python -m era_tools ...` from this tree (PYTHONPATH=the repository, so an
editable install elsewhere does not interfere), --runs times, the commands interleaved round by
round so a change in the machine's load hits all of them alike; the median and the fastest run
are printed.  Baselines in the same run: `python -c pass` (the interpreter and site) and
`python -c 'import click'` (the floor of any click command).  With --heavy, each command is also
run once more to list which heavy libraries it loaded (numpy, py-ssz, aiohttp, ...).
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = sorted(glob.glob(str(ROOT / "sample_eras" / "minimal-00002-*.era")))[0]
HEAVY = ("numpy", "ssz", "eth_utils", "aiohttp", "requests", "plyvel", "ckzg", "pyblst",
         "py_ecc", "Crypto", "cramjam", "tqdm", "prometheus_client", "yaml")

BASELINES = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("python -c 'import click'", [sys.executable, "-c", "import click"]),
]
ERA = [sys.executable, "-m", "era_tools"]
COMMANDS = [
    ("era --help", ["--help"]),
    ("era --version", ["--version"]),
    ("era info --help", ["info", "--help"]),
    ("era info minimal-00002-*.era", ["info", SAMPLE]),
    ("era info --json minimal-00002-*.era", ["info", "--json", SAMPLE]),
    ("era verify --help", ["verify", "--help"]),
    ("era verify --level structure 00002", ["verify", "--level", "structure", SAMPLE]),
    ("era serve --help", ["serve", "--help"]),
    ("era download --help", ["download", "--help"]),
    ("era pull --help", ["pull", "--help"]),
    ("era backfill --help", ["backfill", "--help"]),
    ("era status --help", ["status", "--help"]),
]

# Run by --heavy in place of `-m era_tools`: the command, then which heavy libraries it loaded.
PROBE = """
import atexit, sys
def report():
    sys.__stderr__.write("HEAVY " + " ".join(m for m in {heavy!r} if m in sys.modules) + "\\n")
atexit.register(report)
sys.argv = ["era", *sys.argv[1:]]
from era_tools.cli import main
main()
"""


def cpu_line() -> str:
    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "?":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = [f for f in ("sha_ni", "avx2", "avx512f", "avx512bw", "bmi2", "adx") if f in flags]
    return (f"cpu: {model}; {os.cpu_count()} cores; flags: {' '.join(wanted) or 'none of note'}; "
            f"load average {os.getloadavg()[0]:.1f}")


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.pop("ERA_TOOLS_DEBUG", None)
    return e


def run_once(cmd: list[str], environ: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=environ, cwd=ROOT, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def heavy_loaded(args: list[str], environ: dict) -> str:
    r = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], env=environ,
                       cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    for line in r.stderr.splitlines():
        if line.startswith("HEAVY"):
            return line[6:].strip() or "-"
    return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs per command (median printed)")
    ap.add_argument("--heavy", action="store_true",
                    help="also list the heavy libraries each command loads")
    args = ap.parse_args()
    environ = env()
    jobs = [(name, cmd) for name, cmd in BASELINES] + [(name, ERA + a) for name, a in COMMANDS]
    print(cpu_line())
    print(f"python {sys.version.split()[0]}; {args.runs} runs per command, interleaved; "
          f"medians (fastest) in ms")
    for _, cmd in jobs:  # warm the page cache and the .pyc files
        run_once(cmd, environ)
    times: dict[str, list[float]] = {name: [] for name, _ in jobs}
    for _ in range(args.runs):
        for name, cmd in jobs:
            times[name].append(run_once(cmd, environ))
    base = statistics.median(times[BASELINES[0][0]])
    for i, (name, _) in enumerate(jobs):
        med = statistics.median(times[name])
        extra = f"  +{(med - base) * 1e3:5.0f} over the interpreter" if i else ""
        print(f"  {name:40s} {med * 1e3:6.0f} ({min(times[name]) * 1e3:4.0f}){extra}")
    if args.heavy:
        print("heavy libraries loaded:")
        for name, a in COMMANDS:
            print(f"  {name:40s} {heavy_loaded(a, environ)}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
