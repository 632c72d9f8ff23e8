"""Signing domains and signing roots (consensus-specs phase0 `compute_fork_data_root`,
`compute_domain`, `compute_signing_root`), as pure hashing over bytes.

`ForkData` and `SigningData` are two-field containers of 32-byte chunks, so their roots are a
single SHA-256 of the two padded fields; no SSZ objects are needed.
"""

from __future__ import annotations

from .hashing import sha256

DOMAIN_BEACON_PROPOSER = bytes.fromhex("00000000")
DOMAIN_BEACON_ATTESTER = bytes.fromhex("01000000")
DOMAIN_RANDAO = bytes.fromhex("02000000")


def compute_fork_data_root(current_version: bytes, genesis_validators_root: bytes) -> bytes:
    """hash_tree_root(ForkData(current_version, genesis_validators_root))."""
    if len(current_version) != 4 or len(genesis_validators_root) != 32:
        raise ValueError("fork version must be 4 bytes and genesis_validators_root 32 bytes")
    return sha256(bytes(current_version).ljust(32, b"\x00") + bytes(genesis_validators_root))


def compute_domain(domain_type: bytes, fork_version: bytes,
                   genesis_validators_root: bytes) -> bytes:
    """domain_type (4 bytes) + the first 28 bytes of the fork data root."""
    if len(domain_type) != 4:
        raise ValueError("domain type must be 4 bytes")
    return bytes(domain_type) + compute_fork_data_root(fork_version, genesis_validators_root)[:28]


def compute_signing_root(object_root: bytes, domain: bytes) -> bytes:
    """hash_tree_root(SigningData(object_root, domain))."""
    if len(object_root) != 32 or len(domain) != 32:
        raise ValueError("object root and domain must be 32 bytes each")
    return sha256(bytes(object_root) + bytes(domain))
