"""Rule emdb_search (entries: search): the EMDB search with the paper's criteria, written once
as the run's entry table, headed by its date, query and address (cryosse.acquire.emdb)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.acquire.emdb import search_table  # noqa: E402
from cryosse.acquire.stage import AcquireSettings  # noqa: E402

# The search settings come from the params (a change reruns the search); the network's
# (retries, back-off, time-out) from the config, so tuning them reruns nothing.
acquire = {**snakemake.config["acquire"], **snakemake.params.search}
settings = AcquireSettings.from_config({**snakemake.config, "acquire": acquire})
rows = search_table(settings, snakemake.output.table)
logging.info("%d entries -> %s", len(rows), snakemake.output.table)
