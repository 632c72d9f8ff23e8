"""JSON from strangers (nodes, peers, listings, files beside era files): `json.loads` behind a
nesting bound.

The C decoder stops deep input only at `sys.getrecursionlimit()`, and py_ecc (the reference
BLS backend) raises that limit to 100,000 when imported: `[` x 100,000 then overflows the C
stack and the process dies of SIGSEGV instead of raising.  `loads` refuses input nested deeper
than MAX_DEPTH first, with ValueError like any other bad JSON, using only C-speed byte
operations (no Python loop per byte).  Knows nothing of what the JSON means.
"""

from __future__ import annotations

import json
import re

MAX_DEPTH = 256  # the Beacon API and our own documents nest fewer than 20 levels

_KEEP = b'"[]{}'
_DROP = bytes(c for c in range(256) if c not in _KEEP)
_STRING = re.compile(rb'"[^"]*"')


def loads(data: bytes | bytearray | memoryview | str, max_depth: int = MAX_DEPTH):
    """json.loads(data), or ValueError when it nests deeper than `max_depth` levels (a
    pass can take off two levels of alternating [ and {: nothing deeper than 2 x max_depth
    reaches the decoder)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") > max_depth:  # else it cannot be that deep
        # escapes out, then everything but quotes and brackets, then the strings: brackets
        skel = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _DROP)
        skel = _STRING.sub(b"", skel).replace(b'"', b"")
        for _ in range(max_depth):  # each pass takes off at least the innermost level
            n = len(skel)
            skel = skel.replace(b"[]", b"").replace(b"{}", b"")
            if len(skel) == n:
                break
        if skel:
            raise ValueError(f"JSON nested deeper than {max_depth} levels (or unbalanced)")
    return json.loads(data)
