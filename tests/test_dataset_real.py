"""Dataset stage on real maps and models (../shared/data/real, read in place).

* the authors' chain boxes of DeepSSETracer's test set (5MDX L and X, 5U8S A):
  the centre box holds the chain, our crop keeps the map's density, and our
  helix voxels agree with the authors' own labels (theirs came from STRIDE);
* pydssp against mkdssp per residue;
* EMD-21457 in three header conventions gives identical crops.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import have
from cryosse.dataset import dssp
from cryosse.dataset.crop import chain_box, crop
from cryosse.dataset.entry import load_inputs
from cryosse.dataset.pairs import DatasetParams, build_pair
from cryosse.dataset.structure import read_model
from cryosse.geometry import read_map, sample_points

BOXES = [("emd3491_5mdx_L", "L"), ("emd3491_5mdx_X", "X"), ("emd8518_5u8s_A", "A")]
# Helix F1 of our voxel labels against the authors' files, measured: L 1.00, X 1.00, A 0.96.
HELIX_F1_MIN = 0.9


@pytest.mark.parametrize(("folder", "chain"), BOXES)
def test_real_chain_box(real, tmp_path, folder, chain):
    d = real / folder
    dmap, model, classes = load_inputs(d / f"{chain}-1.0APIX.mrc", d / f"{chain}_fitted.pdb", "pydssp")
    # the authors' tight boxes: keep any bin, and boxes mostly past the map (27-49% inside)
    params = dataclasses.replace(DatasetParams(), keep_bins=(1, 2, 3, 4), min_box_inside=0.0)
    out = tmp_path / "pair"
    row = build_pair(
        dmap, model, classes, chain, out, params, 0.0, "given", {"emdb_id": "EMD-1", "pdb_id": "x"}
    )
    z = np.load(out / "arrays.npz")
    ours = read_map(out / "map.mrc")
    # Every CA of the central chain lies in the centre box.
    ca = model.ca[model.chain_index(chain)]
    idx = np.rint(ours.geometry.xyz_to_index(ca)).astype(int)
    z0, z1, y0, y1, x0, x1 = z["centre"]
    assert np.all((idx[:, 0] >= x0) & (idx[:, 0] < x1) & (idx[:, 1] >= y0) & (idx[:, 1] < y1)
                  & (idx[:, 2] >= z0) & (idx[:, 2] < z1))  # fmt: skip
    assert (
        int(z["ca_in_centre"].sum()) == row["n_ca_helix"] + row["n_ca_sheet"] + row["n_ca_other"] == len(ca)
    )
    # Our (normalised) crop at the atoms correlates with the original map there.
    atoms = model.chain_atoms[chain]
    r = float(np.corrcoef(sample_points(ours, atoms), sample_points(dmap, atoms))[0, 1])
    assert r >= 0.99
    # Voxel labels against the authors' (listed voxels: map value > 0).
    lab = np.loadtxt(d / f"{chain}_label_stride.txt", delimiter=",")
    ijk = lab[:, :3].astype(int)
    theirs = lab[:, 4].astype(int)
    v = np.rint(ours.geometry.xyz_to_index(dmap.geometry.index_to_xyz(ijk))).astype(int)
    mine = z["labels"][v[:, 2], v[:, 1], v[:, 0]]
    f1 = {}
    for k, name in ((1, "helix"), (2, "sheet")):
        den = int(np.sum(mine == k) + np.sum(theirs == k))
        f1[name] = 2 * int(np.sum((mine == k) & (theirs == k))) / den if den else float("nan")
    print(f"\n{folder}: box {100 * row['box_inside']:.0f}% inside the map; corr {r:.4f};"
          f" vs authors' STRIDE labels: helix F1 {f1['helix']:.3f}, sheet F1 {f1['sheet']:.3f} ({int(np.sum(theirs == 2))} sheet voxels theirs)")  # fmt: skip
    assert f1["helix"] >= HELIX_F1_MIN
    if np.any(theirs == 2):
        assert f1["sheet"] >= 0.6  # measured 0.75 on 5U8S A (STRIDE vs DSSP strand ends)


# pydssp vs mkdssp, 3-class per-residue agreement measured here: 5ME2 0.947, 5U8S-A 0.966,
# 6VYB-NTD 0.990, 5MDX L / X 1.00 (toolchain notes: 0.971 over 5,273 residues). The
# cryo-EM haemoglobin is the worst (helix caps); 0.93 leaves room for one structure at
# that level and still fails if an engine's output were misread (keys off by one: < 0.6).
DSSP_MIN = 0.93


@pytest.mark.skipif(not have("mkdssp"), reason="mkdssp (Debian package dssp) not installed")
def test_pydssp_against_mkdssp(real):
    paths = [
        real / "emd3488_5me2" / "5me2.pdb",
        real / "emd8518_5u8s_A" / "A_fitted.pdb",
        real / "emd21457_6vyb_ntd" / "6vyb_Ndom.pdb",
        real / "emd3491_5mdx_L" / "L_fitted.pdb",
        real / "emd3491_5mdx_X" / "X_fitted.pdb",
    ]
    total = same = 0
    for p in paths:
        m = read_model(p)
        a, b = dssp.assign(m, "pydssp"), dssp.assign(m, "mkdssp")
        res = dssp.agreement(a, b)
        print(f"\n{p.name}: {res['n']} residues, agreement {res['agreement']:.3f},"
              f" helix F1 {res['helix_f1']:.3f}, sheet F1 {res['sheet_f1']:.3f}")  # fmt: skip
        assert res["n"] == len(m.keys)
        assert res["agreement"] >= DSSP_MIN
        total += res["n"]
        same += round(res["agreement"] * res["n"])
    print(f"overall {same}/{total} = {same / total:.3f}")
    assert same / total >= 0.95


def test_emd21457_header_conventions_give_identical_crops(real):
    d = real / "emd21457_6vyb_ntd"
    crops = []
    for map_name, model_name in (("emd_21457_seg.mrc", "6vyb_Ndom.pdb"),
                                 ("emd_21457_seg_nstart.mrc", "6vyb_Ndom.pdb"),
                                 ("emd_21457_seg_orig0.mrc", "6vyb_Ndom_shifted.pdb")):  # fmt: skip
        dmap = read_map(d / map_name)
        model = read_model(d / model_name)
        atoms = model.chain_atoms["A"]
        assert dmap.geometry.contains(model.ca).mean() > 0.9, map_name
        box = chain_box(atoms, dmap.geometry, 17.0, 1.0)
        crops.append((crop(dmap, box), box))
    for arr, box in crops[1:]:
        assert arr.shape == crops[0][0].shape and box.centre == crops[0][1].centre
        # Equal up to the float32 rounding of the header's origin (1e-5 A): |diff| ~ 3e-6.
        assert np.allclose(arr, crops[0][0], rtol=0, atol=1e-5 * float(np.abs(crops[0][0]).max()))
    assert np.allclose(crops[0][1].geometry.origin_xyz, crops[1][1].geometry.origin_xyz, atol=1e-4)


def test_full_map_box_labels_neighbours(real, tmp_path):
    d = real / "emd3488_5me2"
    dmap, model, classes = load_inputs(d / "emd_3488.mrc", d / "5me2.pdb", "pydssp")
    params = dataclasses.replace(DatasetParams(), keep_bins=(1, 2, 3, 4))
    build_pair(
        dmap,
        model,
        classes,
        "A",
        tmp_path / "p",
        params,
        0.1,
        "given",
        {"emdb_id": "EMD-3488", "pdb_id": "5ME2"},
    )
    z = np.load(tmp_path / "p" / "arrays.npz")
    n_a = len(model.chain_index("A"))
    assert len(z["ca_xyz"]) > n_a  # CAs of the neighbouring chains lie in the box and label it
    assert int(np.sum(z["labels"] == 1)) > 0
