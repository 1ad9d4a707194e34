"""Simulated cryo-EM maps from real structures (offline demo and tests).

A map is the model's electron-scattering density (gemmi ``DensityCalculatorE``)
blurred by a Gaussian whose width follows the resolution (sigma = 0.225 R, the
rule of ChimeraX ``molmap``), plus Gaussian noise, on a grid of the configured
voxel size whose origin is the model's bounding box minus a margin (hence
non-zero). Half the entries carry the origin in NXSTART/NYSTART/NZSTART and
half in the ORIGIN field, the two conventions of deposited maps.

The recorded contour level is the density at which the enclosed volume equals
the model's volume (residues x 110 Da x 1.21 A^3/Da), its source "simulated".

:class:`SimParams` adds what makes deposited maps differ from a blurred model, for
pretraining (``config/pretrain.yaml``; the demo keeps the plain defaults): the blur
per resolution, a smooth per-residue B-factor along each chain (local resolution),
coloured noise (white noise low-pass filtered to a correlation length), and the
masks depositors apply (density farther than a radius from every atom set to 0,
optionally with a cosine edge; deposited maps are 70-80% exact zeros).
:func:`draw_sim_params` draws them from configured ranges, as a function of a seed.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryosse.geometry import MapGeometry, write_map
from cryosse.io import atomic_path

SIGMA_PER_RESOLUTION = 0.225  # Gaussian sigma / resolution (ChimeraX molmap)
DALTON_PER_RESIDUE = 110.0
A3_PER_DALTON = 1.21


@dataclass(frozen=True)
class SimulatedMap:
    data: np.ndarray  # float32 [z, y, x]
    geometry: MapGeometry
    resolution: float
    contour_level: float
    use_nstart: bool


@dataclass(frozen=True)
class SimParams:
    """How one simulated map is made (the defaults are the demo's plain maps)."""

    resolution: float
    voxel_size: float = 1.2
    margin: float = 12.0
    noise: float = 0.1  # noise sd as a fraction of the density's sd
    noise_corr: float = 0.0  # A: Gaussian correlation length of the noise (0 = white)
    blur_factor: float = SIGMA_PER_RESOLUTION  # Gaussian sigma / resolution
    b_local: float = 0.0  # A^2: sd of a smooth extra B-factor along each chain (0 = none)
    mask_radius: float = 0.0  # A: > 0 sets density farther than this from every atom to 0
    mask_edge: float = 0.0  # A: cosine fall-off of the mask beyond mask_radius

    def to_dict(self) -> dict:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def draw_sim_params(rng: np.random.Generator, ranges: dict) -> SimParams:
    """Parameters drawn uniformly from ``ranges`` ({name: [lo, hi]}, ``mask_probability``)."""

    def u(name: str, default: tuple[float, float]) -> float:
        lo, hi = ranges.get(name, default)
        return float(rng.uniform(lo, hi))

    masked = rng.random() < float(ranges.get("mask_probability", 0.0))
    return SimParams(
        resolution=u("resolution", (5.0, 10.0)),
        voxel_size=u("voxel_size", (1.2, 1.2)),
        margin=u("margin", (12.0, 12.0)),
        noise=u("noise", (0.1, 0.1)),
        noise_corr=u("noise_corr", (0.0, 0.0)),
        blur_factor=u("blur_factor", (SIGMA_PER_RESOLUTION, SIGMA_PER_RESOLUTION)),
        b_local=u("b_local", (0.0, 0.0)),
        mask_radius=u("mask_radius", (4.0, 4.0)) if masked else 0.0,
        mask_edge=u("mask_edge", (0.0, 0.0)) if masked else 0.0,
    )


def _local_b(st, sd: float, rng: np.random.Generator) -> None:
    """Add a smooth random B-factor (sd ``sd`` A^2, correlated over ~10 residues) to every atom."""
    for ch in st[0]:
        n = len(ch)
        if n == 0:
            continue
        walk = np.convolve(rng.normal(0, 1, n + 20), np.hanning(21), mode="valid")[:n]
        walk = walk / (walk.std() or 1.0)
        extra = np.abs(sd * walk)  # only blur more: never sharpen past the global blur
        for r, b in zip(ch, extra, strict=True):
            for a in r:
                a.b_iso = float(b)


def _coloured_noise(shape: tuple[int, ...], corr_voxels: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-sd Gaussian noise low-pass filtered to a correlation length (voxels)."""
    from scipy import ndimage

    n = rng.normal(0.0, 1.0, shape).astype(np.float32)
    if corr_voxels > 0:
        n = ndimage.gaussian_filter(n, corr_voxels, mode="wrap")
        n /= n.std() or 1.0
    return n


def atom_mask(
    xyz_index: np.ndarray, shape: tuple[int, int, int], voxel_size: float, radius: float, edge: float
) -> np.ndarray:
    """Soft mask [z, y, x] in 0..1: 1 within ``radius`` A of any atom, a cosine to 0 over ``edge`` A."""
    from scipy import ndimage

    occupied = np.zeros(shape, bool)
    ijk = np.rint(xyz_index).astype(int)
    ok = np.all((ijk >= 0) & (ijk < np.asarray(shape)[::-1]), axis=1)
    occupied[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]] = True
    dist = ndimage.distance_transform_edt(~occupied, sampling=voxel_size)
    mask = (dist <= radius).astype(np.float32)
    if edge > 0:
        ramp = (dist > radius) & (dist < radius + edge)
        mask[ramp] = 0.5 + 0.5 * np.cos(np.pi * (dist[ramp] - radius) / edge)
    return mask


def draw_resolution(seed: int, entry_number: int, lo: float, hi: float) -> float:
    """Resolution of one entry, uniform in [lo, hi], a function of (seed, entry) only."""
    rng = np.random.default_rng([int(seed), int(entry_number), 1])
    return round(float(rng.uniform(lo, hi)), 2)


def simulate_density(
    structure,
    resolution: float,
    voxel_size: float,
    margin: float,
    noise: float,
    seed: int,
    entry_number: int,
) -> SimulatedMap:
    """Density of a gemmi Structure (first model, waters and hydrogens ignored): the demo's plain map."""
    return simulate_map(structure, SimParams(resolution, voxel_size, margin, noise), seed, entry_number)


def simulate_map(structure, p: SimParams, seed: int, entry_number: int) -> SimulatedMap:
    """Density of a gemmi Structure made as ``p`` says, a function of (structure, p, seed, entry_number)."""
    import gemmi

    resolution, voxel_size, margin, noise = p.resolution, p.voxel_size, p.margin, p.noise
    st = structure.clone()
    st.remove_hydrogens()
    st.remove_waters()
    st.remove_empty_chains()
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise ValueError(f"{st.name}: the structure has no atoms to simulate a map from")
    while len(st) > 1:
        del st[len(st) - 1]
    xyz = np.array([a.pos.tolist() for ch in st[0] for r in ch for a in r], float)
    lo_idx = np.floor((xyz.min(0) - margin) / voxel_size).astype(int)
    # A grid point at index 0 must not sit at the coordinate origin exactly.
    lo_idx = np.where(lo_idx == 0, -1, lo_idx)
    n_xyz = np.ceil((xyz.max(0) + margin) / voxel_size).astype(int) - lo_idx + 1
    origin = lo_idx * voxel_size
    shift = gemmi.Transform(gemmi.Mat33(), gemmi.Vec3(*(-origin)))
    st[0].transform_pos_and_adp(shift)
    for ch in st[0]:
        for r in ch:
            for a in r:
                a.b_iso = 0.0
                a.aniso = gemmi.SMat33f(0, 0, 0, 0, 0, 0)
    if p.b_local > 0:
        _local_b(st, p.b_local, np.random.default_rng([int(seed), int(entry_number), 3]))
    cell = gemmi.UnitCell(*(n_xyz * voxel_size), 90, 90, 90)
    st.cell = cell
    st.spacegroup_hm = "P 1"
    dc = gemmi.DensityCalculatorE()
    dc.d_min = resolution
    sigma = p.blur_factor * resolution
    dc.blur = 8 * math.pi**2 * sigma**2
    dc.grid.set_unit_cell(cell)
    dc.grid.spacegroup = gemmi.find_spacegroup_by_name("P 1")
    dc.grid.set_size(int(n_xyz[0]), int(n_xyz[1]), int(n_xyz[2]))
    dc.grid.fill(0.0)
    dc.add_model_density_to_grid(st[0])
    dc.grid.symmetrize_sum()
    data = np.ascontiguousarray(np.array(dc.grid.array, np.float32).transpose(2, 1, 0))
    rng = np.random.default_rng([int(seed), int(entry_number), 2])
    if noise > 0 and p.noise_corr > 0:
        data += (noise * float(data.std())) * _coloured_noise(data.shape, p.noise_corr / voxel_size, rng)
    elif noise > 0:
        data += rng.normal(0.0, noise * float(data.std()), data.shape).astype(np.float32)
    if p.mask_radius > 0:  # the structure was moved so that the grid starts at 0
        data *= atom_mask((xyz - origin) / voxel_size, data.shape, voxel_size, p.mask_radius, p.mask_edge)
    n_res = sum(1 for ch in st[0] for r in ch.get_polymer())
    volume = n_res * DALTON_PER_RESIDUE * A3_PER_DALTON
    n_inside = int(min(max(volume / voxel_size**3, 1), data.size - 1))
    contour = float(np.partition(data.ravel(), data.size - n_inside)[data.size - n_inside])
    geom = MapGeometry(
        tuple(int(s) for s in data.shape),  # type: ignore[arg-type]
        (voxel_size,) * 3,  # type: ignore[arg-type]
        tuple(float(o) for o in origin),  # type: ignore[arg-type]
    )
    use_nstart = bool(rng.integers(0, 2))
    return SimulatedMap(data, geom, float(resolution), round(contour, 6), use_nstart)


def write_map_gz(path: Path, sim: SimulatedMap) -> None:
    """Write ``sim`` as a gzipped MRC, origin in NSTART or ORIGIN, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".mrc", dir=path.parent)
    os.close(fd)
    tmp_mrc = Path(tmp_name)
    try:
        write_map(
            tmp_mrc,
            sim.data,
            sim.geometry,
            origin_in="nstart" if sim.use_nstart else "origin",
            label="cryosse simulated map (not an EMDB entry)",
        )
        with atomic_path(path, suffix=".gz") as tmp_gz:
            # No name and mtime 0 in the gzip header: the same map gives the same bytes.
            with open(tmp_mrc, "rb") as src, open(tmp_gz, "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as dst:
                    shutil.copyfileobj(src, dst)
    finally:
        tmp_mrc.unlink(missing_ok=True)
