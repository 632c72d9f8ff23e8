"""Verifier.cpu_slots: a forward sync's workers (8 by default) hash their replies in their own
threads, at most one per usable CPU at a time (each reply's blocks one after another), over
real blocks of sample_eras/."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from era_tools import framing
from era_tools.era import EraReader
from era_tools.sync import queue as q
from era_tools.sync.peers import PeerReply, RawBlock


def _reply(sample_files, era: int) -> tuple[int, int, PeerReply]:
    with EraReader(sample_files[era]) as r:
        slots = r.block_slots()
        blocks = [RawBlock(slot=-1, framed=bytes(r.block_framed(s)),
                           length=framing.uncompressed_length(r.block_framed(s)))
                  for s in slots]
        lo, hi = r.start_slot, r.end_slot
    return lo, hi, PeerReply(blocks, hi)


def test_usable_cpus_follows_the_affinity_mask():
    first = min(os.sched_getaffinity(0))
    out = subprocess.run(
        [sys.executable, "-c", "import os; from era_tools.procs import usable_cpus; "
         f"os.sched_setaffinity(0, {{{first}}}); print(usable_cpus())"],
        capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_replies_are_hashed_one_per_cpu_at_a_time(network, sample_files, monkeypatch):
    monkeypatch.setattr(q, "usable_cpus", lambda: 1)
    verifier = q.Verifier(network, None)
    calls: list = []
    real = framing.decompress_scratch

    def slow(data, length, where="payload"):
        calls.append(threading.get_ident())
        time.sleep(0.001)  # lets the other threads run meanwhile
        return real(data, length, where)

    monkeypatch.setattr(q.framing, "decompress_scratch", slow)
    replies = [_reply(sample_files, era) for era in (1, 2, 3, 4)]
    results: dict = {}

    def check(k):
        lo, hi, reply = replies[k]
        results[k] = verifier.check_group([(lo, hi)], reply, "test")[0]

    threads = [threading.Thread(target=check, args=(k,)) for k in range(len(replies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every reply verified, with its roots
    for k, (lo, hi, reply) in enumerate(replies):
        blocks, nbytes = results[k]
        assert len(blocks) == len(reply.blocks) > 0
        assert all(b.parent == a.root for a, b in zip(blocks, blocks[1:]))
    # each thread's blocks hashed in one run: no two replies at once on the one CPU
    runs = [t for i, t in enumerate(calls) if i == 0 or calls[i - 1] != t]
    assert len(runs) == len(replies)
