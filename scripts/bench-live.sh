#!/usr/bin/env bash
# Benchmark: the CPU the live view costs preroll per viewer. One 1080p25 H.264 + AAC camera
# (4 Mb/s, the benchmarks' source looped by gst-rtsp-server) into `preroll serve`; preroll's
# CPU over BENCH_SECONDS with no viewer, then with VIEWERS WebSocket viewers of that camera
# (tests/browser/viewers.mjs: each reads every part and drops it). The peer, in the same
# run: one `ffmpeg -c copy` remux of the camera's RTSP stream to fragmented MP4 (what a
# live view without a ring runs per viewer or per stream), for the same time.
#
#   scripts/bench-live.sh                         # VIEWERS=20, BENCH_SECONDS=60
#   VIEWERS=50 BENCH_SECONDS=120 scripts/bench-live.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
viewers=${VIEWERS:-20}
secs=${BENCH_SECONDS:-60}
dir=${BENCH_DIR:-target/bench-live}
mkdir -p "$dir"
src=$(scripts/bench-source.sh)
cargo build --release --quiet
bin=target/release/preroll
. scripts/lib/rtsp-server.sh

serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  true
}
trap cleanup EXIT
start_rtsp_server 1 "$src" "$dir"

token=bench-live-token-0123456789
port=$((20000 + RANDOM % 20000))
cat > "$dir/preroll.toml" <<TOML
[api]
bind = "127.0.0.1:$port"
token = "$token"

[storage]
recordings = "$PWD/$dir/recordings"

[[cameras]]
name = "cam1"
source = "${urls[0]}"
TOML
"$bin" serve -c "$dir/preroll.toml" > "$dir/serve.log" 2>&1 &
serve_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/healthz" > /dev/null && break; sleep 0.2; done
sleep 10 # the ring fills and ingest settles

echo "preroll alone for $secs s..." >&2
c0=$(cpu_of "$serve_pid"); sleep "$secs"; c1=$(cpu_of "$serve_pid")

echo "preroll with $viewers viewers for $secs s..." >&2
node --experimental-websocket tests/browser/viewers.mjs \
  "{\"base\": \"$base\", \"token\": \"$token\", \"camera\": \"cam1\", \"viewers\": $viewers, \"seconds\": $((secs + 4))}" \
  > "$dir/viewers.json" 2> "$dir/viewers.err" &
node_pid=$!
sleep 2 # every viewer connected
c2=$(cpu_of "$serve_pid"); sleep "$secs"; c3=$(cpu_of "$serve_pid")
wait "$node_pid"

echo "ffmpeg remux of the camera for $secs s..." >&2
timeout -s INT "$((secs + 2))" ffmpeg -nostdin -v error -rtsp_transport tcp -i "${urls[0]}" -c copy \
  -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof pipe:1 > /dev/null 2> "$dir/ffmpeg.err" &
timeout_pid=$!
sleep 2
ff_pid=$(pgrep -P "$timeout_pid" ffmpeg)
f0=$(cpu_of "$ff_pid"); sleep "$((secs - 2))"; f1=$(cpu_of "$ff_pid")
wait "$timeout_pid" 2>/dev/null || true

reconnects=$(curl -s "$base/metrics" | awk '/^preroll_reconnects_total/ {s += $2} END {print s + 0}')
python3 - "$dir/viewers.json" "$secs" "$viewers" "$c0" "$c1" "$c2" "$c3" "$f0" "$f1" "$reconnects" <<'PY'
import json, sys
path, secs, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
c0, c1, c2, c3, f0, f1 = map(float, sys.argv[4:10])
reconnects = int(sys.argv[10])
seen = json.load(open(path))
alone = (c1 - c0) / secs * 100
watched = (c3 - c2) / secs * 100
per_viewer = (watched - alone) / n
ffmpeg = (f1 - f0) / (secs - 2) * 100
mbps = [v["bytes"] * 8 / (secs + 4) / 1e6 for v in seen]
errors = [v["error"] for v in seen if v["error"]]
print(f"live view, {n} viewers of one 1080p25 4 Mb/s camera, {secs:.0f} s each way:")
print(f"  preroll alone:            {alone:6.2f} % of a core")
print(f"  preroll with {n} viewers:  {watched:6.2f} % of a core (+{watched - alone:.2f} %)")
print(f"  per viewer:               {per_viewer:6.3f} % of a core")
print(f"  ffmpeg -c copy remux:     {ffmpeg:6.2f} % of a core (one stream)")
print(f"  ratio ffmpeg remux / preroll viewer: {ffmpeg / per_viewer if per_viewer > 0 else float('inf'):.1f}x")
print(f"  viewers received {min(mbps):.2f}-{max(mbps):.2f} Mb/s each; parts {min(v['parts'] for v in seen)}-{max(v['parts'] for v in seen)}; errors {len(errors)}; camera reconnects {reconnects}")
PY
