#!/usr/bin/env bash
# Load: how many concurrent 1080p25 H.264+AAC streams at 4 Mb/s, each with a 10 s ring, one
# `preroll watch` process sustains on this machine with zero lost frames.
#
# For each N in LOAD_STREAMS (ascending), N streams are served by gst-rtsp-server (the same
# pre-encoded file, looped in real time, no re-encoding) and ingested for PROBE_SECONDS. The
# largest N that passes is then run for LOAD_SECONDS (10 minutes) to confirm; if that fails,
# the next smaller N that passed is tried, and so on.
#
# A run passes when, over its steady window (from the first status line, at WARM_SECONDS, to
# the end), every stream received the frames the source holds for that time, less at most one
# second's worth (frames are read in 250 ms ticks, so a count taken at an instant can trail by
# a tick at either end; a server or client that falls behind real time shows up as a larger
# shortfall), with 0 lost RTP packets (sequence gaps), 0 dropped frames and 0 reconnects.
# Reported per run: frames, preroll's CPU (% of one core, and per stream), its RSS at the end
# and its peak, media buffered, and the server's CPU.
#
#   scripts/load.sh                                   # N = 8 16 … 64, 60 s probes, 600 s confirm
#   LOAD_STREAMS="32" PROBE_SECONDS=0 scripts/load.sh # just a 10-minute run at N = 32
#   LOAD_STREAMS="40 48" PROBE_SECONDS=0 scripts/load.sh # 10 minutes at 48, then at 40 if 48 fails
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
streams=(${LOAD_STREAMS:-8 16 24 32 40 48 56 64})
probe=${PROBE_SECONDS:-60}
confirm=${LOAD_SECONDS:-600}
warm=${WARM_SECONDS:-30}
dir=${BENCH_DIR:-target/bench}/load
mkdir -p "$dir"
src=$(scripts/bench-source.sh)
cargo build --release --quiet
bin=target/release/preroll
. scripts/lib/rtsp-server.sh
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null' EXIT

# Frames per second the source holds (video + audio packets over its duration): what each
# stream must deliver in real time.
rate=$(ffprobe -v error -count_packets -show_entries stream=nb_read_packets:format=duration \
  -of default=nw=1:nk=1 "$src" | awk 'NR == FNR { a[NR] = $1 } END { print (a[1] + a[2]) / a[3] }')

# run N SECONDS → prints the result line; returns 1 when frames were lost.
run() {
  local n=$1 secs=$2 tag="n$1-$2s"
  start_rtsp_server "$n" "$src" "$dir"
  sleep 1
  local s0 s1
  s0=$(cpu_of "$server_pid")
  /usr/bin/time -f "%e %U %S %M" -o "$dir/time-$tag.txt" \
    "$bin" watch "${urls[@]}" --seconds "$secs" --ring-seconds 10 --every "$warm" \
    > "$dir/watch-$tag.txt" 2> "$dir/status-$tag.txt"
  s1=$(cpu_of "$server_pid")
  kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
  server_pid=""
  read -r _ user sys peak_kb < <(tail -1 "$dir/time-$tag.txt")
  # First status line of each camera (at WARM_SECONDS) against the final one.
  awk -v n="$n" -v secs="$secs" -v warm="$warm" -v rate="$rate" -v user="$user" -v sys="$sys" \
      -v peak_kb="$peak_kb" -v min=-1 -v server="$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')" '
    function field(line, name,   i, k, f) { k = split(line, f, " "); for (i = 2; i <= k; i++) if (f[i] == name) return f[i - 1]; return 0 }
    FILENAME ~ /status/ && /frames,/ { cam = $1; if (!(cam in first)) first[cam] = field($0, "frames,") }
    FILENAME ~ /watch/ && /frames,/ {
      cam = $1; last = field($0, "frames,"); cams++
      got = last - first[cam]; want = rate * (secs - warm)
      if (min < 0 || got < min) min = got
      dropped += field($0, "dropped"); reconnects += field($0, "reconnects,"); lost += field($0, "lost")
      if (got < want - rate) short++
    }
    FILENAME ~ /watch/ && /rss_bytes=/ { split($0, a, "rss_bytes="); rss = a[2] + 0; split($0, b, "buffered_bytes="); media = b[2] + 0 }
    END {
      cpu = user + sys
      ok = (cams == n && short == 0 && lost == 0 && dropped == 0 && reconnects == 0)
      printf "N=%d %d s: %s; steady %d s: fewest frames %d of %.0f (%d short), %d lost packets, %d dropped, %d reconnects; preroll CPU %.1f %% of a core (%.3f %%/stream), RSS %.1f MB at end (peak %.1f MB) holding %.1f MB of media; server CPU %.0f %% of a core\n",
        n, secs, ok ? "PASS" : "FAIL", secs - warm, min, rate * (secs - warm), short, lost, dropped, reconnects,
        100 * cpu / secs, 100 * cpu / secs / n, rss / 1e6, peak_kb * 1024 / 1e6, media / 1e6, 100 * server / secs
      exit ok ? 0 : 1
    }' "$dir/status-$tag.txt" "$dir/watch-$tag.txt" | tee -a "$dir/results.txt"
}

echo "source: $(basename "$src"), $rate frames/s; $(nproc) cores, kernel $(uname -r)" | tee "$dir/results.txt"
. scripts/lib/probe-confirm.sh
probe_then_confirm load "with zero lost frames"
