"""Label classes: the paper's three and the optional fourth for nucleic acids (issue 10).

0 background, 1 helix, 2 sheet (SPEC 5, 7); with ``classes: 4``, 3 nucleic acid:
voxels within the label radius of a nucleotide's P atom (C4' where it has no P)
take class 3 when that atom is the nearest of all CA and nucleotide atoms.
The config key ``classes`` (3, the paper, or 4) sets it for the whole workflow.
"""

from __future__ import annotations

from typing import Any

PAPER_CLASSES = 3
CLASS_COUNTS = (3, 4)
NUCLEIC = 3
#: class names by class number ("other": background, and residues neither helix nor sheet)
NAMES = {0: "other", 1: "helix", 2: "sheet", 3: "nucleic"}
#: the classes every table and figure scores (the paper's), name -> class number
SCORED = {NAMES[1]: 1, NAMES[2]: 2}
#: one colour per class in every figure: the DeepSSETracer papers' (helix yellow, sheet cyan), darkened
#: to read on white; the ChimeraX script uses the named colours beside them
COLOURS = {"helix": "#e8b000", "sheet": "#00a0c0", "nucleic": "#f07800"}
CHIMERAX_COLOURS = {"helix": "yellow", "sheet": "cyan", "nucleic": "orange"}
#: the dataset table's count of nucleotides in the centre box: present only in 4-class datasets
NA_COLUMN = "n_na"


def check_classes(n_classes: Any, what: str = "classes") -> int:
    """``n_classes`` as an int; a ValueError naming ``what`` unless it is 3 or 4."""
    if isinstance(n_classes, bool) or n_classes not in CLASS_COUNTS:
        raise ValueError(f"{what}: {n_classes!r} classes; expected 3 (the paper) or 4 (with nucleic acids)")
    return int(n_classes)


def class_names(n_classes: int) -> tuple[str, ...]:
    """The non-background class names of an ``n_classes`` network: helix, sheet[, nucleic]."""
    return tuple(NAMES[k] for k in range(1, check_classes(n_classes)))


def with_classes(section: dict[str, Any], n_classes: int) -> dict[str, Any]:
    """A config section for a rule's params, with ``classes`` added only when it is not 3.

    Snakemake reruns a job whose params changed: leaving the paper's 3 out keeps the
    params, and so the jobs, of runs made before the fourth class existed.
    """
    n = check_classes(n_classes)
    return dict(section) if n == PAPER_CLASSES else {**section, "classes": n}


def dataset_classes(columns: Any) -> int:
    """The class count a dataset table was built with: 4 when it has ``n_na``, else 3."""
    return 4 if NA_COLUMN in list(columns) else PAPER_CLASSES


def require_dataset_classes(columns: Any, n_classes: int, path: Any) -> None:
    """Refuse a dataset table built with another class count than ``n_classes``."""
    have = dataset_classes(columns)
    if have != n_classes:
        raise ValueError(
            f"{path}: the dataset was built with {have} classes, this run has {n_classes}; "
            f"rebuild the dataset stage with `classes: {n_classes}` (or run with `classes: {have}`)"
        )
