"""The light-client types and sync protocol against the executable spec.

Data: tests/data/lightclient/ (scripts/make_lightclient_data.py), an altair -> fulu chain built
with the spec, and light-client data made with the spec's own full-node functions.  The spec's
`validate_light_client_update` / `process_light_client_update` is the oracle: on the honest data
and on every corruption below, era_tools' verdict must be the spec's, and the stores must end
at the same headers.
"""

from __future__ import annotations

import pytest

from era_tools import bls, ssz
from era_tools.lightclient import protocol as P
from era_tools.ssz.json import from_json, to_json
from tests import lightclient_data as D

ALL = D.manifest()["items"]


def _ok(fn) -> tuple[bool, str]:
    try:
        fn()
    except AssertionError as exc:  # the spec's verdict
        return False, f"spec: {exc}"
    except P.LightClientError as exc:
        return False, str(exc)
    return True, ""


# --------------------------------------------------------------------------------------------
# Types


@pytest.mark.parametrize("item", ALL, ids=lambda i: f"{i['name']}-{i['fork']}")
def test_types_decode_encode_and_root_like_the_spec(item):
    obj = D.decode(item)
    assert ssz.encode(obj) == D.raw(item)
    spec_obj = D.spec_decode(item)
    assert ssz.hash_tree_root(obj) == bytes(spec_obj.hash_tree_root())
    again = from_json(to_json(obj), type(obj))
    assert ssz.encode(again) == D.raw(item)


def test_fork_modules_mark_the_light_client_changes():
    t = {f: ssz.types_for(f, "minimal") for f in ("altair", "bellatrix", "capella", "deneb",
                                                  "electra", "fulu")}
    assert t["bellatrix"].LightClientUpdate is t["altair"].LightClientUpdate
    assert [n for n, _ in t["altair"].LightClientHeader._meta.fields] == ["beacon"]
    assert "execution_branch" in dict(t["capella"].LightClientHeader._meta.fields)
    assert t["deneb"].LightClientHeader is not t["capella"].LightClientHeader
    assert t["electra"].LightClientHeader is t["deneb"].LightClientHeader
    assert t["fulu"].LightClientUpdate is t["electra"].LightClientUpdate
    branch = dict(t["electra"].LightClientUpdate._meta.fields)["finality_branch"]
    assert branch.length == 7  # floorlog2(FINALIZED_ROOT_GINDEX_ELECTRA)


def test_gindices_and_fork_digests_are_the_specs():
    phases = D.phases()
    spec = D.light_client_spec()
    fulu = phases["fulu"]
    assert P.FINALIZED_ROOT_GINDEX == fulu.FINALIZED_ROOT_GINDEX
    assert P.FINALIZED_ROOT_GINDEX_ELECTRA == fulu.FINALIZED_ROOT_GINDEX_ELECTRA
    assert P.NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA == fulu.NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA
    assert P.CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA == fulu.CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA
    assert P.EXECUTION_PAYLOAD_GINDEX == fulu.EXECUTION_PAYLOAD_GINDEX
    gvr = D.gvr()
    for epoch in range(0, 30):
        assert spec.compute_fork_digest(gvr, epoch) == bytes(fulu.compute_fork_digest(gvr, epoch))
        assert spec.compute_sync_committee_period_at_slot(epoch * 8) == \
            fulu.compute_sync_committee_period_at_slot(epoch * 8)
    digests = spec.fork_digests(gvr)
    assert sorted(set(digests.values())) == sorted(
        ["altair", "bellatrix", "capella", "deneb", "electra", "fulu"])


def test_fast_aggregate_verify_matches_the_spec_bls():
    from eth_consensus_specs.utils import bls as spec_bls

    keys = [11 + i for i in range(8)]
    pks = [bls.secret_to_pubkey(k) for k in keys]
    msg = b"\x42" * 32
    sig = bls.aggregate([bls.sign(k, msg) for k in keys[:6]])
    for subset, want in ((pks[:6], True), (pks[:5], False), (pks[1:7], False), ([], False)):
        assert bls.fast_aggregate_verify(subset, msg, sig) is want
        assert bool(spec_bls.FastAggregateVerify(subset, msg, sig)) is want


