"""Splits and the leakage audit (SPEC 6, issue 4): pure logic, MMseqs2 on real families, the CLI."""

from __future__ import annotations

import dataclasses
import gzip
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryosse import splits as S

THESEUS = Path("/usr/share/doc/theseus/examples")
# Real chains of three families (Debian theseus-examples): lactate and malate dehydrogenases
# (three subfamilies that share < 35% identity), trypsin-like proteases, cytochromes c.
FAMILIES = {
    "ldh": ["ldh/1a5z_A", "ldh/1ldm_A", "ldh/6ldh_A"],
    "mdh": ["ldh/1b8p_A", "ldh/1bmd_A", "ldh/1civ_A"],
    "mdh2": ["ldh/1emd_A", "ldh/1mld_A"],
    "tryp": ["trypsins/1A0J_A", "trypsins/1AMH_A", "trypsins/1EQ9_A", "trypsins/1F7Z_A"],
    "cyt": ["cytochromes/d1kyow_", "cytochromes/d1lfma_", "cytochromes/d1m60a_", "cytochromes/d1u74d_"],
}


def _mmseqs_available() -> bool:
    try:
        S.find_mmseqs()
    except RuntimeError:
        return False
    return True


needs_mmseqs = pytest.mark.skipif(not _mmseqs_available(), reason="no MMseqs2 executable")
needs_theseus = pytest.mark.skipif(not THESEUS.is_dir(), reason="Debian theseus-examples not installed")


def _pdb_sequence(path: Path) -> str:
    import gemmi

    # Some of these files carry junk in the charge columns (79-80); the coordinates are fine.
    text = "\n".join(line[:78] for line in gzip.open(path, "rt").read().splitlines())
    st = gemmi.read_pdb_string(text)
    st.setup_entities()
    return gemmi.one_letter_code([r.name for r in st[0][0].get_polymer()])


@pytest.fixture(scope="module")
def families() -> dict[str, str]:
    if not THESEUS.is_dir():
        pytest.skip("Debian theseus-examples not installed")
    out = {}
    for fam, files in FAMILIES.items():
        for f in files:
            seq = _pdb_sequence(THESEUS / f"{f}.pdb.gz")
            assert len(seq) > 80, f
            out[f"{fam}-{Path(f).name}"] = seq
    return out


def _random_protein(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(n))


def _mutate(rng: random.Random, seq: str, frac: float) -> str:
    s = list(seq)
    for i in rng.sample(range(len(s)), int(frac * len(s))):
        s[i] = rng.choice("ACDEFGHIKLMNPQRSTVWY")
    return "".join(s)


