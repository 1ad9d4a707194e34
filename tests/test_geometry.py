"""Map geometry: header conventions, axis orders, resampling, writing."""

from __future__ import annotations

import gzip

import gemmi
import mrcfile
import numpy as np
import pytest

from cryosse.geometry import MapError, MapGeometry, box_geometry, read_map, resample, sample_points, write_map


def _atoms(path):
    st = gemmi.read_structure(str(path))
    return np.array([a.pos.tolist() for ch in st[0] for r in ch for a in r])


@pytest.mark.parametrize(
    "map_name,model_name",
    [
        ("emd_21457_seg.mrc", "6vyb_Ndom.pdb"),  # ORIGIN set
        ("emd_21457_seg_nstart.mrc", "6vyb_Ndom.pdb"),  # NSTART set
        ("emd_21457_seg_orig0.mrc", "6vyb_Ndom_shifted.pdb"),  # all zero, odd machine stamp
    ],
)
def test_header_conventions_put_the_right_model_inside(real, map_name, model_name):
    d = real / "emd21457_6vyb_ntd"
    m = read_map(d / map_name)
    xyz = _atoms(d / model_name)
    # The segment was cut tight: 99.8% of atoms lie within the voxel-centre extent and
    # the rest within 2 A of it.
    assert m.geometry.contains(xyz).mean() > 0.99
    assert m.geometry.contains(xyz, margin=-2.0).all()
    assert sample_points(m, xyz).mean() > 0.3


def test_header_conventions_agree_and_wrong_pairing_is_outside(real):
    d = real / "emd21457_6vyb_ntd"
    a = read_map(d / "emd_21457_seg.mrc")
    b = read_map(d / "emd_21457_seg_nstart.mrc")
    np.testing.assert_allclose(a.geometry.origin_xyz, b.geometry.origin_xyz, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))
    wrong = read_map(d / "emd_21457_seg_orig0.mrc")
    assert not wrong.geometry.contains(_atoms(d / "6vyb_Ndom.pdb"), margin=-0.5).any()


def test_gzip_and_plain_read_the_same(real):
    a = read_map(real / "emd3197_format" / "emd_3197.map.gz")
    b = read_map(real / "emd3197_format" / "EMD-3197.map")
    assert a.geometry == b.geometry
    np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))
    assert a.geometry.origin_xyz == pytest.approx((-22.8, 0.0, 0.0))


def test_nstart_of_groel(real):
    m = read_map(real / "emd1997_groel" / "1997.map")
    assert m.geometry.voxel_size == pytest.approx((2.02, 2.02, 2.02))
    assert m.geometry.origin_xyz == pytest.approx((-101.0, -101.0, -101.0))


def _write_raw(path, data_file_order, mapcrs=(1, 2, 3), voxel=1.0, origin=(0, 0, 0), nstart=(0, 0, 0)):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data_file_order.astype(np.float32))
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = mapcrs
        nz, ny, nx = data_file_order.shape
        # cell / sampling along real x, y, z
        n_real = [0, 0, 0]
        for n, ax in zip((nx, ny, nz), mapcrs, strict=False):
            n_real[ax - 1] = n
        mrc.header.mx, mrc.header.my, mrc.header.mz = n_real
        mrc.header.cella = tuple(n * voxel for n in n_real)
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = origin
        mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = nstart


def test_axis_order_zyx_file_reads_as_xyz(tmp_path):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(6, 5, 4)).astype(np.float32)  # [z, y, x], x fastest
    _write_raw(tmp_path / "ref.mrc", ref)
    # Same density stored with columns = z, rows = y, sections = x (MAPC=3, MAPR=2, MAPS=1):
    # file array is [x, y, z].
    _write_raw(tmp_path / "swapped.mrc", ref.transpose(2, 1, 0), mapcrs=(3, 2, 1))
    a, b = read_map(tmp_path / "ref.mrc"), read_map(tmp_path / "swapped.mrc")
    assert a.geometry == b.geometry
    np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))


def test_nstart_follows_axis_order(tmp_path):
    ref = np.zeros((6, 5, 4), np.float32)
    # columns = z, rows = x, sections = y: NSTART fields are (col, row, sec) = (z, x, y)
    _write_raw(tmp_path / "m.mrc", ref.transpose(1, 2, 0), mapcrs=(3, 1, 2), voxel=2.0, nstart=(7, 3, 5))
    g = read_map(tmp_path / "m.mrc").geometry
    assert g.shape_zyx == (6, 5, 4)
    assert g.origin_xyz == pytest.approx((6.0, 10.0, 14.0))


def test_write_map_round_trip_keeps_frame(tmp_path):
    geom = MapGeometry((4, 5, 6), (1.5, 1.5, 1.5), (10.0, -3.0, 7.5))
    data = np.arange(120, dtype=np.float32).reshape(4, 5, 6)
    write_map(tmp_path / "o.mrc", data, geom)
    m = read_map(tmp_path / "o.mrc")
    assert m.geometry.shape_zyx == geom.shape_zyx
    np.testing.assert_allclose(m.geometry.origin_xyz, geom.origin_xyz, atol=1e-4)
    np.testing.assert_allclose(m.geometry.voxel_size, geom.voxel_size, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(m.data), data)


