"""era1 files (era_tools.era1) on real files written by tests/era1_builder.py."""

from __future__ import annotations

import os
import struct
import tracemalloc
from dataclasses import replace

import pytest
import rlp

import era1_builder as B
from era_tools import e2store, era1
from era_tools.errors import FormatError

EMPTY_KECCAK = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
START = 3 * B.EPOCH_SIZE


@pytest.fixture(scope="module")
def chain():
    return B.make_chain(50, start=START)


@pytest.fixture
def good(tmp_path, chain):
    return B.write_era1(tmp_path, chain)


def results(path) -> dict:
    out = era1.check_era1_file(path)
    return {c.check: c for c in out}


def failed(path) -> dict:
    return {k: c for k, c in results(path).items() if not c.ok}


def patch(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


# --------------------------------------------------------------------------------------------
# keccak, accumulator, names


def test_keccak_known_vector():
    assert B.keccak256(b"").hex() == EMPTY_KECCAK
    assert era1.keccak256(b"").hex() == EMPTY_KECCAK
    assert era1.keccak256(b"abc").hex() == \
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 50])
def test_accumulator_root_matches_remerkleable(chain, n):
    blocks = chain[:n]
    assert era1.accumulator_root((b.hash, b.td) for b in blocks) == B.accumulator_root(blocks)


def test_accumulator_root_limits():
    assert era1.accumulator_root([(b"\x11" * 32, 2**256 - 1)]) == bytes(B.Accumulator(
        B.HeaderRecord(block_hash=b"\x11" * 32, total_difficulty=2**256 - 1)).hash_tree_root())
    with pytest.raises(ValueError):
        era1.accumulator_root([(b"\x00" * 31, 1)])
    with pytest.raises(ValueError):
        era1.accumulator_root([(b"\x00" * 32, 2**256)])
    with pytest.raises(ValueError):
        era1.accumulator_root([(b"\x00" * 32, 1)] * 8193)


def test_parse_era1_file_name():
    assert era1.parse_era1_file_name("mainnet-00000-5ec1ffb8.era1") == ("mainnet", 0, "5ec1ffb8")
    assert era1.parse_era1_file_name("/x/y/sepolia-01896-e6ebe562.era1") == \
        ("sepolia", 1896, "e6ebe562")
    for bad in ["mainnet-00000-5ec1ffb8.era", "mainnet-0000-5ec1ffb8.era1",
                "mainnet-00000-5EC1FFB8.era1", "mainnet-00000-5ec1ff.era1", "00000-5ec1ffb8.era1"]:
        assert era1.parse_era1_file_name(bad) is None, bad
    assert era1.era1_file_name("mainnet", 3, bytes.fromhex("155999b2ff")) == \
        "mainnet-00003-155999b2.era1"


# --------------------------------------------------------------------------------------------
# A good file


def test_good_file_passes_every_check(good, chain):
    out = era1.check_era1_file(good)
    assert [c.check for c in out] == list(era1.CHECKS)
    assert all(c.ok for c in out), out
    assert all(c.block is None for c in out)
    check, ok, detail, block = out[0]  # plain tuples too
    assert (check, ok, block) == ("structure", True, None)
    assert f"{START}..{START + 49}" in detail


def test_good_file_accumulator_equals_remerkleable(good):
    # Recompute from what the reader returns, with pycryptodome + remerkleable only.
    with era1.Era1Reader(good) as r:
        records = [B.HeaderRecord(block_hash=B.keccak256(r.header_rlp(i)),
                                  total_difficulty=r.total_difficulty(i)) for i in range(r.count)]
        stored = r.accumulator_root()
        pairs = [(B.keccak256(b.header_rlp), b.total_difficulty) for b in r.iter_blocks()]
    independent = bytes(B.Accumulator(*records).hash_tree_root())
    assert stored == independent
    assert era1.accumulator_root(pairs) == independent
    assert os.path.basename(good) == f"mainnet-00003-{independent[:4].hex()}.era1"