# --------------------------------------------------------------------------- pure logic
def test_read_table_keeps_na_chain_and_skips_comments(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("# source: somewhere\npair_id\tchain\n1_AAAA_NA\tNA\n2_BBBB_Ae\tAe\n")
    df = S.read_table(p)
    assert df["chain"].tolist() == ["NA", "Ae"]


def test_single_linkage_is_transitive():
    comp = S.single_linkage(["a", "b", "c", "d"], [("a", "b"), ("c", "b")])
    assert comp["a"] == comp["b"] == comp["c"] != comp["d"]


def test_covered_follows_mmseqs_cov_modes():
    hits = pd.DataFrame(
        {"qcov": [0.9, 0.9, 0.5], "tcov": [0.85, 0.3, 0.95], "qlen": [100, 100, 300], "tlen": [110, 300, 100]}
    )
    assert S.covered(hits, 0.8, 0).tolist() == [True, False, False]
    # cov-mode 1 (target covered) applied both ways: either sequence's coverage suffices.
    assert S.covered(hits, 0.8, 1).tolist() == [True, True, True]
    assert S.covered(hits, 0.8, 5).tolist() == [True, False, False]


@pytest.mark.parametrize(
    "n,expected", [(1355, (1246, 47, 62)), (30, (28, 1, 1)), (100, (92, 3, 5)), (3, (1, 1, 1))]
)
def test_role_counts_scale_the_paper_fractions(n, expected):
    assert S.role_counts(n, (1246, 47, 62)) == expected


def test_role_counts_too_few_pairs():
    with pytest.raises(ValueError, match="too few|cannot give"):
        S.role_counts(2, (1246, 47, 62))


def _pairs(n_per_bin=(40, 120, 90), seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for b, n in enumerate(n_per_bin, start=1):
        for i in range(n):
            rows.append({"pair_id": f"{1000 + len(rows)}_{b}X{i:02d}_A", "bin": str(b)})
    df = pd.DataFrame(rows)
    return df.iloc[rng.permutation(len(df))].reset_index(drop=True)


def test_main_split_counts_and_bin_stratification():
    pairs = _pairs()
    role = S.main_split(pairs, (1246, 47, 62), seed=42)
    roles = pd.Series(role)
    n = len(pairs)
    assert (roles == "test").sum() == round(n * 62 / 1355)
    assert (roles == "val").sum() == max(1, round(n * 47 / 1355))
    # stratified: each bin's share of the test set is within one case of its share of the data
    bins = dict(zip(pairs["pair_id"], pairs["bin"], strict=True))
    test = [bins[p] for p, r in role.items() if r == "test"]
    n_test = len(test)
    for b, nb in pairs["bin"].value_counts().items():
        assert abs(test.count(b) - n_test * nb / n) <= 1.0


def test_main_split_independent_of_row_order():
    pairs = _pairs()
    a = S.main_split(pairs, (1246, 47, 62), seed=7)
    b = S.main_split(pairs.iloc[::-1], (1246, 47, 62), seed=7)
    assert a == b
    c = S.main_split(pairs, (1246, 47, 62), seed=8)
    assert a != c


def _clusters(sizes):
    rows = []
    for ci, s in enumerate(sizes):
        rep = f"{ci:03d}_C_A"
        rows += [(f"{ci:03d}_C_{chr(65 + j)}", rep, s) for j in range(s)]
    return pd.DataFrame(rows, columns=S.CLUSTER_COLUMNS)


def test_cv_splits_disjoint_tests_small_clusters_and_no_shared_cluster():
    cl = _clusters([1] * 20 + [2] * 10 + [3] * 5 + [4, 6, 10])
    size = dict(zip(cl["pair_id"], cl["cluster_size"], strict=True))
    cluster = dict(zip(cl["pair_id"], cl["cluster"], strict=True))
    out = S.cv_splits(cl, n_cv=4, max_cluster_size=3, test_size=8, val_size=5, seed=42)
    assert len(out) == 4
    tests = [{p for p, r in role.items() if r == "test"} for role in out]
    for i in range(4):
        assert len(tests[i]) == 8
        for j in range(i):
            assert not tests[i] & tests[j]
    for role in out:
        held = [p for p, r in role.items() if r != "train"]
        assert all(size[p] <= 3 for p in held)
        assert 1 <= sum(r == "val" for r in role.values()) <= 5
        train_clusters = {cluster[p] for p, r in role.items() if r == "train"}
        assert not train_clusters & {cluster[p] for p in held}


def test_cv_splits_too_few_clusters_says_how_many():
    cl = _clusters([1, 2, 5, 7])
    with pytest.raises(ValueError, match=r"need at least 4 sequence clusters.*has 2 such"):
        S.cv_splits(cl, n_cv=4, max_cluster_size=3, test_size=62, val_size=47, seed=1)


def test_cv_splits_cap_test_size_by_what_fits(caplog):
    cl = _clusters([1] * 10 + [8])
    with caplog.at_level("WARNING", logger="cryosse.splits"):
        out = S.cv_splits(cl, n_cv=4, max_cluster_size=3, test_size=62, val_size=47, seed=3)
    assert [sum(r == "test" for r in o.values()) for o in out] == [2, 2, 2, 2]
    # the caps are said, not silent
    assert "test sets of 2 case(s), not split.cv_test_size 62" in caplog.text
    assert "validation case(s), not split.cv_val_size 47" in caplog.text


def test_a_dataset_too_small_for_its_splits_stops(tmp_path):
    cl = _clusters([1, 1, 1, 1])
    cl["pair_id"] = [f"{1000 + i}_{p.split('_')[0]}X_A" for i, p in enumerate(cl["pair_id"])]
    cl["cluster"] = cl["pair_id"]
    cl.to_csv(tmp_path / "clusters.tsv", sep="\t", index=False)
    _write_dataset(tmp_path / "d.tsv", dict.fromkeys(cl["pair_id"], "MKV" * 20))
    paths = [tmp_path / f"split_{k}.tsv" for k in range(3)]
    params = S.SplitParams(seed=1, n_cv=2, cv_test_size=1, cv_val_size=1, fractions=(50, 25, 25))
    with pytest.raises(
        ValueError, match=r"4 pairs are too few.*split 0 trains on 2 pair\(s\).*min_train_pairs \(5\)"
    ):
        S.make_splits(tmp_path / "d.tsv", tmp_path / "clusters.tsv", paths, params)
    assert not any(p.exists() for p in paths)  # nothing half-made
    S.make_splits(tmp_path / "d.tsv", tmp_path / "clusters.tsv", paths,
                  dataclasses.replace(params, min_train_pairs=2))  # fmt: skip
    assert all(p.exists() for p in paths)


def _write_dataset(path: Path, records: dict[str, str], bins=None, extra=None) -> pd.DataFrame:
    rows = []
    for i, (pid, seq) in enumerate(sorted(records.items())):
        emdb, pdb, chain = pid.split("_", 2)
        rows.append(
            {
                "pair_id": pid,
                "emdb_id": f"EMD-{emdb}",
                "pdb_id": pdb,
                "chain": chain,
                "resolution": "6.0",
                "bin": str((bins or {}).get(pid, 1 + i % 3)),
                "sequence": seq,
                "path": f"pairs/{pid}",
            }
        )
    df = pd.DataFrame(rows)
    df.to_csv(path, sep="\t", index=False)
    return df


def test_make_splits_byte_identical_and_order_independent(tmp_path):
    cl = _clusters([1] * 24 + [2] * 6 + [5])
    cl["pair_id"] = [f"{1000 + i}_{p.split('_')[0]}X_A" for i, p in enumerate(cl["pair_id"])]
    rep = {}
    for p, c in zip(cl["pair_id"], cl["cluster"], strict=True):
        rep.setdefault(c, p)
    cl["cluster"] = [rep[c] for c in cl["cluster"]]
    clusters = tmp_path / "clusters.tsv"
    cl.to_csv(clusters, sep="\t", index=False)
    ds = _write_dataset(tmp_path / "d.tsv", dict.fromkeys(cl["pair_id"], "MKV" * 20))
    ds.iloc[::-1].to_csv(tmp_path / "d_rev.tsv", sep="\t", index=False)
    cl.iloc[::-1].to_csv(tmp_path / "c_rev.tsv", sep="\t", index=False)
    params = S.SplitParams(seed=11, n_cv=3, cv_test_size=4, cv_val_size=3)
    a = [tmp_path / "a" / f"split_{k}.tsv" for k in range(4)]
    b = [tmp_path / "b" / f"split_{k}.tsv" for k in range(4)]
    S.make_splits(tmp_path / "d.tsv", clusters, a, params)
    S.make_splits(tmp_path / "d_rev.tsv", tmp_path / "c_rev.tsv", b, params)
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes()
    df = pd.read_csv(a[0], sep="\t", dtype=str)
    assert list(df.columns) == ["pair_id", "role", "cluster"]
    assert df["pair_id"].tolist() == sorted(df["pair_id"])
    assert set(df["role"]) == {"train", "val", "test"}


# --------------------------------------------------------------------------- MMseqs2
@needs_mmseqs
@needs_theseus
def test_related_chains_land_in_one_cluster(families):
    rng = random.Random(5)
    records = dict(families)
    records.update({f"rnd-{i}": _random_protein(rng, 150) for i in range(4)})
    cl = S.cluster_sequences(records, S.SearchParams(threads=1))
    cluster = dict(zip(cl["pair_id"], cl["cluster"], strict=True))
    fam_of = {p: p.split("-")[0] for p in records}
    for fam in FAMILIES:
        labels = {cluster[p] for p in records if fam_of[p] == fam}
        assert len(labels) == 1, f"{fam} split over {labels}"
    # ... and nothing else: LDH and the two MDH subfamilies (< 35% identity) stay apart.
    assert cl["cluster"].nunique() == len(FAMILIES) + 4
    size = dict(zip(cl["pair_id"], cl["cluster_size"], strict=True))
    assert size["tryp-1A0J_A"] == 4 and size["rnd-0"] == 1


@needs_mmseqs
@needs_theseus
def test_audit_passes_good_split_and_catches_leak(tmp_path, families):
    records = dict(families)
    fasta = tmp_path / "seq.fasta"
    S.write_fasta(fasta, records)
    fam_of = {p: p.split("-")[0] for p in records}

    def write_split(path, test_fams, val_fams, leak=False):
        rows = []
        for p in sorted(records):
            role = "test" if fam_of[p] in test_fams else "val" if fam_of[p] in val_fams else "train"
            rows.append((p, role, fam_of[p]))
        df = pd.DataFrame(rows, columns=S.SPLIT_COLUMNS)
        if leak:  # one trypsin in test, its relatives in training
            df.loc[df["pair_id"] == "tryp-1AMH_A", "role"] = "test"
        df.to_csv(path, sep="\t", index=False)
        return path

    good0 = write_split(tmp_path / "s0.tsv", {"cyt"}, {"mdh2"})
    good1 = write_split(tmp_path / "s1.tsv", {"mdh"}, {"cyt"})
    leaky1 = write_split(tmp_path / "s1_leak.tsv", {"mdh"}, {"cyt"}, leak=True)
    # Split 0 (the random main split) is reported, not enforced: a leak there passes.
    cands = [leaky1, good1]
    pub = [tmp_path / "pub" / "split_0.tsv", tmp_path / "pub" / "split_1.tsv"]
    audit = S.audit_splits(
        fasta, cands, tmp_path / "a.tsv", tmp_path / "a.md", S.SearchParams(), enforce=[1], publish=pub
    )
    one = audit[audit["split"] == 1]
    assert not one["leak"].any() and one["max_identity"].max() < 0.35
    assert len(one) == 3 + 4  # every val and test pair of split 1
    zero = audit[audit["split"] == 0]
    assert zero["leak"].sum() == 1 and not zero["enforced"].any()
    assert pub[1].read_bytes() == good1.read_bytes() and pub[0].read_bytes() == leaky1.read_bytes()
    md = (tmp_path / "a.md").read_text()
    assert "| 1 | cross-validation |" in md and "| 0 | main (random) |" in md

    pub2 = [tmp_path / "pub2" / "split_0.tsv", tmp_path / "pub2" / "split_1.tsv"]
    with pytest.raises(RuntimeError, match=r"split 1: 1 pair\(s\) >= 0.35 identity.*tryp-1AMH_A \(test\)"):
        S.audit_splits(
            fasta,
            [good0, leaky1],
            tmp_path / "b.tsv",
            tmp_path / "b.md",
            S.SearchParams(),
            enforce=[1],
            publish=pub2,
        )
    assert not pub2[0].exists() and not pub2[1].exists()
    rep = pd.read_csv(tmp_path / "b.tsv", sep="\t", dtype=str)
    row = rep[(rep["split"] == "1") & (rep["pair_id"] == "tryp-1AMH_A")].iloc[0]
    assert row["nearest_train"].startswith("tryp-") and float(row["max_identity"]) >= 0.35
    assert row["leak"] == "True" and row["enforced"] == "True"
    assert "tryp-1AMH_A" in (tmp_path / "b.md").read_text()


@needs_mmseqs
def test_pipeline_on_a_small_dataset_via_cli(tmp_path):
    """cluster -> make-splits -> audit through `cryosse`, with mixed-case two-letter chains."""
    from cryosse.cli import main

    rng = random.Random(11)
    records = {}
    for i in range(22):  # unrelated chains: singleton clusters
        records[f"{9000 + i}_{i % 10}AB{chr(65 + i)}_{'Ae' if i % 2 else 'A'}"] = _random_protein(rng, 120)
    base = _random_protein(rng, 140)
    for j, chain in enumerate(["AE", "Ae", "B"]):  # one family of three: related, one cluster
        records[f"9100_7XY{j}_{chain}"] = _mutate(rng, base, 0.2)
    ds = tmp_path / "dataset.tsv"
    _write_dataset(ds, {**records, "9200_9ZZZ_A": ""})  # no sequence: left out, with a warning
    out = tmp_path / "splits"
    assert (
        main(
            [
                "cluster",
                "--dataset",
                str(ds),
                "--fasta",
                str(out / "seq.fasta"),
                "--out",
                str(out / "clusters.tsv"),
            ]
        )
        == 0
    )
    cl = S.read_table(out / "clusters.tsv")
    fam = cl[cl["pair_id"].str.startswith("9100_")]
    assert fam["cluster"].nunique() == 1 and set(fam["cluster_size"]) == {"3"}
    assert set(fam["pair_id"]) == {"9100_7XY0_AE", "9100_7XY1_Ae", "9100_7XY2_B"}
    assert (
        main(
            [
                "make-splits",
                "--dataset",
                str(ds),
                "--clusters",
                str(out / "clusters.tsv"),
                "--out-dir",
                str(out),
                "--fractions",
                "70",
                "10",
                "20",
                "--n-cv",
                "4",
                "--cv-test-size",
                "3",
                "--cv-val-size",
                "2",
            ]
        )
        == 0
    )
    paths = [str(out / f"split_{k}.tsv") for k in range(5)]
    assert (
        main(
            [
                "audit",
                "--fasta",
                str(out / "seq.fasta"),
                "--splits",
                *paths,
                "--out-tsv",
                str(out / "audit.tsv"),
                "--out-md",
                str(out / "audit.md"),
            ]
        )
        == 0
    )
    s0 = S.read_table(out / "split_0.tsv")
    assert set(s0["pair_id"]) == set(records) == set(S.read_fasta(out / "seq.fasta"))
    # too many CV splits for this dataset: a clear error from the CLI (exit code 1)
    assert (
        main(
            [
                "make-splits",
                "--dataset",
                str(ds),
                "--clusters",
                str(out / "clusters.tsv"),
                "--out-dir",
                str(tmp_path / "x"),
                "--n-cv",
                "30",
            ]
        )
        == 1
    )


def test_missing_mmseqs_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("CRYOSSE_MMSEQS", "/nonexistent/mmseqs")
    with pytest.raises(RuntimeError, match="CRYOSSE_MMSEQS"):
        S.find_mmseqs()


def test_dataset_errors_name_the_file(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("pair_id\temdb_id\tpdb_id\tchain\tbin\n1_A_A\tEMD-1\tAAAA\tA\t1\n")
    with pytest.raises(ValueError, match=r"d.tsv.*sequence"):
        S.load_dataset(p)
    p.write_text(
        "pair_id\temdb_id\tpdb_id\tchain\tbin\tsequence\n1_A_A\tEMD-1\tAAAA\tA\t1\tMK\n"
        "1_A_A\tEMD-1\tAAAA\tA\t1\tMK\n"
    )
    with pytest.raises(ValueError, match="listed twice"):
        S.load_dataset(p)


@needs_mmseqs
def test_a_domain_of_a_longer_training_chain_is_related(tmp_path):
    """Identity >= 0.35 over >= 80% of the SHORTER sequence: a chain that is one domain of a
    two-domain training chain must not sit in a cross-validation test set."""
    from cryosse.dataset.structure import read_model

    demo = Path(__file__).resolve().parents[1] / "data" / "demo_structures"
    a, b, c = (read_model(demo / f"{n}.cif.gz") for n in ("2XDG", "1KYN", "3A4R"))
    dom1, dom2, other = (
        a.sequence(a.chain_order[0]),
        b.sequence(b.chain_order[0]),
        c.sequence(c.chain_order[0]),
    )
    records = {"two_domains": dom1 + dom2, "domain": dom1, "other": other}
    hits = S.similar(S.mmseqs_search(records, records, S.SearchParams()), S.SearchParams())
    assert {("domain", "two_domains"), ("two_domains", "domain")} <= set(
        zip(hits["query"], hits["target"], strict=True)
    )
    both = S.SearchParams(cov_mode=0)  # the old rule: both covered, the domain slipped through
    assert S.similar(S.mmseqs_search(records, records, both), both).empty
    fasta = tmp_path / "s.fasta"
    S.write_fasta(fasta, records)
    split = tmp_path / "split_1.tsv"
    pd.DataFrame([("domain", "test", "c1"), ("other", "val", "c2"), ("two_domains", "train", "c3")],
                 columns=S.SPLIT_COLUMNS).to_csv(split, sep="\t", index=False)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"split 1: 1 pair\(s\) >= 0.35 identity.*domain \(test\)"):
        S.audit_splits(fasta, [split, split], tmp_path / "a.tsv", tmp_path / "a.md", S.SearchParams(), enforce=[1],
                       publish=[tmp_path / "p0.tsv", tmp_path / "p1.tsv"])  # fmt: skip


# ---------------------------------------------------------------- space: chains of one map (issue 19)


def _entry_dataset(tmp_path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Entry EMD-1 holds four unrelated chains packed together (each one's centre box inside its
    neighbours' boxes); entries EMD-2..EMD-13 one chain each. Clusters: one per chain."""
    from cryosse.io import write_json

    rows, cluster_of = [], {}
    pid_n = 0
    for e in range(1, 14):
        for c in "ABCD" if e == 1 else "A":
            pid = f"{e}_{e:04d}_{c}"
            lo = np.array([10.0 * "ABCD".index(c), 0, 0])  # EMD-1's chains 10 A apart: boxes overlap
            folder = tmp_path / "pairs" / pid
            folder.mkdir(parents=True)
            write_json(folder / "record.json", {"box": {"lower_xyz": (lo - 17).tolist(), "upper_xyz": (lo + 47).tolist()},
                                                "centre_box": {"lower_xyz": lo.tolist(), "upper_xyz": (lo + 30).tolist()}})  # fmt: skip
            seq = "".join(
                np.random.default_rng(pid_n).choice(list("ACDEFGHIKLMNPQRSTVWY"), 80)
            )  # unrelated chains
            rows.append({"pair_id": pid, "emdb_id": f"EMD-{e}", "pdb_id": f"{e:04d}", "chain": c, "bin": 1 + pid_n % 3,
                         "path": str(folder), "sequence": seq})  # fmt: skip
            cluster_of[pid] = f"c{pid_n}"
            pid_n += 1
    return pd.DataFrame(rows), cluster_of


def test_a_map_is_never_on_both_sides(tmp_path):
    from cryosse.space import box_overlaps, entry_groups, read_boxes

    ds, cluster_of = _entry_dataset(tmp_path)
    entry_of = dict(zip(ds["pair_id"], ds["emdb_id"], strict=True))
    groups = entry_groups(cluster_of, entry_of)
    assert len({groups[p] for p in ds["pair_id"] if p.startswith("1_")}) == 1  # one map, one group
    for seed in range(5):
        role = S.main_split(ds, (10, 2, 3), seed, group_of=entry_of)
        assert len({role[p] for p in ds["pair_id"] if p.startswith("1_")}) == 1
        assert set(role.values()) == {"train", "val", "test"}
    pairwise = S.main_split(ds, (10, 2, 3), 0)  # the paper's pair-level draw can split EMD-1
    assert any(len({S.main_split(ds, (10, 2, 3), s)[p] for p in ds["pair_id"] if p.startswith("1_")}) > 1
               for s in range(20)) and pairwise  # fmt: skip
    clusters = pd.DataFrame({"pair_id": list(cluster_of), "cluster": [groups[p] for p in cluster_of]})
    for role in S.cv_splits(clusters, 2, 4, 3, 2, seed=1):
        assert len({role[p] for p in ds["pair_id"] if p.startswith("1_")}) == 1
    boxes = read_boxes(ds)
    split = pd.DataFrame({"pair_id": ds["pair_id"], "role": ["test" if p == "1_0001_B" else "train" for p in ds["pair_id"]],
                          "cluster": "x"})  # fmt: skip
    over = box_overlaps(split, boxes).set_index("pair_id")
    assert over.loc["1_0001_B", "box_overlap"] == 1.0 and over.loc["1_0001_B", "overlapping_train"] in (
        "1_0001_A",
        "1_0001_C",
    )


@needs_mmseqs
def test_the_audit_fails_a_split_with_a_chain_inside_a_training_box(tmp_path):
    ds, cluster_of = _entry_dataset(tmp_path)
    ds.to_csv(tmp_path / "dataset.tsv", sep="\t", index=False)
    fasta = tmp_path / "s.fasta"
    S.write_fasta(fasta, dict(zip(ds["pair_id"], ds["sequence"], strict=True)))
    bad = tmp_path / "split_1.tsv"
    roles = {p: "train" for p in ds["pair_id"]} | {"1_0001_B": "test", "5_0005_A": "val"}
    pd.DataFrame({"pair_id": list(roles), "role": list(roles.values()), "cluster": list(roles)}).to_csv(
        bad, sep="\t", index=False
    )
    with pytest.raises(
        RuntimeError, match=r"split 1: 1 pair\(s\) whose centre box lies inside the box of a training pair"
    ):
        S.audit_splits(fasta, [bad, bad], tmp_path / "a.tsv", tmp_path / "a.md", S.SearchParams(), enforce=[1],
                       publish=[tmp_path / "p0", tmp_path / "p1"], dataset_tsv=tmp_path / "dataset.tsv")  # fmt: skip
    assert "100% | 1_0001_" in (tmp_path / "a.md").read_text()
    good = tmp_path / "split_1_good.tsv"
    roles = {p: "train" for p in ds["pair_id"]} | {p: "test" for p in ds["pair_id"] if p.startswith("1_")}
    pd.DataFrame({"pair_id": list(roles), "role": list(roles.values()), "cluster": list(roles)}).to_csv(
        good, sep="\t", index=False
    )
    audit = S.audit_splits(fasta, [good, good], tmp_path / "b.tsv", tmp_path / "b.md", S.SearchParams(), enforce=[1],
                           publish=[tmp_path / "q0", tmp_path / "q1"], dataset_tsv=tmp_path / "dataset.tsv")  # fmt: skip
    assert audit["box_overlap"].max() == 0.0
