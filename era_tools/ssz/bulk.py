"""Columns of many serialized SSZ values at once, with numpy over one shared buffer.

    blocks = Values.whole(buf, starts, ends, t.SignedBeaconBlock)  # n values in one buffer
    f = fields(blocks, where)                      # {name: Values}, every offset checked
    body = fields(fields(f["message"], where)["body"], where)
    atts, per_block = elements(body["attestations"], where)  # every attestation of every block
    slots = uints(fields(fields(atts, where)["data"], where)["slot"])

A `Values` is n byte ranges [start, end) of one uint8 buffer plus, for each, the index of the
top-level value it lies in (`owner`) and its position in its parent list (`index`).  Every step
works on all n ranges with a few numpy operations: no Python object per value.  The bytes are
untrusted: container offset tables (first offset = fixed part, non-decreasing, inside the value),
list lengths (whole elements, limits) and bitlist delimiters are checked before anything is
gathered, and a bad value raises `FormatError` naming the top-level value (via `where(owner)`),
the field path and the offset.  This module knows SSZ layouts (era_tools.ssz.fast's compiled
nodes) and numpy; it does not know blocks, era files or Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import FormatError
from .fast import Node, compile_sedes

__all__ = ["Values", "fields", "elements", "uints", "uint_lists", "raw", "bitlist_summary",
           "popcount", "seg_arange"]

_I64 = np.int64
POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_BITLEN = np.array([i.bit_length() for i in range(256)], dtype=np.int64)


@dataclass
class Values:
    """n serialized values: buf[start[i]:end[i]], inside top-level value owner[i]."""

    buf: np.ndarray  # uint8, 1-d
    start: np.ndarray  # int64
    end: np.ndarray  # int64
    owner: np.ndarray  # int64: index of the top-level value holding each
    index: np.ndarray  # int64: position in the parent list (0 for fields)
    path: str
    node: Node | None = None  # the SSZ type of the values, when known

    @classmethod
    def whole(cls, buf: np.ndarray, start, end, sedes, path: str | None = None) -> "Values":
        start = np.asarray(start, dtype=_I64)
        end = np.asarray(end, dtype=_I64)
        n = len(start)
        node = _node(sedes)
        return cls(buf, start, end, np.arange(n, dtype=_I64), np.zeros(n, dtype=_I64),
                   path or node.name, node)

    def __len__(self) -> int:
        return len(self.start)

    @property
    def size(self) -> np.ndarray:
        return self.end - self.start

    def take(self, mask) -> "Values":
        return Values(self.buf, self.start[mask], self.end[mask], self.owner[mask],
                      self.index[mask], self.path, self.node)


Where = Callable[[int], str]


def _fail(where: Where, vals: Values, bad: np.ndarray, what: Callable[[int], str]):
    i = int(np.flatnonzero(bad)[0])
    raise FormatError(f"{where(int(vals.owner[i]))}: SSZ {vals.path}: {what(i)}")


def seg_arange(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For segments of `counts` items: (segment of each item, position inside its segment)."""
    counts = np.asarray(counts, dtype=_I64)
    total = int(counts.sum())
    seg = np.repeat(np.arange(len(counts), dtype=_I64), counts)
    first = np.cumsum(counts) - counts
    return seg, np.arange(total, dtype=_I64) - first[seg]


