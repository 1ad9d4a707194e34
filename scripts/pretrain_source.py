"""Rule pretrain_source: one source's structure files and manifest (cryosse.pretrain.sources)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.pretrain.sources import fetch_source  # noqa: E402

base = Path(snakemake.scriptdir).parent  # noqa: F821  (the workflow's folder: relative paths are its)
fetch_source(snakemake.params.source, snakemake.output[0], base=base)
