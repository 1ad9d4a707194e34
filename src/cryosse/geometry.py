"""Map geometry: the one place where files, axes, origins and grids meet.

Conventions used by every stage of cryosse:

* Arrays are indexed ``[z, y, x]`` (x fastest, the MRC file order once the
  header's MAPC/MAPR/MAPS are applied). gemmi grids are indexed ``[x, y, z]``;
  the conversion happens in this module only.
* Coordinates are Cartesian Angstroms in the map's own frame, ``(x, y, z)``.
  Voxel ``[k, j, i]`` has its centre at ``origin + (i, j, k) * voxel_size``.
* The origin of a map comes from the MRC ORIGIN field when it is non-zero,
  otherwise from NXSTART/NYSTART/NZSTART times the voxel size (the rule
  ChimeraX applies, so our outputs overlay the inputs there).
"""

from __future__ import annotations

import gzip
import math
import os
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np

from cryosse.io import atomic_path, is_gzip, map_bytes

_MODE_DTYPES = {0: np.int8, 1: np.int16, 2: np.float32, 6: np.uint16, 12: np.float16}


class MapError(ValueError):
    """A density map that cannot be used; the message names the file and the cause."""


@dataclass(frozen=True)
class MapGeometry:
    """Where a 3D array sits in space.

    ``shape_zyx``: the array's shape ``(nz, ny, nx)``; ``voxel_size`` and ``origin_xyz``:
    ``(x, y, z)`` in A (the centre of the first voxel).
    """

    shape_zyx: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    origin_xyz: tuple[float, float, float]

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        return (self.shape_zyx[2], self.shape_zyx[1], self.shape_zyx[0])

    def xyz_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Fractional ``(i, j, k)`` = (x, y, z) indices of Cartesian points (N, 3)."""
        return (np.asarray(xyz, float) - np.asarray(self.origin_xyz)) / np.asarray(self.voxel_size)

    def index_to_xyz(self, ijk: np.ndarray) -> np.ndarray:
        """Cartesian points of ``(i, j, k)`` = (x, y, z) indices (N, 3)."""
        return np.asarray(ijk, float) * np.asarray(self.voxel_size) + np.asarray(self.origin_xyz)

    @property
    def lower(self) -> np.ndarray:
        """Centre of the first voxel, (x, y, z) A."""
        return np.asarray(self.origin_xyz, float)

    @property
    def upper(self) -> np.ndarray:
        """Centre of the last voxel, (x, y, z) A."""
        return self.index_to_xyz(np.asarray(self.shape_xyz) - 1)

    def contains(self, xyz: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Boolean (N,) for points within the voxel-centre extent, shrunk by ``margin`` A."""
        xyz = np.atleast_2d(np.asarray(xyz, float))
        return np.all((xyz >= self.lower + margin) & (xyz <= self.upper - margin), axis=1)

    def voxel_centres(self) -> np.ndarray:
        """All voxel centres as an array ``(nz, ny, nx, 3)`` of (x, y, z) A."""
        nz, ny, nx = self.shape_zyx
        vx, vy, vz = self.voxel_size
        ox, oy, oz = self.origin_xyz
        out = np.empty((nz, ny, nx, 3), np.float32)
        out[..., 0] = (ox + vx * np.arange(nx))[None, None, :]
        out[..., 1] = (oy + vy * np.arange(ny))[None, :, None]
        out[..., 2] = (oz + vz * np.arange(nz))[:, None, None]
        return out

    def to_dict(self) -> dict:
        return {
            "shape_zyx": list(self.shape_zyx),
            "voxel_size_xyz": list(self.voxel_size),
            "origin_xyz": list(self.origin_xyz),
        }

    def to_xyz_dict(self) -> dict:
        """Shape, voxel size and origin all in x, y, z order (user-facing files: one axis order)."""
        return {
            "shape_xyz": list(self.shape_xyz),
            "voxel_size_xyz": list(self.voxel_size),
            "origin_xyz": list(self.origin_xyz),
        }

    @classmethod
    def from_dict(cls, d: dict) -> MapGeometry:
        return cls(
            tuple(int(v) for v in d["shape_zyx"]),  # type: ignore[arg-type]
            tuple(float(v) for v in d["voxel_size_xyz"]),  # type: ignore[arg-type]
            tuple(float(v) for v in d["origin_xyz"]),  # type: ignore[arg-type]
        )


