#!/usr/bin/env bash
# Benchmark: continuous recording of N RTSP streams (1080p25 H.264 + AAC, 4 Mb/s, served
# without re-encoding by gst-rtsp-server) for BENCH_SECONDS, to this disk, in the same run:
#   - `preroll serve` with the N cameras and `continuous = true` (60 s files);
#   - the same `preroll serve` without continuous recording (ingest and rings only), so the
#     difference is what continuous recording itself costs;
#   - the peer: one `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60`
#     per stream, what a recorder built on ffmpeg runs for continuous recording.
# Reports CPU per stream (user + system over the run), and for preroll the bytes it wrote
# (/proc/PID/io write_bytes) and the bytes of its files against the media in them (the
# packet sizes ffprobe counts).
#
#   scripts/bench-continuous.sh               # N=4, BENCH_SECONDS=60
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
n=${N:-4}
secs=${BENCH_SECONDS:-60}
dir=${BENCH_DIR:-target/bench-continuous}
rm -rf "$dir"
mkdir -p "$dir"
src=$(scripts/bench-source.sh)
cargo build --release --quiet
bin=$PWD/target/release/preroll
. scripts/lib/rtsp-server.sh

serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  true
}
trap cleanup EXIT
start_rtsp_server "$n" "$src" "$dir"

# serve LABEL CONTINUOUS: runs preroll serve for secs; prints "cpu_seconds write_bytes".
serve() {
  local label=$1 continuous=$2 port=$((20000 + RANDOM % 20000)) cams="" i
  for i in $(seq "$n"); do
    cams+=$'\n[[cameras]]\nname = "cam'$i$'"\nsource = "'${urls[$((i - 1))]}$'"\ncontinuous = '$continuous$'\n'
  done
  mkdir -p "$dir/$label"
  cat > "$dir/$label/preroll.toml" <<TOML
[api]
bind = "127.0.0.1:$port"
token = "bench-continuous-token-01"

[storage]
recordings = "$PWD/$dir/$label/recordings"
$cams
TOML
  PREROLL_LOG=warn "$bin" serve --config "$dir/$label/preroll.toml" > "$dir/$label/out" 2> "$dir/$label/log" &
  serve_pid=$!
  sleep "$secs"
  local cpu io
  cpu=$(cpu_of "$serve_pid")
  io=$(awk '/^write_bytes/ {print $2}' "/proc/$serve_pid/io")
  kill -TERM "$serve_pid"
  wait "$serve_pid" || true
  serve_pid=""
  echo "$cpu $io"
}

echo "recording $n streams for $secs s each way..." >&2
read -r c_cpu c_io < <(serve continuous true)
read -r b_cpu _ < <(serve baseline false)

out=$dir/ffmpeg
mkdir -p "$out"
for i in $(seq "$n"); do
  /usr/bin/time -f "%e %U %S %M" -o "$dir/time-ffmpeg-$i.txt" \
    timeout -s INT "$secs" ffmpeg -nostdin -hide_banner -v error -rtsp_transport tcp -i "${urls[$((i - 1))]}" \
    -c copy -f segment -segment_time 60 -reset_timestamps 1 "$out/cam$i-%05d.mp4" &
done
for job in $(jobs -p); do [ "$job" = "$server_pid" ] || wait "$job" || true; done
f_cpu=0
for i in $(seq "$n"); do
  read -r _ u s _ < <(tail -1 "$dir/time-ffmpeg-$i.txt")
  f_cpu=$(awk -v a="$f_cpu" -v u="$u" -v s="$s" 'BEGIN { print a + u + s }')
done

files=$(find "$dir/continuous/recordings/continuous" -name '*.mp4' | sort)
file_bytes=0; media_bytes=0; count=0
for f in $files; do
  file_bytes=$((file_bytes + $(stat -c %s "$f")))
  m=$(ffprobe -v error -show_entries packet=size -of csv=p=0 "$f" | awk '{t += $1} END {print t + 0}')
  media_bytes=$((media_bytes + m))
  count=$((count + 1))
done
errors=$(for f in $files; do ffmpeg -nostdin -v error -i "$f" -f null - 2>&1; done | wc -l)

awk -v n="$n" -v secs="$secs" -v c="$c_cpu" -v b="$b_cpu" -v f="$f_cpu" -v io="$c_io" \
    -v fb="$file_bytes" -v mb="$media_bytes" -v count="$count" -v errors="$errors" 'BEGIN {
  printf "%d streams of 1080p25 H.264+AAC at 4 Mb/s, %d s\n", n, secs
  printf "  preroll serve, continuous recording: %.3f s CPU/stream (%.2f %% of a core)\n", c / n, 100 * c / n / secs
  printf "  preroll serve, no continuous recording: %.3f s CPU/stream; continuous recording itself: %.3f s/stream\n", b / n, (c - b) / n
  printf "  ffmpeg -c copy -f segment (60 s): %.3f s CPU/stream (%.2f %% of a core)\n", f / n, 100 * f / n / secs
  printf "  preroll / ffmpeg CPU = 1/%.1f\n", f / c
  printf "  preroll wrote %d files, %.1f MB; media in them %.1f MB: files / media = %.4f\n", count, fb / 1e6, mb / 1e6, fb / mb
  printf "  bytes written by the process (write_bytes, before the last files were finished): %.1f MB = %.4f x the media\n", io / 1e6, io / mb
  printf "  decode errors in preroll files: %d lines\n", errors
}'
echo "($(nproc) cores, kernel $(uname -r))"
