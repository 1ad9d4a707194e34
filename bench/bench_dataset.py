"""Benchmark of the dataset stage: time of one pair against reading its map; peak memory.

1. A synthetic 200^3 map (gzip, as EMDB ships maps) simulated from a real
   structure: the time to build one pair's crop + labels + quality (and the
   whole pair with its files) against the time to only read and decompress the
   map. Target: at most 2x.
2. A 512^3 map (512 MB of float32), plain and gzip: peak RSS of a process that
   builds all pairs of the entry (contour estimated from the full map), against
   the map's size. Target: at most two copies of the map.

Usage: python bench/bench_dataset.py [--model PATH] [--skip-512] [--tmp DIR]
Figures are measured in one run on the same machine; on a shared machine the
absolute times vary, the ratios much less.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from real_data import REAL, skipped
from scipy import ndimage

from cryosse.dataset.crop import chain_box, crop
from cryosse.dataset.dssp import assign
from cryosse.dataset.labels import label_box
from cryosse.dataset.pairs import DatasetParams, build_pair
from cryosse.dataset.quality import chain_cylinder_score, precision_recall, quality_bin
from cryosse.dataset.structure import read_model
from cryosse.geometry import MapGeometry, read_map, write_map
from cryosse.infer import normalise_density

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REAL / "emd3488_5me2" / "5me2.pdb"
#: without the real maps: a structure bundled for the demo
FALLBACK_MODEL = ROOT / "data" / "demo_structures" / "1KYO.cif.gz"


def synthetic_map(
    model_path: Path, n: int, voxel: float, res: float = 6.0
) -> tuple[np.ndarray, MapGeometry, float]:
    """An n^3 map with the model's blurred atoms at its centre; contour at the model's volume."""
    m = read_model(model_path)
    xyz = np.concatenate(list(m.chain_atoms.values()))
    centre = (xyz.min(0) + xyz.max(0)) / 2
    origin = np.round(centre - voxel * (n - 1) / 2, 3)
    geom = MapGeometry((n, n, n), (voxel,) * 3, tuple(origin))
    f = np.rint(geom.xyz_to_index(xyz)).astype(int)
    lo = f.min(0) - 20
    hi = f.max(0) + 21
    sub = np.zeros((hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]), np.float32)
    np.add.at(sub, (f[:, 2] - lo[2], f[:, 1] - lo[1], f[:, 0] - lo[0]), 1.0)
    sub = ndimage.gaussian_filter(sub, 0.225 * res / voxel)
    data = np.zeros(geom.shape_zyx, np.float32)
    data[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]] = sub
    rng = np.random.default_rng(0)
    data += rng.normal(0, 0.05 * float(sub.std()), data.shape).astype(np.float32)
    vol = len(m.keys) * 110 * 1.21 / voxel**3
    contour = float(np.partition(sub.ravel(), sub.size - int(vol))[sub.size - int(vol)])
    return data, geom, contour


def gzip_file(src: Path, dst: Path, level: int = 6) -> None:
    with open(src, "rb") as fi, gzip.open(dst, "wb", compresslevel=level) as fo:
        shutil.copyfileobj(fi, fo, 1 << 22)


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_pair(model_path: Path, tmp: Path) -> None:
    data, geom, contour = synthetic_map(model_path, 200, 1.2)
    plain = tmp / "map200.mrc"
    write_map(plain, data, geom)
    gz = tmp / "map200.map.gz"
    gzip_file(plain, gz)
    del data
    model = read_model(model_path)
    classes = assign(model, "pydssp")
    params = DatasetParams()
    chain = model.chain_order[0]
    idx = model.chain_index(chain)
    cls = np.array([classes[model.keys[i]] for i in idx], np.uint8)
    q = params.quality

    def read_only():
        d = read_map(gz)
        float(np.asarray(d.data[0, 0, 0]))

    dmap = read_map(gz)

    def compute():
        box = chain_box(model.chain_atoms[chain], dmap.geometry, params.padding, params.spacing)
        raw = crop(dmap, box)
        cyl, _ = chain_cylinder_score(raw, box.geometry, contour, model.ca[idx], cls, q)
        p, r = precision_recall(raw, box.geometry, contour, model.chain_atoms[chain], q)
        quality_bin(cyl, abs(p - r), q)
        normalise_density(raw)
        label_box(
            box.geometry, model.ca, np.array([classes[k] for k in model.keys], np.uint8), params.label_radius
        )

    def whole_pair():
        build_pair(
            dmap,
            model,
            classes,
            chain,
            tmp / "pair",
            params,
            contour,
            "given",
            {"emdb_id": "EMD-1", "pdb_id": "X"},
        )

    t_read = best_of(read_only)
    t_compute = best_of(compute)
    t_pair = best_of(whole_pair)
    box = chain_box(model.chain_atoms[chain], dmap.geometry, params.padding, params.spacing)
    print(f"[200^3] map {gz.stat().st_size / 1e6:.1f} MB gzip ({plain.stat().st_size / 1e6:.1f} MB plain), "
          f"chain {chain} ({len(idx)} residues), box {box.geometry.shape_zyx}")  # fmt: skip
    print(f"[200^3] read + decompress map:          {t_read:7.3f} s")
    print(
        f"[200^3] crop + labels + quality:        {t_compute:7.3f} s  ratio {t_compute / t_read:5.2f}x (target <= 2x)"
    )
    print(f"[200^3] whole pair (+ files, checksums): {t_pair:7.3f} s  ratio {t_pair / t_read:5.2f}x")


_CHILD = r"""
import dataclasses, json, sys, time
from cryosse.dataset.pairs import DatasetParams
from cryosse.dataset.entry import build_entry
def hwm():  # peak RSS of this process image (ru_maxrss would include the parent's before exec)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
params = dataclasses.replace(DatasetParams(), keep_bins=(1, 2, 3, 4))  # build every pair
t = time.perf_counter()
df = build_entry(sys.argv[1], sys.argv[2], sys.argv[3], params)
print(json.dumps({"maxrss_kb": hwm(), "seconds": time.perf_counter() - t, "kept": int((df.status == "kept").sum())}))
"""

_BASE = r"""
import json, sys
import cryosse.dataset.pairs, pandas, gemmi, scipy.spatial, mrcfile
if len(sys.argv) > 1:  # read the map only
    from cryosse.geometry import read_map
    read_map(sys.argv[1])
