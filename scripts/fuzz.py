"""Run the fuzz targets of tests/fuzz/targets.py outside the test suite.

    python3 scripts/fuzz.py TARGET|all --runs N --seconds S

Uses atheris (coverage-guided) when it is importable, else a seeded random mutator over the
seed corpus.  Per input: a time limit (SIGALRM, 2 s) and a tracemalloc peak bound of
64 x input + 64 MiB; anything but an EraToolsError, a hang, or a bigger peak is a crash, whose
input is written to fuzz-crashes/TARGET-N.bin.  Prints executions and crashes per target."""
import argparse
import os
import random
import signal
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

if "--atheris" in sys.argv:  # coverage instrumentation of era_tools, loaded under it
    import atheris
    with atheris.instrument_imports(include=["era_tools"]):
        from era_tools.errors import EraToolsError  # noqa: E402
        from tests.fuzz.targets import TARGETS  # noqa: E402
        # every module a target reaches, imported here so that it is instrumented too
        import era_tools.ssz, era_tools.era1, era_tools.config  # noqa: E401,E402,F401
        import era_tools.ssz.json, era_tools.download, era_tools.serve.app  # noqa: E401,F401
        import era_tools.safejson  # noqa: F401
        import era_tools.lightclient.protocol, era_tools.lightclient.driver  # noqa: E401,F401
        import era_tools.serve.client, era_tools.sync.peers, era_tools.sync.pull  # noqa
        import aiohttp.test_utils, yaml  # noqa: E401,F401 (not instrumented: outside era_tools)
else:
    from era_tools.errors import EraToolsError  # noqa: E402
    from tests.fuzz.targets import TARGETS  # noqa: E402
from tests.test_fuzz import _mutants, _seeds  # noqa: E402


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang()


def check(target, data: bytes, seconds: float = 2.0):
    """None if the input is handled, else a one-line description of the crash."""
    signal.signal(signal.SIGALRM, _alarm)
    tracemalloc.start()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        target(data)
    except EraToolsError:
        pass
    except Hang:
        return f"hang > {seconds} s"
    except Exception as exc:  # the crash being looked for
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    bound = 64 * len(data) + (64 << 20)
    if peak > bound:
        return f"peak allocation {peak} > bound {bound}"
    return None


def run(name: str, runs: int, seconds: float, seed: int) -> tuple[int, list]:
    rng = random.Random(seed)
    seeds = _seeds(name)
    target = TARGETS[name]
    for data in seeds:  # warm-up outside the clock: the first call builds each fork's types
        try:
            target(data)
        except EraToolsError:
            pass
    crashes, n, t0 = [], 0, time.monotonic()
    os.makedirs("fuzz-crashes", exist_ok=True)
    while n < runs and time.monotonic() - t0 < seconds:
        for data in _mutants(rng.choice(seeds), 1, rng):
            n += 1
            what = check(target, data)
            if what:
                path = f"fuzz-crashes/{name}-{len(crashes)}.bin"
                open(path, "wb").write(data)
                crashes.append((what, path))
    return n, crashes


def run_atheris(name: str, runs: int, seconds: float) -> int:
    """Coverage-guided: atheris/libFuzzer in this process over a corpus directory seeded from
    the real files; libFuzzer prints its own executions/coverage (cov:, ft:) and stops on the
    first crash, writing crash-* in the working directory.  Ends the process."""
    corpus = os.path.join("fuzz-corpus", name)
    os.makedirs(corpus, exist_ok=True)
    for i, data in enumerate(_seeds(name)):
        open(os.path.join(corpus, f"seed-{i}"), "wb").write(data)
    target = TARGETS[name]

    def one(data: bytes):
        try:
            target(data)
        except EraToolsError:
            pass

    atheris.Setup([sys.argv[0], f"-runs={runs}", f"-max_total_time={int(seconds)}",
                   "-timeout=2", "-rss_limit_mb=2048", "-print_final_stats=1", corpus], one)
    atheris.Fuzz()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", help="a target name or 'all': " + ", ".join(sorted(TARGETS)))
    ap.add_argument("--runs", type=int, default=10_000, help="inputs per target (default 10000)")
    ap.add_argument("--seconds", type=float, default=60, help="time per target (default 60)")
    ap.add_argument("--seed", type=int, default=14, help="mutator seed (default 14)")
    ap.add_argument("--atheris", action="store_true",
                    help="coverage-guided with atheris (one target per process)")
    a = ap.parse_args()
    if a.atheris:
        return run_atheris(a.target, a.runs, a.seconds)
    names = sorted(TARGETS) if a.target == "all" else [a.target]
    for n in names:
        if n not in TARGETS:
            print(f"fuzz: unknown target {n!r}", file=sys.stderr)
            return 2
    bad = 0
    print(f"{'target':<12} {'executions':>10} {'crashes':>8}")
    for name in names:
        execs, crashes = run(name, a.runs, a.seconds, a.seed)
        bad += len(crashes)
        print(f"{name:<12} {execs:>10} {len(crashes):>8}")
        for what, path in crashes[:5]:
            print(f"  {path}: {what}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
