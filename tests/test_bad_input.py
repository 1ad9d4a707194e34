"""Bad input and user files (issue 16): every case exits 1 with one line naming the input and
the cause, no traceback, and leaves nothing behind and loses nothing.

Only data the project ships is used (a bundled demo structure and a map simulated from it),
so these tests run on a fresh clone without ../shared.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import gemmi
import numpy as np
import pytest
import torch

from conftest import CHAIN, ROOT, per_case_table, run_cli, tree
from cryosse.cli import main
from cryosse.geometry import write_map
from cryosse.model import DeepSSETracerUNet, save_checkpoint


def build_pair_args(map_path: Path, model: Path, out: Path) -> list:
    return ["build-pair", "--map", map_path, "--model", model, "--chain", CHAIN, "--out-dir", out,
            "--resolution", "6", "--keep-any-bin"]  # fmt: skip


# ------------------------------------------------------------------ 1. build-pair never loses files


def test_build_pair_refuses_a_folder_of_other_files(tmp_path, inputs, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work")
    (out / "figures").mkdir()
    (out / "figures" / "f1.png").write_bytes(b"\x89PNG")
    before = tree(tmp_path)
    code, err = run_cli(build_pair_args(*inputs, out), capsys)
    assert code == 1 and str(out) in err and "not a pair folder" in err
    assert tree(tmp_path) == before


def test_build_pair_refuses_the_folder_of_its_inputs(tmp_path, inputs, capsys):
    src_map, src_model = inputs
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "map.mrc").write_bytes(src_map.read_bytes())
    (folder / "model.cif.gz").write_bytes(src_model.read_bytes())
    before = tree(tmp_path)
    for out in (folder, tmp_path):  # the inputs' own folder, and a folder above it
        code, err = run_cli(build_pair_args(folder / "map.mrc", folder / "model.cif.gz", out), capsys)
        assert code == 1 and "holds the input" in err and str(out) in err
        assert tree(tmp_path) == before


def test_build_pair_refuses_a_file_and_leaves_no_hidden_copy(tmp_path, inputs, capsys):
    out = tmp_path / "results.txt"
    out.write_text("a user's file")
    code, err = run_cli(build_pair_args(*inputs, out), capsys)
    assert code == 1 and "not a folder" in err and str(out) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]
    assert out.read_text() == "a user's file"


def test_build_pair_replaces_only_its_own_pair_folder(tmp_path, inputs, capsys):
    out = tmp_path / "pair"
    out.mkdir()  # an empty folder is fine
    assert run_cli(build_pair_args(*inputs, out), capsys)[0] == 0
    first = tree(out)
    assert set(first) == {"map.mrc", "labels.mrc", "arrays.npz", "record.json"}
    assert run_cli(build_pair_args(*inputs, out), capsys)[0] == 0  # its own pair folder: replaced
    assert set(tree(out)) == set(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair"]  # no staging or .old folder left
    (out / "notes.txt").write_text("the user's notes beside the pair")
    before = tree(tmp_path)
    code, err = run_cli(build_pair_args(*inputs, out), capsys)
    assert code == 1 and "notes.txt" in err
    assert tree(tmp_path) == before


def test_build_pair_removes_staging_left_by_a_killed_run(tmp_path, inputs, capsys):
    dead = 2**22 + 12345  # above any pid this machine hands out (pid_max is at most 2^22)
    stale = tmp_path / f".pair.tmp-{dead}-abcd"
    stale.mkdir()
    (stale / "map.mrc").write_bytes(b"half")
    live = tmp_path / f".pair.tmp-{os.getpid()}-efgh"  # a live process's: left alone
    live.mkdir()
    assert run_cli(build_pair_args(*inputs, tmp_path / "pair"), capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "pair"]


# ------------------------------------------------------------------ 2. a bad id writes nothing anywhere


@pytest.mark.parametrize("command", ["fetch", "simulate"])
@pytest.mark.parametrize("entry", ["EMD-../../../../../x", "EMD-12/../../x", "../EMD-1234", "EMD-"])
def test_bad_entry_id_writes_nothing(tmp_path, monkeypatch, capsys, command, entry):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, err = run_cli(
        [command, entry, "--source", "local"] if command == "fetch" else [command, entry], capsys
    )
    assert code == 1 and entry in err and "nothing was written" in err
    assert tree(tmp_path) == {"a": None, "a/b": None, "a/b/c": None}


# ------------------------------------------------------------------ 3. predict: no staging left, no mixing


def test_predict_sigterm_while_writing_leaves_nothing(tmp_path, inputs, tiny_ckpt, capsys, monkeypatch):
    import cryosse.predict as predict

    calls = []
    real_write = predict.write_map

    def write_then_term(*args, **kwargs):
        real_write(*args, **kwargs)
        calls.append(args[0])
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill` or a scheduler would, mid-write

    monkeypatch.setattr(predict, "write_map", write_then_term)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exc:
            main(["predict", str(inputs[0]), "-o", str(out), "--checkpoint", str(tiny_ckpt)])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exc.value.code == 128 + signal.SIGTERM and len(calls) == 3
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]  # no staging folder, no output


def test_predict_removes_stale_staging_and_never_mixes_two_predictions(tmp_path, inputs, tiny_ckpt, capsys):
    out = tmp_path / "out"
    assert run_cli(["predict", inputs[0], "-o", out, "--checkpoint", tiny_ckpt], capsys)[0] == 0
    assert (out / "helix_trimmed.mrc").exists()
    dead = 2**22 + 54321
    stale = out / f".cryosse-predict-{dead}-xyz"
    stale.mkdir()
    (stale / "helix.mrc").write_bytes(b"\0" * 4096)
    (out / "mine.txt").write_text("keep")
    small = tmp_path / "small.mrc"  # too small to trim 17 A: the second prediction has no *_trimmed files
    rng = np.random.default_rng(0)
    from cryosse.geometry import MapGeometry

    write_map(
        small,
        rng.gamma(2.0, size=(20, 24, 28)).astype(np.float32),
        MapGeometry((20, 24, 28), (1.0,) * 3, (0.0,) * 3),
    )
    assert run_cli(["predict", small, "-o", out, "--checkpoint", tiny_ckpt], capsys)[0] == 0
    from cryosse.io import read_json

    summary = read_json(out / "summary.json")
    assert sorted(p.name for p in out.iterdir()) == sorted([*summary["files"], "mine.txt"])
    assert not list(out.glob("*_trimmed.mrc")) and summary["input"]["path"] == str(small.resolve())


def test_predict_refuses_to_overwrite_its_input(tmp_path, inputs, tiny_ckpt, capsys):
    folder = tmp_path / "maps"
    folder.mkdir()
    src = folder / "helix.mrc"
    src.write_bytes(inputs[0].read_bytes())
    before = tree(tmp_path)
    code, err = run_cli(["predict", src, "-o", folder, "--checkpoint", tiny_ckpt], capsys)
    assert code == 1 and "would be overwritten" in err and str(src) in err
    assert tree(tmp_path) == before


# ------------------------------------------------------------------ 4. messages, not tracebacks


def test_a_folder_given_as_an_input(tmp_path, inputs, tiny_ckpt, capsys):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    cases = [
        ["predict", folder, "-o", tmp_path / "o1", "--checkpoint", tiny_ckpt],
        ["predict", inputs[0], "-o", tmp_path / "o2", "--checkpoint", folder],
        build_pair_args(folder, inputs[1], tmp_path / "o3"),
        build_pair_args(inputs[0], folder, tmp_path / "o4"),
        ["aggregate", folder],
        ["acquire-tables", folder, "-o", tmp_path / "o5"],
    ]
    for argv in cases:
        code, err = run_cli(argv, capsys)
        assert code == 1 and str(folder) in err and ("folder" in err or "directory" in err.lower()), (
            argv,
            err,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder"]


def test_an_output_that_cannot_be_written(tmp_path, inputs, tiny_ckpt, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "sub"  # a path under a regular file can never be created
    for argv in (
        ["predict", inputs[0], "-o", out, "--checkpoint", tiny_ckpt],
        build_pair_args(*inputs, out),
        ["simulate", "EMD-90004", "--pdb", "2XDG", "-c", ROOT / "config" / "demo.yaml", "-o", out],
    ):
        code, err = run_cli(argv, capsys)
        assert code == 1 and str(blocker) in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] and blocker.read_text() == "x"


def test_fetch_o_naming_a_file(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    code, err = run_cli(
        ["simulate", "EMD-90004", "--pdb", "2XDG", "-c", ROOT / "config" / "demo.yaml", "-o", f], capsys
    )
    assert code == 1 and str(f) in err and "not a folder" in err and f.read_text() == "mine"


def test_mrc_with_a_negative_extended_header(tmp_path, tiny_ckpt, capsys):
    import struct

    import mrcfile

    path = tmp_path / "neg.mrc"
    with mrcfile.new(path) as m:
        m.set_data(np.random.default_rng(0).random((24, 24, 24)).astype(np.float32))
        m.voxel_size = 1.0
    raw = bytearray(path.read_bytes())
    raw[92:96] = struct.pack("<i", -4000)
    path.write_bytes(bytes(raw))
    code, err = run_cli(["predict", path, "-o", tmp_path / "o", "--checkpoint", tiny_ckpt], capsys)
    assert code == 1 and str(path) in err and "extended header" in err and not (tmp_path / "o").exists()


CONFIGS = {
    "syntax": ("dataset:\n  padding: [1, 2\n", "line 3"),
    "list": ("- a\n- b\n", "mapping of keys"),
    "wrong_type": ("dataset:\n  padding: lots\n", "dataset.padding"),
    "typo": ("dataset:\n  paddin: 5\n", "'paddin' was unexpected"),
    "ftp": ("source: ftp\n", "source: 'ftp' is not one of"),
    "retries": ("acquire:\n  retries: -3\n", "acquire.retries: -3"),
    "padding": ("dataset:\n  padding: -50\n", "dataset.padding: -50"),
    "spacing": ("dataset:\n  spacing: 0\n", "dataset.spacing: 0"),
    "resolution_order": (
        "acquire:\n  resolution_min: 9\n  resolution_max: 5\n",
        "is above acquire.resolution_max",
    ),
    "fractions": ("split:\n  fractions: [10, 0, 2]\n", "must each be > 0"),
    "bands": ("evaluate:\n  resolution_bands: [5, 8, 7]\n", "must ascend"),
    "local_no_mirror": ("source: local\n", "needs acquire.mirror"),
}


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_bad_config_files_are_named(tmp_path, inputs, capsys, kind):
    text, message = CONFIGS[kind]
    cfg = tmp_path / f"{kind}.yaml"
    cfg.write_text(text)
    before = tree(tmp_path)
    for argv in (
        ["check-config", cfg],
        ["fetch", "EMD-1234", "-c", cfg, "-o", tmp_path / "entry"],
        build_pair_args(*inputs, tmp_path / "pair") + ["--config", cfg],
        ["query-emdb", "-c", cfg, "-o", tmp_path / "entries.tsv"],
    ):
        code, err = run_cli(argv, capsys)
        assert code == 1 and str(cfg) in err and message in err, (argv, err)
    assert tree(tmp_path) == before  # no empty entry folder, no pair, no table


def test_acquire_tables_names_a_bad_record(tmp_path, capsys):
    for name, text in (("list.json", "[1, 2]"), ("text.json", "not json at all"), ("empty.json", "")):
        rec = tmp_path / name
        rec.write_text(text)
        code, err = run_cli(["acquire-tables", rec, "-o", tmp_path / "t"], capsys)
        assert code == 1 and str(rec) in err and "record" in err
    assert not (tmp_path / "t").exists()


# ------------------------------------------------------------------ 5. build-pair values


def _pdb_with(inputs, tmp_path: Path, edit) -> Path:
    st = gemmi.read_structure(str(inputs[1]))
    lines = st.make_pdb_string().splitlines()
    out = tmp_path / "model.pdb"
    out.write_text("\n".join(edit(lines)) + "\n")
    return out


@pytest.mark.parametrize(
    "value,message",
    [("-1", "--contour"), ("nan", "--contour"), ("inf", "--contour"), ("0", "--contour")],
)
def test_build_pair_refuses_bad_contours(tmp_path, inputs, capsys, value, message):
    code, err = run_cli(build_pair_args(*inputs, tmp_path / "p") + ["--contour", value], capsys)
    assert code == 2 and message in err and value in err and not (tmp_path / "p").exists()


@pytest.mark.parametrize("value", ["0", "-3", "100", "nan"])
def test_build_pair_refuses_bad_resolutions(tmp_path, inputs, capsys, value):
    args = [a for a in build_pair_args(*inputs, tmp_path / "p")]
    args[args.index("--resolution") + 1] = value
    code, err = run_cli(args, capsys)
    assert code == 2 and "--resolution" in err and not (tmp_path / "p").exists()


def test_build_pair_refuses_short_chains_and_bad_coordinates(tmp_path, inputs, capsys):
    def short(lines):  # keep the first five residues
        first: list[str] = []
        keep = []
        for ln in lines:
            if ln.startswith(("ATOM", "HETATM")):
                rid = ln[21:27]
                if rid not in first and len(first) < 5:
                    first.append(rid)
                if rid not in first:
                    continue
            keep.append(ln)
        return keep

    model = _pdb_with(inputs, tmp_path, short)
    code, err = run_cli(build_pair_args(inputs[0], model, tmp_path / "p"), capsys)
    assert code == 1 and "5 residues" in err and "< 30" in err and not (tmp_path / "p").exists()

    def nan(lines):
        i = next(k for k, ln in enumerate(lines) if ln.startswith("ATOM"))
        lines[i] = lines[i][:30] + "     nan" + lines[i][38:]
        return lines

    def garbage(lines):
        i = next(k for k, ln in enumerate(lines) if ln.startswith("ATOM"))
        lines[i] = lines[i][:30] + "  abc.de" + lines[i][38:]
        return lines

    for edit, word in ((nan, "not finite"), (garbage, "not numbers")):
        model = _pdb_with(inputs, tmp_path, edit)
        code, err = run_cli(build_pair_args(inputs[0], model, tmp_path / "p"), capsys)
        assert code == 1 and str(model) in err and word in err and not (tmp_path / "p").exists()


# ------------------------------------------------------------------ 6. predict values and checkpoints


@pytest.mark.parametrize("option,value", [("--spacing", "nan"), ("--spacing", "0"), ("--trim", "nan"),
                                          ("--trim", "-2"), ("--tile", "-1"), ("--threads", "0")])  # fmt: skip
def test_predict_refuses_bad_numbers(tmp_path, inputs, tiny_ckpt, capsys, option, value):
    code, err = run_cli(
        ["predict", inputs[0], "-o", tmp_path / "o", "--checkpoint", tiny_ckpt, option, value], capsys
    )
    assert code == 2 and option in err and not (tmp_path / "o").exists()


def _ckpt(tmp_path: Path, **args) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "odd.pt"
    save_checkpoint(path, DeepSSETracerUNet(width=0.125, **args))
    return path


@pytest.mark.parametrize(
    "args,message", [({"n_classes": 7}, "7 output classes"), ({"in_channels": 2}, "2 input channels")]
)
def test_predict_refuses_checkpoints_of_another_shape(tmp_path, inputs, capsys, args, message):
    ck = _ckpt(tmp_path, **args)
    code, err = run_cli(["predict", inputs[0], "-o", tmp_path / "o", "--checkpoint", ck], capsys)
    assert code == 1 and str(ck) in err and message in err and not (tmp_path / "o").exists()


def test_a_pickled_checkpoint_is_refused_without_advice_to_unpickle(tmp_path, inputs, capsys):
    import pickle

    ck = tmp_path / "pickled.pt"
    torch.save({"format": "cryosse-checkpoint/1", "thing": pickle.dumps}, ck)  # a function: needs unpickling
    code, err = run_cli(["predict", inputs[0], "-o", tmp_path / "o", "--checkpoint", ck], capsys)
    assert code == 1 and str(ck) in err and "pickle" in err
    assert "weights_only" not in err and not (tmp_path / "o").exists()


def test_voxel_sizes_no_map_has(tmp_path, tiny_ckpt, capsys):
    from cryosse.geometry import MapGeometry

    tiny = tmp_path / "tiny_voxels.mrc"
    write_map(
        tiny,
        np.random.default_rng(0).random((30, 30, 30)).astype(np.float32),
        MapGeometry((30, 30, 30), (0.001,) * 3, (0.0,) * 3),
    )
    code, err = run_cli(["predict", tiny, "-o", tmp_path / "o", "--checkpoint", tiny_ckpt], capsys)
    assert code == 1 and str(tiny) in err and "voxel size" in err and "damaged header" in err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ 7. aggregate


@pytest.mark.parametrize(
    "rows,message",
    [
        (["a\t10\t5\t150\t40", "b\t10\t5\t60\t40"], "CE_helix = 150"),
        (["a\t10\t5\t-20\t40", "b\t10\t5\t60\t40"], "CE_helix = -20"),
        (["a\t-10\t5\t50\t40", "b\t10\t5\t60\t40"], "ca_helix = -10"),
        (["a\tinf\t5\t50\t40", "b\t10\t5\t60\t40"], "ca_helix = inf"),
        (["a\t10\t5\t50", "b\t10\t5\t60\t40"], "row 2 has 4"),
        (["a\t10\t5\t50\t40", "a\t10\t5\t60\t40"], "case(s) a listed more than once"),
    ],
)
def test_aggregate_refuses_what_cannot_be_averaged(tmp_path, capsys, rows, message):
    code, err = run_cli(["aggregate", per_case_table(tmp_path, rows)], capsys)
    assert code == 1 and message in err, err


@pytest.mark.parametrize(
    "argv,option",
    [(["--ci", "1.5"], "--ci"), (["--bootstrap", "-5"], "--bootstrap"), (["--ci", "nan"], "--ci")],
)
def test_aggregate_options(tmp_path, capsys, argv, option):
    code, err = run_cli(["aggregate", per_case_table(tmp_path, ["a\t10\t5\t50\t40"]), *argv], capsys)
    assert code == 2 and option in err


# ------------------------------------------------------------------ 9. outputs follow the umask


def test_pair_folders_follow_the_umask(tmp_path, inputs, capsys):
    old = os.umask(0o022)
    try:
        assert run_cli(build_pair_args(*inputs, tmp_path / "pair"), capsys)[0] == 0
    finally:
        os.umask(old)
    assert (tmp_path / "pair").stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "pair").iterdir())


def test_every_option_of_every_subcommand_has_help():
    import argparse

    from cryosse.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bare = [(name, a.option_strings or a.dest) for name, sp in sub.choices.items() for a in sp._actions
            if not isinstance(a, argparse._HelpAction) and (not (a.help or "").strip() or "SPEC" in a.help)]  # fmt: skip
    assert not bare, f"options without a help text (or citing SPEC, which users do not have): {bare}"
    assert len(sub.choices) >= 14
    # and every help renders (a bare % in a help text made `cryosse --help` a traceback)
    assert "cluster" in parser.format_help()
    for name, sp in sub.choices.items():
        assert name in sp.format_help()


def test_help_lists_users_commands_first_without_importing_torch():
    import argparse
    import subprocess
    import sys

    from cryosse.cli import COMMANDS, build_parser

    # every subcommand a module defines is listed, with the same help line
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert helps == {name: hlp for name, (_, hlp) in COMMANDS.items()}
    assert list(COMMANDS)[:2] == ["predict", "score"]
    code = (
        "import sys, contextlib, io\n"
        "from cryosse.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "heavy = [m for m in ('torch', 'pandas', 'scipy', 'gemmi') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "text = out.getvalue()\n"
        "assert text.index('predict') < text.index('score') < text.index('query-emdb'), text\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    fetch = subprocess.run(
        [sys.executable, "-m", "cryosse.cli", "fetch", "--help"], capture_output=True, text=True
    )
    assert fetch.returncode == 0 and "Acquire one entry" in fetch.stdout  # a description of its own


def test_old_option_spellings_still_work_with_a_message(tiny_ckpt, inputs, tmp_path, capsys):
    """One spelling per meaning (-o/--out-dir a folder, -o/--out a file, --checkpoint a network,
    --model an atomic model); the old spellings keep working and say what replaced them."""
    out = tmp_path / "o"
    code, err = run_cli(
        ["predict", inputs[0], "--out", out, "--model", tiny_ckpt, "--precision", "fp32"], capsys
    )
    assert code == 0 and (out / "helix.mrc").exists(), err
    assert "--out is deprecated; use --out-dir" in err and "--model is deprecated; use --checkpoint" in err
    code, err = run_cli(["predict", inputs[0], "--out-dir", out, "--checkpoint", tiny_ckpt, "--precision", "fp32"],
                        capsys)  # fmt: skip
    assert code == 0 and "deprecated" not in err
    from cryosse.cli import build_parser

    ns = build_parser(["score"]).parse_args(
        ["score", "--helix", "h", "--sheet", "s", "--pair", "p", "--json", "x"]
    )
    assert ns.json == "x" and "--json is deprecated; use --out" in capsys.readouterr().err
    ns = build_parser(["query-emdb"]).parse_args(["query-emdb", "--output", "e.tsv"])
    assert ns.output == "e.tsv" and "use --out" in capsys.readouterr().err
    help_text = build_parser(["predict"])._subparsers._group_actions[0].choices["predict"].format_help()
    assert "--checkpoint" in help_text and "--out-dir" in help_text and "--model" not in help_text
