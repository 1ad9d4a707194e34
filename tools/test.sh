#!/usr/bin/env bash
# Set up (or reuse) the environment, then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash tools/test.sh -m "not slow"`.
set -euo pipefail
CRYOSSE_TEST_DATA=1 source "$(dirname "$0")/env.sh"
exec python -m pytest "$@"