def test_reader_returns_what_was_written(good, chain):
    with era1.Era1Reader(good) as r:
        assert (r.start_number, r.count, r.end_number, r.epoch) == (START, 50, START + 49, 3)
        assert list(r.numbers()) == [b.number for b in chain]
        assert r.expected_name("mainnet") == os.path.basename(good)
        for i, b in enumerate(chain):
            assert r.header_rlp(i) == b.header_rlp
            assert r.body_rlp(i) == b.body_rlp
            assert r.receipts_rlp(i) == b.receipts_rlp
            assert r.total_difficulty(i) == b.td
            assert era1.header_fields(r.header_rlp(i)) == (b.fields[0], b.number)
            assert era1.header_difficulty(r.header_rlp(i)) == b.difficulty
        got = list(r.iter_blocks())
        assert [(x.number, x.header_rlp, x.body_rlp, x.receipts_rlp, x.total_difficulty)
                for x in got] == [(b.number, b.header_rlp, b.body_rlp, b.receipts_rlp, b.td)
                                  for b in chain]
        types = [e2store.type_name(rec.type) for rec in r.records()]
        assert types[0] == "Version" and types[-2:] == ["Accumulator", "BlockIndex"]
        assert types[1:5] == ["CompressedHeader", "CompressedBody", "CompressedReceipts",
                              "TotalDifficulty"]
        for i in (-1, 50, 10**9):
            with pytest.raises(IndexError):
                r.header_rlp(i)


def test_header_split_into_fields(chain):
    fields = era1.decode_header(chain[7].header_rlp)
    assert len(fields) == 15
    assert len(fields[6]) == 256  # bloom
    assert fields[0] == chain[7].fields[0] and fields[3] == chain[7].fields[3]
    assert int.from_bytes(fields[8], "big") == START + 7


# --------------------------------------------------------------------------------------------
# Broken files: each check names the first bad block, expected and actual


def test_changed_header_breaks_the_chain_at_the_next_block(tmp_path, chain):
    root = B.accumulator_root(chain)
    blocks = list(chain)
    bad = blocks[20].with_header_field(3, bytes(32))  # another state root
    blocks[20] = bad
    path = B.write_era1(tmp_path, blocks, accumulator=root)
    f = failed(path)
    assert set(f) == {"header chain", "accumulator"}, f
    n = START + 21
    assert f["header chain"].block == n
    assert f"block {n}:" in f["header chain"].detail
    assert "0x" + chain[20].hash.hex() in f["header chain"].detail  # what block 21 names
    assert "0x" + bad.hash.hex() in f["header chain"].detail  # keccak of what is there
    assert "0x" + root.hex() in f["accumulator"].detail
    assert "0x" + B.accumulator_root(blocks).hex() in f["accumulator"].detail


def test_changed_last_header_fails_the_accumulator(tmp_path, chain):
    root = B.accumulator_root(chain)
    blocks = list(chain)
    blocks[-1] = blocks[-1].with_header_field(12, b"other extra data")
    path = B.write_era1(tmp_path, blocks, accumulator=root)
    f = failed(path)
    assert set(f) == {"accumulator"}, f
    assert "stored accumulator root 0x" + root.hex() in f["accumulator"].detail


def test_flipped_byte_on_disk_names_the_block(tmp_path, good):
    with era1.Era1Reader(good) as r:
        g = r.group(12)
    data = bytearray(open(good, "rb").read())
    pos = g.header.end - 10  # inside the framed header, after the stream identifier
    data[pos] ^= 0x40
    patch(good, 0, bytes(data))
    f = failed(good)
    assert f["structure"].block == START + 12, f
    assert good in f["structure"].detail
    # the other checks cannot vouch for that block, and say which one
    assert f["header chain"].block == START + 12
    assert f["accumulator"].block == START + 12
    with era1.Era1Reader(good) as r:
        r.header_rlp(11)
        with pytest.raises(FormatError, match=str(g.header.data_offset)):
            r.header_rlp(12)


def test_wrong_total_difficulty(tmp_path, chain):
    blocks = list(chain)
    blocks[30] = replace(blocks[30], td=blocks[30].td + 1)
    path = B.write_era1(tmp_path, blocks)  # accumulator over the wrong TD: only TD fails
    f = failed(path)
    assert set(f) == {"total difficulty"}, f
    n = START + 30
    assert f["total difficulty"].block == n
    want = chain[29].td + chain[30].difficulty
    assert f"block {n}: total difficulty {want + 1}, expected {want}" in \
        f["total difficulty"].detail

    # with the accumulator of the true chain stored, the accumulator fails too
    (tmp_path / "b").mkdir()
    path2 = B.write_era1(tmp_path / "b", blocks, accumulator=B.accumulator_root(chain))
    assert set(failed(path2)) == {"total difficulty", "accumulator"}


def test_decreasing_total_difficulty(tmp_path, chain):
    blocks = list(chain)
    blocks[5] = replace(blocks[5], td=blocks[4].td - 1)
    f = failed(B.write_era1(tmp_path, blocks))
    assert f["total difficulty"].block == START + 5
    assert "is less than" in f["total difficulty"].detail


