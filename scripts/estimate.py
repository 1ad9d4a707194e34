"""Rule estimate: what the run will cost, printed and written (cryosse.estimate)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.estimate import run  # noqa: E402

text = run(snakemake.config, snakemake.input.entries, snakemake.output[0], snakemake.params.n_settings,
           base=Path(snakemake.scriptdir).parent)  # fmt: skip
print(text, file=sys.__stdout__, flush=True)