# --------------------------------------------------------------------------------------------
# The store, step by step, beside the spec's store


def _stores(boot_item):
    phases = D.phases()
    spec = D.light_client_spec()
    root = bytes.fromhex(boot_item["block_root"][2:])
    mine = spec.initialize_light_client_store(root, D.decode(boot_item))
    theirs = phases["fulu"].initialize_light_client_store(
        root, D.spec_upgrade(boot_item["fork"], D.spec_decode(boot_item), "bootstrap"))
    return spec, mine, theirs


def _same_store(mine, theirs):
    assert ssz.hash_tree_root(mine.finalized_header.beacon) == \
        bytes(theirs.finalized_header.beacon.hash_tree_root())
    assert ssz.hash_tree_root(mine.optimistic_header.beacon) == \
        bytes(theirs.optimistic_header.beacon.hash_tree_root())
    assert ssz.hash_tree_root(mine.current_sync_committee) == \
        bytes(theirs.current_sync_committee.hash_tree_root())
    if mine.next_sync_committee is None:
        assert theirs.next_sync_committee == D.phases()["fulu"].SyncCommittee()
    else:
        assert ssz.hash_tree_root(mine.next_sync_committee) == \
            bytes(theirs.next_sync_committee.hash_tree_root())


def _step(spec, mine, theirs, fork, obj, kind, current_slot):
    """Process one object in both stores; return both verdicts."""
    fulu = D.phases()["fulu"]
    gvr = D.gvr()
    spec_obj = D.spec_decode(fork, ssz.encode(obj), kind)
    up = D.spec_as_update(fork, spec_obj, kind)
    theirs_ok, why_t = _ok(lambda: fulu.process_light_client_update(
        theirs, up, current_slot, gvr))
    mine_ok, why_m = _ok(lambda: spec.process_light_client_update(
        mine, P.UpdateView.of(obj), current_slot, gvr))
    return mine_ok, theirs_ok, why_m, why_t


def test_sync_from_first_bootstrap_like_the_spec():
    boot = D.items("bootstrap")[0]
    spec, mine, theirs = _stores(boot)
    current = D.manifest()["expected"]["current_slot"]
    steps = D.items("update") + D.items("finality_update") + D.items("optimistic_update")
    for item in steps:
        m, t, why_m, why_t = _step(spec, mine, theirs, item["fork"], D.decode(item),
                                   item["kind"], current)
        assert m and t, (item["name"], why_m, why_t)
        _same_store(mine, theirs)
    exp = D.manifest()["expected"]
    assert "0x" + ssz.hash_tree_root(mine.finalized_header.beacon).hex() == \
        exp["finalized"]["root"]
    assert int(mine.optimistic_header.beacon.slot) == exp["optimistic"]["slot"]


@pytest.mark.parametrize("boot", [b for b in D.items("bootstrap") if b["slot"] % 32 == 0
                                  or b["slot"] in (72, 136)],
                         ids=lambda b: f"slot{b['slot']}")
def test_every_sample_in_slot_order_gets_the_specs_verdict(boot):
    """From bootstraps in several forks, every sample (and the per-period updates) in
    signature-slot order: accepted or refused as the spec does, stores equal after each."""
    spec, mine, theirs = _stores(boot)
    current = D.manifest()["expected"]["current_slot"]
    seq = sorted(D.items("sample") + D.items("update"),
                 key=lambda i: (i["signature_slot"], i["kind"]))
    accepted = 0
    for item in seq:
        m, t, why_m, why_t = _step(spec, mine, theirs, item["fork"], D.decode(item),
                                   item["kind"], current)
        assert m == t, (item["name"], why_m, why_t)
        accepted += m
        _same_store(mine, theirs)
    assert accepted > 0


