"""Evaluation metrics (SPEC 10): hand-made label volumes, NA handling, residue votes,
the paper's Table 2 re-aggregated, and prediction of tiny synthetic pairs."""

from __future__ import annotations

import io
import math
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import pytest

from conftest import BOX, PAD, make_project
from cryosse import evaluate as ev
from cryosse import statistics as st

# The paper's bottom row of Table 2 (Weighted Average, %).
PAPER_BOTTOM = {
    "CE": (61.7, 39.9),
    "FL": (62.9, 45.4),
    "DL": (61.8, 43.4),
    "FL_DL": (62.0, 48.7),
    "FL_DL_residue": (74.3, 58.2),
}


def test_confusion_and_f1_on_hand_made_volume():
    truth = np.zeros((4, 5, 6), np.uint8)
    pred = np.zeros_like(truth)
    truth[0, :2, :5] = 1  # 10 true helix voxels
    pred[0, 0, :5] = 1  # 5 of them found...
    pred[0, 1, :1] = 1  # ...6 in all
    pred[3, 0, :4] = 1  # 4 false helix voxels
    truth[2, 2, :3] = 2  # 3 true sheet voxels, predicted as helix (2) or missed (1)
    pred[2, 2, :2] = 1
    assert ev.confusion(pred, truth, 1) == (6, 6, 4)
    assert ev.confusion(pred, truth, 2) == (0, 0, 3)
    s = ev.voxel_scores(pred, truth)
    assert s["f1_helix"] == pytest.approx(2 * 6 / (2 * 6 + 6 + 4))
    assert s["f1_sheet"] == 0.0
    assert s["vox_true_helix"] == 10 and s["vox_true_sheet"] == 3


def test_f1_is_na_without_true_units():
    truth = np.zeros((3, 3, 3), np.uint8)
    pred = np.zeros_like(truth)
    pred[0, 0, 0] = 2  # a false sheet voxel where there is no true sheet: F1 undefined, not 0
    s = ev.voxel_scores(pred, truth)
    assert math.isnan(s["f1_sheet"]) and math.isnan(s["f1_helix"])
    assert ev.f1_from_counts(0, 5, 0) != ev.f1_from_counts(0, 5, 0)  # NaN
    assert ev.f1_from_counts(0, 0, 2) == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        ev.confusion(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), 1)


def test_weighted_mean_na_cases_weigh_zero():
    assert st.weighted_mean([0.5, math.nan, 1.0], [2, 5, 0]) == pytest.approx(0.5)
    assert st.weighted_mean([0.2, 0.8], [1, 3]) == pytest.approx(0.65)
    assert math.isnan(st.weighted_mean([math.nan], [3]))


def test_residue_vote_majority_ties_and_region():
    pred = np.zeros((9, 9, 9), np.uint8)
    # CA at voxel (z, y, x) = (4, 4, 4); origin (x, y, z) = (10, 20, 30), 1 A voxels.
    ca = np.array([[14.0, 24.0, 34.0]])
    origin = (10.0, 20.0, 30.0)
    pred[3:6, 3:6, 3:6] = 1  # 27 helix voxels near the CA, the rest of the sphere background
    assert ev.residue_votes(pred, ca, origin, 1.0, radius=1.0)[0] == 1  # 7 voxels in 1 A: all helix
    # Radius 3 A holds 123 voxel centres: 27 helix, 96 background -> background.
    assert ev.residue_votes(pred, ca, origin, 1.0, radius=3.0)[0] == 0
    # Tie: within 1 A (7 voxels) make 3 helix, 3 sheet, 1 background.
    tie = np.zeros_like(pred)
    tie[4, 4, 4] = 0
    tie[3, 4, 4] = tie[5, 4, 4] = tie[4, 3, 4] = 1
    tie[4, 5, 4] = tie[4, 4, 3] = tie[4, 4, 5] = 2
    assert ev.residue_votes(tie, ca, origin, 1.0, radius=1.0, ties="background")[0] == 0
    # "nearest": CA 0.3 A off the centre voxel towards x = 5: only those two voxels are in reach.
    two = np.zeros_like(pred)
    two[4, 4, 4], two[4, 4, 5] = 2, 1
    off = ca + np.array([[0.3, 0.0, 0.0]])
    assert ev.residue_votes(two, off, origin, 1.0, radius=1.0, ties="background")[0] == 0
    assert ev.residue_votes(two, off, origin, 1.0, radius=1.0, ties="nearest")[0] == 2
    two[4, 4, 4], two[4, 4, 5] = 1, 2
    assert ev.residue_votes(two, off, origin, 1.0, radius=1.0, ties="nearest")[0] == 1
    # Region: only voxels with z >= 5 vote -> one helix voxel in reach.
    assert ev.residue_votes(tie, ca, origin, 1.0, radius=1.0, region=(5, 9, 0, 9, 0, 9))[0] == 1
    # A CA out of reach of every voxel is background.
    assert ev.residue_votes(pred, np.array([[100.0, 0.0, 0.0]]), origin, 1.0)[0] == 0
    with pytest.raises(ValueError, match="tie rule"):
        ev.residue_votes(pred, ca, origin, 1.0, ties="random")


