#!/usr/bin/env python3
"""Rebuild sample_eras/ from the real-client chain in ../shared/fixtures/lodestar-minimal-1.

Writes minimal-00000-*.era … minimal-00016-*.era with era_tools' own EraWriter, plus the
network config (spec.json, genesis.json) that lets `era info sample_eras/*` work with no flags.
Snappy encoders differ, so reruns are compared by contents (records and decompressed SSZ),
never byte for byte: an existing file with the same contents is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from era_tools.era import EraWriter  # noqa: E402

DEFAULT_FIXTURE = ROOT.parent / "shared" / "fixtures" / "lodestar-minimal-1"


def build(fixture: Path, out: Path) -> list[str]:
    manifest = json.loads((fixture / "manifest.json").read_text())
    sphr = manifest["slots_per_historical_root"]
    config_name = manifest["config_name"]
    blocks = {b["slot"]: b for b in manifest["blocks"]}
    states = {s["slot"]: s for s in manifest["states"]}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for era in range(0, max(states) // sphr + 1):
        with EraWriter(out, config_name, era, sphr) as w:
            if era > 0:
                for slot in range((era - 1) * sphr, era * sphr):
                    rec = blocks.get(slot)
                    if rec and rec.get("file"):
                        w.add_block(slot, ssz=(fixture / rec["file"]).read_bytes())
            w.set_state(ssz=(fixture / states[era * sphr]["file"]).read_bytes())
            path = w.finish()
        written.append(os.path.basename(path))
    shutil.copyfile(fixture / "config" / "spec.json", out / "spec.json")
    shutil.copyfile(fixture / "config" / "genesis.json", out / "genesis.json")
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    ap.add_argument("--out", type=Path, default=ROOT / "sample_eras")
    args = ap.parse_args()
    for name in build(args.fixture, args.out):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
