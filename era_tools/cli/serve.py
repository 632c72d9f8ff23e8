"""`era serve` (publish an era directory over HTTP) and `era download` (mirror one)."""

from __future__ import annotations

import sys

import click

from . import main
from .common import (PathOrURL, echo_json, jobs_option, json_option, network_options,
                     pick_network, progress_bar)
from ..spans import format_spans
from ..errors import ConfigError


@main.command(short_help="Serve an era directory over HTTP.")
@click.argument("era_dir", type=PathOrURL(exists=True, file_okay=False))
@click.option("--db", "db_path", type=click.Path(file_okay=False),
              help="Also answer blocks and states from this chain store (read-only).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--max-ranges", default=16, show_default=True, type=click.IntRange(1, 1024),
              help="Concurrent range-endpoint streams; more get 429.")
@click.option("--header-timeout", default=10.0, show_default=True,
              type=click.FloatRange(0, 3600),
              help="Seconds a client has to send a request's line and headers once it has "
                   "begun (slow clients are answered 408 and closed; 0: no limit).")
@click.option("--idle-timeout", default=30.0, show_default=True,
              type=click.FloatRange(0, 86400),
              help="Seconds a connection may stay open without starting a request "
                   "(0: aiohttp's default, an hour).")
@click.option("--max-connections", type=click.IntRange(0, 1_000_000),
              help="Open connections per server process; at the cap a new connection "
                   "closes the oldest one waiting for a request, else it is answered 503 "
                   "(0: no cap).  [default: 1024, less when `ulimit -n` is low]")
@jobs_option(type=click.IntRange(1, 256), deprecated=("--workers", "-w"),
             help="Server processes accepting on one listening socket, like nginx workers. "
                   "[default: the number of cores; 1 with --db]")
@network_options
def serve(era_dir, db_path, host, port, max_ranges, header_timeout, idle_timeout,
          max_connections, jobs, network_name, config_path):
    """Serve ERA_DIR over HTTP: an nginx-style listing, /index.json, /checksums.txt, the era
    files (Range, ETag), a Beacon API subset, the blocks_by_range endpoint and /metrics.
    Any .era1 files in ERA_DIR are listed, checksummed and served as plain files.

    ERA_DIR may be an s3://bucket/prefix (AWS_* variables): its objects are listed, read with
    ranged GETs and streamed, never held whole.

    The network comes from --network/--config, a spec.json or config.yaml in ERA_DIR, or the
    file names.  See docs/protocol.md.  Ctrl-C or SIGTERM stops every worker and exits 0.

    Slow or idle clients cannot pile up: request headers have --header-timeout seconds once
    begun, a connection without a request is closed after --idle-timeout, and each process
    keeps at most --max-connections open (/metrics counts the connections these close).
    """
    from .. import serve as serve_pkg
    from ..serve.limits import Limits, default_max_connections

    limits = Limits(header_timeout=header_timeout, idle_timeout=idle_timeout,
                    max_connections=default_max_connections() if max_connections is None
                    else max_connections)

    workers = jobs
    if db_path and workers is not None and workers > 1:
        raise click.UsageError("--db serves from one process (a LevelDB store has one "
                               "opener); drop --jobs or use --jobs 1")
    if workers is None:
        from ..serve.workers import default_workers

        workers = 1 if db_path else default_workers()
    if era_dir.startswith("s3://") and workers > 1:
        # the S3 client's threads do not survive fork(): read the bucket's config in a child,
        # so that each worker starts its own client
        from ..objstore import isolated

        net = isolated(pick_network, network_name, config_path, [era_dir])
    else:
        net = pick_network(network_name, config_path, [era_dir])
    store = None
    if db_path:
        from ..store.chain import ChainStore

        store = ChainStore.open(db_path, readonly=True, create=False)
        if net.genesis_validators_root is None:
            net = net.with_genesis(store.genesis_validators_root)

    def ready(h, p):
        if ":" in h:
            h = f"[{h}]"
        procs = f", {workers} workers" if workers > 1 else ""
        click.echo(f"serving {era_dir} on http://{h}:{p}/ (network {net.name}{procs})",
                   err=True)

    def event(kind, **info):
        if kind == "worker_exited":
            click.echo(f"warning: worker {info['worker']} exited ({info['reason']}); "
                       "restarting it", err=True)
        elif kind == "worker_killed":
            click.echo(f"warning: worker {info['worker']} did not stop in time; killed",
                       err=True)
        elif kind == "stopping":
            click.echo(f"{info['signal']}: stopping", err=True)

    try:
        serve_pkg.run(era_dir, net, store, host=host, port=port, on_ready=ready,
                      max_ranges=max_ranges, workers=workers, on_event=event, limits=limits)
    finally:
        if store is not None:
            store.close()


@main.command(short_help="Mirror the era and era1 files listed at a URL.")
@click.argument("url")
@click.argument("dest", type=PathOrURL(file_okay=False))
@click.option("--from-era", type=click.IntRange(0),
              help="First era to fetch; for .era1 files, the first era1 epoch.")
@click.option("--to-era", type=click.IntRange(0),
              help="Last era to fetch; for .era1 files, the last era1 epoch.")
