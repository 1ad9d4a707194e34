"""Box crops (SPEC 4) and the contour level of a map (SPEC 3).

The box is the chain's bounding box plus ``padding`` on each side, on a grid of
``spacing`` A in the map's frame. Its corner is snapped to the map's own grid
lines when the map's voxel size equals the spacing (then the crop is an exact
copy of map voxels); the centre box is the part of it that covers the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryosse.density import contour_check, map_statistics
from cryosse.geometry import DensityMap, MapError, MapGeometry, box_geometry, resample


@dataclass(frozen=True)
class Box:
    geometry: MapGeometry
    centre: tuple[int, int, int, int, int, int]  # z0, z1, y0, y1, x0, x1 (slices)

    def centre_bounds_xyz(self) -> tuple[list[float], list[float]]:
        """Lower and upper voxel centres of the centre box, (x, y, z) A."""
        z0, z1, y0, y1, x0, x1 = self.centre
        lo = self.geometry.index_to_xyz(np.array([x0, y0, z0]))
        hi = self.geometry.index_to_xyz(np.array([x1 - 1, y1 - 1, z1 - 1]))
        return lo.tolist(), hi.tolist()

    def box_bounds_xyz(self) -> tuple[list[float], list[float]]:
        return self.geometry.lower.tolist(), self.geometry.upper.tolist()

    def in_centre(self, xyz: np.ndarray) -> np.ndarray:
        """Boolean (N,) for points whose nearest voxel lies in the centre box."""
        idx = np.rint(self.geometry.xyz_to_index(np.atleast_2d(xyz))).astype(int)  # (i, j, k)
        z0, z1, y0, y1, x0, x1 = self.centre
        return (
            (idx[:, 0] >= x0)
            & (idx[:, 0] < x1)
            & (idx[:, 1] >= y0)
            & (idx[:, 1] < y1)
            & (idx[:, 2] >= z0)
            & (idx[:, 2] < z1)
        )


def chain_box(atoms_xyz: np.ndarray, map_geometry: MapGeometry, padding: float, spacing: float) -> Box:
    """Box around ``atoms_xyz`` (N, 3) with ``padding`` A per side, grid aligned to the map."""
    atoms_xyz = np.asarray(atoms_xyz, float)
    if atoms_xyz.size == 0:
        raise ValueError("no atoms to box")
    lo_atoms, hi_atoms = atoms_xyz.min(axis=0), atoms_xyz.max(axis=0)
    anchor = np.asarray(map_geometry.origin_xyz, float)
    lower = anchor + np.floor((lo_atoms - padding - anchor) / spacing + 1e-6) * spacing
    upper = anchor + np.ceil((hi_atoms + padding - anchor) / spacing - 1e-6) * spacing
    geom = box_geometry(lower, upper, spacing)
    c_lo = np.floor((lo_atoms - lower) / spacing + 1e-6).astype(int)  # (i, j, k)
    c_hi = np.ceil((hi_atoms - lower) / spacing - 1e-6).astype(int) + 1
    n = np.asarray(geom.shape_xyz)
    c_lo = np.clip(c_lo, 0, n)
    c_hi = np.clip(c_hi, c_lo, n)
    centre = (int(c_lo[2]), int(c_hi[2]), int(c_lo[1]), int(c_hi[1]), int(c_lo[0]), int(c_hi[0]))
    return Box(geom, centre)


def crop(dmap: DensityMap, box: Box) -> np.ndarray:
    """Raw density of ``dmap`` on the box grid (trilinear, 0 beyond the map)."""
    return resample(dmap, box.geometry, order=1)


def contour_level(dmap: DensityMap, given: float | None, contour_sd: float) -> tuple[float, str]:
    """The author contour when given, else mean + ``contour_sd`` sd of the full map ('estimated')."""
    if given is not None and np.isfinite(given):
        if (why := contour_check(float(given), dmap.data)[0]) is not None:
            raise MapError(f"{dmap.path}: {why}")
        return float(given), "author"
    mean, sd = map_statistics(dmap)
    if sd == 0:
        raise MapError(f"{dmap.path}: the map is constant; no contour level can be estimated")
    return mean + contour_sd * sd, "estimated"
