# On failure, say why SLURM killed a job (memory, time limit, node loss), with its rule,
# SLURM job id and log; the SLURM plugin alone does not when squeue is the status command.
import time

from cryosse.slurm_hints import failure_hints

CLUSTER_RUN_STARTED = time.time()


onerror:
    for hint in failure_hints(".snakemake/slurm_logs", since=CLUSTER_RUN_STARTED):
        print(hint, file=sys.stderr)
