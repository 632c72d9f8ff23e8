"""Start-up cost of the `era` command: what a command imports, not how long it takes.

Each check runs the command in a fresh interpreter through a tiny wrapper that, at exit, prints
which heavy third-party libraries ended up in sys.modules (scripts/bench_startup.py times the
same commands)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = sorted((ROOT / "sample_eras").glob("minimal-00002-*.era"))[0]

NETWORK_AND_STORE = ("aiohttp", "requests", "plyvel", "prometheus_client")
BLS = ("ckzg", "pyblst", "py_ecc")
HEAVY = ("numpy", "ssz", "cramjam", "Crypto", "tqdm", "yaml", "pyarrow", "duckdb",
         *NETWORK_AND_STORE, *BLS)

# Runs the command as `python -m era_tools ARGS` (runpy, as the interpreter does) or through
# the `era` entry point, then reports the heavy modules loaded, on stderr, at exit.
WRAPPER = """
import atexit, json, runpy, sys
heavy = json.loads(sys.argv[1])
atexit.register(lambda: sys.__stderr__.write(
    "LOADED " + json.dumps(sorted(m for m in heavy if m in sys.modules)) + "\\n"))
how, args = sys.argv[2], sys.argv[3:]
if how == "-m":
    sys.argv = ["era_tools", *args]
    runpy.run_module("era_tools", run_name="__main__", alter_sys=True)
else:
    sys.argv = ["era", *args]
    from era_tools.cli import main
    main()
"""


def loaded(*args: str, how: str = "-m") -> set[str]:
    r = subprocess.run([sys.executable, "-c", WRAPPER, json.dumps(HEAVY), how, *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    lines = [x for x in r.stderr.splitlines() if x.startswith("LOADED ")]
    assert lines, r.stderr
    assert r.returncode == 0, r.stderr
    return set(json.loads(lines[-1][len("LOADED "):]))


@pytest.mark.parametrize("how", ["-m", "entry point"])
def test_help_imports_no_heavy_library(how):
    assert loaded("--help", how=how) == set()


def test_every_command_help_imports_no_heavy_library():
    from era_tools.cli import COMMAND_MODULES

    for name in COMMAND_MODULES:
        assert loaded(name, "--help") == set(), name


def test_info_imports_only_what_reading_a_state_needs():
    got = loaded("info", str(SAMPLE))
    assert {"numpy", "ssz", "cramjam"} <= got  # the state root: decompress, hash
    assert not got & {*NETWORK_AND_STORE, *BLS, "Crypto", "yaml", "tqdm"}, got


def test_lazy_command_table_names_every_command():
    """COMMAND_MODULES is what `era` lists and imports: it must name each command's module."""
    from era_tools.cli import COMMAND_MODULES, main

    for mod in set(COMMAND_MODULES.values()):
        importlib.import_module(f"era_tools.cli.{mod}")
    assert set(main.commands) == set(COMMAND_MODULES)
    for name, cmd in main.commands.items():
        assert cmd.callback.__module__ == f"era_tools.cli.{COMMAND_MODULES[name]}", name


def test_verify_levels_spelled_out_in_the_cli_agree():
    from era_tools.cli import verify as cli_verify
    from era_tools.verify import LEVELS

    assert cli_verify.LEVELS == LEVELS


def test_import_era_tools_and_its_api_names_stay_lazy():
    """`import era_tools` and `era_tools.__all__` load nothing heavy; the API loads on use."""
    code = ("import json, sys, era_tools; era_tools.__all__; "
            f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
