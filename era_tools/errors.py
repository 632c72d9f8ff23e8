"""The one exception tree of era_tools.

Messages say where and what: file, byte offset or slot, and expected vs actual in 0x-hex.
The CLI turns any EraToolsError into one line and a non-zero exit.
"""


class EraToolsError(Exception):
    """Base of every error era_tools raises on purpose."""

    exit_code = 2


class FormatError(EraToolsError):
    """Malformed bytes: e2store records, snappy framing, SlotIndex, SSZ."""


class VerificationError(EraToolsError):
    """Well-formed data that is wrong: a root, a signature, a link."""

    exit_code = 1


class StoreError(EraToolsError):
    """The LevelDB chain store is missing, locked, inconsistent or of another network."""


class PeerError(EraToolsError):
    """A beacon node or peer failed, lied or stalled."""


class ConfigError(EraToolsError):
    """Unknown network, bad config file, or a fork schedule that does not fit."""


def hex0x(b: bytes) -> str:
    return "0x" + bytes(b).hex()


class ObjectStoreError(EraToolsError):
    """An s3:// bucket could not be read or written: missing object, denied, unreachable."""
