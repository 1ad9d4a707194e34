"""The structures pretraining may use: chains, DSSP classes, exclusions, families and roles.

:func:`inventory` reads every structure file of the sources (one unreadable file is
recorded with its reason and never stops the others), keeps the first copy of an
entry found in several packages, and picks its protein chains with the dataset
stage's own rules (>= ``min_residues`` residues with CA, one representative per 70%
identity group; all-beta chains are kept). Files whose residues mostly lack side
chains (backbone-only test sets) are left out: their simulated density would be a
thin tube unlike any map.

:func:`assign_roles` drops every structure with a chain related to an excluded
sequence (the real benchmark chains: identity >= 0.30 over >= 50% of either sequence)
or close to one of the demo's structures (>= 0.50: the protein itself or a close homologue), clusters the remaining chains into families with
MMseqs2 (identity >= 0.35, coverage >= 80% of either sequence, single linkage), and
draws whole families into held-out, validation and training roles.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from cryosse.dataset.chains import select_chains
from cryosse.dataset.dssp import HELIX, SHEET, assign
from cryosse.dataset.structure import ModelError, read_model, read_structure
from cryosse.io import read_tsv, write_tsv
from cryosse.splits import SearchParams, cluster_sequences, mmseqs_search, read_fasta, similar

log = logging.getLogger(__name__)

STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".ent.gz", ".cif.gz", ".mmcif.gz")
STRUCTURE_COLUMNS = [
    "structure",
    "file",
    "source",
    "package",
    "version",
    "member",
    "method",
    "resolution",
    "chains",
    "n_residues",
    "helix",
    "sheet",
    "fold",
]
CHAIN_COLUMNS = ["structure", "chain", "key", "length", "helix", "sheet", "sequence"]
REJECT_COLUMNS = ["file", "reason"]
ROLE_COLUMNS = ["structure", "role", "families", "fold", "excluded_by"]


@dataclass(frozen=True)
class InventoryParams:
    min_residues: int = 30
    max_residues: int = 20000  # per structure: bounds the cost of simulating one map
    dedup_identity: float = 0.70
    min_sidechain_fraction: float = 0.5
    dssp_engine: str = "pydssp"


def fold_class(helix: float, sheet: float) -> str:
    """A SCOP-like class from DSSP fractions: all-alpha, all-beta, alpha/beta, or few SSE.

    By the share of helix among secondary-structure residues (a few 3-10 turns do not make
    trypsin's beta barrels alpha/beta): >= 0.8 all-alpha, <= 0.3 all-beta, else alpha/beta.
    """
    sse = helix + sheet
    if sse < 0.2:
        return "few-sse"
    share = helix / sse
    return "all-alpha" if share >= 0.8 else "all-beta" if share <= 0.3 else "alpha/beta"


def _header(path: Path) -> tuple[str, str, float | None, float]:
    """(entry id, method, resolution, fraction of non-Gly residues with a CB) read by gemmi."""
    import gemmi

    st = read_structure(path)
    method = dict(st.info).get("_exptl.method", "").strip("'\" ").upper()
    res = st.resolution if st.resolution and st.resolution > 0 else None
    n = cb = 0
    for ch in st[0]:
        for r in ch:
            info = gemmi.find_tabulated_residue(r.name)
            if info is not None and info.is_amino_acid() and r.name != "GLY":
                n += 1
                cb += r.find_atom("CB", "*") is not None
    return (st.name or "").upper(), method, res, cb / n if n else 0.0


def _key(entry: str, path: Path) -> str:
    """A stable structure id: the entry id when the file names one, else the file's stem."""
    stem = path.name.split(".")[0]
    key = entry if entry and entry.upper() not in ("", "XXXX", "UNNAMED") else stem
    key = "".join(ch if ch.isalnum() else "-" for ch in key.upper()).strip("-")
    return key or hashlib.sha1(str(path).encode()).hexdigest()[:8]


def inventory(
    provenance: pd.DataFrame, sources_dir: str | os.PathLike, params: InventoryParams
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(structures, chains, rejected) from the sources' files (``provenance``: file relative to ``sources_dir``)."""
    structures, chains, rejected = [], [], []
    seen: dict[str, str] = {}
    for row in provenance.itertuples(index=False):
        path = Path(sources_dir) / row.file
        if not str(path).lower().endswith(STRUCTURE_SUFFIXES):
            continue
        try:
            entry, method, res, cb_frac = _header(path)
            model = read_model(path)
        except (ModelError, RuntimeError, ValueError, OSError) as exc:
            rejected.append({"file": row.file, "reason": f"unreadable: {exc}".replace("\n", " ")})
            continue
        key = _key(entry, path)
        if key in seen:
            rejected.append({"file": row.file, "reason": f"duplicate of {seen[key]} (entry {key})"})
            continue
        if cb_frac < params.min_sidechain_fraction:
            rejected.append(
                {"file": row.file, "reason": f"backbone-only model ({cb_frac:.0%} of residues have a CB)"}
            )
            continue
        if len(model.keys) > params.max_residues:
            rejected.append(
                {"file": row.file, "reason": f"{len(model.keys)} residues (> {params.max_residues})"}
            )
            continue
        if not len(model.keys) or not np.any(model.has_full_backbone):
            rejected.append({"file": row.file, "reason": "no protein chain with a full backbone"})
            continue
        try:
            classes = assign(model, params.dssp_engine)
        except (RuntimeError, ValueError) as exc:
            rejected.append({"file": row.file, "reason": f"DSSP failed: {exc}"})
            continue
        seqs = {c: model.sequence(c) for c in model.chain_order}
        cls = {c: np.array([classes[model.keys[i]] for i in model.chain_index(c)]) for c in model.chain_order}
        kept = [
            ch.chain
            for ch in select_chains(
                model.chain_order,
                seqs,
                cls,
                None,
                params.min_residues,
                params.dedup_identity,
                require_helix=False,
            )
            if ch.kept
        ]
        if not kept:
            rejected.append(
                {"file": row.file, "reason": f"no protein chain of >= {params.min_residues} residues"}
            )
            continue
        signature = "|".join(sorted(seqs[c] for c in kept))
        if signature in seen:
            rejected.append({"file": row.file, "reason": f"same chains as {seen[signature]}"})
            continue
        seen[key] = seen[signature] = row.file
        all_cls = np.concatenate([cls[c] for c in kept])
        h, s = float(np.mean(all_cls == HELIX)), float(np.mean(all_cls == SHEET))
        structures.append(
            {
                "structure": key,
                "file": row.file,
                "source": row.source,
                "package": row.package,
                "version": row.version,
                "member": row.member,
                "method": method,
                "resolution": res,
                "chains": ",".join(kept),
                "n_residues": int(all_cls.size),
                "helix": round(h, 3),
                "sheet": round(s, 3),
                "fold": fold_class(h, s),
            }
        )
        for c in kept:
            chains.append(
                {
                    "structure": key,
                    "chain": c,
                    "key": f"{key}:{c}",
                    "length": len(seqs[c]),
                    "helix": round(float(np.mean(cls[c] == HELIX)), 3),
                    "sheet": round(float(np.mean(cls[c] == SHEET)), 3),
                    "sequence": seqs[c],
                }
            )
    return (
        pd.DataFrame(structures, columns=STRUCTURE_COLUMNS),
        pd.DataFrame(chains, columns=CHAIN_COLUMNS),
        pd.DataFrame(rejected, columns=REJECT_COLUMNS),
    )


#: exclusion is stricter than the family rule: related over half of either sequence
EXCLUDE_SEARCH = SearchParams(identity=0.30, coverage=0.5, cov_mode=1)
#: the demo's structures: the protein itself and its close homologues (>= 50% identity)
EXCLUDE_CLOSE = SearchParams(identity=0.50, coverage=0.5, cov_mode=1)
#: families: the split stage's 35% identity, coverage of either sequence (a domain joins its chain)
FAMILY_SEARCH = SearchParams(identity=0.35, coverage=0.8, cov_mode=1)


def assign_roles(
    structures: pd.DataFrame,
    chains: pd.DataFrame,
    exclude: dict[str, str],
    exclude_close: dict[str, str],
    holdout_fraction: float,
    val_fraction: float,
    seed: int,
    threads: int = 1,
    max_per_family: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(roles per structure, families per chain). Roles: train, val, holdout, excluded or surplus.

    ``exclude``: sequences nothing related to may be used (:data:`EXCLUDE_SEARCH`);
    ``exclude_close``: sequences whose close homologues may not be used (:data:`EXCLUDE_CLOSE`).

    With ``max_per_family`` > 0, a structure whose every family already has that many
    structures (in inventory order) is ``surplus``: a few families with hundreds of
    members (THESEUS' trypsins) would otherwise dominate training.
    """
    seqs = dict(zip(chains["key"], chains["sequence"], strict=True))
    excluded_by: dict[str, str] = {}
    for targets, rule in ((exclude, EXCLUDE_SEARCH), (exclude_close, EXCLUDE_CLOSE)):
        hits = similar(mmseqs_search(seqs, targets, replace(rule, threads=threads)), rule)
        for q, t, ident in zip(hits["query"], hits["target"], hits["identity"], strict=True):
            excluded_by.setdefault(q.split(":", 1)[0], f"{t} ({float(ident):.0%} identity)")
    keep = {k: v for k, v in seqs.items() if k.split(":", 1)[0] not in excluded_by}
    fam = cluster_sequences(keep, replace(FAMILY_SEARCH, threads=threads)) if keep else None
    family = dict(zip(fam["pair_id"], fam["cluster"], strict=True)) if fam is not None else {}
    names = sorted(set(family.values()))
    rng = np.random.default_rng(int(seed))
    order = [names[i] for i in rng.permutation(len(names))]
    n_hold, n_val = int(round(holdout_fraction * len(order))), int(round(val_fraction * len(order)))
    role_of = {f: "holdout" for f in order[:n_hold]} | {f: "val" for f in order[n_hold : n_hold + n_val]}
    rows = []
    used: dict[str, int] = {}
    for s in structures.itertuples(index=False):
        fams = sorted({family[k] for k in (f"{s.structure}:{c}" for c in s.chains.split(",")) if k in family})
        if s.structure in excluded_by:
            role = "excluded"
        elif max_per_family > 0 and fams and all(used.get(f, 0) >= max_per_family for f in fams):
            role = "surplus"
        else:
            for f in fams:
                used[f] = used.get(f, 0) + 1
            roles = {role_of.get(f, "train") for f in fams}
            role = "holdout" if "holdout" in roles else "val" if "val" in roles else "train"
        rows.append(
            {
                "structure": s.structure,
                "role": role,
                "families": ",".join(fams),
                "fold": s.fold,
                "excluded_by": excluded_by.get(s.structure, ""),
            }
        )
    fam_table = pd.DataFrame(
        [(k, family.get(k, ""), excluded_by.get(k.split(":", 1)[0], "")) for k in seqs],
        columns=["key", "family", "excluded_by"],
    )
    return pd.DataFrame(rows, columns=ROLE_COLUMNS), fam_table


def run_inventory(
    provenance_tsv,
    sources_dir,
    exclude_fasta,
    exclude_structures,
    params,
    out: dict,
    holdout_fraction: float,
    val_fraction: float,
    seed: int,
    threads: int = 1,
    max_per_family: int = 0,
) -> pd.DataFrame:
    """Rule entry: write ``out``'s structures, chains, rejected, families and roles tables."""
    prov = read_tsv(provenance_tsv, text=True)
    structures, chains, rejected = inventory(prov, sources_dir, params)
    if structures.empty:
        raise ValueError(f"{provenance_tsv}: no usable structure in any source (see {out['rejected']})")
    exclude = read_fasta(exclude_fasta) if exclude_fasta else {}
    close: dict[str, str] = {}
    for folder in exclude_structures or []:  # the demo's structures: never pretrain on them or close kin
        for path in sorted(Path(folder).glob("*")):
            if path.name.lower().endswith(STRUCTURE_SUFFIXES):
                m = read_model(path)
                close.update({f"{path.name.split('.')[0]}:{c}": m.sequence(c) for c in m.chain_order})
    roles, families = assign_roles(
        structures, chains, exclude, close, holdout_fraction, val_fraction, seed, threads, max_per_family
    )
    for name, df in (
        ("structures", structures),
        ("chains", chains),
        ("rejected", rejected),
        ("families", families),
        ("roles", roles),
    ):
        write_tsv(out[name], df)
    counts = roles["role"].value_counts().to_dict()
    n_fam = families["family"].replace("", np.nan).nunique()
    log.info(
        "%d structures (%s), %d chains, %d families, %d files rejected",
        len(structures),
        counts,
        len(chains),
        n_fam,
        len(rejected),
    )
    if not counts.get("train") or not counts.get("val"):
        raise ValueError(
            f"{provenance_tsv}: {len(structures)} usable structure(s) in {n_fam} sequence families ({counts}) are too"
            f" few to train and validate on (whole families go to each role; val_fraction {val_fraction},"
            f" holdout_fraction {holdout_fraction}): add sources (see {out['rejected']} for the files left out)"
        )
    if n_fam < 40 or len(chains) < 300:
        log.warning(
            "only %d chains in %d families: the shipped model was pretrained on 420 chains in 148 families;"
            " a smaller set makes a model that generalises less",
            len(chains),
            n_fam,
        )
    return roles
