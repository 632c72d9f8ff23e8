"""Fuzz targets: one function per untrusted-input parser, taking raw bytes.

Each target may raise only EraToolsError subclasses; anything else is a crash.
Used by tests/test_fuzz.py (seed replay + deterministic mutations) and, later,
by an atheris driver.  Knows nothing of the CLI."""
import io
import os
import tempfile

from era_tools import e2store, framing
from era_tools.era import EraReader, SlotIndex
from era_tools.errors import EraToolsError


def fuzz_framing(data: bytes) -> None:
    framing.decompress(data, max_size=max(1024, 64 * len(data)))


def fuzz_e2store(data: bytes) -> None:
    for _ in e2store.iter_records(io.BytesIO(data), len(data), "fuzz"):
        pass


def fuzz_slot_index(data: bytes) -> None:
    SlotIndex.decode(data, 0, "fuzz")


def fuzz_era_reader(data: bytes) -> None:
    fd, path = tempfile.mkstemp(suffix=".era")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        r = EraReader(path)
        try:
            for _slot, _ssz in r.iter_blocks():
                pass
            r.state_head()
        finally:
            r._f.close()
    finally:
        os.unlink(path)


TARGETS = {
    "framing": fuzz_framing,
    "e2store": fuzz_e2store,
    "slot_index": fuzz_slot_index,
    "era_reader": fuzz_era_reader,
}


def fuzz_rlp(data: bytes) -> None:
    from era_tools.era1 import rlp_decode
    rlp_decode(data, "fuzz")


def fuzz_spec_json(data: bytes) -> None:
    from era_tools import safejson
    from era_tools.config import network_from_spec
    from era_tools.errors import ConfigError
    try:
        spec = safejson.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"fuzz: not JSON: {exc}") from exc  # the callers' own wrapping
    if isinstance(spec, dict):
        network_from_spec(spec.get("data", spec))


def _ssz(kind: str, data: bytes) -> None:
    from era_tools import ssz
    for preset in ("minimal", "mainnet"):
        for fork in ssz.FORKS:
            try:  # every fork's decoder sees the input, not only the first
                (ssz.decode_block if kind == "block" else ssz.decode_state)(
                    data, fork, preset, where="fuzz")
            except EraToolsError:
                pass


def fuzz_ssz_block(data: bytes) -> None:
    _ssz("block", data)


def fuzz_ssz_state(data: bytes) -> None:
    _ssz("state", data)


TARGETS.update({
    "rlp": fuzz_rlp,
    "spec_json": fuzz_spec_json,
    "ssz_block": fuzz_ssz_block,
    "ssz_state": fuzz_ssz_state,
})


# ---------------------------------------------------------------------------------------------
# Stage 2 targets: era1 files, Beacon API JSON, the range endpoint's chunk stream, HTTP Range
# headers, `era download`'s listing parsers, config.yaml.  Inputs that are text are decoded
# the way the code under test receives them (aiohttp hands header values over as latin-1
# str, listings and checksums arrive as bytes).

_TMP = None


def _tmp_path(name: str) -> str:
    """A path in one per-process temporary directory (the readers take paths, not bytes)."""
    global _TMP
    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="era-fuzz-")
        import atexit
        import shutil
        atexit.register(shutil.rmtree, _TMP, True)
    return os.path.join(_TMP, name)


def fuzz_era1(data: bytes) -> None:
    """check_era1_file (every check) and the reader's own walk with RLP decoding."""
    from era_tools.era1 import Era1Reader, check_era1_file, header_fields, rlp_decode
    path = _tmp_path("mainnet-00003-00000000.era1")
    with open(path, "wb") as f:
        f.write(data)
    check_era1_file(path)
    with Era1Reader(path) as r:
        for b in r.iter_blocks():
            header_fields(b.header_rlp)
            rlp_decode(b.body_rlp)
            rlp_decode(b.receipts_rlp)
        r.accumulator_root()


