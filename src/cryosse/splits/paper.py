"""The paper's own test cases: which are in the dataset, and why each missing one is missing."""

from __future__ import annotations

import pandas as pd

from cryosse.ids import pair_id
from cryosse.splits.common import PAPER_COLUMNS


def _rejections(table: pd.DataFrame | None) -> list[dict[str, str]]:
    """Rows of a rejection table as dicts with id, emdb_id, chain, stage, reason (any may be '')."""
    if table is None or table.empty:
        return []
    rows = []
    cols = {c.lower(): c for c in table.columns}
    for rec in table.to_dict("records"):
        g = {k: str(rec[c]).strip() for k, c in cols.items()}
        ident = g.get("pair_id") or g.get("id") or ""
        emdb = g.get("emdb_id") or g.get("entry") or (ident if ident.upper().startswith("EMD-") else "")
        rows.append(
            {
                "id": ident,
                "emdb_id": emdb,
                "chain": g.get("chain", ""),
                "stage": g.get("stage", ""),
                "reason": g.get("reason", "") or "no reason given",
            }
        )
    return rows


def paper_case_status(
    cases: pd.DataFrame,
    dataset: pd.DataFrame,
    entries: pd.DataFrame | None = None,
    dataset_rejected: pd.DataFrame | None = None,
    acquire_rejected: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each paper case: used (its pair_id) or unavailable with the reason, in the cases' order.

    Matching is on EMDB id + PDB id (upper case) + chain (case-sensitive).
    """
    dkey = {
        (e, p.upper(), c): pid
        for pid, e, p, c in zip(
            dataset["pair_id"], dataset["emdb_id"], dataset["pdb_id"], dataset["chain"], strict=True
        )
    }
    entry_rows: dict[str, dict[str, str]] | None = None
    if entries is not None and "emdb_id" in entries.columns:
        entry_rows = {}
        for rec in entries.to_dict("records"):
            entry_rows.setdefault(str(rec.get("emdb_id", "")).strip(), rec)
    drej, arej = _rejections(dataset_rejected), _rejections(acquire_rejected)
    out = []
    for rec in cases.to_dict("records"):
        e, p, c = rec["emdb_id"].strip(), rec["pdb_id"].strip().upper(), rec["chain"].strip()
        cid = pair_id(e, p, c)  # the paper's case id is our pair id
        row = {
            "case_id": cid,
            "emdb_id": e,
            "pdb_id": p,
            "chain": c,
            "resolution": rec.get("resolution", ""),
            "status": "unavailable",
            "pair_id": "",
            "role": "",
            "reason": "",
        }
        if (e, p, c) in dkey:
            row.update(status="used", pair_id=dkey[(e, p, c)])
            out.append(row)
            continue
        row["reason"] = _why_missing(e, p, c, cid, dataset, entry_rows, drej, arej)
        out.append(row)
    return pd.DataFrame(out, columns=PAPER_COLUMNS)


def _why_missing(e, p, c, cid, dataset, entry_rows, drej, arej) -> str:
    if entry_rows is not None and e not in entry_rows:
        return "entry not in the entry table"
    erow = (entry_rows or {}).get(e, {})
    listed_pdb = str(erow.get("pdb_id", "") or "").strip().upper()
    if listed_pdb and listed_pdb != p:
        return f"entry table pairs {e} with PDB {listed_pdb}, not {p}"
    listed_chains = [
        x.strip() for x in str(erow.get("chain", "") or "").replace(";", ",").split(",") if x.strip()
    ]
    if listed_chains and c not in listed_chains:
        return f"chain {c} not selected in the entry table (chains: {', '.join(listed_chains)})"
    for r in arej:
        if r["emdb_id"] == e or r["id"] == e:
            return f"entry rejected at acquire: {r['reason']}"
    for r in drej:
        if r["id"] == cid or (r["emdb_id"] == e and r["chain"] == c and c):
            return f"chain filtered out: {r['reason']}"
    for r in drej:
        if (r["id"] == e or r["emdb_id"] == e) and not r["chain"] and r["id"] in ("", e):
            return f"entry rejected at {r['stage'] or 'dataset'}: {r['reason']}"
    same_entry = dataset[dataset["emdb_id"] == e]
    if len(same_entry):
        other_pdb = sorted(set(same_entry["pdb_id"].str.upper()) - {p})
        if other_pdb and not (same_entry["pdb_id"].str.upper() == p).any():
            return f"the dataset pairs {e} with PDB {', '.join(other_pdb)}, not {p}"
        near = [x for x in same_entry["chain"] if x.lower() == c.lower()]
        if near:
            return f"chain {c} not found; the dataset has chain {near[0]} (renamed?)"
        return f"chain {c} not among the entry's kept chains and no rejection recorded (not in the model?)"
    return "entry in the entry table but no pair and no rejection recorded for it"
