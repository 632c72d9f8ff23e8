"""`era checkpoint-sync` and `era backfill`: start a store from a trusted checkpoint, then
fill it downwards from peers."""

from __future__ import annotations

import sys

import click

from . import main
from .common import (PathOrURL, block_source, bytes_progress, echo_json, http_url, jobs_option,
                     json_option, network_options, pick_network, progress_bar)
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
              help="A block root you trust: the checkpoint block itself, or any older "
                   "finalized root, from which the light client follows the sync committees "
                   "to the node's finalized checkpoint (whose state and block must then match "
                   "the verified header, or nothing is written).")
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
    light = None
    if trusted_root is not None and state_id == "finalized":
        from .. import ssz
        from ..lightclient.driver import checkpoint_slot, light_client_checkpoint

        light = light_client_checkpoint(
            api, trusted_root, net, status=None if as_json else (
                lambda line: click.echo(line, err=True)))
        if light is None:
            click.echo(f"note: {url} serves no light-client bootstrap for {trusted}: the "
                       "checkpoint block itself must have that root", err=True)
        else:
            for w in light.warnings:
                click.echo(f"warning: {w}", err=True)
            verified = light.finalized_header.beacon
            state_id, trusted_root = str(checkpoint_slot(light, net)), ssz.hash_tree_root(
                verified)
            if not as_json:
                click.echo(f"light client: finalized block {hex0x(trusted_root)} at slot "
                           f"{int(verified.slot)} verified from {trusted}", err=True)
    if state_id != "finalized" and int(state_id) % spe:  # bad input, before any download
        below = int(state_id) // spe * spe
        raise ConfigError(f"--state-id {state_id}: not an epoch boundary ({spe} slots per "
                          f"epoch on {net.name}); give `finalized` or a slot such as {below} "
                          f"or {below + spe}")
    with ChainStore.open(db, net) as store:
        with bytes_progress("state", disable=True if as_json else None) as prog:
            res = do_checkpoint(store, api, state_id, trusted_root, progress=prog)
        anchor = store.anchor
    if as_json:
        out = {**res.to_dict(), "anchor": anchor.to_json()}
        if light is not None:
            out["light_client"] = light.to_dict()
        echo_json(out)
    elif res.already:
        click.echo(f"checkpoint at slot {res.state_slot} already stored (block "
                   f"{res.block_slot} {hex0x(res.block_root)})")
    else:
        click.echo(f"checkpoint: state slot {res.state_slot} (root {hex0x(res.state_root)}, "
                   f"{res.state_bytes} bytes), block slot {res.block_slot} "
                   f"{hex0x(res.block_root)}; anchor set")


@main.command(short_help="Fill the store downwards from peers, block by block.")
@db_option
@click.option("--peer", "peers", multiple=True, required=True, metavar="URL|DIR",
              callback=block_source,
              help="A beacon node REST API, an `era serve` server, or era files (a directory "
                   "or an s3:// prefix: their blocks are checked like any peer's); repeat "
                   "for several.")
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
@click.option("--trusted-block-root", "trusted", metavar="0x..",
              help="Before filling, check the store's newest block against the light client: "
                   "follow the sync committees from this trusted root over the --peer beacon "
                   "nodes, and walk parent roots from the verified finalized block down to "
                   "the store's (at most 8192 blocks).")
@network_options
@json_option
def backfill(db, peers, to_slot, jobs, max_rate, timeout, check_jobs, status_every, trusted,
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

    trusted_root = _root(trusted)
    with ChainStore.open(db, expected_network(network_name, config_path),
                         create=False) as store:
        light = None
        if trusted_root is not None:
            from ..errors import StoreError
            from ..lightclient.driver import verify_store_anchor

            a = store.anchor
            if a.newest_root is None:
                raise StoreError(f"{store.path}: the store has no block to check; run `era "
                                 "checkpoint-sync` first")
            light = verify_store_anchor(
                list(peers), trusted_root, store.network, a.newest_slot, a.newest_root,
                status=None if as_json else (lambda line: click.echo(line, err=True)))
            for w in light.warnings:
                click.echo(f"warning: {w}", err=True)
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
    if light is not None:
        out["light_client"] = light.to_dict()
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


@main.command("sync", short_help="Sync a store to the finalized head and publish its eras.")
@db_option
@click.option("--beacon-api", "urls", multiple=True, required=True, metavar="URL",
              callback=http_url,
              help="A beacon node REST API; repeat for several (failover, and backfill "
                   "peers).")
@click.option("--peer", "peers", multiple=True, metavar="URL|DIR", callback=block_source,
              help="An extra backfill peer (an `era serve` server, a beacon node, or era "
                   "files: a directory or s3:// prefix whose blocks are checked like any "
                   "peer's); repeatable.")
@click.option("--era-dir", metavar="DIR|URL",
              help="Era files to front-fill history from: a directory, or an era host URL "
                   "(mirrored into DB/eras first, as `era download` does).")
@click.option("--publish", "publish_dir", metavar="DIR|s3://BUCKET/PREFIX",
              type=PathOrURL(file_okay=False),
              help="Export every complete era here as it completes, with checksums.txt and "
                   "index.json; an s3:// prefix gets each era object, then the listings, "
                   "uploaded from a local copy in DB/publish (AWS_* variables).")
@click.option("--trusted-block-root", "trusted", metavar="0x..",
              help="A block root you trust (any older finalized root): the light client "
                   "follows the sync committees from it over the --beacon-api nodes; the "
                   "checkpoint must be the verified finalized block and the follow stage "
                   "stores only up to the checkpoint it verifies (re-verified as it moves). "
                   "Nodes without light-client data: the checkpoint block must have this "
                   "root, as before.")
@click.option("--once", is_flag=True,
              help="Stop (exit 0) once the store has caught up with the finalized head and "
                   "the complete eras are published; without it, follow until Ctrl-C.")
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=6.0,
              show_default=True, metavar="S",
              help="Seconds between finality polls (a node's finalized_checkpoint event "
                   "stream wakes the sync sooner).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True,
              help="Seconds per request before a server counts as stalled (12 times this "
                   "for a state download).")
