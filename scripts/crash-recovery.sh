#!/usr/bin/env bash
# Crash recovery, RUNS times (100 by default): `preroll serve` starts a clip, is killed
# with SIGKILL at a random moment and restarted; every clip with a complete fragment must
# come back recovered and decode cleanly. Not part of the test suite (the test is ignored).
# SEED=<n> repeats a series; failing runs keep their files in target/tmp/crash-recovery.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
RUNS=${RUNS:-100} exec cargo test --release --test crash_recovery -- --ignored --nocapture "$@"