def test_residue_scores_weighting_units():
    s = ev.residue_scores(np.array([1, 1, 0, 2, 0]), np.array([1, 0, 1, 2, 0]))
    assert s["res_f1_helix"] == pytest.approx(2 / (2 + 1 + 1))
    assert s["res_f1_sheet"] == 1.0 and s["res_true_helix"] == 2


def test_bootstrap_and_paired_test():
    rng = np.random.default_rng(1)
    f = rng.uniform(0.3, 0.7, 30)
    w = rng.integers(1, 100, 30).astype(float)
    lo, hi = st.bootstrap_ci(f, w, 500, 0.95, seed=3)
    m = st.weighted_mean(f, w)
    assert lo < m < hi
    assert (lo, hi) == st.bootstrap_ci(f, w, 500, 0.95, seed=3)
    t = st.paired_test(f, f + 0.05)
    assert t["n"] == 30 and t["mean_diff"] == pytest.approx(0.05) and t["p"] < 1e-3
    assert math.isnan(st.paired_test(f, f)["p"])


def test_resolution_band():
    edges = [5, 6, 7, 8, 10]
    assert st.resolution_band(5.0, edges) == "5-6 A"
    assert st.resolution_band(7.9, edges) == "7-8 A"
    assert st.resolution_band(10.0, edges) == "8-10 A"
    assert st.resolution_band(4.2, edges) == "<5 A"


def test_aggregate_reproduces_paper_bottom_row(root):
    """The paper's own per-case F1, weighted by its CA counts, gives its bottom row within 1 point."""
    out = io.StringIO()
    from cryosse.cli import main

    with redirect_stdout(out):
        assert main(["aggregate", str(root / "config" / "paper_test_cases.tsv"), "--format", "tsv"]) == 0
    lines = [ln for ln in out.getvalue().splitlines() if ln and not ln.startswith("#")]
    df = pd.read_csv(io.StringIO("\n".join(lines)), sep="\t").set_index("name")
    assert set(PAPER_BOTTOM) <= set(df.index)
    for name, (h, s) in PAPER_BOTTOM.items():
        assert abs(df.at[name, "helix"] - h) <= 1.0, (name, df.at[name, "helix"], h)
        assert abs(df.at[name, "sheet"] - s) <= 1.0, (name, df.at[name, "sheet"], s)


def test_aggregate_detects_weights_and_rejects_bad_tables(tmp_path):
    p = tmp_path / "pc.tsv"
    p.write_text("case\tn_helix\tn_sheet\tX_helix\tX_sheet\na\t10\t0\t0.5\tNA\nb\t30\t5\t0.9\t0.4\n")
    res = st.aggregate(st.read_per_case(p)).set_index("name")
    assert res.at["X", "helix"] == pytest.approx((10 * 0.5 + 30 * 0.9) / 40)
    assert res.at["X", "sheet"] == pytest.approx(0.4)
    bad = tmp_path / "bad.tsv"
    bad.write_text("case\tX_helix\na\t0.5\n")
    with pytest.raises(ValueError, match="weight columns"):
        st.aggregate(st.read_per_case(bad))


