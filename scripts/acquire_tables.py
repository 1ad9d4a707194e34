"""Rule acquire_tables: gather the records into entries.tsv, rejected.tsv and manifest.tsv."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115

from cryosse.acquire.stage import write_tables  # noqa: E402

write_tables(
    snakemake.input.records,
    snakemake.output.entries,
    snakemake.output.rejected,
    snakemake.output.manifest,
)
