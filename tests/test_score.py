"""`cryosse score` (issue 18): another tool's prediction scored exactly as the evaluation scores ours,
on any grid and origin convention; label-map truths; the workflow's external rows; and
DeepSSETracer's own 2021 predictions of three real boxes against its authors' labels."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest

from conftest import BOX, PAD, make_pair, make_project
from cryosse import evaluate as ev
from cryosse import score as sc
from cryosse.cli import main
from cryosse.geometry import MapGeometry, read_map, write_map
from cryosse.score import cli as scli

ORIGIN = (10.0, -5.0, 3.0)  # make_pair's box origin


def pair(tmp: Path, seed: int = 0, inside: np.ndarray | None = None) -> tuple[Path, dict]:
    folder = tmp / f"pair{seed}"
    make_pair(folder, seed, ORIGIN)
    arrays = dict(np.load(folder / "arrays.npz"))
    if inside is not None:
        arrays["inside"] = inside
        np.savez(folder / "arrays.npz", **arrays)
    return folder, arrays


def box_geom() -> MapGeometry:
    return MapGeometry((BOX,) * 3, (1.0, 1.0, 1.0), ORIGIN)


def a_prediction(seed: int = 1) -> np.ndarray:
    """A label array on the pair's grid: the truth, blurred by random changes."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((BOX,) * 3, np.uint8)
    labels[6:12, 6:12, 6:18] = 1
    labels[14:17, 8:16, 8:16] = 2
    flip = rng.random(labels.shape) < 0.08
    labels[flip] = rng.integers(0, 3, int(flip.sum()))
    return labels


def write_masks(
    tmp: Path, pred: np.ndarray, geom: MapGeometry | None = None, stem: str = "p", **kw
) -> tuple[Path, Path]:
    geom = geom or box_geom()
    h, s = tmp / f"{stem}_helix.mrc", tmp / f"{stem}_sheet.mrc"
    write_map(h, (pred == 1).astype(np.float32), geom, **kw)
    write_map(s, (pred == 2).astype(np.float32), geom, **kw)
    return h, s


# --------------------------------------------------------------------------- same figures as evaluation


def test_same_grid_equals_score_case(tmp_path):
    folder, arrays = pair(tmp_path)
    pred = a_prediction()
    h, s = write_masks(tmp_path, pred)
    res = scli.score_files(helix=h, sheet=s, pair=folder)
    want = ev.score_case(pred, arrays)
    assert res["scores"] == pytest.approx(want, nan_ok=True)
    assert res["region"] == "centre box" and res["coverage"] == 1.0 and res["pair_id"] == "pair0"
    assert res["scored_voxels"] == (BOX - 2 * PAD) ** 3
    assert [f["kind"] for f in res["prediction"]["files"]] == ["mask", "mask"]
    # The whole box: every voxel and every CA of the box.
    whole = scli.score_files(helix=h, sheet=s, pair=folder, whole_box=True)
    assert whole["scored_voxels"] == BOX**3
    t = arrays["labels"]
    assert whole["scores"]["vox_tp_helix"] == int(((pred == 1) & (t == 1)).sum())
    assert whole["scores"]["n_res_other"] > res["scores"]["n_res_other"]  # the CAs in the padding count too


def test_inside_mask_is_honoured_as_evaluation_does(tmp_path):
    inside = np.ones((BOX,) * 3, bool)
    inside[:, :, 14:] = False  # the box's voxels beyond its map
    folder, arrays = pair(tmp_path, inside=inside)
    pred = a_prediction()
    h, s = write_masks(tmp_path, pred)
    res = scli.score_files(helix=h, sheet=s, pair=folder)
    assert res["scores"] == pytest.approx(ev.score_case(pred, arrays), nan_ok=True)
    assert res["scored_voxels"] == int(inside[PAD:-PAD, PAD:-PAD, PAD:-PAD].sum())
    assert res["region_within_map"] == pytest.approx(10 / 16)
    no_mask = ev.score_case(pred, {k: v for k, v in arrays.items() if k != "inside"})
    assert res["scores"]["vox_true_helix"] < no_mask["vox_true_helix"]


