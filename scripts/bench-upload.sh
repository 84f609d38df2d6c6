#!/usr/bin/env bash
# Benchmark: uploading a clip to an S3-compatible server (SeaweedFS on loopback, as the tests
# run it) with `preroll upload` (8 MiB parts, each MD5'd as it is read, then the copy checked
# by HEAD) against curl's `--aws-sigv4 -T` of the same file in one PUT (no check), in the
# same run: wall time, throughput, and CPU seconds per MB of the uploading process.
#
#   scripts/bench-upload.sh                    # a 512 MiB file made in target/bench
#   BENCH_RUNS=5 BENCH_MB=1024 scripts/bench-upload.sh
#
# The server runs on the same 2 cores, so both tools share them with it alike.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
runs=${BENCH_RUNS:-3}
mb=${BENCH_MB:-512}
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
input="$dir/upload-$mb.bin"
[ -f "$input" ] && [ "$(stat -c %s "$input")" -eq $((mb << 20)) ] ||
  head -c $((mb << 20)) /dev/urandom > "$input"
bytes=$(stat -c %s "$input")

weed=target/seaweedfs/bin/weed
key=bench-access-key secret=bench-secret-key-0123456789
data=$(mktemp -d "$dir/weed.XXXX")
read -r -a ports < <(python3 -c '
import socket
s = [socket.socket() for _ in range(13)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
names=(s3.port master.port master.port.grpc volume.port volume.port.grpc filer.port
  filer.port.grpc s3.port.grpc s3.port.iceberg s3.port.lance webdav.port admin.port admin.port.grpc)
flags=()
for i in "${!names[@]}"; do flags+=("-${names[$i]}=${ports[$i]}"); done
AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret "$weed" mini -dir="$data" -ip=127.0.0.1 \
  -ip.bind=127.0.0.1 -admin.ui=false -master.telemetry=false -s3.autoCreateBucket=false \
  "${flags[@]}" > "$data/weed.log" 2>&1 &
weed_pid=$!
trap 'kill $weed_pid 2>/dev/null; wait $weed_pid 2>/dev/null; rm -rf "$data"' EXIT
endpoint="http://127.0.0.1:${ports[0]}"
sig=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret")
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${sig[@]}" "$endpoint/")" = 200 ] && break
  sleep 0.2
done
curl -sf "${sig[@]}" -X PUT "$endpoint/bench-upload" > /dev/null

cargo build --release --quiet
cat > "$data/preroll.toml" <<EOF
[api]
token = "bench-token-0123456789"
[storage]
recordings = "$data/recordings"
[storage.remote]
url = "s3://bench-upload/preroll"
endpoint = "$endpoint"
[node]
name = "bench"
[[cameras]]
name = "demo"
source = "demo"
EOF
cat "$input" > /dev/null # warm the page cache

source scripts/lib/measure.sh
out="$data/none"
export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret
{
  measure preroll target/release/preroll upload --config "$data/preroll.toml" "$input"
  echo "# $(cat "$dir/stdout.txt")"
  measure curl curl -sf "${sig[@]}" -T "$input" "$endpoint/bench-upload/curl/upload.bin"
} > "$dir/results-upload.txt"
grep '^#' "$dir/results-upload.txt" | sed 's/^# /  /'
grep -v '^#' "$dir/results-upload.txt" | awk -v bytes="$bytes" '
  { t[$1] = $2; rss[$1] = $3; cpu[$1] = $4 + $5; order[NR] = $1 }
  END {
    printf "  %-8s %9s %8s %14s %12s %16s\n", "tool", "seconds", "MB/s", "CPU ms per MB", "peak RSS MB", "preroll / curl"
    for (i = 1; i <= NR; i++) {
      n = order[i]
      printf "  %-8s %9.2f %8.0f %14.2f %12.1f %16s\n", n, t[n], bytes / t[n] / 1e6, \
        cpu[n] * 1000 / (bytes / 1e6), rss[n] / 1024, \
        (n == "preroll" ? sprintf("%.2f (speed)", t["curl"] / t["preroll"]) : "-")
    }
  }'
echo "(median of $runs runs; $bytes bytes; SeaweedFS on the same $(nproc) cores; kernel $(uname -r))"
