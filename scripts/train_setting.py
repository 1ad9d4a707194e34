"""Snakemake adapter: train one (split, loss, setting); see cryosse.train.train_job."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from cryosse.train import train_job  # noqa: E402

train_job(
    dataset=snakemake.input.dataset,
    split_table=snakemake.input.split,
    split=snakemake.wildcards.split,
    loss=snakemake.wildcards.loss,
    setting=snakemake.wildcards.setting,
    checkpoint=snakemake.output.checkpoint,
    train_config=snakemake.params.train,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