def permuted_axes_file(path: Path, data: np.ndarray, geom: MapGeometry) -> None:
    """A map stored with sections along x and columns along z (MAPC 3, MAPR 2, MAPS 1)."""
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.ascontiguousarray(data.transpose(2, 1, 0)).astype(np.float32))
        m.voxel_size = geom.voxel_size
        m.header.mapc, m.header.mapr, m.header.maps = 3, 2, 1
        m.header.origin.x, m.header.origin.y, m.header.origin.z = geom.origin_xyz


def test_other_grids_and_origin_conventions_score_the_same(tmp_path):
    folder, arrays = pair(tmp_path)
    pred = a_prediction()
    want = ev.score_case(pred, arrays)
    # A 0.5 A grid whose every second voxel is a pair voxel, its origin in NSTART: nearest neighbour is exact.
    fine = np.repeat(np.repeat(np.repeat(pred, 2, 0), 2, 1), 2, 2)[
        : 2 * BOX - 1, : 2 * BOX - 1, : 2 * BOX - 1
    ]
    geom = MapGeometry((2 * BOX - 1,) * 3, (0.5, 0.5, 0.5), ORIGIN)
    h, s = write_masks(tmp_path, fine, geom, stem="fine", origin_in="nstart")
    assert read_map(h).header["origin_source"] == "NSTART"
    res = scli.score_files(helix=h, sheet=s, pair=folder)
    assert res["scores"] == pytest.approx(want, nan_ok=True)
    assert res["prediction"]["files"][0]["voxel_size_xyz"] == [0.5, 0.5, 0.5]
    # Axes stored in another order (MAPC/MAPR/MAPS).
    ph, ps = tmp_path / "perm_helix.mrc", tmp_path / "perm_sheet.mrc"
    permuted_axes_file(ph, (pred == 1).astype(np.float32), box_geom())
    permuted_axes_file(ps, (pred == 2).astype(np.float32), box_geom())
    assert scli.score_files(helix=ph, sheet=ps, pair=folder)["scores"] == pytest.approx(want, nan_ok=True)
    # Shifted by one voxel: the figures change (the origin is really read).
    shifted = MapGeometry((BOX,) * 3, (1.0, 1.0, 1.0), (ORIGIN[0] + 1, ORIGIN[1], ORIGIN[2]))
    h2, s2 = write_masks(tmp_path, pred, shifted, stem="shift")
    assert scli.score_files(helix=h2, sheet=s2, pair=folder)["scores"]["f1_helix"] < want["f1_helix"]


def test_probability_maps_threshold_and_overlap_rules(tmp_path):
    folder, arrays = pair(tmp_path)
    geom = box_geom()
    ph = np.full((BOX,) * 3, 0.1, np.float32)
    ps = np.full((BOX,) * 3, 0.1, np.float32)
    ph[6:12, 6:12, 6:18] = 0.9  # the true helix
    ps[14:17, 8:16, 8:16] = 0.6  # the true sheet...
    ps[6:8, 6:12, 6:18] = 0.95  # ...and a sheet claim inside the helix, stronger there
    write_map(tmp_path / "h.mrc", ph, geom)
    write_map(tmp_path / "s.mrc", ps, geom)
    res = scli.score_files(helix=tmp_path / "h.mrc", sheet=tmp_path / "s.mrc", pair=folder)
    files = res["prediction"]["files"]
    assert [f["kind"] for f in files] == ["probability", "probability"]
    assert res["prediction"]["overlap_voxels"] == 2 * 6 * 12
    assert res["prediction"]["overlap_rule"].startswith("higher probability wins")
    s = res["scores"]
    assert s["vox_fn_helix"] == 2 * 6 * 12 and s["vox_fp_sheet"] == 2 * 6 * 12  # sheet won where stronger
    assert s["vox_tp_sheet"] == s["vox_true_sheet"]
    # At a threshold of 0.7 the sheet (0.6) is gone but the strong claim stays.
    hi = scli.score_files(helix=tmp_path / "h.mrc", sheet=tmp_path / "s.mrc", pair=folder, threshold=0.7)
    assert hi["scores"]["vox_tp_sheet"] == 0 and hi["scores"]["vox_fp_sheet"] == 2 * 6 * 12
    # A binary mask involved: helix wins every overlap.
    write_map(tmp_path / "hm.mrc", (ph > 0.5).astype(np.float32), geom)
    m = scli.score_files(helix=tmp_path / "hm.mrc", sheet=tmp_path / "s.mrc", pair=folder)
    assert m["prediction"]["overlap_rule"].startswith("helix wins")
    assert m["scores"]["vox_fn_helix"] == 0 and m["scores"]["vox_fp_sheet"] == 0