def test_bootstrap_checks():
    spec = D.light_client_spec()
    boot = D.items("bootstrap")[-1]
    obj = D.decode(boot)
    root = bytes.fromhex(boot["block_root"][2:])
    spec.initialize_light_client_store(root, obj)
    with pytest.raises(P.LightClientError, match="not the trusted block root"):
        spec.initialize_light_client_store(b"\x01" * 32, obj)
    t = type(obj)
    committee = obj.current_sync_committee
    other = type(committee)(pubkeys=committee.pubkeys[1:] + committee.pubkeys[:1],
                            aggregate_pubkey=committee.aggregate_pubkey)
    bad = t(header=obj.header, current_sync_committee=other,
            current_sync_committee_branch=obj.current_sync_committee_branch)
    with pytest.raises(P.LightClientError, match="does not prove"):
        spec.initialize_light_client_store(root, bad)


# --------------------------------------------------------------------------------------------
# Corruptions: each must get the spec's verdict (refused, in every case here)


def _replace(obj, **fields):
    cls = type(obj)
    return cls(**{n: fields.get(n, getattr(obj, n)) for n, _ in cls._meta.fields})


def _flip_bit(u):
    bits = list(u.sync_aggregate.sync_committee_bits)
    bits[3] = not bits[3]
    return _replace(u, sync_aggregate=_replace(u.sync_aggregate, sync_committee_bits=tuple(bits)))


def _other_signature(u):
    other = D.decode(D.items("sample")[0])
    return _replace(u, sync_aggregate=_replace(
        u.sync_aggregate, sync_committee_signature=other.sync_aggregate.sync_committee_signature))


def _finality_branch_for_other_root(u):
    branch = list(u.finality_branch)
    branch[-1] = bytes(32 * [7])
    return _replace(u, finality_branch=tuple(branch))


def _next_committee_swapped(u):
    c = u.next_sync_committee
    return _replace(u, next_sync_committee=_replace(
        c, pubkeys=tuple(c.pubkeys[1:]) + (c.pubkeys[0],)))


def _attested_state_root(u):
    h = u.attested_header
    return _replace(u, attested_header=_replace(h, beacon=_replace(h.beacon,
                                                                   state_root=b"\x09" * 32)))


def _finalized_slot(u):
    h = u.finalized_header
    return _replace(u, finalized_header=_replace(h, beacon=_replace(
        h.beacon, slot=int(h.beacon.slot) + 1)))


def _execution_branch(u):
    h = u.attested_header
    if not hasattr(h, "execution_branch"):
        return None
    branch = list(h.execution_branch)
    branch[0] = b"\x05" * 32
    return _replace(u, attested_header=_replace(h, execution_branch=tuple(branch)))


def _signature_slot_not_after_attested(u):
    return _replace(u, signature_slot=int(u.attested_header.beacon.slot))


def _other_fork_domain(u):
    """Moved one sync-committee period on: signed under another fork version's domain."""
    return _replace(u, signature_slot=int(u.signature_slot) + 64)


