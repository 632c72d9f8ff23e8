"""Runs of consecutive integers, for reports ("eras 1..3, 7", not one line per era).

Pure Python with no imports, so the CLI can use it without loading the format layer.
"""

from __future__ import annotations


def spans(nums) -> list[tuple[int, int]]:
    """Runs of consecutive integers: [1, 2, 3, 7] -> [(1, 3), (7, 7)] (reports say "eras
    1..3, 7", not one line per era)."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(nums)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def format_spans(pairs, sep: str = "..") -> str:
    return ", ".join(str(a) if a == b else f"{a}{sep}{b}" for a, b in pairs)
