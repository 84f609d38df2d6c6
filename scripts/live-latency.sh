#!/usr/bin/env bash
# The live view's latency over LATENCY_MINUTES (default 10) in headless Chromium: one
# 1 s GOP camera whose pictures carry the wall-clock time, latency read off the screen each
# frame and summarised per minute. Not part of the suite (it takes the whole run).
#
#   scripts/live-latency.sh
#   LATENCY_MINUTES=30 scripts/live-latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --release --test ui -- --ignored --nocapture live_latency_stays_low_for_ten_minutes