@click.option("--retry-cap", type=click.FloatRange(min=0.01), default=60.0,
              show_default=True, metavar="S",
              help="Longest wait before a failing server is asked again (the wait doubles "
                   "per failure from 1 s up to this; a server is never banned for failing).")
@jobs_option(type=click.IntRange(1, 64), default=8,
             help="Parallel block downloads (forward) and 1/2 as many backfill batches.")
@click.option("--status-every", type=click.FloatRange(min=0.1), default=10.0,
              show_default=True, metavar="S", help="Seconds between status lines.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve Prometheus counters on http://127.0.0.1:PORT/metrics (0: any free "
                   "port, printed on stderr).")
@json_option
def sync(db, urls, peers, era_dir, publish_dir, trusted, once, poll_interval, timeout,
         retry_cap, jobs, status_every, metrics_port, as_json):
    """Run the stages of a synced archive, each persisted in the store so a killed run
    resumes in the stage it was in:

    \b
    1. checkpoint  as `era checkpoint-sync` (skipped when the store has an anchor);
    2. history     front-fill --era-dir, then backfill from --peer and the beacon APIs
                   down to the era files or genesis, then the era-boundary states;
    3. follow      pull forward to the finalized head and keep following it (event
                   stream where the node has one, else polling); only finalized slots;
    4. publish     with --publish, each era exported the moment it is complete.

    A node whose finalized chain no longer holds the store's blocks stops the run (exit 1,
    both roots named, nothing more written). A failing server is retried after a growing,
    capped delay; one serving wrong data is dropped. Ctrl-C: exit 130, store consistent.
    `era status --db DIR` shows the stage, lag and servers."""
    import os

    from ..store import ChainStore
    from ..sync.backfill import default_bls_processes
    from ..sync.pipeline import SyncOptions, SyncPipeline, connect, make_servers

    trusted_root = _root(trusted)
    servers = make_servers(urls, timeout=timeout, state_timeout=12 * timeout)
    existing = os.path.exists(os.path.join(db, "CURRENT"))
    store = ChainStore.open(db, create=False) if existing else None
    try:
        net = connect(servers, store.network if store else None)
        if store is None:
            store = ChainStore.open(db, net)
        local_eras = era_dir
        if era_dir and era_dir.startswith(("http://", "https://")):
            local_eras = _mirror_eras(era_dir, os.path.join(db, "eras"), net, as_json)

        def status(line):
            if not as_json or line.startswith(("sync: note:", "sync: warning:")):
                click.echo(line, err=True)

        opts = SyncOptions(peers=list(peers), era_dir=local_eras, publish_dir=publish_dir,
                           trusted_block_root=trusted_root, once=once,
                           poll_interval=poll_interval, status_every=status_every,
                           retry_cap=retry_cap, workers=jobs,
                           backfill_workers=max(1, jobs // 2),
                           bls_processes=default_bls_processes(), timeout=timeout)
        pipe = SyncPipeline(store, servers, opts, status=status)
        if metrics_port is not None:
            from dataclasses import asdict

            from ..serve.metrics import serve_sync_metrics

            def snapshot():
                now = __import__("time").monotonic()
                return {"counters": asdict(pipe.counters), "stage": pipe.stage,
                        "servers": [s.to_dict(now) for s in servers]}

            msrv = serve_sync_metrics(metrics_port, snapshot)
            click.echo(f"metrics on http://127.0.0.1:{msrv.server_port}/metrics", err=True)
        try:
            out = pipe.run()
        except KeyboardInterrupt:
            a = store.anchor
            click.echo(f"interrupted in stage {pipe.stage}: the store is consistent "
                       f"(newest slot {a.newest_slot}); rerun to resume", err=True)
            sys.exit(130)
    finally:
        if store is not None:
            store.close()
    if as_json:
        echo_json(out)
        return
    click.echo(f"synced to slot {out['newest_slot']} (finalized {out['finalized_slot']}, lag "
               f"{out['lag_slots']} slots): {out['slots']} slots, {out['blocks']} blocks, "
               f"{out['states']} states this run" +
               (f", {out['eras_published']} eras published" if publish_dir else ""))
    if out["missing_states"]:
        click.echo("no server has the states at slots "
                   f"{', '.join(map(str, out['missing_states']))}: those eras are not "
                   "exported", err=True)


def _mirror_eras(url, dest, net, as_json):
    """`--era-dir URL`: mirror the host's era files into `dest` (era download), for
    front-fill."""
    from ..download import download

    def on_event(kind, **info):
        if not as_json and kind in ("error", "gap", "done"):
            click.echo(f"era-dir: {kind}: {info}", err=True)

    download(url, dest, network=net, on_event=on_event)
    return dest
