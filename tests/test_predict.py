"""``cryosse predict``: outputs on the input's frame, tiling, fast path, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch
from torch import nn

from cryosse.cli import main as cli_main
from cryosse.geometry import MapGeometry, read_map
from cryosse.infer import (
    FastModel,
    conv_flops,
    cpu_supports_bf16,
    fold_batchnorm,
    normalise_density,
    plan_tiles,
    predict_probabilities,
    prepare_model,
    resolve_precision,
    sliding_window_probabilities,
)
from cryosse.io import read_json
from cryosse.model import DeepSSETracerUNet, save_checkpoint
from cryosse.predict import (
    MODEL_ENV,
    labels_from_probabilities,
    predict_map,
    prediction_grid,
)

torch.set_num_threads(2)

MAPS = {
    "box_1A_origin": "emd3491_5mdx_L/L-1.0APIX.mrc",
    "seg_1.05A_nstart": "emd21457_6vyb_ntd/emd_21457_seg_nstart.mrc",
    "gz_11.4A_nstart": "emd3197_format/emd_3197.map.gz",
}
GROEL = "emd1997_groel/1997.map"
MASKS = ("helix.mrc", "sheet.mrc", "helix_prob.mrc", "sheet_prob.mrc")


@pytest.fixture(scope="session")
def trained(real, tmp_path_factory):
    """A width-0.125 network trained briefly on EMD-8518 / 5U8S chain A with the authors'
    voxel labels, so that its predictions have realistic confidence (a random network's
    classes sit on a knife edge everywhere). Returns (checkpoint, normalised density)."""
    d = real / "emd8518_5u8s_A"
    density = normalise_density(np.asarray(read_map(d / "A-1.0APIX.mrc").data))
    labels = np.zeros(density.shape, np.int64)
    rows = np.loadtxt(d / "A_label_stride.txt", delimiter=",")
    i, j, k = (rows[:, c].astype(int) for c in range(3))
    labels[k, j, i] = rows[:, 4].astype(int)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = DeepSSETracerUNet(width=0.125)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    weight = torch.tensor([1.0, 3.0, 10.0])
    p, bf16 = 32, cpu_supports_bf16()  # bf16 training where native: 2-3x less CPU time
    for _ in range(30):
        o = [int(rng.integers(0, n - p + 1)) for n in density.shape]
        sl = tuple(slice(a, a + p) for a in o)
        x = torch.from_numpy(density[sl].copy())[None, None]
        y = torch.from_numpy(labels[sl].copy())[None]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        loss = nn.functional.cross_entropy(logits.float(), y, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("trained") / "trained.pt"
    save_checkpoint(path, net, loss={"name": "CE"}, split=0, epoch=30)
    return path, density


def _listing(path):
    return sorted(p.name for p in path.iterdir()) if path.exists() else None


# --- outputs overlay the input -------------------------------------------------------------


@pytest.mark.parametrize("name", list(MAPS))
def test_outputs_overlay_the_input(real, tiny_ckpt, tmp_path, name):
    src = real / MAPS[name]
    out = tmp_path / "out"
    summary = predict_map(src, out, model=tiny_ckpt)
    _check_overlay(src, out, summary)


def test_warns_on_maps_unlike_the_training_maps(real, tiny_ckpt, tmp_path, caplog):
    from cryosse.predict import input_warnings

    assert input_warnings((1.0, 1.0, 1.0), 6.5) == [] and input_warnings((2.02, 2.02, 2.02), None) == []
    assert "blur it" in input_warnings((1.05,) * 3, 3.2)[0]
    with caplog.at_level("WARNING", logger="cryosse.predict"):
        s = predict_map(real / MAPS["gz_11.4A_nstart"], tmp_path / "o", model=tiny_ckpt, resolution=30.0)
    assert len(s["warnings"]) == 2 and "11.40 A hold no detail finer than 22.8 A" in s["warnings"][0]
    assert "emd_3197.map.gz" in caplog.text and "outside the 5-10 A" in caplog.text
    assert caplog.text.count("Nyquist") == 1 and "coarser than" not in caplog.text  # one warning per cause


def _check_overlay(src, out, summary):
    inp = read_map(src).geometry
    half = np.asarray(inp.voxel_size) / 2
    for fname in MASKS:
        got = read_map(out / fname).geometry
        assert got.shape_zyx == inp.shape_zyx, fname
        np.testing.assert_allclose(got.voxel_size, inp.voxel_size, rtol=1e-5)
        # same origin and extent (first and last voxel centres) within half a voxel
        assert np.all(np.abs(got.lower - inp.lower) < half), fname
        assert np.all(np.abs(got.upper - inp.upper) < half), fname
        with mrcfile.open(out / fname, permissive=False) as m:  # a valid MRC file, origin in ORIGIN
            assert (int(m.header.nxstart), int(m.header.nystart), int(m.header.nzstart)) == (0, 0, 0)
    helix = np.asarray(read_map(out / "helix.mrc").data)
    sheet = np.asarray(read_map(out / "sheet.mrc").data)
    assert set(np.unique(helix)) <= {0, 1} and set(np.unique(sheet)) <= {0, 1}
    assert not np.any(helix & sheet)
    assert summary["full"]["helix_voxels"] == int(helix.sum())
    assert summary["full"]["sheet_voxels"] == int(sheet.sum())
    vol = float(np.prod(inp.voxel_size))
    assert summary["full"]["sheet_volume_A3"] == pytest.approx(int(sheet.sum()) * vol)
    # probabilities resampled back stay probabilities
    hp = np.asarray(read_map(out / "helix_prob.mrc").data)
    sp = np.asarray(read_map(out / "sheet_prob.mrc").data)
    assert hp.min() >= 0 and sp.min() >= 0 and (hp + sp).max() <= 1 + 1e-5
    # trimmed outputs: at least 17 A less on each face, on the same lattice
    n = np.asarray(summary["trim_voxels_xyz"])
    assert np.all(n * np.asarray(inp.voxel_size) >= 17.0 - 1e-6)
    assert np.all((n - 1) * np.asarray(inp.voxel_size) < 17.0)
    for fname in MASKS:
        t = read_map(out / fname.replace(".mrc", "_trimmed.mrc"))
        np.testing.assert_allclose(t.geometry.lower, inp.lower + n * np.asarray(inp.voxel_size), atol=1e-3)
        np.testing.assert_allclose(t.geometry.upper, inp.upper - n * np.asarray(inp.voxel_size), atol=1e-3)
        full = np.asarray(read_map(out / fname).data)
        np.testing.assert_array_equal(
            np.asarray(t.data),
            full[n[2] : full.shape[0] - n[2], n[1] : full.shape[1] - n[1], n[0] : full.shape[2] - n[0]],
        )
    assert _listing(out) == sorted(summary["files"])
    s = read_json(out / "summary.json")
    assert s["model"]["weights_sha256"] and s["device"] == "cpu" and s["timing_s"]["total"] > 0
    assert s["input"]["geometry"] == inp.to_xyz_dict()
    # one axis order in the whole file, stated: no key says zyx
    assert s["axis_order"].startswith("x, y, z") and "zyx" not in json.dumps(s)
    assert s["input"]["geometry"]["shape_xyz"] == list(inp.shape_zyx[::-1])


def test_groel_comes_back_on_its_own_frame(real, tiny_ckpt, tmp_path):
    """EMD-1997: 2.02 A voxels, NSTART -50: the network runs on 1 A, the outputs do not."""
    s = predict_map(real / GROEL, tmp_path, model=tiny_ckpt)
    _check_overlay(real / GROEL, tmp_path, s)
    assert s["grid"]["resampled"] and s["grid"]["voxel_size_xyz"] == [1.0, 1.0, 1.0]
    assert s["grid"]["shape_xyz"] == [201, 201, 201]  # 99 * 2.02 A = 200 A, covered
    g = read_map(tmp_path / "helix.mrc").geometry
    assert g.shape_zyx == (100, 100, 100)
    assert g.voxel_size == pytest.approx((2.02, 2.02, 2.02))
    assert g.origin_xyz == pytest.approx((-101.0, -101.0, -101.0))
    with mrcfile.open(tmp_path / "sheet.mrc") as m:  # what ChimeraX reads
        assert float(m.header.origin.x) == pytest.approx(-101.0)
        assert float(m.voxel_size.x) == pytest.approx(2.02, rel=1e-5)
    t = read_map(tmp_path / "sheet_trimmed.mrc").geometry
    assert t.shape_zyx == (82, 82, 82) and t.origin_xyz == pytest.approx((-101 + 9 * 2.02,) * 3)
    cmds = run_chimerax_script(tmp_path / "chimerax.py")
    assert cmds[0] == f'open "{(real / GROEL).resolve()}" format mrc' or str(real / GROEL) in cmds[0]
    assert any(c.startswith("volume #7 style mesh level") for c in cmds)  # the map, at a level
    assert (
        any("helix_prob.mrc" in c for c in cmds) and "volume #8 level 0.5 color yellow style surface" in cmds
    )
    assert "volume #9 level 0.5 color cyan style surface" in cmds
    # named after the output folder (two predictions are told apart); a busy session keeps its view
    name = tmp_path.name
    assert f'rename #8 "{name} helix probability"' in cmds and f'rename #7 "{name} map"' in cmds
    assert "view" not in cmds and "view" in run_chimerax_script(tmp_path / "chimerax.py", busy=False)


def run_chimerax_script(path, first_id: int = 7, busy: bool = True):
    """Run a chimerax.py as ChimeraX would, with a stand-in for its command runner: a session
    that already holds models #1-#6 (``busy``), so hard-coded numbers would address the wrong
    models; or an empty one."""
    import sys
    import types

    cmds: list[str] = []
    ids = iter(range(first_id, first_id + 50))

    def run(session, cmd):
        cmds.append(cmd)
        if cmd.startswith("open "):
            assert Path(cmd.split('"')[1]).exists(), cmd
            return [types.SimpleNamespace(atomspec=f"#{next(ids)}")]
        return []

    mods = {"chimerax": types.ModuleType("chimerax"), "chimerax.core": types.ModuleType("chimerax.core"),
            "chimerax.core.commands": types.ModuleType("chimerax.core.commands")}  # fmt: skip
    mods["chimerax.core.commands"].run = run
    session = types.SimpleNamespace(
        logger=types.SimpleNamespace(warning=lambda msg: cmds.append("WARN " + msg)),
        models=types.SimpleNamespace(list=lambda: [f"#{i}" for i in range(1, first_id)] if busy else []),
    )
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        exec(compile(Path(path).read_text(), str(path), "exec"), {"session": session, "__file__": str(path)})
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return cmds


def test_chimerax_script_survives_a_move_and_a_missing_map(tiny_ckpt, tmp_path):
    src = tmp_path / "maps" / "small.mrc"
    src.parent.mkdir()
    _write_mrc(src, np.random.default_rng(4).gamma(2.0, size=(20, 30, 40)), voxel=1.0)
    predict_map(src, tmp_path / "out", model=tiny_ckpt, contour=2.5)
    cmds = run_chimerax_script(tmp_path / "out" / "chimerax.py")
    assert "volume #7 style mesh level 2.5" in cmds  # the --contour level
    moved = tmp_path / "elsewhere" / "deeper" / "out"
    moved.parent.mkdir(parents=True)
    (tmp_path / "out").rename(moved)
    cmds = run_chimerax_script(moved / "chimerax.py")  # masks beside the script; the map by its absolute path
    assert any(str(src) in c for c in cmds[:1]) and "volume #9 level 0.5 color cyan style surface" in cmds
    src.unlink()
    cmds = run_chimerax_script(moved / "chimerax.py")
    assert cmds[0].startswith("WARN") and "volume #7 level 0.5 color yellow style surface" in cmds


def test_contour_sets_low_density_to_background(tiny_ckpt, tmp_path):
    src = tmp_path / "m.mrc"
    data = np.random.default_rng(5).gamma(2.0, size=(40, 40, 40)).astype(np.float32)
    _write_mrc(src, data, voxel=1.0)
    s = predict_map(src, tmp_path / "o", model=tiny_ckpt, contour=3.0, precision="fp32")
    low = data < 3.0
    for name in ("helix", "sheet"):
        assert not np.asarray(mrcfile.read(tmp_path / "o" / f"{name}.mrc"))[low].any()
        assert not np.asarray(mrcfile.read(tmp_path / "o" / f"{name}_prob.mrc"))[low].any()
    assert s["contour"] == 3.0


def test_prediction_grid_covers_the_input():
    g = MapGeometry((10, 7, 5), (2.02, 1.7, 3.3), (-50.5, 3.0, 7.25))
    p = prediction_grid(g, 1.0)
    assert p.origin_xyz == g.origin_xyz
    assert np.all(p.upper >= g.upper - 1e-9) and np.all(p.upper - g.upper < 1.0)
    same = MapGeometry((4, 5, 6), (1.0, 1.0, 1.0), (1.5, 2.5, 3.5))
    assert prediction_grid(same, 1.0) == same


def test_labels_are_the_argmax():
    rng = np.random.default_rng(1)
    p = rng.dirichlet([1, 1, 1], size=(6, 7, 8)).transpose(3, 0, 1, 2).astype(np.float32)
    h, s = labels_from_probabilities(p[1], p[2])
    lab = p.argmax(0)
    np.testing.assert_array_equal(h, lab == 1)
    np.testing.assert_array_equal(s, lab == 2)


# --- tiles ---------------------------------------------------------------------------------


def test_tile_plan_covers_aligned_and_bounded():
    plan = plan_tiles((150, 61, 37), tile=48, overlap=16)
    assert plan.padded == (152, 64, 40)
    for starts, size, n in zip(plan.starts, plan.sizes, plan.padded, strict=True):
        assert all(s % 4 == 0 for s in starts) and size % 4 == 0 and size <= 48
        assert starts[0] == 0 and starts[-1] + size == n
        assert all(b - a <= size - 16 for a, b in zip(starts[:-1], starts[1:], strict=True))  # overlap >= 16
    for tot in plan.totals:
        assert tot.min() > 0
    assert plan_tiles((40, 40, 40), tile=48, overlap=16).n_tiles == 1  # fits one pass
    assert plan_tiles((400, 400, 400), tile=0).n_tiles == 1
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles((200, 200, 200), tile=32, overlap=32)


def _const_model(logits):
    conv = nn.Conv3d(1, len(logits), 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor(logits))
    return FastModel(conv.eval(), torch.device("cpu"), torch.float32, False)


def test_blending_normalises_exactly():
    """A network with a constant answer gives that answer everywhere, however it is tiled."""
    fm = _const_model([0.0, np.log(2.0), np.log(3.0)])
    d = np.random.default_rng(0).normal(size=(70, 45, 33)).astype(np.float32)
    out = sliding_window_probabilities(fm, d, tile=24, overlap=8)
    np.testing.assert_allclose(
        out, np.broadcast_to(np.array([1, 2, 3.0])[:, None, None, None] / 6, out.shape), rtol=1e-5
    )
    kept = sliding_window_probabilities(fm, d, tile=24, overlap=8, classes=(1, 2))
    np.testing.assert_allclose(kept, out[1:], rtol=1e-6)


def test_local_network_is_tiled_exactly():
    """A network without context (1x1x1 convolutions) gives the single-pass answer on tiles."""
    net = nn.Sequential(nn.Conv3d(1, 4, 1), nn.ReLU(), nn.Conv3d(4, 3, 1)).eval()
    fm = FastModel(net, torch.device("cpu"), torch.float32, False)
    d = np.random.default_rng(2).normal(size=(50, 41, 29)).astype(np.float32)
    np.testing.assert_allclose(
        sliding_window_probabilities(fm, d, tile=16, overlap=8),
        sliding_window_probabilities(fm, d, tile=0),
        atol=1e-6,
    )


def test_tiled_agrees_with_single_pass(trained):
    ckpt, density = trained
    from cryosse.model import load_checkpoint

    net, _ = load_checkpoint(ckpt)
    fm = prepare_model(net, "cpu", "fp32")
    single = sliding_window_probabilities(fm, density, tile=0)
    labels = single.argmax(0)
    counts = np.bincount(labels.ravel(), minlength=3) / labels.size
    assert counts.max() < 0.99, f"the test network predicts one class only ({counts}); the test would be void"
    plan = plan_tiles(density.shape, tile=64, overlap=32)
    assert plan.n_tiles > 1
    tiled = sliding_window_probabilities(fm, density, tile=64, overlap=32)
    assert (tiled.argmax(0) == labels).mean() >= 0.999


def test_tiled_agrees_with_single_pass_through_predict(real, trained, tmp_path):
    ckpt, _ = trained
    src = real / "emd8518_5u8s_A" / "A-1.0APIX.mrc"
    a = predict_map(src, tmp_path / "one", model=ckpt, precision="fp32", tile=0)
    b = predict_map(src, tmp_path / "tiles", model=ckpt, precision="fp32", tile=64, overlap=32)
    assert a["tiling"]["n_tiles"] == 1 and b["tiling"]["n_tiles"] > 1
    for name in ("helix.mrc", "sheet.mrc"):
        x = np.asarray(read_map(tmp_path / "one" / name).data)
        y = np.asarray(read_map(tmp_path / "tiles" / name).data)
        assert (x == y).mean() >= 0.999, name
    assert a["full"]["helix_voxels"] > 0


# --- fast path -----------------------------------------------------------------------------


def test_fold_batchnorm_keeps_the_function():
    torch.manual_seed(3)
    net = DeepSSETracerUNet(width=0.125).eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm3d) for m in net.modules())  # original untouched
    x = torch.randn(1, 1, 16, 24, 20)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-4)


def test_fast_fp32_matches_the_reference(trained):
    """Folded batch norm, channels-last and padding to 4 instead of 8: same labels."""
    from cryosse.model import load_checkpoint

    ckpt, density = trained
    net, _ = load_checkpoint(ckpt)
    ref = predict_probabilities(net, density).argmax(0)
    fast = sliding_window_probabilities(prepare_model(net, "cpu", "fp32"), density).argmax(0)
    assert (fast == ref).mean() >= 0.999


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16")
def test_bf16_matches_fp32(trained):
    from cryosse.model import load_checkpoint

    ckpt, density = trained
    net, _ = load_checkpoint(ckpt)
    p32 = sliding_window_probabilities(prepare_model(net, "cpu", "fp32"), density)
    p16 = sliding_window_probabilities(prepare_model(net, "cpu", "bf16"), density)
    assert (p16.argmax(0) == p32.argmax(0)).mean() >= 0.995
    assert np.abs(p16 - p32).mean() < 0.01


SAMPLE_MAP = Path(__file__).resolve().parents[1] / "data" / "sample" / "emd_8518_5u8s_A_box.mrc.gz"


def test_quantizable_unet_computes_the_network():
    """The int8 path's copy of the forward pass, before quantization, is the network itself."""
    from cryosse.model import QuantizableUNet

    torch.manual_seed(5)
    net = DeepSSETracerUNet(width=0.125).eval()
    x = torch.randn(1, 1, 16, 24, 20)
    with torch.no_grad():
        torch.testing.assert_close(
            QuantizableUNet(fold_batchnorm(net)).eval()(x), net(x), rtol=1e-4, atol=1e-4
        )
    with pytest.raises(ValueError, match="batch norm folded"):
        QuantizableUNet(net)


