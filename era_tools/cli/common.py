"""Options and helpers shared by the `era` commands."""

from __future__ import annotations

import json
import sys

import click

from ..config import resolve_network

network_option = click.option("--network", "network_name", metavar="NAME",
                              help="Built-in network: mainnet, sepolia, holesky, hoodi, gnosis, "
                                   "minimal.")
config_option = click.option("--config", "config_path", metavar="FILE",
                             type=click.Path(dir_okay=False),
                             help="Network config: a client config.yaml or a beacon node's "
                                  "/eth/v1/config/spec JSON.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON instead of text.")


def network_options(f):
    return network_option(config_option(f))


def pick_network(network_name, config_path, paths=(), quiet=False):
    """Resolve the network and say how it was chosen (on stderr, so --json stays clean)."""
    net, how = resolve_network(network_name, config_path, paths)
    if not quiet and not (network_name or config_path):
        click.echo(f"network: {net.name} ({how})", err=True)
    return net


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def progress_bar(total: int, desc: str, unit: str = "it", disable: bool | None = None):
    """A tqdm bar on stderr; `update(n)` is the callback library code gets."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False,
                dynamic_ncols=True, file=sys.stderr)
