"""What a subcommand must refuse rather than do: overwrite an input, run out of memory on a
number, or answer a wrong question quietly. Each case checks the exit status, a message that
names the input and the cause, and that nothing was lost or left behind.

Only data the project ships is used, so these tests run on a fresh clone without ../shared.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from conftest import run_cli, tree

# ------------------------------------------------------------------ data loss: outputs never replace inputs


@pytest.fixture()
def predicted(tmp_path, inputs) -> dict[str, Path]:
    """Two maps standing for another tool's helix and sheet predictions."""
    helix, sheet = tmp_path / "pred_helix.mrc", tmp_path / "pred_sheet.mrc"
    helix.write_bytes(inputs[0].read_bytes())
    sheet.write_bytes(inputs[0].read_bytes())
    return {"helix": helix, "sheet": sheet, "model": inputs[1]}


def _score_args(p: dict[str, Path], json_out: object) -> list:
    return ["score", "--helix", p["helix"], "--sheet", p["sheet"], "--map", p["helix"],
            "--model", p["model"], "--chain", "A", "--json", json_out]  # fmt: skip


@pytest.mark.parametrize("how", ["same path", "hard link", "symbolic link", "other spelling"])
def test_score_never_writes_its_json_over_an_input(tmp_path, predicted, capsys, how):
    helix = predicted["helix"]
    target = {
        "same path": helix,
        "hard link": tmp_path / "hard.mrc",
        "symbolic link": tmp_path / "soft.mrc",
        "other spelling": tmp_path / "." / "sub" / ".." / helix.name,
    }[how]
    if how == "hard link":
        os.link(helix, target)
    elif how == "symbolic link":
        target.symlink_to(helix)
    elif how == "other spelling":
        (tmp_path / "sub").mkdir()
    before = tree(tmp_path)
    code, err = run_cli(_score_args(predicted, target), capsys)
    assert code == 1, err
    assert "--json/--out" in err and "--helix" in err and str(helix) in err and "destroy" in err
    assert tree(tmp_path) == before


@pytest.mark.parametrize("victim", ["dataset", "split"])
def test_evaluate_never_writes_its_table_over_an_input(tmp_path, tiny_ckpt, capsys, victim):
    data = tmp_path / "D"
    data.mkdir()
    dataset, split = data / "dataset.tsv", data / "split_0.tsv"
    dataset.write_text("pair_id\tpath\n1_ABCD_A\tpairs/1_ABCD_A\n")
    split.write_text("pair_id\trole\n1_ABCD_A\ttest\n")
    out = {"dataset": dataset, "split": split}[victim]
    before = tree(tmp_path)
    argv = ["evaluate", tiny_ckpt, split, "--dataset", dataset, "--out", out, "--pred-dir", tmp_path / "pred"]
    code, err = run_cli(argv, capsys)
    assert code == 1 and "--out" in err and str(out) in err and "destroy" in err, err
    assert tree(tmp_path) == before


def test_two_outputs_of_one_command_must_differ(tmp_path, capsys):
    fasta, splits = tmp_path / "seq.fasta", tmp_path / "split_0.tsv"
    fasta.write_text(">a\nMKV\n")
    splits.write_text("pair_id\trole\n")
    out = tmp_path / "audit.out"
    code, err = run_cli(
        ["audit", "--fasta", fasta, "--splits", splits, "--out-tsv", out, "--out-md", out], capsys
    )
    assert code == 1 and "--out-md" in err and "--out-tsv" in err and "give two paths" in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "{map}", "-o", ""],
        ["predict", "{map}", "-o", "   "],
        ["score", "--helix", "{map}", "--sheet", "{map}", "--truth", "{map}", "--json", ""],
        ["build-pair", "--map", "{map}", "--model", "{model}", "--chain", "A", "--out", ""],
        ["acquire-tables", "{map}", "-o", ""],
    ],
)
def test_an_empty_path_is_refused_and_nothing_is_written(tmp_path, inputs, monkeypatch, capsys, argv):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = [str(a).format(map=inputs[0], model=inputs[1]) for a in argv]
    code, err = run_cli(argv, capsys)
    assert code == 1 and "an empty path" in err, err
    assert list(work.iterdir()) == []


def test_a_record_given_twice_is_refused(tmp_path, capsys):
    rec = tmp_path / "R" / "record.json"
    rec.parent.mkdir()
    rec.write_text('{"status": "ok"}\n')
    code, err = run_cli(
        ["acquire-tables", rec, tmp_path / "R" / ".." / "R" / "record.json", "-o", tmp_path / "o"], capsys
    )
    assert code == 1 and "given twice" in err and str(rec) in err, err
    assert not (tmp_path / "o").exists()


def test_every_subcommand_declares_its_paths():
    """The shared check (cryosse.paths) sees every subcommand's inputs and outputs: an option
    whose name says it is a path must be declared."""
    from cryosse.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    pathlike = ("out", "output", "out_dir", "json", "table", "models_dir", "pred_dir", "out_tsv", "out_md",
                "map", "model", "dataset", "config", "fasta", "records", "checkpoint", "checkpoints")  # fmt: skip
    for name, sp in sub.choices.items():
        declared = sp.get_default("_cryosse_paths")
        assert declared is not None, f"{name} declares no paths"
        listed = {d for pairs in declared.values() for d, _ in pairs}
        missing = [a.dest for a in sp._actions if a.dest in pathlike and a.dest not in listed]
        assert not missing, (name, missing)
