"""The ChimeraX script ``cryosse predict`` writes beside its outputs."""

from __future__ import annotations

import os
from pathlib import Path

from cryosse.classes import CHIMERAX_COLOURS

CHIMERAX_TEMPLATE = """\
# cryosse predict: helix (yellow) and sheet (cyan) probabilities over the input map, in
# ChimeraX; the colours are those of the DeepSSETracer papers' figures. Open it in any session,
# busy or new: `open /path/to/chimerax.py` in ChimeraX's command line, or `chimerax chimerax.py`.
# It finds the outputs beside itself (the folder may be moved) and the input map where it was,
# relative to this folder or by its absolute path. The surfaces are the probability maps at
# 0.5: move the threshold in the Volume Viewer to see more or less (helix.mrc and sheet.mrc
# are the masks of the most probable class). Models are named after this folder, and the
# view is reset only in an empty session.
import os

from chimerax.core.commands import run

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = os.path.basename(HERE)
MAP_RELATIVE = {map_rel!r}
MAP_ABSOLUTE = {map_abs!r}
MAP_LEVEL = {level!r}  # {level_note}
PROBABILITIES = {probs!r}
WAS_EMPTY = not session.models.list()  # noqa: F821 (ChimeraX's session)


def _open(path, style, name):
    models = run(session, "open " + _quote(path) + " format mrc")  # noqa: F821
    spec = " ".join(m.atomspec for m in models)
    run(session, "volume " + spec + " " + style)  # noqa: F821
    run(session, "rename " + spec + " " + _quote(NAME + " " + name))  # noqa: F821
    return models


def _quote(path):
    return '"' + path.replace('"', '\\\\"') + '"'


for candidate in (os.path.join(HERE, MAP_RELATIVE) if MAP_RELATIVE else None, MAP_ABSOLUTE):
    if candidate and os.path.exists(candidate):
        _open(candidate, "style mesh level %g" % MAP_LEVEL, "map")
        break
else:
    session.logger.warning("cryosse: input map not found at %s; showing the predictions only" % MAP_ABSOLUTE)  # noqa: F821
for file, color, name in PROBABILITIES:
    _open(os.path.join(HERE, file), "level 0.5 color " + color + " style surface", name + " probability")
if WAS_EMPTY:
    run(session, "view")  # noqa: F821
"""


def chimerax_script(
    map_path: Path, out_dir: Path, level: float, level_note: str, nucleic: bool = False
) -> str:
    """A Python script for ChimeraX that opens the map (mesh at ``level``) and the helix (yellow),
    sheet (cyan) and, for a 4-class model, nucleic-acid (orange) probabilities as surfaces at
    0.5, each model named after the output folder. Model numbers are read back from what it
    opens (it works in a busy session, whose view it leaves alone), and every path is found
    relative to the script's folder first (it works after the folder is moved)."""
    map_abs = str(map_path.resolve())
    try:
        map_rel = os.path.relpath(map_abs, out_dir.resolve())
    except ValueError:  # another drive (Windows)
        map_rel = ""
    shown = [("helix", "helix"), ("sheet", "sheet")] + ([("nucleic", "nucleic acid")] if nucleic else [])
    probs = [(f"{cls}_prob.mrc", CHIMERAX_COLOURS[cls], name) for cls, name in shown]
    return CHIMERAX_TEMPLATE.format(
        map_rel=map_rel, map_abs=map_abs, level=round(float(level), 6), level_note=level_note, probs=probs
    )
