"""Fuzz targets: one function per untrusted-input parser, taking raw bytes.

Each target may raise only EraToolsError subclasses; anything else is a crash.
Used by tests/test_fuzz.py (seed replay + deterministic mutations) and, later,
by an atheris driver.  Knows nothing of the CLI."""
import io
import os
import tempfile

from era_tools import e2store, framing
from era_tools.era import EraReader, SlotIndex
from era_tools.errors import EraToolsError


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


def fuzz_rlp(data: bytes) -> None:
    from era_tools.era1 import rlp_decode
    rlp_decode(data, "fuzz")


def fuzz_spec_json(data: bytes) -> None:
    import json
    from era_tools.config import network_from_spec
    from era_tools.errors import ConfigError
    try:
        spec = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"fuzz: not JSON: {exc}") from exc  # the callers' own wrapping
    if isinstance(spec, dict):
        network_from_spec(spec.get("data", spec))


def _ssz(kind: str, data: bytes) -> None:
    from era_tools import ssz
    for preset in ("minimal", "mainnet"):
        for fork in ssz.FORKS:
            try:  # every fork's decoder sees the input, not only the first
                (ssz.decode_block if kind == "block" else ssz.decode_state)(
                    data, fork, preset, where="fuzz")
            except EraToolsError:
                pass


def fuzz_ssz_block(data: bytes) -> None:
    _ssz("block", data)


def fuzz_ssz_state(data: bytes) -> None:
    _ssz("state", data)


TARGETS.update({
    "rlp": fuzz_rlp,
    "spec_json": fuzz_spec_json,
    "ssz_block": fuzz_ssz_block,
    "ssz_state": fuzz_ssz_state,
})