def _json_doc(data: bytes):
    from era_tools import safejson
    from era_tools.sync.peers import PeerFault
    try:
        return safejson.loads(data)  # as BackfillPeer._fetch_rest reads a JSON answer
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # what BackfillPeer._fetch_rest does with a body that does not parse
        raise PeerFault(f"fuzz: JSON response does not parse: {exc}") from exc


def _beacon_json(data: bytes, type_name: str) -> None:
    """A JSON-only node's answer through the converter the sync code uses (ssz_from_json with
    json_to_ssz_for(preset)), then the SSZ it made decoded again: what was accepted must be
    a valid object of the named fork."""
    from era_tools import ssz
    from era_tools.ssz.json import json_to_ssz_for
    from era_tools.sync.peers import PeerFault, ssz_from_json
    doc = _json_doc(data)
    for preset in ("minimal", "mainnet"):
        try:
            resp = ssz_from_json(doc, type_name, None, json_to_ssz_for(preset), "fuzz",
                                 error=PeerFault)
        except EraToolsError:
            continue
        if type_name == "BeaconState":
            ssz.decode_state(resp.ssz, resp.fork, preset, where="fuzz")
        else:
            ssz.decode_block(resp.ssz, resp.fork, preset, where="fuzz")


def fuzz_beacon_json_block(data: bytes) -> None:
    _beacon_json(data, "SignedBeaconBlock")


def fuzz_beacon_json_state(data: bytes) -> None:
    _beacon_json(data, "BeaconState")


def fuzz_beacon_json_node(data: bytes) -> None:
    """A node's /config/spec, /beacon/genesis, /node/syncing and finality_checkpoints (one
    JSON object keyed by path) through BeaconApiClient's accessors and pull.node_network, with
    and without an expected network."""
    from era_tools.config import get_network
    from era_tools.sync.peers import BeaconApiClient
    from era_tools.sync.pull import node_network
    from era_tools.errors import PeerError
    doc = _json_doc(data)
    if not isinstance(doc, dict):
        raise PeerError("fuzz: not an object")

    import json
    import requests

    class Node(BeaconApiClient):  # the answers come from the input, parsed by get_json
        def get(self, path, *a, **k):
            resp = requests.Response()
            resp.status_code = 200
            resp._content = json.dumps(doc.get(path)).encode()
            return resp

    for expected in (None, get_network("mainnet")):
        api = Node("http://127.0.0.1:9")
        try:
            node_network(api, expected)
        except EraToolsError:
            pass
    Node("http://127.0.0.1:9").finalized_checkpoint()


def _range_streamed(data: bytes):
    """The body as BackfillPeer reads it off the socket: in pieces (their sizes from the
    input), each fed to RangeBody and the used bytes dropped from the front of the buffer,
    as HttpClient._read_into does; then finish() on the rest.  (blocks, None) or (None,
    the PeerFault's text)."""
    from era_tools.sync.peers import PeerFault, RangeBody
    rb, buf, taken, pos = RangeBody("fuzz"), bytearray(), 0, 0
    step = 1 + (data[-1] if data else 0) * 7 % 211
    try:
        while pos < len(data):
            buf += data[pos:pos + step]
            pos += step
            used = rb.feed(memoryview(buf), taken)
            del buf[:used]
            taken += used
        return rb.finish(bytes(buf)), None
    except PeerFault as exc:
        return None, str(exc)


def fuzz_range_chunks(data: bytes) -> None:
    """A blocks_by_range body as BackfillPeer parses it, whole and streamed in pieces (the
    same blocks or the same error), then each chunk as the sync queue reads it: the
    148-byte head peek and the exact decompression to the announced length."""
    from era_tools.sync.peers import PeerFault, parse_range_body
    streamed, why = _range_streamed(data)
    try:
        whole = parse_range_body(data, 8, 10, "fuzz")
    except PeerFault as exc:
        assert why == str(exc), (why, str(exc))
        raise
    assert why is None, why
    key = [(b.framed, b.length, b.digest) for b in whole]
    assert key == [(b.framed, b.length, b.digest) for b in streamed]
    for raw in whole:
        framing.peek_prefix(raw.framed, 148, where="fuzz")
        out = framing.decompress_exact(raw.framed, raw.length, where="fuzz")
        assert len(out) == raw.length, (len(out), raw.length)