def test_single_label_map_with_its_own_values(tmp_path):
    folder, arrays = pair(tmp_path)
    pred = a_prediction()
    coded = np.select([pred == 1, pred == 2], [7, 3], 0).astype(np.float32)  # e.g. 7 = helix, 3 = sheet
    coded[0, 0, 0] = 5  # another class of the tool: background here
    write_map(tmp_path / "lab.mrc", coded, box_geom(), dtype=np.int8)
    res = scli.score_files(labels=tmp_path / "lab.mrc", pair=folder, helix_value=7, sheet_value=3)
    assert res["scores"] == pytest.approx(ev.score_case(pred, arrays), nan_ok=True)
    wrong = scli.score_files(labels=tmp_path / "lab.mrc", pair=folder)  # default values 1, 2
    assert wrong["scores"]["vox_tp_helix"] == 0
    with pytest.raises(ValueError, match="must differ"):
        scli.score_files(labels=tmp_path / "lab.mrc", pair=folder, helix_value=2, sheet_value=2)
    write_map(tmp_path / "frac.mrc", coded + 0.25, box_geom())
    with pytest.raises(ValueError, match=r"frac\.mrc.*not a label map"):
        scli.score_files(labels=tmp_path / "frac.mrc", pair=folder)


def test_a_crop_covering_part_of_the_box(tmp_path):
    folder, arrays = pair(tmp_path)
    pred = arrays["labels"].copy()  # perfect where it exists
    # The tool wrote only the x < 12 half of the box (a crop with its own origin).
    crop = pred[:, :, :12]
    geom = MapGeometry(crop.shape, (1.0, 1.0, 1.0), ORIGIN)
    h, s = write_masks(tmp_path, crop, geom, stem="crop")
    res = scli.score_files(helix=h, sheet=s, pair=folder)
    assert res["coverage"] == pytest.approx((12 - PAD) / (BOX - 2 * PAD))
    full = pred.copy()
    full[:, :, 12:] = 0  # beyond the crop: background
    assert res["scores"] == pytest.approx(ev.score_case(full, arrays), nan_ok=True)
    assert 0 < res["scores"]["f1_helix"] < 1 and res["scores"]["vox_fp_helix"] == 0


# --------------------------------------------------------------------------- bad input