def test_renamed_file(tmp_path, good):
    for new, block in [("mainnet-00004-155999b2.era1", START), ("mainnet-00003-00000000.era1",
                                                                None), ("chain.era1", None)]:
        dst = tmp_path / new
        os.replace(good, dst)
        good = str(dst)
        f = failed(good)
        assert set(f) == {"name"}, f
        assert f["name"].block == block
        with era1.Era1Reader(good) as r:
            right = r.expected_name("mainnet")
        assert right[len("mainnet-"):] in f["name"].detail


def test_wrong_block_number_in_header(tmp_path, chain):
    blocks = list(chain)
    blocks[9] = blocks[9].with_header_field(8, START + 99)
    f = failed(B.write_era1(tmp_path, blocks))
    assert f["structure"].block == START + 9
    assert f"number {START + 99}, expected {START + 9}" in f["structure"].detail


def test_header_that_is_not_rlp(tmp_path, chain):
    path = B.write_era1(tmp_path, chain, header_payload={10: b"\xf9\xff\xffnot rlp at all"})
    f = failed(path)
    assert f["structure"].block == START + 10
    assert f"block {START + 10} header" in f["structure"].detail
    assert "RLP offset 0" in f["structure"].detail
    with era1.Era1Reader(path) as r:
        raw = r.header_rlp(10)  # the payload itself is fine
        with pytest.raises(FormatError, match="RLP offset 0"):
            era1.header_fields(raw, where=f"block {START + 10}")
    # a well-formed RLP string is not a header either
    f = failed(B.write_era1(tmp_path, chain, header_payload={0: rlp.encode(b"x" * 40)},
                            name="other.era1"))
    assert f["structure"].block == START and "not a list" in f["structure"].detail


def test_truncated_file(tmp_path, good):
    data = open(good, "rb").read()
    cuts = [0, 3, 8, 100, len(data) // 2, len(data) - 300, len(data) - 60, len(data) - 9,
            len(data) - 8, len(data) - 1]
    for cut in cuts:
        path = tmp_path / f"cut-{cut}.era1"
        path.write_bytes(data[:cut])
        with pytest.raises(FormatError) as exc:
            era1.Era1Reader(path)
        assert str(path) in str(exc.value), cut
        assert "offset" in str(exc.value), cut
        out = era1.check_era1_file(path)
        assert len(out) == 1 and out[0].check == "structure" and not out[0].ok


def open_fails(path):
    """(pytest's ExceptionInfo of the FormatError that opening `path` raises, peak bytes
    allocated while trying)."""
    tracemalloc.start()
    try:
        with pytest.raises(FormatError) as exc:
            era1.Era1Reader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return exc, peak


def test_block_index_count_past_the_end(good):
    size = os.path.getsize(good)
    for count in (2**64 - 1, 2**62, 8192, 51, 0):
        patch(good, size - 8, struct.pack("<Q", count))
        exc, peak = open_fails(good)
        msg = str(exc.value)
        assert msg.startswith(good + ": offset "), msg
        assert peak < 256 * 1024, (count, peak)
        assert "BlockIndex" in msg, msg
        if count not in (51, 8192):  # those fit the file: the record there is no BlockIndex
            assert f"offset {size - 8}: BlockIndex count {count}" in msg, msg
    # 8193 is over the limit even when the file were big enough
    patch(good, size - 8, struct.pack("<Q", 8193))
    with pytest.raises(FormatError, match="count 8193"):
        era1.Era1Reader(good)


def test_block_index_offsets_outside_the_file(good):
    size = os.path.getsize(good)
    with era1.Era1Reader(good) as r:
        index_pos, p5, body5 = r.index_offset, r.positions[5], r.group(5).body.offset
    field = index_pos + 8 + 8 + 8 * 5  # record header, start number, offsets[5]
    original = open(good, "rb").read()
    for rel, what in [(10**12, "resolves to"), (-index_pos - 10**6, "resolves to"),
                      (size - index_pos, "resolves to"), (-index_pos, "resolves to"),
                      (body5 - index_pos, "CompressedBody"), (p5 + 3 - index_pos, "")]:
        patch(good, 0, original)
        patch(good, field, struct.pack("<q", rel))
        exc, peak = open_fails(good)
        msg = str(exc.value)
        assert msg.startswith(good + ": offset "), msg
        assert what in msg, msg
        assert peak < 256 * 1024
        if what == "resolves to":
            assert f"offset {field}: BlockIndex offset {rel} for block {START + 5}" in msg
        out = era1.check_era1_file(good)
        assert [(c.check, c.ok) for c in out] == [("structure", False)]


