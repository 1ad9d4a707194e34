"""Rule dataset_entry: chain selection, quality, crops and labels of one entry."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115

from cryosse.dataset.entry import build_entry  # noqa: E402
from cryosse.dataset.pairs import DatasetParams  # noqa: E402

build_entry(
    snakemake.input.record,
    snakemake.output.table,
    snakemake.params.pairs,
    DatasetParams.from_config(snakemake.params.cfg),
    entry=snakemake.wildcards.entry,
)
