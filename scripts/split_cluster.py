"""Rule split_cluster: central-chain FASTA and MMseqs2 clusters of every pair (SPEC 6)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.splits import SearchParams, cluster_dataset  # noqa: E402

cluster_dataset(
    snakemake.input.dataset,
    snakemake.output.fasta,
    snakemake.output.clusters,
    SearchParams.from_config(snakemake.params.cfg, threads=snakemake.threads),
)
