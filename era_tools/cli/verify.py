"""`era verify`: check era files by level (structure < roots < signatures < chain)."""

from __future__ import annotations

import os

import click

from . import main
from .common import (PathOrURL, bytes_progress, dask_address, echo_json, http_url,
                     json_option, network_options, pick_network, progress_bar)
from ..errors import ConfigError, FormatError, VerificationError, hex0x

# era_tools.verify.LEVELS, spelled out so that `era verify --help` does not import the verifier
# (numpy, py-ssz); tests/test_cli_help.py checks that the two agree.
LEVELS = ("structure", "roots", "signatures", "chain")


def _parse_root(value: str | None, option: str = "--trusted-root") -> bytes | None:
    if value is None:
        return None
    h = value[2:] if value.lower().startswith("0x") else value
    try:
        b = bytes.fromhex(h)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise click.BadParameter(f"{value!r} is not a 32-byte hex root", param_hint=option)
    return b


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


# The largest --trusted-state read from a bucket (a mainnet state is ~0.3 GB in 2026).
MAX_TRUSTED_STATE = 2 << 30


def load_trusted(source: str, net, expected_root: bytes | None, quiet: bool):
    """--trusted-state: an SSZ file, an s3://bucket/key object, or a beacon node URL whose
    finalized state is fetched."""
    from ..verify import load_trusted_state

    if is_url(source):
        from ..sync.checkpoint import trusted_state_from_node

        try:
            http_url(None, None, source)
        except click.BadParameter as exc:
            raise click.BadParameter(exc.message, param_hint="--trusted-state") from None

        with bytes_progress("trusted state", disable=True if quiet else None) as prog:
            return trusted_state_from_node(source, net, expected_root=expected_root,
                                           progress=prog)
    if source.startswith("s3://"):
        from .. import objstore

        data = objstore.get_bytes(source, max_size=MAX_TRUSTED_STATE)
    elif not os.path.isfile(source):
        raise click.BadParameter(f"{source!r}: no such file (give an SSZ BeaconState file, "
                                 "an s3://bucket/key object or a beacon node's http(s):// URL)",
                                 param_hint="--trusted-state")
    else:
        with open(source, "rb") as f:
            data = f.read()
    t = load_trusted_state(data, net, where=source)
    if expected_root is not None and t.root != expected_root:
        raise VerificationError(f"{source}: state (slot {t.slot}) root {hex0x(t.root)} is not "
                                f"the expected {hex0x(expected_root)}")
    return t


def light_client_trusted(urls, block_root: bytes, net, timeout: float, quiet: bool):
    """--trusted-block-root with --beacon-api: the light client from `block_root` over the
    nodes, then the finalized checkpoint state proven to belong to the verified block
    (lightclient.driver.verified_checkpoint_state) as the trusted state."""
    import dataclasses

    from .. import ssz
    from ..lightclient.driver import verified_checkpoint_state
    from ..verify import load_trusted_state

    def status(line):
        click.echo(line, err=True)

    header, slot, data = verified_checkpoint_state(
        list(urls), block_root, net, status=None if quiet else status, timeout=timeout,
        warn=lambda w: click.echo(f"warning: {w}", err=True))
    # A state at its block's slot: verified_checkpoint_state hashed it, and the verified
    # header carries that root (the state's latest_block_header, its state root filled in,
    # hashed to the header's root), so it is not hashed a second time here.
    same_slot = int(header.beacon.slot) == slot
    t = load_trusted_state(data, net, where=f"light-client checkpoint state at slot {slot}",
                           with_root=not same_slot)
    if same_slot:
        t = dataclasses.replace(t, root=bytes(header.beacon.state_root))
    source = (f"light client from trusted block root {hex0x(block_root)}, finalized block "
              f"{hex0x(ssz.hash_tree_root(header.beacon))} at slot {int(header.beacon.slot)}")
    return dataclasses.replace(t, source=source)


def anchor_line(a: dict) -> str:
    """What anchored the chain level, in words (the report's `anchor`)."""
    kind = a["kind"]
    if kind == "state_root":
        return (f"state root {a['root']} of era {a['era']} (slot {a['slot']}) matched")
    if kind == "block_root":
        tail = (f"; through the block at slot {a['state_slot']} it anchors the era "
                f"{a['state_era']} state" if "state_era" in a else "")
        return f"block root {a['root']} at slot {a['slot']} matched{tail}"
    if kind == "trusted_state":
        how = ", matched --trusted-root" if a.get("root_matched") else ""
        got = "matched" if a["matched"] else "did not match"
        src = f", from the {a['source']}" if a.get("source") else ""
        return (f"trusted state at slot {a['slot']} (state root {a['root']}{how}{src}): its "
                f"historical roots {got}")
    return f"trusted root {a['root']} matched nothing in these files"


@main.command(short_help="Verify era and era1 files, level by level.")
@click.argument("paths", nargs=-1, required=True, type=PathOrURL(exists=True))
@click.option("--level", type=click.Choice(LEVELS), default="signatures", show_default=True,
              help="How far to check; each level includes the ones before it.")
@click.option("--trusted-root", metavar="0xROOT",
              help="Anchors --level chain: the newest era state's root, the root of a "
                   "block in the files (e.g. a finalized block root), or the root of "
                   "--trusted-state.  Eras it does not reach are reported as unanchored.")
@click.option("--trusted-state", metavar="FILE|URL",
              help="Trusted BeaconState: an SSZ file, an s3://bucket/key object, or a beacon "
                   "node URL (http://HOST:PORT) whose finalized state is fetched.  Each era is "
                   "checked on its own against the state's historical_roots / "
                   "historical_summaries (its era root and its file name); eras past the state "
                   "are reported unanchored.")
