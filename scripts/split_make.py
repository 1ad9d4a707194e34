"""Rule split_make: candidate split files 0..n_cv and the paper cases' status (SPEC 6)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.splits import SplitParams, make_splits  # noqa: E402

i = snakemake.input
make_splits(
    i.dataset,
    i.clusters,
    snakemake.output.splits,
    SplitParams.from_config(snakemake.params.cfg, seed=snakemake.params.seed),
    paper_out=snakemake.output.paper,
    paper_cases_tsv=i.paper_cases,
    entries_tsv=i.entries,
    dataset_rejected_tsv=i.dataset_rejected,
    acquire_rejected_tsv=i.acquire_rejected,
)
