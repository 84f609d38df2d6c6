#!/usr/bin/env bash
# Benchmark: `preroll export` of 1 h of continuous recording (60 files of 60 s of 1080p25
# H.264 4 Mb/s + AAC, ~1.8 GB, laid out as `preroll serve` writes them) into one clip, against
# `cat` of the same files into one file followed by an fsync of it (the same bytes read and
# made durable; preroll fsyncs its clip before it reports success).
#
#   scripts/bench-export.sh                 # files made in target/bench on first run
#   BENCH_RUNS=5 BENCH_DIR=/data scripts/bench-export.sh
#
# Each tool runs BENCH_RUNS times (default 5) on a warm page cache; the median is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
runs=${BENCH_RUNS:-5}
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
src=$(scripts/bench-source.sh)
recordings="$dir/export-recordings"
day="$recordings/continuous/cam/2026-11-30"

if [ "$(ls "$day" 2>/dev/null | wc -l)" -ne 60 ]; then
  echo "laying out 60 files of 60 s as continuous recording..." >&2
  rm -rf "$recordings" && mkdir -p "$day"
  for m in $(seq 0 59); do
    cp "$src" "$day/$(printf '08%02d00.000Z.mp4' "$m")"
  done
fi

cargo build --release --quiet
bin=target/release/preroll
mapfile -t files < <(ls "$day"/*.mp4)
bytes=$(cat "${files[@]}" | wc -c)
echo "input: ${#files[@]} files, $bytes bytes in $day" >&2
cat "${files[@]}" > /dev/null # warm the page cache

source scripts/lib/measure.sh

out="$dir/export-out.mp4"
{
  measure preroll "$bin" export --recordings "$recordings" --camera cam \
    --start 2026-11-30T08:00:00Z --end 2026-11-30T09:00:00Z -o "$out"
  echo "# $(cat "$dir/stdout.txt")"
  ffprobe -v error -show_entries format=duration -of csv=p=0 "$out" | sed 's/^/# clip seconds /'
  measure cat+fsync sh -c 'cat "$@" > '"$out"' && sync '"$out" sh "${files[@]}"
} > "$dir/results-export.txt"
rm -f "$out"
grep '^#' "$dir/results-export.txt" | sed 's/^# /  /'
grep -v '^#' "$dir/results-export.txt" | awk -v bytes="$bytes" '
  { t[$1] = $2; rss[$1] = $3; order[NR] = $1 }
  END {
    printf "  %-10s %9s %10s %12s %22s\n", "tool", "seconds", "MB/s", "peak RSS MB", "cat+fsync / preroll"
    for (i = 1; i <= NR; i++) {
      n = order[i]
      printf "  %-10s %9.2f %10.0f %12.1f %22s\n", n, t[n], bytes / t[n] / 1e6, rss[n] / 1024, \
        (n == "preroll" ? sprintf("%.2f", t["cat+fsync"] / t["preroll"]) : "-")
    }
  }'
echo "(median of $runs runs; input $bytes bytes on a warm page cache; $(nproc) cores; kernel $(uname -r))"
