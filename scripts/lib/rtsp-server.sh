# Sourced by the benchmark scripts: serves N copies of one MP4 over RTSP.
#
#   start_rtsp_server N SRC DIR   # sets server_pid and urls (rtsp://127.0.0.1:PORT/cam1 ...)
#   cpu_of PID                    # CPU seconds (user + system) the process used so far
#
# The server is tests/support/rtsp_server.py (gst-rtsp-server) with `file-loop:` mounts: the
# file sent as it is, paced in real time, looped with continuous timestamps. Logs go to DIR.

server_pid=""
urls=()

start_rtsp_server() {
  local n=$1 src=$2 dir=$3 mounts=() base="" i
  for i in $(seq "$n"); do mounts+=(--mount "cam$i=file-loop:$src"); done
  /usr/bin/python3 tests/support/rtsp_server.py --port 0 "${mounts[@]}" > "$dir/server.out" 2> "$dir/server.err" &
  server_pid=$!
  for _ in $(seq 100); do grep -q READY "$dir/server.out" 2>/dev/null && break; sleep 0.2; done
  base=$(awk '/READY/ {print $2}' "$dir/server.out")
  [ -n "$base" ] || { echo "RTSP server did not start:" >&2; cat "$dir/server.err" >&2; return 1; }
  urls=()
  for i in $(seq "$n"); do urls+=("$base/cam$i"); done
}

cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
