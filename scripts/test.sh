#!/usr/bin/env bash
# The whole test suite: installs what the tests need, checks style, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
cargo fmt --all --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release --all-targets "$@"
