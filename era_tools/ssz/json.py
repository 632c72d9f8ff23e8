"""Beacon-API JSON encoding of SSZ objects (the `ethereum/beacon-APIs` conventions).

- unsigned integers (any width): decimal strings;
- booleans: JSON true/false;
- byte vectors and byte lists (roots, signatures, pubkeys, extra_data, transactions):
  0x-prefixed lower-case hex;
- bitlists and bitvectors: 0x-hex of their SSZ bytes (a bitlist keeps its length bit);
- containers: objects with the spec field names, in spec order;
- lists and vectors of anything else: JSON arrays.

`to_json(obj)` works on any container object from `era_tools.ssz.types_for(...)`;
`from_json(data, cls)` is its inverse.  Neither does I/O: pair them with the stdlib `json`.
`json_to_ssz_for(preset)` gives the converter that beacon-node clients use for nodes that
answer JSON only: (data, type name, fork) -> SSZ bytes.
"""

from __future__ import annotations

from typing import Any

from . import _pyssz  # noqa: F401  (first: loads py-ssz whole, once)
from ssz.sedes import (
    Bitlist,
    Bitvector,
    Boolean,
    Byte,
    ByteList,
    ByteVector,
    List,
    Serializable,
    UInt,
    Vector,
)

from ..errors import FormatError

__all__ = ["to_json", "from_json"]


def _is_container(sedes: Any) -> bool:
    return isinstance(sedes, type) and issubclass(sedes, Serializable)


def to_json(obj: Any, sedes: Any = None) -> Any:
    """Beacon-API JSON value (dict, list, str or bool) of `obj`.

    `sedes` defaults to the object's own class; pass a py-ssz sedes to encode a bare value
    (e.g. `to_json(state.balances, List(uint64, N))`).
    """
    if sedes is None:
        sedes = type(obj)
        if not _is_container(sedes):
            raise TypeError(f"to_json needs a container object or an explicit sedes, "
                            f"got {type(obj).__name__}")
    return _to_json(obj, sedes)


def _to_json(value: Any, sedes: Any) -> Any:
    if _is_container(sedes):
        return {name: _to_json(getattr(value, name), field_sedes)
                for name, field_sedes in sedes._meta.fields}
    if isinstance(sedes, Boolean):
        return bool(value)
    if isinstance(sedes, UInt):
        return str(int(value))
    if isinstance(sedes, Byte):
        return "0x" + bytes(value).hex()
    if isinstance(sedes, (ByteVector, ByteList)):  # before List/Vector: they subclass them
        return "0x" + bytes(value).hex()
    if isinstance(sedes, (Bitlist, Bitvector)):
        return "0x" + sedes.serialize(value).hex()
    if isinstance(sedes, (List, Vector)):
        element = sedes.element_sedes
        return [_to_json(v, element) for v in value]
    raise TypeError(f"no Beacon-API JSON encoding for sedes {sedes!r}")


def from_json(data: Any, cls: Any, *, where: str = "JSON") -> Any:
    """Build an object of container class `cls` (or a value of sedes `cls`) from Beacon-API
    JSON.  Bad shapes or values raise FormatError naming the field path."""
    return _from_json(data, cls, where)


def _hex(data: Any, path: str) -> bytes:
    if not isinstance(data, str) or not data.startswith("0x"):
        raise FormatError(f"{path}: expected 0x-hex string, got {data!r:.80}")
    try:
        return bytes.fromhex(data[2:])
    except ValueError:
        raise FormatError(f"{path}: not hex: {data!r:.80}") from None


def _from_json(data: Any, sedes: Any, path: str) -> Any:
    if _is_container(sedes):
        if not isinstance(data, dict):
            raise FormatError(f"{path}: expected object for {sedes.__name__}, "
                              f"got {type(data).__name__}")
        missing = [n for n, _ in sedes._meta.fields if n not in data]
        if missing:
            raise FormatError(f"{path}: {sedes.__name__} lacks field(s) {', '.join(missing)}")
        return sedes(**{name: _from_json(data[name], s, f"{path}.{name}")
                        for name, s in sedes._meta.fields})
    if isinstance(sedes, Boolean):
        if not isinstance(data, bool):
            raise FormatError(f"{path}: expected true/false, got {data!r:.80}")
        return data
    if isinstance(sedes, UInt):
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            raise FormatError(f"{path}: expected decimal string, got {data!r:.80}")
        try:
            n = int(data, 10) if isinstance(data, str) else data
        except ValueError:
            raise FormatError(f"{path}: not a decimal integer: {data!r:.80}") from None
        if not 0 <= n < 2 ** sedes.num_bits:
            raise FormatError(f"{path}: {n} out of range for uint{sedes.num_bits}")
        return n
    if isinstance(sedes, (ByteVector, ByteList, Byte)):
        raw = _hex(data, path)
        if isinstance(sedes, ByteVector) and len(raw) != sedes.length:
            raise FormatError(f"{path}: expected {sedes.length} bytes, got {len(raw)}")
        if isinstance(sedes, Byte) and len(raw) != 1:
            raise FormatError(f"{path}: expected 1 byte, got {len(raw)}")
        if isinstance(sedes, ByteList) and len(raw) > sedes.max_length:
            raise FormatError(f"{path}: {len(raw)} bytes exceed limit {sedes.max_length}")
        return raw
    if isinstance(sedes, (Bitlist, Bitvector)):
        raw = _hex(data, path)
        try:
            bits = sedes.deserialize(raw)
            if sedes.serialize(bits) != raw:
                raise ValueError("padding bits set")
        except Exception as exc:
            raise FormatError(f"{path}: bad bitfield {data!r:.80}: {exc}") from exc
        return tuple(bits)
    if isinstance(sedes, (List, Vector)):
        if not isinstance(data, list):
            raise FormatError(f"{path}: expected array, got {type(data).__name__}")
        if isinstance(sedes, List) and len(data) > sedes.max_length:
            raise FormatError(f"{path}: {len(data)} items exceed limit {sedes.max_length}")
        if isinstance(sedes, Vector) and len(data) != sedes.length:
            raise FormatError(f"{path}: expected {sedes.length} items, got {len(data)}")
        element = sedes.element_sedes
        return tuple(_from_json(v, element, f"{path}[{i}]") for i, v in enumerate(data))
    raise TypeError(f"no Beacon-API JSON decoding for sedes {sedes!r}")


def json_to_ssz_for(preset_base: str):
    """A converter for nodes that answer JSON only: Beacon API JSON `data` of `type_name`
    (e.g. "SignedBeaconBlock") in `fork` -> SSZ bytes."""
    from .. import ssz

    def convert(data: dict, type_name: str, fork: str) -> bytes:
        cls = getattr(ssz.types_for(fork, preset_base), type_name)
        return ssz.encode(from_json(data, cls, where=f"{type_name} ({fork}) JSON"))

    return convert
