"""The five losses' names, in the paper's order (SPEC 8), importable without torch.

:data:`cryosse.losses.LOSSES` registers one loss class per name, in this order (tested); the
tables and figures order their rows by it.
"""

LOSS_NAMES = ("CE", "FL", "DL", "CE_DL", "FL_DL")
