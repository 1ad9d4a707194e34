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

from cryosse.acquire.simulate import simulate_density
from cryosse.cli import main
from cryosse.geometry import write_map
from cryosse.model import DeepSSETracerUNet, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STRUCTURE = ROOT / "data" / "demo_structures" / "2XDG.cif.gz"  # a small bundled wwPDB entry
CHAIN = "A"


def tree(path: Path) -> dict[str, bytes | None]:
    """Every file and folder below ``path`` (hidden ones too) with its bytes: what must not change."""
    return {
        str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))
    }


def run(argv: list[str], capsys) -> tuple[int, str]:
    """Run the CLI; return (exit code, stderr) and check the message is one line without a traceback."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    if code != 0:
        lines = [ln for ln in err.splitlines() if ln.startswith("cryosse: error:")]
        assert lines, err
        assert "Traceback" not in err, err
    return code, err


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A map simulated at 6 A from a bundled structure, and that structure."""
    folder = tmp_path_factory.mktemp("inputs")
    sim = simulate_density(gemmi.read_structure(str(STRUCTURE)), 6.0, 1.2, 10.0, 0.05, 0, 1)
    map_path = folder / "sim.mrc"
    write_map(map_path, sim.data, sim.geometry)
    return map_path, STRUCTURE


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, DeepSSETracerUNet(width=0.125), loss={"name": "FL_DL", "gamma": 1.0}, split=0)
    return path


def build_pair_args(map_path: Path, model: Path, out: Path) -> list:
    return ["build-pair", "--map", map_path, "--model", model, "--chain", CHAIN, "--out", out,
            "--resolution", "6", "--keep-any-bin"]  # fmt: skip


# ------------------------------------------------------------------ 1. build-pair never loses files


def test_build_pair_refuses_a_folder_of_other_files(tmp_path, inputs, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work")
    (out / "figures").mkdir()
    (out / "figures" / "f1.png").write_bytes(b"\x89PNG")
    before = tree(tmp_path)
    code, err = run(build_pair_args(*inputs, out), capsys)
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
        code, err = run(build_pair_args(folder / "map.mrc", folder / "model.cif.gz", out), capsys)
        assert code == 1 and "holds the input" in err and str(out) in err
        assert tree(tmp_path) == before


def test_build_pair_refuses_a_file_and_leaves_no_hidden_copy(tmp_path, inputs, capsys):
    out = tmp_path / "results.txt"
    out.write_text("a user's file")
    code, err = run(build_pair_args(*inputs, out), capsys)
    assert code == 1 and "not a folder" in err and str(out) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]
    assert out.read_text() == "a user's file"


def test_build_pair_replaces_only_its_own_pair_folder(tmp_path, inputs, capsys):
    out = tmp_path / "pair"
    out.mkdir()  # an empty folder is fine
    assert run(build_pair_args(*inputs, out), capsys)[0] == 0
    first = tree(out)
    assert set(first) == {"map.mrc", "labels.mrc", "arrays.npz", "record.json"}
    assert run(build_pair_args(*inputs, out), capsys)[0] == 0  # its own pair folder: replaced
    assert set(tree(out)) == set(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair"]  # no staging or .old folder left
    (out / "notes.txt").write_text("the user's notes beside the pair")
    before = tree(tmp_path)
    code, err = run(build_pair_args(*inputs, out), capsys)
    assert code == 1 and "notes.txt" in err
    assert tree(tmp_path) == before


def test_build_pair_removes_staging_left_by_a_killed_run(tmp_path, inputs, capsys):
    dead = 2**22 + 12345  # above any pid this machine hands out (pid_max is at most 2^22)
    stale = tmp_path / f".pair.tmp-{dead}-abcd"
    stale.mkdir()
    (stale / "map.mrc").write_bytes(b"half")
    live = tmp_path / f".pair.tmp-{os.getpid()}-efgh"  # a live process's: left alone
    live.mkdir()
    assert run(build_pair_args(*inputs, tmp_path / "pair"), capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "pair"]


# ------------------------------------------------------------------ 2. a bad id writes nothing anywhere


@pytest.mark.parametrize("command", ["fetch", "simulate"])
@pytest.mark.parametrize("entry", ["EMD-../../../../../x", "EMD-12/../../x", "../EMD-1234", "EMD-"])
def test_bad_entry_id_writes_nothing(tmp_path, monkeypatch, capsys, command, entry):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, err = run([command, entry, "--source", "local"] if command == "fetch" else [command, entry], capsys)
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
            main(["predict", str(inputs[0]), "-o", str(out), "--model", str(tiny_ckpt)])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exc.value.code == 128 + signal.SIGTERM and len(calls) == 3
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]  # no staging folder, no output


def test_predict_removes_stale_staging_and_never_mixes_two_predictions(tmp_path, inputs, tiny_ckpt, capsys):
    out = tmp_path / "out"
    assert run(["predict", inputs[0], "-o", out, "--model", tiny_ckpt], capsys)[0] == 0
    assert (out / "helix_trimmed.mrc").exists()
    dead = 2**22 + 54321
    stale = out / f".cryosse-predict-{dead}-xyz"
    stale.mkdir()
    (stale / "helix.mrc").write_bytes(b"\0" * 4096)
    (out / "mine.txt").write_text("keep")
    small = tmp_path / "small.mrc"  # too small to trim 17 A: the second prediction has no *_trimmed files
    rng = np.random.default_rng(0)
    from cryosse.geometry import MapGeometry

    write_map(small, rng.gamma(2.0, size=(20, 24, 28)).astype(np.float32), MapGeometry((20, 24, 28), (1.0,) * 3, (0.0,) * 3))
    assert run(["predict", small, "-o", out, "--model", tiny_ckpt], capsys)[0] == 0
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
    code, err = run(["predict", src, "-o", folder, "--model", tiny_ckpt], capsys)
    assert code == 1 and "would be overwritten" in err and str(src) in err
    assert tree(tmp_path) == before
