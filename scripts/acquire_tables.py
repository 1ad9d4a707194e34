"""Rule acquire_tables: gather the records into entries.tsv, rejected.tsv and manifest.tsv."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from cryosse.acquire.stage import write_tables  # noqa: E402

write_tables(
    snakemake.input.records,  # noqa: F821
    snakemake.output.entries,  # noqa: F821
    snakemake.output.rejected,  # noqa: F821
    snakemake.output.manifest,  # noqa: F821
)
