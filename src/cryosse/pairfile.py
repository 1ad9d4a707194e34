"""The pair file, ``arrays.npz``: one writer, one reader and one record (docs/design.md).

The dataset stage writes one per pair; training, validation, evaluation, scoring and
the figures read it. What it holds:

* ``density`` float32 [z, y, x] (normalised), ``labels`` uint8 [z, y, x] (0 background,
  1 helix, 2 sheet, 3 nucleic acid with ``classes: 4``);
* ``centre``: the centre box, six ints z0, z1, y0, y1, x0, x1 (the chain's box, where the
  loss and the scores count);
* ``ca_xyz`` float (N, 3), ``ca_class`` uint8 (N,), ``ca_in_centre`` bool (N,): the
  central chain's CA atoms, their DSSP class and whether they lie in the centre box;
* ``origin_xyz`` float64 (3,) and ``voxel_size``: the box's frame;
* optional: ``inside`` bool [z, y, x] (voxels within the map; absent: all are), and the
  nucleic-acid arrays of a 4-class dataset.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cryosse.classes import PAPER_CLASSES

ARRAYS = "arrays.npz"
#: what every pair file holds
REQUIRED = ("density", "labels", "centre", "ca_xyz", "ca_class", "ca_in_centre", "origin_xyz", "voxel_size")
#: what training reads (pretraining's and the tests' pair files may hold no more)
TRAINING = ("density", "labels", "centre")


class CentreBox(NamedTuple):
    """The centre box in voxels, half-open: [z0, z1) x [y0, y1) x [x0, x1)."""

    z0: int
    z1: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return slice(self.z0, self.z1), slice(self.y0, self.y1), slice(self.x0, self.x1)


@dataclass
class Pair:
    """One pair file, read and checked."""

    pair_id: str
    density: np.ndarray  # float32 [z, y, x]
    labels: np.ndarray  # uint8 [z, y, x]
    centre: CentreBox
    inside: np.ndarray | None = None  # bool [z, y, x]: within the map (None: the whole box is)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # every array as stored

    def __post_init__(self) -> None:
        self.centre = CentreBox(*(int(v) for v in self.centre))  # six ints given as any sequence


def write_pair_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write a pair file (``path`` a file name; the dataset stage writes into its staging folder).

    The arrays are :data:`REQUIRED` and any optional ones, stored with the dtypes above.
    """
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"{path}: a pair file needs {', '.join(missing)}")
    typed = {
        "density": np.asarray(arrays["density"], np.float32),
        "labels": np.asarray(arrays["labels"], np.uint8),
        "centre": np.asarray(arrays["centre"], np.int64),
        "ca_xyz": np.asarray(arrays["ca_xyz"]).reshape(-1, 3),
        "ca_class": np.asarray(arrays["ca_class"], np.uint8),
        "ca_in_centre": np.asarray(arrays["ca_in_centre"], bool),
        "origin_xyz": np.asarray(arrays["origin_xyz"], np.float64),
        "voxel_size": np.float64(arrays["voxel_size"]),
    }
    extra = {k: v for k, v in arrays.items() if k not in typed}
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **typed, **extra)


def read_pair_arrays(
    path: str | os.PathLike,
    pair_id: str | None = None,
    classes: int = PAPER_CLASSES,
    need: tuple[str, ...] = REQUIRED,
) -> Pair:
    """Read a pair file (``path``: the file or its pair folder) and check it against the contract.

    Errors name the pair (``pair_id``, else the path) and the cause: ``FileNotFoundError``
    when the file is missing, ``ValueError`` when it is damaged, lacks one of ``need``, or
    its shapes, centre box, values or labels (``< classes``) are wrong.
    """
    path = Path(path)
    if path.is_dir() or path.name != ARRAYS:
        path = path / ARRAYS
    name = pair_id or str(path.parent.name)
    if not path.exists():
        raise FileNotFoundError(f"{name}: pair arrays missing ({path}); rerun the dataset stage")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name}: {path} is not a usable pair file ({exc})") from exc
    missing = [k for k in need if k not in arrays]
    if missing:
        raise ValueError(f"{name}: {path}: arrays missing {', '.join(missing)}; rerun the dataset stage")
    density = np.asarray(arrays["density"], np.float32)
    labels = np.asarray(arrays["labels"])
    centre = tuple(int(v) for v in np.asarray(arrays["centre"]).reshape(-1))
    inside = np.asarray(arrays["inside"], bool) if "inside" in arrays else None
    if density.ndim != 3 or labels.shape != density.shape:
        raise ValueError(
            f"{name}: density {density.shape} and labels {labels.shape} must be equal 3-D shapes"
        )
    if len(centre) != 6 or any(
        not (0 <= centre[2 * i] < centre[2 * i + 1] <= density.shape[i]) for i in range(3)
    ):
        raise ValueError(f"{name}: centre {centre} is not a non-empty box inside shape {density.shape}")
    if not np.all(np.isfinite(density)):
        raise ValueError(f"{name}: density has NaN or infinite values")
    if labels.size and int(labels.max()) >= classes:
        raise ValueError(
            f"{name}: labels must be 0..{classes - 1} for {classes} classes, found {int(labels.max())}"
        )
    if inside is not None and inside.shape != density.shape:
        raise ValueError(f"{name}: inside mask {inside.shape} does not match the density {density.shape}")
    return Pair(name, density, labels.astype(np.uint8), CentreBox(*centre), inside, arrays)
