"""Rule dataset_tables: the dataset table (kept pairs), the rejection table, every scored chain's quality."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115

from cryosse.dataset.entry import aggregate  # noqa: E402

aggregate(
    snakemake.input.tables,
    snakemake.output.dataset,
    snakemake.output.rejected,
    snakemake.output.quality,
)
