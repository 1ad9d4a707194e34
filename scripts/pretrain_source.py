"""Rule pretrain_source: one source's structure files and manifest (cryosse.pretrain.sources)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.pretrain.sources import fetch_source  # noqa: E402

fetch_source(snakemake.params.source, snakemake.output[0], base=snakemake.params.base)  # noqa: F821
