"""Tables and figures from stored per-case results; the paper's test cases side by side;
`snakemake tables --forcerun tables` retrains and re-predicts nothing."""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import copy_workflow, make_project, run_snakemake
from cryosse import evaluate as ev
from cryosse import tables as tb

PAIRS = ["1657_4V5H_AE", "6452_3JBO_Ae", "8130_5J4Z_B"]


def md_rows(text: str) -> list[list[str]]:
    """The cells of a Markdown pipe table, header first, the alignment row left out."""
    rows = [re.split(r"(?<!\\)\|", ln.strip())[1:-1] for ln in text.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in r] for r in rows if not all(set(c.strip()) <= set(":-") for c in r)]


def case_metadata(pid: str, i: int) -> dict:
    """The dataset columns of the i-th case of a synthetic per-case table."""
    emdb, pdb, chain = pid.split("_", 2)
    return {"emdb_id": f"EMD-{emdb}", "pdb_id": pdb, "chain": chain, "resolution": 5.5 + i, "bin": 1 + i % 3,
            "n_ca_helix": 20 + i, "n_ca_sheet": 10 + i, "n_ca_other": 30}  # fmt: skip


def synthetic_per_case(
    tmp: Path, split: str, loss: str, f1s: dict[str, tuple[float, float]], seed: int = 0
) -> Path:
    """A per-case table as the evaluate rule writes it, with chosen F1 values."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, (pid, (fh, fs)) in enumerate(f1s.items()):
        vh, vs = 100 + 50 * i, (0 if math.isnan(fs) else 40 + 10 * i)
        rows.append(
            {
                "pair_id": pid,
                "split": split,
                "loss": loss,
                "setting": "lr0.001",
                "gamma": 2.0 if "FL" in loss else math.nan,
                "status": "ok",
                "reason": "",
                **case_metadata(pid, i),
                "f1_helix": fh,
                "f1_sheet": fs,
                "vox_true_helix": vh,
                "vox_true_sheet": vs,
                "res_f1_helix": min(1.0, fh + 0.1),
                "res_f1_sheet": fs,
                "res_true_helix": 20 + i,
                "res_true_sheet": 0 if math.isnan(fs) else 10 + i,
                "vox_tp_helix": int(rng.integers(0, 9)),
            }
        )
    path = tmp / "results" / "eval" / split / loss / "per_case.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False, na_rep="NA")
    return path


def test_tables_from_stored_results(tmp_path):
    f1 = {
        "CE": {PAIRS[0]: (0.5, 0.2), PAIRS[1]: (0.7, math.nan), PAIRS[2]: (0.6, 0.4)},
        "FL_DL": {PAIRS[0]: (0.6, 0.5), PAIRS[1]: (0.8, math.nan), PAIRS[2]: (0.5, 0.6)},
        "FL": {PAIRS[0]: (0.55, 0.3), PAIRS[1]: (0.75, math.nan), PAIRS[2]: (0.6, 0.45)},
    }
    paths = [
        synthetic_per_case(tmp_path, s, loss, v, seed=int(s)) for s in ("0", "1") for loss, v in f1.items()
    ]
    out = tmp_path / "tables"
    written = tb.build_tables(paths, out, main_split="0", paper_columns=True, n_boot=100, seed=1)
    for stem in ("table1", "table2", "tableS1", "stats", "breakdown"):
        for ext in ("tsv", "md", "tex", "html"):
            assert (out / f"{stem}.{ext}") in written and (out / f"{stem}.{ext}").stat().st_size > 0
    t1 = pd.read_csv(out / "table1.tsv", sep="\t")
    assert list(t1["loss"]) == ["CE", "FL", "FL_DL"]  # the paper's row order
    ce = t1.set_index("loss").loc["CE"]
    assert ce["f1_helix"] == pytest.approx((0.5 * 100 + 0.7 * 150 + 0.6 * 200) / 450)
    assert ce["f1_sheet"] == pytest.approx((0.2 * 40 + 0.4 * 60) / 100)  # the NA case weighs 0
    assert math.isnan(ce["gamma"]) and t1.set_index("loss").at["FL", "gamma"] == 2
    assert t1.set_index("loss").at["FL_DL", "paper_f1_sheet"] == pytest.approx(0.487)
    md = (out / "table1.md").read_text()
    rule = [ln for ln in md.splitlines() if ln.startswith("|")][1]
    assert md_rows(md)[0][0] == "Loss function" and "48.7" in md
    assert rule.startswith("|:-") and rule.endswith(":|")  # text left, figures right
    tex = (out / "table1.tex").read_text()
    assert "FL\\_DL" in tex and "\\begin{tabular}{lrrrrrrrrr}" in tex and "\\toprule" not in tex
    assert "<td>FL_DL</td>" in (out / "table1.html").read_text()
    t2 = pd.read_csv(out / "table2.tsv", sep="\t", keep_default_na=False, na_values=["NA"])
    assert list(t2["pair_id"]) == sorted(PAIRS) + ["Weighted Average"]  # chain ids kept as they are
    assert t2.iloc[-1]["n_ca_helix"] == 20 + 21 + 22
    assert t2.iloc[-1]["CE_sheet"] == pytest.approx(ce["f1_sheet"])
    assert "FL_DL_residue_helix" in t2.columns
    assert "6452_3JBO_Ae (6.5)" in (out / "table2.md").read_text()
    s1 = pd.read_csv(out / "tableS1.tsv", sep="\t").set_index("loss")
    assert s1.at["CE", "split0_helix"] == pytest.approx(ce["f1_helix"])
    assert s1.at["CE", "sd_helix"] == pytest.approx(0.0)
    st = pd.read_csv(out / "stats.tsv", sep="\t")
    v = st[(st["level"] == "voxel") & (st["class"] == "helix") & (st["loss"] == "FL_DL")].iloc[0]
    assert v["ci_lo"] <= v["f1"] <= v["ci_hi"] and v["vs_ce_n"] == 3
    br = pd.read_csv(out / "breakdown.tsv", sep="\t")
    assert set(br["by"]) == {"resolution", "quality bin"}
    assert br[br["by"] == "resolution"]["n_cases"].sum() == 3 * 3
    assert "± 0.0" in (out / "tableS1.md").read_text()
    # one split: no spread to show, and the table says so instead of "± NA"
    one = tb.build_tables(paths[:3], tmp_path / "one", main_split="0", n_boot=0)
    text = (tmp_path / "one" / "tableS1.md").read_text()
    assert tmp_path / "one" / "tableS1.md" in one and "(one split)" in text and "NA" not in text


def test_paper_run_side_by_side_and_fidelity(tmp_path, root):
    """A run on two of the paper's cases: Table 2 beside the paper's and the fidelity table, two rows each."""
    two = {"1657_4V5H_AE": (0.6, 0.5), "6452_3JBO_Ae": (0.7, 0.3)}
    paths = [synthetic_per_case(tmp_path, "0", loss, two) for loss in ("CE", "FL", "DL", "FL_DL")]
    pc = tmp_path / "paper_cases.tsv"
    pc.write_text(
        "case_id\tstatus\treason\n1657_4V5H_AE\tused\t\n0090_6GYK_M\tunavailable\tentry not in mirror\n"
    )
    out = tmp_path / "tables"
    tb.build_tables(
        paths, out, paper_cases=root / "config/paper_test_cases.tsv", paper_split_cases=pc, n_boot=0
    )
    side = pd.read_csv(out / "table2_paper.tsv", sep="\t", keep_default_na=False, na_values=["NA"])
    assert list(side["pair_id"]) == ["1657_4V5H_AE", "6452_3JBO_Ae", "Weighted Average"]
    r = side.set_index("pair_id").loc["1657_4V5H_AE"]
    assert r["paper_CE_helix"] == pytest.approx(0.581) and r["paper_ca_helix"] == 158
    assert r["CE_helix"] == pytest.approx(0.6)
    assert r["paper_FL_DL_residue_sheet"] == pytest.approx(0.596)
    bottom = side.iloc[-1]
    assert bottom["paper_CE_helix"] == pytest.approx((0.581 * 158 + 0.544 * 162) / (158 + 162))
    fid = pd.read_csv(out / "fidelity.tsv", sep="\t", keep_default_na=False, na_values=["NA"])
    assert list(fid["pair_id"]) == ["1657_4V5H_AE", "6452_3JBO_Ae", "Median relative difference"]
    f = fid.set_index("pair_id")
    assert f.at["1657_4V5H_AE", "reldiff_helix"] == pytest.approx((20 - 158) / 158)
    assert f.at["Median relative difference", "reldiff_helix"] == pytest.approx(
        np.median([(20 - 158) / 158, (21 - 162) / 162])
    )
    assert "Median relative difference" in (out / "fidelity.md").read_text()
    un = pd.read_csv(out / "paper_unavailable.tsv", sep="\t")
    assert list(un["case_id"]) == ["0090_6GYK_M"]


def test_figures_from_stored_results(tmp_path):
    import matplotlib.pyplot as plt

    from cryosse.figures import build_figures

    proj = make_project(tmp_path, PAIRS[:2], losses=("CE", "FL_DL"))
    paths = []
    for loss in ("CE", "FL_DL"):
        d = tmp_path / "results/eval/0" / loss
        ev.evaluate_split(
            proj["models"][loss], proj["split"], proj["dataset"], d / "per_case.tsv", d / "pred", device="cpu"
        )
        paths.append(d / "per_case.tsv")
    sel = tmp_path / "results/train/0/selection.tsv"
    ck = tmp_path / "elsewhere" / "checkpoint.pt"  # the history lies beside the checkpoint
    hist = ck.parent / "history.tsv"
    hist.parent.mkdir(parents=True)
    sel.parent.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.8], "val_mean": [0.2, 0.3]}).to_csv(
        hist, sep="\t", index=False
    )
    pd.DataFrame(
        {"split": [0], "loss": ["CE"], "setting": ["lr0.001"], "chosen": [True], "checkpoint": [str(ck)]}
    ).to_csv(sel, sep="\t", index=False)
    out = tmp_path / "figures"
    written = build_figures(
        paths, out, [1, 2, 5, 8], tmp_path / "results/eval", proj["dataset"], sel, n_boot=50, n_slices=2
    )
    names = {p.name for p in written}
    for stem in (
        "focal_loss",
        "f1_by_loss",
        "per_case_vs_ce",
        "f1_vs_resolution",
        "training_curves",
        "slices",
    ):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
        png = plt.imread(out / f"{stem}.png")  # decodes: a real image, not a blank page
        assert min(png.shape[:2]) >= 300 and png[..., :3].std() > 0.05, stem
        assert (out / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    from cryosse.figures import chosen_histories

    assert chosen_histories(sel) == {"CE": hist}  # the training curves are the chosen run's


def _digest(folder: Path) -> dict[str, tuple[float, str]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_snakemake_tables_forcerun_touches_no_training_output(tmp_path):
    """In a copy of the workflow with stored results, rebuilding the tables and figures
    leaves every training and evaluation output as it was (mtimes and checksums)."""
    overlay = (
        "results: results\nlogs: logs\ntrain:\n  splits: [0]\n  losses: [CE, FL_DL]\n"
        "evaluate:\n  bootstrap: 50\n  slice_cases: 1\n"
    )
    wf = copy_workflow(tmp_path / "wf", overlay=overlay)
    proj = make_project(wf, PAIRS[:2], losses=("CE", "FL_DL"))
    for loss in ("CE", "FL_DL"):
        d = wf / "results/eval/0" / loss
        ev.evaluate_split(
            proj["models"][loss], proj["split"], proj["dataset"], d / "per_case.tsv", d / "pred", device="cpu"
        )
        ck = wf / "results/train/0" / loss / "lr0.001" / "checkpoint.pt"
        ck.parent.mkdir(parents=True)
        shutil.copy2(proj["models"][loss], ck)
        pd.DataFrame({"epoch": [1], "train_loss": [1.0], "val_mean": [0.2]}).to_csv(
            ck.parent / "history.tsv", sep="\t", index=False
        )
    pd.DataFrame(
        {"split": [0, 0], "loss": ["CE", "FL_DL"], "setting": ["lr0.001"] * 2, "chosen": [True] * 2,
         "checkpoint": [f"results/train/0/{loss}/lr0.001/checkpoint.pt" for loss in ("CE", "FL_DL")]}
    ).to_csv(wf / "results/train/0/selection.tsv", sep="\t", index=False)  # fmt: skip
    for name in ("audit.md", "audit.tsv"):  # a finished run has its split audit (the report shows it)
        (wf / "results/splits" / name).write_text("# Leakage audit of the splits\n")
    before = {k: _digest(wf / "results" / k) for k in ("train", "models", "eval", "dataset", "splits")}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cfg = ["config/demo.yaml", "config/test.yaml"]
    allowed = ("--allowed-rules", "tables", "figures")
    run_snakemake(wf, *allowed, "--", "tables", "figures", configfiles=cfg, dry_run=True, env=env)
    for target in ("tables", "figures"):
        run_snakemake(wf, *allowed, "--forcerun", target, "--", target, configfiles=cfg, env=env)
    assert (wf / "results/tables/table1.md").exists() and (wf / "results/figures/slices.png").exists()
    first = (wf / "results/tables/table1.tsv").stat().st_mtime_ns
    run_snakemake(wf, *allowed, "--forcerun", "tables", "--", "tables", configfiles=cfg, env=env)
    assert (wf / "results/tables/table1.tsv").stat().st_mtime_ns > first  # really rebuilt
    after = {k: _digest(wf / "results" / k) for k in before}
    assert after == before
    # The HTML report renders the tables and figures with their captions.
    run_snakemake(
        wf, *allowed, "--report", "report.html", "--", "tables", "figures", configfiles=cfg, env=env
    )
    assert (wf / "report.html").stat().st_size > 10_000


# --------------------------------------------------------------------------- external tools (issue 18)


def external_per_case(tmp: Path, tool: str, f1s: dict[str, tuple[float, float] | None]) -> Path:
    """A tool's per-case table as the score_external rule writes it; None = no prediction for the case."""
    rows = []
    for i, (pid, v) in enumerate(f1s.items()):
        row = {
            "pair_id": pid,
            "split": "0",
            "loss": tool,
            "setting": "external",
            "gamma": math.nan,
            "best_val": math.nan,
            **case_metadata(pid, i),
        }
        if v is None:
            row.update(status="missing", reason=f"no {pid}_helix.mrc + {pid}_sheet.mrc or {pid}.mrc in preds")
        else:
            fh, fs = v
            row.update(
                status="ok",
                reason="",
                f1_helix=fh,
                f1_sheet=fs,
                vox_true_helix=100 + 50 * i,
                vox_true_sheet=0 if math.isnan(fs) else 40 + 10 * i,
                res_f1_helix=fh,
                res_f1_sheet=fs,
                res_true_helix=20 + i,
                res_true_sheet=0 if math.isnan(fs) else 10 + i,
                coverage=1.0,
            )
        rows.append(row)
    path = tmp / "results" / "external" / "0" / tool / "per_case.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False, na_rep="NA")
    return path


