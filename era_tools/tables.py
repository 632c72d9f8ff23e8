"""History as Arrow tables: era file contents as rows with the spec's field names and types.

    import era_tools
    with era_tools.open_era("mainnet-01000-xxxxxxxx.era", network) as era:
        blocks = era.to_arrow("blocks")        # a pyarrow.Table

Roots and hashes are fixed-size binary (32 bytes; pubkeys 48, signatures 96), slots, epochs,
indices and gwei are uint64.  Block tables come from each block decoded with the spec's types;
`validators` is built from the era state's fixed-size validator and balance regions with numpy
(no Python object per validator).  This module knows era files, SSZ and pyarrow (the only
pyarrow importer) and writes one era's Parquet files atomically; it does not print, parse
arguments or know about more than one era file at a time.

Dataset layout: OUT/<table>/era=<N>/<era file stem>.parquet (hive partitioning: DuckDB
`read_parquet('OUT/blocks/*/*.parquet', hive_partitioning = true)`, Polars, Spark).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pyarrow as pa

from .errors import FormatError, VerificationError


__all__ = ["TABLES", "SCHEMAS", "build_tables", "validators_table", "write_era_tables",
           "era_table_path"]

R32 = pa.binary(32)
U64 = pa.uint64()

_SCHEMA_FIELDS = {
    "blocks": [
        ("slot", U64), ("root", R32), ("parent_root", R32), ("state_root", R32),
        ("proposer_index", U64), ("graffiti", R32), ("fork", pa.string()),
        ("ssz_size", U64), ("compressed_size", U64), ("attestation_count", pa.uint32()),
        ("deposit_count", pa.uint32()),
        ("execution_block_number", U64), ("execution_block_hash", R32),
        ("execution_gas_used", U64), ("execution_gas_limit", U64),
        ("execution_base_fee_per_gas", pa.decimal128(38, 0)),  # uint256 (fits 38 digits)
        ("execution_transaction_count", pa.uint32()), ("blob_count", pa.uint32()),
    ],
    "attestations": [
        ("slot", U64), ("index_in_block", pa.uint32()), ("data_slot", U64),
        ("committee_index", U64), ("committee_bits", pa.binary()),
        ("aggregation_bits_count", pa.uint32()), ("aggregation_bits_set", pa.uint32()),
        ("beacon_block_root", R32), ("source_epoch", U64), ("source_root", R32),
        ("target_epoch", U64), ("target_root", R32), ("inclusion_delay", U64),
    ],
    "deposits": [
        ("slot", U64), ("index_in_block", pa.uint32()), ("pubkey", pa.binary(48)),
        ("withdrawal_credentials", R32), ("amount", U64), ("signature", pa.binary(96)),
    ],
    "withdrawals": [
        ("slot", U64), ("index", U64), ("validator_index", U64),
        ("address", pa.binary(20)), ("amount", U64),
    ],
    "voluntary_exits": [
        ("slot", U64), ("epoch", U64), ("validator_index", U64), ("signature", pa.binary(96)),
    ],
    "bls_to_execution_changes": [
        ("slot", U64), ("validator_index", U64), ("from_bls_pubkey", pa.binary(48)),
        ("to_execution_address", pa.binary(20)), ("signature", pa.binary(96)),
    ],
    "proposer_slashings": [
        ("slot", U64), ("proposer_index", U64), ("header_slot", U64),
        ("header_1_root", R32), ("header_2_root", R32),
    ],
    "attester_slashings": [
        ("slot", U64), ("index_in_block", pa.uint32()),
        ("attestation_1_indices", pa.list_(U64)), ("attestation_2_indices", pa.list_(U64)),
        ("slashed_indices", pa.list_(U64)),
    ],
    "sync_aggregates": [
        ("slot", U64), ("sync_committee_bits", pa.binary()), ("participants", pa.uint32()),
        ("size", pa.uint32()), ("participation", pa.float64()),
    ],
    "execution_requests": [
        ("slot", U64), ("kind", pa.string()), ("index_in_block", pa.uint32()),
        ("pubkey", pa.binary(48)), ("source_address", pa.binary(20)),
        ("withdrawal_credentials", R32), ("amount", U64), ("index", U64),
        ("source_pubkey", pa.binary(48)), ("target_pubkey", pa.binary(48)),
    ],
    "transactions": [
        ("slot", U64), ("block_number", U64), ("index", pa.uint32()), ("hash", R32),
        ("size", pa.uint32()), ("type", pa.uint8()),
    ],
    "blob_commitments": [
        ("slot", U64), ("index", pa.uint32()), ("kzg_commitment", pa.binary(48)),
    ],
    "validators": [
        ("state_slot", U64), ("index", U64), ("pubkey", pa.binary(48)),
        ("withdrawal_credentials", R32), ("effective_balance", U64), ("balance", U64),
        ("slashed", pa.bool_()), ("activation_eligibility_epoch", U64),
        ("activation_epoch", U64), ("exit_epoch", U64), ("withdrawable_epoch", U64),
    ],
}
SCHEMAS = {name: pa.schema(fields) for name, fields in _SCHEMA_FIELDS.items()}
TABLES = tuple(SCHEMAS)
BLOCK_TABLES = tuple(t for t in TABLES if t != "validators")


def check_tables(names) -> tuple:
    names = tuple(names)
    bad = [n for n in names if n not in SCHEMAS]
    if bad:
        raise ValueError(f"unknown table(s) {', '.join(bad)}; known: {', '.join(TABLES)}")
    return names


def _tx_type(tx: bytes) -> int:
    # EIP-2718: a typed envelope starts with its type byte (< 0x80); legacy RLP starts >= 0xc0
    return tx[0] if tx and tx[0] < 0x80 else 0


def _rows_of_block(slot, fork, root, signed, ssz_size, compressed_size, rows, want, keccak):
    m = signed.message
    b = m.body
    payload = getattr(b, "execution_payload", None)
    commitments = getattr(b, "blob_kzg_commitments", ())
    if "blocks" in want:
        rows["blocks"].append({
            "slot": slot, "root": root, "parent_root": m.parent_root,
            "state_root": m.state_root, "proposer_index": m.proposer_index,
            "graffiti": b.graffiti, "fork": fork, "ssz_size": ssz_size,
            "compressed_size": compressed_size, "attestation_count": len(b.attestations),
            "deposit_count": len(b.deposits),
            "execution_block_number": payload.block_number if payload else None,
            "execution_block_hash": payload.block_hash if payload else None,
            "execution_gas_used": payload.gas_used if payload else None,
            "execution_gas_limit": payload.gas_limit if payload else None,
            "execution_base_fee_per_gas": payload.base_fee_per_gas if payload else None,
            "execution_transaction_count": len(payload.transactions) if payload else None,
            "blob_count": len(commitments) if hasattr(b, "blob_kzg_commitments") else None,
        })
    if "attestations" in want:
        out = rows["attestations"]
        for i, a in enumerate(b.attestations):
            d = a.data
            cbits = getattr(a, "committee_bits", None)
            out.append({
                "slot": slot, "index_in_block": i, "data_slot": d.slot,
                "committee_index": d.index,
                "committee_bits": _pack_bits(cbits) if cbits is not None else None,
                "aggregation_bits_count": len(a.aggregation_bits),
                "aggregation_bits_set": sum(a.aggregation_bits),
                "beacon_block_root": d.beacon_block_root, "source_epoch": d.source.epoch,
                "source_root": d.source.root, "target_epoch": d.target.epoch,
                "target_root": d.target.root, "inclusion_delay": slot - d.slot,
            })
    if "deposits" in want:
        for i, dep in enumerate(b.deposits):
            d = dep.data
            rows["deposits"].append({
                "slot": slot, "index_in_block": i, "pubkey": d.pubkey,
                "withdrawal_credentials": d.withdrawal_credentials, "amount": d.amount,
                "signature": d.signature})
    if "withdrawals" in want and payload is not None and hasattr(payload, "withdrawals"):
        for w in payload.withdrawals:
            rows["withdrawals"].append({
                "slot": slot, "index": w.index, "validator_index": w.validator_index,
                "address": w.address, "amount": w.amount})
    if "voluntary_exits" in want:
        for e in b.voluntary_exits:
            rows["voluntary_exits"].append({
                "slot": slot, "epoch": e.message.epoch,
                "validator_index": e.message.validator_index, "signature": e.signature})
    if "bls_to_execution_changes" in want:
        for c in getattr(b, "bls_to_execution_changes", ()):
            rows["bls_to_execution_changes"].append({
                "slot": slot, "validator_index": c.message.validator_index,
                "from_bls_pubkey": c.message.from_bls_pubkey,
                "to_execution_address": c.message.to_execution_address,
                "signature": c.signature})
    if "proposer_slashings" in want:
        from . import ssz

        for s in b.proposer_slashings:
            h1, h2 = s.signed_header_1.message, s.signed_header_2.message
            rows["proposer_slashings"].append({
                "slot": slot, "proposer_index": h1.proposer_index, "header_slot": h1.slot,
                "header_1_root": ssz.hash_tree_root(h1), "header_2_root": ssz.hash_tree_root(h2)})
    if "attester_slashings" in want:
        for i, s in enumerate(b.attester_slashings):
            a1 = list(s.attestation_1.attesting_indices)
            a2 = list(s.attestation_2.attesting_indices)
            rows["attester_slashings"].append({
                "slot": slot, "index_in_block": i, "attestation_1_indices": a1,
                "attestation_2_indices": a2, "slashed_indices": sorted(set(a1) & set(a2))})
    if "sync_aggregates" in want and hasattr(b, "sync_aggregate"):
        bits = b.sync_aggregate.sync_committee_bits
        n = sum(bits)
        rows["sync_aggregates"].append({
            "slot": slot, "sync_committee_bits": _pack_bits(bits), "participants": n,
            "size": len(bits), "participation": n / len(bits) if len(bits) else None})
    if "execution_requests" in want and hasattr(b, "execution_requests"):
        r = b.execution_requests
        out = rows["execution_requests"]
        for i, d in enumerate(r.deposits):
            out.append({"slot": slot, "kind": "deposit", "index_in_block": i,
                        "pubkey": d.pubkey, "withdrawal_credentials": d.withdrawal_credentials,
                        "amount": d.amount, "index": d.index})
        for i, w in enumerate(r.withdrawals):
            out.append({"slot": slot, "kind": "withdrawal", "index_in_block": i,
                        "source_address": w.source_address, "pubkey": w.validator_pubkey,
                        "amount": w.amount})
        for i, c in enumerate(r.consolidations):
            out.append({"slot": slot, "kind": "consolidation", "index_in_block": i,
                        "source_address": c.source_address, "source_pubkey": c.source_pubkey,
                        "target_pubkey": c.target_pubkey})
    if "transactions" in want and payload is not None:
        for i, tx in enumerate(payload.transactions):
            tx = bytes(tx)
            rows["transactions"].append({
                "slot": slot, "block_number": payload.block_number, "index": i,
                "hash": keccak(tx), "size": len(tx), "type": _tx_type(tx)})
    if "blob_commitments" in want:
        for i, c in enumerate(commitments):
            rows["blob_commitments"].append({"slot": slot, "index": i, "kzg_commitment": c})


def _pack_bits(bits) -> bytes:
    """Bits as SSZ packs them (little-endian within a byte), without a bitlist's length bit."""
    return np.packbits(np.fromiter(bits, dtype=bool, count=len(bits)),
                       bitorder="little").tobytes()


