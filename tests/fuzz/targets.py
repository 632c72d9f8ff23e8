"""Fuzz targets: one function per untrusted-input parser, taking raw bytes.

Each target may raise only EraToolsError subclasses; anything else is a crash.
Used by tests/test_fuzz.py (seed replay + deterministic mutations) and, later,
by an atheris driver.  Knows nothing of the CLI."""
import io
import os
import tempfile

from era_tools import e2store, framing
from era_tools.era import EraReader, SlotIndex


def fuzz_framing(data: bytes) -> None:
    framing.decompress(data, max_size=max(1024, 64 * len(data)))


def fuzz_e2store(data: bytes) -> None:
    for _ in e2store.iter_records(io.BytesIO(data), len(data), "fuzz"):
        pass


def fuzz_slot_index(data: bytes) -> None:
    SlotIndex.decode(data, 0, "fuzz")


def fuzz_era_reader(data: bytes) -> None:
    fd, path = tempfile.mkstemp(suffix=".era")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        r = EraReader(path)
        try:
            for _slot, _ssz in r.iter_blocks():
                pass
            r.state_head()
        finally:
            r._f.close()
    finally:
        os.unlink(path)


TARGETS = {
    "framing": fuzz_framing,
    "e2store": fuzz_e2store,
    "slot_index": fuzz_slot_index,
    "era_reader": fuzz_era_reader,
}
