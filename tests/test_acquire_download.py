"""Acquisition against a real HTTP server on loopback that serves a mirror and misbehaves.

The mirror (archive layout) is made from three bundled structures with simulated
maps; the server answers 404, 500-then-OK, slow (> timeout), truncated bodies
and corrupt gzip on the paths a test asks for.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from conftest import Server, archive_entry, archive_simulated
from cryosse.acquire import download as dl
from cryosse.acquire.emdb import header_v3_xml, parse_header, parse_search_csv, search_entries
from cryosse.acquire.stage import AcquireSettings, acquire_entry, write_tables
from cryosse.io import read_json, sha256_file

STRUCTS = {"EMD-91001": "2CVI", "EMD-91002": "3A4R", "EMD-91003": "2XDG"}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, root) -> Path:
    """A folder with the archives' layout holding three simulated entries."""
    base = tmp_path_factory.mktemp("mirror")
    work = tmp_path_factory.mktemp("sim")
    for emdb_id, pdb in STRUCTS.items():
        archive_simulated(base, work, emdb_id, pdb, root / "data" / "demo_structures")
    # An entry whose header lists no fitted model.
    archive_entry(base, "EMD-91004", header_v3_xml("EMD-91004", 6.0, 0.1, "author", 1.2, [], "2020-01-01"))
    # An entry outside the resolution window.
    archive_entry(
        base, "EMD-91005", header_v3_xml("EMD-91005", 3.1, 0.1, "author", 1.2, ["2CVI"], "2020-01-01")
    )
    return base


@pytest.fixture()
def server(mirror):
    with Server(mirror) as srv:
        yield srv


def settings_for(srv: Server, **kw) -> AcquireSettings:
    base = dict(
        source="download",
        emdb_api=f"{srv.url}/api",
        emdb_files=f"{srv.url}/files/structures",
        pdb_files=f"{srv.url}/files/mmCIF",
        retries=2,
        backoff_s=0.01,
        timeout_s=0.5,
    )
    base.update(kw)
    return AcquireSettings(**base)


def entry(emdb_id: str, pdb: str = "") -> dict:
    return {"emdb_id": emdb_id, "pdb_id": pdb, "chains": [], "problem": ""}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_download_ok_matches_mirror(server, mirror, tmp_path):
    rec = acquire_entry(entry("EMD-91001"), tmp_path / "e", settings_for(server))
    assert rec["status"] == "ok", rec["reason"]
    assert rec["pdb_id"] == "2CVI" and rec["fitted_pdbs"] == ["2CVI"]
    assert rec["contour_source"] == "simulated" and rec["contour_level"] is not None
    assert rec["voxel_size"] == pytest.approx(1.2) and 5.0 <= rec["resolution"] <= 10.0
    src = mirror / "structures" / "EMD-91001" / "map" / "emd_91001.map.gz"
    by_name = {Path(f["path"]).name: f for f in rec["files"]}
    assert by_name["emd_91001.map.gz"]["sha256"] == sha256_file(src)
    assert by_name["2CVI.cif.gz"]["size"] == (mirror / "mmCIF" / "cv" / "2cvi.cif.gz").stat().st_size
    assert read_json(tmp_path / "e" / "record.json") == rec
    assert leftovers(tmp_path / "e") == []


def test_500_then_ok_is_retried(server, tmp_path):
    path = "/files/structures/EMD-91002/map/emd_91002.map.gz"
    server.rules[path] = ["500", "ok"]
    rec = acquire_entry(entry("EMD-91002"), tmp_path / "e", settings_for(server))
    assert rec["status"] == "ok", rec["reason"]
    assert server.hits[path] == 2


