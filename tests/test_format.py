"""The format layer: e2store records, snappy framing, SlotIndex, EraReader/EraWriter, naming."""

from __future__ import annotations

import io
import os
import threading
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from era_tools import e2store, framing
from era_tools.era import (EraReader, EraWriter, SlotIndex, contents_equal, era_file_name,
                           parse_era_file_name)
from era_tools.errors import FormatError, VerificationError

# ---------------------------------------------------------------------------------------------
# e2store records


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=2, max_size=2), st.binary(max_size=300)),
                max_size=8))
def test_records_round_trip(records):
    blob = b"".join(e2store.encode_record(t, d) for t, d in records)
    f = io.BytesIO(blob)
    got = []
    for rec in e2store.iter_records(f, len(blob), "mem"):
        f.seek(rec.data_offset)
        got.append((rec.type, f.read(rec.length)))
    assert got == records


def test_record_reserved_bytes_rejected():
    raw = bytearray(e2store.encode_record(b"\x01\x00", b"abc"))
    raw[7] = 1
    with pytest.raises(FormatError, match=r"mem: offset 0: reserved header bytes are 0x0001"):
        list(e2store.iter_records(io.BytesIO(bytes(raw)), len(raw), "mem"))


def test_record_length_past_end_rejected():
    raw = e2store.encode_header(b"\x01\x00", 2**32 - 1) + b"xx"
    with pytest.raises(FormatError, match=r"offset 0: .*length 4294967295 runs past the end"):
        list(e2store.iter_records(io.BytesIO(raw), len(raw), "mem"))


# ---------------------------------------------------------------------------------------------
# Snappy framing


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200_000) | st.builds(lambda n, b: b * n, st.integers(0, 300_000),
                                                st.binary(min_size=1, max_size=3)))
def test_framing_round_trip(data):
    framed = framing.compress(data)
    assert framed.startswith(framing.STREAM_IDENTIFIER)
    assert framing.decompress(framed) == data
    assert framing.uncompressed_length(framed) == len(data)
    n = len(data) // 3
    assert framing.decompress_prefix(framed, n) == data[:n]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100_000) | st.builds(lambda n, b: b * n, st.integers(0, 200_000),
                                                st.binary(min_size=1, max_size=7)),
       st.integers(0, 300))
def test_peek_prefix_reads_what_decompression_reads(data, n):
    framed = framing.compress(data)
    assert framing.peek_prefix(framed, n) == framing.decompress_prefix(framed, n) == data[:n]


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=200, max_size=5000), st.data())
def test_peek_prefix_on_corrupt_streams_is_bounded(data, draw):
    """Any byte flipped or cut: a FormatError or at most n bytes, never another exception."""
    framed = bytearray(framing.compress(data * 3))
    pos = draw.draw(st.integers(10, len(framed) - 1))
    if draw.draw(st.booleans()):
        framed[pos] ^= draw.draw(st.integers(1, 255))
    else:
        del framed[pos:]
    try:
        got = framing.peek_prefix(bytes(framed), 148)
    except FormatError:
        return
    assert len(got) <= 148


def test_framing_bad_crc():
    framed = bytearray(framing.compress(b"hello world" * 1000))
    framed[14] ^= 0x01  # inside the first chunk's masked CRC
    with pytest.raises(FormatError, match="checksum"):
        framing.decompress(bytes(framed))


def test_framing_size_cap_checked_before_allocation():
    framed = framing.compress(b"\x00" * 1_000_000)
    with pytest.raises(FormatError, match="exceeds the limit 1000"):
        framing.decompress(framed, max_size=1000)


def test_framing_reserved_chunk_and_missing_identifier():
    framed = framing.compress(b"abc")
    with pytest.raises(FormatError, match="missing snappy stream identifier"):
        framing.decompress(framed[10:])
    bad = framed + bytes([0x02, 0, 0, 0])
    with pytest.raises(FormatError, match="reserved unskippable snappy chunk type 0x02"):
        framing.decompress(bad)
    skippable = framed + bytes([0x80, 3, 0, 0]) + b"xyz"
    assert framing.decompress(skippable) == b"abc"