def test_int8_calibrates_on_the_densest_cube():
    """Not the centre: GroEL's centre is its cavity, and int8 calibrated on solvent labelled
    the whole map sheet (found by running EMD-1997)."""
    from cryosse.infer import calibration_cube

    d = np.zeros((70, 90, 50), np.float32)
    d[50:66, 4:20, 30:46] = 5.0  # the only protein, in a corner
    cube = calibration_cube(d, 32)
    assert cube.shape == (32, 32, 32) and cube.sum() == 5.0 * 16**3
    small = calibration_cube(np.ones((10, 40, 6), np.float32), 32)
    assert small.shape == (12, 32, 8)  # the whole box along shorter axes, padded to 4


def test_int8_keeps_groel_like_fp32(real, tmp_path):
    """Measured: 99.95 % of voxels equal, helix masks at Dice 0.90 and sheet 0.97 against fp32
    (the shipped model's helix calls on GroEL are marginal, so int8's rounding moves some)."""
    for o, prec in (("i8", "int8"), ("f32", "fp32")):
        predict_map(real / GROEL, tmp_path / o, precision=prec, trim=0)
    for c in ("helix", "sheet"):
        a, b = (np.asarray(read_map(tmp_path / o / f"{c}.mrc").data).astype(bool) for o in ("i8", "f32"))
        assert (a == b).mean() >= 0.995, c
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.85, c