@dataclass
class DensityMap:
    """A density array ``[z, y, x]`` (possibly memory-mapped) with its geometry."""

    data: np.ndarray
    geometry: MapGeometry
    path: str = ""
    header: dict = field(default_factory=dict)


class _GzipMrc(mrcfile.mrcinterpreter.MrcInterpreter):
    """mrcfile's interpreter on a gzip stream, read-only, in the way its documentation asks of
    subclasses. mrcfile's own gzip reader decompresses the file a second time to learn its
    size, doubling the time and the memory; this one reads the data once, into one buffer."""

    def __init__(self, path: Path, header_only: bool):
        super().__init__(permissive=True)
        self._read_only = True
        self._iostream = gzip.open(path, "rb")
        try:
            self._read(header_only)
        except BaseException:
            self._iostream.close()
            raise

    def _read_bytearray_from_stream(self, number_of_bytes: int) -> tuple[bytearray, int]:
        """In 16 MiB pieces: gzip's ``readinto`` of the whole block makes a second full copy."""
        buf = bytearray(number_of_bytes)
        view, pos = memoryview(buf), 0
        while pos < number_of_bytes and (n := self._iostream.readinto(view[pos : pos + (1 << 24)])):
            pos += n
        view.release()
        return buf, pos

    def close(self) -> None:
        super().close()
        self._iostream.close()


