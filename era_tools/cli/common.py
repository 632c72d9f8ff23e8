"""Options and helpers shared by the `era` commands."""

from __future__ import annotations

import functools
import json
import os
import sys
import time

import click
from click.core import ParameterSource

from ..config import BUILTIN, find_config_beside, resolve_network
from ..errors import ConfigError

network_option = click.option("--network", "network_name", metavar="NAME",
                              help="Built-in network: mainnet, sepolia, holesky, hoodi, gnosis, "
                                   "minimal.")
config_option = click.option("--config", "config_path", metavar="FILE",
                             type=click.Path(dir_okay=False),
                             help="Network config: a client config.yaml or a beacon node's "
                                  "/eth/v1/config/spec JSON.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON instead of text.")


class PathOrURL(click.Path):
    """A local path (checked like click.Path) or an s3://bucket/prefix URL (passed through;
    the bucket is read when the command runs)."""

    name = "path_or_url"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.startswith("s3://"):
            if len(value) <= 5 or value[5] == "/":
                self.fail(f"{value!r} names no bucket (s3://BUCKET/PREFIX)", param, ctx)
            return value
        return super().convert(value, param, ctx)


def http_url(ctx, param, value):
    """Click callback: an http:// or https:// URL with a host (each value, for multiple=True)."""
    from urllib.parse import urlsplit

    for v in (value if isinstance(value, tuple) else (value,)):
        if v is None:
            continue
        u = urlsplit(v)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise click.BadParameter(f"{v!r} is not an http:// or https:// URL with a host")
    return value


def block_source(ctx, param, value):
    """Click callback: an http(s):// URL with a host, an s3:// URL, or an existing directory
    or .era file (each value, for multiple=True): what era_tools.sync.sources reads."""
    import os

    for v in (value if isinstance(value, tuple) else (value,)):
        if v is None or v.startswith("s3://") or os.path.isdir(v) or \
                (v.endswith(".era") and os.path.isfile(v)):
            continue
        try:
            http_url(ctx, param, v)
        except click.BadParameter:
            raise click.BadParameter(f"{v!r} is not an http:// or https:// URL with a host, "
                                     "an s3:// URL, or a directory of era files") from None
    return value


def dask_address(ctx, param, value):
    """Click callback: a Dask scheduler address, tcp://HOST:PORT (or tls://, or HOST:PORT)."""
    if value is None:
        return value
    from urllib.parse import urlsplit

    u = urlsplit(value if "://" in value else "tcp://" + value)
    try:
        port = u.port
    except ValueError:
        port = None
    if u.scheme not in ("tcp", "tls") or not u.hostname or port is None:
        raise click.BadParameter(f"{value!r} is not a Dask scheduler address "
                                 "tcp://HOST:PORT")
    return value


def jobs_option(*names, help: str, type, default=None, show_default=True,
                deprecated=(), dest="jobs"):
    """A parallelism option (`--jobs/-j` unless `names` say otherwise), with the spellings in
    `deprecated` (e.g. "--workers") still accepted, hidden from --help, with a warning.

    The command receives the value as `dest` whichever spelling was used; giving both is a
    usage error."""
    names = names or ("--jobs", "-j")

    def decorate(f):
        aliases = [(old, f"_{dest}_as_{old.lstrip('-').replace('-', '_')}") for old in deprecated]

        @functools.wraps(f)
        def command(*args, **kwargs):
            ctx = click.get_current_context()
            for old, key in aliases:
                value = kwargs.pop(key)
                if value is None:
                    continue
                if ctx.get_parameter_source(dest) == ParameterSource.COMMANDLINE:
                    raise click.UsageError(f"{old} is the old name of {names[0]}: give one")
                click.echo(f"warning: {old} is deprecated; use {' or '.join(names)}", err=True)
                kwargs[dest] = value
            return f(*args, **kwargs)

        for old, key in aliases:
            command = click.option(old, key, type=type, default=None, hidden=True)(command)
        return click.option(*names, dest, type=type, default=default,
                            show_default=show_default and default is not None,
                            help=help)(command)

    return decorate


def network_options(f):
    return network_option(config_option(f))


def pick_network(network_name, config_path, paths=(), quiet=False):
    """Resolve the network and say how it was chosen (on stderr, so --json stays clean).

    Without --network/--config: a config beside the files, else the file names, checked
    against the first era state's genesis_validators_root, else that root alone."""
    paths = list(paths)
    explicit = bool(network_name or config_path)
    try:
        net, how = resolve_network(network_name, config_path, paths)
    except ConfigError as exc:
        if explicit or find_config_beside(paths):  # a broken config beside the files: say so
            raise
        net, how = _network_from_state(paths, exc)
    else:
        if not explicit and how.startswith("inferred from file names"):
            gvr, _ = _first_state_gvr(paths)
            if gvr is not None and gvr != net.genesis_validators_root:
                raise ConfigError(
                    f"file names say {net.name}, but the era state's genesis_validators_root "
                    f"is 0x{gvr.hex()}, not {net.name}'s; pass --network or --config")
    if not quiet and not explicit:
        click.echo(f"network: {net.name} ({how})", err=True)
    return net