# ---------------------------------------------------------------------------------------------
# SlotIndex


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**40), st.lists(st.booleans(), min_size=1, max_size=70),
       st.integers(1000, 10**9))
def test_slot_index_round_trip(start_slot, present, record_offset):
    positions = [8 + 16 * i if p else 0 for i, p in enumerate(present)]
    raw = SlotIndex.encode(start_slot, positions, record_offset)
    assert len(raw) == 8 * len(present) + 24
    idx = SlotIndex.decode(raw[8:], record_offset, "mem")
    assert idx.start_slot == start_slot
    assert idx.positions.tolist() == positions
    # Writers use the Nimbus empty-slot form: the offset resolves to file position 0.
    rel = np.frombuffer(raw, "<i8", count=len(present), offset=16)
    for p, r in zip(present, rel):
        if not p:
            assert r == -record_offset


def test_slot_index_accepts_spec_empty_form():
    body = struct.pack("<Q", 64) + struct.pack("<qq", -992, 0) + struct.pack("<Q", 2)
    idx = SlotIndex.decode(body, 1000, "mem")
    assert idx.positions.tolist() == [8, 0]


def test_slot_index_rejects_bad_count_and_offsets():
    body = struct.pack("<Q", 0) + struct.pack("<q", -10) + struct.pack("<Q", 5)
    with pytest.raises(FormatError, match="count 5 does not match its length 24"):
        SlotIndex.decode(body, 1000, "mem")
    body = struct.pack("<Q", 0) + struct.pack("<q", 50) + struct.pack("<Q", 1)
    with pytest.raises(FormatError, match="resolves to 1050, outside"):
        SlotIndex.decode(body, 1000, "mem")


# ---------------------------------------------------------------------------------------------
# Sample eras against the fixture chain


def test_sample_eras_read_back_the_fixture(sample_files, fixture_dir, manifest):
    assert [parse_era_file_name(p.name)[1] for p in sample_files] == list(range(17))
    blocks = {b["slot"]: b for b in manifest["blocks"]}
    seen_blocks = 0
    for path in sample_files:
        with EraReader(path) as r:
            assert r.state_ssz() == (fixture_dir / f"states/{r.state_slot}.ssz").read_bytes()
            for slot in r.slots():
                rec, data = blocks[slot], r.block_ssz(slot)
                if rec["file"] is None:
                    assert data is None, slot
                else:
                    assert data == (fixture_dir / rec["file"]).read_bytes(), slot
                    seen_blocks += 1
    assert seen_blocks == 889  # 890 fixture blocks; slot 1024's block belongs to era 17


def test_sample_era_names_follow_the_nimbus_rule(sample_files, manifest):
    gvr = bytes.fromhex(manifest["genesis_validators_root"][2:])
    for path in sample_files:
        with EraReader(path) as r:
            head = r.state_head()
            if r.era == 0:
                assert path.name == era_file_name("minimal", 0, gvr)
            else:
                assert path.name == era_file_name("minimal", r.era, head.era_root())


def test_make_sample_eras_reproduces_contents(tmp_path, sample_files, fixture_dir):
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "make_sample_eras.py")
    subprocess.run([sys.executable, script, "--fixture", str(fixture_dir), "--out",
                    str(tmp_path)], check=True, capture_output=True)
    rebuilt = sorted(tmp_path.glob("*.era"))
    assert [p.name for p in rebuilt] == [p.name for p in sample_files]
    for a, b in zip(rebuilt, sample_files):
        assert contents_equal(str(a), str(b))


