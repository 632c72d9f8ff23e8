"""`era pull`, `era export`, `era frontfill`, `era status`: the chain store commands."""

from __future__ import annotations

import sys

import click

from . import main
from .common import (PathOrURL, echo_json, http_url, jobs_option, json_option,
                     network_options, pick_network, progress_bar)
from ..spans import format_spans, spans
from ..errors import StoreError, hex0x

db_option = click.option("--db", "db", required=True, type=click.Path(file_okay=False),
                         help="Chain store directory (LevelDB).")


def _open_store(db, network=None, readonly=False, create=True):
    from ..store import ChainStore

    return ChainStore.open(db, network, readonly=readonly, create=create)


def expected_network(network_name, config_path):
    """The network a store command was told to expect, or None: the store's own is used, and
    a store of another network is refused (ChainStore.open)."""
    if not (network_name or config_path):
        return None
    return pick_network(network_name, config_path, quiet=True)


@main.command(short_help="Copy finalized blocks and states from a beacon node.")
@click.option("--beacon-api", "url", required=True, metavar="URL", callback=http_url,
              help="Beacon node REST API, e.g. http://127.0.0.1:5052")
@db_option
@click.option("--from-slot", type=click.IntRange(min=0), default=None,
              help="First slot (default 0; covered slots are skipped, so reruns resume).")
@click.option("--to-slot", type=click.IntRange(min=0), default=None,
              help="Last slot (default: the node's finalized slot).")
@jobs_option(type=click.IntRange(1, 64), default=8, deprecated=("--workers",),
             help="Concurrent block requests (threads).")
@click.option("--batch-slots", type=click.IntRange(1, 100000), default=256, show_default=True,
              help="Slots per atomic store write.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              default=30.0, show_default=True,
              help="Seconds per block request (states get 12x).")
@click.option("--retries", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Attempts per request before the node counts as failing.")
@click.option("--trusted-block-root", "trusted", metavar="0x..",
              help="Do not take the node's word for what is finalized: follow the sync "
                   "committees from this trusted block root (light client) and pull up to the "
                   "finalized checkpoint they sign; its block must have the verified root.")
@network_options
@json_option
def pull(url, db, from_slot, to_slot, jobs, batch_slots, timeout, retries, trusted,
         network_name, config_path, as_json):
    """Copy finalized blocks and era-boundary states from a beacon node into the store.

    Refuses a syncing node or one on another network than --network/--config or the store.
    Every block must link to the one before it; every state's block_roots must agree with the
    blocks.  Nothing off the finalized chain is written: up to 1,024 slots are held until
    they link to the finalized root; longer pulls check each slot against the roots of the
    finalized block's state (and of era states that hash into it) before writing it, and
    report the slots they could not check that way ("linked_only").  Resumable: rerun the
    same command after an interruption."""
    from ..sync.pull import node_network, pull as do_pull
    from ..sync.peers import BeaconApiClient

    expected = None
    if network_name or config_path:
        expected = pick_network(network_name, config_path, quiet=True)
    api = BeaconApiClient(url, timeout=timeout, state_timeout=timeout * 12, retries=retries)
    net = node_network(api, expected)
    finalized = None
    if trusted:
        finalized = _light_client_finalized(api, trusted, net, as_json)
    with _open_store(db, net) as store:
        fin = (finalized[0] if finalized else api.finalized_epoch()) * net.slots_per_epoch
        a = from_slot or 0
        b = fin if to_slot is None else to_slot
        with progress_bar(max(b - a + 1, 0), "pull", unit="slot",
                          disable=None if not as_json else True) as bar:
            res = do_pull(store, api, from_slot, to_slot, workers=jobs,
                          batch_slots=batch_slots, progress=bar.update, finalized=finalized)
        summary = {"network": net.config_name, "from_slot": res.from_slot,
                   "to_slot": res.to_slot, "slots": res.slots, "blocks": res.blocks,
                   "states": res.states, "slots_already_stored": res.skipped_slots,
                   "bytes": res.bytes, "unheld_slot": res.unheld_slot,
                   "linked_only": [list(r) for r in res.linked_only]}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"pulled slots {res.from_slot}..{res.to_slot} from {url}: {res.blocks} "
                   f"blocks, {res.states} states, {res.skipped_slots} slots already stored")
        if res.unheld_slot is not None:
            click.echo(f"slot {res.unheld_slot}: the node does not give the finalized block "
                       "there (an archive holds the era's state, not the block that begins "
                       "the next era); left for a later pull")
        for x, y in res.linked_only:
            click.echo(f"slots {x}..{y}: checked by their links only (the node gave no "
                       "finalized state, or no state of their era, to check them against "
                       "before they were written)")