def build_tables(reader, network, tables=BLOCK_TABLES) -> dict:
    """Arrow tables of an open EraReader's blocks (and state, for `validators`)."""
    from . import ssz
    from .era1 import keccak256

    want = set(check_tables(tables))
    rows = {t: [] for t in want if t != "validators"}
    if set(rows) == {"blocks"}:  # nothing else needs whole decoded blocks
        rows["blocks"] = _blocks_rows_fast(reader, network)
    elif rows:
        for slot, rec in reader.iter_block_records():
            framed = reader.block_framed(slot)
            data = reader.block_ssz(slot)
            fork = network.fork_name_at_slot(slot)
            where = f"{reader.path}: block at slot {slot}"
            signed = ssz.decode_block(data, fork, network.preset_base, where=where)
            root = ssz.block_root(signed)
            _rows_of_block(slot, fork, root, signed, len(data), len(framed), rows, want,
                           keccak256)
    out = {t: pa.Table.from_pylist(r, schema=SCHEMAS[t]) for t, r in rows.items()}
    if "validators" in want:
        out["validators"] = validators_table(reader, network)
    return {t: out[t] for t in tables}


def _fixed_binary(arr: np.ndarray, width: int) -> pa.Array:
    buf = np.ascontiguousarray(arr).reshape(-1)
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(arr),
                                                [None, pa.py_buffer(buf)])


