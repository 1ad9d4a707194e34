"""Chain selection within one entry (SPEC 2).

Protein chains with CA atoms and at least ``min_residues`` of them; chains of
one entry whose sequences are at least ``dedup_identity`` identical (global
alignment, identical aligned positions / shorter length) are grouped by single
linkage and the first in file order is kept; a kept chain needs at least one
helix residue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryosse.dataset.dssp import HELIX, OTHER, SHEET


@dataclass
class ChainChoice:
    """A chain's fate. ``group`` names the first chain of its 70%-identity group; a chain that
    passes every filter but is not its group's first is ``standby``: it stands in for the
    group when the chains before it do not make a pair (a bad quality bin, say)."""

    chain: str
    kept: bool
    reason: str = ""
    group: str = ""
    standby: bool = False


def sequence_identity(a: str, b: str) -> float:
    """Global alignment (BLOSUM62, gemmi); identical aligned positions / shorter length."""
    import gemmi

    if not a or not b:
        return 0.0
    qa = gemmi.expand_one_letter_sequence(a, gemmi.ResidueKind.AA)
    qb = gemmi.expand_one_letter_sequence(b, gemmi.ResidueKind.AA)
    res = gemmi.align_string_sequences(qa, qb, [], gemmi.AlignmentScoring("b"))
    return res.match_count / min(len(a), len(b))


def dedup_groups(sequences: list[str], identity: float) -> list[int]:
    """Single-linkage groups at >= ``identity``; returns for each sequence the index
    of its group's first member (file order)."""
    n = len(sequences)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cache: dict[tuple[str, str], float] = {}
    for i in range(n):
        for j in range(i + 1, n):
            if find(i) == find(j) and sequences[i] != sequences[j]:
                continue
            key = (sequences[i], sequences[j])
            if key not in cache:
                cache[key] = 1.0 if sequences[i] == sequences[j] else sequence_identity(*key)
            if cache[key] >= identity:
                ri, rj = find(i), find(j)
                parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(n)]


def select_chains(
    chains: list[str],
    sequences: dict[str, str],
    classes: dict[str, np.ndarray],
    requested: list[str] | None,
    min_residues: int,
    dedup_identity: float,
    require_helix: bool = True,
) -> list[ChainChoice]:
    """Decide, in file order, which chains of one entry become pairs.

    ``chains``: protein chains with CA atoms in file order; ``sequences`` their
    one-letter sequences (CA residues); ``classes`` their per-residue DSSP
    classes; ``requested``: the entry's chain list (empty or None = all).
    """
    out: list[ChainChoice] = []
    pool = list(chains)
    if requested:
        missing = [c for c in requested if c not in chains]
        for c in missing:
            out.append(ChainChoice(c, False, "chain not in the model or has no protein CA atoms"))
        pool = [c for c in chains if c in requested]
    sized = []
    for c in pool:
        n = len(sequences[c])
        if n < min_residues:
            out.append(ChainChoice(c, False, f"{n} residues with CA (< {min_residues})"))
        else:
            sized.append(c)
    groups = dedup_groups([sequences[c] for c in sized], dedup_identity)
    for k, c in enumerate(sized):
        rep = sized[groups[k]]
        if require_helix and not np.any(classes[c] == HELIX):
            n_s = int(np.sum(classes[c] == SHEET))
            n_o = int(np.sum(classes[c] == OTHER))
            out.append(ChainChoice(c, False, f"no helix residue (sheet {n_s}, other {n_o})", rep))
        elif rep != c:
            ident = sequence_identity(sequences[rep], sequences[c])
            out.append(
                ChainChoice(c, False, f"duplicate of chain {rep} (identity {ident:.2f})", rep, standby=True)
            )
        else:
            out.append(ChainChoice(c, True, "", rep))
    order = {c: i for i, c in enumerate(chains)}
    out.sort(key=lambda ch: order.get(ch.chain, len(order)))
    return out
