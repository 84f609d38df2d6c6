#!/usr/bin/env bash
# Benchmark: a retention pass over many clip files. FILES empty clip files (default 100,000)
# in the default layout (<camera>/<camera>-<time>-<n>.mp4, CAMERAS folders), each with its
# own modification time; then, in the same run:
#   - `preroll prune --dry-run` with limits that pick 1 % of the files (walk, stat, sort,
#     decide; nothing deleted), RUNS times;
#   - the peer: GNU find printing every clip's size and time, sorted oldest first
#     (`find -name '*.mp4' -printf '%T@ %s %p\n' | sort -n`), the same walk and order;
#   - `preroll prune` for real, deleting that 1 %;
#   - `preroll serve` on the same directory with a pass every second for PASSES passes: its
#     RSS after the first pass and after the last (memory flat?) and the pass time it
#     reports (preroll_retention_pass_seconds).
#
#   scripts/bench-retention.sh                  # FILES=100000 CAMERAS=10 RUNS=5 PASSES=60
set -euo pipefail
cd "$(dirname "$0")/.."
files=${FILES:-100000}
cameras=${CAMERAS:-10}
runs=${RUNS:-5}
passes=${PASSES:-60}
dir=${BENCH_DIR:-target/bench-retention}
cargo build --release --quiet
bin=$PWD/target/release/preroll
rm -rf "$dir"
mkdir -p "$dir/recordings"
rec=$(cd "$dir/recordings" && pwd)

echo "making $files clip files in $cameras camera folders" >&2
python3 - "$rec" "$files" "$cameras" <<'PY'
import os, sys
rec, files, cameras = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = 1_780_000_000  # one file a minute, the oldest first
for c in range(cameras):
    os.makedirs(f"{rec}/cam{c}", exist_ok=True)
for n in range(files):
    c = n % cameras
    p = f"{rec}/cam{c}/cam{c}-{n:08d}-{n}.mp4"
    with open(p, "wb") as f:
        f.write(b"\0" * 1000)
    t = start + 60 * n
    os.utime(p, (t, t))
PY
total=$((files * 1000))
keep_bytes=$((total - total / 100))
camera_lines=""
for c in $(seq 0 $((cameras - 1))); do
  camera_lines+=$'\n[[cameras]]\nname = "cam'$c$'"\nsource = "demo"\nenabled = false\n'
done
port=$((20000 + RANDOM % 20000))
cat > "$dir/preroll.toml" <<TOML
[api]
bind = "127.0.0.1:$port"
token = "bench-retention-token-0123"

[storage]
recordings = "$rec"

[retention]
max_bytes = $keep_bytes
interval = 1
$camera_lines
TOML

sync
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # label, command...: prints "seconds max_rss_kb" per run
  local label=$1; shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$dir/time" "$@" > "$dir/out" 2>&1 || { cat "$dir/out" >&2; exit 1; }
    cat "$dir/time"
  done > "$dir/$label.runs"
  printf '%s: median %s s, peak RSS %s kB (runs: %s)\n' "$label" \
    "$(cut -d' ' -f1 "$dir/$label.runs" | median)" \
    "$(cut -d' ' -f2 "$dir/$label.runs" | median)" \
    "$(cut -d' ' -f1 "$dir/$label.runs" | tr '\n' ' ')"
}

measure prune-dry-run "$bin" prune --config "$dir/preroll.toml" --dry-run
grep -E "clip files" "$dir/out"
measure find-sort sh -c "find '$rec' -name '*.mp4' -printf '%T@ %s %p\n' | sort -n > /dev/null"
runs=1 measure prune "$bin" prune --config "$dir/preroll.toml"
grep -E "clip files" "$dir/out"

PREROLL_LOG=warn "$bin" serve --config "$dir/preroll.toml" > "$dir/serve.out" 2> "$dir/serve.log" &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true' EXIT
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
for _ in $(seq 100); do
  [ "$(metric preroll_retention_passes_total)" != "" ] && [ "$(metric preroll_retention_passes_total)" -ge 1 ] 2>/dev/null && break
  sleep 0.2
done
rss=""
for at in 1 10 30 $passes; do
  while [ "$(metric preroll_retention_passes_total)" -lt "$at" ]; do sleep 0.2; done
  rss+=" after pass $at: $(awk '/VmRSS/ {print $2}' "/proc/$serve_pid/status") kB;"
done
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")
sum=$(metric preroll_retention_pass_seconds_sum)
count=$(metric preroll_retention_pass_seconds_count)
echo "serve: $count passes over $(metric preroll_retention_clip_files) files, mean $(python3 -c "print(round($sum/$count, 3))") s a pass; RSS$rss peak $hwm kB"