def _open_mrc(
    path: Path, header_only: bool = False, mmap: bool = False
) -> mrcfile.mrcinterpreter.MrcInterpreter:
    """mrcfile's reader (plain or gzip, byte order from the machine stamp or the mode),
    permissive and quiet: :func:`_check_header` names the file and the field instead."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if is_gzip(path):
                return _GzipMrc(path, header_only)
            if mmap and not header_only:
                return mrcfile.mmap(path, mode="r", permissive=True)
            return mrcfile.open(path, mode="r", permissive=True, header_only=header_only)
    except ValueError as exc:
        if "negative count" in str(exc):  # the extended header's size, bytearray(NSYMBT)
            raise MapError(
                f"{path}: the extended header size (NSYMBT) is negative; the file is damaged"
            ) from exc
        raise MapError(f"{path}: not an MRC map ({exc})") from exc  # fewer than 1024 bytes
    except MemoryError as exc:
        raise MapError(
            f"{path}: the header asks for more data than fits in memory; the file is damaged"
        ) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise MapError(f"{path}: cannot read ({exc}); the file is damaged") from exc


def read_map(path: str | os.PathLike, mmap: bool = True) -> DensityMap:
    """Read an MRC/CCP4 map (plain or gzip) into ``[z, y, x]`` order with its geometry.

    mrcfile reads the file; uncompressed files are memory-mapped (``mmap=True``), so a
    large map costs no memory until it is sliced. Raises :class:`MapError` naming the file
    and the cause for an empty file, a file that is not MRC, a bad header (voxel size
    <= 0, unknown mode, wrong file length, non-orthogonal cell, axis order that is not a
    permutation) or a 2D image.
    """
    path = Path(path)
    if not path.exists():
        raise MapError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MapError(f"{path}: the file is empty")
    with _open_mrc(path, header_only=True) as mrc:
        header = mrc.header.copy()
    if bytes(header["map"]) != b"MAP ":
        # Old CCP4 files may lack the MAP word; accept when the rest is sane.
        if not (0 < int(header["nx"]) < 100000 and 1 <= int(header["mapc"]) <= 3):
            raise MapError(f"{path}: not an MRC/CCP4 map (no 'MAP ' identifier and implausible header)")
    n_crs, mode, axes, voxel = _check_header(path, header)
    count = n_crs[0] * n_crs[1] * n_crs[2]
    need = 1024 + int(header["nsymbt"]) + count * np.dtype(_MODE_DTYPES[mode]).itemsize
    have = map_bytes(path)  # decompressed size for gzip
    if have > need:  # a wrong mode or wrong dimensions: the data would be read as garbage
        raise MapError(
            f"{path}: wrong file length: {have} bytes, the header needs {need}"
            f" ({n_crs[0]}x{n_crs[1]}x{n_crs[2]} mode {mode}); the data block is too long:"
            " the header's mode or dimensions do not describe the data"
        )
    with _open_mrc(path, mmap=mmap) as mrc:
        data, gz = mrc.data, isinstance(mrc, _GzipMrc)
    shape_file = (n_crs[2], n_crs[1], n_crs[0])  # sections, rows, columns
    if data is None or data.shape != shape_file:
        size = "" if gz else f"{path.stat().st_size} bytes, "
        raise MapError(
            f"{path}: wrong file length: {size}the header needs {need}"
            f" ({n_crs[0]}x{n_crs[1]}x{n_crs[2]} mode {mode}); the file is truncated"
        )
    return _map_from_header(path, header, data, axes, voxel, gz)


def _check_header(path: Path, header: np.recarray) -> tuple[list[int], int, list[int], np.ndarray]:
    """Dimensions (columns, rows, sections), mode, axis order and voxel size (x, y, z) of an MRC
    header; a damaged or unsupported header is a :class:`MapError` naming the file and the field."""
    n_crs = [int(header["nx"]), int(header["ny"]), int(header["nz"])]
    if min(n_crs) <= 0:
        raise MapError(f"{path}: bad dimensions {n_crs} in header")
    if min(n_crs) == 1 or n_crs[2] == 1:
        raise MapError(f"{path}: a 2D image ({n_crs[0]}x{n_crs[1]}x{n_crs[2]}), not a 3D map")
    mode = int(header["mode"])
    if mode not in _MODE_DTYPES:
        raise MapError(f"{path}: unsupported MRC mode {mode} (supported: {sorted(_MODE_DTYPES)})")
    axes = [int(header["mapc"]), int(header["mapr"]), int(header["maps"])]
    if sorted(axes) != [1, 2, 3]:
        raise MapError(f"{path}: MAPC/MAPR/MAPS = {axes} is not a permutation of 1, 2, 3")
    cella = header["cella"]
    cell = np.array([float(cella["x"]), float(cella["y"]), float(cella["z"])])
    msamp = np.array([int(header["mx"]), int(header["my"]), int(header["mz"])])
    angles = header["cellb"]
    ang = [float(angles["alpha"]), float(angles["beta"]), float(angles["gamma"])]
    if any(a != 0 and abs(a - 90.0) > 1e-3 for a in ang):
        raise MapError(f"{path}: non-orthogonal cell angles {ang} are not supported")
    # Sampling along x, y, z; MX/MY/MZ of 0 means "same as the array dimension".
    n_xyz = np.empty(3, int)
    for file_axis, real_axis in enumerate(axes):
        n_xyz[real_axis - 1] = n_crs[file_axis]
    msamp = np.where(msamp > 0, msamp, n_xyz)
    with np.errstate(divide="ignore", invalid="ignore"):
        voxel = cell / msamp
    if not np.all(np.isfinite(voxel)) or np.any(voxel <= 0):
        raise MapError(
            f"{path}: map voxel size {voxel.round(4).tolist()} in header (cell {cell.tolist()},"
            f" sampling {msamp.tolist()}); the file is damaged"
        )
    return n_crs, mode, axes, voxel


def _map_from_header(
    path: Path, header: np.recarray, data: np.ndarray, axes: list[int], voxel: np.ndarray, gz: bool
) -> DensityMap:
    """The map in ``[z, y, x]`` order and its frame (ORIGIN, else NSTART times the voxel size)."""
    # File axis a (0 = sections, 1 = rows, 2 = columns) holds real axis real_of[a] (1 = x).
    real_of = [axes[2], axes[1], axes[0]]
    perm = [real_of.index(r) for r in (3, 2, 1)]
    if perm != [0, 1, 2]:
        data = data.transpose(perm)
    nstart_crs = [int(header["nxstart"]), int(header["nystart"]), int(header["nzstart"])]
    nstart_xyz = np.empty(3, float)
    for file_axis, real_axis in enumerate(axes):
        nstart_xyz[real_axis - 1] = nstart_crs[file_axis]
    org = header["origin"]
    origin_field = np.array([float(org["x"]), float(org["y"]), float(org["z"])])
    if not np.all(np.isfinite(origin_field)):
        raise MapError(f"{path}: ORIGIN {origin_field.tolist()} is not finite; the file is damaged")
    origin = origin_field if np.any(origin_field != 0) else nstart_xyz * voxel
    geom = MapGeometry(
        tuple(int(s) for s in data.shape),  # type: ignore[arg-type]
        tuple(float(v) for v in voxel),  # type: ignore[arg-type]
        tuple(float(o) for o in origin),  # type: ignore[arg-type]
    )
    info = {
        "mode": int(header["mode"]),
        "axis_order_crs": axes,
        "nstart_xyz": nstart_xyz.tolist(),
        "origin_field_xyz": origin_field.tolist(),
        "origin_source": "ORIGIN" if np.any(origin_field != 0) else "NSTART",
        "dmin": float(header["dmin"]),
        "dmax": float(header["dmax"]),
        "dmean": float(header["dmean"]),
        "rms": float(header["rms"]),
        "gzip": gz,
    }
    return DensityMap(data=data, geometry=geom, path=str(path), header=info)


def write_map(
    path: str | os.PathLike,
    data: np.ndarray,
    geometry: MapGeometry,
    dtype: type = np.float32,
    origin_in: str = "origin",
    label: str = "cryosse",
) -> None:
    """Write ``data[z, y, x]`` as an MRC file that overlays the input in ChimeraX.

    The origin is written to the ORIGIN field (NSTART stays 0), or with
    ``origin_in="nstart"`` as NXSTART/NYSTART/NZSTART voxel indices (ORIGIN 0; the
    origin must then lie on the voxel grid), the voxel size through the cell, axis
    order x, y, z, and one fixed ``label`` (not mrcfile's creation time: the same map gives
    the same bytes). Written atomically.
    """
    data = np.ascontiguousarray(data, dtype=dtype)
    if data.shape != tuple(geometry.shape_zyx):
        raise ValueError(f"{path}: data shape {data.shape} does not match geometry {geometry.shape_zyx}")
    if origin_in not in ("origin", "nstart"):
        raise ValueError(f"origin_in {origin_in!r} is not 'origin' or 'nstart'")
    start = np.asarray(geometry.origin_xyz) / np.asarray(geometry.voxel_size)
    if origin_in == "nstart" and not np.allclose(start, np.rint(start), atol=1e-4):
        raise ValueError(
            f"{path}: origin {geometry.origin_xyz} is not on the voxel grid; it cannot go in NSTART"
        )
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(data)
            mrc.voxel_size = tuple(geometry.voxel_size)
            if origin_in == "nstart":
                mrc.header.origin.x = mrc.header.origin.y = mrc.header.origin.z = 0
                mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = (int(v) for v in np.rint(start))
            else:
                mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = geometry.origin_xyz
                mrc.header.nxstart = mrc.header.nystart = mrc.header.nzstart = 0
            mrc.update_header_stats()
            mrc.header.label[0] = label.encode("ascii").ljust(80)
            mrc.header.nlabl = 1


def voxels_within(
    geometry: MapGeometry, xyz: np.ndarray, radius: float, region: tuple[int, ...] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (point, voxel) pair whose voxel centre lies within ``radius`` A of the point: the
    labels, the residue votes and the voxel masks all ask this one question.

    Returns the point indices (K,), the voxel indices (K, 3) as ``[z, y, x]`` and the squared
    distances (K,) in A^2, point by point and, for each point, voxels in ``[z, y, x]`` order.
    Only voxels of the grid count, or of ``region`` (z0, z1, y0, y1, x0, x1) when given.
    """
    xyz = np.asarray(xyz, float).reshape(-1, 3)
    vs = np.asarray(geometry.voxel_size, float)
    f = geometry.xyz_to_index(xyz)  # fractional (i, j, k) = (x, y, z) index of every point
    rx, ry, rz = np.ceil(radius / vs).astype(int)
    # candidate voxels around each point, enumerated z-major, held as (x, y, z) columns
    dz, dy, dx = np.meshgrid(*(np.arange(-r, r + 2) for r in (rz, ry, rx)), indexing="ij")
    offsets = np.stack([dx.ravel(), dy.ravel(), dz.ravel()], axis=1)
    idx = np.floor(f).astype(int)[:, None, :] + offsets[None, :, :]  # (N, M, 3)
    d2 = np.sum(((idx - f[:, None, :]) * vs) ** 2, axis=-1)  # (N, M)
    lo, hi = np.zeros(3, int), np.asarray(geometry.shape_xyz, int)
    if region is not None:
        z0, z1, y0, y1, x0, x1 = (int(v) for v in region)
        lo, hi = np.array([x0, y0, z0]), np.array([x1, y1, z1])
    ok = (d2 <= radius * radius + 1e-9) & np.all((idx >= lo) & (idx < hi), axis=-1)
    point = np.broadcast_to(np.arange(len(xyz))[:, None], d2.shape)[ok]
    return point, idx[ok][:, ::-1], d2[ok]


