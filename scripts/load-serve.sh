#!/usr/bin/env bash
# Ingest limit: how many 4 Mb/s 1080p25 H.264 streams, each with a 10 s ring, one
# `preroll serve` ingests on this machine with zero lost frames while clips still finish on
# time. The streams come from the project's own RTSP server, `rtsp-replay` (one process,
# packets cut once, no encoding), so the server is not what gives out first.
#
# For each N in LOAD_STREAMS (ascending) a run of PROBE_SECONDS; the largest N that passes is
# then run for LOAD_SECONDS (10 minutes); if that fails, the next smaller N that passed. What a
# run checks and prints is said at the top of scripts/lib/load_serve.py: frames against the
# source's rate, lost packets, dropped frames, reconnects, a 5 s clip (5 s lookback) asked
# every CLIP_EVERY seconds of the next camera in turn and how long after its last frame it
# was done, preroll's CPU and memory, the server's CPU and the machine's idle time.
#
#   scripts/load-serve.sh                                      # N = 100, 150 … 500, then 10 minutes
#   LOAD_STREAMS="250" PROBE_SECONDS=0 scripts/load-serve.sh   # just 10 minutes at 250
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
streams=(${LOAD_STREAMS:-100 150 200 250 300 350 400 450 500})
probe=${PROBE_SECONDS:-60}
confirm=${LOAD_SECONDS:-600}
dir=${BENCH_DIR:-target/bench}/load-serve
mkdir -p "$dir"
src=$(scripts/bench-source.sh)
cargo build --release --quiet --bins
# Two sockets a stream (one each side) and preroll's files: more than the usual 1024.
ulimit -n "$(ulimit -Hn)"

# Video frames a second the source holds; rtsp-replay sends its video only.
rate=$(ffprobe -v error -select_streams v:0 -count_packets \
  -show_entries stream=nb_read_packets:format=duration -of default=nw=1:nk=1 "$src" |
  awk 'NR == 1 { n = $1 } NR == 2 { print n / $1 }')

run() {
  /usr/bin/python3 scripts/lib/load_serve.py --preroll target/release/preroll \
    --replay target/release/rtsp-replay --source "$src" --dir "$dir" --rate "$rate" \
    --streams "$1" --seconds "$2" --clip-every "${CLIP_EVERY:-10}" | tee -a "$dir/results.txt"
  return "${PIPESTATUS[0]}"
}

echo "source: $(basename "$src"), $rate video frames/s; $(nproc) cores, kernel $(uname -r), $(git rev-parse --short HEAD)" |
  tee "$dir/results.txt"
. scripts/lib/probe-confirm.sh
probe_then_confirm load-serve "with zero lost frames and clips on time"