def test_partial_state_read_matches_full_state(sample_files):
    with EraReader(sample_files[5]) as r:
        full = r.state_ssz()
        head = r.state_head()
        assert head.slot == r.state_slot == 320
        assert head.block_roots == full[176:176 + 64 * 32]
        assert head.state_roots == full[176 + 64 * 32:176 + 128 * 32]
        assert head.genesis_validators_root == full[8:40]


# ---------------------------------------------------------------------------------------------
# Writer


def _write_era(out, sample, **kw):
    with EraReader(sample) as r:
        w = EraWriter(out, "minimal", r.era, 64, **kw)
        for slot, framed in r.iter_blocks_framed():
            w.add_block(slot, framed=framed)
        w.set_state(framed=r.state_framed())
    return w


def test_writer_copies_framed_bytes_and_names_from_state(tmp_path, sample_files):
    w = _write_era(tmp_path, sample_files[3])
    path = w.finish()
    assert os.path.basename(path) == sample_files[3].name
    assert open(path, "rb").read() == sample_files[3].read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_writer_keeps_identical_and_refuses_different(tmp_path, sample_files):
    _write_era(tmp_path, sample_files[3]).finish()
    _write_era(tmp_path, sample_files[3]).finish()  # same contents: fine
    # A different era-3 file under another root must not be replaced silently.
    other = tmp_path / "minimal-00003-deadbeef.era"
    os.rename(tmp_path / sample_files[3].name, other)
    with pytest.raises(VerificationError, match="a different file for era 3 exists"):
        _write_era(tmp_path, sample_files[3]).finish()
    assert not list(tmp_path.glob("*.tmp"))


def test_writer_abort_leaves_nothing(tmp_path, sample_files):
    with pytest.raises(RuntimeError):
        with EraWriter(tmp_path, "minimal", 3, 64) as w:
            w.add_block(130, ssz=b"x")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_out_of_era_and_unordered_slots(tmp_path):
    w = EraWriter(tmp_path, "minimal", 3, 64)
    with pytest.raises(FormatError, match="slot 5 is outside era 3"):
        w.add_block(5, ssz=b"x")
    w.add_block(140, ssz=b"x")
    with pytest.raises(FormatError, match="slot 139 written after slot 140"):
        w.add_block(139, ssz=b"x")
    w.abort()


# ---------------------------------------------------------------------------------------------
# Corruption matrix: every case is a FormatError naming the file and a byte offset.


def _boundaries(path):
    with EraReader(path) as r:
        return [(rec.offset, rec.end, rec.type) for rec in r.records()]


def _expect_format_error(path):
    with pytest.raises(FormatError) as ei:
        with EraReader(path) as r:
            r.state_head()
            r.state_ssz()
            for _ in r.iter_blocks():
                pass
            list(r.records())
    msg = str(ei.value)
    assert msg.startswith(str(path)), msg
    assert "offset" in msg, msg
    return msg