def _light_client_finalized(api, trusted: str, net, as_json: bool) -> tuple[int, bytes]:
    """(epoch, root) of the finalized checkpoint the light client verifies from `trusted`."""
    from .. import ssz
    from ..errors import PeerError, hex0x
    from ..lightclient.driver import checkpoint_slot, light_client_checkpoint
    from .sync import _root

    light = light_client_checkpoint(api, _root(trusted), net, status=None if as_json else (
        lambda line: click.echo(line, err=True)))
    if light is None:
        raise PeerError(f"{api.base_url}: serves no light-client bootstrap for {trusted}")
    for w in light.warnings:
        click.echo(f"warning: {w}", err=True)
    root = ssz.hash_tree_root(light.finalized_header.beacon)
    if not as_json:
        click.echo(f"light client: finalized block {hex0x(root)} at slot "
                   f"{int(light.finalized_header.beacon.slot)} verified from {trusted}",
                   err=True)
    return checkpoint_slot(light, net) // net.slots_per_epoch, root


@main.command(short_help="Write the complete eras of the store as .era files.")
@db_option
@click.option("--out", "out_dir", required=True, type=PathOrURL(file_okay=False),
              help="Directory for the .era files, or an s3://bucket/prefix (AWS_* variables; "
                   "checksums.txt is written there last).")
@click.option("--from-era", type=click.IntRange(min=0), default=None,
              help="First era to write [default: the store's first complete era].")
@click.option("--to-era", type=click.IntRange(min=0), default=None,
              help="Last era to write [default: the store's last complete era].")
