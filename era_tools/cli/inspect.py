"""`era info` and `era extract`: look inside era files."""

from __future__ import annotations

import json
import sys

import click

from . import main
from .common import PathOrURL, dask_address, echo_json, json_option, network_options, pick_network
from ..errors import ConfigError, EraToolsError, FormatError


@main.command(short_help="Summarize era and era1 files.")
@click.argument("files", nargs=-1, required=True, type=PathOrURL(exists=True, dir_okay=True))
@click.option("--dask", "dask_scheduler", metavar="tcp://HOST:PORT", callback=dask_address,
              help="Summarize each file on a worker of this Dask scheduler (pip install "
                   "'era_tools[dask]'); workers read the files from the same paths.  Output and "
                   "exit status are those of a local run.")
@network_options
@json_option
def info(files, dask_scheduler, network_name, config_path, as_json):
    """Summarize era FILES: era, name check, slots, blocks, forks, state and records.

    Directories (and s3://bucket/prefix URLs, read with ranged GETs; AWS_* variables) are
    expanded to the .era and .era1 files inside (an era1 file: epoch, name check, block
    numbers, total difficulty, stored accumulator root).  Exits 1 if a name
    check fails, 2 if a file is malformed.
    """
    from ..summary import describe_any
    from ..verify import archive_files_in, is_era1

    paths = archive_files_in(files)
    if not paths:
        raise click.UsageError("no .era or .era1 files given")
    eras = [p for p in paths if not is_era1(p)]
    net = pick_network(network_name, config_path, eras, quiet=as_json) if eras else None
    if dask_scheduler:
        from ..cluster import run_per_file

        remote = run_per_file(dask_scheduler, describe_any, paths, net, errors="return",
                              name="info")
    results, failed, bad_names = [], [], 0
    for i, p in enumerate(paths):
        try:
            if dask_scheduler:
                d = remote[i]
                if isinstance(d, EraToolsError):
                    raise d
            else:
                d = describe_any(p, net)
        except EraToolsError as exc:
            failed.append((p, exc))
            if as_json:
                results.append({"path": p, "error": str(exc)})
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        bad_names += not d["name_ok"]
        results.append(d)
        if not as_json:
            _print_info(d)
    if as_json:
        echo_json(results if len(paths) > 1 else results[0])
    if failed:
        sys.exit(failed[0][1].exit_code)
    if bad_names:
        sys.exit(1)


def _print_info(d: dict) -> None:
    if d.get("kind") == "era1":
        return _print_era1_info(d)
    name_check = "OK" if d["name_ok"] else f"MISMATCH (state says {d['expected_name']})"
    click.echo(f"{d['name']}")
    click.echo(f"  era          {d['era']}   name check: {name_check}")
    if d["start_slot"] is None:
        click.echo("  slots        none (genesis era: state only)")
    else:
        click.echo(f"  slots        {d['start_slot']}..{d['end_slot']}   blocks {d['blocks']}, "
                   f"empty {d['empty_slots']}")
    click.echo(f"  forks        {', '.join(d['forks'])}")
    click.echo(f"  state        slot {d['state_slot']} ({d['state_fork']})  root {d['state_root']}")
    click.echo(f"  size         {d['file_size']} bytes")
    for name, agg in d["records"].items():
        click.echo(f"    {name:28s} {agg['count']:6d} records {agg['bytes']:12d} bytes")
    for u in d["unknown_records"]:
        click.echo(f"  unknown record type {u['type']} at offset {u['offset']} "
                   f"({u['length']} bytes), skipped")


def _print_era1_info(d: dict) -> None:
    name_check = "OK" if d["name_ok"] else f"MISMATCH (contents say {d['expected_name']})"
    click.echo(f"{d['name']}")
    click.echo(f"  epoch        {d['epoch']}   name check: {name_check}")
    click.echo(f"  blocks       {d['start_number']}..{d['end_number']}   ({d['blocks']} "
               "execution-layer blocks)")
    click.echo(f"  total diff.  {d['total_difficulty'][0]}..{d['total_difficulty'][1]}")
    click.echo(f"  accumulator  {d['accumulator_root']} (stored; `era verify` recomputes it)")
    click.echo(f"  size         {d['file_size']} bytes")
    for name, agg in d["records"].items():
        click.echo(f"    {name:28s} {agg['count']:6d} records {agg['bytes']:12d} bytes")


@main.command(short_help="Print or write one block or the era state of a file.")
@click.argument("file", type=PathOrURL(exists=True, dir_okay=False))
@click.option("--slot", type=int, help="Slot of the block to extract.")
@click.option("--state", "want_state", is_flag=True, help="Extract the era state instead.")
@click.option("--format", "fmt", type=click.Choice(["ssz", "json"]), default="json",
              show_default=True, help="ssz: exact uncompressed bytes; json: Beacon API encoding.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@network_options
def extract(file, slot, want_state, fmt, output, network_name, config_path):
    """Print or write one block (--slot S) or the era state (--state) of FILE (a path or an
    s3://bucket/key object)."""
    from .. import ssz
    from ..era import EraReader
    from ..verify import network_mismatch

    if (slot is None) == (not want_state):
        raise click.UsageError("give exactly one of --slot S or --state")
    net = pick_network(network_name, config_path, [file], quiet=True)
    with EraReader(file) as r:
        wrong = network_mismatch(r.state_head(net.slots_per_historical_root), net)
        if wrong is not None:  # before decoding with that network's types
            raise ConfigError(f"{file}: {wrong}")
        if want_state:
            data, at = r.state_ssz(), r.state_slot
        else:
            try:
                data = r.block_ssz(slot)
            except KeyError:
                lo, hi = (r.start_slot, r.end_slot) if r.block_index else (None, None)
                raise FormatError(f"{file}: slot {slot} is not in this era "
                                  f"(blocks {lo}..{hi})" if lo is not None else
                                  f"{file}: era 0 holds no blocks") from None
            if data is None:
                click.echo(f"error: {file}: slot {slot} is empty (no block)", err=True)
                sys.exit(1)
            at = slot
    fork = net.fork_name_at_slot(at)
    if fmt == "ssz":
        out = data
    else:
        where = f"{file}: {'state' if want_state else 'block'} at slot {at} ({net.name})"
        obj = ssz.decode_state(data, fork, net.preset_base, where=where) if want_state else \
            ssz.decode_block(data, fork, net.preset_base, where=where)
        from ..ssz.json import to_json

        out = (json.dumps({"version": fork, "data": to_json(obj)}, indent=2) + "\n").encode()
    if output:
        with open(output, "wb") as f:
            f.write(out)
    elif fmt == "ssz" and sys.stdout.isatty():
        raise click.UsageError("refusing to write binary SSZ to a terminal; use -o FILE")
    else:
        sys.stdout.buffer.write(out)
