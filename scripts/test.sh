#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --release --all-targets "$@"
