"""What a paper-scale run will cost, before it starts (``cryosse estimate``; rule ``estimate``).

Exact: the number of entries (the entry table, or what the EMDB search found). Measured now:
for a random sample of those entries, the map size their EMDB header states, the size of their
fitted model and its protein chains (at least ``dataset.min_residues`` residues with CA, before
the 70% identity deduplication: an upper bound on the pairs) with the box each would be cut
into (the chain's extent plus the padding on every side, at 1 A). Rates: measured by the
benchmarks on the development machine, named in :data:`RATES`; the dataset's CPU-hours and the
training grid's CPU-hours are those rates applied to the sample scaled to every entry, and its
GPU-hours the grid's floating-point work at a stated sustained speed, not a measurement.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from pathlib import Path
from typing import Any

#: the rates the estimate applies, with the benchmark and the machine each was measured on
RATES = {
    "read_s_per_mb": (
        0.160 / 32.0,
        "bench/bench_dataset.py: a 32 MB map (gzip) read and decompressed in 0.160 s; "
        "2 cores of an AMD EPYC with AVX-512, 2026-12-08",
    ),
    "pair_s_per_voxel": (
        0.231 / (72 * 74 * 79),
        "bench/bench_dataset.py: a whole pair of a 72x74x79 box in 0.231 s; the same machine and day",
    ),
    "train_voxels_per_s": (
        20151.0,
        "bench/bench_train.py: width-1 network, fp32, 84^3 boxes; 2 cores of an "
        "x86-64 CPU with AVX-512, the development machine of docs/usage.md",
    ),
    "flop_per_voxel": (
        4.84e6,
        "bench/bench_train.py: one training voxel, forward and backward, width 1 "
        "(counted from the layers' shapes)",
    ),
}
#: bytes a pair keeps per box voxel: map.mrc (float32) and labels.mrc (uint8), and the same two
#: arrays again in arrays.npz (an upper bound: npz compresses)
PAIR_BYTES_PER_VOXEL = 2 * (4 + 1)


def sample_entries(
    settings: Any, rows: list[dict[str, Any]], n: int, seed: int, min_residues: int, padding: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Fetch the header and model of ``n`` random entries (headers and models only, no map), as
    the acquisition fetches them (:func:`~cryosse.acquire.download.fetch_file`: URL or mirror):
    per entry the stated map size (MB), the model's size (MB), its protein chains and their
    boxes' voxel counts. Returns the sample and the entries that could not be measured (why)."""
    from cryosse.acquire.download import DownloadError, fetch_file
    from cryosse.acquire.emdb import HeaderError, parse_header
    from cryosse.acquire.stage import remote_locations

    def fetch(location: str, dest: Path, what: str) -> Path:
        return fetch_file(
            location, dest, None, settings.retries, settings.backoff_s, settings.timeout_s, what
        )

    picked = random.Random(seed).sample(rows, min(n, len(rows)))
    sample, failed = [], []
    with tempfile.TemporaryDirectory(prefix="cryosse-estimate-") as tmp:
        for row in picked:
            eid = row["emdb_id"]
            try:
                head = parse_header(fetch(remote_locations(settings, eid, None)["header"], Path(tmp) / "header.xml",
                                          f"{eid} header"))  # fmt: skip
                pdb = row.get("pdb_id") or (head["fitted_pdbs"] or [""])[0]
                if not pdb:
                    raise ValueError("no fitted model")
                location = remote_locations(settings, eid, pdb)["model"]
                model = fetch(location, Path(tmp) / location.rsplit("/", 1)[-1], f"{eid} model")
                boxes = chain_boxes(model, min_residues, padding)
                model_mb = model.stat().st_size / 2**20
            except (DownloadError, HeaderError, ValueError, OSError) as exc:
                failed.append(f"{eid}: {exc}")
                continue
            finally:
                for f in Path(tmp).iterdir():  # fetch_file keeps a file that exists: none may
                    f.unlink()
            map_kb = head.get("map_kbytes")
            sample.append(
                {
                    "emdb_id": eid,
                    "map_mb": None if map_kb is None else map_kb / 1024,
                    "model_mb": model_mb,
                    "chains": len(boxes),
                    "box_voxels": boxes,
                }
            )
    return sample, failed


def chain_boxes(model: Path, min_residues: int, padding: float) -> list[int]:
    """Voxels of the 1 A box of each protein chain of a model file (mmCIF or PDB, gzip or not)
    with at least ``min_residues`` CA atoms: the chain's extent plus ``padding`` on every side."""
    import gemmi
    import numpy as np

    st = gemmi.read_structure(str(model))
    out = []
    for chain in st[0]:
        ca = [r["CA"][0].pos for r in chain if r.find_atom("CA", "*")]
        if len(ca) < min_residues:
            continue
        xyz = np.array([[p.x, p.y, p.z] for p in ca])
        out.append(int(np.prod(np.ceil(xyz.max(0) - xyz.min(0) + 2 * padding))))
    return out


