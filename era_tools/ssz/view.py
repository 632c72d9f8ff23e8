"""Zero-copy view of a serialized BeaconState.

    view = StateView(data, "capella", "mainnet")
    view.slot, view.genesis_validators_root, view.fork
    view.validators["effective_balance"]     # numpy structured array over the 121-byte records
    view.pubkeys()                           # (N, 48) uint8, a view into `data`
    view.balances                            # uint64 array
    view.hash_tree_root()                    # era_tools.ssz.fast, from the bytes

Opening checks the state's offset table (first offset = fixed part size, offsets non-decreasing
and inside the data) and nothing else, so it costs microseconds whatever the state size.  Array
properties check their field's size (whole elements, list limits) and then wrap the bytes with
`numpy.frombuffer`: no copy and no Python object per validator.  `hash_tree_root()` walks and
checks everything.  Malformed bytes raise `era_tools.errors.FormatError`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..errors import FormatError
from . import types_for
from .fast import Node, compile_sedes, container_field_ranges, hash_tree_root_bytes

__all__ = ["StateView", "numpy_dtype"]

_UINT_DTYPES = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}


def numpy_dtype(node: Node) -> np.dtype:
    """The numpy dtype of one serialized fixed-size SSZ value (packed, little-endian).

    uints of 1..8 bytes are numpy integers, wider uints and byte vectors are uint8 sub-arrays,
    booleans are numpy bool, containers are structured dtypes with the spec field names."""
    if not node.fixed:
        raise TypeError(f"{node.name} is not fixed-size")
    if node.kind == "basic":
        if node.is_bool:
            return np.dtype("?")
        if node.size in _UINT_DTYPES:
            return np.dtype(_UINT_DTYPES[node.size])
        return np.dtype(("u1", (node.size,)))
    if node.kind in ("bytevec", "bitvec"):
        return np.dtype(("u1", (node.size,)))
    if node.kind == "vector":
        return np.dtype((numpy_dtype(node.elem), (node.length,)))
    if node.kind == "container":
        return np.dtype({"names": list(node.names),
                         "formats": [numpy_dtype(f) for f in node.fields],
                         "offsets": list(node.field_offsets),
                         "itemsize": node.size})
    raise TypeError(f"no numpy dtype for {node.name}")


class StateView:
    """A read-only, zero-copy view of a serialized BeaconState of `fork` / `preset_base`."""

    def __init__(self, data, fork: str, preset_base: str):
        self.fork_name = fork
        self.preset_base = preset_base
        self.types = types_for(fork, preset_base)
        self._sedes = self.types.BeaconState
        self._node = compile_sedes(self._sedes)
        self._mv = memoryview(data).cast("B")
        self._ranges = container_field_ranges(self._sedes, self._mv)
        self._fields = dict(zip(self._node.names, self._node.fields))

    # --- raw access ----------------------------------------------------------------------------
    @property
    def field_names(self) -> tuple:
        return self._node.names

    def field_range(self, name: str) -> tuple[int, int]:
        """(start, end) byte offsets of a top-level field in the state."""
        try:
            return self._ranges[name]
        except KeyError:
            raise KeyError(f"{self.fork_name} BeaconState has no field {name!r}") from None

    def field_bytes(self, name: str) -> memoryview:
        """The serialized bytes of a top-level field (a memoryview into the state data)."""
        start, end = self.field_range(name)
        return self._mv[start:end]

    def field_array(self, name: str) -> np.ndarray:
        """A list/vector field as a numpy array over the state bytes (elements of fixed size):
        integers for uint lists, (N, k) uint8 for byte vectors, structured for containers."""
        node = self._fields.get(name)
        if node is None:
            raise KeyError(f"{self.fork_name} BeaconState has no field {name!r}")
        start, end = self._ranges[name]
        size = end - start
        if node.kind == "vector" or node.kind == "list":
            elem = node.elem
            if not elem.fixed:
                raise TypeError(f"{name} has variable-size elements")
            if size % elem.size:
                raise FormatError(
                    f"SSZ BeaconState.{name}: offset {start}: {size} bytes is not a whole number "
                    f"of {elem.name} elements ({elem.size} bytes each)")
            count = size // elem.size
            if node.kind == "list" and count > node.length:
                raise FormatError(
                    f"SSZ BeaconState.{name}: offset {start}: {count} elements, more than the "
                    f"limit {node.length}")
            if node.kind == "vector" and count != node.length:
                raise FormatError(
                    f"SSZ BeaconState.{name}: offset {start}: {count} elements, expected "
                    f"{node.length}")
            return np.frombuffer(self._mv[start:end], dtype=numpy_dtype(elem))
        if node.kind in ("bytevec", "bitvec"):
            return np.frombuffer(self._mv[start:end], dtype=np.uint8)
        raise TypeError(f"{name} is not a list or vector")

    def decode_field(self, name: str):
        """A top-level field decoded with py-ssz (for small fields: checkpoints, headers, ...)."""
        from ssz.exceptions import DeserializationError

        sedes = self._sedes._meta.container_sedes.field_sedes[self._node.names.index(name)]
        try:
            return sedes.deserialize(bytes(self.field_bytes(name)))
        except (DeserializationError, ValueError) as exc:
            start, _ = self._ranges[name]
            raise FormatError(f"SSZ BeaconState.{name}: offset {start}: {exc}") from exc

    # --- spec fields ---------------------------------------------------------------------------
    @property
    def slot(self) -> int:
        return int.from_bytes(self.field_bytes("slot"), "little")

    @property
    def genesis_time(self) -> int:
        return int.from_bytes(self.field_bytes("genesis_time"), "little")

    @property
    def genesis_validators_root(self) -> bytes:
        return bytes(self.field_bytes("genesis_validators_root"))

    @property
    def fork(self):
        """The state's `Fork` (previous_version, current_version, epoch), a py-ssz object."""
        return self.decode_field("fork")

    @property
    def latest_block_header(self):
        return self.decode_field("latest_block_header")

    @property
    def block_roots(self) -> np.ndarray:
        return self.field_array("block_roots")

    @property
    def state_roots(self) -> np.ndarray:
        return self.field_array("state_roots")

    @property
    def historical_roots(self) -> np.ndarray:
        return self.field_array("historical_roots")

    @property
    def historical_summaries(self) -> np.ndarray:
        """(N, 64) uint8: block_summary_root then state_summary_root (capella and later)."""
        if "historical_summaries" not in self._fields:
            raise KeyError(f"{self.fork_name} BeaconState has no historical_summaries")
        arr = self.field_array("historical_summaries")
        return arr.view(np.uint8).reshape(len(arr), 64)

    @cached_property
    def validators(self) -> np.ndarray:
        """Structured array over the 121-byte Validator records (zero-copy)."""
        return self.field_array("validators")

    @property
    def balances(self) -> np.ndarray:
        return self.field_array("balances")

    @property
    def validator_count(self) -> int:
        return len(self.validators)

    def pubkeys(self, contiguous: bool = False) -> np.ndarray:
        """(N, 48) uint8 of every validator pubkey: a strided view into the state bytes, or a
        compact copy with `contiguous=True`."""
        keys = self.validators["pubkey"]
        return np.ascontiguousarray(keys) if contiguous else keys

    def hash_tree_root(self) -> bytes:
        """The state root, computed from the bytes (checks the whole serialization)."""
        return hash_tree_root_bytes(self._sedes, self._mv)

    def __len__(self) -> int:
        return len(self._mv)

    def __repr__(self) -> str:
        return (f"StateView({self.fork_name}/{self.preset_base}, slot {self.slot}, "
                f"{len(self._mv)} bytes)")
