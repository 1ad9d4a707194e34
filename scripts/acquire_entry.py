"""Rule acquire_entry: fetch, copy or simulate one entry; always writes its record.json."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.acquire.stage import AcquireSettings, acquire_entry  # noqa: E402

# Relative folders in the config are the workflow's (this script lives in its scripts/): no
# absolute path in the rule's params, so a moved or copied results folder reruns nothing.
base = Path(snakemake.scriptdir).parent
settings = AcquireSettings.from_config(snakemake.params.cfg, base=base)
acquire_entry(snakemake.params.entry, snakemake.output.record.rsplit("/", 1)[0], settings)
