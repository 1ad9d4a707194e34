"""Per-residue secondary structure (SPEC 5): helix, sheet or other for every residue.

Two engines:

* ``pydssp`` (default): the numpy implementation of pydssp on a backbone array
  built from the model (all chains together, so inter-chain sheets count). Its
  ``H`` is DSSP's H, G and I, its ``E`` is E and B: exactly the paper's classes.
* ``mkdssp`` (DSSP 4, Debian's ``dssp`` package): the eight-state codes mapped
  by the paper's rule (H, G, I helix; B, E sheet; the rest other).

Both return ``{(chain, seqnum, icode): class}`` with 0 other, 1 helix, 2 sheet
for every residue of :class:`~cryosse.dataset.structure.Model`; a residue
without a full backbone is 0.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from cryosse.dataset.structure import Model

OTHER, HELIX, SHEET = 0, 1, 2
ENGINES = ("pydssp", "mkdssp")
_DSSP8 = {"H": HELIX, "G": HELIX, "I": HELIX, "E": SHEET, "B": SHEET}

# pydssp's numpy code builds (L, L, 3) arrays; above this many residues it runs
# per chain with the residues of other chains that touch it.
_MAX_BLOCK = 2000
_CONTEXT_CA = 12.0  # A: residues of other chains with a CA this close are context


class DsspError(RuntimeError):
    """DSSP could not assign the model; the message names the file and the cause."""


def assign(model: Model, engine: str = "pydssp") -> dict[tuple[str, int, str], int]:
    """Per-residue class for every residue of ``model`` with the chosen engine."""
    if engine == "pydssp":
        return assign_pydssp(model)
    if engine == "mkdssp":
        return assign_mkdssp(model)
    raise ValueError(f"unknown DSSP engine {engine!r} (choose one of {', '.join(ENGINES)})")


def _pydssp_numpy():
    """pydssp's numpy module, loaded without the package ``__init__`` (which imports torch)."""
    spec = importlib.util.find_spec("pydssp")
    if spec is None or not spec.submodule_search_locations:
        raise DsspError("pydssp is not installed (pip install pydssp)")
    path = Path(list(spec.submodule_search_locations)[0]) / "pydssp_numpy.py"
    mod_spec = importlib.util.spec_from_file_location("_cryosse_pydssp_numpy", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _runs(model: Model, idx: np.ndarray) -> list[np.ndarray]:
    """Split residue indices (sorted) into runs of one chain with consecutive indices."""
    if len(idx) == 0:
        return []
    cut = np.flatnonzero((np.diff(idx) != 1) | (model.chain_of[idx[1:]] != model.chain_of[idx[:-1]])) + 1
    return np.split(idx, cut)


def _classes_for(model: Model, idx: np.ndarray, pydssp_np) -> np.ndarray:
    """pydssp classes for residues ``idx`` (all with full backbones), chain breaks kept."""
    runs = _runs(model, idx)
    bb = model.backbone.astype(np.float32)
    template = bb[idx[0]] - bb[idx[0], 1]
    coords, donor, where = [], [], []
    pos = 0
    for k, run in enumerate(runs):
        if k:  # a far-away dummy residue between runs: no false adjacency or H-bond
            coords.append(template[None] + np.float32(1.0e4 + 50.0 * k))
            donor.append(np.zeros(1, bool))
            pos += 1
        c = bb[run]
        bonded = np.zeros(len(run), bool)
        if len(run) > 1:
            bonded[1:] = np.linalg.norm(c[1:, 0] - c[:-1, 2], axis=1) < 2.0
        pro = np.array([model.resnames[i] == "PRO" for i in run])
        coords.append(c)
        donor.append(bonded & ~pro)
        where.append(np.arange(pos, pos + len(run)))
        pos += len(run)
    while pos < 6:  # pydssp fails below 6 residues
        coords.append(template[None] + np.float32(2.0e4 + 50.0 * pos))
        donor.append(np.zeros(1, bool))
        pos += 1
    onehot = pydssp_np.assign(np.concatenate(coords), donor_mask=np.concatenate(donor))
    cls = np.argmax(onehot, axis=-1).astype(np.uint8)  # 0 loop, 1 H, 2 E
    return cls[np.concatenate(where)]


def assign_pydssp(model: Model) -> dict[tuple[str, int, str], int]:
    """pydssp on the whole model (or per chain with its contacts when it is large)."""
    out = {k: OTHER for k in model.keys}
    full = np.flatnonzero(model.has_full_backbone)
    if len(full) == 0:
        return out
    pydssp_np = _pydssp_numpy()
    if len(full) <= _MAX_BLOCK:
        cls = _classes_for(model, full, pydssp_np)
        for i, c in zip(full, cls, strict=True):
            out[model.keys[i]] = int(c)
        return out
    from scipy.spatial import cKDTree

    tree = cKDTree(model.ca[full])
    for chain in model.chain_order:
        own = full[model.chain_of[full] == chain]
        if len(own) == 0:
            continue
        near = tree.query_ball_point(model.ca[own], _CONTEXT_CA)
        ctx = np.unique(np.concatenate([np.asarray(n, int) for n in near]))
        idx = np.union1d(own, full[ctx])
        cls = _classes_for(model, idx, pydssp_np)
        for i, c in zip(idx, cls, strict=True):
            if model.chain_of[i] == chain:
                out[model.keys[i]] = int(c)
    return out


@functools.lru_cache(maxsize=4)
def mkdssp_version(exe: str) -> tuple[int, ...]:
    """mkdssp's version, e.g. (4, 2, 2); (0,) when it does not say."""
    run = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", run.stdout + run.stderr)
    return tuple(int(g) for g in m.groups() if g is not None) if m else (0,)


def mkdssp_mmcif_args(exe: str) -> list[str]:
    """Arguments for mmCIF output with the DSSP categories: DSSP 4.3 writes them by default and
    removed --write-experimental, which 4.0-4.2 need."""
    return (
        ["--output-format", "mmcif"]
        if mkdssp_version(exe) >= (4, 3)
        else ["--write-experimental", "--output-format", "mmcif"]
    )


def _prepared_structure(path: str):
    import gemmi

    st = gemmi.read_structure(path, merge_chain_parts=True)
    st.setup_entities()
    st.remove_hydrogens()
    st.remove_alternative_conformations()
    st.remove_ligands_and_waters()
    st.remove_empty_chains()
    while len(st) > 1:
        del st[1]
    return st


def assign_mkdssp(model: Model) -> dict[tuple[str, int, str], int]:
    """mkdssp (DSSP 4) with the quirks of 4.2 handled: mmCIF with a
    ``_pdbx_poly_seq_scheme`` first, classic output on a PDB with HEADER if that fails."""
    import gemmi

    exe = shutil.which("mkdssp")
    if exe is None:
        raise DsspError("mkdssp is not installed (Debian package 'dssp'); use dssp_engine: pydssp")
    st = _prepared_structure(model.path)
    st.assign_label_seq_id(True)
    doc = st.make_mmcif_document()
    block = doc.sole_block()
    loop = block.init_loop(
        "_pdbx_poly_seq_scheme.",
        [
            "asym_id",
            "entity_id",
            "seq_id",
            "mon_id",
            "ndb_seq_num",
            "pdb_seq_num",
            "auth_seq_num",
            "pdb_mon_id",
            "auth_mon_id",
            "pdb_strand_id",
            "pdb_ins_code",
            "hetero",
        ],
    )
    label_to_key: dict[tuple[str, str], tuple[str, int, str]] = {}
    for ch in st[0]:
        poly = ch.get_polymer()
        ent = st.get_entity_of(poly)
        for r in poly:
            key = (ch.name, int(r.seqid.num), r.seqid.icode.strip())
            label_to_key[(poly.subchain_id(), str(r.label_seq))] = key
            loop.add_row(
                [
                    poly.subchain_id(),
                    ent.name if ent else "1",
                    str(r.label_seq),
                    r.name,
                    str(r.label_seq),
                    str(r.seqid.num),
                    str(r.seqid.num),
                    r.name,
                    r.name,
                    ch.name,
                    r.seqid.icode.strip() or ".",
                    "n",
                ]
            )
    out = {k: OTHER for k in model.keys}
    with tempfile.TemporaryDirectory(prefix="cryosse-dssp-") as tmp:
        src, dst = os.path.join(tmp, "in.cif"), os.path.join(tmp, "out.cif")
        doc.write_file(src)
        run = subprocess.run(
            [exe, *mkdssp_mmcif_args(exe), src, dst],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode == 0 and os.path.exists(dst):
            cat = (
                gemmi.cif.read(dst)
                .sole_block()
                .find("_dssp_struct_summary.", ["label_asym_id", "label_seq_id", "secondary_structure"])
            )
            n = 0
            for row in cat:
                key = label_to_key.get((row[0], row[1]))
                if key is not None and key in out:
                    out[key] = _DSSP8.get(row[2], OTHER)
                    n += 1
            if n or not len(model.keys):
                return out
        # Fallback: classic DSSP format from a PDB file that starts with HEADER.
        pdb, dsp = os.path.join(tmp, "in.pdb"), os.path.join(tmp, "out.dssp")
        st.setup_entities()
        text = st.make_pdb_string(gemmi.PdbWriteOptions(minimal=True))
        with open(pdb, "w") as fh:
            fh.write("HEADER    PROTEIN                                 01-JAN-00   XXXX\n" + text)
        run2 = subprocess.run(
            [exe, "--output-format", "dssp", pdb, dsp], capture_output=True, text=True, check=False
        )
        if run2.returncode != 0 or not os.path.exists(dsp):
            raise DsspError(f"{model.path}: mkdssp failed ({(run.stderr or run2.stderr).strip()[:300]})")
        _parse_classic(dsp, out)
    return out


def _parse_classic(path: str, out: dict) -> None:
    started = False
    with open(path) as fh:
        for line in fh:
            if line.startswith("  #  RESIDUE"):
                started = True
                continue
            if not started or len(line) < 17 or line[13] == "!":
                continue
            num, icode, chain = int(line[5:10]), line[10].strip(), line[11].strip()
            key = (chain, num, icode)
            if key in out:
                out[key] = _DSSP8.get(line[16], OTHER)


def agreement(a: dict, b: dict) -> dict[str, float]:
    """Per-residue 3-class agreement of two assignments over their common residues."""
    keys = [k for k in a if k in b]
    x = np.array([a[k] for k in keys])
    y = np.array([b[k] for k in keys])
    res = {"n": len(keys), "agreement": float(np.mean(x == y)) if keys else float("nan")}
    for name, c in (("helix", HELIX), ("sheet", SHEET)):
        tp = int(np.sum((x == c) & (y == c)))
        den = int(np.sum(x == c) + np.sum(y == c))
        res[f"{name}_f1"] = 2 * tp / den if den else float("nan")
    return res
