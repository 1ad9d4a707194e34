"""Snakemake adapter: train one (split, loss, setting); see cryosse.train.train_job."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821

from cryosse.train import train_job  # noqa: E402

train_job(
    dataset=snakemake.input.dataset,  # noqa: F821
    split_table=snakemake.input.split,  # noqa: F821
    split=snakemake.wildcards.split,  # noqa: F821
    loss=snakemake.wildcards.loss,  # noqa: F821
    setting=snakemake.wildcards.setting,  # noqa: F821
    checkpoint=snakemake.output.checkpoint,  # noqa: F821
    train_config=snakemake.params.train,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
