"""What is in an era (or era1) file: the facts `era info` prints, as a plain dict.

Reads through EraReader; hashes the state once for its root (verify.state_root, the fast
bytes path).  Knows nothing of the terminal.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from . import e2store, era1
from .config import Network
from .era import EraReader, parse_era_file_name
from .errors import ConfigError, FormatError, hex0x
from .verify import network_mismatch, state_root


def _state_root(path: str, r: EraReader, fork: str, network: Network) -> bytes:
    try:
        return state_root(r.state_ssz(), fork, network.preset_base)
    except FormatError as exc:  # the SSZ walk's message does not name the file
        raise FormatError(f"{path}: state slot {r.state_slot}: not a {fork} BeaconState of "
                          f"network {network.name!r}: {exc}") from exc


def describe(path: str, network: Network) -> dict:
    with EraReader(path) as r:
        head = r.state_head(network.slots_per_historical_root)
        wrong = network_mismatch(head, network)
        if wrong is not None:  # before decoding with that network's types
            raise ConfigError(f"{path}: {wrong}")
        expected = r.expected_name(network.config_name, head)
        parsed = parse_era_file_name(r.name)
        records: "OrderedDict[str, dict]" = OrderedDict()
        unknown = []
        for rec in r.records():
            name = e2store.type_name(rec.type)
            agg = records.setdefault(name, {"count": 0, "bytes": 0})
            agg["count"] += 1
            agg["bytes"] += rec.length + e2store.HEADER_SIZE
            if rec.type not in e2store.TYPE_NAMES:
                unknown.append({"type": hex0x(rec.type), "offset": rec.offset,
                                "length": rec.length})
        block_slots = r.block_slots()
        state_fork = network.fork_name_at_slot(r.state_slot)
        forks = sorted({network.fork_name_at_slot(s) for s in block_slots} | {state_fork},
                       key=lambda f: [x.name for x in network.forks].index(f))
        out = {
            "path": path,
            "name": r.name,
            "era": r.era,
            "expected_name": expected,
            "name_ok": r.name == expected,
            "name_era_ok": parsed is not None and parsed[1] == r.era,
            "start_slot": r.start_slot,
            "end_slot": r.end_slot,
            "blocks": len(block_slots),
            "empty_slots": len(r.empty_slots()),
            "forks": forks,
            "state_slot": r.state_slot,
            "state_fork": state_fork,
            "state_root": hex0x(_state_root(path, r, state_fork, network)),
            "genesis_validators_root": hex0x(head.genesis_validators_root),
            "file_size": r.size,
            "records": records,
            "unknown_records": unknown,
        }
        return out


def describe_era1(path: str) -> dict:
    """The facts of an era1 file from its index, records and total difficulties (no
    decompression, no hashing: `era verify` recomputes the accumulator)."""
    with era1.Era1Reader(path) as r:
        root = r.accumulator_root()
        parsed = era1.parse_era1_file_name(r.name)
        network = parsed[0] if parsed else "<network>"
        expected = era1.era1_file_name(network, r.epoch, root)
        records: "OrderedDict[str, dict]" = OrderedDict()
        for rec in r.records():
            agg = records.setdefault(e2store.type_name(rec.type), {"count": 0, "bytes": 0})
            agg["count"] += 1
            agg["bytes"] += rec.length + e2store.HEADER_SIZE
        return {
            "path": path,
            "kind": "era1",
            "name": r.name,
            "epoch": r.epoch,
            "expected_name": expected,
            "name_ok": r.name == expected,
            "start_number": r.start_number,
            "end_number": r.end_number,
            "blocks": r.count,
            "total_difficulty": [str(r.total_difficulty(0)), str(r.total_difficulty(r.count - 1))],
            "accumulator_root": hex0x(root),
            "file_size": r.size,
            "records": records,
        }


def describe_any(path: str, network: Network | None) -> dict:
    """`describe` or, for an .era1 file, `describe_era1`: one call per file (a Dask task)."""
    if os.fspath(path).endswith(".era1"):
        return describe_era1(path)
    return describe(path, network)