def test_evaluate_split_names_rows_with_the_checkpoints_loss(tmp_path):
    """The rows carry the loss the checkpoint names (never its folder's name); a caller who
    names another loss is refused, and a table without loss names cannot be read back."""
    from cryosse.statistics import read_eval_results

    proj = make_project(tmp_path, ["9001_1AAA_A"], losses=("FL_DL",))
    out = tmp_path / "elsewhere" / "per_case.tsv"
    df = ev.evaluate_split(
        proj["models"]["FL_DL"], proj["split"], proj["dataset"], out, tmp_path / "p", device="cpu"
    )
    assert df["loss"].tolist() == ["FL_DL"] and read_eval_results([out])["loss"].tolist() == ["FL_DL"]
    with pytest.raises(ValueError, match="trained with loss FL_DL, evaluated as CE"):
        ev.evaluate_split(proj["models"]["FL_DL"], proj["split"], proj["dataset"], out, tmp_path / "p",
                          device="cpu", loss="CE")  # fmt: skip
    pd.read_csv(out, sep="\t").assign(loss="").to_csv(out, sep="\t", index=False)
    with pytest.raises(ValueError, match="do not all name their loss"):
        read_eval_results([out])


def test_evaluate_split_writes_scores_and_overlaying_predictions(tmp_path):
    from cryosse.geometry import read_map

    proj = make_project(tmp_path, ["1657_4V5H_AE", "6452_3JBO_Ae", "0090_6GYK_M"], losses=("FL_DL",))
    # Break one pair: its arrays are gone; the run records it and goes on.
    (tmp_path / "results/dataset/pairs/0090_6GYK_M/arrays.npz").unlink()
    out = tmp_path / "results/eval/0/FL_DL/per_case.tsv"
    pred_dir = tmp_path / "results/eval/0/FL_DL/pred"
    df = ev.evaluate_split(
        proj["models"]["FL_DL"], proj["split"], proj["dataset"], out, pred_dir, split="0", device="cpu"
    )
    assert out.exists()
    back = pd.read_csv(
        out, sep="\t", dtype={"pair_id": str, "chain": str}, keep_default_na=False, na_values=["NA"]
    )
    assert list(back["pair_id"]) == ["0090_6GYK_M", "1657_4V5H_AE", "6452_3JBO_Ae"]
    bad = back.set_index("pair_id").loc["0090_6GYK_M"]
    assert bad["status"] == "failed" and "arrays missing" in bad["reason"]
    ok = back[back["status"] == "ok"]
    assert set(ok["chain"]) == {"AE", "Ae"}
    assert (
        (ok["loss"] == "FL_DL").all()
        and (ok["gamma"] == 1.0).all()
        and (ok["best_val"] == 0.3).all()
        and (ok["vox_true_helix"] == 6 * 6 * 12).all()
    )
    assert ok["vox_true_sheet"].eq(3 * 8 * 8).all()
    assert ok["res_true_helix"].eq(2).all() and ok["res_true_sheet"].eq(2).all()
    assert df["f1_helix"].dropna().between(0, 1).all()
    # The stored prediction is the centre box, placed where it lies in the pair's frame.
    m = read_map(pred_dir / "1657_4V5H_AE.mrc")
    assert m.data.shape == (BOX - 2 * PAD,) * 3
    np.testing.assert_allclose(m.geometry.origin_xyz, np.array([10.0, -5.0, 3.0]) + PAD)
    assert set(np.unique(np.asarray(m.data))) <= {0, 1, 2}
    # Scores agree with the stored labels.
    with np.load(tmp_path / "results/dataset/pairs/1657_4V5H_AE/arrays.npz") as z:
        truth = z["labels"][PAD:-PAD, PAD:-PAD, PAD:-PAD]
    row = ok.set_index("pair_id").loc["1657_4V5H_AE"]
    tp, fp, fn = ev.confusion(np.asarray(m.data), truth, 1)
    assert (row["vox_tp_helix"], row["vox_fp_helix"], row["vox_fn_helix"]) == (tp, fp, fn)
    # `cryosse aggregate` on this table weighs voxel F1 by true voxels and residue F1 by true residues.
    agg = st.aggregate(st.read_per_case(out)).set_index("name")
    assert set(agg.index) == {"f1", "res_f1"}
    assert agg.at["f1", "weights"] == "vox_true_helix/vox_true_sheet"
    assert agg.at["res_f1", "sheet"] == pytest.approx(
        st.weighted_mean(ok["res_f1_sheet"], ok["res_true_sheet"])
    )