def fuzz_http_range(data: bytes) -> None:
    """A Range header value through `era serve`'s check and, when it passes, aiohttp's own
    parser (the one FileResponse uses); a Content-Range through the download client's."""
    from era_tools.serve.app import _range_ok
    from era_tools.serve.client import _content_range_start
    value = data.decode("latin-1")
    _content_range_start(value)
    if not _range_ok(value):
        return
    from aiohttp.test_utils import make_mocked_request
    req = make_mocked_request("GET", "/x.era", headers={"Range": value})
    try:
        rng = req.http_range
    except ValueError:  # FileResponse answers 416 for these
        return
    assert rng.step in (None, 1) and all(x is None or isinstance(x, int)
                                         for x in (rng.start, rng.stop)), rng


def _listing_invariants(files, extras, base: str) -> None:
    from era_tools.download import EXTRA_FILES, _safe_name
    from urllib.parse import urlsplit
    host = urlsplit(base).netloc
    for f in [*files, *extras]:
        assert _safe_name(f.name), f.name  # written under this name in the destination
        assert urlsplit(f.url).netloc == host, (f.url, base)  # fetched from the listing's host
        assert f.size is None or type(f.size) is int and f.size >= 0, f.size
        assert f.sha256 is None or len(f.sha256) == 64
    assert all(x.name in EXTRA_FILES for x in extras)


BASE = "http://127.0.0.1:8080/eras/"


def fuzz_listing_index_json(data: bytes) -> None:
    from era_tools.download import parse_index_json
    lst = parse_index_json(data, BASE)
    if lst is not None:
        _listing_invariants(lst.files, lst.extras, BASE)


def fuzz_listing_s3(data: bytes) -> None:
    from era_tools.download import parse_s3
    files, extras, token = parse_s3(data, BASE)
    _listing_invariants(files, extras, BASE)
    assert token is None or isinstance(token, str)


def fuzz_listing_html(data: bytes) -> None:
    from era_tools.download import parse_html
    files, extras = parse_html(data, BASE)
    _listing_invariants(files, extras, BASE)
    assert all(f.url.startswith(BASE) for f in files + extras)


def fuzz_checksums(data: bytes) -> None:
    from era_tools.download import RemoteFile, parse_checksums
    files = [RemoteFile("mainnet-00000-4b363db9.era", BASE + "a"),
             RemoteFile("mainnet-00001-40cf2f3c.era", BASE + "b"),
             RemoteFile("mainnet-00003-5ec1ffb8.era1", BASE + "c", era=3)]
    sums, _warn = parse_checksums(data.decode("utf-8", "replace"), files)
    assert all(isinstance(k, str) and len(v) == 64 for k, v in sums.items())


def fuzz_config_yaml(data: bytes) -> None:
    """load_config on a client config.yaml (PyYAML safe_load, then network_from_spec)."""
    from era_tools.config import load_config
    path = _tmp_path("config.yaml")
    with open(path, "wb") as f:
        f.write(data)
    load_config(path)


TARGETS.update({
    "era1": fuzz_era1,
    "beacon_json_block": fuzz_beacon_json_block,
    "beacon_json_state": fuzz_beacon_json_state,
    "beacon_json_node": fuzz_beacon_json_node,
    "range_chunks": fuzz_range_chunks,
    "http_range": fuzz_http_range,
    "listing_index_json": fuzz_listing_index_json,
    "listing_s3": fuzz_listing_s3,
    "listing_html": fuzz_listing_html,
    "checksums": fuzz_checksums,
    "config_yaml": fuzz_config_yaml,
})


