"""A published era directory: era files exported from the store, `checksums.txt` and
`index.json`, kept consistent while `era sync` adds eras.

    pub = Publisher(store, "/srv/eras")
    pub.publish()          # every complete era not yet there -> [written paths]

Each era is written by `export.export` (EraWriter: tmp + fsync + rename, never a partial
`.era` under a final name).  After the file is in place, `checksums.txt` (sha256sum format:
`<hex>  <name>`) and `index.json` (`{"files": [{name, era, size, sha256}], "extras": [...]}`,
the shape `era download` reads) are rewritten, each through a tmp file, fsync and rename, so
a reader never sees a listing that names a file that is not whole.  A run killed between a
rename and the listing update leaves an era file the listings do not name yet; the next
`publish()` hashes it and lists it.  Knows the store and the export flow, not the network.
"""

from __future__ import annotations

import json
import os

from .errors import StoreError
from .era import parse_era_file_name
from .export import GENESIS_FILE, SPEC_FILE, era_status, export, write_network_files
from .fileio import sha256_file

CHECKSUMS = "checksums.txt"
INDEX = "index.json"


def read_checksums(path: str) -> dict[str, str]:
    """name -> sha256 hex of a sha256sum-format file (missing file: empty)."""
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.strip().split()
                if len(parts) == 2 and len(parts[0]) == 64:
                    out[parts[1].lstrip("*")] = parts[0].lower()
    except FileNotFoundError:
        pass
    return out


def _write_atomic(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Publisher:
    def __init__(self, store, out_dir: str):
        self.store = store
        self.out = os.fspath(out_dir)
        self.published: dict[int, str] = {}      # era -> file name
        self.bytes = 0

    def _scan(self) -> dict[int, str]:
        eras = {}
        try:
            names = os.listdir(self.out)
        except FileNotFoundError:
            return eras
        for n in names:
            p = parse_era_file_name(n) if n.endswith(".era") else None
            if p is not None:
                eras[p[1]] = n
        return eras

    def pending(self) -> list[int]:
        """Complete eras of the store not yet in the directory."""
        have = self._scan()
        sphr = self.store.sphr
        out = []
        for s in self.store.state_slots():
            era = s // sphr
            if s % sphr == 0 and era not in have and era_status(self.store, era) is None:
                out.append(era)
        return out

    def publish(self, eras=None) -> list[str]:
        """Export `eras` (default: every complete era not yet published), then bring the
        listings up to date (also for files a killed run left unlisted).  Returns the paths
        written."""
        written = []
        todo = self.pending() if eras is None else list(eras)
        if not os.path.isdir(self.out):
            try:
                os.makedirs(self.out, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.out}: cannot create the publish directory: "
                                 f"{exc.strerror}") from None
        for era in todo:
            res = export(self.store, self.out, from_era=era, to_era=era)
            if res.missing:
                raise StoreError(f"era {era}: {res.missing[0][2]}")
            written += res.written
            self.bytes += res.bytes_written
        self.update_listings()
        return written

    def update_listings(self) -> None:
        """checksums.txt and index.json for every era file present (hashing only the files
        checksums.txt does not name yet); rewritten only when something changed."""
        eras = self._scan()
        self.published = dict(eras)
        sums_path = os.path.join(self.out, CHECKSUMS)
        old = read_checksums(sums_path)
        sums = {}
        for era in sorted(eras):
            n = eras[era]
            sums[n] = old.get(n) or sha256_file(os.path.join(self.out, n))
        extras = [n for n in (SPEC_FILE, GENESIS_FILE)
                  if os.path.exists(os.path.join(self.out, n))]
        if not extras and eras:
            extras = [os.path.basename(p) for p in write_network_files(self.store, self.out)]
        names = sorted(sums, key=lambda n: parse_era_file_name(n)[1])
        index = {"files": [{"name": n, "era": parse_era_file_name(n)[1],
                            "size": os.path.getsize(os.path.join(self.out, n)),
                            "sha256": sums[n]} for n in names],
                 "extras": [{"name": n, "size": os.path.getsize(os.path.join(self.out, n))}
                            for n in extras]}
        text = "".join(f"{sums[n]}  {n}\n" for n in names).encode()
        idx = (json.dumps(index, indent=1) + "\n").encode()
        # index.json first, checksums.txt last: once checksums.txt names a file, both do
        ipath = os.path.join(self.out, INDEX)
        try:
            with open(ipath, "rb") as f:
                same = f.read() == idx
        except FileNotFoundError:
            same = False
        if not same:
            _write_atomic(ipath, idx)
        if sums != old or not os.path.exists(sums_path):
            _write_atomic(sums_path, text)
