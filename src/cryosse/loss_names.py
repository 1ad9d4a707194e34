"""The five losses' names, in the paper's order (SPEC 8), importable without torch.

:data:`cryosse.losses.LOSSES` registers one loss class per name, in this order (tested); the
tables and figures order their rows by it.
"""

LOSS_NAMES = ("CE", "FL", "DL", "CE_DL", "FL_DL")
#: the losses with a focal gamma, and those with two weighted terms (torch-free copies of
#: :func:`cryosse.losses.takes_gamma` / ``takes_weights``; tests/test_losses.py holds them equal)
GAMMA_LOSSES = ("FL", "FL_DL")
WEIGHTED_LOSSES = ("CE_DL", "FL_DL")
#: one colour per loss in every figure (and the tables' names, the paper's: DL is the Dice loss)
LOSS_COLOURS = dict(zip(LOSS_NAMES, ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"), strict=True))
#: external tools, in the order they are met: greys and black, never a loss's colour
TOOL_COLOURS = ("#222222", "#7f7f7f", "#b0b0b0", "#555555")


def series_colours(names) -> dict[str, str]:
    """name -> colour for the series of one figure: a loss's own colour, and the external
    tools (the other names, in their order) greys and black."""
    tools = [n for n in dict.fromkeys(names) if n not in LOSS_COLOURS]
    return {**{t: TOOL_COLOURS[i % len(TOOL_COLOURS)] for i, t in enumerate(tools)}, **LOSS_COLOURS}
