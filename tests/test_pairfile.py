"""The pair file's contract: what the writer stores, every reader reads back the same."""

from __future__ import annotations

import numpy as np
import pytest

from cryosse.evaluate import load_pair_arrays
from cryosse.pairfile import REQUIRED, CentreBox, read_pair_arrays, write_pair_arrays
from cryosse.train import load_pair


def _arrays(rng, shape=(12, 10, 8)):
    return dict(
        density=rng.normal(size=shape),
        labels=rng.integers(0, 3, size=shape),
        centre=[2, 10, 1, 9, 3, 7],
        ca_xyz=rng.normal(size=(5, 3)),
        ca_class=[1, 1, 2, 0, 2],
        ca_in_centre=[1, 1, 0, 1, 1],
        origin_xyz=(1.5, -2.0, 3.25),
        voxel_size=1.0,
    )


def test_written_pair_reads_back_alike_everywhere(tmp_path):
    rng = np.random.default_rng(0)
    a = _arrays(rng)
    inside = np.ones(a["density"].shape, bool)
    inside[0] = False
    write_pair_arrays(tmp_path / "arrays.npz", **a, inside=inside)
    pair = read_pair_arrays(tmp_path, "1_ABCD_A")
    assert pair.pair_id == "1_ABCD_A" and pair.centre == CentreBox(2, 10, 1, 9, 3, 7)
    assert pair.density.dtype == np.float32 and pair.labels.dtype == np.uint8
    np.testing.assert_array_equal(pair.density, np.asarray(a["density"], np.float32))
    np.testing.assert_array_equal(pair.inside, inside)
    assert pair.density[pair.centre.slices].shape == (8, 8, 4)
    stored = pair.arrays
    assert set(REQUIRED) | {"inside"} == set(stored)
    assert stored["ca_class"].dtype == np.uint8 and stored["ca_in_centre"].dtype == bool
    assert stored["origin_xyz"].tolist() == [1.5, -2.0, 3.25] and float(stored["voxel_size"]) == 1.0
    # training's reader and the evaluation's see the same arrays
    t = load_pair("1_ABCD_A", tmp_path)
    e = load_pair_arrays(tmp_path / "arrays.npz")
    np.testing.assert_array_equal(t.labels, e["labels"])
    assert tuple(t.centre) == tuple(e["centre"])


def test_bad_pair_files_are_named(tmp_path):
    rng = np.random.default_rng(1)
    a = _arrays(rng)
    with pytest.raises(ValueError, match="needs ca_xyz"):
        write_pair_arrays(tmp_path / "x.npz", **{k: v for k, v in a.items() if k != "ca_xyz"})
    with pytest.raises(FileNotFoundError, match="9_NONE_A: pair arrays missing"):
        read_pair_arrays(tmp_path / "nowhere", "9_NONE_A")
    (tmp_path / "p").mkdir()
    np.savez(tmp_path / "p" / "arrays.npz", density=a["density"], labels=a["labels"], centre=a["centre"])
    with pytest.raises(ValueError, match="arrays missing ca_xyz"):
        read_pair_arrays(tmp_path / "p")
    assert load_pair("p", tmp_path / "p").centre.z1 == 10  # training needs no more
    write_pair_arrays(tmp_path / "p" / "arrays.npz", **{**a, "labels": np.full((12, 10, 8), 3)})
    with pytest.raises(ValueError, match="labels must be 0..2"):
        read_pair_arrays(tmp_path / "p")
    assert read_pair_arrays(tmp_path / "p", classes=4).labels.max() == 3
    (tmp_path / "p" / "arrays.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a usable pair file"):
        read_pair_arrays(tmp_path / "p")
