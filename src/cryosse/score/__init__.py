"""Scoring another tool's prediction (issue 18): ``cryosse score`` and the workflow's external rows.

A prediction is what another tool writes: a helix map and a sheet map (0/1 masks or
probability maps), or one label map, on any grid, voxel size and origin convention. It is
put on the reference grid with the geometry module (:func:`cryosse.geometry.resample`:
nearest neighbour for masks and label maps, trilinear for probabilities before the
threshold) and scored exactly as the evaluation stage scores our networks
(:func:`cryosse.evaluate.score_case`: voxel F1 in the centre box, the box's voxels beyond
its map left out, residue F1 by the vote of the voxels within 3 A of each CA).

The reference (the truth) is:

* our labels: a pair folder (``--pair``), or a pair built here from a map, a model and a
  chain exactly as the dataset stage builds one (kept whatever its quality bin);
* or a label map given with ``--truth``: an MRC label map (0 background, 1 helix, 2 sheet),
  or the DeepSSETracer authors' voxel-label text file (``i,j,k,density,label``; i, j, k the
  x, y, z indices into the grid of the map given with ``--map``). Residue F1 needs each
  residue's true class, which a label map does not give: it is scored against our labels
  only.

Rules where tools differ (each one is recorded in the JSON output):

* A map with at most two values, the lower 0, is a mask: non-zero is on. Any other map is a
  probability map: on at or above the threshold (default 0.5).
* Where helix and sheet are both on: with two probability maps the higher probability wins
  (a tie goes to helix); with a mask involved helix wins.
* Voxels beyond a prediction's grid (a crop) count as background; ``coverage`` is the share
  of the scored voxels that lie within every prediction file's grid (a voxel whose centre
  lies within the file's voxels). A prediction that covers none of them is refused.
* Voxels beyond a truth label map's grid are unknown: not scored.
* The authors' text file lists only voxels with density (map value > 0). By default the
  others count as background (label 0), as the authors count them in their published
  figures; ``listed_only`` scores the listed voxels alone.

Modules: :mod:`~cryosse.score.reference`, :mod:`~cryosse.score.prediction`,
:mod:`~cryosse.score.external` (scoring, and the workflow's rows) and :mod:`~cryosse.score.cli`.
"""

from cryosse.score.external import SCORED_CLASS_COUNT, find_prediction, score_external_split, score_prediction
from cryosse.score.prediction import Prediction, read_prediction
from cryosse.score.reference import Reference, load_pair_reference, pair_reference, truth_reference

__all__ = [
    "SCORED_CLASS_COUNT",
    "Prediction",
    "Reference",
    "find_prediction",
    "load_pair_reference",
    "pair_reference",
    "read_prediction",
    "score_external_split",
    "score_prediction",
    "truth_reference",
]
