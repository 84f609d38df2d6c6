#!/usr/bin/env bash
# Runs fuzz targets with cargo-fuzz (libFuzzer) on the stable toolchain.
#
#   fuzz/run.sh                      # every target, 10 minutes each, one after another
#   FUZZ_SECONDS=60 fuzz/run.sh boxes recover
#   FUZZ_RUNS=10000000 fuzz/run.sh progressive   # a number of executions instead of a time
#   FUZZ_SANITIZER=none fuzz/run.sh matroska      # without AddressSanitizer (see fuzz/README.md)
#   FUZZ_ARGS=-fork=2 fuzz/run.sh rtsp_camera     # more libFuzzer flags (here: both cores)
#
# Each target starts from fuzz/seeds/<target> (real media: fuzz/make-seeds.py) plus the
# corpus it grew before (fuzz/corpus/<target>, not committed). A failing input lands in
# fuzz/artifacts/<target>/; after the fix, copy it to fuzz/regressions/<target>/, where
# tests/fuzz_regressions.rs replays it in the normal suite.
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP lets stable take them.
export RUSTC_BOOTSTRAP=1
secs=${FUZZ_SECONDS:-600}
limit=(-max_total_time="$secs")
[ -z "${FUZZ_RUNS:-}" ] || limit=(-runs="$FUZZ_RUNS")
# shellcheck disable=SC2206 # flags split on spaces on purpose
extra=(${FUZZ_ARGS:-})
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(boxes init_fragments clip_writer recover matroska progressive rtsp_camera)
# AddressSanitizer by default. The long runs go without it (several times the executions per
# second): preroll's only unsafe code is three libc calls on integers, none on fuzzed data,
# and safe Rust's bounds checks stay on either way.
san=(-s "${FUZZ_SANITIZER:-address}")
cargo fuzz build -O "${san[@]}"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "fuzzing $t (${limit[*]})" >&2
  # The filter only shows progress (`#N: cov:` lines under -fork); the status is cargo
  # fuzz's, through pipefail.
  cargo fuzz run -O "${san[@]}" "$t" "corpus/$t" "seeds/$t" -- "${limit[@]}" ${extra[@]+"${extra[@]}"} -print_final_stats=1 \
    2>&1 | tee "target/fuzz-$t.log" \
    | { grep -E '^#[0-9]+:? +(DONE|pulse|cov)|^stat::|ERROR|SUMMARY|panicked' >&2 || true; }
done
