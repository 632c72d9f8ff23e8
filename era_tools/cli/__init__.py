"""The `era` command: click group, shared options, and the one place errors become exit codes.

Only this package prints or exits.  Library code reports progress through callbacks; commands
turn them into progress on stderr (common.progress_bar: tqdm on a terminal, plain lines
without one).  Exit codes: 0 success, 1 verification failure, 2 usage/IO/format error,
3 internal error, 130 interrupted.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

import click

from ..errors import EraToolsError

# At exit (after the other atexit hooks: registered first, run last) every object moves to the
# permanent generation, so the interpreter's final garbage collection does not walk them: it
# cost 0.10-0.14 s of CPU after `era verify`'s report (BENCHMARKS.md, issue 15).  Nothing is
# left to collect usefully then: the process is ending.
atexit.register(gc.freeze)


class EraGroup(click.Group):
    """Turns EraToolsError (and OS errors) into one clear line and a meaningful exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EraToolsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:  # `era ... | head`: stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug: still one line, unless asked for the traceback
            if os.environ.get("ERA_TOOLS_DEBUG"):
                raise
            click.echo(f"error: internal error: {type(exc).__name__}: {exc} "
                       "(set ERA_TOOLS_DEBUG=1 for a traceback)", err=True)
            sys.exit(3)


# Each command lives in the module named here and is imported only when it is run (or listed
# by `era --help`), so a command pays for its own imports alone.  Importing the module
# registers the command on `main` (its `@main.command()` decorator).
COMMAND_MODULES = {
    "info": "inspect", "extract": "inspect",
    "verify": "verify",
    "pull": "store", "export": "store", "frontfill": "store", "status": "store",
    "checkpoint-sync": "sync", "backfill": "sync", "sync": "sync",
    "serve": "serve", "download": "serve",
    "tables": "tables",
    "lightclient": "lightclient",
}


class LazyEraGroup(EraGroup):
    """EraGroup whose commands are imported on demand (COMMAND_MODULES)."""

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            import importlib

            importlib.import_module(f"{__name__}.{COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)


@click.group(cls=LazyEraGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="era_tools")
def main():
    """Read, write, verify, serve and sync Ethereum consensus-layer .era archives."""