def estimate(
    n_entries: int,
    sample: list[dict[str, Any]],
    n_settings: int,
    n_splits: int,
    max_epochs: int,
    train_share: float,
    tflops: float,
) -> dict[str, Any]:
    """The run's cost from the sample scaled to ``n_entries`` (see the module docstring)."""
    r = {k: v for k, (v, _) in RATES.items()}
    sized = [s["map_mb"] for s in sample if s["map_mb"] is not None]
    map_mb = sum(sized) / len(sized) if sized else math.nan
    model_mb = sum(s["model_mb"] for s in sample) / len(sample) if sample else math.nan
    chains = sum(s["chains"] for s in sample) / len(sample) if sample else math.nan
    boxes = [v for s in sample for v in s["box_voxels"]]
    box = sum(boxes) / len(boxes) if boxes else math.nan
    pairs = n_entries * chains
    epoch_voxels = pairs * train_share * box
    grid_voxels = epoch_voxels * max_epochs * n_settings * n_splits
    return {
        "entries": n_entries,
        "sampled": len(sample),
        "sampled_with_map_size": len(sized),
        "map_mb_mean": map_mb,
        "download_gb": n_entries * (map_mb + model_mb) / 1024,
        "chains_per_entry": chains,
        "pairs_at_most": pairs,
        "box_voxels_mean": box,
        "dataset_disk_gb": pairs * box * PAIR_BYTES_PER_VOXEL / 2**30,
        "dataset_cpu_hours": (n_entries * map_mb * r["read_s_per_mb"] + pairs * box * r["pair_s_per_voxel"])
        / 3600,
        "trainings": n_settings * n_splits,
        "epoch_cpu_hours": epoch_voxels / r["train_voxels_per_s"] / 3600,
        "grid_cpu_hours": grid_voxels / r["train_voxels_per_s"] / 3600,
        "grid_gpu_hours": grid_voxels * r["flop_per_voxel"] / (tflops * 1e12) / 3600,
        "tflops": tflops,
    }


def render(est: dict[str, Any], failed: list[str], source: str) -> str:
    """The estimate as Markdown: each figure with what it rests on."""

    def f(v: float, fmt: str = "{:,.0f}") -> str:
        return "unknown" if v is None or not math.isfinite(v) else fmt.format(v)

    lines = [
        "# What this run will cost (an estimate)",
        "",
        f"Entries: **{est['entries']:,}** ({source}). Sampled now: {est['sampled']} entries' EMDB headers "
        f"and fitted models (no map); {est['sampled_with_map_size']} headers state their map's size.",
        "",
        "| | estimate | from |",
        "|---|---:|---|",
        f"| download | {f(est['download_gb'], '{:,.1f}')} GB | entries x (mean stated map size "
        f"{f(est['map_mb_mean'], '{:,.1f}')} MB + mean model size); maps are fetched gzipped, usually smaller |",
        f"| pairs (chains) | at most {f(est['pairs_at_most'])} | {f(est['chains_per_entry'], '{:.1f}')} protein "
        "chains per sampled model, before the 70% identity deduplication and the quality bins (the paper kept "
        "1355 pairs from its snapshot) |",
        f"| disk for the dataset | {f(est['dataset_disk_gb'], '{:,.1f}')} GB | pairs x mean box "
        f"{f(est['box_voxels_mean'])} voxels x {PAIR_BYTES_PER_VOXEL} bytes (plus the downloads) |",
        f"| dataset stage | {f(est['dataset_cpu_hours'], '{:,.1f}')} CPU-hours | reading each map and building "
        "each pair at the measured rates below |",
        f"| training, one epoch of one setting | {f(est['epoch_cpu_hours'], '{:,.0f}')} CPU-hours | training "
        "boxes x their voxels at the measured CPU rate |",
        f"| training grid ({est['trainings']} trainings, at the epoch cap) | {f(est['grid_cpu_hours'])} "
        f"CPU-hours, or {f(est['grid_gpu_hours'], '{:,.0f}')} GPU-hours | the GPU figure is the grid's "
        f"floating-point work at a sustained {est['tflops']:g} TFLOP/s (arithmetic, not a measurement; "
        "`python bench/bench_train.py --device cuda` measures yours); early stopping ends most trainings sooner |",
        "",
        "Rates (each with the benchmark and machine that measured it):",
        "",
    ]
    lines += [f"- {k}: {v:.3g} ({why})" for k, (v, why) in RATES.items()]
    if failed:
        lines += ["", f"Not measured ({len(failed)}): " + "; ".join(failed[:10])]
    return "\n".join(lines) + "\n"


def run(
    config: dict[str, Any],
    entry_table: str | os.PathLike,
    out: str | os.PathLike | None,
    n_settings: int,
    sample_size: int = 20,
    tflops: float = 100.0,
    base: str | os.PathLike = ".",
) -> str:
    """The estimate for a checked config, its entry table and its grid's ``n_settings`` per
    split; written to ``out`` (atomically) when given, and returned."""
    from cryosse.acquire.records import read_entry_table
    from cryosse.acquire.stage import AcquireSettings
    from cryosse.io import atomic_write

    rows = read_entry_table(entry_table)
    settings = AcquireSettings.from_config(config, base=base)
    ds, train, frac = config["dataset"], config["train"], config["split"]["fractions"]
    sample, failed = sample_entries(
        settings,
        rows,
        sample_size,
        int(config.get("seed", 42)),
        int(ds["min_residues"]),
        float(ds["padding"]),
    )
    est = estimate(
        len(rows),
        sample,
        n_settings,
        len(train["splits"]),
        int(train["max_epochs"]),
        frac[0] / sum(frac),
        tflops,
    )
    text = render(est, failed, f"from {entry_table}")
    if out is not None:
        with atomic_write(Path(out)) as fh:
            fh.write(text)
    return text
