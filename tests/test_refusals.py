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

from conftest import per_case_table, run_cli, tree

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
            "--model", p["model"], "--chain", "A", "--out", json_out]  # fmt: skip


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
    assert "-o/--out" in err and "--helix" in err and str(helix) in err and "destroy" in err
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
        ["score", "--helix", "{map}", "--sheet", "{map}", "--truth", "{map}", "--out", ""],
        ["build-pair", "--map", "{map}", "--model", "{model}", "--chain", "A", "--out-dir", ""],
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


# ------------------------------------------------------------------ resources


def test_aggregate_refuses_a_bootstrap_beyond_its_memory_budget(tmp_path, capsys):
    from cryosse.statistics import MAX_BOOTSTRAP, aggregate, read_per_case

    table = per_case_table(tmp_path, ["a\t10\t5\t50\t40", "b\t10\t5\t60\t40"])
    code, err = run_cli(["aggregate", table, "--bootstrap", "1000000000"], capsys)
    assert code == 2 and "--bootstrap" in err and "10,000,000" not in err and "1e+07" in err, err
    with pytest.raises(ValueError, match="more than the 10,000,000 allowed"):
        aggregate(read_per_case(table), n_boot=MAX_BOOTSTRAP + 1)


def test_the_bootstrap_runs_in_chunks_with_the_same_draws(monkeypatch):
    """Chunking bounds memory and changes nothing: the same seed gives the same interval."""
    import numpy as np

    from cryosse import statistics

    rng = np.random.default_rng(1)
    f, w = rng.uniform(0, 100, 40), rng.integers(1, 50, 40).astype(float)
    whole = statistics.bootstrap_ci(f, w, 3000, 0.95, 7)
    monkeypatch.setattr(statistics, "BOOTSTRAP_CHUNK", 40 * 7)  # 7 resamples a chunk
    assert statistics.bootstrap_ci(f, w, 3000, 0.95, 7) == whole


def test_build_pair_names_the_atom_that_makes_a_box_absurd(tmp_path, inputs, capsys):
    import gemmi

    st = gemmi.read_structure(str(inputs[1]))
    residue = st[0]["A"][10]
    residue["CA"][0].pos = gemmi.Position(99999.0, residue["CA"][0].pos.y, residue["CA"][0].pos.z)
    model = tmp_path / "outlier.pdb"
    st.write_pdb(str(model))
    out = tmp_path / "pair"
    for extra in ([], ["--min-box-inside", "0"]):
        argv = ["build-pair", "--map", inputs[0], "--model", model, "--chain", "A", "--out-dir", out,
                "--resolution", "6", "--keep-any-bin", *extra]  # fmt: skip
        code, err = run_cli(argv, capsys)
        assert code == 1 and "at most 600 A" in err and f"residue A {residue.seqid.num}" in err, err
        assert "99999.0" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outlier.pdb"]


# ------------------------------------------------------------------ wrong answers given quietly


@pytest.mark.parametrize("gz", [False, True])
def test_a_data_block_longer_than_the_header_says_is_refused(tmp_path, gz):
    import gzip
    import struct

    import mrcfile
    import numpy as np

    from cryosse.geometry import MapError, read_map

    path = tmp_path / "m.mrc"
    with mrcfile.new(path) as m:
        m.set_data(np.random.default_rng(0).random((10, 11, 12), dtype=np.float32))
        m.voxel_size = 1.0
    raw = bytearray(path.read_bytes())
    struct.pack_into("<i", raw, 12, 1)  # MODE 1 (int16): the float32 data are twice as long
    if gz:
        path = tmp_path / "m.mrc.gz"
        path.write_bytes(gzip.compress(bytes(raw)))
    else:
        path.write_bytes(bytes(raw))
    with pytest.raises(
        MapError, match=r"m\.mrc.*6304 bytes, the header needs 3664 \(12x11x10 mode 1\).*too long"
    ):
        read_map(path)


def test_a_checkpoint_giving_nan_is_refused_by_name(tmp_path, inputs, capsys):
    import torch

    from cryosse.model import DeepSSETracerUNet, save_checkpoint

    net = DeepSSETracerUNet(width=0.125)
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    ckpt = tmp_path / "nan.pt"
    save_checkpoint(ckpt, net, loss={"name": "FL_DL", "gamma": 1.0}, split=0)
    out = tmp_path / "out"
    code, err = run_cli(
        ["predict", inputs[0], "-o", out, "--checkpoint", ckpt, "--precision", "fp32"], capsys
    )
    assert code == 1 and str(ckpt) in err and "not finite" in err, err
    assert not out.exists()


