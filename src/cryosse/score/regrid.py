"""Putting a map on the reference grid, in slabs of bounded memory."""

from __future__ import annotations

import numpy as np

from cryosse.geometry import DensityMap, MapError, MapGeometry, resample

#: most source voxels one resampling may read (a grid far finer than the box: 512 MiB of float32)
MAX_BLOCK_VOXELS = 1 << 27


def _slabs(dmap: DensityMap, voxels: int = 1 << 22) -> list[tuple[int, int]]:
    nz = dmap.data.shape[0]
    step = max(1, voxels // max(1, dmap.data.shape[1] * dmap.data.shape[2]))
    return [(z, min(nz, z + step)) for z in range(0, nz, step)]


def covered(target: MapGeometry, source: MapGeometry) -> np.ndarray:
    """Bool [z, y, x] of the target's voxels whose centres lie within the source's voxels
    (its voxel-centre extent plus half a voxel on each side)."""
    axes = []
    for ax in range(3):  # x, y, z
        centres = target.origin_xyz[ax] + target.voxel_size[ax] * np.arange(target.shape_xyz[ax])
        f = (centres - source.origin_xyz[ax]) / source.voxel_size[
            ax
        ]  # fractional source index along the axis
        axes.append((f >= -0.5 - 1e-6) & (f <= source.shape_xyz[ax] - 0.5 + 1e-6))
    return axes[2][:, None, None] & axes[1][None, :, None] & axes[0][None, None, :]


def on_grid(dmap: DensityMap, target: MapGeometry, order: int) -> np.ndarray:
    """``dmap`` resampled onto ``target`` (0 beyond it), refusing grids that cannot be resampled."""
    src = dmap.geometry
    f = np.stack([src.xyz_to_index(target.lower[None])[0], src.xyz_to_index(target.upper[None])[0]])
    need = np.ceil(f.max(0)) - np.floor(f.min(0)) + 2 * (2 if order <= 1 else 4) + 1
    if float(np.prod(need)) > MAX_BLOCK_VOXELS:
        raise ValueError(
            f"{dmap.path}: voxels of {tuple(round(v, 4) for v in src.voxel_size)} A are too fine to "
            f"resample onto a box of {target.shape_xyz} voxels of {target.voxel_size[0]:g} A "
            f"({float(np.prod(need)):.3g} source voxels); the voxel size in its header is wrong"
        )
    try:
        return resample(dmap, target, order=order)
    except MapError:
        raise
    except (RuntimeError, MemoryError, OverflowError) as exc:
        raise ValueError(f"{dmap.path}: cannot be resampled onto the box ({exc})") from exc