def test_tables_with_an_external_tool(tmp_path):
    f1 = {
        "CE": {PAIRS[0]: (0.5, 0.2), PAIRS[1]: (0.7, math.nan), PAIRS[2]: (0.6, 0.4)},
        "FL_DL": {PAIRS[0]: (0.6, 0.5), PAIRS[1]: (0.8, math.nan), PAIRS[2]: (0.5, 0.6)},
    }
    paths = [synthetic_per_case(tmp_path, "0", loss, v) for loss, v in f1.items()]
    for p, val in zip(paths, (0.40, 0.35), strict=True):  # CE has the better validation figure here
        df = pd.read_csv(p, sep="\t")
        df["best_val"] = val
        df.to_csv(p, sep="\t", index=False, na_rep="NA")
    tool = external_per_case(tmp_path, "Thresh", {PAIRS[0]: (0.3, 0.1), PAIRS[1]: None, PAIRS[2]: (0.4, 0.2)})
    out = tmp_path / "tables"
    tb.build_tables(paths, out, n_boot=50, seed=1, external=[tool])
    every = pd.read_csv(out / "table1.tsv", sep="\t")
    t1 = every[every["cases_of"].isna()].set_index("loss")
    assert list(t1.index) == ["CE", "FL_DL", "Thresh"]  # our five first, then the tools
    # The tool's row: its two scored cases, weighted as ours.
    assert t1.at["Thresh", "f1_helix"] == pytest.approx((0.3 * 100 + 0.4 * 200) / 300)
    assert t1.at["Thresh", "n_cases"] == 2 and math.isnan(t1.at["Thresh", "gamma"])
    assert list(t1["n_cases"]) == [3, 3, 2]
    # ...followed by our losses on the tool's two cases: the comparison on the same cases
    same = every[every["cases_of"] == "Thresh"].set_index("loss")
    assert list(same.index) == ["CE", "FL_DL"] and list(same["n_cases"]) == [2, 2]
    assert same.at["CE", "f1_helix"] == pytest.approx((0.5 * 100 + 0.6 * 200) / 300)
    md = (out / "table1.md").read_text()
    names = [r[0] for r in md_rows(md)]
    assert names[1:] == [
        "CE",
        "FL_DL",
        "Thresh (external)",
        "CE, on Thresh's cases",
        "FL_DL, on Thresh's cases",
    ]
    assert md_rows(md)[0][-1] == "cases" and [r[-1] for r in md_rows(md)][1:] == ["3", "3", "2", "2", "2"]
    assert f"Thresh: 1 of 3 cases left out ({PAIRS[1]}: missing (no {PAIRS[1]}_helix.mrc" in md
    assert "Paired tests of each tool against CE, our loss with the highest validation F1" in md
    t2 = pd.read_csv(out / "table2.tsv", sep="\t", keep_default_na=False, na_values=["NA"]).set_index(
        "pair_id"
    )
    assert t2.at[PAIRS[0], "Thresh_helix"] == pytest.approx(0.3) and math.isnan(
        t2.at[PAIRS[1], "Thresh_helix"]
    )
    assert t2.at["Weighted Average", "Thresh_helix"] == pytest.approx(t1.at["Thresh", "f1_helix"])
    assert t2.at["Weighted Average", "CE_helix"] == pytest.approx(t1.at["CE", "f1_helix"])  # ours unchanged
    st = pd.read_csv(out / "stats.tsv", sep="\t")
    v = st[(st["level"] == "voxel") & (st["class"] == "helix") & (st["loss"] == "Thresh")].iloc[0]
    assert v["vs_best_loss"] == "CE" and v["vs_best_n"] == 2
    assert v["vs_best_mean_diff"] == pytest.approx(((0.3 - 0.5) + (0.4 - 0.6)) / 2)
    assert st.loc[st["loss"] != "Thresh", "vs_best_loss"].isna().all()
    rows = md_rows((out / "stats.md").read_text())
    assert rows[0][-2:] == ["tool vs CE: Δ (mean, points)", "tool vs CE: Wilcoxon p"]
    assert ["3", "+3.3", "0.75", "NA", "NA"] in [
        r[-5:] for r in rows
    ]  # FL_DL vs CE; no tool columns for ours
    s1 = pd.read_csv(out / "tableS1.tsv", sep="\t")
    assert "Thresh" not in set(s1["loss"])  # scored on the main split only: not a cross-validation row
    # Without a validation figure the best loss is the best on the test cases.
    for p in paths:
        df = pd.read_csv(p, sep="\t")
        df["best_val"] = math.nan
        df.to_csv(p, sep="\t", index=False, na_rep="NA")
    tb.build_tables(paths, tmp_path / "t2", n_boot=0, external=[tool])
    st2 = pd.read_csv(tmp_path / "t2" / "stats.tsv", sep="\t")
    assert set(st2.loc[st2["loss"] == "Thresh", "vs_best_loss"]) == {"FL_DL"}
    # No tool: the tables as they were (no extra column, no footnote).
    tb.build_tables(paths, tmp_path / "none", n_boot=0)
    assert "external" not in (tmp_path / "none" / "table1.md").read_text()
    assert "vs_best_loss" not in pd.read_csv(tmp_path / "none" / "stats.tsv", sep="\t").columns
    # A tool named like one of our losses is refused.
    clash = external_per_case(tmp_path / "c", "CE", {PAIRS[0]: (0.3, 0.1)})
    with pytest.raises(ValueError, match="named like our losses"):
        tb.build_tables(paths, tmp_path / "clash", n_boot=0, external=[clash])


