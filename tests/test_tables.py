"""era_tools.tables and `era tables` (issue 16): every table of the fixture chain (sample_eras/,
written from ../shared/fixtures) and of the spec chain (tests/data/spec_chain: deneb, electra,
fulu) against rows computed here from the executable spec's own decoding of the same bytes;
the fixture's block roots; the Parquet datasets read back through DuckDB; resume, atomicity
and bad input of the command."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow")
pytest.importorskip("eth_consensus_specs")

import era_tools  # noqa: E402
from era_tools.cli import main  # noqa: E402
from era_tools.era import EraReader  # noqa: E402
from era_tools.tables import SCHEMAS, TABLES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_eras"
SPEC_CHAIN = ROOT / "tests" / "data" / "spec_chain"
FAR = 2**64 - 1


def _keccak(b: bytes) -> bytes:
    from Crypto.Hash import keccak

    return keccak.new(digest_bits=256, data=b).digest()


def _spec(fork: str, preset: str):
    name = f"eth_consensus_specs.{fork}.{preset}"
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"cannot import {name}: {exc}")


def _bits(bits) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _status(v, balance: int, epoch: int) -> str:
    """The Beacon API's validator status, written out as its specification words it."""
    if v.activation_epoch > epoch:
        return ("pending_initialized" if v.activation_eligibility_epoch == FAR
                else "pending_queued")
    if epoch < v.exit_epoch:
        if v.exit_epoch == FAR:
            return "active_ongoing"
        return "active_slashed" if v.slashed else "active_exiting"
    if epoch < v.withdrawable_epoch:
        return "exited_slashed" if v.slashed else "exited_unslashed"
    return "withdrawal_possible" if balance != 0 else "withdrawal_done"