@pytest.mark.filterwarnings("ignore:Data array contains NaN")
def test_bad_predictions_are_refused_naming_the_file(tmp_path, capsys):
    folder, _ = pair(tmp_path)
    good_h, good_s = write_masks(tmp_path, a_prediction())
    nan = np.zeros((BOX,) * 3, np.float32)
    nan[3, 4, 5] = np.nan
    write_map(tmp_path / "nan_helix.mrc", nan, box_geom())
    with pytest.raises(
        ValueError,
        match=r"nan_helix\.mrc: the helix map has NaN or infinite values \(the first at voxel x, y, z = 5, 4, 3\)",
    ):
        scli.score_files(helix=tmp_path / "nan_helix.mrc", sheet=good_s, pair=folder)
    far = MapGeometry((BOX,) * 3, (1.0, 1.0, 1.0), (500.0, 500.0, 500.0))
    write_map(tmp_path / "far_sheet.mrc", np.ones((BOX,) * 3, np.float32), far)
    with pytest.raises(ValueError, match=r"far_sheet\.mrc: the prediction does not overlap the centre box"):
        scli.score_files(helix=good_h, sheet=tmp_path / "far_sheet.mrc", pair=folder)
    # Voxels of 0.001 A (a header in nm read as A, say) around one voxel centre of the centre box.
    tiny = MapGeometry((BOX,) * 3, (0.001, 0.001, 0.001), tuple(o + 10 - 0.0105 for o in ORIGIN))
    write_map(tmp_path / "tiny_helix.mrc", np.ones((BOX,) * 3, np.float32), tiny)
    with pytest.raises(ValueError, match=r"tiny_helix\.mrc: voxels of .* too fine to resample"):
        scli.score_files(helix=tmp_path / "tiny_helix.mrc", sheet=good_s, pair=folder)
    (tmp_path / "junk.mrc").write_bytes(b"not a map" * 200)
    # On the command line: exit 1, one line on stderr naming the file, no JSON written.
    out = tmp_path / "out.json"
    for bad, cause in (
        ("nan_helix.mrc", "NaN"),
        ("far_sheet.mrc", "does not overlap"),
        ("junk.mrc", "not an MRC"),
    ):
        code = main(
            [
                "score",
                "--helix",
                str(tmp_path / bad),
                "--sheet",
                str(good_s),
                "--pair",
                str(folder),
                "--json",
                str(out),
            ]
        )
        err = capsys.readouterr().err
        assert code == 1 and bad in err and cause in err and "Traceback" not in err, err
        assert not out.exists()
    code = main(
        ["score", "--helix", str(good_h), "--sheet", str(good_s), "--pair", str(folder), "--map", str(good_s)]
    )
    assert code == 1 and "--map" in capsys.readouterr().err


