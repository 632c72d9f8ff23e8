"""`era lightclient`: follow the sync committees from one trusted block root to the newest
finalized header, over untrusted beacon nodes (era_tools.lightclient)."""

from __future__ import annotations

import sys

import click

from . import main
from .common import echo_json, http_url, json_option, network_options, pick_network
from .sync import _root


@main.command("lightclient", short_help="Verify the finalized head from one trusted root.")
@click.option("--beacon-api", "urls", multiple=True, required=True, metavar="URL",
              callback=http_url,
              help="A beacon node REST API serving light-client data; repeat for several. "
                   "None is trusted: one honest node among liars is enough.")
@click.option("--trusted-block-root", "trusted", required=True, metavar="0x..",
              help="A block root you trust (a weak-subjectivity checkpoint, a finalized root "
                   "from a friend or an explorer); its bootstrap starts the sync.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True,
              help="Seconds to keep retrying servers that fail or withhold data.")
@network_options
@json_option
def lightclient(urls, trusted, timeout, network_name, config_path, as_json):
    """Sync a light client from --trusted-block-root and print the verified finalized header.

    Bootstraps from the trusted root, then checks every sync-committee update (participation,
    the committee's signature under the signature slot's fork, the next-committee and
    finality branches) up to the newest finality and optimistic updates the servers hold.
    A server that serves a wrong update is named and dropped; failing servers are retried
    with growing delays. Exit 1 when every server that answered served wrong data, 2 for bad
    input or when no server could be used."""
    from ..lightclient.driver import (LightClientServer, network_from_servers,
                                      sync_light_client)

    root = _root(trusted)
    expected = pick_network(network_name, config_path, quiet=True) if (
        network_name or config_path) else None
    servers = [LightClientServer(u) for u in urls]
    net, spec_json = network_from_servers(servers, expected)

    def status(line):
        click.echo(line, err=True)

    res = sync_light_client(servers, root, net, spec_json, timeout=timeout,
                            status=None if as_json else status)
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
    out = res.to_dict()
    if as_json:
        echo_json(out)
        return
    f, o = out["finalized"], out["optimistic"]
    click.echo(f"finalized: slot {f['slot']} root {f['root']} state_root {f['state_root']}")
    click.echo(f"optimistic: slot {o['slot']} root {o['root']}")
    click.echo(f"sync committee period {out['sync_committee_period']} (trusted root at slot "
               f"{out['trusted_slot']})")
    for s in out["servers"]:
        extra = (f": {s['dropped_for']}" if s["dropped_for"] else
                 f" (last error: {s['last_error']})" if s["last_error"] else "")
        click.echo(f"  server {s['url']}: {s['status']}, {s['verified_items']} verified "
                   f"items{extra}", file=sys.stdout)