def prediction_grid(geom: MapGeometry, spacing: float = 1.0) -> MapGeometry:
    """The ``spacing`` grid that starts at the input's first voxel centre and covers its last.

    When the input already has that spacing, this is the input's own grid.
    """
    if spacing <= 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    if np.allclose(geom.voxel_size, spacing, rtol=1e-5, atol=0):
        return MapGeometry(geom.shape_zyx, (spacing, spacing, spacing), geom.origin_xyz)
    extent = geom.upper - geom.lower
    n_xyz = np.ceil(extent / spacing - 1e-6).astype(int) + 1
    return MapGeometry(
        (int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0])),
        (spacing, spacing, spacing),
        tuple(float(v) for v in geom.origin_xyz),  # type: ignore[arg-type]
    )


def trim_counts(geom: MapGeometry, trim: float) -> tuple[int, int, int]:
    """Voxels to remove from each face along x, y, z so that at least ``trim`` A go."""
    return tuple(int(math.ceil(trim / v - 1e-6)) if trim > 0 else 0 for v in geom.voxel_size)  # type: ignore[return-value]


def trimmed_geometry(geom: MapGeometry, n_xyz: tuple[int, int, int]) -> MapGeometry | None:
    """The geometry left after removing ``n_xyz`` voxels per face; None when nothing is left."""
    nx, ny, nz = n_xyz
    shape = (geom.shape_zyx[0] - 2 * nz, geom.shape_zyx[1] - 2 * ny, geom.shape_zyx[2] - 2 * nx)
    if min(shape) < 1:
        return None
    origin = tuple(o + n * v for o, n, v in zip(geom.origin_xyz, n_xyz, geom.voxel_size, strict=True))
    return MapGeometry(shape, geom.voxel_size, origin)  # type: ignore[arg-type]


