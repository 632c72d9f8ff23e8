"""What every benchmark prints beside its figures: the CPU's model and the flags that decide
which SHA-256 path runs (AVX-512, SHA-NI, AVX2).  Imported by the scripts beside it."""

from __future__ import annotations

from pathlib import Path

WATCHED = ("avx512f", "sha_ni", "avx2")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def cpu_flags() -> str:
    """The watched flags this CPU has, space-separated ("none of ..." when it has none)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return " ".join(f for f in WATCHED if f in have) or "none of " + "/".join(WATCHED)
    return "flags unknown"
