"""Dataset stage on small synthetic cases: selection, quality, boxes, labels, bad inputs.

Maps are simulated here from real structures (Gaussian-blurred atoms, the
contour at the model's volume), so each test knows the truth it checks.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import ndimage
from scipy.spatial import cKDTree

from conftest import REAL  # noqa: E402  (../shared/data/real, or $CRYOSSE_REAL_DATA)
from cryosse.dataset import dssp
from cryosse.dataset.chains import dedup_groups, select_chains, sequence_identity
from cryosse.dataset.crop import chain_box, contour_level, crop
from cryosse.dataset.entry import aggregate, build_entry, load_inputs
from cryosse.dataset.labels import label_box
from cryosse.dataset.pairs import (
    DATASET_COLUMNS,
    DatasetParams,
    PairRejected,
    box_inside,
    build_pair,
    pair_id,
)
from cryosse.dataset.quality import QualityParams, helix_score, near_mask, quality_bin
from cryosse.dataset.structure import read_model
from cryosse.density import map_statistics
from cryosse.geometry import DensityMap, MapGeometry, read_map, sample_points, write_map
from cryosse.io import sha256_file, write_json

HB = REAL / "emd3488_5me2" / "5me2.pdb"  # haemoglobin: chains A, C alpha; B, D beta
GINS = REAL / "emd8518_5u8s_A" / "A_fitted.pdb"
DEMO_2XDG = Path(__file__).resolve().parents[1] / "data" / "demo_structures" / "2XDG.cif.gz"  # bundled


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data not found: {path}")
    return path


def simulate(xyz: np.ndarray, n_res: int, res: float = 6.0, voxel=(1.2, 1.2, 1.2), margin: float = 12.0,
             seed: int = 0) -> tuple[np.ndarray, MapGeometry, float]:  # fmt: skip
    """Blurred-atom density around ``xyz`` and the contour enclosing the model's volume."""
    vs = np.asarray(voxel, float)
    lo = np.floor((xyz.min(0) - margin) / vs) * vs
    n = np.ceil((xyz.max(0) + margin - lo) / vs).astype(int) + 1
    geom = MapGeometry((int(n[2]), int(n[1]), int(n[0])), tuple(vs), tuple(lo))
    grid = np.zeros(geom.shape_zyx, np.float32)
    f = np.rint(geom.xyz_to_index(xyz)).astype(int)
    np.add.at(grid, (f[:, 2], f[:, 1], f[:, 0]), 1.0)
    grid = ndimage.gaussian_filter(grid, 0.225 * res / vs[::-1])
    grid += np.random.default_rng(seed).normal(0, 0.1 * grid.std(), grid.shape).astype(np.float32)
    n_in = int(n_res * 110 * 1.21 / np.prod(vs))
    return grid, geom, float(np.sort(grid.ravel())[-n_in])


def model_atoms(path: Path) -> tuple[np.ndarray, int]:
    m = read_model(path)
    return np.concatenate(list(m.chain_atoms.values())), len(m.keys)


def write_record(folder: Path, map_path, model_path, contour, chains=(), status="ok", reason="") -> Path:
    rec = {
        "status": status, "reason": reason, "emdb_id": "EMD-9999", "pdb_id": "5me2", "chains": list(chains),
        "resolution": 6.0, "contour_level": contour, "contour_source": "simulated" if contour else "none",
        "map": str(map_path) if map_path else None, "model": str(model_path) if model_path else None,
    }  # fmt: skip
    path = folder / "record.json"
    write_json(path, rec)
    return path


@pytest.fixture(scope="module")
def hb_map(tmp_path_factory):
    xyz, n_res = model_atoms(need(HB))
    data, geom, contour = simulate(xyz, n_res)
    path = tmp_path_factory.mktemp("hb") / "hb.mrc"
    write_map(path, data, geom)
    return path, contour


# ---------------------------------------------------------------- labels, masks, boxes


