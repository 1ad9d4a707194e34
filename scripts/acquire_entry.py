"""Rule acquire_entry: fetch, copy or simulate one entry; always writes its record.json."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.acquire.stage import AcquireSettings, acquire_entry  # noqa: E402

settings = AcquireSettings.from_config(snakemake.params.cfg, base=snakemake.params.base)  # noqa: F821
acquire_entry(snakemake.params.entry, snakemake.output.record.rsplit("/", 1)[0], settings)  # noqa: F821