@click.option("--jobs", "-j", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Parallel downloads.")
@click.option("--verify", "level", default="roots", show_default=True,
              type=click.Choice(["none", "structure", "roots", "signatures"]),
              help="Verify each file before it gets its final name.  era1 files have no "
                   "signature level: `structure` checks their records, `roots` and "
                   "`signatures` every era1 check (header chain, total difficulty, "
                   "accumulator, name).")
@click.option("--allow-gaps", is_flag=True,
              help="Exit 0 even when the host's era (or era1 epoch) numbering has gaps "
                   "(still reported).")
@network_options
@json_option
def download(url, dest, from_era, to_era, jobs, level, allow_gaps, network_name, config_path,
             as_json):
    """Mirror the era and era1 files listed at URL into DEST.

    URL may be an `era serve` host (index.json, checksums), an S3 bucket (?list-type=2) or any
    HTML directory listing (nginx autoindex, python -m http.server), or an s3://bucket/prefix
    read with credentials (AWS_* variables).  DEST may be an s3://bucket/prefix too: files
    are checked in a local staging directory, then uploaded whole, checksums.txt last.  Files download to
    <name>.tmp with a streaming sha256 and resume with Range after an interruption; each is
    checked against the host's checksum and verified before it is renamed.  A file that fails
    is kept as <name>.bad.

    era1 files (<network>-<epoch>-<root>.era1, execution history) are mirrored the same way;
    they need no network.  Their checksums.txt may hold one bare sha256 per line: line N is
    the Nth era1 file by epoch.  Gaps and duplicates are found per kind: era numbers and era1
    epochs are never mixed.

    Exit codes: 0 all good (also when --from-era/--to-era reach past the host's first or
    last era: what it has is mirrored and the rest named); 1 a file failed its checksum or
    verification, or the host's numbering has gaps within its own range (unless
    --allow-gaps); 2 network or usage errors, or a range with none of the host's files.
    """
    from ..download import download as run_download

    network = None
    if network_name or config_path:
        network = pick_network(network_name, config_path, quiet=as_json)

    def loader(dest_dir, names):
        try:
            return pick_network(None, None, [dest_dir], quiet=as_json)
        except ConfigError:
            return None

    ui = _Progress(quiet=as_json, jobs=jobs)
    try:
        rep = run_download(url, dest, from_era, to_era, jobs=jobs, verify=level,
                           network=network, network_loader=loader, on_event=ui.event)
    finally:
        ui.close()
    if as_json:
        echo_json(rep.to_json())
    else:
        click.echo(f"{len(rep.downloaded)} downloaded, {len(rep.skipped)} already present, "
                   f"{len(rep.bad)} bad, {len(rep.failed)} failed"
                   f" (listing: {rep.listing.source}, checksums: "
                   f"{rep.listing.checksums or 'none'}, verify: {rep.verified_level})")
    kept = f"{rep.bad_dir}/" if rep.bad_dir else ""
    for name, why in sorted(rep.bad.items()):
        click.echo(f"bad: {name}: {why} (kept as {kept}{name}.bad)", err=True)
    for name, why in sorted(rep.failed.items()):
        click.echo(f"failed: {name}: {why}", err=True)
    for a, b in rep.gaps:
        span = f"era {a}" if a == b else f"eras {a}-{b}"
        click.echo(f"gap: the host has no file for {span}", err=True)
    for a, b in rep.era1_gaps:
        span = f"epoch {a}" if a == b else f"epochs {a}-{b}"
        click.echo(f"gap: the host has no era1 file for {span}", err=True)
    for kind, past in rep.beyond_host.items():
        what = "eras" if kind == "era" else "era1 epochs"
        a, b = rep.host_has.get(kind, (None, None))
        has = f"{what} {a}..{b}" if a is not None else f"no {what}"
        click.echo(f"note: the host has {has}; {what} {format_spans(past)} asked for are "
                   "beyond it", err=True)
    if rep.bad:
        sys.exit(1)
    if rep.failed:
        sys.exit(2)
    if (rep.gaps or rep.era1_gaps) and not allow_gaps:
        sys.exit(1)


class _Progress:
    """Progress bars: one overall (bytes) and, on a terminal, one per file in flight."""

    def __init__(self, quiet: bool, jobs: int):
        self.quiet = quiet
        self.total = None
        self.bars = {}
        self.free = list(range(1, jobs + 1))

    def _bar(self, total, desc, **kw):
        return progress_bar(total, desc, unit="B", unit_scale=True, unit_divisor=1024, **kw)

    def event(self, kind, **info):
        if kind in ("warning",):
            if self.quiet:
                return
            click.echo(f"warning: {info['message']}", err=True)
            return
        if self.quiet:
            return
        if kind == "listing":
            n1 = info.get("era1", 0)
            n = info["files"] - n1
            what = (f"{n} era files" if not n1 else f"{n1} era1 files" if not n
                    else f"{n} era and {n1} era1 files")
            click.echo(f"listing: {what} ({info['source']}), checksums: "
                       f"{info['checksums'] or 'none'}", err=True)
        elif kind == "plan":
            self.total = self._bar(info["bytes"] or None, "download", position=0)
        elif kind == "start":
            pos = self.free.pop(0) if self.free else None
            bar = self._bar(info.get("total"), info["name"][-28:], position=pos,
                            initial=info.get("offset", 0), plain=False)
            self.bars[info["name"]] = (bar, pos)
            if self.total is not None and info.get("offset"):
                self.total.update(info["offset"])
        elif kind == "progress":
            b = self.bars.get(info["name"])
            if b:
                b[0].update(info["n"])
            if self.total is not None:
                self.total.update(info["n"])
        elif kind == "done":
            b = self.bars.pop(info["name"], None)
            if b:
                b[0].close()
                if b[1] is not None:
                    self.free.append(b[1])
                    self.free.sort()

    def close(self):
        for bar, _ in self.bars.values():
            bar.close()
        if self.total is not None:
            self.total.close()
