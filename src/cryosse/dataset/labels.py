"""Voxel labels (SPEC 5): a voxel within ``radius`` of a CA takes the class of the
nearest CA (0 other, 1 helix, 2 sheet); every other voxel is background."""

from __future__ import annotations

import numpy as np

from cryosse.geometry import MapGeometry, voxels_within


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
    ca_id, vox, dist = voxels_within(geometry, ca_xyz, radius)
    if len(ca_id) == 0:
        return labels
    flat = np.ravel_multi_index((vox[:, 0], vox[:, 1], vox[:, 2]), shape)
    # Nearest CA per voxel: sort by (voxel, distance, CA order) and keep the first.
    order = np.lexsort((ca_id, dist, flat))
    flat_sorted = flat[order]
    first = np.ones(len(order), bool)
    first[1:] = flat_sorted[1:] != flat_sorted[:-1]
    win = order[first]
    labels.reshape(-1)[flat[win]] = ca_class[ca_id[win]]
    return labels
