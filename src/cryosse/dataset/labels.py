"""Voxel labels (SPEC 5): a voxel within ``radius`` of a CA takes the class of the
nearest CA (0 other, 1 helix, 2 sheet); every other voxel is background."""

from __future__ import annotations

import numpy as np

from cryosse.geometry import MapGeometry


def label_box(geometry: MapGeometry, ca_xyz: np.ndarray, ca_class: np.ndarray, radius: float) -> np.ndarray:
    """uint8 labels ``[z, y, x]`` on ``geometry`` from CA positions (N, 3) and classes (N,).

    Pass every CA that may lie within ``radius`` of the box (all chains): a
    voxel nearest a loop CA stays background even when a helix CA is also
    within reach. Ties between equidistant CAs go to the first one given.
    """
    shape = tuple(geometry.shape_zyx)
    labels = np.zeros(shape, np.uint8)
    ca_xyz = np.asarray(ca_xyz, float).reshape(-1, 3)
    ca_class = np.asarray(ca_class, np.uint8).reshape(-1)
    if len(ca_xyz) == 0:
        return labels
    vs = np.asarray(geometry.voxel_size, float)
    f = geometry.xyz_to_index(ca_xyz)  # fractional (i, j, k)
    reach = np.ceil(radius / vs).astype(int)
    offs = np.stack(np.meshgrid(*(np.arange(-r, r + 2) for r in reach), indexing="ij"), axis=-1).reshape(
        -1, 3
    )
    base = np.floor(f).astype(int)
    idx = base[:, None, :] + offs[None, :, :]  # (N, M, 3)
    d2 = np.sum(((idx - f[:, None, :]) * vs) ** 2, axis=-1)  # (N, M)
    n_xyz = np.asarray(geometry.shape_xyz)
    ok = (d2 <= radius * radius + 1e-9) & np.all((idx >= 0) & (idx < n_xyz), axis=-1)
    if not np.any(ok):
        return labels
    ca_id = np.broadcast_to(np.arange(len(ca_xyz))[:, None], d2.shape)[ok]
    vox = idx[ok]
    dist = d2[ok]
    flat = np.ravel_multi_index((vox[:, 2], vox[:, 1], vox[:, 0]), shape)
    # Nearest CA per voxel: sort by (voxel, distance, CA order) and keep the first.
    order = np.lexsort((ca_id, dist, flat))
    flat_sorted = flat[order]
    first = np.ones(len(order), bool)
    first[1:] = flat_sorted[1:] != flat_sorted[:-1]
    win = order[first]
    labels.reshape(-1)[flat[win]] = ca_class[ca_id[win]]
    return labels
