#!/usr/bin/env bash
# Header overhead of parts: records CLIP_SECONDS (60) of the benchmark input (1080p25 H.264
# at 4 Mb/s, 2 s GOP, + AAC) from the RTSP test server with `preroll record --lookback 0`,
# then counts the clip's moof bytes, mdat headers and mfra against its media
# (scripts/lib/fragment-overhead.py), per hour, as recorded (0.5 s parts) and as one fragment
# per GOP would have cost (computed from the same moofs).
#
#   scripts/bench-parts.sh
#   scripts/bench-parts.sh CLIP.mp4      # only count an existing clip
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then exec python3 scripts/lib/fragment-overhead.py "$1"; fi
scripts/deps.sh
secs=${CLIP_SECONDS:-60}
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
src=$(scripts/bench-source.sh)
cargo build --release --quiet
. scripts/lib/rtsp-server.sh
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null' EXIT
start_rtsp_server 1 "$src" "$dir"
clip="$dir/parts-clip.mp4"
rm -f "$clip"
target/release/preroll record "${urls[0]}" -o "$clip" --lookback 0 --duration "$secs" >&2
python3 scripts/lib/fragment-overhead.py "$clip"
