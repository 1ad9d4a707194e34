"""Map/model quality of one chain (SPEC 3): helix cylinder score, |P - R|, bins.

All functions take the raw (un-normalised) density on a box grid, so the
contour level keeps its meaning in the map's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cryosse.geometry import MapGeometry


@dataclass(frozen=True)
class QualityParams:
    helix_min_residues: int = 8
    r_region: float = 5.0
    r_cyl: float = 2.5
    zone: float = 6.0
    model_radius: float = 3.0
    cyl_cutoffs: tuple[float, float, float] = (0.55, 0.45, 0.40)
    pr_cutoffs: tuple[float, float, float] = (0.20, 0.30, 0.40)

    @classmethod
    def from_config(cls, cfg: dict) -> QualityParams:
        known = {k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg}
        for k in ("cyl_cutoffs", "pr_cutoffs"):
            if k in known:
                known[k] = tuple(float(v) for v in known[k])
        return cls(**known)


def near_mask(geometry: MapGeometry, xyz: np.ndarray, radius: float) -> np.ndarray:
    """Boolean ``[z, y, x]``: voxel centres within ``radius`` A of any point (exact, no wrap).

    gemmi marks the grid points around each point (``use_pbc=False``: nothing
    wraps around the box edges). Unlike :func:`cryosse.geometry.voxels_within`, which
    lists every (point, voxel) pair for labels and votes, this is for whole models (every
    atom of a chain) and needs only the union, which gemmi marks without listing pairs.
    """
    import gemmi

    xyz = np.asarray(xyz, float).reshape(-1, 3)
    nx, ny, nz = geometry.shape_xyz
    vs = np.asarray(geometry.voxel_size, float)
    grid = gemmi.Int8Grid(np.zeros((nx, ny, nz), np.int8), gemmi.UnitCell(*(vs * (nx, ny, nz)), 90, 90, 90))
    rel = xyz - np.asarray(geometry.origin_xyz, float)
    n_xyz = np.array([nx, ny, nz])
    keep = np.all((rel >= -radius - vs) & (rel <= (n_xyz - 1) * vs + radius + vs), axis=1)
    for x, y, z in rel[keep]:
        grid.set_points_around(gemmi.Position(x, y, z), radius, 1, False)
    return np.array(grid, copy=False).transpose(2, 1, 0).astype(bool)


def helix_segments(
    ca_xyz: np.ndarray, classes: np.ndarray, min_residues: int, helix: int = 1
) -> list[np.ndarray]:
    """CA arrays of runs of >= ``min_residues`` helix residues, split at chain breaks (CA-CA > 4.2 A)."""
    out: list[np.ndarray] = []
    start = None
    n = len(classes)
    for i in range(n + 1):
        brk = (
            i == n
            or classes[i] != helix
            or (i > 0 and start is not None and np.linalg.norm(ca_xyz[i] - ca_xyz[i - 1]) > 4.2)
        )
        if brk and start is not None:
            if i - start >= min_residues:
                out.append(np.asarray(ca_xyz[start:i], float))
            start = None
        if i < n and classes[i] == helix and start is None:
            start = i
    return out


def helix_axis(ca_xyz: np.ndarray, step: float = 1.0) -> np.ndarray:
    """Axis points = mean of 4 consecutive CA, densified to ``step`` A along the polyline."""
    ca = np.asarray(ca_xyz, float)
    pts = np.stack([ca[i : len(ca) - 3 + i] for i in range(4)]).mean(axis=0)
    dense = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        n = max(1, int(math.ceil(np.linalg.norm(b - a) / step)))
        t = np.arange(1, n + 1)[:, None] / n
        dense.extend(a + t * (b - a))
    return np.asarray(dense)


def helix_score(
    density: np.ndarray,
    geometry: MapGeometry,
    contour: float,
    ca_xyz: np.ndarray,
    r_region: float,
    r_cyl: float,
) -> float:
    """Cylindrical similarity of one helix: F1 of (voxels >= contour) vs (voxels within r_cyl)
    over the voxels within ``r_region`` of the axis and inside its length."""
    from scipy.spatial import cKDTree

    axis = helix_axis(ca_xyz)
    if len(axis) < 2:
        return float("nan")
    lo = geometry.xyz_to_index(axis.min(axis=0) - r_region)
    hi = geometry.xyz_to_index(axis.max(axis=0) + r_region)
    n_xyz = np.asarray(geometry.shape_xyz)
    a = np.clip(np.floor(lo).astype(int), 0, n_xyz)
    b = np.clip(np.ceil(hi).astype(int) + 1, 0, n_xyz)
    if np.any(b <= a):
        return 0.0
    ii, jj, kk = np.meshgrid(*(np.arange(a[d], b[d]) for d in range(3)), indexing="ij")
    ijk = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1)
    pts = geometry.index_to_xyz(ijk)
    dist, _ = cKDTree(axis).query(pts, distance_upper_bound=r_region + 1e-6)
    u0 = axis[1] - axis[0]
    u1 = axis[-1] - axis[-2]
    inside = (
        np.isfinite(dist)
        & (np.einsum("ij,j->i", pts - axis[0], u0) >= 0)
        & (np.einsum("ij,j->i", pts - axis[-1], u1) <= 0)
    )
    vals = density[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
    d = inside & (vals >= contour)
    c = inside & (dist <= r_cyl)
    cd = int(np.sum(c & d))
    if cd == 0:
        return 0.0
    p = cd / int(d.sum())
    r = cd / int(c.sum())
    return 2 * p * r / (p + r)


def chain_cylinder_score(
    density: np.ndarray,
    geometry: MapGeometry,
    contour: float,
    ca_xyz: np.ndarray,
    classes: np.ndarray,
    params: QualityParams,
) -> tuple[float, int]:
    """Mean helix score over the chain's helices of >= helix_min_residues (NaN if none), and their number."""
    helices = helix_segments(ca_xyz, classes, params.helix_min_residues)
    scores = [helix_score(density, geometry, contour, h, params.r_region, params.r_cyl) for h in helices]
    scores = [s for s in scores if np.isfinite(s)]
    return (float(np.mean(scores)) if scores else float("nan")), len(scores)


def precision_recall(
    density: np.ndarray, geometry: MapGeometry, contour: float, atoms_xyz: np.ndarray, params: QualityParams
) -> tuple[float, float]:
    """P = |D n M| / |D|, R = |D n M| / |M| counted within ``zone`` A of the chain's atoms."""
    zone = near_mask(geometry, atoms_xyz, params.zone)
    model = near_mask(geometry, atoms_xyz, params.model_radius) & zone
    dens = (density >= contour) & zone
    both = int(np.sum(dens & model))
    n_d, n_m = int(dens.sum()), int(model.sum())
    p = both / n_d if n_d else 0.0
    r = both / n_m if n_m else 0.0
    return p, r


def quality_bin(cyl: float, pr_diff: float, params: QualityParams) -> int:
    """Best bin b (1..3) whose two cut-offs the chain meets, else 4.

    The paper screens every pair on both scores (and keeps only chains with a helix), so
    a chain with no helix long enough to score (NaN cylinder score) cannot be placed in
    bins 1-3: it is bin 4."""
    if not (np.isfinite(cyl) and np.isfinite(pr_diff)):
        return 4
    for b in range(3):
        if cyl >= params.cyl_cutoffs[b] and pr_diff <= params.pr_cutoffs[b]:
            return b + 1
    return 4