def box_geometry(lower_xyz: np.ndarray, upper_xyz: np.ndarray, spacing: float = 1.0) -> MapGeometry:
    """The grid of spacing ``spacing`` whose first voxel centre is ``lower_xyz`` and
    which reaches at least ``upper_xyz`` along every axis."""
    lower = np.asarray(lower_xyz, float)
    n_xyz = np.floor((np.asarray(upper_xyz, float) - lower) / spacing + 1e-6).astype(int) + 1
    return MapGeometry(
        (int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0])),
        (spacing, spacing, spacing),
        tuple(float(v) for v in lower),  # type: ignore[arg-type]
    )


def resample(dmap: DensityMap, target: MapGeometry, order: int = 1) -> np.ndarray:
    """Sample ``dmap`` on the grid ``target`` (trilinear by default), 0 outside the map.

    Only the block of the source that the target touches is read (so a
    memory-mapped map stays mostly on disk), copied once into a gemmi grid with
    a margin of zeros, and interpolated by gemmi. Nothing wraps around: gemmi's
    periodic grid never sees a point beyond the margin.
    """
    import gemmi

    src = dmap.geometry
    vs = np.asarray(src.voxel_size)
    tv = np.asarray(target.voxel_size)
    lo_pt = np.asarray(target.origin_xyz, float)
    hi_pt = target.index_to_xyz(np.asarray(target.shape_xyz) - 1)
    f_lo = src.xyz_to_index(lo_pt)
    f_hi = src.xyz_to_index(hi_pt)
    margin = 2 if order <= 1 else 4
    lo = np.floor(np.minimum(f_lo, f_hi)).astype(int) - margin  # block start, source index (x,y,z)
    hi = np.ceil(np.maximum(f_lo, f_hi)).astype(int) + margin + 1
    n_src = np.asarray(src.shape_xyz)
    block = np.zeros(tuple(hi - lo), np.float32)  # [x, y, z]
    a = np.maximum(lo, 0)
    b = np.minimum(hi, n_src)
    if np.all(b > a):
        sub = dmap.data[a[2] : b[2], a[1] : b[1], a[0] : b[0]]  # [z, y, x]
        block[
            a[0] - lo[0] : b[0] - lo[0],
            a[1] - lo[1] : b[1] - lo[1],
            a[2] - lo[2] : b[2] - lo[2],
        ] = np.asarray(sub, np.float32).transpose(2, 1, 0)
    if not np.all(np.isfinite(block)):
        raise MapError(f"{dmap.path}: the map has NaN or infinite values in the region sampled")
    cell = block.shape * vs
    grid = gemmi.FloatGrid(block, gemmi.UnitCell(cell[0], cell[1], cell[2], 90, 90, 90))
    out = np.zeros(target.shape_xyz, np.float32)  # [x, y, z]
    shift = lo_pt - (src.lower + lo * vs)
    tr = gemmi.Transform(gemmi.Mat33(np.diag(tv).tolist()), gemmi.Vec3(*shift))
    grid.interpolate_values(out, tr, order=order)
    return np.ascontiguousarray(out.transpose(2, 1, 0))


def sample_points(dmap: DensityMap, xyz: np.ndarray) -> np.ndarray:
    """Trilinear density at Cartesian points (N, 3); 0 outside the map."""
    xyz = np.atleast_2d(np.asarray(xyz, float))
    f = dmap.geometry.xyz_to_index(xyz)
    i0 = np.floor(f).astype(int)
    t = f - i0
    n = np.asarray(dmap.geometry.shape_xyz)
    out = np.zeros(len(xyz), float)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                idx = i0 + np.array([dx, dy, dz])
                ok = np.all((idx >= 0) & (idx < n), axis=1)
                w = (
                    (t[:, 0] if dx else 1 - t[:, 0])
                    * (t[:, 1] if dy else 1 - t[:, 1])
                    * (t[:, 2] if dz else 1 - t[:, 2])
                )
                vals = np.zeros(len(xyz), float)
                ii = idx[ok]
                vals[ok] = np.asarray(dmap.data)[ii[:, 2], ii[:, 1], ii[:, 0]]
                out += w * vals
    return out