def test_predict_refuses_a_contour_above_the_map_and_warns_below(tmp_path, inputs, tiny_ckpt, capsys, caplog):
    import numpy as np

    from cryosse.geometry import read_map

    data = np.asarray(read_map(inputs[0]).data)
    for level in (1e6, 1e39):
        code, err = run_cli(
            ["predict", inputs[0], "-o", tmp_path / "o", "--checkpoint", tiny_ckpt, "--contour", level],
            capsys,
        )
        assert code == 1 and "at or above the map's maximum" in err and f"{data.max():g}" in err, err
        assert "overflow" not in err and not (tmp_path / "o").exists()
    code, err = run_cli(
        ["predict", inputs[0], "-o", tmp_path / "o", "--checkpoint", tiny_ckpt, "--contour=-1e39"], capsys
    )
    assert code == 0 and "overflow" not in err, err
    summary = __import__("json").loads((tmp_path / "o" / "summary.json").read_text())
    assert any("below the map's minimum" in w and "masks nothing" in w for w in summary["warnings"])


def test_build_pair_refuses_a_contour_above_the_map(tmp_path, inputs, capsys):
    argv = ["build-pair", "--map", inputs[0], "--model", inputs[1], "--chain", "A", "--out-dir", tmp_path / "p",
            "--resolution", "6", "--keep-any-bin", "--contour", "1e30"]  # fmt: skip
    code, err = run_cli(argv, capsys)
    assert code == 1 and "at or above the map's maximum" in err and str(inputs[0]) in err, err
    assert not (tmp_path / "p").exists()


def test_json_is_always_valid_and_a_non_finite_config_value_is_refused(tmp_path, inputs, capsys):
    from cryosse.io import write_json

    with pytest.raises(ValueError, match=r"x\.json: not written.*an infinity in a\.b\[1\]"):
        write_json(tmp_path / "x.json", {"a": {"b": [1.0, float("inf")]}})
    assert list(tmp_path.iterdir()) == []
    write_json(tmp_path / "y.json", {"f1": float("nan"), "g": __import__("numpy").float32("nan")})
    assert (tmp_path / "y.json").read_text() == '{\n  "f1": null,\n  "g": null\n}\n'  # valid JSON
    (tmp_path / "y.json").unlink()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset:\n  contour_sd: .inf\n")
    code, err = run_cli(["build-pair", "--map", inputs[0], "--model", inputs[1], "--chain", "A",
                         "--out-dir", tmp_path / "p", "--config", cfg], capsys)  # fmt: skip
    assert code == 1 and str(cfg) in err and "dataset.contour_sd: inf is not a finite number" in err, err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    "rows,header,message",
    [
        (["a\t10\t5\t0.7\t0.4", "b\t10\t5\t70\t40"], None, "mixes fractions and percent"),
        (
            ["a\t10\t5\t70\t40"],
            "case\tca_helix\tca_sheet\tCE_helix\tCE_helix",
            "CE_helix appear more than once",
        ),
        (["a\t10\t5\tabc\t40"], None, "row 2, column CE_helix: 'abc' is not a number"),
    ],
)
def test_aggregate_refuses_tables_it_would_misread(tmp_path, capsys, rows, header, message):
    table = per_case_table(tmp_path, rows, *([header] if header else []))
    code, err = run_cli(["aggregate", table], capsys)
    assert code == 1 and message in err and str(table) in err, err


def test_aggregate_names_an_empty_file_and_a_negative_seed(tmp_path, capsys):
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    code, err = run_cli(["aggregate", empty], capsys)
    assert code == 1 and str(empty) in err and "empty" in err, err
    code, err = run_cli(["aggregate", per_case_table(tmp_path, ["a\t1\t1\t50\t50"]), "--seed", "-1"], capsys)
    assert code == 2 and "--seed" in err, err


def test_simulate_rejects_a_chain_the_model_lacks(tmp_path, capsys):
    from conftest import ROOT

    out = tmp_path / "e"
    argv = [
        "simulate",
        "EMD-90001",
        "--pdb",
        "2CVI",
        "--chains",
        "Z",
        "-c",
        ROOT / "config" / "demo.yaml",
        "-o",
        out,
    ]
    from cryosse.cli import main

    code = main([str(a) for a in argv])  # a rejection is a record and exit 3, not an error
    record = __import__("json").loads((out / "record.json").read_text())
    assert code == 3 and record["status"] == "rejected" and "chain(s) Z not in model 2CVI" in record["reason"]


