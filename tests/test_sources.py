"""Block sources behind one protocol (era_tools.sync.sources) and the forward SyncQueue: era
files as a backfill peer (their blocks checked like any peer's: roots, links, signatures),
the forward queue over era files with a source that withholds a block (rewind and blame),
and a bad --peer as a usage error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from click.testing import CliRunner

from era_tools.cli import main
from era_tools.era import EraReader, EraWriter
from era_tools.store import ChainStore
from era_tools.sync.backfill import backfill
from era_tools.sync.queue import PeerState, SyncQueue, Verifier
from era_tools.sync.sources import EraFileSource, make_source
from test_backfill import (assert_equals_reference, checkpointed, fresh, honest,  # noqa: F401
                           index_of, net, reference)

ZERO = b"\x00" * 32
FORGED_SLOT = 330          # a block of era 6 (slots 320..383 in the minimal preset)
GRAFFITI_BYTE = 360        # inside the phase0 body's graffiti (body at 184, graffiti +168)


def forged_copy(sample_dir, tmp_path):
    """sample_eras/ with one block's graffiti changed (valid framing, wrong signature)."""
    out = tmp_path / "forged"
    shutil.copytree(sample_dir, out)
    era = FORGED_SLOT // 64 + 1
    [name] = [n for n in os.listdir(out) if n.endswith(".era") and f"-{era:05d}-" in n]
    with EraReader(out / name) as r:
        blocks = [(s, r.block_ssz(s)) for s in r.slots()]
        state = r.state_framed()
    os.unlink(out / name)
    with EraWriter(out, "minimal", era, 64, fsync=False) as w:
        for s, ssz in blocks:
            if ssz is None:
                continue
            if s == FORGED_SLOT:
                ssz = bytearray(ssz)
                ssz[GRAFFITI_BYTE] ^= 0xFF
                ssz = bytes(ssz)
            w.add_block(s, ssz=ssz)
        w.set_state(framed=state)
    assert os.path.exists(out / name)  # same state: same name
    return out


def test_backfill_from_era_files_equals_the_pulled_store(sample_dir, checkpointed, reference,
                                                         tmp_path):
    db = fresh(checkpointed, tmp_path)
    r = CliRunner().invoke(main, ["backfill", "--db", str(db), "--peer", str(sample_dir),
                                  "--json"])
    assert r.exit_code == 0, r.output
    with ChainStore.open(db) as store:
        assert_equals_reference(store, reference)


def test_forged_era_files_are_dropped_and_an_honest_peer_finishes(sample_dir, honest,
                                                                  checkpointed, reference,
                                                                  tmp_path):
    forged = forged_copy(sample_dir, tmp_path)
    db = fresh(checkpointed, tmp_path)
    with ChainStore.open(db) as store:
        res = backfill(store, [str(forged), honest[0].url], workers=2, timeout=10)
        assert res.queue.stopped == "genesis"
        assert_equals_reference(store, reference)
    by_url = {p["url"]: p for p in res.queue.peers}
    era_peer = by_url[str(forged)]
    assert era_peer["kind"] == "range"
    assert era_peer["dropped"] and "proposer signature does not verify" in era_peer["last_fault"]
    assert f"slot {FORGED_SLOT}" in era_peer["last_fault"]
    # alone, the forged files store nothing below the forged block's era
    db2 = fresh(checkpointed, tmp_path / "2")
    r = CliRunner().invoke(main, ["backfill", "--db", str(db2), "--peer", str(forged)])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines()[-1].startswith("error: no usable peers left below slot ")
    with ChainStore.open(db2) as store:
        assert store.anchor.covered[-1][0] > FORGED_SLOT
        ref = dict(reference[0])
        assert all(ref[s] == root for s, root in index_of(store))


class Withholding(EraFileSource):
    """Era files that claim one slot is empty (a block withheld: only the next block's
    parent_root can show it)."""

    def __init__(self, location, network, slot):
        super().__init__(location, network)
        self.url += "#withholding"  # peers are told apart (and excluded) by URL
        self.slot = slot

    def fetch(self, first, last, extra_slots=()):
        reply = super().fetch(first, last, extra_slots)
        reply.blocks = [b for b in reply.blocks if b.slot != self.slot]
        return reply