@pytest.mark.parametrize(
    ("path", "rule", "reason"),
    [
        ("/files/structures/EMD-91003/map/emd_91003.map.gz", "404", "HTTP 404"),
        ("/files/structures/EMD-91003/map/emd_91003.map.gz", "corrupt", "corrupt gzip"),
        ("/files/mmCIF/xd/2xdg.cif.gz", "corrupt", "corrupt gzip"),
    ],
)
def test_permanent_failures_reject_the_entry_and_leave_nothing(server, tmp_path, path, rule, reason):
    server.rules[path] = [rule]
    folder = tmp_path / "e"
    rec = acquire_entry(entry("EMD-91003"), folder, settings_for(server, retries=1))
    assert rec["status"] == "rejected"
    assert reason in rec["reason"], rec["reason"]
    name = path.rsplit("/", 1)[1]
    assert not (folder / name).exists() and not (folder / name.upper().replace(".CIF.GZ", ".cif.gz")).exists()
    assert leftovers(folder) == []
    assert read_json(folder / "record.json")["status"] == "rejected"
    if rule != "404":
        assert server.hits[path] == 2  # first try + one retry: damaged both times
    else:
        assert server.hits[path] == 1  # a 404 is not retried


@pytest.mark.parametrize(
    ("path", "rule", "reason"),
    [
        ("/files/structures/EMD-91003/map/emd_91003.map.gz", "500", "HTTP 500"),
        ("/files/mmCIF/xd/2xdg.cif.gz", "slow", "timed out"),
        ("/files/structures/EMD-91003/map/emd_91003.map.gz", "truncate", "truncated"),
        ("/files/structures/EMD-91003/map/emd_91003.map.gz", "503:1", "HTTP 503"),
    ],
)
def test_transient_failures_fail_the_job_and_record_nothing(server, tmp_path, path, rule, reason):
    """A maintenance window (5xx, timeouts, dropped connections) must never reject an entry for good."""
    server.rules[path] = [rule]
    folder = tmp_path / "e"
    with pytest.raises(RuntimeError, match="transient") as exc:
        acquire_entry(entry("EMD-91003"), folder, settings_for(server, retries=1))
    assert reason in str(exc.value) and "EMD-91003" in str(exc.value)
    assert not (folder / "record.json").exists() and leftovers(folder) == []
    assert server.hits[path] == 2  # first try + one retry


def test_retry_after_is_honoured(server, tmp_path):
    path = "/files/structures/EMD-91002/map/emd_91002.map.gz"
    server.rules[path] = ["429:2", "ok"]
    t0 = time.monotonic()
    rec = acquire_entry(entry("EMD-91002"), tmp_path / "e", settings_for(server))
    assert rec["status"] == "ok" and server.hits[path] == 2
    assert time.monotonic() - t0 >= 2.0  # waited as the server asked, beyond the 0 s back-off
    server.rules[path] = ["503:100000"]  # longer than a job should wait: fail now, rerun later
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="transient"):
        acquire_entry(entry("EMD-91002"), tmp_path / "f", settings_for(server, retries=3))
    assert time.monotonic() - t0 < 30 and server.hits[path] == 3


def _serve_bytes(server, mirror, tmp_path, rel: str, data: bytes) -> None:
    """Serve ``data`` at ``rel`` from a private copy of the mirror."""
    copy = tmp_path / "mirror"
    if not copy.exists():
        shutil.copytree(mirror, copy)
    (copy / rel).write_bytes(data)
    server.root = copy


def _zero_cell(raw: bytearray) -> bytearray:
    raw[40:52] = np.zeros(3, "<f4").tobytes()  # cell lengths 0 -> voxel size 0
    return raw


def _negative_cell(raw: bytearray) -> bytearray:
    raw[40:52] = np.full(3, -50.0, "<f4").tobytes()
    return raw


def _bad_mode(raw: bytearray) -> bytearray:
    raw[12:16] = np.array([5], "<i4").tobytes()
    return raw


def _short(raw: bytearray) -> bytearray:
    return raw[: len(raw) - 4000]


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        (_zero_cell, "voxel size"),
        (_negative_cell, "voxel size"),
        (_bad_mode, "mode 5"),
        (_short, "wrong file length"),
    ],
)
def test_bad_mrc_header_is_rejected(server, mirror, tmp_path, damage, cause):
    rel = "structures/EMD-91003/map/emd_91003.map.gz"
    raw = damage(bytearray(gzip.decompress((mirror / rel).read_bytes())))
    _serve_bytes(server, mirror, tmp_path, rel, gzip.compress(bytes(raw)))
    rec = acquire_entry(entry("EMD-91003"), tmp_path / "e", settings_for(server, retries=0))
    assert rec["status"] == "rejected" and "bad MRC map" in rec["reason"] and cause in rec["reason"], rec[
        "reason"
    ]
    assert not (tmp_path / "e" / "emd_91003.map.gz").exists()


