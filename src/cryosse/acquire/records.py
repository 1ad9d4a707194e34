"""The entry table and per-entry records of the acquire stage.

Entry table (``config/entries.tsv``), tab-separated, ``#`` lines are comments:

* ``emdb_id`` (required): ``EMD-<digits>``.
* ``pdb_id`` (optional): the fitted model to use, 4 characters; empty = the
  first fitted model listed in the EMDB header.
* ``chain`` (optional): author chain ids of interest, comma-separated
  (``AE,AM``); empty = every chain. An ``emdb_id`` may also be repeated on
  several rows, one chain (list) each: the rows are merged into one entry
  whose chains are the union, in order. Repeated rows must name the same
  ``pdb_id`` (or leave it empty).

An id that is not valid does not stop the run: the entry is kept in the table
with its ``problem`` and the acquire stage records it as rejected. Only an id
that cannot even name a folder (empty, with a path separator) is an error.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

from cryosse.acquire.emdb import normalise_pdb_id

EMDB_RE = re.compile(r"^EMD-(\d{4,})$")
PDB_RE = re.compile(r"^([0-9][A-Z0-9]{3}|PDB_[0-9A-Z]{8})$")  # classic, or a wwPDB extended id
CHAIN_RE = re.compile(r"^[A-Za-z0-9]{1,4}$")
_SAFE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def emdb_number(emdb_id: str) -> str:
    """The digits of an EMDB id as written (``EMD-0090`` -> ``0090``: file names keep them)."""
    m = EMDB_RE.match(emdb_id)
    if not m:
        raise ValueError(f"{emdb_id!r} is not an EMDB id of the form EMD-1234")
    return m.group(1)


def check_ids(emdb_id: str, pdb_id: str, chains: list[str]) -> str:
    """The reason an entry's ids are not valid, or '' when they are."""
    if not EMDB_RE.match(emdb_id):
        return f"bad id: {emdb_id!r} is not an EMDB id of the form EMD-1234"
    if pdb_id and not PDB_RE.match(pdb_id):
        return f"bad id: PDB id {pdb_id!r} is not a PDB id such as 5MDX (or an extended pdb_00005mdx)"
    bad = [c for c in chains if not CHAIN_RE.match(c)]
    if bad:
        return f"bad id: chain id(s) {bad} are not 1-4 letters or digits"
    return ""


def _split_chains(text: str) -> list[str]:
    return [c.strip() for c in (text or "").replace(";", ",").split(",") if c.strip()]


def read_entry_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and merge the entry table: one dict per entry, in first-seen order.

    Each dict has ``emdb_id`` (normalised upper case), ``pdb_id`` (upper case or
    ''), ``chains`` (list), ``chain`` (the same, comma-joined) and ``problem``
    ('' or why the entry will be rejected).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: entry table not found")
    with open(path, newline="") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines, delimiter="\t")
    if reader.fieldnames is None or "emdb_id" not in [f.strip() for f in reader.fieldnames]:
        raise ValueError(f"{path}: the entry table needs a tab-separated header with an emdb_id column")
    entries: dict[str, dict[str, Any]] = {}
    for lineno, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        emdb_id = row.get("emdb_id", "").upper()
        if not emdb_id:
            continue
        if not _SAFE_RE.match(emdb_id):
            raise ValueError(f"{path}: line {lineno}: entry id {emdb_id!r} cannot name a folder")
        pdb_id = normalise_pdb_id(row.get("pdb_id", "")) if row.get("pdb_id", "").strip() else ""
        chains = _split_chains(row.get("chain", ""))
        if emdb_id in entries:
            entry = entries[emdb_id]
            if pdb_id and entry["pdb_id"] and pdb_id != entry["pdb_id"]:
                raise ValueError(
                    f"{path}: line {lineno}: {emdb_id} is listed with PDB {entry['pdb_id']}"
                    f" and {pdb_id}; one entry uses one fitted model"
                )
            entry["pdb_id"] = entry["pdb_id"] or pdb_id
            if not chains or not entry["chains"]:
                entry["chains"] = []  # a row with no chain means every chain
            else:
                entry["chains"] += [c for c in chains if c not in entry["chains"]]
        else:
            entries[emdb_id] = {"emdb_id": emdb_id, "pdb_id": pdb_id, "chains": chains}
    out = []
    for entry in entries.values():
        entry["chain"] = ",".join(entry["chains"])
        entry["problem"] = check_ids(entry["emdb_id"], entry["pdb_id"], entry["chains"])
        out.append(entry)
    return out


RECORD_FIELDS = (
    "status",
    "reason",
    "emdb_id",
    "pdb_id",
    "chains",
    "resolution",
    "contour_level",
    "contour_source",
    "voxel_size",
    "voxel_size_xyz",
    "fitted_pdbs",
    "release_date",
    "method",
    "map",
    "header",
    "model",
    "files",
    "source",
)


def empty_record(entry: dict[str, Any], source: str) -> dict[str, Any]:
    """A record with every contract field present (None where unknown)."""
    rec: dict[str, Any] = {k: None for k in RECORD_FIELDS}
    rec.update(
        status="rejected",
        reason="",
        emdb_id=entry["emdb_id"],
        pdb_id=entry.get("pdb_id") or None,
        chains=list(entry.get("chains") or []),
        contour_source="none",
        fitted_pdbs=[],
        files=[],
        source=source,
    )
    return rec
