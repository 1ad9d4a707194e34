"""Deposited-like training boxes (cryosse.realism) and the network's fixed input low-pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from cryosse.density import input_preparation, normalise_density
from cryosse.infer import predict_probabilities, prepare_model, sliding_window_probabilities
from cryosse.model import DeepSSETracerUNet, GaussianLowPass, load_checkpoint, save_checkpoint
from cryosse.patches import PatchSampler
from cryosse.realism import Realism, deposited_like, postprocess

torch.set_num_threads(1)


def rods(n: int = 40, masked: bool = False) -> np.ndarray:
    """A normalised box of two blurred rods (a simulated map), optionally masked to exact zeros."""
    z, y, x = np.mgrid[:n, :n, :n].astype(np.float32)
    d = (((y - 12) ** 2 + (z - 12) ** 2) <= 6).astype(np.float32) + (((x - 26) ** 2 + (y - 26) ** 2) <= 6)
    d = ndimage.gaussian_filter(d, 1.8)
    if masked:
        d[ndimage.gaussian_filter(d, 2) < 0.05 * d.max()] = 0
    return normalise_density(d)


def high_share(box: np.ndarray, above: float = 1 / 5) -> float:
    """Share of the power (less the mean) at spatial frequency above ``above`` 1/A."""
    p = np.abs(np.fft.fftn(box - box.mean())) ** 2
    f = np.sqrt(sum(g**2 for g in np.meshgrid(*[np.fft.fftfreq(n) for n in box.shape], indexing="ij")))
    return float(p[f > above].sum() / p.sum())


def test_deposited_like_is_seeded_normalised_and_sharpens():
    box = rods()
    r = Realism(probability=1.0, sharpen_b=(-150, -150), cutoff=(4.5, 4.5), noise=(0, 0))
    a = deposited_like(box, np.random.default_rng(3), r)
    b = deposited_like(box, np.random.default_rng(3), r)
    assert np.array_equal(a, b) and a.dtype == np.float32 and a.shape == box.shape
    assert abs(float(a.mean())) < 1e-4 and abs(float(a.std()) - 1) < 1e-3
    assert high_share(a) > 2 * high_share(box)  # sharpened: more power at high frequency
    soft = deposited_like(box, np.random.default_rng(3), Realism(1.0, (0, 0), (9, 9), (0, 0)))
    assert high_share(soft, 1 / 8) < 0.5 * high_share(box, 1 / 8)  # low-passed at 9 A


def test_noise_and_cutoff_in_fourier_space():
    rng = np.random.default_rng(0)
    flat = np.zeros((32, 32, 32), np.float32)
    flat[16, 16, 16] = 1.0
    out = postprocess(flat, rng, b=0.0, cutoff=6.0, noise=1.0, noise_b=0.0)
    spec = np.abs(np.fft.fftn(out))
    f = np.sqrt(sum(g**2 for g in np.meshgrid(*[np.fft.fftfreq(32)] * 3, indexing="ij")))
    assert spec[f > 1.06 / 6].max() < 1e-3 * spec[f < 0.9 / 6].max()  # nothing beyond the soft edge
    assert float(out.std()) > 0  # the noise is there below it


def test_depositor_mask_is_kept():
    box = rods(masked=True)
    zeros = box == box.min()
    assert zeros.mean() > 0.3
    keep = deposited_like(box, np.random.default_rng(1), Realism(1.0, keep_mask=1.0))
    assert np.all(keep[zeros] == keep.min())
    lost = deposited_like(box, np.random.default_rng(1), Realism(1.0, keep_mask=0.0, noise=(0.5, 0.5)))
    assert len(np.unique(lost[zeros])) > 10


def test_realism_config_errors_name_the_key():
    assert Realism.from_mapping({"probability": 0.5, "cutoff": [5, 8]}).cutoff == (5.0, 8.0)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sharpen'\]"):
        Realism.from_mapping({"sharpen": [-100, 0]})
    with pytest.raises(ValueError, match="sharpen_b: \\[0.0, -100.0\\] is not a range"):
        Realism.from_mapping({"sharpen_b": [0, -100]})
    with pytest.raises(ValueError, match="cutoff must be over 2 A"):
        Realism.from_mapping({"cutoff": [1.5, 3]})
    with pytest.raises(ValueError, match="probability"):
        Realism.from_mapping({"probability": 2})


def test_sampler_applies_realism_to_a_share_of_draws():
    class P:
        pair_id, inside = "p", None
        density, labels = rods(), np.zeros((40, 40, 40), np.uint8)
        centre = (4, 36, 4, 36, 4, 36)

    plain = PatchSampler(patch=32)
    real = PatchSampler(patch=32, realism=Realism(probability=1.0, noise=(0.5, 0.5)))
    a = plain.window(P, np.random.default_rng(0))[0]
    b = real.window(P, np.random.default_rng(0))[0]
    assert a.shape == b.shape == (32, 32, 32) and not np.allclose(a, b)
    off = PatchSampler(patch=32, realism=Realism(probability=0.0))
    assert np.array_equal(off.window(P, np.random.default_rng(0))[0], a)


def test_input_lowpass_is_part_of_the_model(tmp_path):
    lp = GaussianLowPass(2.0)
    assert torch.allclose(lp(torch.full((1, 1, 9, 10, 11), 3.0)), torch.tensor(3.0))  # edges replicated
    x = torch.from_numpy(rods(24))[None, None]
    ref = torch.from_numpy(ndimage.gaussian_filter(rods(24), 2.0, mode="nearest", truncate=3.0))
    assert torch.allclose(lp(x)[0, 0], ref, atol=1e-4)
    torch.manual_seed(0)
    net = DeepSSETracerUNet(width=0.125, dropout=0.0, input_lowpass=2.0).eval()
    save_checkpoint(tmp_path / "lp.pt", net)
    got, _ = load_checkpoint(tmp_path / "lp.pt")
    assert got.model_args["input_lowpass"] == 2.0 and isinstance(got.lowpass, GaussianLowPass)
    plain = DeepSSETracerUNet(width=0.125, dropout=0.0).eval()
    plain.load_state_dict(net.state_dict())  # same weights: the low-pass has none
    assert "input_lowpass" not in plain.model_args  # older checkpoints: no key, no low-pass
    d = rods(24)
    with torch.no_grad():
        assert torch.allclose(
            net(torch.from_numpy(d)[None, None]), plain(lp(torch.from_numpy(d)[None, None]))
        )
    p = predict_probabilities(got, d, "cpu")
    for precision in ("fp32", "int8"):  # every fast path keeps the low-pass
        q = sliding_window_probabilities(prepare_model(got, torch.device("cpu"), precision, density=d), d)
        assert (q.argmax(0) == p.argmax(0)).mean() > 0.97, precision
    with pytest.raises(ValueError, match="input_lowpass -1"):
        DeepSSETracerUNet(input_lowpass=-1)
    steps = input_preparation(got.model_args)["steps"]
    assert steps[-1].startswith("Gaussian low-pass, sigma 2 A") and len(input_preparation({})["steps"]) == 2


def test_training_with_realism_and_low_pass_records_them(tmp_path):
    from conftest import synthetic_dataset
    from cryosse.train import TrainConfig, train_setting

    ds, split = synthetic_dataset(tmp_path, ["train", "val"])
    cfg = TrainConfig(width=0.125, max_epochs=1, patience=1, max_steps_per_epoch=2, device="cpu", threads=1,
                      dropout=0.0, patch=16, batch=2, input_lowpass=1.5,
                      realism={"probability": 1.0, "noise": [0.2, 0.4]})  # fmt: skip
    train_setting(ds, split, 0, "CE", "lr0.001", tmp_path / "run", cfg)
    got, saved = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert got.model_args["input_lowpass"] == 1.5 and isinstance(got.lowpass, GaussianLowPass)
    assert saved["train_config"]["realism"] == {"probability": 1.0, "noise": [0.2, 0.4]}
    assert saved["epoch"] == 1
    assert "input_spectrum" not in got.model_args
    cfg.match_spectrum, cfg.max_epochs = True, 1
    train_setting(ds, split, 0, "CE", "lr0.001", tmp_path / "spec", cfg)
    spec, _ = load_checkpoint(tmp_path / "spec" / "checkpoint.pt")
    assert len(spec.model_args["input_spectrum"]) == 50  # the training boxes' mean profile, kept
    cfg.realism = {"sharpen": [-100, 0]}
    with pytest.raises(ValueError, match="unknown key"):
        train_setting(ds, split, 0, "CE", "lr0.001", tmp_path / "bad", cfg)


def test_spectrum_matching_brings_sharp_and_soft_boxes_to_one_profile():
    from cryosse.spectrum import SHELLS, check_reference, match_spectrum, radial_profile, reference_profile

    box = rods(48)
    soft = normalise_density(ndimage.gaussian_filter(box, 2.5))
    sharp = deposited_like(box, np.random.default_rng(0), Realism(1.0, (-150, -150), (4.0, 4.0), (0, 0)))
    ref = reference_profile([box])
    band = slice(4, 20)  # 0.04-0.2 1/A: where a 5-10 A map has its detail

    def distance(b):
        return float(np.abs(np.log(radial_profile(b)[band] / np.asarray(ref)[band])).mean())

    for b in (soft, sharp):
        m = match_spectrum(b, ref)
        assert m.shape == b.shape and abs(float(m.mean())) < 1e-4 and abs(float(m.std()) - 1) < 1e-3
        assert distance(m) < 0.5 * distance(b), distance(b)
    assert np.allclose(
        match_spectrum(box, ref), box, atol=0.05
    )  # a box already on the reference barely moves
    assert len(ref) == SHELLS
    with pytest.raises(ValueError, match="no boxes"):
        reference_profile([])
    with pytest.raises(ValueError, match="50 finite amplitudes"):
        check_reference([1.0, 2.0])


def test_the_model_carries_its_input_preparation(tmp_path):
    from cryosse.density import prepare_input
    from cryosse.spectrum import reference_profile

    ref = reference_profile([rods(32)])
    net = DeepSSETracerUNet(width=0.125, dropout=0.0, input_spectrum=ref)
    save_checkpoint(tmp_path / "s.pt", net)
    got, _ = load_checkpoint(tmp_path / "s.pt")
    assert got.model_args["input_spectrum"] == pytest.approx(ref)
    d = normalise_density(ndimage.gaussian_filter(rods(32), 2.0))
    assert not np.allclose(prepare_input(d, got.model_args), d)
    assert prepare_input(d, {}) is d  # a model without one: the box as it is
    steps = input_preparation(got.model_args)["steps"]
    assert any("amplitudes brought to the training maps' radial profile" in s for s in steps)


def test_predict_prepares_the_map_as_the_model_was_trained(tmp_path):
    from cryosse.geometry import MapGeometry, write_map
    from cryosse.infer import predict_probabilities
    from cryosse.predict import network_input, predict_map
    from cryosse.spectrum import reference_profile

    torch.manual_seed(1)
    net = DeepSSETracerUNet(width=0.125, dropout=0.0, input_spectrum=reference_profile([rods(32)])).eval()
    save_checkpoint(tmp_path / "s.pt", net)
    raw = ndimage.gaussian_filter(rods(36), 1.0) + 3.0
    write_map(
        tmp_path / "m.mrc", raw.astype(np.float32), MapGeometry(raw.shape, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    )
    s = predict_map(tmp_path / "m.mrc", tmp_path / "out", model=tmp_path / "s.pt", precision="fp32")
    assert any("radial profile" in step for step in s["input_preparation"]["steps"])
    from cryosse.geometry import read_map

    _, density, _ = network_input(read_map(tmp_path / "m.mrc"), 1.0, net.model_args)
    ref = predict_probabilities(net, density, "cpu")[1]  # helix probability, prepared the same way
    got = np.asarray(read_map(tmp_path / "out" / "helix_prob.mrc").data)
    assert np.abs(got - ref).max() < 1e-3


def test_fine_tuning_keeps_the_input_preparation_of_its_start(tmp_path):
    from conftest import synthetic_dataset
    from cryosse.spectrum import reference_profile
    from cryosse.train import TrainConfig, train_setting

    ds, split = synthetic_dataset(tmp_path, ["train", "val"])
    ref = reference_profile([rods(32)])
    save_checkpoint(tmp_path / "start.pt", DeepSSETracerUNet(width=0.125, dropout=0.0, input_lowpass=1.0,
                                                             input_spectrum=ref))  # fmt: skip
    cfg = TrainConfig(width=0.125, max_epochs=1, patience=1, max_steps_per_epoch=1, device="cpu", threads=1,
                      dropout=0.0, patch=16, init_from=str(tmp_path / "start.pt"))  # fmt: skip
    train_setting(ds, split, 0, "CE", "lr0.001", tmp_path / "ft", cfg)
    got, _ = load_checkpoint(tmp_path / "ft" / "checkpoint.pt")
    assert got.model_args["input_spectrum"] == pytest.approx(ref) and got.model_args["input_lowpass"] == 1.0