def test_unparsable_mmcif_is_rejected(server, mirror, tmp_path):
    _serve_bytes(
        server, mirror, tmp_path, "mmCIF/xd/2xdg.cif.gz", gzip.compress(b"data_x\nloop_\n_a.b\n'unterminated")
    )
    rec = acquire_entry(entry("EMD-91003"), tmp_path / "e", settings_for(server, retries=0))
    assert rec["status"] == "rejected" and "mmCIF" in rec["reason"]


def test_no_fitted_model_bad_id_and_resolution_are_rejected(server, tmp_path):
    s = settings_for(server)
    assert "no fitted model" in acquire_entry(entry("EMD-91004"), tmp_path / "a", s)["reason"]
    assert "resolution 3.1" in acquire_entry(entry("EMD-91005"), tmp_path / "b", s)["reason"]
    bad = {"emdb_id": "EMD-12x", "pdb_id": "", "chains": [], "problem": ""}
    assert acquire_entry(bad, tmp_path / "c", s)["reason"].startswith("bad id")
    bad = {"emdb_id": "EMD-91001", "pdb_id": "TOOLONG", "chains": []}
    assert acquire_entry(bad, tmp_path / "d", s)["reason"].startswith("bad id")
    assert "2CVI" not in str(list((tmp_path / "d").iterdir()))


def test_rerun_after_kill_resumes(server, tmp_path):
    folder = tmp_path / "e"
    s = settings_for(server)
    assert acquire_entry(entry("EMD-91001"), folder, s)["status"] == "ok"
    # A kill mid-download leaves a hidden temporary file and no record.
    (folder / "record.json").unlink()
    (folder / "2CVI.cif.gz").unlink()
    (folder / ".2CVI.cif.gz.abc123.cif.gz").write_bytes(b"partial")
    before = dict(server.hits)
    rec = acquire_entry(entry("EMD-91001"), folder, s)
    assert rec["status"] == "ok"
    map_path = "/files/structures/EMD-91001/map/emd_91001.map.gz"
    assert server.hits[map_path] == before[map_path]  # verified map kept, not fetched again
    assert server.hits["/files/mmCIF/cv/2cvi.cif.gz"] == before["/files/mmCIF/cv/2cvi.cif.gz"] + 1
    assert leftovers(folder) == []


