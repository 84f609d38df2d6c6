#!/usr/bin/env bash
# Benchmark: remux 1 h of 1080p H.264+AAC (4 Mb/s, HLS fMP4, 2 s segments, ~1.8 GB) and
# compare in one run against `cat` of the same files and `ffmpeg -c copy` of the playlist.
#
#   scripts/bench-remux.sh            # input cached in target/bench (made on first run)
#   BENCH_RUNS=5 BENCH_DIR=/data scripts/bench-remux.sh
#   BASE_BIN=/path/to/older/preroll scripts/bench-remux.sh   # adds that build as "preroll-base"
#
# Each tool runs BENCH_RUNS times (default 5) on a warm page cache; the median is reported.
# "+fsync" rows add an fsync of the output to cat and ffmpeg, because preroll fsyncs its clip
# (and its directory) before it reports success: that is the like-for-like comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
runs=${BENCH_RUNS:-5}
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
src=$(scripts/bench-source.sh)
hls="$dir/hls-1h"

if [ ! -s "$hls/index.m3u8" ]; then
  echo "looping it to 1 h of HLS fMP4 segments (-c copy)..." >&2
  rm -rf "$hls" && mkdir -p "$hls"
  ffmpeg -nostdin -hide_banner -v error -y -stream_loop 59 -i "$src" -c copy \
    -f hls -hls_segment_type fmp4 -hls_time 2 -hls_playlist_type vod \
    -hls_fmp4_init_filename init.mp4 -hls_segment_filename "$hls/seg%d.m4s" "$hls/index.m3u8"
fi

cargo build --release --quiet
bin=target/release/preroll
files=("$hls/init.mp4")
mapfile -t segs < <(grep -v '^#' "$hls/index.m3u8" | sed "s|^|$hls/|")
files+=("${segs[@]}")
bytes=$(cat "${files[@]}" | wc -c)
echo "input: ${#segs[@]} segments, $bytes bytes in $hls" >&2
cat "${files[@]}" > /dev/null # warm the page cache

source scripts/lib/measure.sh

table() { # results file
  awk -v bytes="$bytes" '
    { t[$1] = $2; rss[$1] = $3; order[NR] = $1 }
    END {
      printf "  %-14s %9s %10s %12s %16s\n", "tool", "seconds", "MB/s", "peak RSS MB", "preroll speed"
      for (i = 1; i <= NR; i++) {
        n = order[i]
        printf "  %-14s %9.2f %10.0f %12.1f %16s\n", n, t[n], bytes / t[n] / 1e6, rss[n] / 1024, \
          (n == "preroll" ? "-" : sprintf("%.2f x %s", t[n] / t["preroll"], n))
      }
    }' "$1"
}

run_all() { # output directory
  out="$1/bench-out.mp4"
  measure preroll "$bin" remux "$hls" -o "$out"
  if [ -n "${BASE_BIN:-}" ]; then measure preroll-base "$BASE_BIN" remux "$hls" -o "$out"; fi
  measure cat sh -c 'cat "$@" > '"$out" sh "${files[@]}"
  measure cat+fsync sh -c 'cat "$@" > '"$out"' && sync '"$out" sh "${files[@]}"
  measure ffmpeg ffmpeg -nostdin -v error -i "$hls/index.m3u8" -c copy -f mp4 "$out"
  measure ffmpeg+fsync sh -c 'ffmpeg -nostdin -v error -i "$1" -c copy -f mp4 "$2" && sync "$2"' sh "$hls/index.m3u8" "$out"
  rm -f "$out"
}

echo "== clip on disk ($(df --output=fstype "$dir" | tail -1 | tr -d ' ') under $dir): what a user gets =="
run_all "$dir" > "$dir/results-disk.txt"
table "$dir/results-disk.txt"
if [ -d /dev/shm ] && [ "$(df --output=avail -k /dev/shm | tail -1)" -gt $(( bytes / 1024 * 12 / 10 )) ]; then
  echo "== clip on tmpfs (/dev/shm): the copy path alone, fsync costs nothing there =="
  run_all /dev/shm > "$dir/results-tmpfs.txt"
  table "$dir/results-tmpfs.txt"
fi
echo "(preroll speed = tool time / preroll time, above 1 = preroll faster; median of $runs runs;"
echo " input $bytes bytes on a warm page cache; $(nproc) cores; kernel $(uname -r))"