def validators_table(reader, network) -> pa.Table:
    """One row per validator of the era's state, straight from its fixed-size regions."""
    from .ssz.view import StateView

    fork = network.fork_name_at_slot(reader.state_slot)
    view = StateView(reader.state_ssz(), fork, network.preset_base)
    v = view.validators
    n = len(v)
    balances = view.balances
    if len(balances) != n:
        raise FormatError(f"{reader.path}: state at slot {reader.state_slot} has {n} validators "
                          f"but {len(balances)} balances")
    cols = {
        "state_slot": pa.array(np.full(n, reader.state_slot, dtype=np.uint64)),
        "index": pa.array(np.arange(n, dtype=np.uint64)),
        "pubkey": _fixed_binary(v["pubkey"], 48),
        "withdrawal_credentials": _fixed_binary(v["withdrawal_credentials"], 32),
        "effective_balance": pa.array(np.ascontiguousarray(v["effective_balance"])),
        "balance": pa.array(np.ascontiguousarray(balances)),
        "slashed": pa.array(np.ascontiguousarray(v["slashed"])),
    }
    for f in ("activation_eligibility_epoch", "activation_epoch", "exit_epoch",
              "withdrawable_epoch"):
        cols[f] = pa.array(np.ascontiguousarray(v[f]))
    return pa.Table.from_pydict(cols, schema=SCHEMAS["validators"])


