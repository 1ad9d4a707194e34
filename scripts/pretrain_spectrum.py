"""Rule pretrain_spectrum: the pretrained network with its input preparation (cryosse.pretrain.run.attach_spectrum)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.pretrain.run import attach_spectrum  # noqa: E402

sm = snakemake
attach_spectrum(sm.input.checkpoint, sm.input.dataset, sm.input.split, sm.output.checkpoint)
