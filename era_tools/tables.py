"""History as Arrow tables: era file contents as rows with the spec's field names and types.

    import era_tools
    with era_tools.open_era("mainnet-01000-xxxxxxxx.era", network) as era:
        blocks = era.to_arrow("blocks")        # a pyarrow.Table

Roots and hashes are fixed-size binary (32 bytes; pubkeys 48, signatures 96), slots, epochs,
indices and gwei are uint64.  Block tables are read from the block bytes, batch by batch, each
field across all blocks of a batch at once (era_tools.ssz.bulk: numpy over one buffer, every
offset and length checked), never decoded into objects; `validators` is built from the era
state's fixed-size validator and balance regions with numpy (no Python object per validator).  This module knows era files, SSZ and pyarrow (the only
pyarrow importer) and writes one era's Parquet files atomically; it does not print, parse
arguments or know about more than one era file at a time.

Dataset layout: OUT/<table>/era=<N>/<era file stem>.parquet (hive partitioning: DuckDB
`read_parquet('OUT/blocks/*/*.parquet', hive_partitioning = true)`, Polars, Spark); OUT is a
directory or an s3://bucket/prefix (objects put whole through era_tools.objstore).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pyarrow as pa

from .errors import EraToolsError, FormatError, VerificationError


__all__ = ["TABLES", "SCHEMAS", "STATUSES", "build_tables", "validators_table",
           "validator_status", "write_era_tables", "era_table_path"]

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
        ("status", pa.string()),  # the Beacon API's validator status at the state's epoch
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


# --- block tables: every block of the era read from its bytes in bulk ------------------------

CHUNK_BYTES = 64 << 20  # decompressed block SSZ per batch: bounds memory whatever the era holds
_U8 = np.uint8


def _block_batches(reader):
    """Consecutive blocks decompressed into one numpy buffer per batch: (buf, index slots,
    starts, ends, compressed sizes).  Each block's framing is walked (and its size bounded)
    before its bytes are inflated straight into its place in the buffer."""
    from . import framing

    slots, framed, sizes = [], [], []
    total = 0
    spare = [np.empty(0, dtype=_U8)]  # one buffer reused by every batch it fits (page faults)
    for slot, data in reader.iter_blocks_framed():
        where = f"{reader.path}: block at slot {slot}"
        n = framing.uncompressed_length(data, where)
        if n > reader.max_payload:
            raise FormatError(f"{where}: decompressed size {n} exceeds the limit "
                              f"{reader.max_payload}")
        slots.append(slot)
        framed.append(data)
        sizes.append(n)
        total += n
        if total >= CHUNK_BYTES:
            yield _inflate(reader, slots, framed, sizes, spare)
            slots, framed, sizes, total = [], [], [], 0
    if slots:
        yield _inflate(reader, slots, framed, sizes, spare)


def _inflate(reader, slots, framed, sizes, spare):
    """One batch into `spare[0]` (grown when too small).  The tables copy what they take out
    of it (gathers), so the next batch can overwrite it."""
    from . import framing

    ends = np.cumsum(np.array(sizes, dtype=np.int64))
    starts = ends - np.array(sizes, dtype=np.int64)
    if len(spare[0]) < int(ends[-1]):
        spare[0] = np.empty(int(ends[-1]), dtype=_U8)
    buf = spare[0][:int(ends[-1])]
    mv = memoryview(buf)
    for slot, data, s, e in zip(slots, framed, starts.tolist(), ends.tolist()):
        framing.decompress_into(data, mv[s:e], f"{reader.path}: block at slot {slot}")
    return (buf, np.array(slots, dtype=np.uint64), starts, ends,
            np.array([len(f) for f in framed], dtype=np.uint64))


def _fixed_binary(arr: np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    arr = np.ascontiguousarray(arr, dtype=_U8)
    n = len(arr)
    bitmap = None
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n,
                                                [bitmap, pa.py_buffer(arr.reshape(-1))])


_DEC38 = 10**38


def _uint256_decimal(b: np.ndarray, where) -> pa.Array:
    """uint256 little-endian values (n, 32) as decimal128(38, 0): the low 16 bytes are the
    decimal's two's-complement integer as they are, once the value is known to be < 10**38."""
    lo = np.ascontiguousarray(b[:, :16])
    w = lo.view("<u8").reshape(-1, 2)
    hi_h, hi_l = _DEC38 >> 64, _DEC38 & (2**64 - 1)
    big = b[:, 16:].any(axis=1) | (w[:, 1] > hi_h) | ((w[:, 1] == hi_h) & (w[:, 0] >= hi_l))
    if big.any():
        i = int(np.flatnonzero(big)[0])
        raise FormatError(f"{where(i)}: execution base_fee_per_gas "
                          f"{int.from_bytes(b[i].tobytes(), 'little')} does not fit the table's "
                          "decimal128(38)")
    return pa.Array.from_buffers(pa.decimal128(38, 0), len(b), [None, pa.py_buffer(lo)])


def _arrow(x, typ, valid=None) -> pa.Array:
    if isinstance(x, pa.Array):
        return x
    if pa.types.is_fixed_size_binary(typ):
        return _fixed_binary(x, typ.byte_width, valid)
    x = np.asarray(x)
    mask = None if valid is None or valid.all() else ~valid
    return pa.array(x.astype(typ.to_pandas_dtype(), copy=False), type=typ, mask=mask)


def _batch(table: str, n: int, cols: dict) -> pa.Table:
    """A table of n rows: the given columns (numpy, (array, valid) pairs or Arrow arrays),
    nulls for the schema's other columns."""
    schema = SCHEMAS[table]
    arrays = []
    for f in schema:
        v = cols.get(f.name)
        if v is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(v, tuple):
            arrays.append(_arrow(v[0], f.type, v[1]))
        else:
            arrays.append(_arrow(v, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class _Blocks:
    """One fork's run of blocks inside a batch, read from the bytes with era_tools.ssz.bulk."""

    def __init__(self, path, t, fork, buf, slots, starts, ends, csizes):
        from .ssz import bulk

        self.t, self.fork, self.buf = t, fork, buf
        self.index_slots, self.csizes = slots, csizes
        self.where = lambda k: f"{path}: block at slot {int(slots[k])}"
        self.blocks = bulk.Values.whole(buf, starts, ends, t.SignedBeaconBlock)
        sb = bulk.fields(self.blocks, self.where)
        self.message = sb["message"]
        self.m = bulk.fields(self.message, self.where)
        self.body = bulk.fields(self.m["body"], self.where)
        self.slot = bulk.uints(self.m["slot"])
        self.n = len(self.blocks)
        self._cache: dict = {}

    def f(self, vals):
        from .ssz import bulk

        return bulk.fields(vals, self.where)

    def elements(self, key: str, vals):
        """(elements, count per parent) of a list field, computed once per key."""
        from .ssz import bulk

        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = bulk.elements(vals, self.where)
        return hit

    @property
    def payload(self):
        if "payload" not in self._cache:
            pay = self.body.get("execution_payload")
            self._cache["payload"] = None if pay is None else self.f(pay)
        return self._cache["payload"]


def _rows_blocks(b: _Blocks, roots) -> pa.Table:
    from .ssz.bulk import raw, uints

    m, body = b.m, b.body
    cols = {
        "slot": b.slot, "root": roots, "parent_root": raw(m["parent_root"], 32),
        "state_root": raw(m["state_root"], 32), "proposer_index": uints(m["proposer_index"]),
        "graffiti": raw(body["graffiti"], 32), "fork": pa.array([b.fork] * b.n, pa.string()),
        "ssz_size": b.blocks.size, "compressed_size": b.csizes,
        "attestation_count": b.elements("attestations", body["attestations"])[1],
        "deposit_count": b.elements("deposits", body["deposits"])[1],
    }
    p = b.payload
    if p is not None:
        cols.update({
            "execution_block_number": uints(p["block_number"]),
            "execution_block_hash": raw(p["block_hash"], 32),
            "execution_gas_used": uints(p["gas_used"]),
            "execution_gas_limit": uints(p["gas_limit"]),
            "execution_base_fee_per_gas": _uint256_decimal(raw(p["base_fee_per_gas"], 32),
                                                           b.where),
            "execution_transaction_count": b.elements("transactions", p["transactions"])[1],
        })
    if "blob_kzg_commitments" in body:
        cols["blob_count"] = b.elements("blobs", body["blob_kzg_commitments"])[1]
    return _batch("blocks", b.n, cols)


def _rows_attestations(b: _Blocks) -> pa.Table:
    from .ssz.bulk import bitlist_summary, raw, uints

    atts, _ = b.elements("attestations", b.body["attestations"])
    af = b.f(atts)
    d = b.f(af["data"])
    src, tgt = b.f(d["source"]), b.f(d["target"])
    nbits, nset = bitlist_summary(af["aggregation_bits"], b.where)
    slot = b.slot[atts.owner]
    data_slot = uints(d["slot"])
    cols = {
        "slot": slot, "index_in_block": atts.index, "data_slot": data_slot,
        "committee_index": uints(d["index"]), "aggregation_bits_count": nbits,
        "aggregation_bits_set": nset, "beacon_block_root": raw(d["beacon_block_root"], 32),
        "source_epoch": uints(src["epoch"]), "source_root": raw(src["root"], 32),
        "target_epoch": uints(tgt["epoch"]), "target_root": raw(tgt["root"], 32),
        # a block never includes a later slot's attestation; null rather than wrap around
        "inclusion_delay": (slot - np.minimum(data_slot, slot), data_slot <= slot),
    }
    if "committee_bits" in af:
        cb = af["committee_bits"]
        width = cb.node.size
        cols["committee_bits"] = _fixed_binary(raw(cb, width), width).cast(pa.binary())
    return _batch("attestations", len(atts), cols)


def _rows_deposits(b: _Blocks) -> pa.Table:
    from .ssz.bulk import raw, uints

    deps, _ = b.elements("deposits", b.body["deposits"])
    d = b.f(b.f(deps)["data"])
    return _batch("deposits", len(deps), {
        "slot": b.slot[deps.owner], "index_in_block": deps.index, "pubkey": raw(d["pubkey"], 48),
        "withdrawal_credentials": raw(d["withdrawal_credentials"], 32),
        "amount": uints(d["amount"]), "signature": raw(d["signature"], 96)})


def _rows_withdrawals(b: _Blocks) -> pa.Table | None:
    from .ssz.bulk import raw, uints

    p = b.payload
    if p is None or "withdrawals" not in p:
        return None
    ws, _ = b.elements("withdrawals", p["withdrawals"])
    w = b.f(ws)
    return _batch("withdrawals", len(ws), {
        "slot": b.slot[ws.owner], "index": uints(w["index"]),
        "validator_index": uints(w["validator_index"]), "address": raw(w["address"], 20),
        "amount": uints(w["amount"])})


def _rows_voluntary_exits(b: _Blocks) -> pa.Table:
    from .ssz.bulk import raw, uints

    ex, _ = b.elements("voluntary_exits", b.body["voluntary_exits"])
    e = b.f(ex)
    msg = b.f(e["message"])
    return _batch("voluntary_exits", len(ex), {
        "slot": b.slot[ex.owner], "epoch": uints(msg["epoch"]),
        "validator_index": uints(msg["validator_index"]), "signature": raw(e["signature"], 96)})


def _rows_bls_to_execution_changes(b: _Blocks) -> pa.Table | None:
    from .ssz.bulk import raw, uints

    if "bls_to_execution_changes" not in b.body:
        return None
    ch, _ = b.elements("bls", b.body["bls_to_execution_changes"])
    c = b.f(ch)
    msg = b.f(c["message"])
    return _batch("bls_to_execution_changes", len(ch), {
        "slot": b.slot[ch.owner], "validator_index": uints(msg["validator_index"]),
        "from_bls_pubkey": raw(msg["from_bls_pubkey"], 48),
        "to_execution_address": raw(msg["to_execution_address"], 20),
        "signature": raw(c["signature"], 96)})


def _rows_proposer_slashings(b: _Blocks) -> pa.Table:
    from .ssz.bulk import raw, uints
    from .ssz.fast import roots_fixed

    ps, _ = b.elements("proposer_slashings", b.body["proposer_slashings"])
    s = b.f(ps)
    h1 = b.f(s["signed_header_1"])["message"]
    h2 = b.f(s["signed_header_2"])["message"]
    m1 = b.f(h1)
    size = h1.node.size
    return _batch("proposer_slashings", len(ps), {
        "slot": b.slot[ps.owner], "proposer_index": uints(m1["proposer_index"]),
        "header_slot": uints(m1["slot"]),
        "header_1_root": roots_fixed(h1.node, raw(h1, size), h1.path),
        "header_2_root": roots_fixed(h2.node, raw(h2, size), h2.path)})


def _rows_attester_slashings(b: _Blocks) -> pa.Table:
    from .ssz.bulk import uint_lists

    sl, _ = b.elements("attester_slashings", b.body["attester_slashings"])
    s = b.f(sl)
    a1, c1 = uint_lists(b.f(s["attestation_1"])["attesting_indices"], b.where)
    a2, c2 = uint_lists(b.f(s["attestation_2"])["attesting_indices"], b.where)
    o1 = np.concatenate([[0], np.cumsum(c1)])
    o2 = np.concatenate([[0], np.cumsum(c2)])
    both = [np.intersect1d(a1[o1[i]:o1[i + 1]], a2[o2[i]:o2[i + 1]])  # few rows: rare
            for i in range(len(sl))]
    o3 = np.concatenate([[0], np.cumsum([len(x) for x in both])])
    values = np.concatenate(both) if both else np.zeros(0, dtype=np.uint64)

    def lists(offsets, vals):
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                        pa.array(vals.astype(np.uint64)))
    return _batch("attester_slashings", len(sl), {
        "slot": b.slot[sl.owner], "index_in_block": sl.index,
        "attestation_1_indices": lists(o1, a1), "attestation_2_indices": lists(o2, a2),
        "slashed_indices": lists(o3, values)})


def _rows_sync_aggregates(b: _Blocks) -> pa.Table | None:
    from .ssz.bulk import popcount, raw

    if "sync_aggregate" not in b.body:
        return None
    bits = b.f(b.body["sync_aggregate"])["sync_committee_bits"]
    size = bits.node.length
    n = popcount(bits)
    return _batch("sync_aggregates", b.n, {
        "slot": b.slot, "sync_committee_bits": _fixed_binary(raw(bits, bits.node.size),
                                                             bits.node.size).cast(pa.binary()),
        "participants": n, "size": np.full(b.n, size), "participation": n / size})


def _rows_execution_requests(b: _Blocks) -> pa.Table | None:
    from .ssz.bulk import raw, uints

    if "execution_requests" not in b.body:
        return None
    r = b.f(b.body["execution_requests"])
    parts = []
    dep, _ = b.elements("req_deposits", r["deposits"])
    d = b.f(dep)
    parts.append((dep, _batch("execution_requests", len(dep), {
        "slot": b.slot[dep.owner], "kind": pa.array(["deposit"] * len(dep), pa.string()),
        "index_in_block": dep.index, "pubkey": raw(d["pubkey"], 48),
        "withdrawal_credentials": raw(d["withdrawal_credentials"], 32),
        "amount": uints(d["amount"]), "index": uints(d["index"])})))
    wd, _ = b.elements("req_withdrawals", r["withdrawals"])
    w = b.f(wd)
    parts.append((wd, _batch("execution_requests", len(wd), {
        "slot": b.slot[wd.owner], "kind": pa.array(["withdrawal"] * len(wd), pa.string()),
        "index_in_block": wd.index, "source_address": raw(w["source_address"], 20),
        "pubkey": raw(w["validator_pubkey"], 48), "amount": uints(w["amount"])})))
    co, _ = b.elements("req_consolidations", r["consolidations"])
    c = b.f(co)
    parts.append((co, _batch("execution_requests", len(co), {
        "slot": b.slot[co.owner], "kind": pa.array(["consolidation"] * len(co), pa.string()),
        "index_in_block": co.index, "source_address": raw(c["source_address"], 20),
        "source_pubkey": raw(c["source_pubkey"], 48),
        "target_pubkey": raw(c["target_pubkey"], 48)})))
    table = pa.concat_tables([t for _, t in parts])
    order = np.argsort(np.concatenate([v.owner for v, _ in parts]), kind="stable")
    return table.take(pa.array(order))  # each block's deposits, withdrawals, consolidations


def _rows_transactions(b: _Blocks) -> pa.Table | None:
    from .era1 import keccak256_many
    from .ssz.bulk import uints

    p = b.payload
    if p is None:
        return None
    tx, _ = b.elements("transactions", p["transactions"])
    size = tx.size
    hashes = np.frombuffer(keccak256_many(b.buf, tx.start, tx.end), dtype=_U8).reshape(-1, 32)
    nonempty = size > 0
    first = np.zeros(len(tx), dtype=np.int64)
    first[nonempty] = b.buf[tx.start[nonempty]]
    # EIP-2718: a typed envelope starts with its type byte (< 0x80); legacy RLP with >= 0xc0
    return _batch("transactions", len(tx), {
        "slot": b.slot[tx.owner], "block_number": uints(p["block_number"])[tx.owner],
        "index": tx.index, "hash": hashes, "size": size,
        "type": (np.where(first < 0x80, first, 0), nonempty)})


def _rows_blob_commitments(b: _Blocks) -> pa.Table | None:
    from .ssz.bulk import raw

    if "blob_kzg_commitments" not in b.body:
        return None
    cs, _ = b.elements("blobs", b.body["blob_kzg_commitments"])
    return _batch("blob_commitments", len(cs), {
        "slot": b.slot[cs.owner], "index": cs.index, "kzg_commitment": raw(cs, 48)})


_ROWS = {
    "attestations": _rows_attestations, "deposits": _rows_deposits,
    "withdrawals": _rows_withdrawals, "voluntary_exits": _rows_voluntary_exits,
    "bls_to_execution_changes": _rows_bls_to_execution_changes,
    "proposer_slashings": _rows_proposer_slashings,
    "attester_slashings": _rows_attester_slashings, "sync_aggregates": _rows_sync_aggregates,
    "execution_requests": _rows_execution_requests, "transactions": _rows_transactions,
    "blob_commitments": _rows_blob_commitments,
}


def _hashed_roots(b: _Blocks) -> np.ndarray:
    """hash_tree_root of every block message from its bytes (walks and checks every field)."""
    from .ssz.fast import hash_tree_root_bytes

    msg = b.message
    buf = b.buf
    t = b.t.BeaconBlock
    out = []
    for k, (s, e) in enumerate(zip(msg.start.tolist(), msg.end.tolist())):
        try:
            out.append(hash_tree_root_bytes(t, buf[s:e]))
        except FormatError as exc:
            raise FormatError(f"{b.where(k)}: {exc}") from None
    return np.frombuffer(b"".join(out), dtype=_U8).reshape(-1, 32)


def build_tables(reader, network, tables=BLOCK_TABLES, *, roots: str = "hash") -> dict:
    """Arrow tables of an open EraReader's blocks (and state, for `validators`).

    Blocks are read in batches of ~64 MB of SSZ, each decompressed into one buffer and read
    field by field across all its blocks at once (era_tools.ssz.bulk; offsets and lengths
    checked).  `roots`: where the blocks table's `root` column comes from: "hash" computes
    hash_tree_root of each message from its bytes; "state" takes the era state's
    block_roots, which is right only for a file that passed `roots`-level verification (which
    proved each block's root equal to them): write_era_tables does that after verifying, and
    so hashes every block once, not twice."""
    from .ssz import types_for

    if roots not in ("hash", "state"):
        raise ValueError(f"roots must be 'hash' or 'state', not {roots!r}")
    want = check_tables(tables)
    parts: dict[str, list] = {t: [] for t in want if t != "validators"}
    state_roots = None
    if "blocks" in parts and roots == "state":
        sphr = network.slots_per_historical_root
        state_roots = reader.state_head(sphr).block_roots_array()
    if parts:
        for buf, slots, starts, ends, csizes in _block_batches(reader):
            forks = [network.fork_name_at_slot(s) for s in slots.tolist()]
            i = 0
            while i < len(forks):
                j = i
                while j < len(forks) and forks[j] == forks[i]:
                    j += 1
                fork = forks[i]
                b = _Blocks(reader.path, types_for(fork, network.preset_base), fork, buf,
                            slots[i:j], starts[i:j], ends[i:j], csizes[i:j])
                for t in parts:
                    if t == "blocks":
                        r = (state_roots[(slots[i:j] % sphr).astype(np.int64)]
                             if state_roots is not None else _hashed_roots(b))
                        part = _rows_blocks(b, r)
                    else:
                        part = _ROWS[t](b)
                    if part is not None and part.num_rows:
                        parts[t].append(part)
                i = j
    out = {t: pa.concat_tables(p).combine_chunks() if p else SCHEMAS[t].empty_table()
           for t, p in parts.items()}
    if "validators" in want:
        out["validators"] = validators_table(reader, network)
    return {t: out[t] for t in want}


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
    cols["status"] = validator_status(v, balances, reader.state_slot // network.slots_per_epoch)
    return pa.Table.from_pydict(cols, schema=SCHEMAS["validators"])


STATUSES = ("pending_initialized", "pending_queued", "active_ongoing", "active_exiting",
            "active_slashed", "exited_unslashed", "exited_slashed", "withdrawal_possible",
            "withdrawal_done")
FAR_FUTURE_EPOCH = 2**64 - 1


def validator_status(v, balances, epoch: int) -> pa.Array:
    """The Beacon API's status of every validator at `epoch` (its validator-status rules),
    computed on the columns with numpy: a dictionary of nine strings, not one per validator."""
    act, elig = v["activation_epoch"], v["activation_eligibility_epoch"]
    exit_, wd, slashed = v["exit_epoch"], v["withdrawable_epoch"], v["slashed"]
    pending = act > epoch
    active = ~pending & (epoch < exit_)
    exited = ~pending & ~active & (epoch < wd)
    code = np.select(
        [pending & (elig == FAR_FUTURE_EPOCH), pending,
         active & (exit_ == FAR_FUTURE_EPOCH), active & ~slashed, active,
         exited & ~slashed, exited,
         balances != 0],
        np.arange(8, dtype=np.int8), default=np.int8(8)).astype(np.int8)
    return pa.DictionaryArray.from_arrays(pa.array(code), pa.array(STATUSES)).cast(pa.string())


def era_table_path(out_dir, table: str, era: int, era_path) -> str:
    """Where `table` of the era file `era_path` goes under `out_dir` (a directory or an
    s3://bucket/prefix URL)."""
    stem = os.path.splitext(os.path.basename(os.fspath(era_path).rstrip("/")))[0]
    out = os.fspath(out_dir)
    if out.startswith("s3://"):
        return f"{out.rstrip('/')}/{table}/era={era}/{stem}.parquet"
    return os.path.join(out, table, f"era={era}", f"{stem}.parquet")


def _exists(dest: str) -> bool:
    if dest.startswith("s3://"):
        from . import objstore

        return objstore.head(dest) is not None
    return os.path.exists(dest)


def _staging(dest_url: str) -> str:
    """The local path a table for the object `dest_url` is written at before its upload:
    $TMPDIR/era-tables-<hash of the URL's prefix>/<table>-era=<N>-<name> (one directory per
    output prefix; temporaries of dead runs there are removed like those beside a file)."""
    import hashlib
    import tempfile

    head, table, part, name = dest_url.rsplit("/", 3)
    folder = os.path.join(tempfile.gettempdir(), "era-tables-" +
                          hashlib.sha256(head.encode()).hexdigest()[:16])
    return os.path.join(folder, f"{table}-{part}-{name}")


def _write_parquet(table, dest: str) -> int:
    """Write `table` at `dest` whole or not at all; return its size in bytes.  A local file
    is written under a hidden temporary name beside it, fsynced and renamed; an s3:// object
    is written to a local temporary file first, then put in one request
    (objstore.put_file: the object appears whole or not at all)."""
    import pyarrow.parquet as pq

    from .era import fsync_dir

    url = dest.startswith("s3://")
    local = _staging(dest) if url else dest
    folder = os.path.dirname(local)
    os.makedirs(folder, exist_ok=True)
    _remove_stale_temporaries(local)
    tmp = _temporary(local, os.getpid())
    try:
        pq.write_table(table, tmp, compression="zstd")
        size = os.path.getsize(tmp)
        if url:
            from . import objstore

            objstore.put_file(tmp, dest, skip_same=False)
            os.unlink(tmp)
            return size
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)
    return size


def _temporary(dest: str, pid: int) -> str:
    """A hidden name beside `dest` (dataset readers skip names starting with '.')."""
    folder, name = os.path.split(dest)
    return os.path.join(folder, f".{name}.tmp-{pid}")


def _remove_stale_temporaries(dest: str) -> None:
    """Temporary files of `dest` left by a killed run (their process is gone)."""
    import glob

    folder, name = os.path.split(dest)
    for tmp in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.tmp-*")):
        pid = tmp.rsplit("-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue  # another run writing the same dataset right now
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _verify_roots(era_path, network) -> None:
    from .verify import verify_file

    report = verify_file(era_path, network, "roots")
    if not report.ok:
        f = report.first_failure()
        raise VerificationError(f"{era_path}: fails verification at the roots level "
                                f"({f.check}: {f.message}); no tables written")


class _Background:
    """fn(*args) in a daemon thread (an interrupted run does not wait for it); result()
    waits and returns its value or raises its exception."""

    def __init__(self, fn, *args):
        import threading

        self._out: tuple = ()
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True,
                                        name="era-tables-verify")
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._out = (True, fn(*args))
        except BaseException as exc:  # handed to the caller by result()
            self._out = (False, exc)

    def result(self):
        self._thread.join()
        ok, value = self._out
        if not ok:
            raise value
        return value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_era_tables(era_path, network, out_dir, tables=TABLES, verify: bool = True) -> dict:
    """Write `tables` of one era file under `out_dir` (a directory or an s3://bucket/prefix
    URL); the tables already there (files, or objects) are skipped.

    With `verify` the file is checked at the `roots` level (era_tools.verify, in a thread
    while the tables are built) and a failure raises VerificationError before anything is
    written.  Each Parquet file is
    written under a hidden temporary name (`.<name>.tmp-<pid>`, which dataset readers skip),
    fsynced and renamed into place, so a killed run leaves only whole files; a rerun removes
    the temporaries of dead runs and writes what is missing.  Into a bucket, each table is
    written to a local temporary file ($TMPDIR/era-tables-*) and put as one object.  The
    function runs where it is called: in this process, a pool worker or a Dask worker
    (era tables --dask, through era_tools.cluster), the same way.  Returns {"era", "path",
    "written": {table: rows}, "skipped": [tables], "bytes"}."""
    from .e2store import version_of
    from .era import EraReader

    tables = check_tables(tables)
    before = version_of(era_path)
    with EraReader(era_path) as reader:
        era = reader.era
        targets = {t: era_table_path(out_dir, t, era, era_path) for t in tables}
        todo = tuple(t for t in tables if not _exists(targets[t]))
        for t in tables:  # a run killed after a put, before removing its local copy
            if targets[t].startswith("s3://") and t not in todo:
                _remove_stale_temporaries(_staging(targets[t]))
        result = {"era": era, "path": os.fspath(era_path), "written": {},
                  "skipped": [t for t in tables if t not in todo], "bytes": 0}
        if not todo:
            return result
        if not verify:
            built = build_tables(reader, network, todo, roots="hash")
        else:
            # The check runs in a thread while the tables are built (hashing, decompression,
            # numpy and keccak release the GIL: two cores at work); nothing is written unless
            # it passes.  Verified, each block's root is its state's block_roots entry (the
            # check hashed every block), so the tables do not hash them again.
            check = _Background(_verify_roots, era_path, network)
            try:
                built = build_tables(reader, network, todo, roots="state")
            except EraToolsError:
                check.result()  # a file that fails verification says so first
                raise
            check.result()
            if version_of(era_path) != before:  # what was verified is what this reader reads
                raise VerificationError(f"{era_path}: the file changed while it was read; "
                                        "no tables written")
    for t, table in built.items():
        result["bytes"] += _write_parquet(table, targets[t])
        result["written"][t] = table.num_rows
    return result