def test_snakemake_scores_an_external_tool_into_the_tables(tmp_path):
    """A copy of the workflow with stored results of two losses and a simple external tool's predictions
    (a density threshold, as probability maps on its own 0.8 A grid with NSTART origins; one test case
    without files): score_external, tables and figures run; the tool has a row in Table 1, columns in
    Table 2, a paired test against our best loss, and the missing case is in the footnote."""
    from test_score import threshold_tool

    overlay = (
        "results: results\nlogs: logs\ntrain:\n  splits: [0]\n  losses: [CE, FL_DL]\n"
        "evaluate:\n  bootstrap: 20\n  slice_cases: 1\nexternal:\n  tools: {Thresh: preds/thresh}\n"
    )
    wf = copy_workflow(tmp_path / "wf", overlay=overlay)
    proj = make_project(wf, PAIRS, losses=("CE", "FL_DL"))
    for loss in ("CE", "FL_DL"):
        d = wf / "results/eval/0" / loss
        ev.evaluate_split(
            proj["models"][loss], proj["split"], proj["dataset"], d / "per_case.tsv", d / "pred", device="cpu"
        )
    (wf / "results/train/0").mkdir(parents=True)
    pd.DataFrame(
        {"split": [0, 0], "loss": ["CE", "FL_DL"], "setting": ["lr0.001"] * 2, "chosen": [True] * 2,
         "checkpoint": [f"results/train/0/{loss}/lr0.001/checkpoint.pt" for loss in ("CE", "FL_DL")]}
    ).to_csv(wf / "results/train/0/selection.tsv", sep="\t", index=False)  # fmt: skip
    preds = wf / "preds" / "thresh"
    preds.mkdir(parents=True)
    for pid in PAIRS[:2]:  # the third test case has no prediction
        threshold_tool(wf / "results/dataset/pairs" / pid, preds, pid)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cfg = ["config/config.yaml", "config/demo.yaml", "config/test.yaml"]
    allowed = ("--allowed-rules", "score_external", "tables", "figures")
    run = run_snakemake(wf, *allowed, "--", "tables", "figures", configfiles=cfg, env=env)
    assert "score_external" in run.stderr
    pc = pd.read_csv(
        wf / "results/external/0/Thresh/per_case.tsv", sep="\t", keep_default_na=False, na_values=["NA"]
    ).set_index("pair_id")
    assert list(pc["status"]) == ["ok", "ok", "missing"] and pc["coverage"].iloc[:2].between(0.5, 1).all()
    t1 = pd.read_csv(wf / "results/tables/table1.tsv", sep="\t")
    assert list(t1.loc[t1["cases_of"] == "Thresh", "n_cases"]) == [2, 2]  # ours on the tool's cases
    t1 = t1[t1["cases_of"].isna()].set_index("loss")
    assert list(t1.index) == ["CE", "FL_DL", "Thresh"] and t1.at["Thresh", "n_cases"] == 2
    assert t1.at["Thresh", "f1_helix"] > 0.3  # the threshold finds the helix block
    md = (wf / "results/tables/table1.md").read_text()
    assert "Thresh (external)" in md and f"1 of 3 cases left out ({PAIRS[2]}: missing" in md
    t2 = pd.read_csv(wf / "results/tables/table2.tsv", sep="\t", keep_default_na=False, na_values=["NA"])
    assert {"Thresh_helix", "Thresh_sheet"} <= set(t2.columns)
    st = pd.read_csv(wf / "results/tables/stats.tsv", sep="\t")
    assert st.loc[st["loss"] == "Thresh", "vs_best_n"].eq(2).all()
    assert (wf / "results/figures/f1_by_loss.png").stat().st_size > 0
    # A new prediction file reruns the scoring (the rule's inputs are the folder's files).
    threshold_tool(wf / "results/dataset/pairs" / PAIRS[2], preds, PAIRS[2])
    dry = run_snakemake(wf, *allowed, "--", "tables", configfiles=cfg, dry_run=True, env=env)
    assert "score_external" in dry.stdout + dry.stderr, dry.stderr[-2000:]


