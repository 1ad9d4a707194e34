"""Rule pretrain_train: the pretraining run, resumable (cryosse.pretrain.run.train)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from cryosse.pretrain.run import train  # noqa: E402

sm = snakemake
train(
    sm.input.dataset,
    sm.input.split,
    sm.output.checkpoint,
    {**sm.params.train, "threads": sm.threads},
    sm.params.seed,
)
