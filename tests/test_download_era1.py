"""`era download` of era1 hosts (execution history, `<network>-<epoch>-<root>.era1`) over real
HTTP servers on 127.0.0.1, with era1 files written by tests/era1_builder.py: bare-hash
checksums.txt in epoch order, verification before the rename, gaps per kind, resume, and a
host that serves era and era1 files side by side.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import era1_builder as B
from era_tools.download import RemoteFile, parse_checksums, parse_html, parse_index_json
from era_tools.era1 import Era1Reader
from test_download import ERA_NAMES, plain_host, run_cli  # noqa: F401  (fixture)

EPOCHS = (3, 4, 5)
BLOCKS = 12  # blocks per file: enough for a chain, small enough to be quick


def era1_names(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.era1"))


def make_host(site: Path, epochs=EPOCHS, checksums: str | None = "bare", mangle=None) -> list:
    """Write one era1 file per epoch (consecutive epochs continue one chain) and, if asked, a
    checksums.txt: "bare" (one hash a line, epoch order) or "named" (sha256sum lines).
    `mangle(epoch, blocks)` may return other blocks for an epoch.  Returns the names."""
    site.mkdir(parents=True, exist_ok=True)
    names, parent, td = [], None, 10**21
    for ep in epochs:
        blocks = B.make_chain(BLOCKS, start=ep * B.EPOCH_SIZE, seed=ep, start_td=td,
                              parent=parent)
        parent, td = blocks[-1].hash, blocks[-1].td
        if mangle is not None:
            blocks = mangle(ep, blocks)
        names.append(Path(B.write_era1(site, blocks)).name)
    if checksums:
        write_checksums(site, names, checksums)
    return names


def write_checksums(site: Path, names, style: str = "bare", wrong: str | None = None) -> None:
    lines = []
    for n in names:
        h = "0" * 64 if n == wrong else hashlib.sha256((site / n).read_bytes()).hexdigest()
        lines.append(h if style == "bare" else f"{h}  {n}")
    (site / "checksums.txt").write_text("\n".join(lines) + "\n")


def json_of(output: str) -> dict:
    return json.loads(output[output.index("{"):output.rindex("}") + 1])


def flip_header_byte(path: Path, i: int) -> None:
    """Flip one byte inside block i's CompressedHeader record (its framed payload)."""
    with Era1Reader(path) as r:
        rec = r.group(i).header
    data = bytearray(path.read_bytes())
    data[rec.data_offset + rec.length // 2] ^= 0x55
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------


def test_era1_host_with_bare_checksums_mirrors_completely_and_rerun_is_a_no_op(plain_host,
                                                                             tmp_path):
    site = tmp_path / "site"
    names = make_host(site)
    url = plain_host(site)
    dest = tmp_path / "mirror"
    r = run_cli(url, dest)  # default --verify roots; no network flags, no config on the host
    assert r.exit_code == 0, r.output
    assert "listing: 3 era1 files (html), checksums: checksums.txt" in r.output
    assert "3 downloaded, 0 already present, 0 bad, 0 failed (listing: html, " \
           "checksums: checksums.txt, verify: roots)" in r.output
    assert era1_names(dest) == names
    for n in names:
        assert (dest / n).read_bytes() == (site / n).read_bytes(), n
    assert sorted(p.name for p in dest.iterdir() if p.is_file()) == names  # no .tmp/.bad
    assert not (dest / ".era-download").exists()  # the staging directory is removed after the run
    # a rerun downloads nothing new, and --json names each file's kind
    r = run_cli(url, dest, "--json")
    assert r.exit_code == 0, r.output
    rep = json_of(r.output)
    assert rep["downloaded"] == [] and rep["skipped"] == names and rep["bytes"] == 0
    assert rep["files"] == [{"name": n, "kind": "era1", "epoch": ep, "status": "present"}
                            for n, ep in zip(names, EPOCHS)]
    assert rep["gaps"] == [] and rep["era1_gaps"] == [] and rep["checksums"] == "checksums.txt"


def test_corrupt_era1_header_is_kept_aside_and_the_others_land(plain_host, tmp_path):
    site = tmp_path / "site"
    names = make_host(site, checksums=None)
    bad = names[1]
    flip_header_byte(site / bad, 5)
    url = plain_host(site)
    for level in ("roots", "structure"):
        dest = tmp_path / level
        r = run_cli(url, dest, "--verify", level)
        assert r.exit_code == 1, r.output
        lines = [ln for ln in r.output.splitlines() if ln.startswith("bad: ")]
        assert len(lines) == 1, r.output
        assert lines[0].startswith(f"bad: {bad}: {bad}: era1 check structure failed: ")
        assert lines[0].endswith(f"(kept as {bad}.bad)")
        assert ".era-download" not in lines[0]  # the staging path is not shown
        assert (dest / (bad + ".bad")).read_bytes() == (site / bad).read_bytes()
        assert era1_names(dest) == [names[0], names[2]]
        assert "2 downloaded, 0 already present, 1 bad, 0 failed" in r.output


def test_era1_levels_structure_passes_what_roots_rejects(plain_host, tmp_path):
    """A well-formed file whose headers do not chain: `structure` takes it, `roots` does not
    (era1 files have no signature level: `signatures` checks what `roots` does)."""
    def mangle(ep, blocks):
        if ep == 4:
            blocks[6] = blocks[6].with_header_field(12, b"rewritten extra data")
        return blocks

    site = tmp_path / "site"
    names = make_host(site, mangle=mangle, checksums=None)
    url = plain_host(site)
    r = run_cli(url, tmp_path / "s", "--verify", "structure")
    assert r.exit_code == 0, r.output
    assert era1_names(tmp_path / "s") == names
    for level in ("roots", "signatures"):
        r = run_cli(url, tmp_path / level, "--verify", level)
        assert r.exit_code == 1, r.output
        assert f"bad: {names[1]}: {names[1]}: era1 check header chain failed: block " \
               f"{4 * B.EPOCH_SIZE + 7}: parent_hash" in r.output
        assert era1_names(tmp_path / level) == [names[0], names[2]]


def test_era1_checksum_mismatch_is_bad(plain_host, tmp_path):
    site = tmp_path / "site"
    names = make_host(site, checksums=None)
    write_checksums(site, names, "bare", wrong=names[2])
    dest = tmp_path / "mirror"
    r = run_cli(plain_host(site), dest, "--verify", "none")
    assert r.exit_code == 1, r.output
    assert f"bad: {names[2]}: sha256 {hashlib.sha256((site / names[2]).read_bytes()).hexdigest()}"\
           f", the host's checksum is {'0' * 64}" in r.output
    assert (dest / (names[2] + ".bad")).exists()
    assert era1_names(dest) == names[:2]


def test_era1_gap_is_reported_in_epochs(plain_host, tmp_path):
    site = tmp_path / "site"
    names = make_host(site, epochs=(3, 4, 5, 6, 7, 9))
    (site / names[2]).unlink()  # epoch 5
    write_checksums(site, names[:2] + names[3:], "named")
    url = plain_host(site)
    r = run_cli(url, tmp_path / "a")
    assert r.exit_code == 1, r.output
    assert [ln for ln in r.output.splitlines() if ln.startswith("gap:")] == [
        "gap: the host has no era1 file for epoch 5",
        "gap: the host has no era1 file for epoch 8"]
    assert len(era1_names(tmp_path / "a")) == 5
    r = run_cli(url, tmp_path / "b", "--allow-gaps", "--json", "--from-era", "4",
                "--to-era", "11")
    assert r.exit_code == 0, r.output
    rep = json_of(r.output)
    assert rep["era1_gaps"] == [[5, 5], [8, 8]] and rep["gaps"] == []
    assert rep["beyond_host"] == {"era1": [[10, 11]]}  # past the host's last epoch: no gap
    assert era1_names(tmp_path / "b") == names[1:2] + names[3:]


def test_mixed_host_is_handled_kind_by_kind(plain_host, era_copy, tmp_path):
    """era numbers and era1 epochs never mix: era 4 and era1 epoch 4 are not 'two files for
    one era', and a range selects both kinds, each with its own gaps."""
    names = make_host(era_copy, epochs=(4, 5), checksums=None)
    url = plain_host(era_copy)
    dest = tmp_path / "mirror"
    r = run_cli(url, dest, "--from-era", "4", "--to-era", "6", "--json")
    assert r.exit_code == 0, r.output  # era1 epoch 6 is past the host's last (era 6 is not)
    rep = json_of(r.output)
    assert rep["gaps"] == [] and rep["era1_gaps"] == []
    assert rep["beyond_host"] == {"era1": [[6, 6]]}
    assert not any("two files" in w for w in rep["warnings"]), rep["warnings"]
    eras = [n for n in ERA_NAMES if int(n.split("-")[1]) in (4, 5, 6)]
    assert sorted(p.name for p in dest.glob("*.era")) == eras
    assert era1_names(dest) == names
    kinds = {f["name"]: (f["kind"], f.get("era", f.get("epoch"))) for f in rep["files"]}
    assert kinds == {**{n: ("era", int(n.split("-")[1])) for n in eras},
                     **{n: ("era1", ep) for n, ep in zip(names, (4, 5))}}
    assert rep["verify"] == "roots" and not rep["bad"]


def test_two_era1_files_for_one_epoch_is_a_warning(plain_host, tmp_path):
    site = tmp_path / "site"
    names = make_host(site, epochs=(3, 4), checksums=None)
    other = B.make_chain(BLOCKS, start=4 * B.EPOCH_SIZE, seed=99)
    dup = Path(B.write_era1(site, other)).name
    r = run_cli(plain_host(site), tmp_path / "m", "--json")
    assert r.exit_code == 0, r.output
    rep = json_of(r.output)
    first, second = sorted([names[1], dup])
    assert rep["warnings"] == [f"host lists two files for era1 epoch 4: {first} and {second}"]


# --------------------------------------------------------------------------------------------
# parsing units


def test_parse_listings_take_era1_names():
    html = (b'<a href="../">../</a>\n<a href="mainnet-00003-0123abcd.era1">x</a>\n'
            b'<a href="mainnet-00004-89abcdef.era1">y</a>\n<a href="notes.txt">z</a>\n'
            b'<a href="mainnet-0004-bad.era1">w</a>\n')
    files, _ = parse_html(html, "http://h.example/e/")
    assert [(f.name, f.kind, f.era) for f in files] == [
        ("mainnet-00003-0123abcd.era1", "era1", 3), ("mainnet-00004-89abcdef.era1", "era1", 4),
        ("mainnet-0004-bad.era1", "era1", None)]
    doc = {"files": [{"name": "sepolia-00001-00000000.era1", "size": 10, "sha256": "a" * 64},
                     {"name": "minimal-00002-0badf00d.era"}, {"name": "x.txt"}]}
    lst = parse_index_json(json.dumps(doc).encode(), "http://h.example/")
    assert [(f.name, f.kind, f.era, f.size) for f in lst.files] == [
        ("minimal-00002-0badf00d.era", "era", 2, None),
        ("sepolia-00001-00000000.era1", "era1", 1, 10)]
    assert lst.checksums == "index.json"


def test_bare_checksums_follow_era1_epochs_not_names():
    # "100000" sorts before "99999" as text; line N is the Nth era1 file by epoch
    files = [RemoteFile(n, "u/" + n, ep) for n, ep in
             (("mainnet-100000-22222222.era1", 100000), ("mainnet-99999-11111111.era1", 99999),
              ("minimal-00001-33333333.era", 1))]
    h1, h2 = "1" * 64, "2" * 64
    assert parse_checksums(f"{h1}\n{h2}\n", files) == (
        {"mainnet-99999-11111111.era1": h1, "mainnet-100000-22222222.era1": h2}, None)
    assert parse_checksums(f"{h1}\n", files) == (
        {}, "checksums.txt has 1 bare hashes for 2 era1 files; ignored")
    # sha256sum lines name their files, whatever the kind
    assert parse_checksums(f"{h1}  minimal-00001-33333333.era\n{h2} *mainnet-99999-11111111.era1",
                           files)[0] == {"minimal-00001-33333333.era": h1,
                                         "mainnet-99999-11111111.era1": h2}


# --------------------------------------------------------------------------------------------
# era serve publishes era1 files as plain files


def test_era_serve_lists_and_serves_era1_files_and_download_mirrors_them(era_copy, network,
                                                                        tmp_path):
    from urllib.request import urlopen

    from era_tools.serve.app import make_app
    from era_tools.serve.testing import ServerThread

    names = make_host(era_copy, epochs=(4, 5, 6), checksums=None)
    (era_copy / "notes.era1.txt").write_text("not an era1 file")
    with ServerThread(make_app(era_copy, network)) as srv:
        listing = urlopen(srv.url).read()
        files, _ = parse_html(listing, srv.url)
        assert [f.name for f in files if f.kind == "era1"] == names
        index = json.loads(urlopen(srv.url + "index.json").read())
        era1 = [f for f in index["files"] if f.get("kind") == "era1"]
        assert era1 == [{"name": n, "kind": "era1", "epoch": ep, "size": (era_copy / n).stat()
                         .st_size, "sha256": hashlib.sha256((era_copy / n).read_bytes())
                         .hexdigest()} for n, ep in zip(names, (4, 5, 6))]
        sums = urlopen(srv.url + "checksums.txt").read().decode()
        for n in names:
            assert f"{hashlib.sha256((era_copy / n).read_bytes()).hexdigest()}  {n}\n" in sums
        assert urlopen(srv.url + names[0]).read() == (era_copy / names[0]).read_bytes()
        # the downloader takes both kinds from index.json, with its checksums
        dest = tmp_path / "mirror"
        r = run_cli(srv.url, dest, "--from-era", "5", "--to-era", "6")
        assert r.exit_code == 0, r.output
        assert "listing: index.json, checksums: index.json" in r.output
        assert era1_names(dest) == names[1:]
        for n in names[1:]:
            assert (dest / n).read_bytes() == (era_copy / n).read_bytes()
        assert sorted(p.name for p in dest.glob("*.era")) == [
            n for n in ERA_NAMES if int(n.split("-")[1]) in (5, 6)]