def test_cli_writes_json_with_every_figure(tmp_path, capsys):
    folder, arrays = pair(tmp_path)
    pred = a_prediction()
    h, s = write_masks(tmp_path, pred)
    out = tmp_path / "res.json"
    assert (
        main(["score", "--helix", str(h), "--sheet", str(s), "--pair", str(folder), "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    want = ev.score_case(pred, arrays)
    # printed in percent, as the tables print F1; the JSON keeps the fraction
    line = next(ln for ln in text.splitlines() if ln.startswith("helix"))
    assert line.split()[1] == f"{100 * want['f1_helix']:.1f}" and "voxel F1 (%)" in text
    assert "centre box" in text and "covers 100.0%" in text
    res = json.loads(out.read_text())  # strict JSON: NaN written as null
    assert res["scores"]["f1_helix"] == pytest.approx(want["f1_helix"])
    assert {"coverage", "truth", "prediction", "region", "scored_voxels", "residue_radius"} <= set(res)
    assert res["truth"]["kind"] == "cryosse" and res["scores"]["res_true_helix"] == want["res_true_helix"]


# --------------------------------------------------------------------------- other truths


def test_label_map_truth_on_its_own_grid_and_on_a_pair(tmp_path):
    folder, arrays = pair(tmp_path)
    pred = a_prediction()
    h, s = write_masks(tmp_path, pred)
    truth = arrays["labels"].copy()
    truth[6:12, 6:12, 6:18] = 0  # this reference has no helix where ours has one...
    truth[0:3, 0:3, 0:3] = 1  # ...and a helix in a corner (the padding)
    write_map(tmp_path / "truth.mrc", truth.astype(np.float32), box_geom(), dtype=np.int8)
    whole = scli.score_files(helix=h, sheet=s, truth=tmp_path / "truth.mrc")
    assert whole["region"] == "whole box" and whole["truth"]["kind"] == "label map"
    assert whole["scores"] == pytest.approx(ev.voxel_scores(pred, truth), nan_ok=True)  # no residue figures
    assert "res_f1_helix" not in whole["scores"]
    on_pair = scli.score_files(helix=h, sheet=s, truth=tmp_path / "truth.mrc", pair=folder)
    c = (slice(PAD, BOX - PAD),) * 3
    assert on_pair["scores"] == pytest.approx(ev.voxel_scores(pred[c], truth[c]), nan_ok=True)
    # A truth map that covers half the box: the other half is not scored.
    half = MapGeometry((BOX, BOX, 12), (1.0, 1.0, 1.0), ORIGIN)
    write_map(tmp_path / "half.mrc", truth[:, :, :12].astype(np.float32), half, dtype=np.int8)
    part = scli.score_files(helix=h, sheet=s, truth=tmp_path / "half.mrc", pair=folder)
    assert part["scored_voxels"] == 16 * 16 * (12 - PAD)
    assert part["truth"]["coverage"] == pytest.approx(0.5)
    write_map(tmp_path / "bad_truth.mrc", truth.astype(np.float32) * 3, box_geom())
    with pytest.raises(ValueError, match=r"bad_truth\.mrc.*holds 6"):
        scli.score_files(helix=h, sheet=s, truth=tmp_path / "bad_truth.mrc")


def test_voxel_label_text_truth(tmp_path):
    """The authors' format on a small map: unlisted voxels are background by default, or left out."""
    rng = np.random.default_rng(3)
    dens = np.clip(rng.normal(0, 1, (6, 7, 8)), 0, None).astype(np.float32)  # [z, y, x]; about half > 0
    geom = MapGeometry(dens.shape, (1.0, 1.0, 1.0), (100.0, 50.0, 20.0))
    write_map(tmp_path / "box.mrc", dens, geom)
    labels = rng.integers(0, 3, dens.shape).astype(np.uint8)
    labels[dens <= 0] = 0
    k, j, i = np.nonzero(dens > 0)
    lines = [
        f"{a},{b},{c},{dens[c, b, a] / dens.max():.6f},{labels[c, b, a]}"
        for a, b, c in zip(i, j, k, strict=True)
    ]
    (tmp_path / "lab.txt").write_text("\n".join(lines) + "\n")
    pred = rng.integers(0, 3, dens.shape).astype(np.uint8)
    h, s = write_masks(tmp_path, pred, geom)
    res = scli.score_files(helix=h, sheet=s, truth=tmp_path / "lab.txt", map_path=tmp_path / "box.mrc")
    assert res["scores"] == pytest.approx(ev.voxel_scores(pred, labels), nan_ok=True)
    assert res["scored_voxels"] == dens.size and res["truth"]["listed_voxels"] == len(lines)
    only = scli.score_files(
        helix=h, sheet=s, truth=tmp_path / "lab.txt", map_path=tmp_path / "box.mrc", listed_only=True
    )
    assert only["scores"] == pytest.approx(ev.voxel_scores(pred[dens > 0], labels[dens > 0]), nan_ok=True)
    assert only["scored_voxels"] == len(lines)
    # Refused: no --map; a voxel beyond the grid; a file of another map (its densities do not follow).
    with pytest.raises(ValueError, match="give that map with --map"):
        scli.score_files(helix=h, sheet=s, truth=tmp_path / "lab.txt")
    (tmp_path / "beyond.txt").write_text("\n".join(lines + ["8,0,0,0.5,1"]) + "\n")
    with pytest.raises(
        ValueError, match=rf"beyond\.txt: line {len(lines) + 1}: voxel \(8, 0, 0\) lies beyond"
    ):
        scli.score_files(helix=h, sheet=s, truth=tmp_path / "beyond.txt", map_path=tmp_path / "box.mrc")
    other = [f"{a},{b},{c},{rng.random():.6f},0" for a, b, c in zip(i, j, k, strict=True)]
    (tmp_path / "other.txt").write_text("\n".join(other) + "\n")
    with pytest.raises(ValueError, match=r"other\.txt: its density column does not follow"):
        scli.score_files(helix=h, sheet=s, truth=tmp_path / "other.txt", map_path=tmp_path / "box.mrc")


# --------------------------------------------------------------------------- the workflow's external rows


def test_find_prediction_layouts(tmp_path):
    (tmp_path / "a_B_C_helix.mrc").write_bytes(b"")
    (tmp_path / "a_B_C_sheet.map.gz").write_bytes(b"")
    (tmp_path / "x_Y_z.mrc").write_bytes(b"")
    (tmp_path / "h_H_H_helix.mrc").write_bytes(b"")
    assert sc.find_prediction(tmp_path, "a_B_C") == {
        "helix": tmp_path / "a_B_C_helix.mrc",
        "sheet": tmp_path / "a_B_C_sheet.map.gz",
    }
    assert sc.find_prediction(tmp_path, "x_Y_z") == {"labels": tmp_path / "x_Y_z.mrc"}
    with pytest.raises(FileNotFoundError, match="no h_H_H_sheet.mrc"):
        sc.find_prediction(tmp_path, "h_H_H")
    with pytest.raises(FileNotFoundError, match="no q_Q_Q_helix.mrc"):
        sc.find_prediction(tmp_path, "q_Q_Q")
    with pytest.raises(FileNotFoundError):
        sc.find_prediction(tmp_path, "x_Y_Z")  # chain ids are case-sensitive
    (tmp_path / "x_Y_z.map").write_bytes(b"")
    with pytest.raises(ValueError, match="2 files for x_Y_z"):
        sc.find_prediction(tmp_path, "x_Y_z")


def threshold_tool(pair_dir: Path, out: Path, pid: str) -> None:
    """A deliberately simple external predictor: density above 1 sd is helix, as a probability
    map on a 0.8 A grid with its origin in NSTART (not the pair's 1 A grid and ORIGIN)."""
    with np.load(pair_dir / "arrays.npz") as z:
        dens, origin = z["density"], z["origin_xyz"]
    geom = MapGeometry(dens.shape, (1.0, 1.0, 1.0), tuple(origin))  # type: ignore[arg-type]
    from cryosse.geometry import DensityMap, resample

    start = np.floor(np.asarray(origin) / 0.8) * 0.8  # on the tool's own 0.8 A lattice, a crop short in x
    fine = MapGeometry((28, 28, 24), (0.8, 0.8, 0.8), tuple(start))  # type: ignore[arg-type]
    prob = 1 / (1 + np.exp(-4 * (resample(DensityMap(dens, geom), fine) - 1.0)))
    write_map(out / f"{pid}_helix.mrc", prob.astype(np.float32), fine, origin_in="nstart")
    write_map(out / f"{pid}_sheet.mrc", np.zeros(fine.shape_zyx, np.float32), fine, origin_in="nstart")


def test_score_external_split_records_a_missing_case(tmp_path):
    pids = ["1657_4V5H_AE", "6452_3JBO_Ae", "8130_5J4Z_B"]
    proj = make_project(tmp_path, pids, losses=("CE",))
    tool = tmp_path / "tool"
    tool.mkdir()
    for pid in pids[:2]:
        threshold_tool(tmp_path / "results/dataset/pairs" / pid, tool, pid)
    out = tmp_path / "ext" / "per_case.tsv"
    df = sc.score_external_split(tool, proj["split"], proj["dataset"], out, "Thresh")
    back = pd.read_csv(out, sep="\t", keep_default_na=False, na_values=["NA"]).set_index("pair_id")
    assert (
        back.at["8130_5J4Z_B", "status"] == "missing"
        and "no 8130_5J4Z_B_helix.mrc" in back.at["8130_5J4Z_B", "reason"]
    )
    ok = back[back["status"] == "ok"]
    assert len(ok) == 2 and (ok["loss"] == "Thresh").all() and ok["coverage"].between(0.5, 0.99).all()
    # The evaluation's columns, in its order, so the tables read a tool like a loss.
    d = tmp_path / "results/eval/0/CE"
    ours = ev.evaluate_split(
        proj["models"]["CE"], proj["split"], proj["dataset"], d / "per_case.tsv", d / "pred", device="cpu"
    )
    assert [c for c in df.columns if c in ours.columns] == list(ours.columns)
    # A case scored here equals `cryosse score` on its files.
    one = scli.score_files(
        helix=tool / f"{pids[0]}_helix.mrc",
        sheet=tool / f"{pids[0]}_sheet.mrc",
        pair=tmp_path / "results/dataset/pairs" / pids[0],
    )
    assert ok.at[pids[0], "f1_helix"] == pytest.approx(one["scores"]["f1_helix"])
    # No prediction at all: a wrong folder or layout stops the rule.
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="none of the 3 test cases"):
        sc.score_external_split(empty, proj["split"], proj["dataset"], tmp_path / "e.tsv", "None")
    assert not (tmp_path / "e.tsv").exists()


# --------------------------------------------------------------------------- real output of another tool

#: DeepSSETracer's 2021 predictions against its authors' labels, whole box (the README of the real data)
DST2021 = [
    ("emd8518_5u8s_A", "A", {"helix": 0.734, "sheet": 0.473}),
    ("emd3491_5mdx_L", "L", {"helix": 0.845}),
    ("emd3491_5mdx_X", "X", {"helix": 0.792}),
]


@pytest.mark.parametrize("folder,chain,published", DST2021, ids=[d[0] for d in DST2021])
def test_deepssetracer2021_reproduces_its_published_figures(real, folder, chain, published):
    d = real / folder
    files = {
        "helix": d / "deepssetracer2021" / f"{chain}_pred_helix.mrc",
        "sheet": d / "deepssetracer2021" / f"{chain}_pred_sheet.mrc",
    }
    box = d / f"{chain}-1.0APIX.mrc"
    authors = scli.score_files(**files, truth=d / f"{chain}_label_stride.txt", map_path=box, whole_box=True)
    listed = scli.score_files(**files, truth=d / f"{chain}_label_stride.txt", map_path=box, listed_only=True)
    ours_c = scli.score_files(**files, map_path=box, model=d / f"{chain}_fitted.pdb", chain=chain)
    ours_w = scli.score_files(
        **files, map_path=box, model=d / f"{chain}_fitted.pdb", chain=chain, whole_box=True
    )

    def f(r: dict, c: str) -> str:
        v = r["scores"][f"f1_{c}"]
        return "NA" if not math.isfinite(v) else f"{v:.4f}"

    print(
        f"\n{folder} DeepSSETracer 2021 voxel F1 (helix / sheet):"
        f"\n  authors' labels, whole box:        {f(authors, 'helix')} / {f(authors, 'sheet')}  published "
        f"{published.get('helix')} / {published.get('sheet', 'NA')}"
        f"\n  authors' labels, listed voxels:    {f(listed, 'helix')} / {f(listed, 'sheet')}"
        f"\n  our labels, whole box:             {f(ours_w, 'helix')} / {f(ours_w, 'sheet')}"
        f" ({100 * ours_w['region_within_map']:.0f}% of our padded box lies within the map)"
        f"\n  our labels, centre box:            {f(ours_c, 'helix')} / {f(ours_c, 'sheet')}"
        f"  residue F1 {ours_c['scores']['res_f1_helix']:.3f} / {ours_c['scores']['res_f1_sheet']:.3f}"
    )
    assert authors["coverage"] == 1.0 and authors["scored_voxels"] == read_map(box).data.size
    for cls, want in published.items():
        got = authors["scores"][f"f1_{cls}"]
        assert abs(got - want) <= 0.005 and round(got, 3) == want, (cls, got, want)
    if "sheet" not in published:
        assert authors["scores"]["vox_true_sheet"] == 0  # no sheet in the authors' labels: NA, as published
    assert ours_c["coverage"] == 1.0 and ours_c["scores"]["f1_helix"] > 0.7


def test_cli_on_real_output_with_the_authors_labels(real, tmp_path, capsys):
    d = real / "emd3491_5mdx_L"
    out = tmp_path / "L.json"
    code = main(
        [
            "score",
            "--helix",
            str(d / "deepssetracer2021/L_pred_helix.mrc"),
            "--sheet",
            str(d / "deepssetracer2021/L_pred_sheet.mrc"),
            "--truth",
            str(d / "L_label_stride.txt"),
            "--map",
            str(d / "L-1.0APIX.mrc"),
            "--whole-box",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert (
        re.search(r"^helix\s+84\.5\s", text, re.M) and "whole box" in text and "count as background" in text
    )
    res = json.loads(out.read_text())
    assert res["truth"]["kind"] == "voxel-label text" and res["scores"]["f1_sheet"] is None
    assert res["truth"]["listed_voxels"] == 18866
