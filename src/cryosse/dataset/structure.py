"""Reading an atomic model into plain arrays: residues, CA atoms, backbones, chains.

gemmi reads PDB and mmCIF (plain or gzip). Everything downstream (DSSP, chain
selection, boxes, labels) works on the :class:`Model` arrays built here, so the
rest of the stage never touches gemmi objects.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BACKBONE = ("N", "CA", "C", "O")
#: the atom that stands for a nucleotide (the fourth class): its phosphate P, or its
#: C4' where it has none (usually the 5' end), so that every nucleotide has one atom
NUCLEOTIDE_ATOMS = ("P", "C4'")


class ModelError(ValueError):
    """An atomic model that cannot be used; the message names the file and the cause."""


@dataclass
class Model:
    """Protein residues of the first model, in file order.

    ``keys[i]`` = (chain, seqnum, icode); ``ca[i]`` its CA (x, y, z) A;
    ``backbone[i]`` (4, 3) N, CA, C, O or NaN where an atom is missing;
    ``chain_atoms[name]`` all non-hydrogen atoms of the chain's protein residues;
    ``na[j]`` the (x, y, z) of nucleotide j's atom (:data:`NUCLEOTIDE_ATOMS`), file order.
    """

    path: str
    keys: list[tuple[str, int, str]]
    resnames: list[str]
    ca: np.ndarray  # (R, 3) float64
    backbone: np.ndarray  # (R, 4, 3) float64, NaN where missing
    chain_of: np.ndarray  # (R,) object: chain name
    chain_order: list[str]
    chain_atoms: dict[str, np.ndarray] = field(default_factory=dict)
    n_nucleic: int = 0
    n_atoms: int = 0
    nucleic_chains: dict[str, int] = field(default_factory=dict)  # DNA/RNA-only chain -> nucleotides
    na: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (M, 3) float64

    def chain_index(self, chain: str) -> np.ndarray:
        return np.flatnonzero(self.chain_of == chain)

    def sequence(self, chain: str) -> str:
        import gemmi

        out = []
        for i in self.chain_index(chain):
            info = gemmi.find_tabulated_residue(self.resnames[i])
            code = info.one_letter_code.upper() if info is not None else "X"
            out.append(code if code.isalpha() else "X")
        return "".join(out)

    @property
    def has_full_backbone(self) -> np.ndarray:
        return np.all(np.isfinite(self.backbone), axis=(1, 2))


def read_structure(path: str | os.PathLike):
    """A gemmi Structure from a PDB or mmCIF file (gzip too).

    Old PDB files that number their lines in columns 79-80 (where the format has the
    atom's charge) are read with those columns blanked: gemmi refuses them as they are.
    Raises :class:`ModelError` naming the file and the cause.
    """
    import gzip

    import gemmi

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a model file")
    if not path.name.lower().removesuffix(".gz").endswith((".cif", ".mmcif")):
        _check_pdb_coordinates(path)
    try:
        return gemmi.read_structure(str(path), merge_chain_parts=True)
    except (RuntimeError, ValueError, OSError) as exc:
        if "charge" not in str(exc):
            raise ModelError(f"{path}: cannot read the model ({exc})") from exc
        first = exc
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", errors="replace") as fh:
            lines = [
                ln[:78].ljust(78) + "  \n"
                if ln.startswith(("ATOM  ", "HETATM")) and len(ln.rstrip("\n")) > 78
                else ln
                for ln in fh
            ]
        st = gemmi.read_pdb_string("".join(lines))
        st.merge_chain_parts()
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"{path}: cannot read the model ({first})") from exc
    st.name = st.name or path.name.split(".")[0]
    return st


def _check_pdb_coordinates(path: Path) -> None:
    """Refuse a PDB file whose ATOM/HETATM coordinates are not numbers (gemmi would read them as 0)."""
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", errors="replace") as fh:
            for n, line in enumerate(fh, start=1):
                if line.startswith(("ATOM  ", "HETATM")):
                    field = line[30:54]
                    try:
                        xyz = [float(field[i : i + 8]) for i in (0, 8, 16)]
                    except ValueError:
                        raise ModelError(
                            f"{path}: line {n}: the coordinates {field.strip()!r} are not numbers"
                        ) from None
                    if not all(map(math.isfinite, xyz)):
                        raise ModelError(
                            f"{path}: line {n}: the coordinates {field.strip()!r} are not finite"
                        )
    except (OSError, EOFError) as exc:
        raise ModelError(f"{path}: cannot read the model ({exc})") from exc


def read_model(path: str | os.PathLike) -> Model:
    """Read the first model of a PDB/mmCIF file; protein residues with a CA atom only.

    Hydrogens, waters and alternative conformations (first kept) are dropped.
    Raises :class:`ModelError` when the file cannot be read or holds no atoms.
    """
    import gemmi

    path = Path(path)
    st = read_structure(path)
    if len(st) == 0:
        raise ModelError(f"{path}: the file holds no model")
    st.setup_entities()
    st.remove_hydrogens()
    st.remove_alternative_conformations()
    model = st[0]
    keys: list[tuple[str, int, str]] = []
    names: list[str] = []
    ca: list[list[float]] = []
    bb: list[np.ndarray] = []
    chain_of: list[str] = []
    order: list[str] = []
    atoms: dict[str, list[list[float]]] = {}
    n_nucleic = 0
    n_atoms = 0
    na: list[list[float]] = []
    na_count: dict[str, int] = {}
    for ch in model:
        for res in ch:
            n_atoms += len(res)
            info = gemmi.find_tabulated_residue(res.name)
            if info is not None and info.is_nucleic_acid():
                n_nucleic += 1
                na_count[ch.name] = na_count.get(ch.name, 0) + 1
                for name in NUCLEOTIDE_ATOMS:
                    rep = res.find_atom(name, "*")
                    if rep is not None:
                        na.append(rep.pos.tolist())
                        break
                continue
            if info is None or not info.is_amino_acid():
                continue
            ca_atom = res.find_atom("CA", "*")
            if ca_atom is None or ca_atom.element.name != "C":
                continue
            if ch.name not in atoms:
                atoms[ch.name] = []
                order.append(ch.name)
            keys.append((ch.name, int(res.seqid.num), res.seqid.icode.strip()))
            names.append(res.name)
            ca.append(ca_atom.pos.tolist())
            b = np.full((4, 3), np.nan)
            for k, name in enumerate(BACKBONE):
                a = res.find_atom(name, "*")
                if a is not None:
                    b[k] = a.pos.tolist()
            bb.append(b)
            chain_of.append(ch.name)
            atoms[ch.name].extend(a.pos.tolist() for a in res)
    if n_atoms == 0:
        raise ModelError(f"{path}: the model has no atoms")
    for name, xyz in atoms.items():
        if xyz and not np.all(np.isfinite(np.asarray(xyz, float))):
            raise ModelError(f"{path}: chain {name} has atoms with non-finite coordinates (NaN or infinite)")
    return Model(
        path=str(path),
        keys=keys,
        resnames=names,
        ca=np.asarray(ca, float).reshape(-1, 3),
        backbone=np.asarray(bb, float).reshape(-1, 4, 3),
        chain_of=np.asarray(chain_of, dtype=object),
        chain_order=order,
        chain_atoms={k: np.asarray(v, float).reshape(-1, 3) for k, v in atoms.items()},
        n_nucleic=n_nucleic,
        n_atoms=n_atoms,
        nucleic_chains={c: n for c, n in na_count.items() if c not in atoms},
        na=np.asarray(na, float).reshape(-1, 3),
    )
