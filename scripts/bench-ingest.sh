#!/usr/bin/env bash
# Benchmark: N concurrent RTSP streams of pre-encoded 1080p H.264 + AAC (4 Mb/s), served
# without re-encoding by gst-rtsp-server (file mounts looped with continuous timestamps),
# ingested for BENCH_SECONDS each with a 10 s ring:
#   - by preroll: one `preroll watch` process for all N streams;
#   - in the same run, by `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment`, one per
#     stream (what Frigate-style recorders run), writing its segments to tmpfs.
# Reports CPU seconds and RSS per stream for both, and preroll's memory above the media it
# buffers: `preroll watch` reports its RSS and its buffered media (rings + segments in
# progress) at the same instant, and a one-stream run gives the baseline:
#   overhead per stream = ((RSS_N - RSS_1) - (media_N - media_1)) / (N - 1).
#
#   scripts/bench-ingest.sh              # N=4, BENCH_SECONDS=60
#   N=8 BENCH_SECONDS=120 scripts/bench-ingest.sh
#   PREROLL_BIN=/path/to/preroll scripts/bench-ingest.sh   # another build, to compare two
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
n=${N:-4}
[ "$n" -ge 2 ] || { echo "N must be at least 2 (the RSS overhead compares N streams with 1)" >&2; exit 1; }
secs=${BENCH_SECONDS:-60}
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
src=$(scripts/bench-source.sh)
if [ -n "${PREROLL_BIN:-}" ]; then
  bin=$PREROLL_BIN
else
  cargo build --release --quiet
  bin=target/release/preroll
fi
. scripts/lib/rtsp-server.sh

cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf /dev/shm/preroll-bench-ffmpeg; }
trap cleanup EXIT
start_rtsp_server "$n" "$src" "$dir"

server_cpu() { cpu_of "$server_pid"; }

echo "ingesting $n streams of $(basename "$src") for $secs s each way..." >&2

# preroll, N streams.
s0=$(server_cpu)
/usr/bin/time -f "%e %U %S %M" -o "$dir/time-preroll.txt" \
  "$bin" watch "${urls[@]}" --seconds "$secs" --ring-seconds 10 --every 0 > "$dir/watch.txt"
s1=$(server_cpu)
read -r p_wall p_user p_sys p_rss < <(tail -1 "$dir/time-preroll.txt")
rss_n=$(sed -n 's/.*rss_bytes=\([0-9]*\).*/\1/p' "$dir/watch.txt")
media_n=$(sed -n 's/.*buffered_bytes=\([0-9]*\).*/\1/p' "$dir/watch.txt")
frames=$(awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "frames,") t += $i } END { print t }' "$dir/watch.txt")
reconnects=$(awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "reconnects,") t += $i } END { print t }' "$dir/watch.txt")

# preroll, one stream, for the baseline RSS.
/usr/bin/time -f "%e %U %S %M" -o "$dir/time-preroll-1.txt" \
  "$bin" watch "${urls[0]}" --seconds 20 --ring-seconds 10 --every 0 > "$dir/watch-1.txt"
rss_1=$(sed -n 's/.*rss_bytes=\([0-9]*\).*/\1/p' "$dir/watch-1.txt")
media_1=$(sed -n 's/.*buffered_bytes=\([0-9]*\).*/\1/p' "$dir/watch-1.txt")

# ffmpeg, one process per stream, stopped after the same wall time as preroll (SIGINT from
# `timeout`; ffmpeg may report "Immediate exit requested" for the segment it was closing).
out=/dev/shm/preroll-bench-ffmpeg
rm -rf "$out" && mkdir -p "$out"
s2=$(server_cpu)
for i in $(seq "$n"); do
  /usr/bin/time -f "%e %U %S %M" -o "$dir/time-ffmpeg-$i.txt" \
    timeout -s INT "$secs" ffmpeg -nostdin -hide_banner -v error -rtsp_transport tcp -i "${urls[$((i - 1))]}" \
    -c copy -f segment -segment_time 2 -reset_timestamps 1 "$out/cam$i-%05d.mp4" &
done
wait_status=0
for job in $(jobs -p); do [ "$job" = "$server_pid" ] || wait "$job" || wait_status=$?; done
s3=$(server_cpu)
f_cpu=0; f_rss=0
for i in $(seq "$n"); do
  read -r _ u s m < <(tail -1 "$dir/time-ffmpeg-$i.txt")
  f_cpu=$(awk -v a="$f_cpu" -v u="$u" -v s="$s" 'BEGIN { print a + u + s }')
  f_rss=$(awk -v a="$f_rss" -v m="$m" 'BEGIN { print a + m }')
done
f_bytes=$(du -sb "$out" | cut -f1)

awk -v n="$n" -v secs="$secs" -v pu="$p_user" -v ps="$p_sys" -v prss="$p_rss" \
    -v rn="$rss_n" -v r1="$rss_1" -v mn="$media_n" -v m1="$media_1" -v fcpu="$f_cpu" -v frss="$f_rss" -v frames="$frames" -v rec="$reconnects" \
    -v sp="$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b-a}')" -v sf="$(awk -v a="$s2" -v b="$s3" 'BEGIN{print b-a}')" \
    -v fbytes="$f_bytes" 'BEGIN {
  pcpu = (pu + ps) / n; fc = fcpu / n
  printf "%d streams of 1080p25 H.264+AAC at 4 Mb/s, %d s each, 10 s ring\n", n, secs
  printf "  %-28s %14s %12s %14s\n", "", "CPU s/stream", "% of a core", "RSS MB/stream"
  printf "  %-28s %14.3f %12.2f %14.2f\n", "preroll (1 process)", pcpu, 100 * pcpu / secs, prss / 1024 / n
  printf "  %-28s %14.3f %12.2f %14.2f\n", "ffmpeg -c copy -f segment", fc, 100 * fc / secs, frss / 1024 / n
  printf "  preroll CPU per stream = 1/%.1f of ffmpeg'\''s\n", fc / pcpu
  over = ((rn - r1) - (mn - m1)) / (n - 1) / 1e6
  printf "  preroll at the end: RSS %.1f MB holding %.1f MB of media with %d streams; %.1f MB holding %.1f MB with 1\n", rn / 1e6, mn / 1e6, n, r1 / 1e6, m1 / 1e6
  printf "  memory above the buffered media: %.2f MB per stream (peak RSS %.1f MB)\n", over, prss / 1024
  printf "  preroll ingested %d frames, %d reconnects; ffmpeg wrote %.1f MB of segments\n", frames, rec, fbytes / 1e6
  printf "  server CPU: %.1f s during the preroll run, %.1f s during the ffmpeg run\n", sp, sf
}'
echo "($(nproc) cores, kernel $(uname -r))"