def test_wrong_version_and_missing_accumulator(tmp_path, good):
    data = open(good, "rb").read()
    p = tmp_path / "v.era1"
    p.write_bytes(b"\x65\x33" + data[2:])
    with pytest.raises(FormatError, match="offset 0: expected an empty Version"):
        era1.Era1Reader(p)
    # The Accumulator record's type changed to Empty: found, named, refused
    with era1.Era1Reader(good) as r:
        acc = r.index_offset - 40
    p.write_bytes(data[:acc] + b"\x00\x00" + data[acc + 2:])
    with pytest.raises(FormatError, match=f"offset {acc}: expected a 32-byte Accumulator"):
        era1.Era1Reader(p)


def test_records_out_of_order(tmp_path, good):
    with era1.Era1Reader(good) as r:
        g = r.group(7)
    data = bytearray(open(good, "rb").read())
    data[g.receipts.offset:g.receipts.offset + 2] = e2store.COMPRESSED_BODY
    p = tmp_path / os.path.basename(good)
    p.write_bytes(bytes(data))
    f = failed(p)
    assert f["structure"].block == START + 7
    assert f"offset {g.receipts.offset}: block {START + 7}: expected a CompressedReceipts" in \
        f["structure"].detail
    with era1.Era1Reader(p) as r:
        r.receipts_rlp(6)
        with pytest.raises(FormatError, match="expected CompressedReceipts"):
            r.receipts_rlp(7)


# --------------------------------------------------------------------------------------------
# RLP decoder


@pytest.mark.parametrize("obj", [
    b"", b"\x00", b"\x7f", b"\x80", b"a" * 55, b"a" * 56, b"b" * 1024, [], [b""], [[], [[]]],
    [b"cat", [b"dog", b"x" * 70], b"\x01" * 60], [b"y" * 20] * 40,
])
def test_rlp_decode_agrees_with_the_rlp_package(obj):
    assert era1.rlp_decode(rlp.encode(obj)) == obj


@pytest.mark.parametrize("raw, msg", [
    (b"", "empty input"),
    (b"\x81\x05", "non-canonical: single byte"),
    (b"\xb8\x05hello", "non-canonical: length 5 in the long form"),
    (b"\xb9\x00\x40" + b"a" * 64, "leading zero"),
    (b"\x85abc", "runs past the end"),
    (b"\xb9\xff", "truncated length"),
    (b"\xbf" + b"\xff" * 8, "runs past the end"),
    (b"\xc3\x83ab", "runs past the end"),
    (b"\xc2\x83abc", "runs past the end"),
    (b"\x80\x80", "trailing bytes"),
    (b"".join(bytes([0xC0 + k]) for k in range(40, -1, -1)), "nested too deeply"),
])
def test_rlp_decode_rejects(raw, msg):
    with pytest.raises(FormatError, match=msg) as exc:
        era1.rlp_decode(raw, where="thing.era1: block 7")
    assert str(exc.value).startswith("thing.era1: block 7: RLP")


def test_rlp_decode_size_cap():
    with pytest.raises(FormatError, match="exceeds the limit 10"):
        era1.rlp_decode(rlp.encode(b"z" * 20), max_size=10)
    huge = era1.MAX_HEADER_SIZE + 1
    with pytest.raises(FormatError, match="exceeds the limit"):
        era1.decode_header(rlp.encode([b"\x00" * huge]))


def test_header_shape_is_checked(chain):
    fields = list(chain[0].fields)
    with pytest.raises(FormatError, match="14 fields"):
        era1.decode_header(rlp.encode(fields[:14]))
    with pytest.raises(FormatError, match="parent_hash is 31 bytes"):
        era1.decode_header(rlp.encode([b"\x01" * 31] + fields[1:]))
    with pytest.raises(FormatError, match="nested too deeply"):
        era1.decode_header(rlp.encode(fields[:14] + [[b"nonce"]]))
    with pytest.raises(FormatError, match="leading zero"):
        era1.header_fields(rlp.encode(fields[:8] + [b"\x00\x05"] + fields[9:]))
    london = fields + [7 * 10**9]  # base_fee_per_gas
    assert era1.header_fields(rlp.encode(london)) == (fields[0], START)
