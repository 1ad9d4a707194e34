"""Rule split_audit: leakage audit; publishes the split files only when it passes (SPEC 6)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.splits import SearchParams, audit_splits  # noqa: E402

audit_splits(
    snakemake.input.fasta,
    snakemake.input.splits,
    snakemake.output.audit_tsv,  # noqa: F821
    snakemake.output.audit_md,
    SearchParams.from_config(snakemake.params.cfg, threads=snakemake.threads),  # noqa: F821
    enforce=snakemake.params.enforce,
    publish=snakemake.output.splits,  # noqa: F821
    main_test=snakemake.params.cfg["test"],  # noqa: F821
    dataset_tsv=snakemake.input.dataset,
    max_box_overlap=snakemake.params.cfg["max_box_overlap"],  # noqa: F821
)
