"""Snakemake adapter: pick each loss's best setting of one split; see cryosse.train.select_job."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821

from cryosse.train import select_job  # noqa: E402

select_job(
    checkpoints=snakemake.input.checkpoints,  # noqa: F821
    table=snakemake.output.table,  # noqa: F821
    models=snakemake.output.models,  # noqa: F821
    losses=snakemake.params.losses,  # noqa: F821
)
