"""`era tables`: era files to Parquet datasets (one per table, partitioned by era)."""

from __future__ import annotations

import os
import sys

import click

from . import main
from .common import (PathOrURL, dask_address, echo_json, jobs_option, json_option,
                     network_options, pick_network, progress_bar)

# era_tools.tables.TABLES, spelled out so that `era tables --help` does not import pyarrow
# (tests/test_tables.py checks the two agree).
TABLE_NAMES = ("blocks", "attestations", "deposits", "withdrawals", "voluntary_exits",
               "bls_to_execution_changes", "proposer_slashings", "attester_slashings",
               "sync_aggregates", "execution_requests", "transactions", "blob_commitments",
               "validators")


def _parse_tables(ctx, param, value):
    if value is None:
        return TABLE_NAMES
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    bad = [n for n in names if n not in TABLE_NAMES]
    if bad or not names:
        raise click.BadParameter(f"unknown table(s) {', '.join(bad) or '(none given)'}; "
                                 f"known: {','.join(TABLE_NAMES)}")
    return names


def _task(args):
    from ..errors import EraToolsError
    from ..tables import write_era_tables

    path, net, out, tables, verify = args
    try:
        return write_era_tables(path, net, out, tables, verify=verify)
    except EraToolsError as exc:
        return _failed(path, exc)


def _failed(path, exc) -> dict:
    return {"path": path, "error": str(exc), "exit_code": exc.exit_code}


@main.command(short_help="Era files to Parquet tables (DuckDB, Polars, Spark).")
@click.argument("paths", nargs=-1, required=True, type=PathOrURL(exists=True, dir_okay=True))
@click.option("--out", "out_dir", required=True, type=PathOrURL(file_okay=False),
              metavar="DIR|s3://...", help="Dataset directory or s3://bucket/prefix: "
                   "OUT/<table>/era=<N>/<era file>.parquet.")
@click.option("--tables", "tables", callback=_parse_tables, metavar="T1,T2,...",
              help=f"Tables to write (default: all): {','.join(TABLE_NAMES)}.")
@click.option("--from-era", type=click.IntRange(min=0), default=None, help="First era to write.")
@click.option("--to-era", type=click.IntRange(min=0), default=None, help="Last era to write.")
@click.option("--no-verify", is_flag=True,
              help="Skip the roots-level check of each file (default: a file that fails it "
                   "yields no tables).")
@jobs_option(help="Era files converted in parallel.", type=click.IntRange(min=1), default=1)
@click.option("--dask", "dask_scheduler", metavar="tcp://HOST:PORT", callback=dask_address,
              help="Convert each era file on a worker of this Dask scheduler (pip install "
                   "'era_tools[dask]'); workers read the files and write --out at the same "
                   "paths (a shared directory, or a bucket).  Output and exit codes are those "
                   "of a local run; --jobs is then ignored.")
@network_options
@json_option
def tables(paths, out_dir, tables, from_era, to_era, no_verify, jobs, dask_scheduler,
           network_name, config_path, as_json):
    """Write the blocks, operations, transactions and validators of era files at PATHS (files,
    directories or s3://bucket/prefix URLs) as Parquet datasets under --out, one per table,
    partitioned by era.  --out may be an s3://bucket/prefix: each table is written to a
    local temporary file, then put as one object.

    Each era file is verified at the `roots` level first (unless --no-verify): a file that
    fails yields no tables.  Files are written under a temporary name and renamed (objects
    are put whole), so an interrupted run leaves whole files only; a rerun skips the tables
    already written.
    Query with DuckDB: SELECT count(*) FROM read_parquet('OUT/blocks/*/*.parquet',
    hive_partitioning = true).  Exits 1 if a file fails verification, 2 if one is malformed.
    """
    from ..era import era_files_in, parse_era_file_name

    files = era_files_in(paths)
    if not files:
        raise click.UsageError("no .era files given")
    if from_era is not None and to_era is not None and from_era > to_era:
        raise click.UsageError(f"--from-era {from_era} is after --to-era {to_era}")

    def era_of(p):
        parsed = parse_era_file_name(p.rsplit("/", 1)[-1])
        return parsed[1] if parsed else None

    if from_era is not None or to_era is not None:
        files = [p for p in files if (e := era_of(p)) is None or (
            (from_era is None or e >= from_era) and (to_era is None or e <= to_era))]
    net = pick_network(network_name, config_path, files, quiet=as_json)
    if out_dir.startswith("s3://"):
        from .. import objstore

        objstore.prefix_exists(out_dir)  # a missing bucket or a refused key: one line, exit 2
    args = [(p, net, out_dir, tables, not no_verify) for p in files]
    results = []
    with progress_bar(len(files), "tables", unit="file") as bar:
        if dask_scheduler:
            from ..cluster import run_per_file
            from ..errors import EraToolsError
            from ..tables import write_era_tables

            def absolute(p):  # workers run in other directories
                return p if p.startswith("s3://") else os.path.abspath(p)

            remote = run_per_file(dask_scheduler, write_era_tables, [absolute(p) for p in files],
                                  net, absolute(out_dir), tables, not no_verify,
                                  errors="return", name="tables",
                                  progress=lambda _r: bar.update(1))
            for p, r in zip(files, remote):
                if isinstance(r, EraToolsError):
                    bar.update(1)  # (progress counts the files that succeeded)
                    r = _failed(p, r)
                else:
                    r["path"] = p  # as given, like a local run
                results.append(_report(r, as_json, bar, count=False))
        elif jobs > 1 and len(files) > 1:
            from concurrent.futures import ProcessPoolExecutor

            from ..procs import pool_context

            ctx = pool_context(["era_tools.tables", "era_tools.verify"])
            with ProcessPoolExecutor(min(jobs, len(files)), mp_context=ctx) as pool:
                for r in pool.map(_task, args):
                    results.append(_report(r, as_json, bar))
        else:
            for a in args:
                results.append(_report(_task(a), as_json, bar))
    failed = [r for r in results if "error" in r]
    if as_json:
        echo_json({"out": out_dir,
                   "files": [{k: v for k, v in r.items() if k != "exit_code"} for r in results],
                   "eras_written": sum(1 for r in results if r.get("written")),
                   "bytes": sum(r.get("bytes", 0) for r in results),
                   "ok": not failed, "failures": len(failed)})
    elif not failed:
        written = sum(1 for r in results if r.get("written"))
        click.echo(f"{written} era(s) written, {len(results) - written} already there, "
                   f"{sum(r.get('bytes', 0) for r in results)} bytes -> {out_dir}", err=True)
    if failed:
        sys.exit(min(r["exit_code"] for r in failed))


def _report(r: dict, as_json: bool, bar, count: bool = True) -> dict:
    if count:
        bar.update(1)
    if "error" in r and not as_json:
        bar.write(f"error: {r['error']}", file=sys.stderr)
    return r
