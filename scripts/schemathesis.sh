#!/usr/bin/env bash
# schemathesis against a real `preroll serve` for longer than the suite does: every phase
# (examples, coverage, fuzzing, stateful), every check, EXAMPLES per operation (2000 by
# default; the suite runs 100). Prints schemathesis' summary.
#   scripts/schemathesis.sh
#   EXAMPLES=10000 scripts/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
SCHEMATHESIS_EXAMPLES=${EXAMPLES:-2000} exec cargo test --release --test schema -- --nocapture
