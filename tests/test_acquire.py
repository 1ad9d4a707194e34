"""Acquire stage units: entry table, EMDB headers, simulated maps, one simulated entry."""

from __future__ import annotations

import time

import gemmi
import numpy as np
import pytest

from cryosse.acquire.emdb import HeaderError, header_v3_xml, parse_header, search_query
from cryosse.acquire.records import read_entry_table
from cryosse.acquire.simulate import draw_resolution, simulate_density, write_map_gz
from cryosse.acquire.stage import AcquireSettings, acquire_entry, remote_locations
from cryosse.geometry import read_map, sample_points
from cryosse.io import sha256_file


def write(tmp_path, text):
    p = tmp_path / "entries.tsv"
    p.write_text(text)
    return p


def test_entry_table_merges_repeated_entries_and_chain_lists(tmp_path):
    rows = read_entry_table(
        write(
            tmp_path,
            "# comment\nemdb_id\tpdb_id\tchain\nEMD-1657\t4V5H\tAE\nemd-1657\t4v5h\tAM\n"
            "EMD-3491\t5MDX\tL,X\nEMD-1997\t\t\nEMD-12x\t1ABC\t\nEMD-2000\tABCDE\t\n",
        )
    )
    by = {r["emdb_id"]: r for r in rows}
    assert list(by) == ["EMD-1657", "EMD-3491", "EMD-1997", "EMD-12X", "EMD-2000"]
    assert by["EMD-1657"]["chains"] == ["AE", "AM"] and by["EMD-1657"]["chain"] == "AE,AM"
    assert by["EMD-3491"]["chains"] == ["L", "X"]
    assert by["EMD-1997"]["pdb_id"] == "" and by["EMD-1997"]["problem"] == ""
    assert by["EMD-12X"]["problem"].startswith("bad id")
    assert "PDB id" in by["EMD-2000"]["problem"]


def test_entry_table_errors_name_the_cause(tmp_path):
    with pytest.raises(ValueError, match="one entry uses one fitted model"):
        read_entry_table(write(tmp_path, "emdb_id\tpdb_id\tchain\nEMD-1657\t4V5H\tAE\nEMD-1657\t4V5I\tAM\n"))
    with pytest.raises(ValueError, match="cannot name a folder"):
        read_entry_table(write(tmp_path, "emdb_id\tpdb_id\n../EMD-1\t1ABC\n"))
    with pytest.raises(ValueError, match="emdb_id column"):
        read_entry_table(write(tmp_path, "id\tpdb\nEMD-1\t1ABC\n"))
    with pytest.raises(FileNotFoundError):
        read_entry_table(tmp_path / "absent.tsv")


def test_example_and_demo_tables_read(root):
    demo = read_entry_table(root / "config" / "demo_entries.tsv")
    assert 24 <= len(demo) <= 40 and not any(r["problem"] for r in demo)
    paper = read_entry_table(root / "config" / "paper_test_entries.tsv")
    e1657 = next(r for r in paper if r["emdb_id"] == "EMD-1657")
    assert e1657["pdb_id"] == "4V5H" and e1657["chains"] == ["AE", "AM"]


def test_real_v19_header(real):
    meta = parse_header(real / "emd1997_groel" / "header_1997.xml")
    assert meta["emdb_id"] == "EMD-1997" and meta["schema"].startswith("1.9")
    assert meta["resolution"] == 7.0
    assert meta["contour_level"] == 1.0 and meta["contour_source"] == "author"
    assert meta["fitted_pdbs"] == ["1OEL"]
    assert meta["voxel_size_xyz"] == [2.02, 2.02, 2.02]
    assert meta["release_date"] == "2012-04-17" and meta["method"] == "singleParticle"


def test_v3_header_round_trip_and_errors(tmp_path):
    xml = header_v3_xml("EMD-0090", 5.1, 0.0123, "author", 1.06, ["6gyk", "6GYL"], "2018-10-03")
    meta = parse_header(xml)
    assert meta["emdb_id"] == "EMD-0090" and meta["resolution"] == 5.1
    assert meta["contour_level"] == pytest.approx(0.0123) and meta["contour_source"] == "author"
    assert meta["fitted_pdbs"] == ["6GYK", "6GYL"] and meta["voxel_size_xyz"] == [1.06] * 3
    none = parse_header(header_v3_xml("EMD-0091", 6.0, None, "author", 1.0, [], "2018-10-03"))
    assert none["contour_level"] is None and none["contour_source"] == "none" and none["fitted_pdbs"] == []
    with pytest.raises(HeaderError, match="not a readable"):
        parse_header(b"<emd emdb_id='EMD-1'")
    with pytest.raises(HeaderError, match="neither"):
        parse_header(b"<html/>")