def _first_state_gvr(paths):
    """(genesis_validators_root of the first readable era file's state, None) or, when none of
    the first three reads, (None, the first file's error)."""
    from ..era import EraReader, era_files_in
    from ..errors import EraToolsError

    first_error = None
    for p in era_files_in(paths)[:3]:
        try:
            with EraReader(p) as r:
                return r.state_head().genesis_validators_root, None
        except EraToolsError as exc:
            first_error = first_error or exc
    return None, first_error


def _network_from_state(paths, no_name_match: ConfigError):
    gvr, error = _first_state_gvr(paths)
    if gvr is None and error is not None:  # the files say nothing: the file's error is why
        raise error
    if gvr is None:  # no era file at all: the name-based answer stands
        raise no_name_match
    for net in BUILTIN.values():
        if net.genesis_validators_root == gvr:
            return net, ("inferred from the era state's genesis_validators_root "
                          f"0x{gvr.hex()[:8]}")
    raise ConfigError("cannot infer the network from the file names or the era state's "
                      "genesis_validators_root: pass --network NAME or --config FILE")


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def progress_bar(total: int | None, desc: str, unit: str = "it", disable: bool | None = None,
                 plain: bool = True, **tqdm_kwargs):
    """Progress on stderr; `update(n)` is the callback library code gets.

    On a terminal: a tqdm bar (`tqdm_kwargs` go to it).  Without one (stderr redirected to a
    file or a pipe): no cursor movement or carriage returns, only a plain line every
    PLAIN_EVERY seconds ("verifying: 120/890 blk, 45.2 blk/s"), or nothing when `plain` is
    False (a secondary bar).  `disable=True`: nothing at all, on a terminal too."""
    if disable or not sys.stderr.isatty():
        return PlainProgress(total, desc, unit, silent=bool(disable) or not plain,
                             unit_scale=tqdm_kwargs.get("unit_scale", False),
                             initial=tqdm_kwargs.get("initial", 0))
    from tqdm import tqdm

    # No monitor thread: our callers update often, and a single-threaded process may fork
    # its worker pools (era_tools.procs) instead of starting a forkserver.
    tqdm.monitor_interval = 0
    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                file=sys.stderr, **tqdm_kwargs)


class bytes_progress:
    """A progress bar in bytes for a download of unknown size at first; `with bytes_progress(
    "state", quiet) as cb:` gives the library's `progress(bytes_so_far, total_or_None)`."""

    def __init__(self, desc: str, disable: bool | None = None):
        self.bar = progress_bar(None, desc, unit="B", disable=disable)
        self.bar.unit_scale = True

    def __call__(self, n: int, total: int | None) -> None:
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.update(n - self.bar.n)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)


# Seconds between the plain progress lines printed when stderr is not a terminal.
def _plain_every() -> float:
    try:
        return max(0.0, float(os.environ.get("ERA_TOOLS_PROGRESS_EVERY", "5")))
    except ValueError:  # a typo in the variable must not stop every command
        return 5.0


PLAIN_EVERY = _plain_every()


class PlainProgress:
    """The part of tqdm's interface the commands use, printing whole lines only."""

    def __init__(self, total, desc, unit, silent=False, unit_scale=False, initial=0):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.silent, self.unit_scale = silent, unit_scale
        self._start = self._last = time.monotonic()
        self._start_n = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.silent and now - self._last >= PLAIN_EVERY:
            self._last = now
            rate = (self.n - self._start_n) / max(now - self._start, 1e-9)
            if self.unit_scale:  # "download: 12.3 MB/45.0 MB, 3.1 MB/s"
                done = self._scaled(self.n) + (f"/{self._scaled(self.total)}" if self.total
                                               else "")
                speed = self._scaled(rate)
            else:  # "verifying: 120/890 blk, 45.2 blk/s"
                done = f"{self.n}" + (f"/{self.total}" if self.total else "") + f" {self.unit}"
                speed = f"{rate:.1f} {self.unit}"
            click.echo(f"{self.desc}: {done}, {speed}/s", err=True)

    def _scaled(self, x) -> str:
        for prefix in ("", "k", "M", "G", "T"):
            if abs(x) < 1000 or prefix == "T":
                return f"{x:.{1 if prefix else 0}f} {prefix}{self.unit}"
            x /= 1000

    def refresh(self) -> None:
        pass

    def write(self, line: str, file=None) -> None:
        click.echo(line, file=file or sys.stderr)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