def test_int8_matches_fp32_with_the_shipped_model(tmp_path):
    """int8 runs quantized kernels and keeps fp32's labels on >= 99.5 % of the sample map's
    voxels (measured 99.95 %); it is refused on CUDA and without a calibration box."""
    from torch.ao.nn.intrinsic.quantized import ConvReLU3d

    from cryosse.model import load_checkpoint, shipped_model_path

    net, _ = load_checkpoint(shipped_model_path())
    density = normalise_density(np.asarray(read_map(SAMPLE_MAP).data))
    fm = prepare_model(net, "cpu", "int8", density=density)
    assert fm.precision == "int8" and any(isinstance(m, ConvReLU3d) for m in fm.module.modules())
    p8 = sliding_window_probabilities(fm, density).argmax(0)
    p32 = sliding_window_probabilities(prepare_model(net, "cpu", "fp32"), density).argmax(0)
    assert (p8 == p32).mean() >= 0.995
    assert (p32 > 0).sum() > 1000  # the comparison includes helix voxels, not only solvent
    with pytest.raises(ValueError, match="calibration"):
        prepare_model(net, "cpu", "int8")
    with pytest.raises(ValueError, match="int8 is for CPUs"):
        resolve_precision("int8", torch.device("cuda"))
    s = predict_map(SAMPLE_MAP, tmp_path / "o", precision="int8", trim=0)
    assert s["precision"] == "int8" and s["timing_s"]["prepare_model"] > 0