def _corruptions(data: bytes, recs):
    cases = []
    for off, end, t in recs:  # truncation at each record boundary and mid-record
        cases.append((f"truncated at {off}", data[:off]))
        cases.append((f"truncated mid-record {off}", data[:(off + end) // 2]))
    for off, end, t in recs:
        for field, byte in (("type", 0), ("length", 2), ("length-high", 5), ("reserved", 6)):
            b = bytearray(data)
            b[off + byte] ^= 0x40
            cases.append((f"flip {field} @{off}", bytes(b)))
        if t in (e2store.COMPRESSED_SIGNED_BEACON_BLOCK, e2store.COMPRESSED_BEACON_STATE):
            b = bytearray(data)
            b[off + 8 + 14] ^= 0x01  # first chunk's CRC
            cases.append((f"flip crc @{off}", bytes(b)))
        b = bytearray(data)
        b[off + 2:off + 6] = b"\xff\xff\xff\xff"
        cases.append((f"length 2^32-1 @{off}", bytes(b)))
    idx = [r for r in recs if r[2] == e2store.SLOT_INDEX]
    for off, end, t in idx:
        b = bytearray(data)
        b[off + 16] ^= 0x10  # first offset
        cases.append((f"flip offset @{off}", bytes(b)))
        b = bytearray(data)
        b[end - 8] ^= 0x01  # count
        cases.append((f"flip count @{off}", bytes(b)))
        b = bytearray(data)
        b[end - 1] = 0xFF  # a huge count
        cases.append((f"huge count @{off}", bytes(b)))
    return cases


@pytest.mark.parametrize("era", [0, 2])
def test_corruption_matrix(tmp_path, sample_files, era):
    src = sample_files[era]
    data = src.read_bytes()
    recs = _boundaries(src)
    # keep the matrix tractable: all boundaries of the index/state/version records, and the
    # first three blocks
    keep = [r for r in recs if r[2] != e2store.COMPRESSED_SIGNED_BEACON_BLOCK][:] + \
        [r for r in recs if r[2] == e2store.COMPRESSED_SIGNED_BEACON_BLOCK][:3]
    cases = _corruptions(data, sorted(keep))
    assert len(cases) >= 20
    for label, bad in cases:
        p = tmp_path / src.name
        p.write_bytes(bad)
        tracemalloc.start()
        try:
            _expect_format_error(p)
        except BaseException as exc:  # name the case that let something else through
            raise AssertionError(f"{label}: {type(exc).__name__}: {exc}") from exc
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        # nothing is allocated from an untrusted length: the peak stays near the file size
        assert peak < 4 * len(data) + 1_000_000, f"{label}: peak allocation {peak} bytes"


def test_corrupt_file_cli_one_line(tmp_path, sample_files):
    from click.testing import CliRunner

    from era_tools.cli import main

    src = sample_files[2]
    p = tmp_path / src.name
    p.write_bytes(src.read_bytes()[:-5])
    (tmp_path / "spec.json").write_bytes((src.parent / "spec.json").read_bytes())
    res = CliRunner().invoke(main, ["info", str(p)])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(p) in lines[0] and "offset" in lines[0], res.stderr
    assert "Traceback" not in res.output


@pytest.mark.parametrize("fn", [framing.decompress_exact, framing.decompress_scratch])
def test_decompress_exact(fn):
    """The announced length must be exact: the engine refuses to overflow the buffer, a short
    stream is refused here, CRCs are checked, and any buffer (a memoryview) is read in place.
    The same for the per-thread scratch buffer (decompress_scratch)."""
    data = os.urandom(3000) + bytes(150_000)
    framed = framing.compress(data)
    assert fn(memoryview(framed), len(data)) == data
    with pytest.raises(FormatError, match="block: bad snappy data"):
        fn(framed, len(data) - 1, where="block")
    with pytest.raises(FormatError, match=f"decompressed to {len(data)} bytes, expected "
                                          f"{len(data) + 1}"):
        fn(framed, len(data) + 1, where="block")
    bad = bytearray(framed)
    bad[40] ^= 1
    with pytest.raises(FormatError, match="checksum|corrupt"):
        fn(bytes(bad), len(data), where="block")


def test_decompress_scratch_reuses_one_buffer_per_thread():
    small, big = b"a" * 1000, os.urandom(3 << 20)
    one = framing.decompress_scratch(framing.compress(small), len(small))
    two = framing.decompress_scratch(framing.compress(b"b" * 2000), 2000)
    assert one.obj is two.obj and len(one.obj) == 1 << 20   # reused, not reallocated
    assert bytes(two) == b"b" * 2000 and bytes(one) == b"b" * 1000  # one was overwritten
    three = framing.decompress_scratch(framing.compress(big), len(big))  # grown to fit
    assert bytes(three) == big and len(three.obj) == len(big)
    seen = []
    t = threading.Thread(target=lambda: seen.append(
        framing.decompress_scratch(framing.compress(small), len(small)).obj))
    t.start()
    t.join()
    assert seen[0] is not three.obj   # another thread has its own
