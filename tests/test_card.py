"""The dataset card on small synthetic stage tables (docs/design.md formats)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cryosse import card as C

ROOT = Path(__file__).resolve().parents[1]


def _tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def stage(tmp_path: Path) -> dict:
    r = tmp_path / "results"
    entry_table = _tsv(tmp_path / "entries.tsv", ["emdb_id", "pdb_id"],
                       [["EMD-1", "1AAA"], ["EMD-2", "2BBB"], ["EMD-3", "3CCC"], ["EMD-4", "4DDD"]])  # fmt: skip
    acq = _tsv(r / "acquire" / "entries.tsv", ["emdb_id", "pdb_id"], [["EMD-1", "1AAA"], ["EMD-2", "2BBB"],
                                                                      ["EMD-3", "3CCC"]])  # fmt: skip
    acq_rej = _tsv(r / "acquire" / "rejected.tsv", ["stage", "id", "reason"],
                   [["acquire", "EMD-4", "resolution 4.1 A outside 5-10 A"]])  # fmt: skip
    ds = _tsv(r / "dataset" / "dataset.tsv", ["pair_id", "emdb_id", "pdb_id", "chain", "bin"],
              [["1_1AAA_A", "EMD-1", "1AAA", "A", 1], ["1_1AAA_B", "EMD-1", "1AAA", "B", 2],
               ["2_2BBB_A", "EMD-2", "2BBB", "A", 2], ["2_2BBB_C", "EMD-2", "2BBB", "C", 3]])  # fmt: skip
    ds_rej = _tsv(r / "dataset" / "rejected.tsv", ["stage", "id", "reason"],
                  [["chain", "1_1AAA_D", "no helix"], ["chain", "2_2BBB_E", "no helix"],
                   ["quality", "EMD-3", "bin 4 (cylinder score 0.21)"]])  # fmt: skip
    (r / "dataset" / "pairs" / "1_1AAA_A").mkdir(parents=True)
    (r / "dataset" / "pairs" / "1_1AAA_A" / "record.json").write_text("{}\n")
    (r / "dataset" / "pairs" / "1_1AAA_A" / ".arrays.npz.tmp").write_text("half")  # a temp file: skipped
    s0 = _tsv(r / "splits" / "split_0.tsv", ["pair_id", "role", "cluster"],
              [["1_1AAA_A", "train", "c1"], ["1_1AAA_B", "train", "c1"], ["2_2BBB_A", "val", "c2"],
               ["2_2BBB_C", "test", "c3"]])  # fmt: skip
    s1 = _tsv(r / "splits" / "split_1.tsv", ["pair_id", "role", "cluster"],
              [["1_1AAA_A", "test", "c1"], ["1_1AAA_B", "test", "c1"], ["2_2BBB_A", "train", "c2"],
               ["2_2BBB_C", "val", "c3"]])  # fmt: skip
    audit = _tsv(r / "splits" / "audit.tsv",
                 ["split", "role", "pair_id", "cluster", "max_identity", "nearest_train", "qcov", "tcov", "leak",
                  "enforced"],
                 [[0, "val", "2_2BBB_A", "c2", 0.2, "1_1AAA_A", 0.9, 0.9, False, False],
                  [0, "test", "2_2BBB_C", "c3", 0.41, "1_1AAA_B", 0.9, 0.9, True, False],
                  [1, "test", "1_1AAA_A", "c1", 0.12, "2_2BBB_A", 0.9, 0.9, False, True],
                  [1, "test", "1_1AAA_B", "c1", 0.0, "", 0.0, 0.0, False, True],
                  [1, "val", "2_2BBB_C", "c3", 0.3, "2_2BBB_A", 0.9, 0.9, False, True]])  # fmt: skip
    return {
        "config": {"seed": 42, "split": {"n_cv": 1, "identity": 0.35}, "entries": str(entry_table)},
        "entry_table": entry_table, "acquire_entries": acq, "acquire_rejected": acq_rej, "dataset": ds,
        "dataset_rejected": ds_rej, "splits": [s0, s1], "audit": audit,
        "output_roots": [r / "acquire", r / "dataset", r / "splits"],
        "env_files": sorted((ROOT / "envs").glob("*.yaml")), "base": tmp_path,
    }  # fmt: skip


def test_counts_bins_splits_audit(stage: dict) -> None:
    card = C.build_card(**stage)
    cnt = card["counts"]
    assert (cnt["entries_listed"], cnt["entries_acquired"], cnt["entries_rejected_acquire"]) == (4, 3, 1)
    assert (cnt["entries_with_pairs"], cnt["pairs_kept"], cnt["rejected_dataset"]) == (2, 4, 3)
    assert cnt["bins"] == {"1": 1, "2": 2, "3": 1}
    top = cnt["rejections"][0]
    assert (top["stage"], top["reason"], top["count"], top["ids"]) == (
        "chain",
        "no helix",
        2,
        ["1_1AAA_D", "2_2BBB_E"],
    )
    steps = {s["step"]: s for s in cnt["funnel"]}
    assert steps["acquired (resolution, model, files)"]["dropped"] == 1
    assert steps["dataset: rejected at 'quality'"]["dropped"] == 1
    assert card["splits"]["0"] == {"train": 2, "val": 1, "test": 1, "total": 4, "clusters": 3}
    assert card["splits"]["1"]["test"] == 2
    aud = {(r["split"], r["role"]): r for r in card["audit"]["summary"]}
    assert aud[("0", "test")]["max_identity"] == 0.41 and aud[("0", "test")]["leaks"] == 1
    assert aud[("1", "test")] == {"split": "1", "role": "test", "cases": 2, "max_identity": 0.12, "leaks": 0,
                                  "enforced": True}  # fmt: skip
    assert card["audit"]["leaks_total"] == 1 and card["audit"]["enforced_leaks"] == 0


def test_checksums_cover_every_output_file(stage: dict) -> None:
    card = C.build_card(**stage)
    paths = {f["path"]: f for f in card["files"]["list"]}
    assert "results/dataset/pairs/1_1AAA_A/record.json" in paths
    assert not any(".tmp" in p for p in paths), "temporary files must be skipped"
    assert len(paths) == 8 == card["files"]["count"]
    f = paths["results/splits/split_0.tsv"]
    data = (stage["base"] / f["path"]).read_bytes()
    assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["size"] == len(data)


def test_config_hash_and_software(stage: dict) -> None:
    card = C.build_card(**stage)
    h = card["config"]["sha256"]
    assert h == C.config_hash({"split": {"identity": 0.35, "n_cv": 1}, "entries": stage["config"]["entries"],
                               "seed": 42}), "key order must not change the hash"  # fmt: skip
    assert h != C.config_hash({**stage["config"], "seed": 43})
    sw = card["software"]
    assert sw["packages"]["numpy"] and sw["packages"]["pandas"]
    assert "no-such-dist" not in sw["packages"]
    assert C.package_versions(["no-such-dist-xyz"]) == {"no-such-dist-xyz": None}
    assert C.tool_version(["no-such-tool-xyz", "--version"]) is None
    envs = sw["conda_envs"]
    assert envs["train"]["conda"]["pytorch-gpu"] and envs["dataset"]["pip"]["pydssp"]


def test_tool_versions_when_installed() -> None:
    import shutil

    if shutil.which("mmseqs") is None or shutil.which("mkdssp") is None:
        pytest.skip("mmseqs/mkdssp not installed")
    assert C.tool_version(C.TOOLS["mkdssp"]).startswith("mkdssp version")
    assert C.tool_version(C.TOOLS["mmseqs"])


def test_write_card_is_reproducible_and_leaves_no_temporary_file(stage: dict, tmp_path: Path) -> None:
    md, js = tmp_path / "results" / "dataset_card.md", tmp_path / "results" / "dataset_card.json"
    C.write_card(md, js, **stage)
    first = (md.read_bytes(), js.read_bytes())
    C.write_card(md, js, **stage)
    assert (md.read_bytes(), js.read_bytes()) == first, "same inputs, same card bytes"
    card = json.loads(js.read_text())
    assert card["counts"]["pairs_kept"] == 4
    text = md.read_text()
    for needle in ("## Counts at each filter", "no helix", "## Splits", "Leakage audit", "mkdssp", "sha256",
                   card["config"]["sha256"], "results/splits/split_0.tsv"):  # fmt: skip
        assert needle in text, needle
    assert not [p for p in md.parent.iterdir() if p.name.startswith(".")], "no temporary file left"


def test_missing_or_malformed_input_names_it(stage: dict, tmp_path: Path) -> None:
    stage["audit"].unlink()
    with pytest.raises(C.CardError, match=r"split audit: .*audit.tsv not found"):
        C.build_card(**stage)
    stage["audit"] = _tsv(tmp_path / "bad_audit.tsv", ["split", "role"], [[0, "test"]])
    with pytest.raises(C.CardError, match=r"lacks column\(s\) pair_id, max_identity, leak"):
        C.build_card(**stage)


def test_the_card_sets_the_dataset_beside_the_paper():
    import pandas as pd

    from cryosse.card import beside_the_paper

    ds = pd.DataFrame({"pair_id": ["a", "b", "c", "d"], "bin": [1, 2, 2, 3],
                       "n_ca_helix": [30, 10, 0, 0], "n_ca_sheet": [0, 10, 10, 0], "n_ca_other": [20, 10, 10, 0]})  # fmt: skip
    rows = {r["what"]: r for r in beside_the_paper(ds)}
    assert rows["pairs"] == {"what": "pairs", "ours": 4, "paper": 1355}
    assert rows["helix share of centre-box residues (%)"]["ours"] == 40.0  # 40 of 100 residues
    assert rows["sheet share of centre-box residues (%)"]["paper"] == 13.5
    assert rows["bin 2 (% of pairs in bins 1-3; paper: its test set)"]["ours"] == "2 (50%)"
    assert rows["bin 1 (% of pairs in bins 1-3; paper: its test set)"]["paper"] == "10 (16%)"


def test_the_card_shows_how_binning_hangs_on_the_contour():
    import pandas as pd

    from cryosse.card import quality_summary

    q = pd.DataFrame({"pair_id": list("abcde"), "status": ["kept", "kept", "rejected", "rejected", "kept"],
                      "contour_source": ["author", "author", "estimated", "estimated", "author"],
                      "bin": [1, 2, 4, 4, 3], "bin_at_0.8x": [1, 1, 4, 3, 3], "bin_at_1.2x": [1, 3, 4, 4, 3],
                      "cyl_score": [0.6, 0.5, 0.3, float("nan"), 0.45], "pr_diff": [0.1, 0.2, 0.6, 0.5, 0.3]})  # fmt: skip
    s = quality_summary(q)
    assert s["chains"] == 5 and s["bins_by_contour_source"] == {
        "author": {"1": 1, "2": 1, "3": 1},
        "estimated": {"4": 2},
    }
    assert s["bin_changes_at_0.8x_or_1.2x"] == 2 and s["bin_4_share"] == 0.4
    assert s["score_quantiles"]["pr_diff"]["p50"] == 0.3


def test_the_card_says_which_test_set_and_how_many_paper_cases_were_found(
    stage: dict, tmp_path: Path
) -> None:
    md, js = tmp_path / "card.md", tmp_path / "card.json"
    C.write_card(md, js, **stage)  # the default of this config: random
    assert "Main split (0) test set: random, stratified by quality bin" in md.read_text()
    cases = _tsv(tmp_path / "results" / "splits" / "paper_cases.tsv", ["case_id", "status", "pair_id"],
                 [["2_2BBB_C", "used", "2_2BBB_C"], ["9_9ZZZ_A", "unavailable", ""],
                  ["8_8YYY_B", "unavailable", ""]])  # fmt: skip
    stage["config"]["split"]["test"] = "paper"
    C.write_card(md, js, **stage, paper_cases=cases)
    assert "the paper's own test cases: 1 of the 3 found and used" in md.read_text()
    assert json.loads(js.read_text())["main_test"] == {"kind": "paper", "paper_cases": 3, "found": 1}
