#!/usr/bin/env bash
# Prints the path of the benchmarks' source clip, making it on first use: 60 s of 1080p25
# H.264 (4 Mb/s CBR, 2 s GOP) + AAC 128 kb/s, about 30 MB, in BENCH_DIR (target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
src="$dir/src-60s.mp4"
if [ ! -s "$src" ]; then
  echo "making 60 s of 1080p25 H.264 (4 Mb/s CBR) + AAC..." >&2
  ffmpeg -nostdin -hide_banner -v error -y \
    -f lavfi -i "testsrc2=size=1920x1080:rate=25" \
    -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000" -t 60 \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 50 \
    -b:v 3900k -minrate 3900k -maxrate 3900k -bufsize 3900k -x264-params nal-hrd=cbr \
    -c:a aac -b:a 128k "$src.tmp.mp4"
  mv "$src.tmp.mp4" "$src"
fi
realpath "$src"
