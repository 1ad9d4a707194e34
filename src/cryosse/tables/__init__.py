"""The paper's tables rebuilt from stored per-case results (SPEC 10, issue 6 and 9).

Table 1 (per loss: best gamma, weighted voxel F1 helix / sheet / mean), Table 2
(per test case: id, resolution, CA counts H/S/O, voxel F1 per loss, residue F1),
Table S1 (every split and mean +- sd per loss), plus what the paper lacks:
bootstrap intervals and paired tests against CE, F1 by resolution band and quality
bin, and, for a run on the paper's own test cases, Table 2 side by side with the
paper's figures and a fidelity table of centre-box CA counts.

A run with the nucleic-acid class (``classes: 4``) adds a nucleic-acid F1 column to
Tables 1 and 2 (the mean stays the paper's (helix + sheet) / 2); 3-class tables are
unchanged.

Every table is written as TSV (numbers), Markdown, LaTeX and HTML (for the
Snakemake report). Figures are in percent with one decimal, as in the paper.
Nothing here trains or predicts: it reads ``results/eval/{split}/{loss}/per_case.tsv``.

Modules: :mod:`~cryosse.tables.core` (the tables), :mod:`~cryosse.tables.paper` (the paper's
test cases), :mod:`~cryosse.tables.build` (all at once); the writers are in :mod:`cryosse.render`.
"""

from cryosse.tables.build import build_tables

__all__ = ["build_tables"]
