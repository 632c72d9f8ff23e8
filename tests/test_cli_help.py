"""The `era` command's help and option names: every command and option documented, summaries
whole, parallelism spelled `--jobs/-j` everywhere with the old spellings still accepted."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner

from era_tools.cli import COMMAND_MODULES, main
from era_tools.cli.common import jobs_option


def commands() -> dict[str, click.Command]:
    for mod in set(COMMAND_MODULES.values()):
        importlib.import_module(f"era_tools.cli.{mod}")
    return dict(sorted(main.commands.items()))


def test_every_command_and_option_has_help():
    for name, cmd in commands().items():
        assert (cmd.help or "").strip(), name
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                assert (p.help or "").strip(), f"era {name} {'/'.join(p.opts)} has no help"


def test_summaries_are_whole_sentences_that_fit():
    out = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    listed = out.split("Commands:", 1)[1].strip().splitlines()
    assert len(listed) == len(commands())
    for line in listed:
        assert not line.rstrip().endswith("..."), line
        assert line.rstrip().endswith("."), line
        assert len(line) <= 80, line
    for name, cmd in commands().items():
        assert cmd.short_help and not cmd.short_help.endswith("..."), name


@pytest.mark.parametrize("command", ["pull", "backfill", "serve", "verify", "download"])
def test_parallelism_is_jobs(command):
    cmd = commands()[command]
    visible = {o for p in cmd.params if isinstance(p, click.Option) and not p.hidden
               for o in p.opts}
    assert {"--jobs", "-j"} <= visible
    assert not visible & {"--workers", "-w", "--bls-procs"}
    out = CliRunner().invoke(main, [command, "--help"]).output
    assert "--workers" not in out and "--bls-procs" not in out


def test_backfill_check_processes_are_check_jobs():
    opts = {o for p in commands()["backfill"].params for o in p.opts}
    assert {"--check-jobs", "--bls-procs"} <= opts


def test_old_spelling_reaches_the_command(sample_dir):
    # --db makes serve refuse more than one process: the refusal shows the value arrived.
    for old in ("--workers", "-w"):
        r = CliRunner().invoke(main, ["serve", str(sample_dir), "--db", "nowhere", old, "2"])
        assert r.exit_code == 2, r.output
        assert f"warning: {old} is deprecated; use --jobs or -j" in r.output
        assert "drop --jobs or use --jobs 1" in r.output
    r = CliRunner().invoke(main, ["serve", str(sample_dir), "--workers", "0"])
    assert r.exit_code == 2 and "'--workers'" in r.output  # checked like --jobs


def test_jobs_option_aliases():
    seen = []

    @click.command()
    @jobs_option(type=click.IntRange(1, 8), default=3, deprecated=("--workers", "-w"),
                 help="Parallel things.")
    @jobs_option("--check-jobs", dest="check_jobs", type=click.IntRange(0, 8),
                 deprecated=("--bls-procs",), help="Checking processes.")
    def cmd(jobs, check_jobs):
        seen.append((jobs, check_jobs))

    run = CliRunner().invoke
    assert run(cmd, []).exit_code == 0
    assert run(cmd, ["-j", "5", "--check-jobs", "0"]).exit_code == 0
    r = run(cmd, ["-w", "6", "--bls-procs", "2"])
    assert r.exit_code == 0
    assert "warning: -w is deprecated" in r.output
    assert "warning: --bls-procs is deprecated; use --check-jobs" in r.output
    assert seen == [(3, None), (5, 0), (6, 2)]
    r = run(cmd, ["--jobs", "2", "--workers", "4"])
    assert r.exit_code == 2 and "--workers is the old name of --jobs" in r.output
    assert "--workers" not in run(cmd, ["--help"]).output
