#!/usr/bin/env bash
# Benchmark: N concurrent RTSP streams of 1080p H.264 (4 Mb/s) + G.711 (µ-law by default,
# 8000 Hz mono, 20 ms packets), served without encoding by gst-rtsp-server (file-loop mounts
# of a MOV holding the benchmark video and pink noise as `ulaw`/`alaw`), ingested for
# BENCH_SECONDS:
#   - by preroll: one `preroll watch` for all N streams (it keeps G.711 as FLAC);
#   - in the same run, by `ffmpeg -rtsp_transport tcp -i URL -c:v copy -c:a aac -f segment`,
#     one per stream: what Frigate runs for G.711 cameras (MP4 cannot carry G.711);
#   - and, for reference, preroll on the same video with AAC (bench-ingest's input), so the
#     cost of the FLAC path shows as the difference.
# Reports CPU seconds (user + system) and peak RSS per stream, and the ratio.
#
#   scripts/bench-g711.sh                       # N=4, BENCH_SECONDS=60, CODEC=pcmu
#   N=8 CODEC=pcma scripts/bench-g711.sh
#   BASE_BIN=/path/to/older/preroll scripts/bench-g711.sh   # adds that build on the G.711 streams
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
n=${N:-4}
secs=${BENCH_SECONDS:-60}
codec=${CODEC:-pcmu}
case $codec in pcmu) enc=pcm_mulaw ;; pcma) enc=pcm_alaw ;; *) echo "CODEC is pcmu or pcma" >&2; exit 1 ;; esac
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
aac_src=$(scripts/bench-source.sh)
src="$dir/src-60s-$codec.mov"
if [ ! -s "$src" ]; then
  echo "making $src (the benchmark video + 60 s of pink noise as $enc)..." >&2
  ffmpeg -nostdin -hide_banner -v error -y -i "$aac_src" \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.3:sample_rate=8000:seed=1" \
    -map 0:v -map 1:a -t 60 -c:v copy -c:a "$enc" -ar 8000 -ac 1 "$src.tmp.mov"
  mv "$src.tmp.mov" "$src"
fi
src=$(realpath "$src")
cargo build --release --quiet
bin=target/release/preroll
. scripts/lib/rtsp-server.sh

out=/dev/shm/preroll-bench-g711-ffmpeg
cleanup() {
  for job in $(jobs -p); do kill "$job" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT

watch_leg() { # name [binary]: preroll watch of the current urls -> "cpu_s rss_kb frames reconnects+lost+dropped"
  /usr/bin/time -f "%e %U %S %M" -o "$dir/time-g711-$1.txt" \
    "${2:-$bin}" watch "${urls[@]}" --seconds "$secs" --ring-seconds 10 --every 0 > "$dir/watch-g711-$1.txt"
  read -r _ u s m < <(tail -1 "$dir/time-g711-$1.txt")
  awk -v u="$u" -v s="$s" -v m="$m" '
    { for (i = 1; i < NF; i++) { if ($(i + 1) == "frames,") f += $i; if ($(i + 1) ~ /^(reconnects|lost|dropped)/) r += $i } }
    END { print u + s, m, f, r }' "$dir/watch-g711-$1.txt"
}

start_rtsp_server "$n" "$src" "$dir"
echo "ingesting $n streams of $(basename "$src") for $secs s each way (load: $(cut -d' ' -f1-3 /proc/loadavg))..." >&2
read -r p_cpu p_rss p_frames p_rec < <(watch_leg g711)
head -1 "$dir/watch-g711-g711.txt" >&2

rm -rf "$out" && mkdir -p "$out"
pids=()
for i in $(seq "$n"); do
  /usr/bin/time -f "%e %U %S %M" -o "$dir/time-g711-ffmpeg-$i.txt" \
    timeout -s INT "$secs" ffmpeg -nostdin -hide_banner -v error -rtsp_transport tcp -i "${urls[$((i - 1))]}" \
    -c:v copy -c:a aac -f segment -segment_time 2 -reset_timestamps 1 "$out/cam$i-%05d.mp4" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
f_cpu=0; f_rss=0
for i in $(seq "$n"); do
  read -r _ u s m < <(tail -1 "$dir/time-g711-ffmpeg-$i.txt")
  f_cpu=$(awk -v a="$f_cpu" -v u="$u" -v s="$s" 'BEGIN { print a + u + s }')
  f_rss=$(awk -v a="$f_rss" -v m="$m" 'BEGIN { print a + m }')
done
f_audio=$(ffprobe -v error -select_streams a -show_entries stream=codec_name -of csv=p=0 "$out/cam1-00001.mp4" || echo none)
b_cpu=0
if [ -n "${BASE_BIN:-}" ]; then read -r b_cpu _ < <(watch_leg base "$BASE_BIN"); fi
kill "$server_pid"; wait "$server_pid" || true

start_rtsp_server "$n" "$aac_src" "$dir"
read -r a_cpu a_rss a_frames a_rec < <(watch_leg aac)
kill "$server_pid"; wait "$server_pid" || true

awk -v n="$n" -v secs="$secs" -v codec="$codec" -v pc="$p_cpu" -v pr="$p_rss" -v pf="$p_frames" -v prec="$p_rec" \
    -v bc="$b_cpu" -v fc="$f_cpu" -v fr="$f_rss" -v fa="$f_audio" -v ac="$a_cpu" -v ar="$a_rss" -v af="$a_frames" -v arec="$a_rec" 'BEGIN {
  printf "%d streams of 1080p25 H.264 (4 Mb/s) + %s 8 kHz mono, %d s each, 10 s ring (RSS: preroll peak / N)\n", n, codec, secs
  printf "  %-40s %13s %12s %14s\n", "", "CPU s/stream", "% of a core", "RSS MB/strm"
  printf "  %-40s %13.3f %12.3f %14.1f\n", "preroll watch (" codec " -> FLAC)", pc / n, 100 * pc / n / secs, pr / 1024 / n
  printf "  %-40s %13.3f %12.3f %14.1f\n", "ffmpeg -c:v copy -c:a aac (1 per stream)", fc / n, 100 * fc / n / secs, fr / 1024 / n
  printf "  %-40s %13.3f %12.3f %14.1f\n", "preroll watch, same video + AAC", ac / n, 100 * ac / n / secs, ar / 1024 / n
  if (bc > 0) printf "  %-40s %13.3f %12.3f\n", "BASE_BIN watch (" codec " -> FLAC)", bc / n, 100 * bc / n / secs
  printf "  preroll (%s) CPU per stream = 1/%.1f of ffmpeg'\''s (target: 1/8 or less)\n", codec, fc / pc
  printf "  the FLAC path: %+.3f s CPU per stream over the AAC input (%+.3f %% of a core)\n", (pc - ac) / n, 100 * (pc - ac) / n / secs
  printf "  preroll: %d frames, %d reconnects + lost packets + dropped (%s); %d frames, %d (AAC); ffmpeg audio out: %s\n", pf, prec, codec, af, arec, fa
}'
echo "($(nproc) cores, kernel $(uname -r), load at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