def era_table_path(out_dir, table: str, era: int, era_path) -> str:
    stem = os.path.splitext(os.path.basename(os.fspath(era_path)))[0]
    return os.path.join(os.fspath(out_dir), table, f"era={era}", f"{stem}.parquet")


def write_era_tables(era_path, network, out_dir, tables=TABLES, verify: bool = True) -> dict:
    """Write `tables` of one era file under `out_dir`; the tables already there are skipped.

    With `verify` the file is first checked at the `roots` level (era_tools.verify) and a
    failure raises VerificationError before anything is written.  Each Parquet file is
    written under a temporary name and renamed into place, so a killed run leaves only
    whole files, and a rerun writes what is missing.  Returns {"era", "path", "written":
    {table: rows}, "skipped": [tables], "bytes"}."""
    import pyarrow.parquet as pq

    from .era import EraReader

    tables = check_tables(tables)
    with EraReader(era_path) as reader:
        era = reader.era
        targets = {t: era_table_path(out_dir, t, era, era_path) for t in tables}
        todo = tuple(t for t in tables if not os.path.exists(targets[t]))
        result = {"era": era, "path": os.fspath(era_path), "written": {},
                  "skipped": [t for t in tables if t not in todo], "bytes": 0}
        if not todo:
            return result
        if verify:
            from .verify import verify_file

            report = verify_file(era_path, network, "roots")
            if not report.ok:
                f = report.first_failure()
                raise VerificationError(f"{era_path}: fails verification at the roots level "
                                        f"({f.check}: {f.message}); no tables written")
        built = build_tables(reader, network, todo)
    for t, table in built.items():
        dest = targets[t]
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = f"{dest}.tmp-{os.getpid()}"
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        result["written"][t] = table.num_rows
        result["bytes"] += os.path.getsize(dest)
    return result