def test_conv_flops_counts_every_layer():
    net = DeepSSETracerUNet(width=1.0)
    d, h, w = 8, 12, 16
    full, half, quarter = d * h * w, d * h * w // 8, d * h * w // 64
    macs = (
        full * 27 * (1 * 32 + 32 * 64)
        + half * 27 * (64 * 64 + 64 * 128)
        + quarter * 27 * (128 * 128 + 128 * 256)
        + quarter * 8 * 256 * 256  # transposed conv: every input voxel
        + half * 27 * (384 * 128 + 128 * 128)
        + half * 8 * 128 * 128
        + full * 27 * (192 * 64 + 64 * 64)
        + full * 64 * 3
    )
    assert conv_flops(net, (d, h, w)) == 2 * macs


# --- model search and bad input ------------------------------------------------------------


def test_default_model_search(real, tiny_ckpt, tmp_path, monkeypatch, capsys):
    import cryosse.predict as predict

    monkeypatch.delenv(MODEL_ENV, raising=False)
    src = real / MAPS["box_1A_origin"]
    missing = tmp_path / "site" / "cryosse" / "data" / "default_model.pt"
    monkeypatch.setattr(predict, "shipped_model_path", lambda: missing)
    assert cli_main(["predict", str(src), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "missing" in err and "--checkpoint" in err
    assert not (tmp_path / "out").exists()
    missing.parent.mkdir(parents=True)
    missing.write_bytes(tiny_ckpt.read_bytes()[:3000])  # damaged
    assert cli_main(["predict", str(src), "-o", str(tmp_path / "out")]) == 1
    assert str(missing) in capsys.readouterr().err and not (tmp_path / "out").exists()
    missing.write_bytes(tiny_ckpt.read_bytes())
    assert cli_main(["predict", str(src), "-o", str(tmp_path / "out"), "--precision", "fp32"]) == 0
    s = read_json(tmp_path / "out" / "summary.json")
    assert s["model"]["default"] and s["model"]["path"] == str(missing.resolve())
    monkeypatch.setenv(MODEL_ENV, str(tiny_ckpt))
    assert cli_main(["predict", str(src), "-o", str(tmp_path / "out2"), "--precision", "fp32"]) == 0
    assert read_json(tmp_path / "out2" / "summary.json")["model"]["path"] == str(tiny_ckpt.resolve())
    assert "chimerax.py" in capsys.readouterr().out


def _write_mrc(path, data, voxel=1.0):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.asarray(data, np.float32))
        m.voxel_size = voxel


def _bad_map(kind, tmp):
    p = tmp / f"{kind}.mrc"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "not_mrc":
        p.write_text("this is a PDB file, not a map\n" * 100)
    elif kind == "short_text":
        p = tmp / "notes.map.gz"
        p.write_bytes(gzip.compress(b"hello"))
    elif kind == "image_2d":
        _write_mrc(p, np.random.default_rng(0).random((1, 40, 40)))
    elif kind == "all_zero":
        _write_mrc(p, np.zeros((24, 24, 24)))
    elif kind == "all_zero_2A":
        _write_mrc(p, np.zeros((24, 24, 24)), voxel=2.0)
    elif kind == "nan":
        d = np.random.default_rng(0).random((24, 24, 24))
        d[3, 4, 5] = np.nan
        _write_mrc(p, d)
    elif kind == "nan_2A":
        d = np.random.default_rng(0).random((24, 24, 24))
        d[12, 12, 12] = np.nan
        _write_mrc(p, d, voxel=2.0)
    return p


@pytest.mark.filterwarnings("ignore:Data array contains NaN")
@pytest.mark.parametrize(
    "kind,message",
    [
        ("empty", "empty"),
        ("not_mrc", "not an MRC"),
        ("short_text", "not an MRC"),
        ("image_2d", "2D image"),
        ("all_zero", "no positive value"),
        ("all_zero_2A", "no positive value"),
        ("nan", "NaN"),
        ("nan_2A", "NaN"),
    ],
)
def test_bad_maps_fail_clearly_and_write_nothing(tiny_ckpt, tmp_path, kind, message):
    src = _bad_map(kind, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("a file of the user's")
    with pytest.raises(ValueError, match=message) as exc:
        predict_map(src, out, model=tiny_ckpt)
    assert str(src) in str(exc.value)
    assert _listing(out) == ["mine.txt"]
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError):
        predict_map(src, fresh, model=tiny_ckpt)
    assert not fresh.exists()


class _OtherNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.model_args = {"width": 0.125}
        self.conv = nn.Conv3d(1, 3, 3)


def _bad_ckpt(kind, tmp, good):
    p = tmp / f"{kind}.pt"
    if kind == "other_arch":
        ck = torch.load(good, weights_only=True)
        ck["arch"] = "UNet2D"
        torch.save(ck, p)
    elif kind == "wrong_weights":  # our architecture's name, another network's weights
        save_checkpoint(p, _OtherNet())
    elif kind == "tampered":
        ck = torch.load(good, weights_only=True)
        key = next(k for k in ck["state_dict"] if k.endswith("weight"))
        ck["state_dict"][key] = ck["state_dict"][key] + 1e-3
        torch.save(ck, p)
    elif kind == "truncated":
        p.write_bytes(good.read_bytes()[:2000])
    elif kind == "missing":
        pass
    return p


@pytest.mark.parametrize(
    "kind,message",
    [
        ("other_arch", "architecture"),
        ("wrong_weights", "do not fit"),
        ("tampered", "sha256"),
        ("truncated", "not a readable checkpoint"),
        ("missing", "no such checkpoint"),
    ],
)
def test_bad_checkpoints_fail_clearly_and_write_nothing(real, tiny_ckpt, tmp_path, kind, message, capsys):
    ck = _bad_ckpt(kind, tmp_path, tiny_ckpt)
    out = tmp_path / "out"
    assert (
        cli_main(["predict", str(real / MAPS["box_1A_origin"]), "--checkpoint", str(ck), "-o", str(out)]) == 1
    )
    err = capsys.readouterr().err
    assert message in err and str(ck) in err
    assert not out.exists()


def test_cuda_asked_without_cuda(real, tiny_ckpt, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        predict_map(real / MAPS["box_1A_origin"], tmp_path / "o", model=tiny_ckpt, device="cuda")
    assert not (tmp_path / "o").exists()


def test_small_map_has_no_trimmed_outputs(tiny_ckpt, tmp_path):
    src = tmp_path / "small.mrc"
    _write_mrc(src, np.random.default_rng(4).gamma(2.0, size=(20, 30, 40)), voxel=1.0)
    s = predict_map(src, tmp_path / "o", model=tiny_ckpt, trim=17.0)
    assert s["trimmed"] is None and "too small" in s["trimmed_note"]
    assert not list((tmp_path / "o").glob("*_trimmed.mrc"))
    assert "helix_trimmed" not in (tmp_path / "o" / "chimerax.py").read_text()
    s = predict_map(src, tmp_path / "o5", model=tiny_ckpt, trim=5.0)
    assert read_map(tmp_path / "o5" / "helix_trimmed.mrc").geometry.shape_zyx == (10, 20, 30)


def test_auto_precision_is_the_faster_path_here_and_remembered(tiny_ckpt, monkeypatch, tmp_path):
    """auto times fp32 and bf16 on this CPU and keeps the faster (flags cannot tell: this
    project's machines report AVX512-BF16 and run bf16 convolutions 4-5x slower); the choice is
    remembered per CPU, thread count, torch and network, so the next run does not time again."""
    import cryosse.infer as infer
    from cryosse.model import load_checkpoint

    monkeypatch.setenv("CRYOSSE_CACHE", str(tmp_path / "cache"))
    net, _ = load_checkpoint(tiny_ckpt)
    fm = prepare_model(net, "cpu", "auto")
    assert set(fm.timed["seconds"]) == {"fp32", "bf16"} and fm.timed["cached"] is False
    faster = min(fm.timed["seconds"], key=fm.timed["seconds"].get)
    assert str(fm.dtype).endswith("float32" if faster == "fp32" else "bfloat16")
    assert prepare_model(net, "cpu", "fp32").timed == {}  # an explicit choice is not timed
    calls = []
    monkeypatch.setattr(
        infer, "faster_on_cpu", lambda m, cl: calls.append(1) or (torch.bfloat16, {"fp32": 2.0, "bf16": 1.0})
    )
    again = prepare_model(net, "cpu", "auto")
    assert not calls and again.timed["cached"] is True and again.dtype == fm.dtype  # remembered
    torch.set_num_threads(torch.get_num_threads() + 1)  # another thread count: timed anew
    try:
        assert prepare_model(net, "cpu", "auto").dtype == torch.bfloat16 and calls == [1]
    finally:
        torch.set_num_threads(torch.get_num_threads() - 1)
    (tmp_path / "cache" / "precision.json").write_text("not json")  # a damaged cache: timed again
    assert prepare_model(net, "cpu", "auto").timed["cached"] is False and calls == [1, 1]
