"""Rule evaluate: predict and score the test cases of one split with one loss's model."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from cryosse.evaluate import evaluate_split  # noqa: E402

evaluate_split(
    snakemake.input.model,
    snakemake.input.split,
    snakemake.input.dataset,  # noqa: F821
    snakemake.output.per_case,
    snakemake.output.pred,
    split=snakemake.wildcards.split,  # noqa: F821
    radius=snakemake.params.radius,
    ties=snakemake.params.ties,  # noqa: F821
    device=snakemake.params.device,
    threads=snakemake.threads,  # noqa: F821
)