# ---------------------------------------------------------------------------------------------
# Light-client data from strangers: the chunked SSZ list of `light_client/updates` (each item
# with its fork digest) or a node's JSON answer, decoded the way the light-client driver
# decodes it (digest -> fork, the fork's type, the fork checked against the header's slot),
# then bootstraps through initialize_light_client_store and updates through
# process_light_client_update against stores built from the committed light-client chain
# (tests/data/lightclient/: one store per sync-committee period, from its first bootstrap).

_LC = None


def _lc():
    """(driver run, stores by period, current slot, BeaconApiClient) for the committed chain;
    built once per process."""
    global _LC
    if _LC is None:
        from tests import lightclient_data as lcd
        from era_tools.lightclient.driver import _Run
        from era_tools.ssz.json import json_to_ssz_for
        from era_tools.sync.peers import BeaconApiClient
        net, spec_json = lcd.network()
        run = _Run([], b"\x00" * 32, net, spec_json, lcd.manifest()["expected"]["current_slot"],
                   0.0, 1.0, 1.0, None)
        stores = {}
        for item in sorted(lcd.items("bootstrap"), key=lambda i: i["slot"]):
            period = run.spec.compute_sync_committee_period_at_slot(item["slot"])
            if period not in stores:
                stores[period] = run.spec.initialize_light_client_store(
                    bytes.fromhex(item["block_root"][2:]), lcd.decode(item))
        api = BeaconApiClient("http://127.0.0.1:9", json_to_ssz=json_to_ssz_for("minimal"))
        api.fork_at_slot = net.fork_name_at_slot
        _LC = (run, stores, lcd.manifest()["expected"]["current_slot"], api)
    return _LC


_LC_KINDS = ("bootstrap", "update", "finality", "optimistic")


def _lc_item(resp, kinds) -> None:
    """One item through the driver's decode for each kind it may be, then the protocol."""
    import dataclasses
    from era_tools.lightclient.protocol import UpdateView
    run, stores, current_slot, _api = _lc()
    for kind in kinds:
        try:
            obj = run.decode(None, resp, kind, f"fuzz {kind}")
        except EraToolsError:
            continue
        if kind == "bootstrap":
            from era_tools.lightclient.protocol import _root
            run.spec.initialize_light_client_store(_root(obj.header.beacon), obj)
            continue
        period = run.spec.compute_sync_committee_period_at_slot(
            int(obj.attested_header.beacon.slot))
        store = dataclasses.replace(stores[min(max(period, min(stores)), max(stores))])
        try:
            run.spec.process_light_client_update(store, UpdateView.of(obj), current_slot,
                                                 run.gvr)
        except EraToolsError:
            pass


def fuzz_light_client(data: bytes) -> None:
    """Light-client data as a node serves it: JSON (an input starting with `{` or `[`: one
    `{"version", "data"}` answer, or a list of them as `updates` returns) through
    `ssz_from_json` for each light-client type, else the SSZ chunk list of `updates`
    (`parse_light_client_chunks`); each item decoded as the driver does and fed to the
    protocol (a bootstrap to initialize_light_client_store, an update to
    process_light_client_update against the store of its period)."""
    from era_tools.lightclient.driver import TYPE_OF_KIND
    from era_tools.sync.peers import PeerFault, parse_light_client_chunks, ssz_from_json
    if data.lstrip()[:1] in (b"{", b"["):
        doc = _json_doc(data)
        if isinstance(doc, dict) and isinstance(doc.get("data"), list):
            doc = doc["data"]  # `updates` wrapped in an object, as the client tolerates
        _run, _stores, _slot, api = _lc()
        for item in (doc if isinstance(doc, list) else [doc])[:16]:
            fork = api._light_client_fork(item, None)
            for kind in _LC_KINDS:
                try:
                    resp = ssz_from_json(item, TYPE_OF_KIND[kind], fork, api._json_to_ssz,
                                         "fuzz", error=PeerFault)
                except EraToolsError:
                    continue
                _lc_item(resp, (kind,))
        return
    for resp in parse_light_client_chunks(data, "fuzz"):
        _lc_item(resp, _LC_KINDS)


TARGETS["light_client"] = fuzz_light_client