def test_resample_matches_independent_trilinear_and_fills_zero_outside(real):
    m = read_map(real / "emd3488_5me2" / "emd_3488.mrc")
    g = box_geometry(np.array([-10.3, 5.2, 20.1]), np.array([60, 90, 130]))
    out = resample(m, g)
    ref = sample_points(m, g.voxel_centres().reshape(-1, 3)).reshape(out.shape)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert np.all(out[:, :, :5] == 0)  # x < -2 A lies outside the map: zeros, no wrap-around


def test_resample_near_edge_does_not_wrap(tmp_path):
    data = np.zeros((10, 10, 10), np.float32)
    data[:, :, -1] = 5.0  # a wall on the high-x face
    _write_raw(tmp_path / "w.mrc", data)
    m = read_map(tmp_path / "w.mrc")
    g = box_geometry(np.array([-4.0, 0, 0]), np.array([2.0, 9, 9]))  # beyond the low-x face
    assert np.all(resample(m, g) == 0)


@pytest.mark.parametrize(
    "content,msg",
    [
        (b"", "empty"),
        (b"hello world, this is not a map" * 40, "not an MRC"),
    ],
)
def test_bad_files_are_named(tmp_path, content, msg):
    p = tmp_path / "bad.mrc"
    p.write_bytes(content)
    with pytest.raises(MapError, match=msg):
        read_map(p)


def test_bad_headers(tmp_path):
    data = np.ones((4, 4, 4), np.float32)
    _write_raw(tmp_path / "v.mrc", data, voxel=0.0)
    with pytest.raises(MapError, match="voxel size"):
        read_map(tmp_path / "v.mrc")
    _write_raw(tmp_path / "t.mrc", data)
    raw = (tmp_path / "t.mrc").read_bytes()
    (tmp_path / "trunc.mrc").write_bytes(raw[:-10])
    with pytest.raises(MapError, match="wrong file length"):
        read_map(tmp_path / "trunc.mrc")
    bad_mode = bytearray(raw)
    bad_mode[12:16] = np.int32(9).tobytes()
    (tmp_path / "mode.mrc").write_bytes(bytes(bad_mode))
    with pytest.raises(MapError, match="mode 9"):
        read_map(tmp_path / "mode.mrc")
    _write_raw(tmp_path / "flat.mrc", np.ones((1, 8, 8), np.float32))
    with pytest.raises(MapError, match="2D"):
        read_map(tmp_path / "flat.mrc")
    (tmp_path / "g.mrc.gz").write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(MapError, match="damaged"):
        read_map(tmp_path / "g.mrc.gz")


def test_big_endian_maps_read_with_any_machine_stamp(tmp_path):
    """mrcfile reads the byte order from the machine stamp, or from the mode where the stamp
    lies; a map without the MAP word (old CCP4) and a gzip copy read the same."""
    rng = np.random.default_rng(1)
    data = rng.random((5, 6, 7)).astype(np.float32)
    _write_raw(tmp_path / "le.mrc", data, voxel=1.5, origin=(3.0, -2.0, 1.0))
    raw = (tmp_path / "le.mrc").read_bytes()
    header = np.frombuffer(raw[:1024], dtype=mrcfile.dtypes.HEADER_DTYPE)
    big = bytearray(header.astype(mrcfile.dtypes.HEADER_DTYPE.newbyteorder()).tobytes())
    body = np.frombuffer(raw[1024:], "<f4").astype(">f4").tobytes()
    variants = {"be.mrc": bytes(big[:212]) + b"\x11\x11\0\0" + bytes(big[216:]) + body}
    variants["lying.mrc"] = bytes(big[:212]) + b"\x44\x44\0\0" + bytes(big[216:]) + body
    variants["ccp4.mrc"] = raw[:208] + b"\0\0\0\0" + raw[212:]
    variants["be.mrc.gz"] = gzip.compress(variants["be.mrc"])
    ref = read_map(tmp_path / "le.mrc")
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        m = read_map(tmp_path / name)
        assert m.geometry == ref.geometry, name
        np.testing.assert_array_equal(np.asarray(m.data), data)
    assert read_map(tmp_path / "be.mrc.gz").header["gzip"] and not ref.header["gzip"]


def test_voxels_within_is_the_brute_force_answer():
    from cryosse.geometry import voxels_within

    rng = np.random.default_rng(3)
    g = MapGeometry((9, 11, 7), (0.8, 1.0, 1.3), (-2.0, 1.5, 0.25))
    pts = rng.uniform(g.lower - 2, g.upper + 2, size=(25, 3))
    point, vox, d2 = voxels_within(g, pts, 2.6)
    centres = g.voxel_centres()  # [z, y, x, 3]
    want = {
        (i, z, y, x)
        for i, p in enumerate(pts)
        for z, y, x in zip(*np.nonzero(((centres - p) ** 2).sum(-1) <= 2.6**2 + 1e-9), strict=True)
    }
    assert set(zip(point.tolist(), *vox.T.tolist(), strict=True)) == want
    np.testing.assert_allclose(
        d2, ((centres[vox[:, 0], vox[:, 1], vox[:, 2]] - pts[point]) ** 2).sum(-1), rtol=1e-5
    )
    assert np.all(np.diff(point) >= 0)  # point by point
    p_r, v_r, _ = voxels_within(g, pts, 2.6, region=(2, 6, 0, 11, 3, 7))
    assert len(p_r) and np.all((v_r[:, 0] >= 2) & (v_r[:, 0] < 6) & (v_r[:, 2] >= 3))