def _u(b) -> int:
    return int.from_bytes(b, "little")


def _list_count(mv, elem_size: int | None) -> int:
    """Elements of a serialized SSZ list: fixed-size elements by length, else by offset table
    (the offsets were checked by container_field_ranges' caller walk or are checked here)."""
    if elem_size:
        return len(mv) // elem_size
    if len(mv) == 0:
        return 0
    first = _u(mv[:4])
    if first % 4 or first > len(mv) or first == 0:
        raise FormatError(f"list offset table of {first} bytes in {len(mv)} bytes")
    return first // 4


def _blocks_rows_fast(reader, network) -> list[dict]:
    """The blocks table from the block bytes: field ranges from the checked offset tables and
    the root from the bytes (era_tools.ssz.fast), without decoding whole blocks."""
    from .ssz import types_for
    from .ssz.fast import compile_sedes, container_field_ranges, hash_tree_root_bytes

    rows = []
    for slot, _rec in reader.iter_block_records():
        framed = reader.block_framed(slot)
        data = memoryview(reader.block_ssz(slot))
        fork = network.fork_name_at_slot(slot)
        t = types_for(fork, network.preset_base)
        try:
            a, b = container_field_ranges(t.SignedBeaconBlock, data)["message"]
            msg = data[a:b]
            root = hash_tree_root_bytes(t.BeaconBlock, msg)  # walks and checks every field
            m = container_field_ranges(t.BeaconBlock, msg)
            body = msg[slice(*m["body"])]
            f = container_field_ranges(t.BeaconBlockBody, body)
        except FormatError as exc:
            raise FormatError(f"{reader.path}: block at slot {slot}: {exc}") from None
        part = {k: body[slice(*v)] for k, v in f.items()}
        deposit_size = compile_sedes(t.Deposit).size
        row = {
            "slot": _u(msg[slice(*m["slot"])]), "root": root,
            "parent_root": bytes(msg[slice(*m["parent_root"])]),
            "state_root": bytes(msg[slice(*m["state_root"])]),
            "proposer_index": _u(msg[slice(*m["proposer_index"])]),
            "graffiti": bytes(part["graffiti"]), "fork": fork, "ssz_size": len(data),
            "compressed_size": len(framed),
            "attestation_count": _list_count(part["attestations"], None),
            "deposit_count": _list_count(part["deposits"], deposit_size),
            "blob_count": (len(part["blob_kzg_commitments"]) // 48
                           if "blob_kzg_commitments" in part else None),
        }
        if "execution_payload" in part:
            pay = part["execution_payload"]
            p = container_field_ranges(t.ExecutionPayload, pay)
            row.update({
                "execution_block_number": _u(pay[slice(*p["block_number"])]),
                "execution_block_hash": bytes(pay[slice(*p["block_hash"])]),
                "execution_gas_used": _u(pay[slice(*p["gas_used"])]),
                "execution_gas_limit": _u(pay[slice(*p["gas_limit"])]),
                "execution_base_fee_per_gas": _u(pay[slice(*p["base_fee_per_gas"])]),
                "execution_transaction_count": _list_count(pay[slice(*p["transactions"])],
                                                           None),
            })
        rows.append(row)
    return rows
