"""hash_tree_root straight from serialized SSZ bytes, driven by py-ssz sedes.

`hash_tree_root_bytes(sedes, data)` gives the same root as `ssz.hash_tree_root(decoded)` without
decoding: no Python object per element.  Lists and vectors of basic types are packed as they
lie in the bytes; lists and vectors of fixed-size containers (`validators`: 1M x 121 bytes) are
hashed in batches with numpy: every element's field leaves are built as one (n, fields, 32)
array and hashed layer by layer across all elements at once with the batch hasher of
`era_tools.hashing` (native when built, hashlib otherwise).  In this Python walker
variable-size elements (transactions, attestations) are walked one by one; the native walker
(`_sha256.ssz_root`, used whenever the extension is built) takes all values of a type at once
and hashes their trees level by level together, 16 inputs per AVX-512 call or two per SHA-NI
call.

The bytes are untrusted: every offset is checked (first offset = fixed part size, offsets
non-decreasing and inside the data), every fixed size and list limit is checked before
anything is sliced or allocated, and malformed input raises `era_tools.errors.FormatError`
naming the field path and the byte offset.  A value whose root is returned here is also
well-formed SSZ (booleans are 0/1, bitlists have their delimiter, bitvectors no stray bits).

`container_field_ranges(sedes, data)` exposes the checked offset table of a container (the
byte range of every top-level field) for zero-copy views (`era_tools.ssz.view`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _pyssz  # noqa: F401  (first: loads py-ssz whole, once)
from ssz.sedes import (
    Bitlist,
    Bitvector,
    Boolean,
    ByteList,
    ByteVector,
    Container,
    List,
    Serializable,
    UInt,
    Vector,
)
from ssz.sedes.byte import Byte

from .. import hashing
from ..errors import FormatError

try:  # one native call per batch of trees (same optional build as hashing's hasher)
    from .._sha256 import merkleize_each as _native_merkleize_each  # type: ignore
except ImportError:  # pragma: no cover - depends on the build
    _native_merkleize_each = None
try:  # a whole value walked in C from a compiled plan (same optional build)
    from .._sha256 import ssz_root as _native_ssz_root  # type: ignore
except ImportError:  # pragma: no cover - depends on the build
    _native_ssz_root = None

__all__ = ["hash_tree_root_bytes", "hash_tree_root_bytes_py", "native_plan", "container_field_ranges", "compile_sedes", "Node", "merkleize_each",
           "roots_fixed", "zero_bytes", "serialize_container"]

OFFSET_SIZE = 4
# Elements per numpy batch for lists/vectors of fixed-size containers: bounds the working
# memory (a batch of validators is 64Ki x 8 leaves x 32 bytes = 16 MiB) whatever the list size.
BATCH = 1 << 16


@dataclass(eq=False)
class Node:
    """A compiled sedes: what the byte walker needs, computed once per sedes object."""

    kind: str  # basic | bytevec | bitvec | bytelist | bitlist | vector | list | container
    name: str
    fixed: bool
    size: int = 0  # serialized size of a fixed-size value
    basic_size: int = 0  # basic: 1..32 bytes; vector/list of basic: element size
    is_bool: bool = False
    length: int = 0  # vector length, list limit, byte/bit count or limit
    elem: "Node | None" = None
    names: tuple = ()
    fields: tuple = ()
    field_offsets: tuple = ()  # container: position of each field (or its offset) in the fixed part
    fixed_part: int = 0  # container: size of the fixed part
    chunk_limit: int = 0  # chunks before padding (vector/bytevec/bitvec) or the list chunk limit
    extra: dict = field(default_factory=dict)


_cache: dict[int, tuple[Any, Node]] = {}


def _depth(chunks: int) -> int:
    return max(chunks - 1, 0).bit_length()


def _sedes_name(sedes) -> str:
    if isinstance(sedes, type):
        return sedes.__name__
    return type(sedes).__name__


def compile_sedes(sedes) -> Node:
    """Compile (and cache) a py-ssz sedes or Serializable class into a `Node`."""
    hit = _cache.get(id(sedes))
    if hit is not None and hit[0] is sedes:
        return hit[1]
    node = _compile(sedes)
    _cache[id(sedes)] = (sedes, node)  # keeps sedes alive, so the id stays unique
    return node


def _compile(sedes) -> Node:
    if isinstance(sedes, type) and issubclass(sedes, Serializable):
        meta = sedes._meta
        if meta.container_sedes is None:
            raise TypeError(f"{sedes.__name__} has no fields")
        names = tuple(meta.field_names)
        return _compile_container(sedes.__name__, names, meta.container_sedes.field_sedes)
    if isinstance(sedes, Container):
        names = tuple(f"field{i}" for i in range(len(sedes.field_sedes)))
        return _compile_container("Container", names, sedes.field_sedes)
    if isinstance(sedes, Boolean):
        return Node("basic", "boolean", True, size=1, basic_size=1, is_bool=True)
    if isinstance(sedes, (UInt, Byte)):
        return Node("basic", _sedes_name(sedes), True, size=sedes.size, basic_size=sedes.size)
    if isinstance(sedes, ByteVector):
        n = sedes.length
        return Node("bytevec", f"ByteVector[{n}]", True, size=n, length=n,
                    chunk_limit=(n + 31) // 32)
    if isinstance(sedes, ByteList):
        n = sedes.max_length
        return Node("bytelist", f"ByteList[{n}]", False, length=n, chunk_limit=(n + 31) // 32)
    if isinstance(sedes, Bitvector):
        n = sedes.bit_count
        return Node("bitvec", f"Bitvector[{n}]", True, size=(n + 7) // 8, length=n,
                    chunk_limit=(n + 255) // 256)
    if isinstance(sedes, Bitlist):
        n = sedes.max_bit_count
        return Node("bitlist", f"Bitlist[{n}]", False, length=n, chunk_limit=(n + 255) // 256)
    if isinstance(sedes, Vector):
        elem = compile_sedes(sedes.element_sedes)
        n = sedes.length
        name = f"Vector[{elem.name}, {n}]"
        if elem.kind == "basic":
            return Node("vector", name, True, size=n * elem.size, basic_size=elem.size,
                        is_bool=elem.is_bool, length=n, elem=elem,
                        chunk_limit=(n * elem.size + 31) // 32)
        return Node("vector", name, elem.fixed, size=n * elem.size if elem.fixed else 0,
                    length=n, elem=elem, chunk_limit=n)
    if isinstance(sedes, List):
        elem = compile_sedes(sedes.element_sedes)
        n = sedes.max_length
        name = f"List[{elem.name}, {n}]"
        if elem.kind == "basic":
            return Node("list", name, False, basic_size=elem.size, is_bool=elem.is_bool,
                        length=n, elem=elem, chunk_limit=(n * elem.size + 31) // 32)
        return Node("list", name, False, length=n, elem=elem, chunk_limit=n)
    raise TypeError(f"unsupported SSZ sedes {sedes!r}")


def _compile_container(name: str, names: tuple, field_sedes) -> Node:
    fields = tuple(compile_sedes(s) for s in field_sedes)
    offsets = []
    pos = 0
    for f in fields:
        offsets.append(pos)
        pos += f.size if f.fixed else OFFSET_SIZE
    fixed = all(f.fixed for f in fields)
    return Node("container", name, fixed, size=pos if fixed else 0, names=names, fields=fields,
                field_offsets=tuple(offsets), fixed_part=pos, chunk_limit=len(fields))


# --- errors ------------------------------------------------------------------------------------

def _fail(path: str, pos: int, what: str):
    raise FormatError(f"SSZ {path}: offset {pos}: {what}")


# --- vectorized roots of many fixed-size values ----------------------------------------------

def _hash_layer_np(layer: np.ndarray) -> np.ndarray:
    """Hash the pairs of a C-contiguous uint8 array whose total size is a multiple of 64."""
    flat = np.ascontiguousarray(layer).reshape(-1)
    return np.frombuffer(hashing.hash_layer(flat), dtype=np.uint8)


def merkleize_each(leaves: np.ndarray, depth: int) -> np.ndarray:
    """Roots of n trees at once: `leaves` is (n, c, 32) uint8 with c <= 2**depth; returns (n, 32)."""
    n, c = leaves.shape[0], leaves.shape[1]
    if depth == 0:
        return leaves.reshape(n, 32)
    # hashing._native_hash_pairs is the switch that selects hashlib everywhere (tests, bench)
    if _native_merkleize_each is not None and hashing._native_hash_pairs is not None:
        out = _native_merkleize_each(np.ascontiguousarray(leaves), c, depth)
        return np.frombuffer(out, dtype=np.uint8).reshape(n, 32)
    layer = leaves
    for d in range(depth):
        if c % 2:
            pad = np.broadcast_to(np.frombuffer(hashing.ZERO_HASHES[d], dtype=np.uint8),
                                  (n, 1, 32))
            layer = np.concatenate([layer, pad], axis=1)
            c += 1
        c //= 2
        layer = _hash_layer_np(layer).reshape(n, c, 32)
    return layer.reshape(n, 32)


def _packed_roots(arr: np.ndarray, nbytes: int, chunks: int) -> np.ndarray:
    """Roots of n packed byte strings of `nbytes` each (arr (n, nbytes)), `chunks` chunks each."""
    n = arr.shape[0]
    if nbytes == chunks * 32:
        leaves = np.ascontiguousarray(arr).reshape(n, chunks, 32)
    else:
        leaves = np.zeros((n, chunks * 32), dtype=np.uint8)
        leaves[:, :nbytes] = arr
        leaves = leaves.reshape(n, chunks, 32)
    return merkleize_each(leaves, _depth(chunks))


def roots_fixed(node: Node, arr: np.ndarray, path: str, base: int = 0) -> np.ndarray:
    """Roots (n, 32) of n serialized fixed-size values: `arr` is (n, node.size) uint8.

    `base` is the byte offset of arr[0] in the outer data (for error messages)."""
    n = arr.shape[0]
    k = node.kind
    if k == "basic":
        if node.is_bool:
            _check_bools(arr, path, base, node.size)
        out = np.zeros((n, 32), dtype=np.uint8)
        out[:, :node.size] = arr
        return out
    if k == "bytevec":
        return _packed_roots(arr, node.size, node.chunk_limit)
    if k == "bitvec":
        _check_bitvector_tail(arr[:, -1], node.length, path, base, node.size)
        return _packed_roots(arr, node.size, node.chunk_limit)
    if k == "vector":
        if node.elem.kind == "basic":
            if node.is_bool:
                _check_bools(arr, path, base, node.size)
            return _packed_roots(arr, node.size, node.chunk_limit)
        esize = node.elem.size
        elem_roots = roots_fixed(node.elem, arr.reshape(n * node.length, esize), path + "[]",
                                 base)
        return merkleize_each(elem_roots.reshape(n, node.length, 32), _depth(node.length))
    if k == "container":
        leaves = np.empty((n, len(node.fields), 32), dtype=np.uint8)
        for i, (f, off) in enumerate(zip(node.fields, node.field_offsets)):
            leaves[:, i, :] = roots_fixed(f, arr[:, off:off + f.size], f"{path}.{node.names[i]}",
                                          base + off)
        return merkleize_each(leaves, _depth(len(node.fields)))
    raise AssertionError(f"{node.name} is not fixed-size")


def _check_bools(arr: np.ndarray, path: str, base: int, stride: int) -> None:
    bad = np.flatnonzero(arr.reshape(-1) > 1) if arr.size else ()
    if len(bad):
        i = int(bad[0])
        row, col = divmod(i, arr.shape[1])
        _fail(path, base + row * stride + col,
              f"boolean byte 0x{int(arr.reshape(-1)[i]):02x}, expected 0x00 or 0x01")


def _check_bitvector_tail(last: np.ndarray, bits: int, path: str, base: int, stride: int) -> None:
    extra = (-bits) % 8
    if not extra:
        return
    mask = (0xFF << (8 - extra)) & 0xFF
    bad = np.flatnonzero(last & mask)
    if len(bad):
        row = int(bad[0])
        _fail(path, base + row * stride + stride - 1,
              f"Bitvector[{bits}] has bits set past its length (last byte 0x{int(last[row]):02x})")


# --- one value ------------------------------------------------------------------------------

def _pad32(mv) -> bytes:
    pad = (-len(mv)) % 32
    return bytes(mv) + b"\x00" * pad if pad else bytes(mv)


def _as_array(mv) -> np.ndarray:
    return np.frombuffer(mv, dtype=np.uint8)


def _read_offsets(mv, count: int, path: str, base: int) -> np.ndarray:
    """`count` uint32 offsets at the start of mv (caller checked 4*count <= len(mv))."""
    return np.frombuffer(mv[:OFFSET_SIZE * count], dtype="<u4").astype(np.int64)


def _check_offsets(offs: np.ndarray, first: int, end: int, path: str, base: int) -> None:
    """offs[0] == first, non-decreasing, all <= end (relative to the value's start)."""
    if len(offs) == 0:
        return
    if offs[0] != first:
        _fail(path, base, f"first offset 0x{int(offs[0]):08x}, expected 0x{first:08x}")
    if len(offs) > 1:
        dec = np.flatnonzero(np.diff(offs) < 0)
        if len(dec):
            i = int(dec[0]) + 1
            _fail(path, base + OFFSET_SIZE * i,
                  f"offset 0x{int(offs[i]):08x} is below the previous offset "
                  f"0x{int(offs[i - 1]):08x}")
    if offs[-1] > end:
        i = int(np.flatnonzero(offs > end)[0])
        _fail(path, base + OFFSET_SIZE * i,
              f"offset 0x{int(offs[i]):08x} runs past the end of the enclosing value "
              f"(0x{end:08x} bytes)")


def _bounds(offs: np.ndarray, end: int) -> list[tuple[int, int]]:
    starts = offs.tolist()
    return list(zip(starts, starts[1:] + [end]))


def _container_ranges(node: Node, mv, path: str, base: int) -> list[tuple[int, int]]:
    """Checked (start, end) of every field of a container value in mv."""
    n = len(mv)
    if node.fixed:
        if n != node.size:
            _fail(path, base, f"{node.name} of {n} bytes, expected {node.size}")
        return [(o, o + f.size) for f, o in zip(node.fields, node.field_offsets)]
    if n < node.fixed_part:
        _fail(path, base, f"{node.name} of {n} bytes is shorter than its fixed part "
                          f"({node.fixed_part} bytes)")
    var_idx = [i for i, f in enumerate(node.fields) if not f.fixed]
    offs = np.array([int.from_bytes(mv[node.field_offsets[i]:node.field_offsets[i] + 4],
                                    "little") for i in var_idx], dtype=np.int64)
    if offs[0] != node.fixed_part:
        _fail(f"{path}.{node.names[var_idx[0]]}", base + node.field_offsets[var_idx[0]],
              f"first offset 0x{int(offs[0]):08x}, expected the fixed part size "
              f"0x{node.fixed_part:08x}")
    for j in range(1, len(var_idx)):
        if offs[j] < offs[j - 1]:
            i = var_idx[j]
            _fail(f"{path}.{node.names[i]}", base + node.field_offsets[i],
                  f"offset 0x{int(offs[j]):08x} is below the previous offset "
                  f"0x{int(offs[j - 1]):08x}")
    for j, i in enumerate(var_idx):
        if offs[j] > n:
            _fail(f"{path}.{node.names[i]}", base + node.field_offsets[i],
                  f"offset 0x{int(offs[j]):08x} runs past the end of the enclosing value "
                  f"(0x{n:08x} bytes)")
    ranges = []
    j = 0
    for i, (f, o) in enumerate(zip(node.fields, node.field_offsets)):
        if f.fixed:
            ranges.append((o, o + f.size))
        else:
            start = int(offs[j])
            stop = int(offs[j + 1]) if j + 1 < len(offs) else n
            ranges.append((start, stop))
            j += 1
    return ranges


def _elem_ranges(node: Node, mv, path: str, base: int, exact: int | None) -> list[tuple[int, int]]:
    """Checked element ranges of a list/vector of variable-size elements."""
    n = len(mv)
    if n == 0:
        if exact:
            _fail(path, base, f"{node.name} is empty, expected {exact} elements")
        return []
    if n < OFFSET_SIZE:
        _fail(path, base, f"{n} bytes cannot hold the first offset")
    first = int.from_bytes(mv[:4], "little")
    if first == 0 or first % OFFSET_SIZE or first > n:
        _fail(path, base, f"first offset 0x{first:08x} is not a valid offset table size "
                          f"(value of 0x{n:08x} bytes)")
    count = first // OFFSET_SIZE
    if exact is not None and count != exact:
        _fail(path, base, f"{node.name} has {count} elements, expected {exact}")
    if count > node.length:
        _fail(path, base, f"{node.name} has {count} elements, more than its limit {node.length}")
    offs = _read_offsets(mv, count, path, base)
    _check_offsets(offs, first, n, path, base)
    return _bounds(offs, n)


def _root(node: Node, mv, path: str, base: int) -> bytes:
    """Root of one serialized value held in memoryview `mv` (starting at `base` in the data)."""
    n = len(mv)
    k = node.kind
    if node.fixed:
        if n != node.size:
            _fail(path, base, f"{node.name} of {n} bytes, expected {node.size}")
        if k == "basic":
            if node.is_bool and mv[0] > 1:
                _fail(path, base, f"boolean byte 0x{mv[0]:02x}, expected 0x00 or 0x01")
            return bytes(mv) + b"\x00" * (32 - n)
        if k == "bytevec" or (k == "vector" and node.elem.kind == "basic" and not node.is_bool):
            return hashing.merkleize(_pad32(mv), node.chunk_limit)
        return roots_fixed(node, _as_array(mv).reshape(1, n), path, base)[0].tobytes()
    if k == "bytelist":
        if n > node.length:
            _fail(path, base, f"{node.name} of {n} bytes exceeds its limit {node.length}")
        return hashing.mix_in_length(hashing.merkleize(_pad32(mv), node.chunk_limit), n)
    if k == "bitlist":
        if n == 0:
            _fail(path, base, f"{node.name} is empty (no delimiter bit)")
        last = mv[n - 1]
        if last == 0:
            _fail(path, base + n - 1, f"{node.name} has no delimiter bit in its last byte")
        top = last.bit_length() - 1
        bitlen = 8 * (n - 1) + top
        if bitlen > node.length:
            _fail(path, base, f"{node.name} holds {bitlen} bits, more than its limit "
                              f"{node.length}")
        packed = bytes(mv[:(bitlen + 7) // 8])
        if top:
            packed = packed[:-1] + bytes([last ^ (1 << top)])
        return hashing.mix_in_length(hashing.merkleize(_pad32(packed), node.chunk_limit), bitlen)
    if k == "container":
        ranges = _container_ranges(node, mv, path, base)
        roots = b"".join(
            _root(f, mv[s:e], f"{path}.{node.names[i]}", base + s)
            for i, (f, (s, e)) in enumerate(zip(node.fields, ranges)))
        return hashing.merkleize(roots, node.chunk_limit)
    if k == "list" or k == "vector":
        elem = node.elem
        is_list = k == "list"
        if elem.fixed:
            esize = elem.size
            if n % esize:
                _fail(path, base, f"{n} bytes is not a whole number of {elem.name} elements "
                                  f"({esize} bytes each)")
            count = n // esize
            if is_list and count > node.length:
                _fail(path, base, f"{node.name} has {count} elements, more than its limit "
                                  f"{node.length}")
            if elem.kind == "basic":
                if elem.is_bool and count:
                    _check_bools(_as_array(mv).reshape(1, n), path, base, n)
                chunks = _pad32(mv)
            else:
                chunks = _roots_of_fixed_elements(elem, mv, count, path, base)
        else:
            ranges = _elem_ranges(node, mv, path, base, None if is_list else node.length)
            count = len(ranges)
            chunks = b"".join(_root(elem, mv[s:e], f"{path}[{i}]", base + s)
                              for i, (s, e) in enumerate(ranges))
        root = hashing.merkleize(chunks, node.chunk_limit)
        return hashing.mix_in_length(root, count) if is_list else root
    raise AssertionError(node.kind)


def _roots_of_fixed_elements(elem: Node, mv, count: int, path: str, base: int) -> bytes:
    """Concatenated roots of `count` fixed-size composite elements laid out back to back."""
    if count == 0:
        return b""
    esize = elem.size
    arr = _as_array(mv).reshape(count, esize)
    if count <= BATCH:
        return roots_fixed(elem, arr, path + "[]", base).tobytes()
    out = np.empty((count, 32), dtype=np.uint8)
    for start in range(0, count, BATCH):
        stop = min(start + BATCH, count)
        out[start:stop] = roots_fixed(elem, arr[start:stop], path + "[]", base + start * esize)
    return out.tobytes()


# --- native plan ------------------------------------------------------------------------------
# The C walker (_sha256.ssz_root) takes the compiled Node tree as three flat int64 arrays:
# nodes (n, 11): kind, fixed, size, basic_size, is_bool, length, elem index, merkle depth,
# number of fields, first index into kids/foffs, fixed part size; kids/foffs: each container's
# field node indices and their positions in its fixed part.  Node 0 is the root.  Built once
# per Node and cached in node.extra.

_KINDS = {"basic": 0, "bytevec": 1, "bitvec": 2, "bytelist": 3, "bitlist": 4, "vector": 5,
          "list": 6, "container": 7}


def native_plan(node: Node):
    """(nodes, kids, foffs) int64 arrays for `_sha256.ssz_root`, cached on the node."""
    plan = node.extra.get("plan")
    if plan is not None:
        return plan
    index: dict[int, int] = {}
    order: list[Node] = []

    def visit(n: Node) -> int:
        i = index.get(id(n))
        if i is None:
            i = index[id(n)] = len(order)
            order.append(n)
            if n.elem is not None:
                visit(n.elem)
            for f in n.fields:
                visit(f)
        return i

    visit(node)
    rows, kids, foffs = [], [], []
    for n in order:
        k0 = len(kids)
        for f, off in zip(n.fields, n.field_offsets):
            kids.append(index[id(f)])
            foffs.append(off)
        rows.append([_KINDS[n.kind], int(n.fixed), n.size, n.basic_size, int(n.is_bool),
                     n.length, index[id(n.elem)] if n.elem is not None else -1,
                     _depth(n.chunk_limit), len(n.fields), k0, n.fixed_part])
    plan = (np.array(rows, dtype=np.int64).tobytes(), np.array(kids, dtype=np.int64).tobytes(),
            np.array(foffs, dtype=np.int64).tobytes())
    node.extra["plan"] = plan
    return plan


# --- public API -------------------------------------------------------------------------------

def hash_tree_root_bytes(sedes, data) -> bytes:
    """SSZ hash_tree_root of the value of type `sedes` serialized in `data` (bytes-like).

    `sedes` is a py-ssz sedes (`Container`, `List`, `UInt`, ...) or a `Serializable` class.
    Raises FormatError if `data` is not a valid serialization of that type.

    With the native build the whole value is walked in C (one call, GIL released); malformed
    input is then re-walked in Python, which raises the FormatError naming field and offset."""
    node = compile_sedes(sedes)
    mv = memoryview(data).cast("B")
    # hashing._native_hash_pairs is the switch that selects hashlib everywhere (tests, bench)
    if _native_ssz_root is not None and hashing._native_hash_pairs is not None:
        root = _native_ssz_root(*native_plan(node), mv)
        if root is not None:
            return root
    return _root(node, mv, node.name, 0)


def hash_tree_root_bytes_py(sedes, data) -> bytes:
    """`hash_tree_root_bytes` through the Python walker only (the reference for tests)."""
    node = compile_sedes(sedes)
    return _root(node, memoryview(data).cast("B"), node.name, 0)


def container_field_ranges(sedes, data) -> dict[str, tuple[int, int]]:
    """The checked byte range (start, end) of every top-level field of a container value.

    Only the offset table is checked (first offset = fixed part size, non-decreasing, inside
    the data); the field contents are not walked."""
    node = compile_sedes(sedes)
    if node.kind != "container":
        raise TypeError(f"{node.name} is not a container")
    mv = memoryview(data).cast("B")
    return dict(zip(node.names, _container_ranges(node, mv, node.name, 0)))


def zero_bytes(sedes) -> bytes:
    """Serialization of the default (zero) value of `sedes`."""
    node = sedes if isinstance(sedes, Node) else compile_sedes(sedes)
    if node.fixed:
        return bytes(node.size)
    if node.kind == "bitlist":
        return b"\x01"
    if node.kind == "container":
        return _serialize_fields(node, {})
    if node.kind == "vector":  # of variable-size elements
        elem = zero_bytes(node.elem)
        return b"".join((OFFSET_SIZE * node.length + i * len(elem)).to_bytes(4, "little")
                        for i in range(node.length)) + elem * node.length
    return b""  # empty list / byte list


def serialize_container(sedes, fields: dict) -> bytes:
    """Serialize a container from the serialized bytes of some of its fields (bytes-like, by
    name); the other fields get their zero value.  Builds big synthetic states without one
    Python object per element."""
    node = compile_sedes(sedes)
    if node.kind != "container":
        raise TypeError(f"{node.name} is not a container")
    unknown = set(fields) - set(node.names)
    if unknown:
        raise KeyError(f"{node.name} has no field(s) {sorted(unknown)}")
    return _serialize_fields(node, fields)


def _serialize_fields(node: Node, fields: dict) -> bytes:
    fixed_parts, var_parts = [], []
    for name, f in zip(node.names, node.fields):
        value = fields.get(name)
        value = zero_bytes(f) if value is None else value
        if f.fixed:
            if len(memoryview(value).cast("B")) != f.size:
                raise ValueError(f"{node.name}.{name}: {len(value)} bytes, expected {f.size}")
            fixed_parts.append(value)
        else:
            fixed_parts.append(None)
            var_parts.append(value)
    pos = node.fixed_part
    out = []
    vi = 0
    for part in fixed_parts:
        if part is None:
            out.append(pos.to_bytes(4, "little"))
            pos += len(memoryview(var_parts[vi]).cast("B"))
            vi += 1
        else:
            out.append(bytes(memoryview(part).cast("B")))
    return b"".join(out + [bytes(memoryview(v).cast("B")) for v in var_parts])
