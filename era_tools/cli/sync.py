"""`era checkpoint-sync` and `era backfill`: start a store from a trusted checkpoint, then
fill it downwards from peers."""

from __future__ import annotations

import sys

import click

from . import main
from .common import (echo_json, http_url, jobs_option, json_option, network_options,
                     pick_network, progress_bar)
from ..errors import ConfigError, hex0x

db_option = click.option("--db", "db", required=True, type=click.Path(file_okay=False),
                         help="Chain store directory (LevelDB).")


def _root(value):
    if value is None:
        return None
    v = value[2:] if value.startswith("0x") else value
    try:
        b = bytes.fromhex(v)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise click.BadParameter(f"{value!r} is not a 0x-prefixed 32-byte hex root",
                                 param_hint="--trusted-block-root")
    return b


@main.command("checkpoint-sync", short_help="Start the store from a trusted finalized state.")
@db_option
@click.option("--beacon-api", "url", required=True, metavar="URL", callback=http_url,
              help="Trusted beacon node REST API, e.g. http://127.0.0.1:5052")
@click.option("--state-id", default="finalized", show_default=True,
              help="`finalized` or a slot (an epoch boundary).")
@click.option("--trusted-block-root", "trusted", metavar="0x..",
              help="Refuse the checkpoint unless its block has this root.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              default=360.0, show_default=True,
              help="Seconds allowed for the state download (mainnet states are hundreds of "
                   "MB).")
@network_options
@json_option
def checkpoint_sync(db, url, state_id, trusted, timeout, network_name, config_path, as_json):
    """Start (or top up) the store from a trusted finalized state and its block.

    Checks the block against the state's latest_block_header, the network, the epoch
    boundary and --trusted-block-root, then writes block, state and anchor atomically."""
    from ..sync.pull import node_network
    from ..store import ChainStore
    from ..sync.checkpoint import checkpoint_sync as do_checkpoint
    from ..sync.peers import BeaconApiClient

    trusted_root = _root(trusted)
    if state_id != "finalized" and not (state_id.isascii() and state_id.isdigit()):
        raise ConfigError(f"--state-id {state_id!r}: give `finalized` or a slot number")
    expected = pick_network(network_name, config_path, quiet=True) if (
        network_name or config_path) else None
    api = BeaconApiClient(url, timeout=min(60.0, timeout), state_timeout=timeout)
    net = node_network(api, expected)
    spe = net.slots_per_epoch
    if state_id != "finalized" and int(state_id) % spe:  # bad input, before any download
        below = int(state_id) // spe * spe
        raise ConfigError(f"--state-id {state_id}: not an epoch boundary ({spe} slots per "
                          f"epoch on {net.name}); give `finalized` or a slot such as {below} "
                          f"or {below + spe}")
    with ChainStore.open(db, net) as store:
        bar = progress_bar(None, "state", unit="B", disable=True if as_json else None)
        bar.unit_scale = True

        def prog(n, total):
            if total and bar.total != total:
                bar.total = total
            bar.update(n - bar.n)

        with bar:
            res = do_checkpoint(store, api, state_id, trusted_root, progress=prog)
        anchor = store.anchor
    if as_json:
        echo_json({**res.to_dict(), "anchor": anchor.to_json()})
    elif res.already:
        click.echo(f"checkpoint at slot {res.state_slot} already stored (block "
                   f"{res.block_slot} {hex0x(res.block_root)})")
    else:
        click.echo(f"checkpoint: state slot {res.state_slot} (root {hex0x(res.state_root)}, "
                   f"{res.state_bytes} bytes), block slot {res.block_slot} "
                   f"{hex0x(res.block_root)}; anchor set")


@main.command(short_help="Fill the store downwards from peers, block by block.")
@db_option
@click.option("--peer", "peers", multiple=True, required=True, metavar="URL",
              callback=http_url,
              help="A beacon node REST API or an `era serve` server; repeat for several.")
@click.option("--to-slot", type=click.IntRange(min=0), default=None,
              help="Stop once the store holds a linked block at or below this slot.")
@jobs_option(type=click.IntRange(1, 64), default=4, deprecated=("--workers",),
             help="Batches downloaded and verified in parallel (threads).")
@click.option("--max-rate", type=click.FloatRange(min=0.1), default=None,
              metavar="SLOTS_PER_S", help="Cap the speed (slots per second).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              default=30.0, show_default=True,
              help="Seconds per request before a peer counts as stalled.")
@jobs_option("--check-jobs", dest="check_jobs", type=click.IntRange(0, 64),
             deprecated=("--bls-procs",),
             help="Processes for decompression, hashing and signature checks (0 = in the "
                   "worker threads; default: 0 when the BLS library and the hasher release "
                   "the GIL, else one per core).")
@click.option("--status-every", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between status lines.")
@network_options
@json_option
def backfill(db, peers, to_slot, jobs, max_rate, timeout, check_jobs, status_every,
             network_name, config_path, as_json):
    """Fill the store downwards from its oldest block, from peers.

    Stops at --to-slot, at genesis, or where front-filled era history begins (the chain must
    link to it there). Every block links to the trusted checkpoint and carries a valid
    proposer signature before it is written. Ctrl-C stops cleanly; rerun to resume."""
    from ..store import ChainStore
    from ..sync.backfill import backfill as do_backfill, default_bls_processes

    if check_jobs is None:
        check_jobs = default_bls_processes()
    from .store import expected_network

    with ChainStore.open(db, expected_network(network_name, config_path),
                         create=False) as store:
        bar = progress_bar(None, "backfill", unit="slot", disable=True if as_json else None)

        def on_plan(p):
            low = p.floor if to_slot is None else max(p.floor, to_slot)
            bar.total = max(p.top - low, 0)
            bar.refresh()

        def status(line):
            if not as_json:
                bar.write(line, file=sys.stderr)

        try:
            with bar:
                res = do_backfill(store, list(peers), to_slot=to_slot, workers=jobs,
                                  max_rate=max_rate, timeout=timeout, bls_processes=check_jobs,
                                  progress=bar.update, status=status,
                                  status_every=status_every, on_plan=on_plan)
        except KeyboardInterrupt:
            a = store.anchor
            click.echo(f"interrupted: the store is consistent down to slot "
                       f"{a.covered[-1][0] if a.covered else '?'}; rerun to resume", err=True)
            sys.exit(130)
        anchor = store.anchor
    out = res.to_dict()
    out["covered"] = [[x, y] for x, y in anchor.covered]
    if as_json:
        echo_json(out)
        return
    q = res.queue
    if res.plan is None:
        click.echo("nothing to do: the store already reaches genesis")
        return
    if q.stopped == "nothing to do":
        click.echo(f"nothing to do: the store's oldest linked block is at slot "
                   f"{res.plan.anchor_slot}" + (f", at or below --to-slot {to_slot}"
                                                if to_slot is not None else ""))
        return
    rate = f", {q.slots / q.elapsed:.0f} slots/s" if q.elapsed else ""
    click.echo(f"backfilled {q.slots} slots ({q.blocks} blocks) down to slot "
               f"{q.oldest_slot} in {q.elapsed:.1f} s{rate}; stopped at {q.stopped}")
    for p in q.peers:
        state = "dropped" if p["dropped"] else "ok"
        click.echo(f"  peer {p['url']} ({p['kind']}): score {p['score']}, {state}, "
                   f"{p['good_batches']} batches" +
                   (f"; last fault: {p['last_fault']}" if p["last_fault"] else ""))