def test_evaluate_refuses_a_model_trained_on_the_test_cases(tmp_path):
    import torch

    from cryosse.model import DeepSSETracerUNet, save_checkpoint

    proj = make_project(tmp_path, ["1657_4V5H_AE"], losses=("CE",))
    leaky = tmp_path / "leaky.pt"
    save_checkpoint(
        leaky, DeepSSETracerUNet(width=0.125), loss={"name": "CE"}, split="0", train_pairs=["1657_4V5H_AE"]
    )
    with pytest.raises(ValueError, match="training pairs"):
        ev.evaluate_split(
            leaky, proj["split"], proj["dataset"], tmp_path / "pc.tsv", tmp_path / "pred", device="cpu"
        )
    with pytest.raises(ValueError, match="trained on split 0"):
        ev.evaluate_split(
            proj["models"]["CE"],
            proj["split"],
            proj["dataset"],
            tmp_path / "pc.tsv",
            tmp_path / "p",
            split="3",
            device="cpu",
        )
    assert torch.get_num_threads() >= 1


def test_evaluate_cli_fails_clearly_when_nothing_scores(tmp_path, capsys):
    from cryosse.cli import main

    proj = make_project(tmp_path, ["1657_4V5H_AE"], losses=("CE",))
    (tmp_path / "results/dataset/pairs/1657_4V5H_AE/arrays.npz").unlink()
    rc = main(
        [
            "evaluate",
            str(proj["models"]["CE"]),
            str(proj["split"]),
            "--dataset",
            str(proj["dataset"]),
            "--out",
            str(tmp_path / "pc.tsv"),
            "--pred-dir",
            str(tmp_path / "pred"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 1
    assert "no test case" in capsys.readouterr().err
    assert not (tmp_path / "pc.tsv").exists()


def test_one_na_policy_keeps_a_chain_called_na(tmp_path):
    """Every reader of per-case, dataset and split tables shares io.read_tsv: identifiers stay
    text (chain 'NA', split '0'), and 'NA' or an empty cell is NaN everywhere else."""
    from cryosse.io import read_tsv
    from cryosse.statistics import read_eval_results, read_per_case

    p = tmp_path / "per_case.tsv"
    p.write_text(
        "pair_id\tsplit\tloss\tchain\tpdb_id\tstatus\tf1_helix\tf1_sheet\tvox_true_helix\tvox_true_sheet\n"
        "1_1E10_NA\t0\tCE\tNA\t1E10\tok\t0.5\tNA\t10\t0\n"
        "2_2ABC_A\t0\tCE\tA\t2ABC\tok\t\t0.25\t0\t8\n"
    )
    for df in (read_tsv(p), read_eval_results([p]), read_per_case(p)):
        assert df["chain"].tolist() == ["NA", "A"] and df["pdb_id"].tolist() == ["1E10", "2ABC"]
        assert df["split"].tolist() == ["0", "0"]
        assert np.isnan(df["f1_sheet"][0]) and np.isnan(df["f1_helix"][1]) and df["f1_sheet"][1] == 0.25