CORRUPTIONS = {
    "participation_bit_flipped": _flip_bit,
    "wrong_signature": _other_signature,
    "finality_branch_for_other_root": _finality_branch_for_other_root,
    "next_committee_swapped": _next_committee_swapped,
    "attested_state_root": _attested_state_root,
    "finalized_slot": _finalized_slot,
    "execution_branch": _execution_branch,
    "signature_slot_not_after_attested": _signature_slot_not_after_attested,
    "signature_slot_other_fork": _other_fork_domain,
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
@pytest.mark.parametrize("period", [0, 1, 2])
def test_corrupted_update_gets_the_specs_verdict(name, period):
    """The store is brought to just before the period's update; the corrupted update is
    refused by both, and the honest one then accepted by both."""
    spec, mine, theirs = _stores(D.items("bootstrap")[0])
    current = D.manifest()["expected"]["current_slot"] + 64
    updates = D.items("update")
    for item in updates[:period]:
        m, t, *_ = _step(spec, mine, theirs, item["fork"], D.decode(item), "update", current)
        assert m and t
    item = updates[period]
    honest = D.decode(item)
    bad = CORRUPTIONS[name](honest)
    if bad is None:
        pytest.skip("no execution header in this fork")
    m, t, why_m, why_t = _step(spec, mine, theirs, item["fork"], bad, "update", current)
    assert m == t, (why_m, why_t)
    assert not m, "corruption accepted by both: the test's corruption is too weak"
    _same_store(mine, theirs)
    m, t, *_ = _step(spec, mine, theirs, item["fork"], honest, "update", current)
    assert m and t


@pytest.mark.parametrize("name", ["participation_bit_flipped", "wrong_signature",
                                  "finality_branch_for_other_root", "attested_state_root"])
def test_corrupted_finality_update_gets_the_specs_verdict(name):
    spec, mine, theirs = _stores(D.items("bootstrap")[0])
    current = D.manifest()["expected"]["current_slot"]
    for item in D.items("update"):
        _step(spec, mine, theirs, item["fork"], D.decode(item), "update", current)
    item = D.items("finality_update")[0]
    bad = CORRUPTIONS[name](D.decode(item))
    m, t, why_m, why_t = _step(spec, mine, theirs, item["fork"], bad, "finality_update",
                               current)
    assert m == t and not m, (why_m, why_t)


def test_current_slot_before_signature_slot_is_refused_like_the_spec():
    spec, mine, theirs = _stores(D.items("bootstrap")[0])
    item = D.items("update")[0]
    m, t, *_ = _step(spec, mine, theirs, item["fork"], D.decode(item), "update",
                     item["signature_slot"] - 1)
    assert m == t is False


def test_is_better_update_agrees_with_the_spec():
    spec = D.light_client_spec()
    fulu = D.phases()["fulu"]
    objs = [(i, D.decode(i)) for i in D.items("sample") + D.items("update")]
    objs.append((objs[0][0], _flip_bit(objs[0][1])))
    ups = [(o, D.spec_upgrade(i["fork"], D.spec_decode(i["fork"], ssz.encode(o), i["kind"]),
                              i["kind"])) for i, o in objs]
    for a, sa in ups[::3]:
        for b, sb in ups[::2]:
            assert spec.is_better_update(P.UpdateView.of(a), P.UpdateView.of(b)) == \
                bool(fulu.is_better_update(sa, sb))


def test_benchmark_chain_mainnet_preset_syncs_and_a_flipped_bit_is_refused():
    """scripts/bench_lightclient.py's synthetic mainnet-preset chain (512-key committees,
    signed with the participants' summed secret keys) syncs through the protocol."""
    import importlib.util

    path = D.ROOT / "scripts" / "bench_lightclient.py"
    mod_spec = importlib.util.spec_from_file_location("bench_lightclient", path)
    bench = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(bench)
    b = bls.get_backend()
    r = bench.run(3, 0.9, b)
    assert r["periods"] == 3 and r["floor_s"] > 0
    net, t, boot, updates, comms = bench.build(2, 0.9, b, lambda *a: None)
    spec = P.LightClientSpec(net, backend=b)
    store = spec.initialize_light_client_store(ssz.hash_tree_root(boot.header.beacon), boot)
    with pytest.raises(P.LightClientError, match="signature does not verify"):
        spec.validate_light_client_update(store, _flip_bit(updates[0]), 10 ** 6, bench.GVR)
    spec.process_light_client_update(store, updates[0], 10 ** 6, bench.GVR)
    assert spec.is_next_sync_committee_known(store)


@pytest.mark.slow
@pytest.mark.skipif(__import__("os").environ.get("ERA_TOOLS_SLOW") != "1",
                    reason="regenerating the light-client data with the spec takes minutes; "
                           "set ERA_TOOLS_SLOW=1")
def test_regenerate_equals_committed(tmp_path):
    """scripts/make_lightclient_data.py is deterministic: a rerun writes the same files."""
    import json
    import subprocess
    import sys

    out = tmp_path / "regen"
    proc = subprocess.run([sys.executable, str(D.ROOT / "scripts" / "make_lightclient_data.py"),
                           "--out", str(out)], capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in D.DATA.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        if name.endswith(".json"):
            a, b = json.loads((out / name).read_text()), json.loads((D.DATA / name).read_text())
            a.pop("generator", None)
            b.pop("generator", None)
            assert a == b, name
        else:
            assert (out / name).read_bytes() == (D.DATA / name).read_bytes(), name