def spec_rows(path, net) -> dict:
    """The rows of every table of era file `path`, from eth_consensus_specs' decoded objects."""
    rows = {t: [] for t in TABLES}
    with EraReader(path) as r:
        for slot, data in r.iter_blocks():
            fork = net.fork_name_at_slot(slot)
            spec = _spec(fork, net.preset_base)
            sb = spec.SignedBeaconBlock.decode_bytes(data)
            m, b = sb.message, sb.message.body
            p = getattr(b, "execution_payload", None)
            has_blobs = hasattr(b, "blob_kzg_commitments")
            rows["blocks"].append(dict(
                slot=slot, root=bytes(m.hash_tree_root()), parent_root=bytes(m.parent_root),
                state_root=bytes(m.state_root), proposer_index=int(m.proposer_index),
                graffiti=bytes(b.graffiti), fork=fork, ssz_size=len(data),
                compressed_size=len(r.block_framed(slot)),
                attestation_count=len(b.attestations), deposit_count=len(b.deposits),
                execution_block_number=int(p.block_number) if p else None,
                execution_block_hash=bytes(p.block_hash) if p else None,
                execution_gas_used=int(p.gas_used) if p else None,
                execution_gas_limit=int(p.gas_limit) if p else None,
                execution_base_fee_per_gas=int(p.base_fee_per_gas) if p else None,
                execution_transaction_count=len(p.transactions) if p else None,
                blob_count=len(b.blob_kzg_commitments) if has_blobs else None))
            for i, a in enumerate(b.attestations):
                d = a.data
                rows["attestations"].append(dict(
                    slot=slot, index_in_block=i, data_slot=int(d.slot),
                    committee_index=int(d.index),
                    committee_bits=_bits(a.committee_bits) if hasattr(a, "committee_bits")
                    else None,
                    aggregation_bits_count=len(a.aggregation_bits),
                    aggregation_bits_set=sum(bool(x) for x in a.aggregation_bits),
                    beacon_block_root=bytes(d.beacon_block_root),
                    source_epoch=int(d.source.epoch), source_root=bytes(d.source.root),
                    target_epoch=int(d.target.epoch), target_root=bytes(d.target.root),
                    inclusion_delay=slot - int(d.slot) if int(d.slot) <= slot else None))
            for i, dep in enumerate(b.deposits):
                rows["deposits"].append(dict(
                    slot=slot, index_in_block=i, pubkey=bytes(dep.data.pubkey),
                    withdrawal_credentials=bytes(dep.data.withdrawal_credentials),
                    amount=int(dep.data.amount), signature=bytes(dep.data.signature)))
            for w in (p.withdrawals if p is not None and hasattr(p, "withdrawals") else ()):
                rows["withdrawals"].append(dict(
                    slot=slot, index=int(w.index), validator_index=int(w.validator_index),
                    address=bytes(w.address), amount=int(w.amount)))
            for e in b.voluntary_exits:
                rows["voluntary_exits"].append(dict(
                    slot=slot, epoch=int(e.message.epoch),
                    validator_index=int(e.message.validator_index),
                    signature=bytes(e.signature)))
            for c in getattr(b, "bls_to_execution_changes", ()):
                rows["bls_to_execution_changes"].append(dict(
                    slot=slot, validator_index=int(c.message.validator_index),
                    from_bls_pubkey=bytes(c.message.from_bls_pubkey),
                    to_execution_address=bytes(c.message.to_execution_address),
                    signature=bytes(c.signature)))
            for s in b.proposer_slashings:
                h1, h2 = s.signed_header_1.message, s.signed_header_2.message
                rows["proposer_slashings"].append(dict(
                    slot=slot, proposer_index=int(h1.proposer_index), header_slot=int(h1.slot),
                    header_1_root=bytes(h1.hash_tree_root()),
                    header_2_root=bytes(h2.hash_tree_root())))
            for i, s in enumerate(b.attester_slashings):
                a1 = [int(x) for x in s.attestation_1.attesting_indices]
                a2 = [int(x) for x in s.attestation_2.attesting_indices]
                rows["attester_slashings"].append(dict(
                    slot=slot, index_in_block=i, attestation_1_indices=a1,
                    attestation_2_indices=a2, slashed_indices=sorted(set(a1) & set(a2))))
            if hasattr(b, "sync_aggregate"):
                bits = b.sync_aggregate.sync_committee_bits
                n = sum(bool(x) for x in bits)
                rows["sync_aggregates"].append(dict(
                    slot=slot, sync_committee_bits=_bits(bits), participants=n,
                    size=len(bits), participation=n / len(bits)))
            if hasattr(b, "execution_requests"):
                er = b.execution_requests
                none = dict(pubkey=None, source_address=None, withdrawal_credentials=None,
                            amount=None, index=None, source_pubkey=None, target_pubkey=None)
                for i, d in enumerate(er.deposits):
                    rows["execution_requests"].append({**none, **dict(
                        slot=slot, kind="deposit", index_in_block=i, pubkey=bytes(d.pubkey),
                        withdrawal_credentials=bytes(d.withdrawal_credentials),
                        amount=int(d.amount), index=int(d.index))})
                for i, w in enumerate(er.withdrawals):
                    rows["execution_requests"].append({**none, **dict(
                        slot=slot, kind="withdrawal", index_in_block=i,
                        source_address=bytes(w.source_address),
                        pubkey=bytes(w.validator_pubkey), amount=int(w.amount))})
                for i, c in enumerate(er.consolidations):
                    rows["execution_requests"].append({**none, **dict(
                        slot=slot, kind="consolidation", index_in_block=i,
                        source_address=bytes(c.source_address),
                        source_pubkey=bytes(c.source_pubkey),
                        target_pubkey=bytes(c.target_pubkey))})
            for i, tx in enumerate(p.transactions if p is not None else ()):
                tx = bytes(tx)
                rows["transactions"].append(dict(
                    slot=slot, block_number=int(p.block_number), index=i, hash=_keccak(tx),
                    size=len(tx), type=(tx[0] if tx[0] < 0x80 else 0) if tx else None))
            for i, c in enumerate(b.blob_kzg_commitments if has_blobs else ()):
                rows["blob_commitments"].append(dict(slot=slot, index=i,
                                                     kzg_commitment=bytes(c)))
        fork = net.fork_name_at_slot(r.state_slot)
        state = _spec(fork, net.preset_base).BeaconState.decode_bytes(r.state_ssz())
        epoch = r.state_slot // net.slots_per_epoch
        for i, (v, bal) in enumerate(zip(state.validators, state.balances)):
            rows["validators"].append(dict(status=_status(v, int(bal), epoch),
                state_slot=r.state_slot, index=i, pubkey=bytes(v.pubkey),
                withdrawal_credentials=bytes(v.withdrawal_credentials),
                effective_balance=int(v.effective_balance), balance=int(bal),
                slashed=bool(v.slashed),
                activation_eligibility_epoch=int(v.activation_eligibility_epoch),
                activation_epoch=int(v.activation_epoch), exit_epoch=int(v.exit_epoch),
                withdrawable_epoch=int(v.withdrawable_epoch)))
    return rows


