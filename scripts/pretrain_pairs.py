"""Rule pretrain_pairs: simulated maps cut into pairs, resumable (cryosse.pretrain.simulate)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.dataset.pairs import DatasetParams  # noqa: E402
from cryosse.pretrain.simulate import SimulationPlan, simulate_pairs  # noqa: E402

sm = snakemake
plan = SimulationPlan(**sm.params.simulate, seed=sm.params.seed)
simulate_pairs(
    sm.input.structures,
    sm.input.roles,
    sm.params.sources_dir,
    sm.params.pairs_dir,
    sm.output.dataset,
    sm.output.split,
    sm.output.failed,
    plan,
    DatasetParams.from_config(sm.params.dataset),
    sm.threads,
)
