"""Regression tests for the crashes the fuzz targets found (tests/fuzz/targets.py), each with
its input; the inputs also live in the seed corpora (tests/fuzz/seeds/<target>/crash-*), so
tests/test_fuzz.py replays and mutates them too.  Peers are real sockets on 127.0.0.1."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from era_tools.cli import main
from era_tools.download import parse_s3
from era_tools.errors import PeerError
from era_tools.sync.peers import BackfillPeer
from hostile_http import HostilePeer, response

SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "seeds")
BASE = "http://127.0.0.1:8080/eras/"


def test_s3_listing_with_an_unknown_xml_encoding_is_a_peer_error():
    # listing_s3: ET.fromstring raised LookupError("unknown encoding: UuF-8") out of parse_s3
    body = open(os.path.join(SEEDS, "listing_s3", "crash-unknown-encoding.xml"), "rb").read()
    assert b'encoding="UuF-8"' in body
    with pytest.raises(PeerError, match="bad S3 listing XML: .*unknown encoding"):
        parse_s3(body, BASE)


def test_s3_keys_stay_on_the_listing_host():
    # listing_s3 invariant: a key "//host/..." made urljoin send the download to another host
    body = (b"<ListBucketResult><Contents><Key>//evil.example/x/mainnet-00000-4b363db9.era"
            b"</Key><Size>\xc2\xb2</Size></Contents><Contents><Key>/a/mainnet-00001-4b363db9.era"
            b"</Key><Size>12</Size></Contents></ListBucketResult>")
    files, _, _ = parse_s3(body, BASE)
    assert [urlsplit(f.url).netloc for f in files] == ["127.0.0.1:8080"] * 2
    assert files[0].url == BASE + "evil.example/x/mainnet-00000-4b363db9.era"
    assert [f.size for f in files] == [None, 12]  # "²" is a digit to str.isdigit, not to int


@pytest.mark.parametrize("how", ["range", "rest"])
def test_content_length_of_non_ascii_digits_is_not_a_crash(how):
    # int("²") raised ValueError out of BackfillPeer's size check ("²".isdigit() is True);
    # now the header is ignored and the (empty) body read as it comes
    blob = response(headers={"Era-Tools-Last-Slot": "9"}, body=b"", content_length="\xb2")
    with HostilePeer(lambda path: [blob]) as srv:
        peer = BackfillPeer(srv.url, timeout=5)
        peer.kind = how
        try:
            reply = peer.fetch(8, 9)
        finally:
            peer.close()
    if how == "range":
        assert (reply.blocks, reply.last_slot) == ([], 9)
    else:
        assert [(b.slot, b.ssz) for b in reply.blocks] == [(8, b""), (9, b"")]


def test_state_id_of_non_ascii_digits_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(main, ["checkpoint-sync", "--db", str(tmp_path / "a"),
                                  "--beacon-api", "http://127.0.0.1:9", "--state-id", "²"])
    assert r.exit_code == 2, r.output
    assert "error: --state-id '²': give `finalized` or a slot number" in r.output


def test_a_block_answer_announcing_10_gb_is_refused_before_it_is_read():
    # fault campaign: `era pull` read a block answer with Content-Length 10 GB whole into
    # memory (64 MiB sent: peak RSS 519 MB); blocks are now capped at 4 x MAX_BLOCK_BYTES
    from era_tools.sync.peers import BeaconApiClient
    from hostile_http import CLOSE
    sent = []

    def respond(path):
        sent.append(path)
        return [response(headers={"Eth-Consensus-Version": "phase0"}, content_length=str(
            10 << 30)), *[bytes(1 << 20)] * 64, CLOSE]

    with HostilePeer(respond) as srv:
        api = BeaconApiClient(srv.url, timeout=10, retries=1)
        with pytest.raises(PeerError, match="response of 10737418240 bytes exceeds the limit"):
            api.block(5)
    assert sent == ["/eth/v2/beacon/blocks/5"]


def test_a_block_answer_past_the_cap_without_a_length_is_refused_while_read():
    from era_tools.sync.peers import MAX_BLOCK_BYTES, BeaconApiClient
    from hostile_http import CLOSE
    blob = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
           b"Connection: close\r\n\r\n"
    with HostilePeer(lambda p: [blob, *[bytes(1 << 20)] * 48, CLOSE]) as srv:
        api = BeaconApiClient(srv.url, timeout=10, retries=1)
        with pytest.raises(PeerError, match=f"exceeds the limit {4 * MAX_BLOCK_BYTES} bytes"):
            api.block(5)


def test_config_yaml_aliases_are_refused_billion_laughs():
    # config_yaml: nine levels of `&aN [*aN-1 x 9]` (512 bytes) stood for 9^9 strings once
    # network_from_spec made a string of PRESET_BASE: 23 MB at six levels, hours at nine.
    # A config.yaml comes with mirrored era files (era download fetches it).
    from era_tools.config import load_config
    from era_tools.errors import ConfigError
    src = os.path.join(SEEDS, "config_yaml", "crash-billion-laughs.yaml")
    assert b"*a7" in open(src, "rb").read()
    with pytest.raises(ConfigError, match=r"line 2, column \d+: aliases \(\*name\) are not "
                                          r"allowed in a config file"):
        load_config(src)  # refused while parsing, before any expansion


def test_html_listing_of_unclosed_tags_is_parsed_in_linear_time():
    # listing_html: `<a\s[^>]*?href` rescanned to the end of the page from every "<a ":
    # 14 s for 48 KB of "<a <a <a ...", and era download accepts 64 MB listings
    from era_tools.download import parse_html
    body = open(os.path.join(SEEDS, "listing_html", "crash-quadratic-tags.html"), "rb").read()
    assert body.count(b"<a ") > 20000
    files, _ = parse_html(body, BASE)
    assert [f.name for f in files] == ["minimal-00001-3a1e96ab.era"]
    files, _ = parse_html(b"<a " * 2_000_000, BASE)  # 6 MB: would take hours before
    assert files == []


DEEP = b"[" * 100_000  # json.loads raises RecursionError, not ValueError, for this


def test_json_nested_too_deep_from_a_node_is_a_peer_error(tmp_path):
    # json.loads("[" * 100000) raises RecursionError, which every `except ValueError` around
    # a node's JSON let through: `era pull` ended in "internal error" (exit 3).  Worse, once
    # py_ecc is imported (it raises the recursion limit to 100000) the C decoder overflows
    # the stack: the whole process died of SIGSEGV (the full test suite did, here).
    import py_ecc  # noqa: F401 - the recursion limit as the reference BLS backend leaves it
    import sys
    assert sys.getrecursionlimit() >= 100_000
    def respond(path):
        return [response(headers={"Content-Type": "application/json"}, body=DEEP)]

    with HostilePeer(respond) as srv:
        r = CliRunner().invoke(main, ["pull", "--beacon-api", srv.url, "--db",
                                      str(tmp_path / "db")])
        assert r.exit_code == 2, r.output
        assert f"error: {srv.url}/eth/v1/config/spec: response is not JSON" in r.output
        peer = BackfillPeer(srv.url, timeout=5)
        peer.kind = "rest"
        try:
            assert peer.spec() is None and peer.genesis_validators_root() is None
            with pytest.raises(PeerError, match="JSON response does not parse"):
                peer.fetch(8, 8)
        finally:
            peer.close()


def test_json_nested_too_deep_in_listings_and_genesis_files(tmp_path):
    from era_tools.config import load_config
    from era_tools.download import parse_index_json
    from era_tools.errors import ConfigError
    assert parse_index_json(DEEP, BASE) is None
    (tmp_path / "genesis.json").write_bytes(DEEP)
    (tmp_path / "spec.json").write_bytes(open(os.path.join(
        os.path.dirname(SEEDS), "..", "..", "sample_eras", "spec.json"), "rb").read())
    with pytest.raises(ConfigError, match="genesis.json: not a valid genesis file"):
        load_config(tmp_path / "spec.json")


def test_index_json_sizes_that_are_not_integers_are_unknown():
    # listing_index_json: an extra's "size" was taken as given (1.1, "4623"), and the plan's
    # sum(f.size or 0 ...) over int and str raised TypeError (exit 3)
    from era_tools.download import parse_index_json
    body = open(os.path.join(SEEDS, "listing_index_json", "crash-extras-size.json"), "rb").read()
    lst = parse_index_json(body, BASE)
    assert [(x.name, x.size) for x in lst.extras] == [("genesis.json", None), ("spec.json", None)]
    assert lst.files[0].size is None and lst.files[1].size == 104140  # true; a real size


@pytest.mark.parametrize("name, why", [
    ("crash-version-too-big.yaml", "ALTAIR_FORK_VERSION must be 4 bytes, got 68719476736"),
    ("crash-epoch-inf.yaml", "ALTAIR_FORK_EPOCH is not an integer")])
def test_config_yaml_numbers_out_of_range_are_config_errors(tmp_path, name, why):
    # config_yaml (atheris): a fork version YAML reads as an int of more than 4 bytes raised
    # OverflowError from int.to_bytes; `.inf` as an epoch raised OverflowError from int()
    import shutil
    from era_tools.config import load_config, spec_mismatch, get_network
    from era_tools.errors import ConfigError
    shutil.copyfile(os.path.join(SEEDS, "config_yaml", name), tmp_path / "config.yaml")
    with pytest.raises(ConfigError, match=why):
        load_config(tmp_path / "config.yaml")
    # the same values in a node's /eth/v1/config/spec, compared with a named network
    spec = {"PRESET_BASE": "minimal", "GENESIS_FORK_VERSION": 1 << 36,
            "ALTAIR_FORK_EPOCH": float("inf")}
    assert spec_mismatch(get_network("minimal"), spec)[0] == "GENESIS_FORK_VERSION"


def test_safejson_bounds_nesting_and_reads_what_json_reads():
    import json
    import py_ecc  # noqa: F401 - raises the recursion limit: the case that crashed
    from era_tools import safejson
    for deep in (b"[" * 100_000, b'{"a":' * 50_000, b"[" * 600 + b"]" * 600, b"[{" * 300):
        with pytest.raises(ValueError, match="nested deeper than 256"):
            safejson.loads(deep)
    docs = [b"[" * 200 + b"]" * 200, b'["\\\\", "[[", "\\"[", {"x": "]]]}"}]',
            json.dumps({"a": [["x\\\"[["] * 300], "b": "\u005b"}).encode(),
            json.dumps([[i, {"y": "[{"}] for i in range(1000)]).encode("utf-16")]
    for d in docs:
        assert safejson.loads(d) == json.loads(d)


def test_a_streamed_range_reply_names_the_same_byte_as_the_whole_one():
    # range_chunks (whole vs streamed, random mutator): a truncated or overlong uvarint was
    # reported at its offset in the receive buffer, not in the body, once earlier chunks had
    # been taken from the front of the buffer
    from era_tools.sync.peers import PeerFault, parse_range_body
    from tests.fuzz.targets import _range_streamed

    data = open(os.path.join(SEEDS, "range_chunks", "crash-uvarint-offset.bin"), "rb").read()
    with pytest.raises(PeerFault) as exc:
        parse_range_body(data, 8, 10, "fuzz")
    assert str(exc.value) == f"fuzz: truncated uvarint at byte {len(data)}"
    assert _range_streamed(data) == (None, str(exc.value))