@click.option("--trusted-state-root", metavar="0xROOT",
              help="The state root --trusted-state must have (e.g. one a light client "
                   "verified); another root exits 1.  Without it the file or node is trusted.")
@click.option("--trusted-block-root", "trusted_block", metavar="0xROOT",
              help="With --beacon-api: a block root you trust (a weak-subjectivity "
                   "checkpoint); a light client follows the sync committees from it to the "
                   "nodes' finalized checkpoint, whose state (proven to belong to the "
                   "verified block) is the trusted state.")
@click.option("--beacon-api", "beacon_apis", multiple=True, metavar="URL", callback=http_url,
              help="A beacon node serving light-client data and states, for "
                   "--trusted-block-root; repeat for several (one honest node is enough).")
@click.option("--light-client-timeout", "lc_timeout",
              type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True,
              help="Seconds the light client keeps retrying nodes that fail or withhold data.")
@click.option("--jobs", "-j", type=click.IntRange(1, 256), default=None,
              help="Processes to verify files in parallel [default: all cores].")
@click.option("--dask", "dask_scheduler", metavar="tcp://HOST:PORT", callback=dask_address,
              help="Verify each file on a worker of this Dask scheduler (pip install "
                   "'era_tools[dask]'); workers read the files from the same paths.  The report, "
                   "--json and exit status are those of a local run.")
@json_option
@network_options
def verify(paths, level, trusted_root, trusted_state, trusted_state_root, trusted_block,
           beacon_apis, lc_timeout, jobs, dask_scheduler, as_json, network_name, config_path):
    """Verify era files (files, directories or s3://bucket/prefix URLs; .era1 files too, up
    to the roots level).

    Exit status: 0 all good (eras no anchor reaches are listed as unanchored, not failed),
    1 a verification failure (a malformed or truncated file is one, whatever the network),
    2 a usage or I/O error (also an unreachable Dask scheduler or beacon node).
    With --trusted-block-root, a node that serves light-client data or a state that fails
    verification (when no node serves good data) exits 1, naming it; no usable node exits 2.
    """
    from ..verify import archive_files_in, count_blocks, is_era1, verify_archive

    root = _parse_root(trusted_root)
    state_root = _parse_root(trusted_state_root, "--trusted-state-root")
    if state_root is not None and not trusted_state:
        raise click.UsageError("--trusted-state-root needs --trusted-state")
    block_root = _parse_root(trusted_block, "--trusted-block-root")
    if (block_root is None) != (not beacon_apis):
        raise click.UsageError("--trusted-block-root and --beacon-api go together")
    if block_root is not None and trusted_state:
        raise click.UsageError("--trusted-block-root replaces --trusted-state: give one")
    files = archive_files_in(paths)
    if not files:
        raise click.UsageError("no .era or .era1 files found in the given paths")
    eras = [f for f in files if not is_era1(f)]
    net = None
    if eras:
        try:
            net = pick_network(network_name, config_path, [p for p in paths if not is_era1(p)])
        except FormatError:  # no era file reads, so none names its network: each fails
            if root or trusted_state or block_root:
                raise
            net = None
    elif root or trusted_state or block_root:
        raise ConfigError("--trusted-root/--trusted-state anchor consensus-layer .era files; "
                          "only .era1 files were given")
    if (root or trusted_state) and level != "chain":
        raise ConfigError("--trusted-root/--trusted-state anchor the chain level: add "
                          "--level chain")
    if block_root is not None and level != "chain":
        raise ConfigError("--trusted-block-root anchors the chain level: add --level chain")
    trusted = None
    if trusted_state:
        trusted = load_trusted(trusted_state, net, state_root, as_json)
    elif block_root is not None:
        trusted = light_client_trusted(beacon_apis, block_root, net, lc_timeout, as_json)
    total = count_blocks(files)
    with progress_bar(total, "verifying", unit="blk",
                      disable=True if as_json and not os.isatty(2) else None) as bar:
        report = verify_archive(files, net, level, trusted_root=root, trusted_state=trusted,
                                jobs=jobs, progress=bar.update, dask=dask_scheduler)
    if as_json:
        echo_json(report.to_dict())
    else:
        anchoring = (root is not None or trusted is not None) and not (
            report.anchor and report.anchor["kind"] == "none")
        for f in report.files:  # an era no anchor reaches says so on its own line
            click.echo(f.line() + (" (unanchored)" if anchoring and f.ok and f.anchored is False
                                   else ""))
        for fail in report.failures:
            click.echo(f"archive: FAIL {fail.level}: {fail.message}")
        for note in report.notes:
            click.echo(f"note: {note}")
        for f in report.files:
            for note in f.notes:
                click.echo(f"note: {f.path}: {note}")
        d = report.to_dict()["summary"]
        status = "OK" if report.ok else "FAILED"
        anchored = anchoring  # a failed anchor says so
        click.echo(f"{status}: {d['files']} files, {d['blocks']} blocks checked at level "
                   f"{level} on {report.network}: {d['ok']} ok, {d['failed']} failed"
                   + (f", {len(report.failures)} archive failures" if report.failures else "")
                   + (f", {len(report.unanchored)} unanchored"
                      if anchored and report.unanchored else ""))
        if trusted is not None and trusted.root is not None:
            click.echo(f"trusted state: slot {trusted.slot}, root {hex0x(trusted.root)}, "
                       f"covers eras 1..{trusted.covered_eras}"
                       + (f" ({trusted.source})" if trusted.source else ""))
        if report.anchor is not None:
            click.echo(f"anchor: {anchor_line(report.anchor)}")
    if not report.ok:
        click.get_current_context().exit(1)
