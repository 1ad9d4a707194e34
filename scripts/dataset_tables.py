"""Rule dataset_tables: the dataset table (kept pairs), the rejection table, every scored chain's quality."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115

from cryosse.dataset.entry import write_dataset_tables  # noqa: E402

write_dataset_tables(
    snakemake.input.tables,
    snakemake.output.dataset,
    snakemake.output.rejected,
    snakemake.output.quality,
)
