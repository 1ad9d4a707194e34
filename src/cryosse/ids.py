"""Pair ids: one function for the whole package."""

from __future__ import annotations


def pair_id(emdb_id: str, pdb_id: str, chain: str) -> str:
    """``{EMDB number}_{PDB id upper case}_{author chain as is}``, e.g. EMD-3491, 5mdx, L ->
    ``3491_5MDX_L``; EMD-0090 -> ``0090_...``. The paper's Table 2 case ids have the same form,
    so a paper case and its pair share the id."""
    num = str(emdb_id).strip().upper().removeprefix("EMD-").removeprefix("EMD_")
    return f"{num}_{str(pdb_id).strip().upper()}_{str(chain).strip()}"