def _rows(buf: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 copy of buf[pos[i]:pos[i] + width] (all inside buf): one row copy
    each through a sliding-window view, not one index per byte."""
    if len(pos) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    return sliding_window_view(buf, width)[pos]


def _u32(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _rows(buf, pos, 4).view("<u4").reshape(-1).astype(_I64)


def uints(vals: Values) -> np.ndarray:
    """The uint64 of every value (each of 1, 2, 4 or 8 bytes, sizes already checked)."""
    if len(vals) == 0:
        return np.zeros(0, dtype=np.uint64)
    width = int(vals.end[0] - vals.start[0])
    b = _rows(vals.buf, vals.start, width)
    if width != 8:
        b = np.concatenate([b, np.zeros((len(b), 8 - width), dtype=np.uint8)], axis=1)
    return b.view("<u8").reshape(-1)


def raw(vals: Values, width: int) -> np.ndarray:
    """(n, width) uint8: the first `width` bytes of every value (all at least that long)."""
    return _rows(vals.buf, vals.start, width)


def _node(sedes) -> Node:
    return sedes if isinstance(sedes, Node) else compile_sedes(sedes)


def fields(vals: Values, where: Where) -> dict[str, Values]:
    """Checked byte ranges of every field of n container values (of type vals.node)."""
    node = vals.node
    if node.kind != "container":
        raise TypeError(f"{node.name} is not a container")
    size = vals.size
    if node.fixed:
        bad = size != node.size
        if bad.any():
            _fail(where, vals, bad, lambda i: f"{node.name} of {int(size[i])} bytes, expected "
                                              f"{node.size}")
    else:
        bad = size < node.fixed_part
        if bad.any():
            _fail(where, vals, bad, lambda i: f"{node.name} of {int(size[i])} bytes is shorter "
                                              f"than its fixed part ({node.fixed_part} bytes)")
    out = {}
    prev = None
    var = []
    for name, f, off in zip(node.names, node.fields, node.field_offsets):
        if f.fixed:
            s = vals.start + off
            out[name] = Values(vals.buf, s, s + f.size, vals.owner, vals.index,
                               f"{vals.path}.{name}", f)
        else:
            o = _u32(vals.buf, vals.start + off) if len(vals) else np.zeros(0, dtype=_I64)
            p = f"{vals.path}.{name}"
            if prev is None:
                bad = o != node.fixed_part
                if bad.any():
                    _fail(where, vals, bad, lambda i: f"{p}: first offset {int(o[i])}, expected "
                                                      f"the fixed part size {node.fixed_part}")
            else:
                bad = o < prev
                if bad.any():
                    _fail(where, vals, bad, lambda i: f"{p}: offset {int(o[i])} is below the "
                                                      f"previous offset {int(prev[i])}")
            bad = o > size
            if bad.any():
                _fail(where, vals, bad, lambda i: f"{p}: offset {int(o[i])} runs past the end "
                                                  f"of the value ({int(size[i])} bytes)")
            var.append((name, o))
            prev = o
    nodes = dict(zip(node.names, node.fields))
    for j, (name, o) in enumerate(var):
        stop = var[j + 1][1] if j + 1 < len(var) else size
        out[name] = Values(vals.buf, vals.start + o, vals.start + stop, vals.owner, vals.index,
                           f"{vals.path}.{name}", nodes[name])
    return {name: out[name] for name in node.names}


def elements(vals: Values, where: Where) -> tuple[Values, np.ndarray]:
    """The elements of n list values (type vals.node: a List of fixed- or variable-size
    composite elements, or of ByteLists): (elements as one Values, count per list)."""
    node = vals.node
    if node.kind != "list" or node.elem.kind == "basic":
        raise TypeError(f"{node.name} is not a list of composite values")
    elem = node.elem
    size = vals.size
    p = vals.path
    if elem.fixed:
        bad = size % elem.size != 0
        if bad.any():
            _fail(where, vals, bad, lambda i: f"{int(size[i])} bytes is not a whole number of "
                                              f"{elem.name} ({elem.size} bytes each)")
        counts = size // elem.size
    else:
        counts = np.zeros(len(vals), dtype=_I64)
        nz = size > 0
        short = nz & (size < 4)
        if short.any():
            _fail(where, vals, short, lambda i: f"{int(size[i])} bytes cannot hold an offset")
        first = np.zeros(len(vals), dtype=_I64)
        if nz.any():
            first[nz] = _u32(vals.buf, vals.start[nz])
        bad = nz & ((first == 0) | (first % 4 != 0) | (first > size))
        if bad.any():
            _fail(where, vals, bad, lambda i: f"first offset {int(first[i])} is not a valid "
                                              f"offset table size ({int(size[i])} bytes)")
        counts = first // 4
    bad = counts > node.length
    if bad.any():
        _fail(where, vals, bad, lambda i: f"{node.name} has {int(counts[i])} elements, more "
                                          f"than its limit {node.length}")
    seg, pos = seg_arange(counts)
    base = vals.start[seg]
    if elem.fixed:
        start = base + pos * elem.size
        end = start + elem.size
    else:
        offs = _u32(vals.buf, base + 4 * pos) if len(seg) else np.zeros(0, dtype=_I64)
        # next offset inside the same list, or the list's size after its last element
        nxt = np.empty_like(offs)
        nxt[:-1] = offs[1:]
        last = np.cumsum(counts)[counts > 0] - 1
        nxt[last] = size[counts > 0]
        bad_e = nxt < offs
        if bad_e.any():
            k = int(np.flatnonzero(bad_e)[0])
            s = int(seg[k])
            raise FormatError(
                f"{where(int(vals.owner[s]))}: SSZ {p}[{int(pos[k]) + 1}]: offset "
                f"{int(nxt[k])} is below the previous offset {int(offs[k])} or past the end "
                f"({int(size[s])} bytes)")
        start = base + offs
        end = base + nxt
    out = Values(vals.buf, start, end, vals.owner[seg], pos, f"{p}[]", elem)
    if elem.kind == "bytelist":
        bad = out.size > elem.length
        if bad.any():
            _fail(where, out, bad, lambda i: f"{elem.name} of {int(out.size[i])} bytes exceeds "
                                             f"its limit {elem.length}")
    return out, counts


def popcount(vals: Values) -> np.ndarray:
    """Set bits of every value's bytes (int64)."""
    n = len(vals)
    size = vals.size
    out = np.zeros(n, dtype=_I64)
    if n == 0 or not size.any():
        return out
    width = int(size.max())
    inside = vals.start + width <= len(vals.buf)
    if inside.any():  # rows of the widest size, counted up to each value's own size
        rows = _rows(vals.buf, vals.start[inside], width)
        run = np.cumsum(POPCOUNT[rows], axis=1, dtype=np.int32)
        sz = size[inside]
        got = run[np.arange(len(rows)), np.maximum(sz - 1, 0)]
        out[inside] = np.where(sz > 0, got, 0)
    rest = np.flatnonzero(~inside)  # near the end of the buffer: byte by byte
    if len(rest):
        seg, pos = seg_arange(size[rest])
        ones = POPCOUNT[vals.buf[vals.start[rest][seg] + pos]].astype(_I64)
        out[rest] = np.bincount(seg, weights=ones, minlength=len(rest)).astype(_I64)
    return out


def bitlist_summary(vals: Values, where: Where) -> tuple[np.ndarray, np.ndarray]:
    """(length in bits, bits set) of n Bitlist values, delimiters and limits checked."""
    node = vals.node
    size = vals.size
    bad = size == 0
    if bad.any():
        _fail(where, vals, bad, lambda i: f"{node.name} is empty (no delimiter bit)")
    last = vals.buf[vals.end - 1].astype(_I64)
    bad = last == 0
    if bad.any():
        _fail(where, vals, bad, lambda i: f"{node.name} has no delimiter bit in its last byte")
    length = 8 * (size - 1) + _BITLEN[last] - 1
    bad = length > node.length
    if bad.any():
        _fail(where, vals, bad, lambda i: f"{node.name} holds {int(length[i])} bits, more than "
                                          f"its limit {node.length}")
    return length, popcount(vals) - 1


def uint_lists(vals: Values, where: Where) -> tuple[np.ndarray, np.ndarray]:
    """n lists of uint64 (List[uint64, N]): (all values concatenated, count per list)."""
    node = vals.node
    if node.kind != "list" or node.elem.kind != "basic" or node.elem.size != 8:
        raise TypeError(f"{node.name} is not a list of uint64")
    size = vals.size
    bad = size % 8 != 0
    if bad.any():
        _fail(where, vals, bad, lambda i: f"{int(size[i])} bytes is not a whole number of "
                                          "uint64")
    counts = size // 8
    bad = counts > node.length
    if bad.any():
        _fail(where, vals, bad, lambda i: f"{node.name} has {int(counts[i])} elements, more "
                                          f"than its limit {node.length}")
    seg, pos = seg_arange(counts)
    return _rows(vals.buf, vals.start[seg] + 8 * pos, 8).view("<u8").reshape(-1), counts
