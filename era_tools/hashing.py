"""SHA-256 merkleization over raw bytes: the SSZ `merkleize`/`mix_in_length` of consensus-specs.

Works on flat byte strings of 32-byte chunks so big vectors (block_roots, validator leaves)
are hashed without one Python object per element.  `hash_layer` is the one hot loop: it uses
the native batch hasher when built (era_tools._sha256), else hashlib.
"""

from __future__ import annotations

import hashlib

_sha256 = hashlib.sha256

try:  # optional native batch hasher (OpenSSL SHA-256 over many 64-byte inputs)
    from ._sha256 import hash_pairs as _native_hash_pairs  # type: ignore
except ImportError:  # pragma: no cover - depends on the build
    _native_hash_pairs = None
try:  # whole merkleization with zero-hash padding in one native call (same build)
    from ._sha256 import merkleize as _native_merkleize  # type: ignore
except ImportError:  # pragma: no cover - depends on the build
    _native_merkleize = None

ZERO_HASHES = [b"\x00" * 32]
for _ in range(64):
    ZERO_HASHES.append(_sha256(ZERO_HASHES[-1] * 2).digest())


def native() -> bool:
    """True when the native hasher is in use (it drops the GIL while it hashes a block)."""
    return _native_hash_pairs is not None


def sha256(data: bytes) -> bytes:
    return _sha256(data).digest()


def hash_layer(layer: bytes) -> bytes:
    """Hash consecutive 64-byte pairs of `layer` (len a multiple of 64) into 32-byte nodes."""
    if _native_hash_pairs is not None:
        return _native_hash_pairs(layer)
    mv = memoryview(layer)
    return b"".join([_sha256(mv[i:i + 64]).digest() for i in range(0, len(mv), 64)])


def merkleize(chunks: bytes, limit: int | None = None) -> bytes:
    """Root of `chunks` (a multiple of 32 bytes) padded with zero chunks to `limit`
    (rounded up to a power of two; default: the chunk count)."""
    if len(chunks) % 32:
        raise ValueError("chunks must be a multiple of 32 bytes")
    count = len(chunks) // 32
    if limit is None:
        limit = count
    if count > limit:
        raise ValueError(f"{count} chunks exceed the limit {limit}")
    depth = max(limit - 1, 0).bit_length()
    if count == 0:
        return ZERO_HASHES[depth]
    # `_native_hash_pairs` is the one switch: setting it to None selects hashlib everywhere.
    if _native_merkleize is not None and _native_hash_pairs is not None:
        return _native_merkleize(chunks, depth)
    layer = bytes(chunks)
    for d in range(depth):
        if (len(layer) // 32) % 2:
            layer += ZERO_HASHES[d]
        layer = hash_layer(layer)
    return layer


def mix_in_length(root: bytes, length: int) -> bytes:
    return _sha256(root + length.to_bytes(32, "little")).digest()


def pack_bytes(data: bytes) -> bytes:
    """Right-pad to a multiple of 32 bytes (SSZ `pack` for byte sequences)."""
    pad = (-len(data)) % 32
    return bytes(data) + b"\x00" * pad if pad else bytes(data)
