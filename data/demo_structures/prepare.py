"""Rebuild the bundled demo structures from their public sources (see README.md).

Run once by hand; the files it writes are committed. Each source file is read
with gemmi, the first model and the listed chains are kept, waters and
hydrogens are removed (ligands such as haem stay: they are part of the
density), and the result is written as gzipped mmCIF named by its PDB id with
a ``_pdbx_poly_seq_scheme`` loop (mkdssp reads no residues without it).

Usage: python data/demo_structures/prepare.py SOURCES.tsv OUT_DIR
SOURCES.tsv columns: pdb_id, chains (comma-separated), path (PDB or mmCIF, gz ok).
"""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

import gemmi


def prepare(src: str, chains: list[str], pdb_id: str, out: Path) -> None:
    st = gemmi.read_structure(src)
    st.remove_hydrogens()
    st.remove_waters()
    while len(st) > 1:
        del st[len(st) - 1]
    for name in [ch.name for ch in st[0]]:
        if name not in chains:
            st[0].remove_chain(name)
    st.remove_empty_chains()
    st.name = pdb_id
    st.setup_entities()
    st.assign_label_seq_id(True)
    doc = st.make_mmcif_document()
    block = doc.sole_block()
    block.name = pdb_id
    loop = block.init_loop(
        "_pdbx_poly_seq_scheme.",
        ["asym_id", "entity_id", "seq_id", "mon_id", "ndb_seq_num", "pdb_seq_num",
         "auth_seq_num", "pdb_mon_id", "auth_mon_id", "pdb_strand_id", "pdb_ins_code", "hetero"],
    )
    for ch in st[0]:
        poly = ch.get_polymer()
        ent = st.get_entity_of(poly)
        if ent is None:
            continue
        for r in poly:
            loop.add_row([poly.subchain_id(), ent.name, str(r.label_seq), r.name, str(r.label_seq),
                          str(r.seqid.num), str(r.seqid.num), r.name, r.name, ch.name,
                          r.seqid.icode.strip() or ".", "n"])
    text = doc.as_string()
    with gzip.open(out / f"{pdb_id}.cif.gz", "wt", compresslevel=9) as fh:
        fh.write(text)


def main(argv: list[str]) -> int:
    table, out = argv[1], Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with open(table, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            prepare(row["path"], row["chains"].split(","), row["pdb_id"].upper(), out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
