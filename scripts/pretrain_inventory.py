"""Rule pretrain_inventory: chains, exclusions, families and roles (cryosse.pretrain.inventory)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.pretrain.inventory import InventoryParams, run_inventory  # noqa: E402
from cryosse.pretrain.sources import write_provenance  # noqa: E402

sm = snakemake
keys = dict(sm.params.selection)
write_provenance([Path(s) / "manifest.tsv" for s in sm.input.sources], sm.output.provenance)
params = InventoryParams(**{k: keys.pop(k) for k in list(keys) if k in InventoryParams.__dataclass_fields__})
run_inventory(
    sm.output.provenance,
    sm.params.sources_dir,
    sm.input.exclude or None,
    sm.params.exclude_structures,
    params,
    dict(sm.output.items()),
    keys.get("holdout_fraction", 0.1),
    keys.get("val_fraction", 0.08),
    sm.params.seed,
    sm.threads,
    keys.get("max_per_family", 0),
)