def _label_file(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "truth.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_score_refuses_a_voxel_with_two_labels_and_a_lone_helix_map(tmp_path, inputs, capsys):
    import numpy as np

    from cryosse.geometry import read_map

    data = np.asarray(read_map(inputs[0]).data)
    k, j, i = np.unravel_index(int(np.argmax(data)), data.shape)
    top = float(data.max())
    d = lambda z, y, x: data[z, y, x] / top  # noqa: E731
    lines = [f"{i},{j},{k},{d(k, j, i):.4f},1", f"{i + 1},{j},{k},{d(k, j, i + 1):.4f},0",
             f"{i},{j},{k},{d(k, j, i):.4f},2"]  # fmt: skip
    truth = _label_file(tmp_path, lines)
    base = ["score", "--helix", inputs[0], "--sheet", inputs[0], "--map", inputs[0], "--truth", truth]
    code, err = run_cli(base, capsys)
    assert code == 1 and str(truth) in err and "lines 1 and 3" in err and "one label" in err, err
    code, err = run_cli(["score", "--helix", inputs[0], "--map", inputs[0], "--truth", truth], capsys)
    assert code == 1 and "--helix without --sheet" in err, err
    bad = _label_file(tmp_path, [f"{i},{j},{k},abc,1"])
    code, err = run_cli(base[:-1] + [bad], capsys)
    assert code == 1 and str(bad) in err and "line 1" in err, err


def test_a_second_predict_into_a_busy_folder_is_refused(tmp_path, inputs, tiny_ckpt, capsys):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running prediction holds it
        code, err = run_cli(["predict", inputs[0], "-o", out, "--checkpoint", tiny_ckpt], capsys)
    finally:
        os.close(fd)
    assert code == 1 and str(out) in err and "another cryosse predict" in err, err
    assert list(out.iterdir()) == []
    assert run_cli(["predict", inputs[0], "-o", out, "--checkpoint", tiny_ckpt], capsys)[0] == 0


# ------------------------------------------------------------------ unclear messages


def _disk_full(monkeypatch) -> None:
    import errno

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)


def test_a_full_disk_names_the_file_and_simulate_leaves_no_folder(tmp_path, monkeypatch, capsys):
    from conftest import ROOT

    _disk_full(monkeypatch)
    out = tmp_path / "entry"
    argv = ["simulate", "EMD-90004", "--pdb", "2XDG", "-c", ROOT / "config" / "demo.yaml", "-o", out]
    code, err = run_cli(argv, capsys)
    assert code == 1 and "No space left on device" in err and str(out) in err, err
    assert not out.exists()
    from cryosse.io import write_json

    with pytest.raises(OSError) as exc:
        write_json(tmp_path / "s.json", {"a": 1})
    assert exc.value.filename == str(tmp_path / "s.json") and list(tmp_path.iterdir()) == []


def test_score_json_naming_a_folder_says_so(tmp_path, inputs, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    code, err = run_cli(["score", "--helix", inputs[0], "--sheet", inputs[0], "--map", inputs[0], "--model",
                         inputs[1], "--chain", "A", "--out", folder], capsys)  # fmt: skip
    assert code == 1 and f"{folder}: Is a directory" in err and ".tmp" not in err and "results." not in err, (
        err
    )
    assert list(folder.iterdir()) == []


def test_a_config_mistake_in_the_workflow_is_one_message_without_the_schema(tmp_path):
    from conftest import copy_workflow, run_snakemake

    repo = copy_workflow(tmp_path / "wf")
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("train:\n  max_epochs: abc\n")
    proc = run_snakemake(repo, configfiles=[cfg], dry_run=True, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "train.max_epochs: 'abc' is not of type 'integer'" in text and str(cfg) in text, text
    assert "cryosse check-config" in text and len(text.splitlines()) < 10 and "properties" not in text, text


def test_three_wrong_model_files_get_messages_that_say_what_they_are(tmp_path, inputs, tiny_ckpt, capsys):
    import torch

    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    ckpt = torch.load(tiny_ckpt, weights_only=True)
    ckpt["model_args"]["width"] = "wide"
    odd = tmp_path / "odd.pt"
    torch.save(ckpt, odd)
    cases = [
        (empty, "the file is empty"),
        (odd, "width = 'wide', not a number"),
        (inputs[0], "as a map does"),
    ]
    for model, message in cases:
        code, err = run_cli(["predict", inputs[0], "-o", tmp_path / "o", "--checkpoint", model], capsys)
        assert code == 1 and str(model) in err and message in err, err
        assert "weights_only" not in err and "pickle" not in err
    assert not (tmp_path / "o").exists()
