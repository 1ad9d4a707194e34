"""Rule split_audit: leakage audit; publishes the split files only when it passes (SPEC 6)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.splits import SearchParams, audit_splits  # noqa: E402

audit_splits(
    snakemake.input.fasta,
    snakemake.input.splits,
    snakemake.output.audit_tsv,
    snakemake.output.audit_md,
    SearchParams.from_config(snakemake.params.cfg, threads=snakemake.threads),
    enforce=snakemake.params.enforce,
    publish=snakemake.output.splits,
    main_test=snakemake.params.cfg["test"],
    dataset_tsv=snakemake.input.dataset,
    max_box_overlap=snakemake.params.cfg["max_box_overlap"],
    paper_cases_tsv=snakemake.input.paper,
)
