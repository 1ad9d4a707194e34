"""The ChimeraX script ``cryosse predict`` writes beside its outputs."""

from __future__ import annotations

import os
from pathlib import Path

CHIMERAX_TEMPLATE = """\
# cryosse predict: helix (yellow) and sheet (cyan) regions over the input map, in ChimeraX.
# Open it in any session, busy or new: `open /path/to/chimerax.py` in ChimeraX's command
# line, or `chimerax chimerax.py`. It finds the outputs beside itself (the folder may be
# moved) and the input map where it was, relative to this folder or by its absolute path.
import os

from chimerax.core.commands import run

HERE = os.path.dirname(os.path.abspath(__file__))
MAP_RELATIVE = {map_rel!r}
MAP_ABSOLUTE = {map_abs!r}
MAP_LEVEL = {level!r}  # {level_note}
MASKS = {masks!r}


def _open(path, style):
    models = run(session, "open " + _quote(path) + " format mrc")  # noqa: F821 (ChimeraX's session)
    spec = " ".join(m.atomspec for m in models)
    run(session, "volume " + spec + " " + style)  # noqa: F821
    return models


def _quote(path):
    return '"' + path.replace('"', '\\\\"') + '"'


for candidate in (os.path.join(HERE, MAP_RELATIVE) if MAP_RELATIVE else None, MAP_ABSOLUTE):
    if candidate and os.path.exists(candidate):
        _open(candidate, "style mesh level %g" % MAP_LEVEL)
        break
else:
    session.logger.warning("cryosse: input map not found at %s; showing the masks only" % MAP_ABSOLUTE)  # noqa: F821
for name, color in MASKS:
    _open(os.path.join(HERE, name), "level 0.5 color " + color + " style surface")
run(session, "view")  # noqa: F821
"""


def chimerax_script(
    map_path: Path, out_dir: Path, level: float, level_note: str, nucleic: bool = False
) -> str:
    """A Python script for ChimeraX that opens the map (mesh at ``level``) and the helix (yellow),
    sheet (cyan) and, for a 4-class model, nucleic-acid (orange) surfaces. Model numbers are
    read back from what it opens (it works in a busy session), and every path is found
    relative to the script's folder first (it works after the folder is moved)."""
    map_abs = str(map_path.resolve())
    try:
        map_rel = os.path.relpath(map_abs, out_dir.resolve())
    except ValueError:  # another drive (Windows)
        map_rel = ""
    masks = [("helix.mrc", "yellow"), ("sheet.mrc", "cyan")] + (
        [("nucleic.mrc", "orange")] if nucleic else []
    )
    return CHIMERAX_TEMPLATE.format(map_rel=map_rel, map_abs=map_abs, level=round(float(level), 6),
                                    level_note=level_note, masks=masks)  # fmt: skip