def _ours(table) -> list[dict]:
    rows = table.to_pylist()
    for r in rows:  # decimal128 uint256 -> int, to compare with the spec's integers
        if r.get("execution_base_fee_per_gas") is not None:
            r["execution_base_fee_per_gas"] = int(r["execution_base_fee_per_gas"])
    return rows


def _check_file(path, seen: dict):
    with era_tools.open_era(path) as era:
        got = era.tables()
        blocks_alone = era.to_arrow("blocks")  # the bytes-only path (no whole-block decode)
        expected = spec_rows(path, era.network)
    assert _ours(blocks_alone) == expected["blocks"], f"{path.name}: blocks alone"
    for t in TABLES:
        assert got[t].schema == SCHEMAS[t], t
        assert _ours(got[t]) == expected[t], f"{path.name}: table {t}"
        seen[t] = seen.get(t, 0) + got[t].num_rows


def _random_value(typ, rng, depth=0):
    """A random value of remerkleable type `typ`: every field filled, lists of 0..3 elements
    (so every operation list of a block has rows), byte lists and bitlists of random length."""
    from remerkleable.basic import boolean, uint
    from remerkleable.bitfields import Bitlist, Bitvector
    from remerkleable.byte_arrays import ByteList, ByteVector
    from remerkleable.complex import Container, List, Vector

    if issubclass(typ, boolean):
        return typ(bool(rng.integers(2)))
    if issubclass(typ, uint):
        nbytes = typ.type_byte_length()
        bits = min(8 * nbytes, 100)  # uint256 values that fit the table's decimal128
        return typ(int(rng.integers(0, 2**63)) if rng.random() < 0.7 else
                   int.from_bytes(rng.bytes((bits + 7) // 8), "little") % 2**bits)
    if issubclass(typ, ByteVector):
        return typ(rng.bytes(typ.type_byte_length()))
    if issubclass(typ, ByteList):
        return typ(rng.bytes(int(rng.integers(0, min(typ.limit(), 40) + 1))))
    if issubclass(typ, Bitvector):
        return typ(*[bool(x) for x in rng.integers(0, 2, typ.vector_length())])
    if issubclass(typ, Bitlist):
        return typ(*[bool(x) for x in rng.integers(0, 2, int(rng.integers(0, min(typ.limit(), 70) + 1)))])
    if issubclass(typ, Vector):
        return typ(*[_random_value(typ.element_cls(), rng, depth + 1)
                     for _ in range(typ.vector_length())])
    if issubclass(typ, List):
        n = int(rng.integers(0, min(typ.limit(), 3) + 1))
        return typ(*[_random_value(typ.element_cls(), rng, depth + 1) for _ in range(n)])
    if issubclass(typ, Container):
        return typ(**{k: _random_value(t, rng, depth + 1) for k, t in typ.fields().items()})
    raise TypeError(typ)


def _random_eras(tmp_path, rng, blocks_per_era: int = 10) -> list[Path]:
    """Era files of the spec chain's network whose blocks are random SignedBeaconBlocks of the
    fork of their slot (every operation list filled; deneb, electra, and electra -> fulu inside
    era 3), with the spec chain's states.  Well-formed SSZ, not a valid chain: read with
    roots="hash" / --no-verify."""
    from era_tools.config import load_config
    from era_tools.era import EraWriter

    out = tmp_path / "random_eras"
    out.mkdir()
    for f in ("spec.json", "genesis.json"):
        shutil.copy(SPEC_CHAIN / f, out)
    net = load_config(SPEC_CHAIN / "spec.json")
    sphr = net.slots_per_historical_root
    paths = []
    for src in sorted(SPEC_CHAIN.glob("*.era"))[1:]:
        with EraReader(src) as r:
            era, state = r.era, r.state_ssz()
        start = (era - 1) * sphr
        slots = sorted(int(x) for x in rng.choice(sphr, blocks_per_era, replace=False) + start)
        if era == 3:  # both sides of the fulu fork (slot 144) in one era
            slots = sorted(set(slots) | {143, 144})
        w = EraWriter(out, "specchain", era, sphr, fsync=False)
        for slot in slots:
            spec = _spec(net.fork_name_at_slot(slot), net.preset_base)
            sb = _random_value(spec.SignedBeaconBlock, rng)
            sb.message.slot = slot
            w.add_block(slot, ssz=sb.encode_bytes())
        w.set_state(ssz=state)
        paths.append(Path(w.finish()))
    return paths


def test_random_operations_match_the_spec(tmp_path, monkeypatch):
    """Every list of every block filled with random values: each block table (and the block
    roots, hashed here from the bytes) against the executable spec's decoding."""
    import numpy as np

    seen: dict = {}
    files = _random_eras(tmp_path, np.random.default_rng(16))
    for p in files:
        _check_file(p, seen)
    for t in TABLES:
        assert seen[t] > 0, t
    # batches of one block each (the batch buffer reused and overwritten): the same tables
    from era_tools import tables as tables_mod

    with era_tools.open_era(files[-1]) as era:
        whole = era.tables()
        monkeypatch.setattr(tables_mod, "CHUNK_BYTES", 1)
        assert era.tables() == whole
    with era_tools.open_era(files[-1]) as era:
        assert set(era.to_arrow("blocks").column("fork").to_pylist()) == {"electra", "fulu"}


def test_malformed_blocks_raise_format_errors_only(tmp_path):
    """Mutated block bytes (offsets, lengths, truncation) fed to the bulk readers: a table or
    a FormatError naming the file and slot, never another exception."""
    import numpy as np

    from era_tools.config import load_config
    from era_tools.era import EraWriter
    from era_tools.errors import FormatError
    from era_tools.tables import build_tables

    rng = np.random.default_rng(7)
    src = _random_eras(tmp_path, rng, blocks_per_era=4)[1]  # electra
    net = load_config(SPEC_CHAIN / "spec.json")
    with EraReader(src) as r:
        blocks = list(r.iter_blocks())
        state = r.state_ssz()
        era, sphr = r.era, r.slots_per_historical_root
    tables = [t for t in TABLES if t != "validators"]
    outcomes = {("hash", "ok"): 0, ("hash", "error"): 0, ("bulk", "ok"): 0, ("bulk", "error"): 0}
    for k in range(60):
        slot, data = blocks[k % len(blocks)]
        data = bytearray(data)
        kind = k % 3
        if kind == 0:  # an offset somewhere in the first 400 bytes (the offset tables)
            pos = int(rng.integers(0, min(400, len(data)) // 4)) * 4
            data[pos:pos + 4] = int(rng.integers(0, 2**32)).to_bytes(4, "little")
        elif kind == 1:  # truncated
            data = data[:int(rng.integers(0, len(data)))]
        else:  # random bytes anywhere
            for pos in rng.integers(0, len(data), 8).tolist():
                data[pos] = int(rng.integers(0, 256))
        d = tmp_path / f"m{k}"
        w = EraWriter(d, "specchain", era, sphr, fsync=False)
        for s, b in blocks:
            w.add_block(s, ssz=bytes(data) if s == slot else b)
        w.set_state(ssz=state)
        path = w.finish()
        with EraReader(path) as r:
            for roots in ("hash", None):
                want = tables if roots else tables[1:]  # without blocks: no hash walk first
                try:
                    build_tables(r, net, want, roots=roots or "hash")
                    outcomes[("hash" if roots else "bulk", "ok")] += 1
                except FormatError as exc:
                    assert f"block at slot {slot}" in str(exc) and path in str(exc), exc
                    outcomes[("hash" if roots else "bulk", "error")] += 1
    # the bulk readers' own checks catch what they read (the hash walk checks everything)
    assert all(n >= 10 for n in outcomes.values()), outcomes


def test_fixture_chain_tables_match_the_spec(sample_files, manifest):
    seen: dict = {}
    roots = {}
    for p in sample_files:
        _check_file(p, seen)
        with era_tools.open_era(p) as era:
            for row in era.to_arrow("blocks").to_pylist():
                roots[row["slot"]] = (row["root"], row["parent_root"], row["state_root"])
    # the fixture's own block roots (the second oracle), every block of slots 0..1023
    want = {b["slot"]: (bytes.fromhex(b["root"][2:]), bytes.fromhex(b["parent_root"][2:]),
                        bytes.fromhex(b["state_root"][2:]))
            for b in manifest["blocks"] if b.get("root") and b["slot"] < 1024}
    assert roots == want
    # the chain carries these: a test over an empty table would prove nothing
    for t in ("blocks", "attestations", "sync_aggregates", "withdrawals", "transactions",
              "validators"):
        assert seen[t] > 0, t


def test_spec_chain_tables_match_the_spec():
    seen: dict = {}
    files = sorted(SPEC_CHAIN.glob("*.era"))
    assert files
    for p in files:
        _check_file(p, seen)
    for t in ("blocks", "attestations", "sync_aggregates", "validators"):
        assert seen[t] > 0, t
    forks = {f for p in files for f in era_tools.open_era(p).to_arrow("blocks")
             .column("fork").to_pylist()}
    assert {"deneb", "electra"} <= forks


def test_public_api(sample_files, network):
    assert set(era_tools.__all__) <= set(dir(era_tools))
    p = sample_files[5]
    with era_tools.open_era(p, network) as era:
        raw = dict(era.blocks(raw=True))
        dec = dict(era.blocks())
        assert raw.keys() == dec.keys() and raw
        slot = next(iter(raw))
        assert dec[slot].message.slot == slot
        from era_tools import ssz

        assert ssz.encode(dec[slot]) == raw[slot]
        view = era.state_view()
        assert view.slot == era.reader.state_slot
        vt = era.to_arrow("validators")
        assert vt.column("balance").to_pylist() == [int(x) for x in view.balances]
        with pytest.raises(ValueError, match="unknown table"):
            era.to_arrow("nope")
        hashed = era.to_arrow("blocks")
        era.verify()  # roots level: from now on the roots come from the verified state
        assert era._roots() == "state"
        assert era.to_arrow("blocks").equals(hashed)


def test_api_verify_refuses_a_wrong_file(tmp_path, sample_files, network):
    """A block whose bytes no longer hash to the state's block_roots: verify() raises and the
    roots keep being hashed (so the blocks table shows the block's real root)."""
    from era_tools.era import EraWriter
    from era_tools.errors import VerificationError

    src = sample_files[5]
    with EraReader(src) as r:
        blocks = list(r.iter_blocks())
        state = r.state_ssz()
        era_n, sphr = r.era, r.slots_per_historical_root
    slot, data = blocks[2]
    data = bytearray(data)
    data[-1] ^= 1  # last byte of the body: still well-formed SSZ, another root
    w = EraWriter(tmp_path, network.name, era_n, sphr, fsync=False)
    for s, b in blocks:
        w.add_block(s, ssz=bytes(data) if s == slot else b)
    w.set_state(ssz=state)
    path = w.finish()
    with era_tools.open_era(path, network) as era:
        with pytest.raises(VerificationError, match="block_roots"):
            era.verify()
        assert era._roots() == "hash"
        roots = dict(zip(era.to_arrow("blocks").column("slot").to_pylist(),
                         era.to_arrow("blocks").column("root").to_pylist()))
        from era_tools import ssz

        fork = network.fork_name_at_slot(slot)
        assert roots[slot] == ssz.block_root(ssz.decode_block(bytes(data), fork,
                                                              network.preset_base))
        assert roots[slot] != era.reader.state_head(sphr).block_root_at(slot)


def test_cli_table_names_agree():
    from era_tools.cli import tables as cli_tables

    assert cli_tables.TABLE_NAMES == TABLES


def _run(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def test_cli_writes_datasets_duckdb_reads_them_and_rerun_skips(tmp_path, sample_files):
    duckdb = pytest.importorskip("duckdb")
    src = tmp_path / "eras"
    src.mkdir()
    for f in sample_files[:6] + [SAMPLE / "spec.json", SAMPLE / "genesis.json"]:
        shutil.copy(f, src)
    out = tmp_path / "out"
    r = _run("tables", src, "--out", out, "--json", "--to-era", 4, "-j", 2)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["eras_written"] == 5 and doc["bytes"] > 0
    assert not list(out.rglob("*.tmp-*"))
    con = duckdb.connect()
    q = con.execute(f"""
        SELECT era, count(*) AS blocks, min(slot), max(slot), sum(execution_transaction_count)
        FROM read_parquet('{out}/blocks/*/*.parquet', hive_partitioning = true)
        GROUP BY era ORDER BY era""").fetchall()
    expected = []
    for p in sample_files[:5]:
        with EraReader(p) as er:
            slots = er.block_slots()
            if not slots:
                continue
        txs = [x for x in era_tools.open_era(p).to_arrow("blocks")
               .column("execution_transaction_count").to_pylist() if x is not None]
        expected.append((er.era, len(slots), min(slots), max(slots),
                         sum(txs) if txs else None))  # SQL: the sum of no values is NULL
    assert [(e, n, lo, hi, None if tx is None else int(tx)) for e, n, lo, hi, tx in q] \
        == expected
    nval = con.execute(f"""SELECT era, count(*) FROM read_parquet(
        '{out}/validators/*/*.parquet', hive_partitioning = true) GROUP BY era ORDER BY era
        """).fetchall()
    assert [e for e, _ in nval] == [0, 1, 2, 3, 4] and all(n == 64 for _, n in nval)
    # rerun: everything is there, nothing is written
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    r = _run("tables", src, "--out", out, "--json", "--to-era", 4)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["eras_written"] == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == mtimes
    # a table removed (as a killed run leaves it) is written again, alone
    victim = next(out.glob("withdrawals/era=3/*.parquet"))
    victim.unlink()
    r = _run("tables", src, "--out", out, "--json", "--to-era", 4)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["eras_written"] == 1
    assert [list(f["written"]) for f in doc["files"] if f["written"]] == [["withdrawals"]]
    assert victim.exists()
    # a temporary left by a dead run is removed when its table is written
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = victim.parent / f".{victim.name}.tmp-{dead.pid}"
    stale.write_bytes(b"half a parquet file")
    victim.unlink()
    r = _run("tables", src, "--out", out, "--json", "--to-era", 4)
    assert r.exit_code == 0, r.output
    assert victim.exists() and not stale.exists()


def test_killed_run_leaves_whole_files_and_a_rerun_finishes(tmp_path, sample_files):
    """SIGKILL once the first table is in place: every visible file is a whole Parquet file,
    and a rerun writes the rest: the same tables as a run that was never interrupted."""
    import pyarrow.parquet as pq

    src = tmp_path / "eras"
    src.mkdir()
    for f in sample_files + [SAMPLE / "spec.json", SAMPLE / "genesis.json"]:
        shutil.copy(f, src)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", "from era_tools.cli import main; main()",
                             "tables", str(src), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(6000):
            if proc.poll() is not None or list(out.rglob("*.parquet")):
                break
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    visible = list(out.rglob("*.parquet"))
    assert visible
    for p in visible:
        pq.read_table(p)  # whole files only
    r = _run("tables", src, "--out", out)
    assert r.exit_code == 0, r.output
    clean = tmp_path / "clean"
    assert _run("tables", src, "--out", clean).exit_code == 0
    names = sorted(p.relative_to(clean) for p in clean.rglob("*.parquet"))
    assert sorted(p.relative_to(out) for p in out.rglob("*.parquet")) == names
    assert len(names) == len(sample_files) * len(TABLES)
    for n in names:
        assert pq.read_table(out / n).equals(pq.read_table(clean / n)), n
    assert not [p for p in out.rglob(".*") if ".tmp-" in p.name]


def test_cli_a_failing_file_yields_no_tables(tmp_path, sample_files):
    src = tmp_path / "eras"
    src.mkdir()
    for f in sample_files[2:4] + [SAMPLE / "spec.json", SAMPLE / "genesis.json"]:
        shutil.copy(f, src)
    bad = src / sample_files[3].name
    with EraReader(bad) as er:
        slot = er.block_slots()[3]
        rec = er.block_record(slot)
        off = rec.offset + 8 + 40
    data = bytearray(bad.read_bytes())
    # flip a byte inside a block's compressed payload: a CRC or a root then fails
    data[off] ^= 0xFF
    bad.write_bytes(bytes(data))
    out = tmp_path / "out"
    r = _run("tables", src, "--out", out, "--tables", "blocks,validators")
    assert r.exit_code in (1, 2), r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and bad.name in errors[0] and "Traceback" not in r.output
    written = sorted(p.parent.name for p in out.rglob("*.parquet"))
    assert written == ["era=2", "era=2"]
    # --json: the same exit code, the error in the document (it exited 3 before)
    j = _run("tables", src, "--out", tmp_path / "out2", "--tables", "blocks,validators",
             "--json")
    assert j.exit_code == r.exit_code, j.output
    doc = json.loads(j.stdout)
    assert not doc["ok"] and doc["failures"] == 1 and bad.name in doc["files"][1]["error"]
    assert "exit_code" not in doc["files"][1]


def test_cli_bad_table_name_is_a_usage_error(tmp_path, sample_files):
    r = _run("tables", sample_files[1], "--out", tmp_path / "o", "--tables", "blocks,nope")
    assert r.exit_code == 2 and "unknown table(s) nope" in r.output
    assert not (tmp_path / "o").exists()


def test_validator_status_follows_the_beacon_api_rules():
    """Every combination of epochs around the state's epoch, slashed and zero balance: the
    numpy status column against the rules written out per validator (_status)."""
    import itertools
    from types import SimpleNamespace

    import numpy as np

    from era_tools.tables import STATUSES, validator_status

    epoch = 10
    combos = list(itertools.product([5, 10, 11, FAR], [3, FAR], [10, 11, 20, FAR],
                                    [10, 11, 30, FAR], [False, True], [0, 32 * 10**9]))
    cols = list(zip(*combos))
    v = {name: np.array(c, dtype=np.uint64) for name, c in zip(
        ("activation_epoch", "activation_eligibility_epoch", "exit_epoch",
         "withdrawable_epoch"), cols[:4])}
    v["slashed"] = np.array(cols[4], dtype=bool)
    got = validator_status(v, np.array(cols[5], dtype=np.uint64), epoch).to_pylist()
    want = [_status(SimpleNamespace(activation_epoch=a, activation_eligibility_epoch=e,
                                    exit_epoch=x, withdrawable_epoch=w, slashed=s), b, epoch)
            for a, e, x, w, s, b in combos]
    assert got == want
    assert set(got) == set(STATUSES)


@pytest.mark.parametrize("path", ["native", "oneshot", "loop"])
def test_keccak256_many_every_path(path, monkeypatch):
    """The transactions table's batch Keccak-256, each implementation, against keccak.new on
    lengths around the 136-byte rate, empty slices, overlaps and the buffer's last byte."""
    import numpy as np

    from era_tools import era1

    if path == "native" and era1._native_keccak_many is None:
        pytest.skip("era_tools._keccak is not built")
    if path != "native":
        monkeypatch.setattr(era1, "_native_keccak_many", None)
    if path == "loop":
        monkeypatch.setattr(era1, "_ONESHOT", [None])
    elif path == "oneshot" and era1._keccak_oneshot() is None:
        pytest.skip("pycryptodome's one-shot keccak is not reachable")
    buf = np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8)
    lengths = [0, 1, 31, 32, 135, 136, 137, 271, 272, 273, 1000, 4000]
    starts = np.array([7 * i for i in range(len(lengths))] + [5000 - 137, 5000], dtype=np.int64)
    ends = starts + np.array(lengths + [137, 0])
    got = era1.keccak256_many(buf, starts, ends)
    want = b"".join(_keccak(buf[s:e].tobytes()) for s, e in zip(starts, ends))
    assert got == want
    assert era1.keccak256_many(buf, starts[:0], ends[:0]) == b""
    with pytest.raises(ValueError, match="outside"):
        era1.keccak256_many(buf, np.array([4990]), np.array([5001]))


def test_cli_no_verify_writes_every_table_and_parquet_keeps_it(tmp_path):
    """The random-operation eras (well-formed, not a chain): refused by default (exit 1, no
    file), written with --no-verify; every table, read back from Parquet, equals the table
    built in memory (fixed-size binaries, decimals, lists, nulls survive) and has rows."""
    import numpy as np
    import pyarrow.parquet as pq

    files = _random_eras(tmp_path, np.random.default_rng(16))
    src = files[0].parent
    out = tmp_path / "out"
    r = _run("tables", src, "--out", out)
    assert r.exit_code == 1, r.output
    assert "fails verification at the roots level" in r.output
    assert not list(out.rglob("*.parquet"))
    r = _run("tables", src, "--out", out, "--no-verify", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["eras_written"] == len(files)
    rows = {t: 0 for t in TABLES}
    for p in files:
        with era_tools.open_era(p) as era:
            built = era.tables()
            for t in TABLES:
                (f,) = list(out.glob(f"{t}/era={era.era}/*.parquet"))
                back = pq.read_table(f)
                assert back.schema.equals(SCHEMAS[t]), t
                assert back.equals(built[t]), (p.name, t)
                rows[t] += back.num_rows
    assert all(rows.values()), rows
