"""SSZ containers phase0 … fulu, for every preset, on top of py-ssz (`ssz`).

One module per fork (`phase0.py` … `fulu.py`); each exposes `build(preset) -> namespace` and
reuses the previous fork's class objects for the types it leaves unchanged.  This module is the
public face:

    t = types_for("capella", "minimal")        # namespace: t.SignedBeaconBlock, t.BeaconState, ...
    blk = decode_block(data, "capella", "minimal")
    block_root(blk) == hash_tree_root(blk.message)
    encode(blk) == data

The caller always names the fork (from the slot and the network's fork schedule): nothing
here guesses a fork by trial decoding.  Malformed bytes raise `FormatError`.

Pure-Python SSZ is meant for blocks, small containers and cross-checks; big mainnet states go
through the numpy fast path elsewhere.
"""

from __future__ import annotations

import importlib
import threading
from types import SimpleNamespace
from typing import Any

from ..config import FORKS, PRESETS
from ..errors import ConfigError, FormatError

__all__ = [
    "FORKS", "SSZContainer", "types_for", "decode", "decode_block", "decode_state", "encode",
    "hash_tree_root", "block_root", "check_fork", "fork_at_least", "default",
]

_lock = threading.Lock()


def __getattr__(name: str):
    # py-ssz (and with it eth_utils and pydantic: ~0.5 s) loads on first use, so that the raw
    # byte layouts (era_tools.ssz.layout) stay cheap to import for era.py and the server
    if name == "SSZContainer":
        from .phase0 import SSZContainer

        return SSZContainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_types: dict[tuple[str, str], SimpleNamespace] = {}


def check_fork(fork: str) -> str:
    if fork not in FORKS:
        raise ConfigError(f"unknown fork {fork!r}; known: {', '.join(FORKS)}")
    return fork


def fork_at_least(fork: str, other: str) -> bool:
    """True when `fork` is `other` or a later fork."""
    return FORKS.index(check_fork(fork)) >= FORKS.index(check_fork(other))


def types_for(fork: str, preset_base: str) -> SimpleNamespace:
    """The SSZ classes of `fork` sized by preset `preset_base` ("mainnet", "minimal", ...).

    Cached: the same (fork, preset) always gives the same namespace and class objects, and a
    type a fork leaves unchanged is the very class of the earlier fork.  The namespace also
    carries `FORK` (name) and `PRESET` (the preset dict).
    """
    key = (fork, preset_base)
    ns = _types.get(key)
    if ns is not None:
        return ns
    check_fork(fork)
    if preset_base not in PRESETS:
        raise ConfigError(f"unknown preset {preset_base!r}; known: {', '.join(sorted(PRESETS))}")
    module = importlib.import_module(f"{__name__}.{fork}")
    with _lock:
        ns = _types.get(key)
        if ns is None:
            ns = module.build(PRESETS[preset_base])
            _types[key] = ns
    return ns


def _describe(data: Any) -> str:
    try:
        return f"{len(data)}-byte SSZ"
    except TypeError:
        return "SSZ"


def _first_difference(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def decode(data: bytes, cls: type, *, fork: str | None = None, where: str | None = None,
           strict: bool = True) -> Any:
    """Decode `data` as `cls` (a class from `types_for`), wrapping every failure in FormatError.

    py-ssz accepts some invalid encodings (e.g. a first offset that does not end the fixed
    part, set padding bits).  With `strict` (the default) the object is re-encoded and must
    give back `data` exactly, so only canonical SSZ is accepted; the check also fills the
    object's serialization cache, so a later `encode` costs nothing.
    """
    label = f"{fork} {cls.__name__}" if fork else cls.__name__
    data = bytes(data)
    try:
        obj = cls.deserialize(data)
        again = cls.serialize(obj) if strict else data
    except Exception as exc:  # py-ssz raises many unrelated exception types on bad input
        raise FormatError(f"{where or _describe(data)}: cannot decode {label}: {exc}") from exc
    if again != data:
        at = _first_difference(again, data)
        raise FormatError(
            f"{where or _describe(data)}: cannot decode {label}: non-canonical SSZ "
            f"(re-encodes to {len(again)} bytes, first difference at byte {at}: "
            f"expected 0x{again[at:at + 4].hex()}, got 0x{data[at:at + 4].hex()})")
    return obj


def decode_block(data: bytes, fork: str, preset_base: str, *, where: str | None = None,
                 strict: bool = True):
    """Decode an SSZ `SignedBeaconBlock` of `fork`."""
    t = types_for(fork, preset_base)
    return decode(data, t.SignedBeaconBlock, fork=fork, where=where, strict=strict)


def decode_state(data: bytes, fork: str, preset_base: str, *, where: str | None = None,
                 strict: bool = True):
    """Decode an SSZ `BeaconState` of `fork` (fine for small states; slow for mainnet ones)."""
    t = types_for(fork, preset_base)
    return decode(data, t.BeaconState, fork=fork, where=where, strict=strict)


def encode(obj: Any, sedes: Any = None) -> bytes:
    """SSZ bytes of a container object (or of `obj` under an explicit py-ssz `sedes`)."""
    from ._pyssz import lib

    return lib.encode(obj, sedes)


def hash_tree_root(obj: Any, sedes: Any = None) -> bytes:
    """hash_tree_root of a container object (or of `obj` under an explicit py-ssz `sedes`)."""
    if sedes is None:
        return bytes(obj.hash_tree_root)
    from ._pyssz import lib

    return bytes(lib.get_hash_tree_root(obj, sedes))


def block_root(signed_block: Any) -> bytes:
    """The block root: hash_tree_root(signed_block.message)."""
    return bytes(signed_block.message.hash_tree_root)


def default(sedes: Any) -> Any:
    """The default value of a container class or sedes (the spec's `T()`: zeros, empty lists),
    e.g. to compare with `LightClientHeader()`."""
    from ssz.sedes import Bitlist, Bitvector, Boolean, ByteList, ByteVector, List, UInt, Vector

    if isinstance(sedes, type) and hasattr(sedes, "_meta"):
        return sedes(**{n: default(s) for n, s in sedes._meta.fields})
    if isinstance(sedes, Boolean):
        return False
    if isinstance(sedes, UInt):
        return 0
    if isinstance(sedes, ByteVector):
        return b"\x00" * sedes.length
    if isinstance(sedes, ByteList):
        return b""
    if isinstance(sedes, Bitvector):
        return (False,) * sedes.bit_count
    if isinstance(sedes, Vector):
        return tuple(default(sedes.element_sedes) for _ in range(sedes.length))
    if isinstance(sedes, (List, Bitlist)):
        return ()
    raise TypeError(f"no default for {sedes!r}")
