#!/usr/bin/env bash
# Set up (or reuse) the environment, then run the whole workflow on the offline
# demo (config/demo.yaml: maps simulated from bundled real structures).
# Extra arguments go to snakemake, e.g. `bash tools/demo.sh tables`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
exec snakemake --configfile config/demo.yaml --cores "$(nproc)" "$@"