def test_search_query_and_archive_layout():
    q = search_query(5.0, 10.0, ["singleParticle", "helical"])
    assert q == (
        'current_status:"REL" AND resolution:[5 TO 10] AND fitted_pdbs:[* TO *]'
        " AND structure_determination_method:(singleParticle OR helical)"
    )
    s = AcquireSettings(emdb_files="http://x/structures/", pdb_files="http://y/mmCIF")
    loc = remote_locations(s, "EMD-0090", "6GYK")
    assert loc == {
        "map": "http://x/structures/EMD-0090/map/emd_0090.map.gz",
        "header": "http://x/structures/EMD-0090/header/emd-0090.xml",
        "model": "http://y/mmCIF/gy/6gyk.cif.gz",
    }


def test_resolution_draw_is_seeded_and_in_range():
    vals = [draw_resolution(42, n, 5.0, 10.0) for n in range(90001, 90031)]
    assert all(5.0 <= v <= 10.0 for v in vals) and len(set(vals)) > 20
    assert vals == [draw_resolution(42, n, 5.0, 10.0) for n in range(90001, 90031)]
    assert vals != [draw_resolution(43, n, 5.0, 10.0) for n in range(90001, 90031)]


@pytest.mark.parametrize("use_nstart", [False, True])
def test_simulated_map_overlays_its_model(root, tmp_path, use_nstart):
    st = gemmi.read_structure(str(root / "data" / "demo_structures" / "2CVI.cif.gz"))
    sim = simulate_density(st, 6.0, 1.2, 10.0, 0.1, 7, 90001)
    sim = type(sim)(sim.data, sim.geometry, sim.resolution, sim.contour_level, use_nstart)
    path = tmp_path / "emd_90001.map.gz"
    write_map_gz(path, sim)
    m = read_map(path)
    assert m.header["origin_source"] == ("NSTART" if use_nstart else "ORIGIN")
    assert m.geometry.voxel_size == pytest.approx((1.2, 1.2, 1.2))
    assert np.allclose(m.geometry.origin_xyz, sim.geometry.origin_xyz, atol=1e-3) and np.any(
        np.abs(m.geometry.origin_xyz) > 1
    )
    ca = np.array([a.pos.tolist() for ch in st[0] for r in ch for a in r if a.name == "CA"])
    assert m.geometry.contains(ca, margin=5.0).all()
    on_ca = sample_points(m, ca)
    assert (on_ca > sim.contour_level).mean() > 0.9
    # Far from the model the map is noise around 0, below the contour.
    assert np.abs(np.asarray(m.data)[:3, :3, :3]).max() < sim.contour_level
    # A model shifted by 30 A no longer lies in its density.
    assert (sample_points(m, ca + 30.0) > sim.contour_level).mean() < 0.1


def test_simulate_entry_record(root, tmp_path):
    s = AcquireSettings(source="simulate", sim_structures=str(root / "data" / "demo_structures"))
    e = {"emdb_id": "EMD-90016", "pdb_id": "2CVI", "chains": ["A"], "problem": ""}
    rec = acquire_entry(e, tmp_path / "EMD-90016", s)
    assert rec["status"] == "ok", rec["reason"]
    assert rec["source"] == "simulate" and rec["chains"] == ["A"]
    assert rec["contour_source"] == "simulated" and rec["voxel_size"] == pytest.approx(1.2)
    assert rec["resolution"] == draw_resolution(42, 90016, 5.0, 10.0)
    names = sorted((tmp_path / "EMD-90016").iterdir())
    assert [p.name for p in names] == ["2CVI.cif.gz", "emd-90016.xml", "emd_90016.map.gz", "record.json"]
    for f in rec["files"]:
        assert sha256_file(f["path"]) == f["sha256"]
    # Same seed, same bytes, even a second later (no time stamp in the file).
    time.sleep(1.05)
    rec2 = acquire_entry(e, tmp_path / "again", s)
    assert [f["sha256"] for f in rec2["files"]] == [f["sha256"] for f in rec["files"]]
    missing = acquire_entry({**e, "emdb_id": "EMD-90099", "pdb_id": "9ZZZ"}, tmp_path / "m", s)
    assert missing["status"] == "rejected" and missing["reason"] == "structure not bundled"


def test_cli_fetch_simulate(root, tmp_path, capsys, monkeypatch):
    from cryosse.cli import main

    monkeypatch.chdir(root)  # the demo config's folders are relative to the project
    rc = main(
        [
            "simulate",
            "EMD-90026",
            "--pdb",
            "3A4R",
            "-c",
            str(root / "config" / "demo.yaml"),
            "-o",
            str(tmp_path / "e"),
        ]
    )
    assert rc == 0 and (tmp_path / "e" / "emd_90026.map.gz").exists()
    rc = main(["acquire-tables", str(tmp_path / "e" / "record.json"), "-o", str(tmp_path / "t")])
    assert rc == 0 and "1 entries ok, 0 rejected" in capsys.readouterr().out
    rc = main(["fetch", "EMD-1x", "--source", "simulate", "-o", str(tmp_path / "bad")])
    assert rc == 1 and not (tmp_path / "bad").exists()  # a bad id is refused before anything is written
    assert "EMD-1x" in capsys.readouterr().err