def test_label_box_takes_the_nearest_ca_within_radius():
    rng = np.random.default_rng(1)
    geom = MapGeometry((18, 20, 22), (1.0, 1.0, 1.0), (-3.0, 2.0, 5.0))
    ca = rng.uniform([-5, 0, 3], [21, 24, 24], (40, 3))
    cls = rng.integers(0, 3, 40).astype(np.uint8)
    labels = label_box(geom, ca, cls, 3.0)
    centres = geom.voxel_centres().reshape(-1, 3).astype(float)
    d, i = cKDTree(ca).query(centres)
    expect = np.where(d <= 3.0, cls[i], 0).reshape(geom.shape_zyx)
    assert (labels == expect).mean() > 0.999  # float32 centres: ties at the radius
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2}


def test_label_box_loop_ca_shadows_helix_ca():
    geom = MapGeometry((1, 1, 11), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    labels = label_box(geom, np.array([[2.0, 0, 0], [6.0, 0, 0]]), np.array([1, 0]), 3.0)
    assert labels[0, 0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]


def test_near_mask_is_exact_and_does_not_wrap():
    rng = np.random.default_rng(0)
    geom = MapGeometry((20, 25, 30), (1.0, 1.2, 0.9), (3.0, -2.0, 5.0))
    pts = rng.uniform(-5, 40, (60, 3))
    d, _ = cKDTree(pts).query(geom.voxel_centres().reshape(-1, 3))
    assert np.array_equal(near_mask(geom, pts, 4.0), (d <= 4.0).reshape(geom.shape_zyx))
    edge = near_mask(geom, np.array([[3.0, -2.0, 5.0]]), 3.0)  # a corner voxel
    assert edge[0, 0, 0] and not edge[-1, -1, -1] and not edge[:, :, -1].any()


def test_chain_box_padding_centre_and_grid():
    geom = MapGeometry((50, 50, 50), (1.3, 1.3, 1.3), (10.3, 20.7, -4.1))
    atoms = np.array([[20.0, 30.0, 5.0], [40.5, 33.2, 19.9], [25.0, 45.0, 12.0]])
    box = chain_box(atoms, geom, 17.0, 1.0)
    g = box.geometry
    assert g.voxel_size == (1.0, 1.0, 1.0)
    assert np.all(atoms.min(0) - g.lower >= 17.0 - 1e-9) and np.all(g.upper - atoms.max(0) >= 17.0 - 1e-9)
    assert np.all(atoms.min(0) - g.lower < 18.0) and np.all(g.upper - atoms.max(0) < 18.0)
    assert np.all(box.in_centre(atoms))
    z0, z1, y0, y1, x0, x1 = box.centre
    assert (z0, y0, x0) == (17, 17, 17) or min(z0, y0, x0) >= 17
    lo, hi = box.centre_bounds_xyz()
    assert np.all(np.asarray(lo) <= atoms.min(0) + 1e-9) and np.all(np.asarray(hi) >= atoms.max(0) - 1e-9)


def test_map_statistics_and_contour():
    rng = np.random.default_rng(3)
    data = rng.normal(2.0, 3.0, (37, 20, 21)).astype(np.float32)
    dmap = DensityMap(data, MapGeometry(data.shape, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), "x")
    mean, sd = map_statistics(dmap, slab=5)
    assert mean == pytest.approx(float(data.mean()), rel=1e-6) and sd == pytest.approx(
        float(data.std()), rel=1e-5
    )
    assert contour_level(dmap, 0.7, 3.0) == (0.7, "author")
    level, src = contour_level(dmap, None, 3.0)
    assert src == "estimated" and level == pytest.approx(mean + 3 * sd)
    # predict's ChimeraX level is the same estimate (one estimator), or the level given
    from cryosse.density import CONTOUR_SD, display_level

    assert display_level(dmap, None)[0] == contour_level(dmap, None, CONTOUR_SD)[0]
    assert display_level(dmap, 0.4) == (0.4, "the contour level given")


# ---------------------------------------------------------------- selection


def test_sequence_identity_and_single_linkage():
    a = "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF"
    b = a[:40] + "WWWWWWW"  # 40/47 identical
    c = "GSHMKKLLEEAKRLAEEGNSEEAIRLLEEALRLAEEAGDP"
    assert sequence_identity(a, a) == 1.0
    assert sequence_identity(a, b) == pytest.approx(40 / 47, abs=0.03)
    assert sequence_identity(a, c) < 0.4
    # b ~ a, a ~ a2: single linkage puts b, a, a2 in one group whose first member is b.
    assert dedup_groups([b, c, a, a], 0.70) == [0, 1, 0, 0]


def test_select_chains_reasons():
    helix = np.array([1] * 40)
    sheet = np.array([2] * 40)
    seq = "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTK"
    chains = ["A", "B", "C", "D", "e"]
    seqs = {
        "A": seq,
        "B": seq,
        "C": "GSHMKKLLEEAKRLAEEGNSEEAIRLLEEALRLAEEAGDPW",
        "D": seq[:10],
        "e": "PPGG" * 10,
    }
    classes = {"A": helix, "B": helix, "C": sheet, "D": helix[:10], "e": helix}
    out = {c.chain: c for c in select_chains(chains, seqs, classes, None, 30, 0.70)}
    assert out["A"].kept and out["e"].kept
    assert not out["B"].kept and "duplicate of chain A" in out["B"].reason
    assert not out["C"].kept and "no helix" in out["C"].reason
    assert not out["D"].kept and "10 residues" in out["D"].reason
    only = select_chains(chains, seqs, classes, ["B", "Z"], 30, 0.70)
    assert [(c.chain, c.kept) for c in only] == [("B", True), ("Z", False)]


def test_pair_id_keeps_chain_ids_verbatim():
    assert pair_id("EMD-3491", "5mdx", "L") == "3491_5MDX_L"
    assert pair_id("EMD-1657", "4V5H", "AE") == "1657_4V5H_AE"
    assert pair_id("EMD-6452", "3jbo", "Ae") == "6452_3JBO_Ae"


def test_params_defaults_match_config(root):
    with open(root / "config" / "config.yaml") as fh:
        cfg = yaml.safe_load(fh)["dataset"]
    assert DatasetParams.from_config(cfg) == DatasetParams()


# ---------------------------------------------------------------- quality


def _ideal_helix(n: int = 16) -> np.ndarray:
    t = np.arange(n)
    return (
        np.stack([2.3 * np.cos(np.radians(100 * t)), 2.3 * np.sin(np.radians(100 * t)), 1.5 * t], axis=1) + 20
    )


def test_helix_score_high_on_its_density_low_when_moved():
    ca = _ideal_helix()
    geom = MapGeometry((60, 44, 44), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    axis_pts = np.stack([np.full(200, 20.0), np.full(200, 20.0), np.linspace(15, 50, 200)], axis=1)
    density = near_mask(geom, axis_pts, 2.5).astype(np.float32)  # a perfect rod
    good = helix_score(density, geom, 0.5, ca, 5.0, 2.5)
    moved = helix_score(density, geom, 0.5, ca + [6.0, 0, 0], 5.0, 2.5)
    assert good > 0.9 and moved < 0.3
    assert helix_score(np.zeros(geom.shape_zyx, np.float32), geom, 0.5, ca, 5.0, 2.5) == 0.0


def test_quality_bins():
    q = QualityParams()
    assert quality_bin(0.60, 0.10, q) == 1
    assert quality_bin(0.50, 0.10, q) == 2
    assert quality_bin(0.60, 0.35, q) == 3
    assert quality_bin(0.30, 0.10, q) == 4
    assert quality_bin(0.60, 0.50, q) == 4
    # No helix long enough to score: the paper bins every pair on both scores, so bin 4.
    assert quality_bin(float("nan"), 0.05, q) == 4


def test_the_group_keeps_its_first_chain_that_makes_a_pair(tmp_path):
    """Two copies of one chain: the first in the file lies outside the map, so the second,
    not the first, is the group's pair (and is not dropped as its duplicate)."""
    import gemmi

    from cryosse.acquire.simulate import simulate_density

    st = gemmi.read_structure(str(DEMO_2XDG))
    st.remove_ligands_and_waters()
    sim = simulate_density(st, 6.0, 1.2, 12.0, 0.05, 0, 1)  # the map covers the original chain A only
    write_map(tmp_path / "map.mrc", sim.data, sim.geometry)
    away = st[0]["A"].clone()
    away.name = "B"
    for r in away:
        for a in r:
            a.pos = gemmi.Position(a.pos.x + 400.0, a.pos.y, a.pos.z)
    model = gemmi.Model("1")
    model.add_chain(away)  # first in file order, and outside the map
    model.add_chain(st[0]["A"])
    st2 = gemmi.Structure()
    st2.add_model(model)
    st2.setup_entities()
    st2.write_pdb(str(tmp_path / "model.pdb"))
    rec = write_record(tmp_path, tmp_path / "map.mrc", tmp_path / "model.pdb", sim.contour_level)
    params = dataclasses.replace(DatasetParams(), keep_bins=(1, 2, 3, 4))
    t = build_entry(rec, tmp_path / "e.tsv", tmp_path / "pairs", params).set_index("chain")
    assert t.loc["B", "status"] == "rejected" and "outside" in t.loc["B", "reason"]
    assert t.loc["A", "status"] == "kept"


# ---------------------------------------------------------------- DSSP


def test_pydssp_per_chain_blocks_match_whole_model(monkeypatch):
    model = read_model(need(HB))
    whole = dssp.assign_pydssp(model)
    monkeypatch.setattr(dssp, "_MAX_BLOCK", 10)
    blocks = dssp.assign_pydssp(model)
    assert dssp.agreement(whole, blocks)["agreement"] >= 0.99


def test_dssp_unknown_engine():
    with pytest.raises(ValueError, match="unknown DSSP engine"):
        dssp.assign(read_model(need(GINS)), "stride")


# ---------------------------------------------------------------- whole entries


def test_build_entry_haemoglobin(tmp_path, hb_map):
    map_path, contour = hb_map
    rec = write_record(tmp_path, map_path, HB, contour)
    table = build_entry(rec, tmp_path / "entries" / "EMD-9999.tsv", tmp_path / "pairs", DatasetParams())
    by = {r.chain: r for r in table.itertuples()}
    assert by["A"].status == "kept" and by["B"].status == "kept"
    assert by["C"].status == "rejected" and "duplicate of chain A" in by["C"].reason
    assert by["D"].status == "rejected" and "duplicate of chain B" in by["D"].reason
    assert by["A"].contour_source == "simulated"
    folder = tmp_path / "pairs" / "9999_5ME2_A"
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "labels.mrc", "map.mrc", "record.json"]
    assert not [p for p in (tmp_path / "pairs").iterdir() if p.name.startswith(".")]
    rec_pair = json.loads((folder / "record.json").read_text())
    for name, digest in rec_pair["files"].items():
        assert sha256_file(folder / name) == digest
    z = np.load(folder / "arrays.npz")
    assert z["density"].dtype == np.float32 and z["labels"].dtype == np.uint8
    assert z["centre"].dtype == np.int64 and z["centre"].shape == (6,)
    assert (
        z["ca_xyz"].dtype == np.float32
        and z["ca_class"].dtype == np.uint8
        and z["ca_in_centre"].dtype == bool
    )
    assert z["density"].shape == z["labels"].shape
    assert abs(float(z["density"].mean())) < 1e-4 and float(z["density"].std()) == pytest.approx(
        1.0, abs=1e-3
    )
    # The MRC files overlay the model: their geometry is the box's, labels equal the array.
    lab = read_map(folder / "labels.mrc")
    assert np.array_equal(np.asarray(lab.data), z["labels"])
    assert np.allclose(lab.geometry.origin_xyz, z["origin_xyz"])
    # Neighbouring chains are labelled too: CAs of B, C, D sit in A's box.
    assert len(z["ca_xyz"]) > 141
    c = z["centre"]
    counts = rec_pair["ca_counts_centre"]
    assert counts["n_ca_helix"] == int(np.sum(z["ca_in_centre"] & (z["ca_class"] == 1)))
    assert counts["n_ca_helix"] > 100 and counts["n_ca_sheet"] == 0
    assert c[1] <= z["labels"].shape[0] and c[0] >= 17

    dataset, rejected = aggregate(
        [tmp_path / "entries" / "EMD-9999.tsv"], tmp_path / "d.tsv", tmp_path / "r.tsv"
    )
    assert list(dataset.columns) == DATASET_COLUMNS and dataset["pair_id"].tolist() == [
        "9999_5ME2_A",
        "9999_5ME2_B",
    ]
    assert rejected["id"].tolist() == ["9999_5ME2_C", "9999_5ME2_D"]
    again = pd.read_csv(tmp_path / "d.tsv", sep="\t")
    assert again["bin"].tolist() == dataset["bin"].tolist()


def test_rejected_upstream_and_bad_record(tmp_path):
    rec = write_record(tmp_path, None, None, None, status="rejected", reason="no fitted model")
    t = build_entry(rec, tmp_path / "e.tsv", tmp_path / "pairs", DatasetParams())
    assert t["status"].tolist() == ["rejected"] and t["stage"].tolist() == ["acquire"]
    assert t["reason"].tolist() == ["no fitted model"]
    rec = write_record(tmp_path, tmp_path / "missing.mrc", need(HB), 1.0)
    t = build_entry(rec, tmp_path / "e2.tsv", tmp_path / "pairs", DatasetParams())
    assert t["stage"].tolist() == ["dataset"] and "no such file" in t["reason"][0]
    _, rej = aggregate([tmp_path / "e.tsv", tmp_path / "e2.tsv"], tmp_path / "d.tsv", tmp_path / "r.tsv")
    assert rej["stage"].tolist() == ["acquire", "dataset"] and rej["id"].tolist() == ["EMD-9999", "EMD-9999"]


def _entry(tmp_path, map_path, model_path, contour, **kw):
    rec = write_record(tmp_path, map_path, model_path, contour, **kw)
    params = dataclasses.replace(DatasetParams(), keep_bins=(1, 2, 3, 4))
    return build_entry(rec, tmp_path / "e.tsv", tmp_path / "pairs", params)


def test_bad_inputs_model_outside_nan_and_no_contour(tmp_path, hb_map):
    map_path, contour = hb_map
    dmap = read_map(map_path)
    # Model outside the map: shift every atom 500 A.
    st_text = HB.read_text().splitlines()
    shifted = []
    for line in st_text:
        if line.startswith(("ATOM", "HETATM")):
            x = float(line[30:38]) + 500.0
            line = f"{line[:30]}{x:8.3f}{line[38:]}"
        shifted.append(line)
    far = tmp_path / "far.pdb"
    far.write_text("\n".join(shifted) + "\n")
    t = _entry(tmp_path, map_path, far, contour)
    assert set(t["status"]) == {"rejected"}
    assert t[t.chain == "A"]["reason"].item().startswith("model lies outside the map (0%")
    # NaN density where chain B sits: B is rejected, A (NaN-free box?) is judged on its own.
    data = np.array(dmap.data)
    b_ca = read_model(HB).ca[read_model(HB).chain_index("B")]
    f = np.rint(dmap.geometry.xyz_to_index(b_ca[:1])).astype(int)[0]
    data[f[2], f[1], f[0]] = np.nan
    nan_map = tmp_path / "nan.mrc"
    write_map(nan_map, data, dmap.geometry)
    t = _entry(tmp_path, nan_map, HB, contour)
    assert "NaN" in t[t.chain == "B"]["reason"].item()
    # No contour: estimated from the full map (and a NaN anywhere makes that impossible).
    t = _entry(tmp_path, map_path, HB, None)
    assert set(t["contour_source"]) == {"estimated"}
    m, s = map_statistics(dmap)
    assert t["contour"].iloc[0] == pytest.approx(m + 3 * s)
    t = _entry(tmp_path, nan_map, HB, None)
    assert t["status"].tolist() == ["rejected"] and "NaN" in t["reason"][0]


def _write_pdb(path: Path, keep) -> Path:
    lines = [ln for ln in HB.read_text().splitlines() if not ln.startswith(("ATOM", "HETATM")) or keep(ln)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_models_ca_only_no_ca_nucleic(tmp_path, hb_map):
    map_path, contour = hb_map
    ca_only = _write_pdb(tmp_path / "ca.pdb", lambda ln: ln[12:16].strip() == "CA")
    t = _entry(tmp_path, map_path, ca_only, contour)
    assert t["status"].tolist() == ["rejected"] and "CA-only model" in t["reason"][0]
    # Chain B without CA atoms: it is no protein chain any more; asked for, it is rejected with the reason.
    no_ca = _write_pdb(tmp_path / "noca.pdb", lambda ln: not (ln[21] == "B" and ln[12:16].strip() == "CA"))
    t = _entry(tmp_path, map_path, no_ca, contour, chains=["A", "B"])
    by = dict(zip(t["chain"], t["status"], strict=True))
    assert by == {"A": "kept", "B": "rejected"}
    assert "no protein CA" in t[t.chain == "B"]["reason"].item()
    # Nucleic acids only.
    na = tmp_path / "na.pdb"
    rows = []
    for k in range(12):
        for name, el, dx in (("P", "P", 0.0), ("C4'", "C", 1.5), ("N1", "N", 3.0)):
            rows.append(
                f"ATOM  {len(rows) + 1:5d} {name:<4s}  DA X{k + 1:4d}    {20 + dx:8.3f}{20 + 6 * k:8.3f}{20.0:8.3f}  1.00  0.00           {el}"
            )
    na.write_text("\n".join(rows) + "\nEND\n")
    t = _entry(tmp_path, map_path, na, contour)
    assert t["status"].tolist() == ["rejected"] and "nucleic acids only" in t["reason"][0]


def test_non_cubic_voxels_and_axis_order(tmp_path):
    model = read_model(need(GINS))
    xyz = model.chain_atoms["A"]
    data, geom, contour = simulate(xyz, len(model.keys), voxel=(1.1, 1.3, 0.9))
    cubic = tmp_path / "cubic.mrc"
    write_map(cubic, data, geom)
    dmap = read_map(cubic)
    box = chain_box(xyz, dmap.geometry, 17.0, 1.0)
    raw = crop(dmap, box)
    ours = sample_points(DensityMap(raw, box.geometry), xyz)
    assert np.corrcoef(ours, sample_points(dmap, xyz))[0, 1] > 0.99
    # The same density stored with MAPC/MAPR/MAPS = 3, 1, 2 (columns z, rows x, sections y).
    perm = tmp_path / "perm.mrc"
    with mrcfile.new(perm) as mrc:
        mrc.set_data(np.ascontiguousarray(data.transpose(1, 2, 0)))  # [y, x, z]
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = 3, 1, 2
        nx, ny, nz = geom.shape_xyz
        mrc.header.mx, mrc.header.my, mrc.header.mz = nx, ny, nz
        vx, vy, vz = geom.voxel_size
        mrc.header.cella = (nx * vx, ny * vy, nz * vz)
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = geom.origin_xyz
    pmap = read_map(perm)
    assert np.array_equal(crop(pmap, box), raw)
    rec = write_record(tmp_path, perm, GINS, contour)
    t = build_entry(rec, tmp_path / "e.tsv", tmp_path / "pairs", DatasetParams())
    assert t["status"].tolist() == ["kept"], t["reason"].tolist()


def test_chain_near_the_edge_gets_zeros_not_wrapped(tmp_path):
    model = read_model(need(GINS))
    xyz = model.chain_atoms["A"]
    data, geom, _ = simulate(xyz, len(model.keys), voxel=(1.0, 1.0, 1.0), margin=30.0)
    big = DensityMap(data, geom, "big")
    # Cut the map 3 A beyond the chain's highest x: the box's last ~14 A in x lie outside.
    hi_x = int(np.ceil((xyz[:, 0].max() + 3.0 - geom.origin_xyz[0]) / 1.0))
    small = DensityMap(np.ascontiguousarray(data[:, :, : hi_x + 1]),
                       MapGeometry((data.shape[0], data.shape[1], hi_x + 1), geom.voxel_size, geom.origin_xyz), "small")  # fmt: skip
    box = chain_box(xyz, small.geometry, 17.0, 1.0)
    a, b = crop(small, box), crop(big, box)
    ix = np.rint(box.geometry.xyz_to_index(small.geometry.upper[None])[0]).astype(int)[0]
    assert np.allclose(a[:, :, : ix + 1], b[:, :, : ix + 1], atol=1e-5)
    assert np.all(a[:, :, ix + 2 :] == 0) and np.any(b[:, :, ix + 2 :] != 0)
    # The low-x faces are not polluted by wrapped density from the high-x side.
    assert np.allclose(a[:, :, :5], b[:, :, :5], atol=1e-5)
    # The voxels past the map are marked: exactly those beyond the map's last x plane.
    inside = box_inside(box.geometry, small.geometry)
    assert inside[:, :, : ix + 1].all() and not inside[:, :, ix + 1 :].any()
    assert box_inside(box.geometry, big.geometry).all()


def test_box_past_the_map_is_rejected_or_masked(tmp_path):
    from cryosse.evaluate import score_case
    from cryosse.patches import PatchSampler
    from cryosse.train import load_pair

    model = read_model(need(GINS))
    xyz = model.chain_atoms["A"]
    data, geom, contour = simulate(xyz, len(model.keys), voxel=(1.0, 1.0, 1.0), margin=30.0)
    hi_x = int(
        np.ceil((xyz[:, 0].max() - 3.0 - geom.origin_xyz[0]) / 1.0)
    )  # a map cut through the chain's edge
    small = MapGeometry((data.shape[0], data.shape[1], hi_x + 1), geom.voxel_size, geom.origin_xyz)
    write_map(tmp_path / "small.mrc", np.ascontiguousarray(data[:, :, : hi_x + 1]), small)
    dmap, mdl, classes = load_inputs(tmp_path / "small.mrc", need(GINS), "pydssp")
    ids = {"emdb_id": "EMD-9999", "pdb_id": "6eyc", "resolution": 6.0}
    base = dataclasses.replace(DatasetParams(), keep_bins=(1, 2, 3, 4), require_helix=False)
    with pytest.raises(PairRejected, match=r"of the box lies inside the map \(need 95%\)"):
        build_pair(dmap, mdl, classes, "A", tmp_path / "strict", dataclasses.replace(base, min_box_inside=0.95),
                   contour, "simulated", ids)  # fmt: skip
    row = build_pair(dmap, mdl, classes, "A", tmp_path / "masked", base, contour, "simulated", ids)
    assert 0.5 < row["box_inside"] < 0.95
    with np.load(tmp_path / "masked" / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    inside = arrays["inside"]
    assert inside.mean() == pytest.approx(row["box_inside"], abs=1e-4) and not inside[:, :, -1].any()
    # Beyond the map the voxels are unknown: no loss there, no score there.
    pair = load_pair("masked", tmp_path / "masked")
    _, _, mask = PatchSampler(patch=0).window(pair, np.random.default_rng(0))
    z0, z1, y0, y1, x0, x1 = pair.centre
    centre = np.zeros(inside.shape, bool)
    centre[z0:z1, y0:y1, x0:x1] = True
    assert (centre & ~inside).any() and mask.sum() == (centre & inside).sum()
    wrong_outside = np.where(inside, arrays["labels"], 1)  # "helix" on every voxel past the map
    assert score_case(wrong_outside, arrays)["f1_helix"] == pytest.approx(1.0)
    # Solvent instead (mask_outside false, for simulated maps that end in empty space): no mask.
    build_pair(dmap, mdl, classes, "A", tmp_path / "solvent", dataclasses.replace(base, mask_outside=False),
               contour, "simulated", ids)  # fmt: skip
    assert "inside" not in np.load(tmp_path / "solvent" / "arrays.npz").files


# ---------------------------------------------------------------- CLI and job size


def test_cli_build_pair(tmp_path, hb_map, capsys):
    from cryosse.cli import main

    map_path, contour = hb_map
    out = tmp_path / "pair"
    args = ["build-pair", "--map", str(map_path), "--model", str(HB), "--chain", "B", "--out-dir", str(out),
            "--contour", str(contour), "--resolution", "6", "--emdb-id", "EMD-3488"]  # fmt: skip
    assert main(args) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["pair_id"] == "3488_5ME2_B" and row["contour_source"] == "author" and row["bin"] in (1, 2, 3)
    rec = json.loads((out / "record.json").read_text())
    assert rec["resolution"] == 6.0 and rec["dssp_engine"] == "pydssp"
    assert main([*args[:6], "Q", *args[7:]]) == 1
    assert "chain Q" in capsys.readouterr().err
    # without --emdb-id the pair is named from the inputs, not "0_..."
    assert main([*args[:-2], "--out-dir", str(tmp_path / "p2")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["pair_id"] == "HB_5ME2_B"


def test_map_entry_id_from_file_names():
    from cryosse.dataset.cli import map_entry_id

    assert map_entry_id("/x/emd_3488.map.gz") == "EMD-3488"
    assert map_entry_id("EMD-21457_seg.mrc") == "EMD-21457"
    assert map_entry_id("A-1.0APIX.mrc") == "A-1.0APIX"


def test_map_bytes_reads_the_gzip_size(tmp_path):
    """The dataset job's memory (workflow/rules/common.smk) follows the map's decompressed size."""
    import gzip

    from cryosse.io import map_bytes

    raw = tmp_path / "m.map"
    raw.write_bytes(b"\0" * 3_000_000)
    gz = tmp_path / "m.map.gz"
    gz.write_bytes(gzip.compress(raw.read_bytes()))
    assert map_bytes(gz) == map_bytes(raw) == 3_000_000
    assert gz.stat().st_size < 100_000


@pytest.mark.skipif(shutil.which("mkdssp") is None, reason="mkdssp (Debian package dssp) not installed")
def test_build_entry_with_mkdssp(tmp_path, hb_map):
    map_path, contour = hb_map
    rec = write_record(tmp_path, map_path, HB, contour, chains=["A"])
    params = dataclasses.replace(DatasetParams(), dssp_engine="mkdssp")
    t = build_entry(rec, tmp_path / "e.tsv", tmp_path / "pairs", params)
    assert t["status"].tolist() == ["kept"] and t["dssp_engine"].tolist() == ["mkdssp"]
    z = np.load(tmp_path / "pairs" / "9999_5ME2_A" / "arrays.npz")
    assert int(np.sum(z["ca_class"] == 1)) > 300  # all-helix haemoglobin, four chains in the box


@pytest.mark.skipif(shutil.which("mkdssp") is None, reason="mkdssp (Debian package dssp) not installed")
@pytest.mark.parametrize("version", ["4.4.11", "4.2.2"])
def test_mkdssp_old_and_new_command_lines(tmp_path, monkeypatch, version):
    """DSSP >= 4.3 removed --write-experimental (its mmCIF output has the DSSP categories by
    default). A stand-in with 4.4's command line wraps the real (4.2) mkdssp: it refuses the
    old flag as 4.4 does, and otherwise answers as 4.4 would. Both give the real classes."""
    import os
    import stat
    import sys

    real = shutil.which("mkdssp")
    fake = tmp_path / "bin" / "mkdssp"
    fake.parent.mkdir()
    fake.write_text(f"""#!{sys.executable}
import subprocess, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("mkdssp version {version}"); sys.exit(0)
new = tuple(int(x) for x in "{version}".split(".")) >= (4, 3)
if new and "--write-experimental" in args:
    print("unrecognised option '--write-experimental'", file=sys.stderr); sys.exit(1)
if new and "mmcif" in args:
    args = ["--write-experimental", *args]  # 4.3+ writes the DSSP categories by default
sys.exit(subprocess.run(["{real}", *args]).returncode)
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    dssp.mkdssp_version.cache_clear()
    model = read_model(DEMO_2XDG)
    got = dssp.assign(model, "mkdssp")
    calls = dssp.mkdssp_mmcif_args(str(fake))
    assert ("--write-experimental" in calls) == (version == "4.2.2")
    ref = dssp.assign(model, "pydssp")
    same = np.mean([got[k] == ref[k] for k in model.keys])
    assert same > 0.9 and any(v == dssp.HELIX for v in got.values())
    dssp.mkdssp_version.cache_clear()
