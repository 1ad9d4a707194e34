"""Rule pretrain_report: held-out scores and learning curves (cryosse.pretrain.run.report)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from cryosse.pretrain.run import report  # noqa: E402

sm = snakemake
i, o = sm.input, sm.output
report(i.checkpoint, i.dataset, i.split, i.structures, i.history, o.pairs, o.summary, o.curves, sm.threads)
