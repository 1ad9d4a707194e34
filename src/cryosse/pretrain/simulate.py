"""Simulated maps of the inventory's structures, cut into pairs by the dataset stage's code.

Each structure gets ``variants`` maps, each drawn from the configured ranges as a
function of (seed, structure, variant) only (:func:`cryosse.acquire.simulate.draw_sim_params`):
resolution, voxel size, blur, local B-factors, coloured noise and a depositor's mask.
A share of the variants (``chain_only_probability``) simulates each chain alone, as in
the DeepSSETracer authors' chain boxes (density masked to one chain; the labels then
hold that chain only). Every map is written to a temporary MRC file with its origin in
the ORIGIN field, in NSTART, or at zero with the model moved to match (the three
conventions of deposited maps), read back by :func:`cryosse.geometry.read_map`, and
cut into pairs by :func:`cryosse.dataset.pairs.build_pair` (17 A padding, 1 A grid,
normalisation, nearest-CA labels), exactly as real maps are.

A structure's pairs are written with a marker file listing them, so a killed job
resumes at the next structure; one structure that fails is recorded and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from cryosse.acquire.simulate import draw_sim_params, simulate_map
from cryosse.dataset.dssp import assign
from cryosse.dataset.pairs import DATASET_COLUMNS, DatasetParams, PairRejected, build_pair
from cryosse.dataset.structure import Model, read_model, read_structure
from cryosse.geometry import MapGeometry, read_map, write_map
from cryosse.io import read_json, read_tsv, write_json, write_tsv

log = logging.getLogger(__name__)

CONVENTIONS = ("origin", "nstart", "zero")
PAIR_COLUMNS = [*DATASET_COLUMNS, "structure", "variant", "role", "sim"]


@dataclass(frozen=True)
class SimulationPlan:
    """The ``pretrain.simulate`` section of the config."""

    variants: int = 3
    chain_only_probability: float = 0.3
    ranges: dict = field(default_factory=dict)
    seed: int = 42


def stable_int(text: str) -> int:
    """A 31-bit integer of ``text`` (the same on every machine and Python)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def model_subset(model: Model, chains: list[str]) -> Model:
    """The model's residues of ``chains`` only."""
    keep = np.isin(model.chain_of.astype(str), chains)
    idx = np.flatnonzero(keep)
    return replace(
        model,
        keys=[model.keys[i] for i in idx],
        resnames=[model.resnames[i] for i in idx],
        ca=model.ca[idx],
        backbone=model.backbone[idx],
        chain_of=model.chain_of[idx],
        chain_order=[c for c in model.chain_order if c in chains],
        chain_atoms={c: a for c, a in model.chain_atoms.items() if c in chains},
        na=np.zeros((0, 3)),
    )


def model_shifted(model: Model, shift: np.ndarray) -> Model:
    """The model moved by ``shift`` (x, y, z) A."""
    s = np.asarray(shift, float)
    return replace(
        model,
        ca=model.ca + s,
        backbone=model.backbone + s,
        chain_atoms={c: a + s for c, a in model.chain_atoms.items()},
        na=model.na + s if len(model.na) else model.na,
    )


def _structure_pairs(
    row: dict, sources_dir: str, pairs_dir: str, plan: SimulationPlan, dparams: DatasetParams
) -> list[dict]:
    path = Path(sources_dir) / row["file"]
    chains = row["chains"].split(",")
    st = read_structure(path)
    st.setup_entities()
    model = read_model(path)
    classes = assign(model, dparams.dssp_engine)
    sid = stable_int(row["structure"])
    out: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="cryosse-pretrain-") as tmp:
        for v in range(plan.variants):
            rng = np.random.default_rng([int(plan.seed), sid, v])
            p = draw_sim_params(rng, plan.ranges)
            alone = bool(rng.random() < plan.chain_only_probability)
            convention = CONVENTIONS[int(rng.integers(len(CONVENTIONS)))]
            for group in [[c] for c in chains] if alone else [chains]:
                sim_st = st.clone()
                if alone:
                    for ch in list(sim_st[0]):
                        if ch.name not in group:
                            sim_st[0].remove_chain(ch.name)
                sim = simulate_map(sim_st, p, plan.seed, sid % 100000 * 100 + v)
                m = model_subset(model, group) if alone else model
                geom = sim.geometry
                if convention == "zero":  # deposited with origin 0: the model is moved instead
                    m = model_shifted(m, -np.asarray(geom.origin_xyz))
                    geom = MapGeometry(geom.shape_zyx, geom.voxel_size, (0.0, 0.0, 0.0))
                map_path = Path(tmp) / f"v{v}.mrc"
                write_map(
                    map_path, sim.data, geom, origin_in="nstart" if convention == "nstart" else "origin"
                )
                dmap = read_map(map_path, mmap=False)
                ids = {"emdb_id": f"V{v}", "pdb_id": row["structure"], "resolution": round(p.resolution, 2)}
                for chain in group:
                    pid = f"V{v}_{row['structure']}_{chain}"
                    try:
                        r = build_pair(
                            dmap,
                            m,
                            classes,
                            chain,
                            Path(pairs_dir) / pid,
                            dparams,
                            sim.contour_level,
                            "simulated",
                            ids,
                            write_mrc=False,
                        )
                    except PairRejected as exc:
                        log.info("%s: %s", pid, exc)
                        continue
                    out.append(
                        {
                            **{k: r.get(k) for k in DATASET_COLUMNS},
                            "structure": row["structure"],
                            "variant": v,
                            "role": row["role"],
                            "sim": {**p.to_dict(), "chain_only": alone, "convention": convention},
                        }
                    )
    return out