@click.option("--no-fsync", is_flag=True, help="Skip fsync (faster, not crash-safe).")
@network_options
@json_option
def export(db, out_dir, from_era, to_era, no_fsync, network_name, config_path, as_json):
    """Write the complete eras the store holds as .era files.

    Files that already exist with the right name are skipped (a damaged one, e.g. truncated,
    is written anew and named).  With --from-era/--to-era, eras whose blocks or boundary state
    are missing are named, as runs of eras, and the exit code is 2.
    Safe to run beside a live `era pull` (reads a snapshot)."""
    from ..export import export as do_export, exportable_range

    with _open_store(db, expected_network(network_name, config_path), readonly=True,
                     create=False) as store:
        rng = exportable_range(store)
        lo = from_era if from_era is not None else (rng[0] if rng else 0)
        hi = to_era if to_era is not None else (rng[1] if rng else lo - 1)
        held = sum(1 for s in store.state_slots() if not s % store.sphr and  # what exists
                   lo <= s // store.sphr <= hi)
        with progress_bar(held, "export", unit="era",
                          disable=None if not as_json else True) as bar:
            res = do_export(store, out_dir, from_era, to_era, progress=bar.update,
                            fsync=not no_fsync)
    if as_json:
        echo_json({"written": res.written, "skipped": res.skipped,
                   "missing": [{"from_era": a, "to_era": b, "why": why}
                               for a, b, why in res.missing],
                   "replaced": res.replaced, "bytes": res.bytes_written})
    else:
        for path in res.replaced:
            click.echo(f"replaced {path}: it was damaged (truncated or not the store's "
                       "blocks)", err=True)
        click.echo(f"exported {len(res.written)} era files to {out_dir} "
                   f"({len(res.skipped)} already there)")
    if res.missing:  # one line per run of eras, not per era
        for a, b, why in res.missing:
            click.echo(f"error: {f'era {a}' if a == b else f'eras {a}..{b}'}: {why}", err=True)
        eras = format_spans((a, b) for a, b, _ in res.missing)
        click.echo(f"error: cannot export era(s) {eras}: history missing from the store",
                   err=True)
        sys.exit(2)


@main.command(short_help="Fill the store from era files, oldest first.")
@db_option
@click.argument("era_paths", nargs=-1, required=True, type=PathOrURL(exists=True))
@click.option("--mode", type=click.Choice(["reference", "copy"]), default="reference",
              show_default=True,
              help="reference: index blocks in place in the era files (fast, the files must "
                   "stay); copy: copy blocks and states into LevelDB.")
@click.option("--check", type=click.Choice(["roots", "index"]), default="roots",
              show_default=True,
              help="roots: hash every block against the state's block_roots; index: trust "
                   "the blocks, check names, state heads and parent links only.")
@network_options
@json_option
def frontfill(db, era_paths, mode, check, network_name, config_path, as_json):
    """Fill the store from era files (files, directories, or with --mode copy an
    s3://bucket/prefix read with ranged GETs), oldest first.

    Each file is checked at the roots level before it touches the store; consecutive eras
    must link; where the store already holds newer blocks the eras must link to them exactly,
    or nothing is written.  Resumable."""
    from ..era import era_files_in
    from ..frontfill import frontfill as do_frontfill

    files = era_files_in(era_paths)
    if not files:
        raise StoreError(f"no .era files in {', '.join(era_paths)}")
    net = _frontfill_network(db, network_name, config_path, era_paths, quiet=as_json)
    with _open_store(db, net) as store:
        if net is None and not as_json:
            click.echo(f"network: {store.network.name} (the store's)", err=True)
        with progress_bar(len(files) * store.sphr, "frontfill", unit="slot",
                          disable=None if not as_json else True) as bar:
            res = do_frontfill(store, files, mode=mode, check=check, progress=bar.update)
        anchor, sphr = store.anchor, store.sphr
    if as_json:
        echo_json({"eras_written": res.eras_written, "eras_skipped": res.eras_skipped,
                   "slots_indexed": res.slots_indexed, "blocks": res.blocks,
                   "gaps": [list(g) for g in res.gaps], "anchor": anchor.to_json()})
    else:
        click.echo(f"front-filled {len(res.eras_written)} eras ({res.blocks} blocks, "
                   f"{res.slots_indexed} slots, mode {mode}); {len(res.eras_skipped)} already "
                   "stored")
        for a, b in res.gaps:  # said, not refused: a later run may fill them
            what = f"era {a}" if a == b else f"eras {a}..{b}"
            click.echo(f"gap: {what} not given and not in the store: the store has a gap at "
                       f"slots {(a - 1) * sphr}..{b * sphr - 1}", err=True)


def _frontfill_network(db, network_name, config_path, era_paths, quiet):
    """The network for front-filling `db`: --network/--config, or a config beside the files
    (ChainStore.open refuses either when the store holds another), else the store's own
    (None; frontfill checks each file's state head against it), else inferred from the
    files."""
    import os

    from ..config import find_config_beside

    if network_name or config_path or find_config_beside(era_paths) or \
            not os.path.exists(os.path.join(db, "CURRENT")):
        return pick_network(network_name, config_path, era_paths, quiet=quiet)
    return None


@main.command(short_help="Show the store's network, coverage, gaps and sizes.")
@db_option
@network_options
@json_option
def status(db, network_name, config_path, as_json):
    """Show the store's network, covered slot ranges, gaps, anchor and sizes."""
    with _open_store(db, expected_network(network_name, config_path), readonly=True,
                     create=False) as store:
        a = store.anchor
        net = store.network
        stats = store.table_stats()
        files = store.referenced_file_counts()
        info = {
            "path": store.path,
            "network": net.config_name,
            "preset": net.preset_base,
            "genesis_validators_root": hex0x(net.genesis_validators_root),
            "covered": [[x, y] for x, y in a.covered],
            "gaps": [[x, y] for x, y in store.gaps()],
            "anchor": a.to_json(),
            # a checkpoint state need not be at an era boundary: listed by slot, apart
            "era_states": [s // store.sphr for s in store.state_slots() if not s % store.sphr],
            "other_states": [s for s in store.state_slots() if s % store.sphr],
            "referenced_files": files["era"],
            "block_files": files["blocks"],
            "tables": stats,
            "disk_bytes": store.disk_bytes(),
            "sync": store.sync_record(),
        }
    if as_json:
        echo_json(info)
        return
    click.echo(f"store:    {info['path']}")
    click.echo(f"network:  {info['network']} ({info['preset']} preset), genesis_validators_root "
               f"{info['genesis_validators_root']}")
    cov = ", ".join(f"{x}..{y}" for x, y in a.covered) or "nothing"
    click.echo(f"covered:  {cov}")
    click.echo(f"gaps:     {', '.join(f'{x}..{y}' for x, y in info['gaps']) or 'none'}")
    if a.oldest_block_slot is not None:
        click.echo(f"anchor:   oldest block {a.oldest_block_slot} {hex0x(a.oldest_block_root)} "
                   f"(parent {hex0x(a.oldest_block_parent) if a.oldest_block_parent else '?'}), "
                   f"newest slot {a.newest_slot} {hex0x(a.newest_root) if a.newest_root else ''}")
    eras, others = info["era_states"], info["other_states"]
    parts = [f"{len(eras)} era-boundary state{'s' if len(eras) != 1 else ''}" +
             (f" (era{'s' if len(eras) != 1 else ''} {format_spans(spans(eras))})"
              if eras else "")]
    if others:
        parts.append(f"{len(others)} checkpoint state{'s' if len(others) != 1 else ''} "
                     f"between era boundaries (slot{'s' if len(others) != 1 else ''} "
                     f"{', '.join(map(str, others))})")
    click.echo(f"states:   {', '.join(parts)}")
    click.echo(f"blocks:   {stats['blocks']['entries']} in LevelDB, "
               f"{stats['block_refs']['entries']} referenced in {info['referenced_files']} era "
               f"files and {info['block_files']} block files")
    click.echo(f"size:     {info['disk_bytes']} bytes on disk")
    rec = info["sync"]
    if rec:  # the record `era sync` keeps: stage, lag, servers, as of its last update
        import time as _time

        age = f", updated {int(_time.time()) - rec['updated']} s ago" if rec.get("updated") \
            else ""
        lag = (f", finalized {rec['finalized_slot']} (lag {rec['lag_slots']} slots)"
               if rec.get("finalized_slot") is not None else "")
        click.echo(f"sync:     stage {rec['stage']}, newest slot {rec.get('newest_slot')}{lag}"
                   f"{age}")
        if rec.get("missing_states"):
            click.echo(f"          no server had the states at slots "
                       f"{', '.join(map(str, rec['missing_states']))}")
        for s in rec.get("servers", []):
            err = f" ({s['last_error']})" if s.get("last_error") and s["state"] != "ok" else ""
            click.echo(f"  server  {s['url']}: {s['state']}, finalized slot "
                       f"{s.get('finalized_slot')}, event stream "
                       f"{ {True: 'yes', False: 'no', None: '?'}[s.get('events')] }{err}")