with open("/proc/self/status") as fh:
    print(json.dumps({"maxrss_kb": next(int(x.split()[1]) for x in fh if x.startswith("VmHWM"))}))
"""


def run_child(code: str, *args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_512(model_path: Path, tmp: Path) -> None:
    data, geom, _ = synthetic_map(model_path, 512, 1.0)
    plain = tmp / "map512.mrc"
    write_map(plain, data, geom)
    del data
    gz = tmp / "map512.map.gz"
    gzip_file(plain, gz, level=1)
    size_mb = plain.stat().st_size / 2**20
    base = run_child(_BASE)["maxrss_kb"] / 1024
    print(f"[512^3] map {size_mb:.0f} MiB as float32; python + imports alone: {base:.0f} MiB RSS")
    for name, path in (("plain (memory-mapped)", plain), ("gzip", gz)):
        rec = tmp / f"record_{path.suffix}.json"
        rec.write_text(json.dumps({"status": "ok", "emdb_id": "EMD-1", "pdb_id": "X", "chains": [],
                                   "resolution": 6.0, "contour_level": None, "contour_source": "none",
                                   "map": str(path), "model": str(model_path)}))  # fmt: skip
        res = run_child(_CHILD, str(rec), str(tmp / "entry.tsv"), str(tmp / "pairs"))
        peak = res["maxrss_kb"] / 1024
        print(f"[512^3] {name:22s}: peak RSS {peak:6.0f} MiB = {peak / size_mb:4.2f} map copies "
              f"(minus imports {(peak - base) / size_mb:4.2f}); {res['kept']} pairs in {res['seconds']:.1f} s "
              f"(contour estimated from the full map)")  # fmt: skip
        only = run_child(_BASE, str(path))["maxrss_kb"] / 1024
        print(
            f"[512^3] {'':22s}  read_map alone: peak RSS {only:6.0f} MiB = {(only - base) / size_mb:4.2f} copies over imports"
        )
    print(
        "[512^3] (torch, imported once the first pair is normalised, adds about 150-200 MiB to the peaks above)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="PDB/mmCIF (default: 5ME2 of the real maps)")
    ap.add_argument("--skip-512", action="store_true")
    ap.add_argument("--tmp", type=Path, default=None)
    args = ap.parse_args()
    if args.model is None:
        args.model = DEFAULT_MODEL if DEFAULT_MODEL.exists() else FALLBACK_MODEL
        if args.model == FALLBACK_MODEL:
            print(skipped(f"5ME2 as the model; the bundled {FALLBACK_MODEL.name} is used"))
    if not args.model.exists():
        sys.exit(f"model {args.model} not found; pass --model PATH (a PDB/mmCIF file)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-dataset-", dir=args.tmp))
    try:
        bench_pair(args.model, tmp)
        if not args.skip_512:
            bench_512(args.model, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
