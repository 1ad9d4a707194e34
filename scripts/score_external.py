"""Rule score_external: score one external tool's predictions of a split's test cases."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115

import logging  # noqa: E402

from cryosse.score import score_external_split  # noqa: E402

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
p = snakemake.params
score_external_split(
    p.folder,
    snakemake.input.split,
    snakemake.input.dataset,
    snakemake.output.per_case,
    snakemake.wildcards.tool,
    split=snakemake.wildcards.split,
    threshold=p.threshold,
    helix_value=p.helix_value,
    sheet_value=p.sheet_value,
    radius=p.radius,
    ties=p.ties,
)
