"""Snakemake adapter: pick each loss's best setting of one split; see cryosse.train.select_job."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from cryosse.train import select_job  # noqa: E402

select_job(
    checkpoints=snakemake.input.checkpoints,
    table=snakemake.output.table,
    models=snakemake.output.models,
    losses=snakemake.params.losses,
)
