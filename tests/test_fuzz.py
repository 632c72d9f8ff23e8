"""Replays deterministic mutations of the seed corpora (real era files, tests/fuzz/seeds/)
through every fuzz target: only EraToolsError may escape."""
import glob
import os
import random

import pytest

from era_tools.errors import EraToolsError
from tests.fuzz.targets import TARGETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


SEEDS = os.path.join(ROOT, "tests", "fuzz", "seeds")


def _seeds(name):
    d = os.path.join(SEEDS, name)
    if os.path.isdir(d):  # committed corpora (scripts/make_fuzz_seeds.py), plus regressions
        return [open(os.path.join(d, n), "rb").read() for n in sorted(os.listdir(d))]
    paths = sorted(glob.glob(os.path.join(ROOT, "sample_eras", "*.era")))[:2]
    files = [open(p, "rb").read() for p in paths]
    if name in ("ssz_block", "ssz_state", "rlp"):
        from era_tools.era import EraReader
        r = EraReader(paths[1])
        try:
            return [next(r.iter_blocks())[1], r.state_ssz()]
        finally:
            r._f.close()
    if name == "spec_json":
        return [open(os.path.join(ROOT, "tests", "data", "spec_chain", "spec.json"), "rb").read()]
    return files


def _mutants(seed: bytes, n: int, rng: random.Random):
    for _ in range(n):
        b = bytearray(seed)
        kind = rng.randrange(3)
        if kind == 0 and b:
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == 1:
            b = b[: rng.randrange(len(b) + 1)]
        else:
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.randbytes(rng.randint(1, 16))
        yield bytes(b)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_survives_mutations(name):
    seeds = _seeds(name)
    assert seeds, "sample_eras/*.era missing"
    rng = random.Random(14)
    target = TARGETS[name]
    for seed in seeds:
        for data in [seed, b"", *_mutants(seed, 40, rng)]:
            try:
                target(data)
            except EraToolsError:
                pass


def test_fuzz_script_runs_clean(tmp_path):
    import subprocess
    import sys
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fuzz.py"), "all",
                        "--runs", "30", "--seconds", "10"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [ln.split() for ln in p.stdout.splitlines()[1:]]
    assert sorted(ln[0] for ln in lines) == sorted(TARGETS)
    assert all(ln[1] == "30" and ln[2] == "0" for ln in lines)


def test_fuzz_script_atheris_mode_runs(tmp_path):
    """The coverage-guided mode (atheris is the `fuzz` extra: skipped where it is absent)."""
    import subprocess
    import sys
    pytest.importorskip("atheris")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fuzz.py"), "http_range",
                        "--atheris", "--runs", "2000", "--seconds", "60"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Done 2000 runs" in p.stderr
    assert os.listdir(tmp_path / "fuzz-corpus" / "http_range")  # seeds, plus what it found
