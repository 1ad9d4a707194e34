"""The optional fourth class (nucleic acids, issue 10) and the 3-class outputs it must not change.

``GOLDEN`` holds digests of the dataset stage's outputs in a 3-class run (dataset pair,
entry and dataset tables), recorded with the code before the fourth class existed
(commit 201e33e): a 3-class run must still give exactly these bytes. The tables and the
pair record were updated twice since, when they gained the bins at 0.8x and 1.2x the
contour and the share of the box inside the map (issue 19), and the arrays gained the
``inside`` mask (this box reaches past its map); the map, labels and other arrays are
those of 201e33e. Training, evaluation and prediction round differently on other CPUs, so their digests are not pinned here;
``three_class_run`` still computes them, for comparing two versions of the code on one
machine (the restructuring check of issue 15).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo_structures"

GOLDEN: dict[str, str] = {
    "entry_tsv_EMD-90001": "f9b63d4bbf3b0b4b9c82c180ebc22cea047ff902c623acac89bbe7e85d70072d",
    "entry_tsv_EMD-90002": "2e51fed378d459d234355767f851199745193771260dca5970e42bb071aa5f6d",
    "dataset_tsv": "8989b20298e3d0b1edc8e9966e6ff4961f990fc073da8817efe5e1c6dee3c3fb",
    "map.mrc": "bf71ee4623fce8732bbf7c4a904775f08762ad5874e12405cab340c10846c6c0",
    "labels.mrc": "162f3a1bfbc9cc1a993eaa01bd294385c136708045c4e0d570e1756f7beca688",
    "record.json": "2c6700fb16c8dfff23736725b71d494a23ed7ff09b92355127480eb74f48b947",
    "npz_keys": "8a40ab9c57acd4f9f8db5567ad1a7b8845e2db15af1872d1847130a326548e89",
    "npz_ca_class": "885b2502509c219ab690204042a2195028920c8b25fa75a79ee288400c9e45d3",
    "npz_ca_in_centre": "78e6283a3e33d7c5d3bf6c90610693d81b09b979bac7d2bf8de8193c54e37bd7",
    "npz_ca_xyz": "2f4f1e05a8ffc471c2aeee2898679655f75553e60f8bb35d48452125b12acf74",
    "npz_centre": "af820a48b68a8b77a1158f8f350d4247a69d34e622a7f8eca983bd19fe657b5b",
    "npz_density": "879ed85bf58c78fd1f362a3703f7baca335c2aebcc709902c594919376dc24dd",
    "npz_inside": "e413bce2151bae3ed738e709e3ac1c3e77d469d9a1129a32733be1479a9d0243",
    "npz_labels": "617be81bccd8351ab0b34033766038e4c38b96fd5e904858f5aeb33ae6106460",
    "npz_origin_xyz": "c276b11d530a4a7ce315a38c6cfa69f34500852cc50b367e04505d1c93f4a54d",
    "npz_voxel_size": "fc6986bca557ac3b85f9aa49769e20c6868a49568c50ac8de693e049551eabaa",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _arr(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return _sha(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())


def _text(path: Path, tmp: Path) -> str:
    return _sha(path.read_bytes().replace(str(tmp).encode(), b"TMP"))


def simulated_entry(tmp: Path, pdb_file: Path, emdb_id: str, resolution: float, chains=()) -> Path:
    """A simulated map of ``pdb_file`` and its acquisition record; returns the record path."""
    import gemmi

    from cryosse.acquire.simulate import simulate_density, write_map_gz
    from cryosse.io import write_json

    folder = tmp / "archive" / emdb_id
    folder.mkdir(parents=True, exist_ok=True)
    st = gemmi.read_structure(str(pdb_file))
    sim = simulate_density(st, resolution, 1.2, 12.0, 0.1, 42, int(emdb_id.split("-")[1]))
    write_map_gz(folder / "map.mrc.gz", sim)
    rec = {"status": "ok", "reason": "", "emdb_id": emdb_id, "pdb_id": pdb_file.name.split(".")[0],
           "chains": list(chains), "resolution": resolution, "contour_level": sim.contour_level,
           "contour_source": "simulated", "map": str(folder / "map.mrc.gz"), "model": str(pdb_file)}  # fmt: skip
    write_json(folder / "record.json", rec)
    return folder / "record.json"


def three_class_run(tmp: Path) -> dict[str, str]:
    """Every 3-class stage on one simulated demo entry; digests of what each writes."""
    import torch

    from cryosse.dataset.entry import aggregate, build_entry
    from cryosse.dataset.pairs import DatasetParams
    from cryosse.evaluate import evaluate_split
    from cryosse.predict import predict_map
    from cryosse.train import TrainConfig, train_setting

    out: dict[str, str] = {}
    tables = []
    for pdb, emdb, res in (("1A0J", "EMD-90001", 6.0), ("1F7Z", "EMD-90002", 8.0)):
        rec = simulated_entry(tmp, DEMO / f"{pdb}.cif.gz", emdb, res)
        tables.append(tmp / "entries" / f"{emdb}.tsv")
        build_entry(rec, tables[-1], tmp / "pairs", DatasetParams(), entry=emdb)
        out[f"entry_tsv_{emdb}"] = _text(tables[-1], tmp)
    aggregate(tables, tmp / "dataset.tsv", tmp / "rejected.tsv")
    out["dataset_tsv"] = _text(tmp / "dataset.tsv", tmp)
    ds = pd.read_csv(tmp / "dataset.tsv", sep="\t", dtype=str)
    pid, other = ds["pair_id"].iloc[0], ds["pair_id"].iloc[-1]
    folder = tmp / "pairs" / pid
    for name in ("map.mrc", "labels.mrc"):
        out[name] = _sha((folder / name).read_bytes())
    rec_pair = json.loads((folder / "record.json").read_text())
    rec_pair.pop("inputs")
    rec_pair["files"].pop("arrays.npz")  # the npz zip carries its write time
    out["record.json"] = _sha(json.dumps(rec_pair, sort_keys=True).encode())
    with np.load(folder / "arrays.npz") as z:
        out["npz_keys"] = _sha(",".join(sorted(z.files)).encode())
        for k in sorted(z.files):
            out[f"npz_{k}"] = _arr(z[k])

    split = tmp / "split_0.tsv"
    split.write_text(f"pair_id\trole\tcluster\n{pid}\ttrain\t1\n{pid}\tval\t1\n")
    cfg = TrainConfig(width=0.125, max_epochs=2, patience=2, patch=24, max_steps_per_epoch=2,
                      device="cpu", threads=1)  # fmt: skip
    torch.set_num_threads(1)
    train_setting(tmp / "dataset.tsv", split, "0", "FL_DL", "lr0.001_g2", tmp / "train", cfg)
    ckpt = torch.load(tmp / "train" / "checkpoint.pt", weights_only=True)
    out["ckpt_weights"] = ckpt["weights_sha256"]
    meta = {k: v for k, v in ckpt.items() if k not in ("state_dict", "cryosse_version")}
    out["ckpt_meta"] = _sha(json.dumps(meta, sort_keys=True, default=str).encode())
    hist = pd.read_csv(tmp / "train" / "history.tsv", sep="\t").drop(columns=["seconds"])
    out["history"] = _sha(hist.to_csv(sep="\t", index=False).encode())

    test_split = tmp / "split_test.tsv"
    test_split.write_text(f"pair_id\trole\tcluster\n{other}\ttest\t2\n")
    evaluate_split(tmp / "train" / "checkpoint.pt", test_split, tmp / "dataset.tsv", tmp / "per_case.tsv",
                   tmp / "pred", split="0", device="cpu")  # fmt: skip
    out["per_case"] = _text(tmp / "per_case.tsv", tmp)
    out["pred_mrc"] = _sha((tmp / "pred" / f"{other}.mrc").read_bytes())

    predict_map(folder / "map.mrc", tmp / "predict", model=tmp / "train" / "checkpoint.pt", device="cpu",
                precision="fp32", threads=1)  # fmt: skip
    for p in sorted((tmp / "predict").iterdir()):
        if p.suffix == ".mrc":
            out[f"predict_{p.name}"] = _sha(p.read_bytes())
    out["predict_files"] = _sha(",".join(sorted(p.name for p in (tmp / "predict").iterdir())).encode())
    return out


# Training, evaluation and prediction digests depend on the CPU's float kernels: only the
# dataset stage's are pinned.
_PORTABLE = ("entry_tsv", "dataset_tsv", "map.mrc", "labels.mrc", "record.json", "npz_")


def test_three_class_outputs_unchanged(tmp_path):
    got = three_class_run(tmp_path)
    if not GOLDEN:
        pytest.fail("no golden digests recorded:\n" + json.dumps(got, indent=1))
    portable = {k: v for k, v in GOLDEN.items() if k.startswith(_PORTABLE)}
    assert len(portable) == 16
    assert {k: got[k] for k in portable} == portable


# ---------------------------------------------------------------- the fourth class

NA_MODEL = (
    Path(__file__).resolve().parent / "data" / "1LCD.cif.gz"
)  # lac headpiece + DNA (tests/data/README.md)


def test_class_names_and_params():
    from cryosse.classes import check_classes, class_names, with_classes

    assert class_names(3) == ("helix", "sheet") and class_names(4) == ("helix", "sheet", "nucleic")
    assert with_classes({"a": 1}, 3) == {"a": 1} and with_classes({"a": 1}, 4) == {"a": 1, "classes": 4}
    for bad in (2, 5, "4", True, 3.5):
        with pytest.raises(ValueError, match="expected 3"):
            check_classes(bad)


def test_nucleotide_atoms_p_or_c4():
    import gemmi

    from cryosse.dataset.structure import read_model

    m = read_model(NA_MODEL)
    st = gemmi.read_structure(str(NA_MODEL))
    p = [a.pos.tolist() for ch in st[0] for r in ch for a in r if a.name == "P"]
    c4 = {tuple(r.find_atom("C4'", "*").pos.tolist()) for ch in st[0] for r in ch if r.find_atom("P", "*") is None
          and r.find_atom("C4'", "*") is not None}  # fmt: skip
    assert m.n_nucleic == 22 and len(m.na) == 22  # one atom per nucleotide
    assert len(p) == 20 and len(c4) == 2  # the two 5' ends have no phosphate: their C4' stands in
    got = {tuple(x) for x in m.na.tolist()}
    assert {tuple(x) for x in p} <= got and c4 <= got


@pytest.fixture(scope="module")
def na_entry(tmp_path_factory):
    """The 1LCD complex (protein chain A on 11 bp of DNA) as a simulated 7 A map, built with 3 and 4 classes."""
    from cryosse.dataset.entry import build_entry
    from cryosse.dataset.pairs import DatasetParams

    tmp = tmp_path_factory.mktemp("na")
    rec = simulated_entry(tmp, NA_MODEL, "EMD-90100", 7.0)
    out = {}
    for k in (3, 4):
        table = build_entry(
            rec, tmp / f"entries{k}" / "EMD-90100.tsv", tmp / f"pairs{k}", DatasetParams(classes=k)
        )
        out[k] = (table, tmp / f"pairs{k}" / "90100_1LCD_A")
    return out


def test_nucleic_labels_land_on_the_backbone(na_entry):
    import gemmi
    from scipy.spatial import cKDTree

    from cryosse.geometry import MapGeometry

    table4, folder4 = na_entry[4]
    table3, folder3 = na_entry[3]
    assert table4.loc[0, "status"] == "kept", table4.loc[0, "reason"]
    # the two DNA strands are listed too, as not protein, with what the labels make of them
    for table, what in ((table3, "background in the labels"), (table4, "label class 3")):
        dna = table[table["reason"].fillna("").str.startswith("not protein")]
        assert list(dna["chain"]) == ["B", "C"] and (dna["status"] == "rejected").all()
        assert (
            dna["reason"].str.contains("DNA/RNA chain of 11 nucleotide").all()
            and dna["reason"].str.contains(what).all()
        )
    z4, z3 = np.load(folder4 / "arrays.npz"), np.load(folder3 / "arrays.npz")
    lab4, lab3 = z4["labels"], z3["labels"]
    geom = MapGeometry(lab4.shape, (1.0, 1.0, 1.0), tuple(z4["origin_xyz"]))
    st = gemmi.read_structure(str(NA_MODEL))
    st.remove_hydrogens()
    nuc = [
        r for ch in st[0] for r in ch if (i := gemmi.find_tabulated_residue(r.name)) and i.is_nucleic_acid()
    ]
    p = np.array([a.pos.tolist() for r in nuc for a in r if a.name == "P"])
    backbone = np.array([a.pos.tolist() for r in nuc for a in r
                         if a.name in ("P", "OP1", "OP2", "O5'", "C5'", "C4'", "C3'", "O3'")])  # fmt: skip
    # The voxel nearest each P atom is class 3 (all 20 P atoms lie in the box).
    idx = np.rint(geom.xyz_to_index(p)).astype(int)
    inside = np.all((idx >= 0) & (idx < np.asarray(geom.shape_xyz)), axis=1)
    assert inside.all()
    on_p = lab4[idx[:, 2], idx[:, 1], idx[:, 0]]
    assert np.mean(on_p == 3) >= 0.9
    # Every class-3 voxel lies within 3 A of a nucleotide's P or C4' atom, so on the backbone.
    zyx = np.argwhere(lab4 == 3)
    assert len(zyx) > 20 * 50
    xyz = np.asarray(z4["origin_xyz"]) + zyx[:, ::-1].astype(float)
    d_rep, _ = cKDTree(z4["na_xyz"]).query(xyz)
    assert d_rep.max() <= 3.0 + 1e-6
    d_bb, _ = cKDTree(backbone).query(xyz)
    assert d_bb.max() <= 3.0 + 1e-6
    # The nearest-atom rule: class 3 only where a nucleotide atom is nearer than every CA.
    d_ca, _ = cKDTree(z4["ca_xyz"]).query(xyz)
    assert np.all(d_rep <= d_ca + 1e-6)
    # Protein labels are those of the 3-class run wherever no nucleotide atom is within reach.
    all_xyz = np.asarray(z4["origin_xyz"]) + np.argwhere(np.ones(lab4.shape, bool))[:, ::-1].astype(float)
    far = (cKDTree(z4["na_xyz"]).query(all_xyz)[0] > 3.0).reshape(lab4.shape)
    assert np.array_equal(lab4[far], lab3[far]) and (lab3[far] > 0).sum() > 100
    assert set(np.unique(lab3)) <= {0, 1, 2} and 3 in lab4


def test_nucleic_counts_only_in_four_class_tables(na_entry, tmp_path):
    from cryosse.dataset.entry import aggregate
    from cryosse.dataset.pairs import DATASET_COLUMNS, ENTRY_COLUMNS

    table4, folder4 = na_entry[4]
    table3, folder3 = na_entry[3]
    assert list(table3.columns) == ENTRY_COLUMNS and "n_na" not in table3
    z4 = np.load(folder4 / "arrays.npz")
    assert int(table4.loc[0, "n_na"]) == int(z4["na_in_centre"].sum()) > 0
    assert "na_xyz" not in np.load(folder3 / "arrays.npz").files
    rec4 = json.loads((folder4 / "record.json").read_text())
    assert (
        rec4["params"]["classes"] == 4
        and "classes" not in json.loads((folder3 / "record.json").read_text())["params"]
    )
    e3, e4 = (Path(folder4).parents[1] / f"entries{k}" / "EMD-90100.tsv" for k in (3, 4))
    d4, _ = aggregate([e4], tmp_path / "d4.tsv", tmp_path / "r4.tsv")
    d3, _ = aggregate([e3], tmp_path / "d3.tsv", tmp_path / "r3.tsv")
    assert list(d3.columns) == DATASET_COLUMNS
    assert list(d4.columns) == DATASET_COLUMNS[:14] + ["n_na"] + DATASET_COLUMNS[14:]
    with pytest.raises(ValueError, match="mixed"):
        aggregate([e3, e4], tmp_path / "dx.tsv", tmp_path / "rx.tsv")


# ---------------------------------------------------------------- 4 classes end to end


def test_dice_term_covers_every_non_background_class():
    import torch

    from cryosse.losses import DiceLoss, make_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 6, 6, generator=g)
    target = torch.randint(0, 4, (2, 6, 6, 6), generator=g)
    mask = torch.ones(2, 6, 6, 6, dtype=torch.bool)
    prob = torch.softmax(logits, 1)
    d = sum((2 * (prob[:, k] * (target == k)).flatten(1).sum(1) + 1)
            / (prob[:, k].flatten(1).sum(1) + (target == k).flatten(1).sum(1) + 1) for k in (1, 2, 3))  # fmt: skip
    assert float(DiceLoss()(logits, target, mask)) == pytest.approx(float((3 - d).mean()), rel=1e-5)
    # With 3 channels the term is the paper's 2 - D over helix and sheet, as before.
    assert float(DiceLoss()(logits[:, :3], target.clamp(max=2), mask)) == pytest.approx(
        float(DiceLoss(classes=(1, 2))(logits[:, :3], target.clamp(max=2), mask))
    )
    fl_dl = make_loss("FL_DL", gamma=2.0)
    assert float(fl_dl(logits, target, mask)) == pytest.approx(
        float(make_loss("FL", gamma=2.0)(logits, target, mask) + DiceLoss()(logits, target, mask)), rel=1e-5
    )


def test_masks_from_probabilities_three_and_four_classes():
    from cryosse.predict import labels_from_probabilities

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=5000).astype(np.float32).T  # bg, helix, sheet, nucleic
    p[:, :50] = np.float32(0.25)  # ties go to the lower class
    h, s, n = labels_from_probabilities(p[1], p[2], p[3])
    arg = np.argmax(p, axis=0)  # first maximum = the lower class
    assert np.array_equal(h, arg == 1) and np.array_equal(s, arg == 2) and np.array_equal(n, arg == 3)
    q = p[:3] / p[:3].sum(0)
    h3, s3 = labels_from_probabilities(q[1], q[2])
    bg = 1.0 - q[1] - q[2]
    assert np.array_equal(h3, (q[1] > bg) & (q[1] >= q[2])) and np.array_equal(
        s3, (q[2] > bg) & (q[2] > q[1])
    )


def _tiny_checkpoint(path: Path, n_classes: int) -> Path:
    import torch

    from cryosse.model import DeepSSETracerUNet, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(path, DeepSSETracerUNet(width=0.125, n_classes=n_classes), loss={"name": "CE"}, split="0")
    return path


@pytest.fixture(scope="module")
def four_class_run(tmp_path_factory):
    """Dataset (4 classes) of two simulated 1LCD maps and one protein-only map; one tiny training setting."""
    import torch

    from cryosse.dataset.entry import aggregate, build_entry
    from cryosse.dataset.pairs import DatasetParams
    from cryosse.train import TrainConfig, train_setting

    tmp = tmp_path_factory.mktemp("four")
    tables = []
    for model, emdb, res in ((NA_MODEL, "EMD-90100", 7.0), (NA_MODEL, "EMD-90101", 9.0),
                             (DEMO / "1A0J.cif.gz", "EMD-90001", 6.0)):  # fmt: skip
        rec = simulated_entry(tmp, model, emdb, res)
        tables.append(tmp / "entries" / f"{emdb}.tsv")
        build_entry(rec, tables[-1], tmp / "pairs", DatasetParams(classes=4), entry=emdb)
    ds, _ = aggregate(tables, tmp / "dataset.tsv", tmp / "rejected.tsv")
    assert ds["pair_id"].tolist() == ["90001_1A0J_A", "90100_1LCD_A", "90101_1LCD_A"]
    (tmp / "split_0.tsv").write_text("pair_id\trole\tcluster\n90001_1A0J_A\ttrain\t1\n90100_1LCD_A\ttrain\t2\n"
                                     "90100_1LCD_A\tval\t2\n90101_1LCD_A\ttest\t2\n")  # fmt: skip
    cfg = TrainConfig(
        width=0.125, max_epochs=2, patience=2, patch=24, max_steps_per_epoch=2, device="cpu", threads=1
    )
    torch.set_num_threads(1)
    meta = train_setting(tmp / "dataset.tsv", tmp / "split_0.tsv", "0", "FL_DL", "lr0.001_g2", tmp / "train", cfg,
                         classes=4)  # fmt: skip
    return tmp, meta, cfg


def test_four_class_train_evaluate_tables_predict(four_class_run):
    import torch

    from cryosse.evaluate import evaluate_split
    from cryosse.predict import predict_map
    from cryosse.tables import build_tables

    tmp, meta, _ = four_class_run
    ckpt = torch.load(tmp / "train" / "checkpoint.pt", weights_only=True)
    assert ckpt["model_args"]["n_classes"] == 4 and ckpt["state_dict"]["out.weight"].shape[0] == 4
    assert "val_nucleic_f1" in meta["best_val"]
    hist = pd.read_csv(tmp / "train" / "history.tsv", sep="\t")
    assert list(hist.columns[2:6]) == ["val_helix_f1", "val_sheet_f1", "val_nucleic_f1", "val_mean"]
    assert len(hist) == 2 and hist["val_nucleic_f1"].notna().all()

    (tmp / "eval" / "0" / "FL_DL").mkdir(parents=True)
    per_case = tmp / "eval" / "0" / "FL_DL" / "per_case.tsv"
    df = evaluate_split(tmp / "train" / "checkpoint.pt", tmp / "split_0.tsv", tmp / "dataset.tsv", per_case,
                        tmp / "pred", split="0", device="cpu")  # fmt: skip
    row = df.iloc[0]
    assert row["pair_id"] == "90101_1LCD_A" and row["status"] == "ok"
    z = np.load(tmp / "pairs" / "90101_1LCD_A" / "arrays.npz")
    c = z["centre"]
    assert row["vox_true_nucleic"] == int((z["labels"][c[0] : c[1], c[2] : c[3], c[4] : c[5]] == 3).sum()) > 0
    assert row["res_true_nucleic"] == row["n_res_nucleic"] == row["n_na"] == int(z["na_in_centre"].sum())
    for col in ("f1_nucleic", "res_f1_nucleic", "vox_tp_nucleic"):
        assert col in df.columns
    pred = np.asarray(mrcfile.read(tmp / "pred" / "90101_1LCD_A.mrc"))
    assert pred.max() <= 3

    written = build_tables([per_case], tmp / "tables", n_boot=10)
    t1 = pd.read_csv(tmp / "tables" / "table1.tsv", sep="\t")
    assert list(t1.columns[:6]) == ["loss", "gamma", "f1_helix", "f1_sheet", "f1_nucleic", "f1_mean"]
    assert t1.loc[0, "f1_nucleic"] == pytest.approx(row["f1_nucleic"])
    t2 = pd.read_csv(tmp / "tables" / "table2.tsv", sep="\t")
    assert {"FL_DL_nucleic", "FL_DL_residue_nucleic"} <= set(t2.columns) and written
    assert t2.loc[0, "n_na"] == row["n_na"] and t2.iloc[-1]["n_na"] == row["n_na"]  # the case, the total
    assert "Count (H/S/O/NA)" in (tmp / "tables" / "table2.md").read_text()

    out = tmp / "predict"
    s = predict_map(tmp / "pairs" / "90101_1LCD_A" / "map.mrc", out, model=tmp / "train" / "checkpoint.pt",
                    device="cpu", precision="fp32", threads=1, classes=4)  # fmt: skip
    names = sorted(p.name for p in out.iterdir())
    for n in ("nucleic.mrc", "nucleic_prob.mrc", "nucleic_trimmed.mrc", "nucleic_prob_trimmed.mrc"):
        assert n in names
    assert (
        "nucleic_voxels" in s["full"]
        and "('nucleic_prob.mrc', 'orange', 'nucleic acid')" in (out / "chimerax.py").read_text()
    )
    # The four masks partition the map with background, as the argmax does.
    masks = [np.asarray(mrcfile.read(out / f"{n}.mrc")) for n in ("helix", "sheet", "nucleic")]
    assert int(sum(m.astype(int) for m in masks).max()) <= 1
    assert s["full"]["nucleic_voxels"] == int(masks[2].sum())


def test_wrong_class_count_is_refused(four_class_run, na_entry, tmp_path):
    from cryosse.dataset.entry import aggregate
    from cryosse.evaluate import evaluate_split
    from cryosse.model import CheckpointError
    from cryosse.predict import predict_map
    from cryosse.train import train_setting

    tmp, _, cfg = four_class_run
    four = tmp / "train" / "checkpoint.pt"
    three = _tiny_checkpoint(tmp_path / "three.pt", 3)
    # evaluation: a 3-class checkpoint on a 4-class dataset, and the reverse
    with pytest.raises(CheckpointError, match="3-class checkpoint .* the dataset .* has 4 classes"):
        evaluate_split(three, tmp / "split_0.tsv", tmp / "dataset.tsv", tmp_path / "pc.tsv", tmp_path / "p")
    e3 = Path(na_entry[3][1]).parents[1] / "entries3" / "EMD-90100.tsv"
    aggregate([e3], tmp_path / "d3.tsv", tmp_path / "r3.tsv")
    (tmp_path / "s3.tsv").write_text("pair_id\trole\tcluster\n90100_1LCD_A\ttest\t1\n")
    with pytest.raises(CheckpointError, match="4-class checkpoint .* has 3 classes"):
        evaluate_split(four, tmp_path / "s3.tsv", tmp_path / "d3.tsv", tmp_path / "pc.tsv", tmp_path / "p")
    # predict: --classes must match the checkpoint
    m = tmp / "pairs" / "90101_1LCD_A" / "map.mrc"
    with pytest.raises(CheckpointError, match="4-class checkpoint"):
        predict_map(m, tmp_path / "o1", model=four, device="cpu", precision="fp32", classes=3)
    with pytest.raises(CheckpointError, match="3-class checkpoint"):
        predict_map(m, tmp_path / "o2", model=three, device="cpu", precision="fp32", classes=4)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    # training: a dataset of the other class count, and a resume state of the other class count
    with pytest.raises(ValueError, match="built with 4 classes, this run has 3"):
        train_setting(
            tmp / "dataset.tsv", tmp / "split_0.tsv", "0", "FL_DL", "lr0.001_g2", tmp_path / "t", cfg
        )
    # a 4-class resume state met by a 3-class run (on a 3-class dataset) is refused, not resumed
    resume = tmp_path / "resume"
    resume.mkdir()
    shutil.copy(tmp / "train" / "state.pt", resume / "state.pt")
    (tmp_path / "s3t.tsv").write_text(
        "pair_id\trole\tcluster\n90100_1LCD_A\ttrain\t1\n90100_1LCD_A\tval\t1\n"
    )
    with pytest.raises(CheckpointError, match="state is of a 4-class network, this run has 3 classes"):
        train_setting(tmp_path / "d3.tsv", tmp_path / "s3t.tsv", "0", "FL_DL", "lr0.001_g2", resume, cfg)
    assert (resume / "state.pt").exists() and not (resume / "checkpoint.pt").exists()


@pytest.mark.slow
def test_snakemake_four_class_demo(tmp_path):
    """A small simulated demo with --config classes=4: acquire, dataset, splits, train, evaluate,
    tables, then `cryosse predict` with the selected model writes nucleic.mrc."""
    import subprocess
    import sys

    import yaml

    from conftest import copy_workflow, run_snakemake

    structures = tmp_path / "structures"
    structures.mkdir()
    entries = [("EMD-90001", "2CVI"), ("EMD-90002", "3A4R"), ("EMD-90003", "1I8N"),
               ("EMD-90100", "1LCD"), ("EMD-90101", "1LCD"), ("EMD-90102", "1LCD")]  # fmt: skip
    for _, pdb in entries:
        src = NA_MODEL if pdb == "1LCD" else DEMO / f"{pdb}.cif.gz"
        shutil.copy(src, structures / f"{pdb}.cif.gz")
    (tmp_path / "entries.tsv").write_text(
        "emdb_id\tpdb_id\tchain\n" + "".join(f"{e}\t{p}\t\n" for e, p in entries)
    )
    cfg = {
        "entries": str(tmp_path / "entries.tsv"), "results": "results", "resources": "resources", "logs": "logs",
        "acquire": {"simulate": {"structures": str(structures)}},
        "split": {"fractions": [50, 17, 33], "n_cv": 0, "paper_cases": "config/paper_test_cases.tsv",
                  "min_train_pairs": 2},
        "train": {"losses": ["FL_DL"], "gammas": [2], "splits": [0], "max_epochs": 2, "max_steps_per_epoch": 2,
                  "patch": 24},
        "evaluate": {"bootstrap": 10},
    }  # fmt: skip
    wf = copy_workflow(tmp_path / "wf", overlay=yaml.safe_dump(cfg))
    run_snakemake(
        wf, "--workflow-profile", "none", "--config", "classes=4", "--", "tables",
        configfiles=["config/config.yaml", "config/demo.yaml", "config/test.yaml"], cores=2,
    )  # fmt: skip
    res = wf / "results"
    ds = pd.read_csv(res / "dataset" / "dataset.tsv", sep="\t")
    assert "n_na" in ds.columns and (ds["n_na"] > 0).sum() == 3 and (ds["n_na"] == 0).sum() >= 2
    from cryosse.model import load_checkpoint

    _, meta = load_checkpoint(res / "models" / "0" / "FL_DL.pt")
    assert meta["model_args"]["n_classes"] == 4
    pc = pd.read_csv(res / "eval" / "0" / "FL_DL" / "per_case.tsv", sep="\t")
    assert {"f1_nucleic", "res_f1_nucleic", "n_na"} <= set(pc.columns) and (pc["status"] == "ok").all()
    t1 = pd.read_csv(res / "tables" / "table1.tsv", sep="\t")
    assert "f1_nucleic" in t1.columns
    na_pair = ds.loc[ds["n_na"] > 0, "path"].iloc[0]
    out = tmp_path / "predict"
    p = subprocess.run([sys.executable, "-m", "cryosse.cli", "predict", str(wf / na_pair / "map.mrc"), "-o", str(out),
                        "--checkpoint", str(res / "models" / "0" / "FL_DL.pt"), "--classes", "4", "--device", "cpu"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "nucleic.mrc").exists() and "nucleic acid" in p.stdout
    bad = subprocess.run([sys.executable, "-m", "cryosse.cli", "predict", str(wf / na_pair / "map.mrc"), "-o",
                          str(tmp_path / "p3"), "--checkpoint", str(res / "models" / "0" / "FL_DL.pt"), "--classes", "3"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode != 0 and "4-class checkpoint" in bad.stderr