def test_kill_mid_download_leaves_no_file_and_rerun_completes(server, tmp_path):
    """SIGKILL a real acquisition while the map is half transferred, then run it again."""
    path = "/files/structures/EMD-91001/map/emd_91001.map.gz"
    server.rules[path] = ["trickle", "ok"]
    folder = tmp_path / "e"
    code = (
        "import sys\n"
        "from cryosse.acquire.stage import AcquireSettings, acquire_entry\n"
        "u = sys.argv[1]\n"
        "s = AcquireSettings(emdb_api=u + '/api', emdb_files=u + '/files/structures',"
        " pdb_files=u + '/files/mmCIF', retries=0, timeout_s=60)\n"
        "acquire_entry({'emdb_id': 'EMD-91001', 'pdb_id': '', 'chains': []}, sys.argv[2], s)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, server.url, str(folder)])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            partial = [p for p in folder.glob(".emd_91001.map.gz.*") if p.stat().st_size > 0]
            if partial:
                break
            assert proc.poll() is None, "the acquisition ended before the kill"
            time.sleep(0.05)
        assert partial, "no partial download seen"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (folder / "emd_91001.map.gz").exists() and not (folder / "record.json").exists()
    assert (folder / "emd-91001.xml").exists()  # finished before the kill: kept
    rec = acquire_entry(entry("EMD-91001"), folder, settings_for(server))
    assert rec["status"] == "ok", rec["reason"]
    assert server.hits[path] == 2 and server.hits["/files/structures/EMD-91001/header/emd-91001.xml"] == 1
    assert leftovers(folder) == []


def test_local_mirror_source(mirror, tmp_path):
    s = AcquireSettings(source="local", mirror=str(mirror))
    rec = acquire_entry(entry("EMD-91002", "3A4R"), tmp_path / "e", s)
    assert rec["status"] == "ok", rec["reason"]
    assert rec["source"] == "local"
    missing = acquire_entry(entry("EMD-91009", "3A4R"), tmp_path / "f", s)
    assert missing["status"] == "rejected" and "not found in mirror" in missing["reason"]


def test_tables_after_mixed_run(server, tmp_path):
    server.rules["/files/structures/EMD-91003/map/emd_91003.map.gz"] = ["404"]
    s = settings_for(server)
    paths = []
    for e in ("EMD-91001", "EMD-91003", "EMD-91004"):
        acquire_entry(entry(e), tmp_path / e, s)
        paths.append(tmp_path / e / "record.json")
    out = tmp_path / "tables"
    assert write_tables(paths, out / "entries.tsv", out / "rejected.tsv", out / "manifest.tsv") == (1, 2)
    rej = (out / "rejected.tsv").read_text().splitlines()
    assert rej[0] == "stage\tid\treason"
    assert rej[1].startswith("acquire\tEMD-91003\tHTTP 404") and rej[2].startswith(
        "acquire\tEMD-91004\tno fitted model"
    )
    manifest = (out / "manifest.tsv").read_text().splitlines()
    assert len(manifest) == 4 and all(len(line.split("\t")[3]) == 64 for line in manifest[1:])
    assert (out / "entries.tsv").read_text().splitlines()[1].startswith("EMD-91001\t2CVI\t")


def test_emdb_search_against_server(server):
    server.search_body = (
        b"emdb_id,resolution,fitted_pdbs,structure_determination_method,release_date\n"
        b"EMD-1997,7.0,1OEL,singleParticle,2012-04-17\n"
        b'EMD-3491,5.3,"5MDX,5MDW",singleParticle,2016-11-16\n'
        b"EMD-0001,3.2,6ABC,singleParticle,2018-01-01\n"
        b"EMD-0002,6.0,,singleParticle,2018-01-01\n"
    )
    rows = search_entries(f"{server.url}/api", 5.0, 10.0, ["singleParticle"], 100, retries=0, timeout_s=2)
    assert [(r["emdb_id"], r["pdb_id"]) for r in rows] == [("EMD-1997", "1OEL"), ("EMD-3491", "5MDX")]
    (path,) = [p for p in server.hits if p.startswith("/api/search/")]
    assert "resolution%3A%5B5%20TO%2010%5D" in path and "fitted_pdbs" in path
    assert (
        parse_search_csv("emdb_id,resolution,fitted_pdbs\nEMD-5,10.0,1ABC\n", 5.0, 10.0)[0]["resolution"]
        == 10.0
    )


def test_fetch_file_keeps_existing_verified_file(tmp_path):
    src = tmp_path / "src.gz"
    src.write_bytes(gzip.compress(b"hello"))
    dest = tmp_path / "out" / "x.gz"
    dl.fetch_file(str(src), dest, dl._check_gzip, retries=0)
    src.write_bytes(b"changed")  # would fail verification if fetched again
    dl.fetch_file(str(src), dest, dl._check_gzip, retries=0)
    assert gzip.decompress(dest.read_bytes()) == b"hello"


def test_cli_query_emdb_writes_entry_table(server, tmp_path):
    from cryosse.acquire.records import read_entry_table
    from cryosse.cli import main

    server.search_body = b'emdb_id,resolution,fitted_pdbs\nEMD-1657,5.8,"4v5h,4v5i"\nEMD-9999,12.0,1abc\n'
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"acquire:\n  emdb_api: {server.url}/api\n  retries: 0\n  timeout_s: 5\n")
    out = tmp_path / "entries.tsv"
    assert main(["query-emdb", "-c", str(cfg), "-o", str(out)]) == 0
    rows = read_entry_table(out)
    assert [(r["emdb_id"], r["pdb_id"], r["chains"]) for r in rows] == [("EMD-1657", "4V5H", [])]
    server.search_body = b""
    server.rules = {}
    cfg.write_text(f"acquire:\n  emdb_api: {server.url}/nowhere\n  retries: 0\n  timeout_s: 5\n")
    assert main(["query-emdb", "-c", str(cfg), "-o", str(tmp_path / "x.tsv")]) == 1  # 404: error, no table
    assert not (tmp_path / "x.tsv").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"emdb_id,resolution,fitted_pdbs\n", "no entries returned"),
        (b"<html><body>Service unavailable</body></html>", "not the expected CSV"),
        (b"", "not the expected CSV"),
    ],
)
def test_an_empty_or_foreign_search_answer_is_an_error(server, tmp_path, capsys, body, message):
    from cryosse.cli import main

    server.search_body = body
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"acquire:\n  emdb_api: {server.url}/api\n  retries: 0\n  timeout_s: 5\n")
    assert main(["query-emdb", "-c", str(cfg), "-o", str(tmp_path / "e.tsv")]) == 1
    err = capsys.readouterr().err
    assert message in err and "resolution:[5 TO 10]" in err  # names the query
    assert not (tmp_path / "e.tsv").exists()


