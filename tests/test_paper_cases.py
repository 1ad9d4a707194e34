"""The paper's 62 test cases (issue 9): the table against the paper's text, and split.test = paper."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import SHARED
from cryosse import splits as S
from cryosse.ids import pair_id

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "config" / "paper_test_cases.tsv"
SEED = SHARED / "seed" / "000_17c940c82d82d48b.txt"
ROW = re.compile(r"^(\d{4})_([0-9A-Z]{4})_(\S+) \(([\d.]+)\) (\d+)/(\d+)/(\d+) ((?:\S+ ){9}\S+)$")
F1_COLUMNS = [
    "CE_helix",
    "CE_sheet",
    "FL_helix",
    "FL_sheet",
    "DL_helix",
    "DL_sheet",
    "FL_DL_helix",
    "FL_DL_sheet",
    "FL_DL_residue_helix",
    "FL_DL_residue_sheet",
]


def _cases() -> pd.DataFrame:
    return S.read_table(CASES)


def test_case_table_header_names_its_source():
    first = CASES.read_text().splitlines()[0]
    assert first.startswith("# source:") and "Table 2" in first


def test_case_table_matches_the_paper_text():
    if not SEED.is_file():
        pytest.skip(f"paper text not found at {SEED}")
    text = SEED.read_text()
    table = text[text.index("F1-score evaluation of the detected helices") : text.index("Weighted Average")]
    rows = [m.groups() for m in map(ROW.match, table.splitlines()) if m]
    assert len(rows) == 62
    df = _cases()
    assert len(df) == 62
    for (num, pdb, chain, res, h, s, o, f1s), rec in zip(rows, df.to_dict("records"), strict=True):
        assert (rec["emdb_id"], rec["pdb_id"], rec["chain"]) == (f"EMD-{num}", pdb, chain)
        assert float(rec["resolution"]) == float(res)
        assert (int(rec["ca_helix"]), int(rec["ca_sheet"]), int(rec["ca_other"])) == (int(h), int(s), int(o))
        got = [rec[c] for c in F1_COLUMNS]
        want = f1s.split()
        assert len(want) == 10
        for g, w in zip(got, want, strict=True):
            assert (g == "NA" and w == "NA") or float(g) == float(w), (num, pdb, chain, g, w)
    # The paper's bottom row: 20 724 / 5735 / 18 647 CA in the 62 centre boxes.
    totals = [df[c].astype(int).sum() for c in ("ca_helix", "ca_sheet", "ca_other")]
    assert totals == [20724, 5735, 18647]
    assert re.search(r"Weighted Average 20\s*724/5735/18\s*647", text)


def test_case_ids_keep_two_letter_and_mixed_case_chains():
    ids = [pair_id(r["emdb_id"], r["pdb_id"], r["chain"]) for r in _cases().to_dict("records")]
    assert "1657_4V5H_AE" in ids and "6452_3JBO_Ae" in ids and "9534_5GPN_Ae" in ids
    assert len(set(ids)) == 62
    assert "0090_6GYK_M" in ids  # leading zeros kept: the case id is the pair id, as the paper prints it
    assert pair_id("emd-0090", " 6gyk", "M") == "0090_6GYK_M"


def _fake_inputs(tmp_path: Path):
    """A dataset with two paper cases among unrelated pairs, plus rejection tables."""
    pairs = {
        "1657_4V5H_AE": ("EMD-1657", "4V5H", "AE"),
        "6452_3JBO_Ae": ("EMD-6452", "3JBO", "Ae"),
        "6452_3JBO_AE": ("EMD-6452", "3JBO", "AE"),  # same letters, other case: not a paper case
    }
    for i in range(20):
        pairs[f"{7000 + i}_9X{i:02d}_A"] = (f"EMD-{7000 + i}", f"9X{i:02d}", "A")
    rows = [
        {
            "pair_id": p,
            "emdb_id": e,
            "pdb_id": d,
            "chain": c,
            "resolution": "6.0",
            "bin": str(1 + i % 3),
            "sequence": "MKV" * 20,
            "path": f"pairs/{p}",
        }
        for i, (p, (e, d, c)) in enumerate(sorted(pairs.items()))
    ]
    dataset = tmp_path / "dataset.tsv"
    pd.DataFrame(rows).iloc[::-1].to_csv(dataset, sep="\t", index=False)
    clusters = tmp_path / "clusters.tsv"
    pd.DataFrame({"pair_id": sorted(pairs), "cluster": sorted(pairs), "cluster_size": 1}).to_csv(
        clusters, sep="\t", index=False
    )
    entries = tmp_path / "entries.tsv"
    entries.write_text(
        "# entry table\nemdb_id\tpdb_id\tchain\n"
        "EMD-1657\t4V5H\t\nEMD-6452\t3JBO\t\nEMD-0090\t6GYK\t\nEMD-2594\t4CR2\tS\n"
        "EMD-3491\t5MDX\t\nEMD-8518\t5U8S\t\n" + "".join(f"EMD-{7000 + i}\t9X{i:02d}\t\n" for i in range(20))
    )
    drej = tmp_path / "dataset_rejected.tsv"
    drej.write_text(
        "stage\tid\treason\n"
        "dataset\t1657_4V5H_AM\tquality bin 4 (cylinder score 0.31)\n"
        "acquire\tEMD-0090\tmap download failed: HTTP 404\n"
        "dataset\tEMD-3491\tno protein chain to use\n"
    )
    arej = tmp_path / "acquire_rejected.tsv"
    arej.write_text("stage\tid\treason\nacquire\tEMD-0090\tmap download failed: HTTP 404\n")
    return dataset, clusters, entries, drej, arej


def test_paper_split_uses_exactly_the_paper_cases_present(tmp_path):
    dataset, clusters, entries, drej, arej = _fake_inputs(tmp_path)
    params = S.SplitParams(seed=3, test="paper", n_cv=2, cv_test_size=3, cv_val_size=2)
    out = [tmp_path / "out" / f"split_{k}.tsv" for k in range(3)]
    paper_out = tmp_path / "out" / "paper_cases.tsv"
    S.make_splits(dataset, clusters, out, params, paper_out, CASES, entries, drej, arej)
    s0 = S.read_table(out[0])
    assert sorted(s0.loc[s0["role"] == "test", "pair_id"]) == ["1657_4V5H_AE", "6452_3JBO_Ae"]
    assert (s0["role"] == "val").sum() >= 1
    assert "6452_3JBO_AE" in set(s0["pair_id"])  # case-sensitive chain: AE is another chain

    st = S.read_table(paper_out)
    assert len(st) == 62 and list(st.columns) == S.PAPER_COLUMNS
    used = st[st["status"] == "used"]
    assert sorted(used["case_id"]) == ["1657_4V5H_AE", "6452_3JBO_Ae"]
    assert set(used["role"]) == {"test"} and list(used["pair_id"]) == list(used["case_id"])
    un = st[st["status"] == "unavailable"].set_index("case_id")["reason"]
    assert len(un) == 60 and (un != "").all()
    assert un["1657_4V5H_AM"] == "chain filtered out: quality bin 4 (cylinder score 0.31)"
    assert un["0090_6GYK_M"] == "entry rejected at acquire: map download failed: HTTP 404"
    assert un["3491_5MDX_H"] == "entry rejected at dataset: no protein chain to use"
    assert un["2594_4CR2_3"].startswith("chain 3 not selected in the entry table")
    assert un["2594_4CR2_S"].startswith("entry in the entry table but no pair")
    assert un["6452_3JBO_AH"].startswith("chain AH not among the entry's kept chains")
    assert un["8128_5J7Y_K"] == "entry not in the entry table"
    assert (un == "entry not in the entry table").sum() == 49  # 60 minus the 11 of the 6 listed entries

    # Same inputs -> same bytes, whatever the row order.
    again = [tmp_path / "again" / f"split_{k}.tsv" for k in range(3)]
    S.make_splits(dataset, clusters, again, params, tmp_path / "again" / "p.tsv", CASES, entries, drej, arej)
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(out, again, strict=True))
    assert paper_out.read_bytes() == (tmp_path / "again" / "p.tsv").read_bytes()


def test_paper_split_without_any_case_is_a_clear_error(tmp_path):
    dataset, clusters, entries, drej, arej = _fake_inputs(tmp_path)
    df = S.read_table(dataset)
    df = df[~df["pair_id"].isin(["1657_4V5H_AE", "6452_3JBO_Ae"])]
    df.to_csv(dataset, sep="\t", index=False)
    cl = S.read_table(clusters)
    cl[cl["pair_id"].isin(df["pair_id"])].to_csv(clusters, sep="\t", index=False)
    params = S.SplitParams(seed=3, test="paper", n_cv=0)
    with pytest.raises(ValueError, match="none of the 62 paper cases"):
        S.make_splits(
            dataset, clusters, [tmp_path / "s0.tsv"], params, tmp_path / "p.tsv", CASES, entries, drej, arej
        )


def test_paper_split_keeps_the_test_cases_relatives_out_of_training_and_validation(tmp_path):
    dataset, clusters, entries, drej, arej = _fake_inputs(tmp_path)
    cl = S.read_table(clusters)
    # three pairs of other maps share a sequence cluster with a test case (35% identity rule)
    related = ["7001_9X01_A", "7002_9X02_A", "7003_9X03_A"]
    cl.loc[cl["pair_id"].isin(related), "cluster"] = "1657_4V5H_AE"
    cl.to_csv(clusters, sep="\t", index=False)
    assert (
        S.related_to(["1657_4V5H_AE", "6452_3JBO_Ae"], dict(zip(cl["pair_id"], cl["cluster"], strict=True)))
        == related
    )
    params = S.SplitParams(seed=3, test="paper", n_cv=1, cv_test_size=3, cv_val_size=2)
    out = [tmp_path / "out" / f"split_{k}.tsv" for k in range(2)]
    S.make_splits(dataset, clusters, out, params, tmp_path / "out" / "paper.tsv", CASES, entries, drej, arej)
    s0 = S.read_table(out[0])
    assert not set(related) & set(s0["pair_id"])  # neither train nor validation (nor test)
    assert (s0["role"] == "train").sum() >= 1 and (s0["role"] == "val").sum() >= 1
    assert set(related) <= set(S.read_table(out[1])["pair_id"])  # cross-validation splits keep every pair
    # random test sets keep every pair
    params = S.SplitParams(seed=3, test="random", n_cv=0)
    S.make_splits(dataset, clusters, out[:1], params, None, CASES, entries, drej, arej)
    assert set(related) <= set(S.read_table(out[0])["pair_id"])
