"""Write the committed seed corpora of the fuzz targets that do not read sample_eras/ directly
(tests/fuzz/seeds/<target>/), from real files: sample_eras/ (the lodestar-minimal-1 chain), the
spec chain in tests/data/spec_chain/, a small era1 file from tests/era1_builder.py, and the
answers of a real `era serve` over sample_eras/ on 127.0.0.1.

    PYTHONPATH=$PWD python3 scripts/make_fuzz_seeds.py

Kept small (a few KB per file) so they can live in git; rerun to rebuild them."""
import glob
import json
import os
import shutil
import sys
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
OUT = os.path.join(ROOT, "tests", "fuzz", "seeds")

from era_tools import framing, ssz  # noqa: E402
from era_tools.config import load_config  # noqa: E402
from era_tools.era import EraReader  # noqa: E402
from era_tools.ssz.json import to_json  # noqa: E402


def put(target: str, name: str, data: bytes) -> None:
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def sample(n: int) -> str:
    return sorted(glob.glob(os.path.join(ROOT, "sample_eras", f"minimal-{n:05d}-*.era")))[0]


def blocks_of(path: str, k: int):
    with EraReader(path) as r:
        out = []
        for slot, data in r.iter_blocks():
            out.append((slot, data))
            if len(out) == k:
                break
        return out


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    net = load_config(os.path.join(ROOT, "sample_eras", "spec.json"))
    spec_net = load_config(os.path.join(ROOT, "tests", "data", "spec_chain", "spec.json"))

    # Beacon API JSON of blocks (phase0 and capella of the fixture chain, the spec chain's
    # later forks) and of a small state, as a node that answers JSON sends them.
    for era, k in ((1, 1), (16, 1)):
        for slot, data in blocks_of(sample(era), k):
            fork = net.fork_name_at_slot(slot)
            blk = ssz.decode_block(data, fork, "minimal")
            doc = {"version": fork, "execution_optimistic": False, "finalized": True,
                   "data": to_json(blk)}
            put("beacon_json_block", f"{fork}-{slot}.json", json.dumps(doc).encode())
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "spec_chain", "*.era")))[1:]:
        for slot, data in blocks_of(path, 1):
            fork = spec_net.fork_name_at_slot(slot)
            blk = ssz.decode_block(data, fork, spec_net.preset_base)
            doc = {"version": fork, "data": to_json(blk)}
            put("beacon_json_block", f"{fork}-{slot}.json", json.dumps(doc).encode())
    with EraReader(sample(0)) as r:
        st = ssz.decode_state(r.state_ssz(), "phase0", "minimal")
    put("beacon_json_state", "phase0-0.json",
        json.dumps({"version": "phase0", "data": to_json(st)}).encode())

    # A node's facts: /config/spec, /beacon/genesis, /node/syncing, finality_checkpoints.
    spec = json.load(open(os.path.join(ROOT, "sample_eras", "spec.json")))
    genesis = json.load(open(os.path.join(ROOT, "sample_eras", "genesis.json")))
    node = {"/eth/v1/config/spec": spec if "data" in spec else {"data": spec},
            "/eth/v1/beacon/genesis": {"data": genesis},
            "/eth/v1/node/syncing": {"data": {"head_slot": "1100", "sync_distance": "0",
                                              "is_syncing": False}},
            "/eth/v1/beacon/states/head/finality_checkpoints": {"data": {
                "finalized": {"epoch": "128", "root": "0x" + "ab" * 32}}}}
    put("beacon_json_node", "lodestar-minimal-1.json", json.dumps(node).encode())

    # config.yaml: the fixture chain's spec as a client config.yaml.
    data = spec.get("data", spec)
    keys = [k for k in data if k.endswith(("_FORK_VERSION", "_FORK_EPOCH")) or k in (
        "PRESET_BASE", "CONFIG_NAME", "SECONDS_PER_SLOT", "SLOTS_PER_EPOCH")]
    yaml_text = "".join(f"{k}: {data[k]}\n" for k in keys)
    put("config_yaml", "config.yaml", yaml_text.encode())
    put("config_yaml", "mainnet-style.yaml", b"PRESET_BASE: 'mainnet'\nCONFIG_NAME: 'mainnet'\n"
        b"GENESIS_FORK_VERSION: 0x00000000\nALTAIR_FORK_VERSION: 0x01000000\n"
        b"ALTAIR_FORK_EPOCH: 74240\nBELLATRIX_FORK_VERSION: 0x02000000\n"
        b"BELLATRIX_FORK_EPOCH: 144896\nSECONDS_PER_SLOT: 12\n")

    # era1: a small real era1 file (4 blocks) from the test builder.
    import era1_builder
    with tempfile.TemporaryDirectory() as d:
        blocks = era1_builder.make_chain(4, seed=14)
        p = era1_builder.write_era1(d, blocks)
        put("era1", "mainnet-4-blocks.era1", open(p, "rb").read())

    # The range endpoint's chunk stream and the listing pages: real answers of `era serve`.
    from era_tools.serve.app import make_app
    from era_tools.serve.testing import ServerThread
    srv = ServerThread(make_app(os.path.join(ROOT, "sample_eras"), net)).start()
    try:
        def get(path, headers=None):
            req = urllib.request.Request(srv.url.rstrip("/") + path, headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.read()
            except urllib.error.HTTPError as exc:
                return exc.read()
        put("range_chunks", "slots-8-3.bin",
            get("/era_tools/v1/blocks_by_range?start_slot=8&count=3"))
        put("range_chunks", "slot-9999999-404.bin",
            get("/era_tools/v1/blocks_by_range?start_slot=9999999&count=1"))
        put("listing_index_json", "index.json", get("/index.json"))
        put("listing_html", "listing.html", get("/"))
        put("checksums", "checksums.txt", get("/checksums.txt"))
    finally:
        srv.stop()
    put("checksums", "bare.txt", b"".join(b"%064x\n" % i for i in range(3)))
    put("listing_html", "nginx.html", b'<html><head><title>Index of /era/</title></head><body>'
        b'<h1>Index of /era/</h1><hr><pre><a href="../">../</a>\n'
        b'<a href="mainnet-00000-4b363db9.era">mainnet-00000-4b363db9.era</a> 01-Jan-2024 '
        b'12:00  1234\n<a href=\'mainnet-00001-40cf2f3c.era\'>x</a>\n<a href=config.yaml>c</a>'
        b'\n<a href="sub/">sub/</a>\n</pre><hr></body></html>\n')
    put("listing_s3", "s3.xml", b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
        b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>era</Name><Prefix></Prefix>'
        b'<KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>'
        b'<NextContinuationToken>1abc==</NextContinuationToken><Contents>'
        b'<Key>mainnet-00000-4b363db9.era</Key><Size>1234</Size></Contents><Contents>'
        b'<Key>era1/mainnet-00000-5ec1ffb8.era1</Key><Size>99</Size></Contents><Contents>'
        b'<Key>config.yaml</Key><Size>10</Size></Contents></ListBucketResult>\n')

    # HTTP Range header values (as bytes of the header line's value) and Content-Range.
    for i, v in enumerate([b"bytes=0-99", b"bytes=100-", b"bytes=-500", b"bytes=0-0,5-9",
                           b"bytes 0-99/6050", b"bytes=9999999999999999999-"]):
        put("http_range", f"{i}.txt", v)
    light_client_seeds()
    for f in sorted(os.listdir(OUT)):
        n = len(os.listdir(os.path.join(OUT, f)))
        size = sum(os.path.getsize(os.path.join(OUT, f, x)) for x in os.listdir(os.path.join(OUT, f)))
        print(f"{f:<20} {n:>3} files {size:>8} bytes")


def light_client_seeds() -> None:
    """The light_client target's seeds, from the committed light-client chain
    (tests/data/lightclient/): `updates` chunk lists (`<length><fork digest><ssz>`) of
    updates, one chunk per other kind and fork, and the same items as a node's JSON."""
    import lightclient_data as lcd
    shutil.rmtree(os.path.join(OUT, "light_client"), ignore_errors=True)
    digest = {fork: d for d, fork in lcd.light_client_spec().fork_digests(lcd.gvr()).items()}

    def chunk(item) -> bytes:
        data = lcd.raw(item)
        return (len(data) + 4).to_bytes(8, "little") + digest[item["fork"]] + data

    def doc(item, version=True) -> dict:
        out = {"data": to_json(lcd.decode(item))}
        if version:
            out["version"] = item["fork"]
        return out

    updates = lcd.items("update")
    put("light_client", "updates.ssz", b"".join(chunk(i) for i in updates))
    put("light_client", "updates.json", json.dumps([doc(i) for i in updates]).encode())
    seen = set()
    for kind in ("bootstrap", "sample", "finality_update", "optimistic_update",
                 "finality_update_old"):
        for item in lcd.items(kind):
            if (kind, item["fork"]) in seen:
                continue
            seen.add((kind, item["fork"]))
            put("light_client", f"{item['name']}.ssz", chunk(item))
    for item in (lcd.items("bootstrap")[-1], lcd.items("finality_update")[0]):
        put("light_client", f"{item['name']}.json", json.dumps(doc(item)).encode())
    item = lcd.items("optimistic_update")[0]  # no `version`: the fork comes from its slot
    put("light_client", f"{item['name']}-noversion.json",
        json.dumps(doc(item, version=False)).encode())


if __name__ == "__main__":
    if sys.argv[1:] == ["light_client"]:  # only this target's seeds, the others untouched
        light_client_seeds()
    else:
        main()