def test_figures_one_colour_per_class_and_loss_true_case_counts_and_readable_legends(tmp_path):
    """Every figure draws a class in its one colour and a loss in its one colour (a tool in grey),
    names the losses as the tables do, gives each series its own case count (a tool covering
    fewer cases says so), keeps cases at one resolution apart, and labels the training curves
    with readable settings."""
    import matplotlib.colors as mcolors

    from cryosse.classes import COLOURS
    from cryosse.figures import f1_bar_figure, readable_setting, resolution_figure, training_figure
    from cryosse.loss_names import LOSS_COLOURS, TOOL_COLOURS
    from cryosse.statistics import read_eval_results

    f1 = {pid: (0.5 + 0.1 * i, 0.4) for i, pid in enumerate(PAIRS)}
    paths = [synthetic_per_case(tmp_path, "0", loss, f1) for loss in ("CE", "DL", "FL_DL")]
    tool = synthetic_per_case(tmp_path, "0", "ToolX", dict(list(f1.items())[:2]))
    main = read_eval_results([*paths, tool])
    main.loc[:, "resolution"] = 6.0  # every case at one resolution: only the dodge keeps them apart

    fig = f1_bar_figure(main, 20, 0.95, 0)
    bars = {mcolors.to_hex(p.get_facecolor()) for p in fig.axes[0].patches}
    assert bars == {COLOURS["helix"], COLOURS["sheet"]}
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["CE\n(3 cases)", "DL\n(3 cases)", "FL_DL\n(3 cases)", "ToolX\n(2 cases)"]

    fig = resolution_figure(main)
    ax = fig.axes[0]
    colours = {c.get_label(): mcolors.to_hex(c.get_facecolor()[0]) for c in ax.collections}
    assert colours == {"CE (3 cases)": LOSS_COLOURS["CE"], "DL (3 cases)": LOSS_COLOURS["DL"],
                       "FL_DL (3 cases)": LOSS_COLOURS["FL_DL"], "ToolX (2 cases)": TOOL_COLOURS[0]}  # fmt: skip
    xs = [tuple(np.unique(c.get_offsets()[:, 0])) for c in ax.collections]
    assert all(len(x) == 1 for x in xs) and len({x[0] for x in xs}) == 4  # one x per series, all apart

    hist = tmp_path / "history.tsv"
    pd.DataFrame({"epoch": [1, 2], "train_loss": [2.0, 1.0], "val_mean": [0.2, 0.3]}).to_csv(
        hist, sep="\t", index=False
    )
    fig = training_figure({"FL_DL": hist}, {"FL_DL": "lr0.0001_g2"})
    (line,) = fig.axes[1].get_lines()
    assert (
        line.get_label() == "FL_DL (lr 0.0001, γ 2)"
        and mcolors.to_hex(line.get_color()) == LOSS_COLOURS["FL_DL"]
    )
    assert "first epoch" in fig.axes[0].get_ylabel()
    assert readable_setting("lr0.001_g5_w1-2") == "lr 0.001, γ 5, weights 1:2"


def test_slices_draw_labels_over_the_density_and_mark_beyond_the_box(tmp_path):
    import matplotlib.colors as mcolors

    from cryosse.figures import OUTSIDE, slices_figure

    proj = make_project(tmp_path, PAIRS[:1], losses=("CE",))
    d = tmp_path / "results/eval/0/CE"
    ev.evaluate_split(
        proj["models"]["CE"], proj["split"], proj["dataset"], d / "per_case.tsv", d / "pred", device="cpu"
    )
    main = pd.read_csv(d / "per_case.tsv", sep="\t")
    ds = pd.read_csv(proj["dataset"], sep="\t")
    fig = slices_figure(main, tmp_path / "results/eval", 1, dict(zip(ds["pair_id"], ds["path"], strict=True)))
    density, truth, pred = fig.axes[:3]
    assert (
        len(density.images) == 1 and len(truth.images) == 2 and len(pred.images) == 2
    )  # labels over the map
    assert all(mcolors.to_hex(ax.get_facecolor()) == OUTSIDE for ax in (density, truth, pred))
    assert OUTSIDE not in {"#ffffff", "#000000"}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["helix", "sheet", "beyond the box"]