def test_forward_queue_rewinds_past_a_withheld_block_and_blames_it(sample_dir, net, reference,
                                                                   tmp_path):
    ref = dict(reference[0])
    # the last block of an 8-slot batch, so the batch alone looks fine (its slots after the
    # last block it gives are claimed empty) and only the next batch's first block shows it
    withheld = next(s for s in range(200, 1000) if s % 8 == 7 and ref[s] != ref[s - 1])
    liar = PeerState(Withholding(str(sample_dir), net, withheld))
    good = PeerState(make_source(str(sample_dir), net))
    with ChainStore.open(tmp_path / "db", net) as store:
        q = SyncQueue.forward(store, [liar, good], Verifier(net, None), start=0, parent=ZERO,
                              target=1023, target_root=ref[1023], batch_slots=8, workers=1,
                              range_batches=4)
        res = q.run()
        assert res.stopped == "target" and q.unheld_slot is None
        assert index_of(store, 0, 1023) == [(s, r) for s, r in reference[0] if s <= 1023]
        assert store.anchor.covered == [(0, 1023)]
    assert liar.faults >= 1 and "too few blocks" in liar.reason
    assert good.good_batches >= 1 and not good.dropped


def test_forward_queue_stops_at_the_finalized_slot_a_source_lacks(sample_dir, net, reference,
                                                                  tmp_path):
    """The era files end at slot 1023; the finalized slot 1024 (its block begins the next
    era) is left uncovered, the chain below it stored."""
    ref = dict(reference[0])
    with ChainStore.open(tmp_path / "db", net) as store:
        q = SyncQueue.forward(store, [PeerState(make_source(str(sample_dir), net))],
                              Verifier(net, None), start=960, parent=ref[959], target=1024,
                              target_root=ref[1024], tip_unheld_ok=True, strict=True)
        res = q.run()
        assert (res.stopped, q.unheld_slot) == ("unheld tip", 1024)
        assert store.anchor.covered == [(960, 1023)]


def test_a_peer_that_is_neither_url_nor_directory_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(main, ["backfill", "--db", str(tmp_path / "db"), "--peer",
                                  str(tmp_path / "nowhere")])
    assert r.exit_code == 2
    assert f"'{tmp_path / 'nowhere'}' is not an http:// or https:// URL with a host, an s3:// " \
        "URL, or a directory of era files" in r.output
    assert not (tmp_path / "db").exists()


def test_backfill_from_era_files_in_a_bucket(sample_dir, checkpointed, reference, s3,
                                             tmp_path):
    """`--peer s3://bucket/prefix`: the era files are read where they lie (ranged GETs), their
    blocks checked like any peer's.  Run as an `era` process (object-storage clients keep
    threads that must not meet a fork in the test process)."""
    import subprocess
    import sys

    for f in sorted(sample_dir.iterdir()):
        s3.put(f"eras/{f.name}", f.read_bytes())
    db = fresh(checkpointed, tmp_path)
    r = subprocess.run([sys.executable, "-c", "from era_tools.cli import main; main()",
                        "backfill", "--db", str(db), "--peer", f"{s3.url}/eras", "--json"],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert r.returncode == 0, r.stderr
    with ChainStore.open(db) as store:
        assert_equals_reference(store, reference)


def test_an_era_block_announcing_a_huge_size_is_refused_before_inflating(sample_dir, net,
                                                                          tmp_path):
    """A block record of 2,000 tiny snappy chunks that each announce 64 KiB (131 MB in all,
    from 18 KB of file): the source refuses it from the chunk headers, allocating nothing
    near that size."""
    import tracemalloc

    import pytest

    from era_tools.sync.peers import PeerFault

    chunk = b"\x00" + (8).to_bytes(3, "little") + b"\0\0\0\0" + b"\x80\x80\x04" + b"\0"
    bomb = b"\xff\x06\x00\x00sNaPpY" + chunk * 2000
    out = tmp_path / "eras"
    out.mkdir()
    era = 3
    [name] = [n for n in os.listdir(sample_dir) if f"-{era:05d}-" in n]
    with EraReader(sample_dir / name) as r:
        slots = [s for s in r.slots() if r.block_framed(s) is not None]
        state = r.state_framed()
        blocks = {s: r.block_framed(s) for s in slots}
    with EraWriter(out, "minimal", era, 64, fsync=False) as w:
        for s in slots:
            w.add_block(s, framed=bomb if s == slots[0] else blocks[s])
        w.set_state(framed=state)
    src = EraFileSource(str(out), net)
    tracemalloc.start()
    with pytest.raises(PeerFault) as exc:
        src.fetch((era - 1) * 64, era * 64 - 1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert f"slot {slots[0]}: block of 131072000 bytes announced, outside [100, " in str(exc.value)
    assert exc.value.kind == "bad"
    assert peak < 8 << 20, peak
