"""Rule evaluate: predict and score the test cases of one split with one loss's model."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115

from cryosse.evaluate import evaluate_split  # noqa: E402

evaluate_split(
    snakemake.input.model,
    snakemake.input.split,
    snakemake.input.dataset,
    snakemake.output.per_case,
    snakemake.output.pred,
    split=snakemake.wildcards.split,
    radius=snakemake.params.radius,
    ties=snakemake.params.ties,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
