#!/usr/bin/env bash
# The fault soak (not part of the test suite): four RTSP cameras recorded by `preroll serve`
# while clips are triggered and the server is kicked, killed and frozen at random; then
# every clip, the log and the memory are checked and one summary line is printed.
#
#   scripts/soak.sh                    # 10 minutes of faults (plus ~1 min warm-up and checks)
#   SOAK_MINUTES=30 scripts/soak.sh    # the long run
#   SOAK_SEED=123 scripts/soak.sh      # replays the faults and triggers of a run
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
SOAK_MINUTES=${SOAK_MINUTES:-10} exec cargo test --release --test soak -- --ignored --nocapture