def test_a_full_page_is_an_error_and_an_existing_table_is_never_overwritten(server, tmp_path, capsys):
    from cryosse.cli import main

    server.search_body = b"emdb_id,resolution,fitted_pdbs\nEMD-1657,5.8,4v5h\nEMD-1658,6.0,4v5j\n"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"acquire:\n  emdb_api: {server.url}/api\n  retries: 0\n  timeout_s: 5\n  search_rows: 2\n"
    )
    out = tmp_path / "entries.tsv"
    # as many rows as asked for: there are probably more, and a silently cut table is data lost
    assert main(["query-emdb", "-c", str(cfg), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "acquire.search_rows = 2" in err and "resolution:[5 TO 10]" in err and not out.exists()
    cfg.write_text(
        f"acquire:\n  emdb_api: {server.url}/api\n  retries: 0\n  timeout_s: 5\n  search_rows: 3\n"
    )
    assert main(["query-emdb", "-c", str(cfg), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# EMDB search of ") and "# query: current_status" in text and server.url in text
    before = out.read_bytes()
    assert main(["query-emdb", "-c", str(cfg), "-o", str(out)]) == 1  # exists: refused without --force
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["query-emdb", "-c", str(cfg), "-o", str(out), "--force"]) == 0
    with pytest.raises(SystemExit):
        main(["query-emdb", "-c", str(cfg)])  # no default output: the shipped tables are never written


def test_no_network_names_the_query_and_writes_nothing(tmp_path, capsys):
    import socket

    from cryosse.cli import main

    with socket.socket() as sock:  # a port nothing listens on: the connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"acquire:\n  emdb_api: http://127.0.0.1:{port}/api\n  retries: 0\n  timeout_s: 2\n")
    assert main(["query-emdb", "-c", str(cfg), "-o", str(tmp_path / "e.tsv")]) == 1
    err = capsys.readouterr().err
    assert "EMDB search 'current_status" in err and f"127.0.0.1:{port}" in err and "connection" in err
    assert not (tmp_path / "e.tsv").exists()


# ---------------------------------------------------------------- the paper's dataset, not today's

REAL_V3 = """<?xml version="1.0" encoding="UTF-8"?>
<emd emdb_id="EMD-91003" version="3.0.11.3">
  <admin>
    <current_status><code>REL</code></current_status>
    <key_dates><deposition>2017-01-10</deposition><header_release>2017-02-01</header_release>
      <map_release>2017-03-01</map_release></key_dates>
    <title>A map whose primary contour is missing</title>
  </admin>
  <crossreferences>
    <pdb_list>
      <pdb_reference><pdb_id>9xyz</pdb_id><relationship><in_frame>NOOVERLAP</in_frame></relationship></pdb_reference>
      <pdb_reference><pdb_id>pdb_00002xdg</pdb_id><relationship><in_frame>FULLOVERLAP</in_frame></relationship></pdb_reference>
    </pdb_list>
  </crossreferences>
  <structure_determination_list><structure_determination><method>singleParticle</method>
    <singleparticle_processing><final_reconstruction><resolution units="Å" res_type="BY AUTHOR">6.3</resolution>
    </final_reconstruction></singleparticle_processing></structure_determination></structure_determination_list>
  <map format="CCP4" size_kbytes="200">
    <file>emd_91003.map.gz</file>
    <pixel_spacing><x units="Å">1.2</x><y units="Å">1.2</y><z units="Å">1.2</z></pixel_spacing>
  </map>
  <interpretation>
    <segmentation_list><segmentation><file>emd_91003_msk_1.map</file>
      <mask_details format="CCP4"><file>emd_91003_msk_1.map</file>
        <contour_list><contour primary="true"><level>1.0</level><source>AUTHOR</source></contour></contour_list>
        <pixel_spacing><x units="Å">3.0</x><y units="Å">3.0</y><z units="Å">3.0</z></pixel_spacing>
      </mask_details></segmentation></segmentation_list>
    <half_map_list><half_map format="CCP4"><file>emd_91003_half_map_1.map.gz</file>
      <contour_list><contour primary="true"><level>0.02</level><source>AUTHOR</source></contour></contour_list>
    </half_map></half_map_list>
  </interpretation>
</emd>
"""


def test_contour_and_spacing_come_from_the_primary_map_only(server, mirror, tmp_path):
    """EMDB v3: a primary map without a contour never borrows the mask's or half-map's level."""
    meta = parse_header(REAL_V3.encode())
    assert meta["contour_level"] is None and meta["contour_source"] == "none"
    assert meta["voxel_size_xyz"] == [1.2, 1.2, 1.2]  # not the mask's 3.0
    assert meta["fitted_pdbs"] == ["2XDG", "9XYZ"]  # extended id mapped; the NOOVERLAP model last
    assert meta["release_date"] == "2017-03-01"
    with_contour = REAL_V3.replace(
        "<file>emd_91003.map.gz</file>",
        '<file>emd_91003.map.gz</file><contour_list><contour primary="false"><level>0.5</level>'
        '<source>SOFTWARE</source></contour><contour primary="true"><level>0.07</level>'
        "<source>AUTHOR</source></contour></contour_list>",
    )
    assert parse_header(with_contour.encode())["contour_level"] == 0.07  # the primary one first
    _serve_bytes(server, mirror, tmp_path, "structures/EMD-91003/header/emd-91003.xml", REAL_V3.encode())
    rec = acquire_entry(entry("EMD-91003"), tmp_path / "e", settings_for(server))
    assert rec["status"] == "ok" and rec["pdb_id"] == "2XDG" and rec["contour_source"] == "none"
    assert rec["contour_level"] is None  # the dataset stage estimates it from the full map, and says so


def test_extended_ids_and_the_hash_folder():
    from cryosse.acquire.emdb import normalise_pdb_id
    from cryosse.acquire.records import check_ids
    from cryosse.acquire.stage import remote_locations

    assert normalise_pdb_id("pdb_00005mdx") == "5MDX" and normalise_pdb_id("5mdx") == "5MDX"
    assert normalise_pdb_id("pdb_1abcde23") == "PDB_1ABCDE23"
    assert check_ids("EMD-1234", "PDB_1ABCDE23", []) == "" and check_ids("EMD-1234", "5MDX", []) == ""
    assert "not a PDB id" in check_ids("EMD-1234", "PDB_12", [])
    s = AcquireSettings(pdb_files="https://x/mmCIF")
    assert remote_locations(s, "EMD-1234", "5MDX")["model"] == "https://x/mmCIF/md/5mdx.cif.gz"
    assert (
        remote_locations(s, "EMD-1234", "PDB_12345678")["model"] == "https://x/mmCIF/67/pdb_12345678.cif.gz"
    )


def test_search_asks_for_released_entries_up_to_the_snapshot(server, tmp_path):
    from cryosse.acquire.emdb import search_entries

    server.search_body = (b"emdb_id,resolution,fitted_pdbs,release_date\nEMD-0090,5.1,6gyk,2018-07-04T00:00:00Z\n"
                          b"EMD-20001,6.0,6abc,2019-05-01T00:00:00Z\n")  # fmt: skip
    rows = search_entries(
        f"{server.url}/api", 5.0, 10.0, ["singleParticle"], 100, retries=0, release_date_max="2018-12-31"
    )
    assert [r["emdb_id"] for r in rows] == [
        "EMD-0090"
    ]  # a server ignoring the date filter cannot let 2019 in
    (path,) = [p for p in server.hits if p.startswith("/api/search/")]
    query = urllib.parse.unquote(path)
    assert 'current_status:"REL"' in query and "release_date:[* TO 2018-12-31T23:59:59Z]" in query