def _fingerprint(row: dict, plan: SimulationPlan, dparams: DatasetParams) -> dict:
    """What a structure's pairs depend on: a marker made with anything else is redone."""
    keys = ("structure", "file", "chains", "role")
    return {"row": {k: row[k] for k in keys}, "plan": asdict(plan), "dataset": asdict(dparams)}


def _one(args: tuple) -> tuple[str, list[dict] | None, str]:
    row, sources_dir, pairs_dir, plan, dparams = args
    marker = Path(pairs_dir) / ".done" / f"{row['structure']}.json"
    made = _fingerprint(row, plan, dparams)
    if marker.exists():
        done = read_json(marker)
        if json.loads(json.dumps(made)) == done.get("made"):
            return row["structure"], done["pairs"], ""
    try:
        rows = _structure_pairs(row, sources_dir, pairs_dir, plan, dparams)
    except Exception as exc:  # one structure never stops the others: recorded with its reason
        log.exception("%s: failed", row["structure"])
        return row["structure"], None, f"{type(exc).__name__}: {exc}"
    write_json(marker, {"made": made, "pairs": rows})
    return row["structure"], rows, ""


def simulate_pairs(
    structures_tsv: str | os.PathLike,
    roles_tsv: str | os.PathLike,
    sources_dir: str | os.PathLike,
    pairs_dir: str | os.PathLike,
    dataset_tsv: str | os.PathLike,
    split_tsv: str | os.PathLike,
    failed_tsv: str | os.PathLike,
    plan: SimulationPlan,
    dparams: DatasetParams,
    threads: int = 1,
) -> pd.DataFrame:
    """Pairs of every non-excluded structure; the dataset table, a split (holdout = test) and failures."""
    st = read_tsv(structures_tsv, text=True)
    roles = read_tsv(roles_tsv, text=True)
    st = st.merge(roles[["structure", "role", "families"]], on="structure")
    st = st[st["role"] != "excluded"]
    (Path(pairs_dir) / ".done").mkdir(parents=True, exist_ok=True)
    dparams = replace(dparams, keep_bins=(1, 2, 3, 4), require_helix=False)
    jobs = [(r, str(sources_dir), str(pairs_dir), plan, dparams) for r in st.to_dict("records")]
    rows: list[dict] = []
    failed: list[dict] = []
    if threads > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(_one, jobs, chunksize=1))
    else:
        results = [_one(j) for j in jobs]
    for structure, got, reason in results:
        if got is None:
            failed.append({"structure": structure, "reason": reason})
        else:
            rows.extend(got)
    df = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    df["sim"] = [str(s) for s in df["sim"]]
    write_tsv(dataset_tsv, df)
    # Validation: the first map of each validation structure (the epoch's figure stays quick);
    # its other maps and the held-out families are never trained on ("test").
    role = df["role"].map({"train": "train", "val": "val", "holdout": "test"})
    role[(role == "val") & (df["variant"] != 0)] = "test"
    family = dict(zip(st["structure"], st["families"].str.split(",").str[0], strict=True))
    cluster = [family.get(s) or s for s in df["structure"]]
    write_tsv(split_tsv, pd.DataFrame({"pair_id": df["pair_id"], "role": role, "cluster": cluster}))
    write_tsv(failed_tsv, pd.DataFrame(failed, columns=["structure", "reason"]))
    log.info(
        "%d pairs from %d structures (%s); %d structures failed",
        len(df),
        df["structure"].nunique(),
        role.value_counts().to_dict(),
        len(failed),
    )
    return df
