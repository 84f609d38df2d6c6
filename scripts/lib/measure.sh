# Sourced by the benchmark scripts that time one tool against another on the same input.
#
#   measure NAME COMMAND...   # prints "NAME seconds peak_rss_kb user_s sys_s" of the median
#                             # (by seconds) of $runs runs
#
# Before each run the output "$out" (and its .partial) is removed and the disk synced; the
# command's stdout and stderr of the last run are left in "$dir/stdout.txt" and
# "$dir/stderr.txt". A failing run ends the script with its stderr.

measure() {
  local name=$1; shift
  local results=()
  for _ in $(seq "$runs"); do
    rm -f "$out" "$out.partial"
    sync
    /usr/bin/time -f "%e %M %U %S" -o "$dir/time.txt" "$@" >"$dir/stdout.txt" 2>"$dir/stderr.txt" || {
      echo "$name failed:" >&2; cat "$dir/stderr.txt" >&2; exit 1; }
    results+=("$(tail -1 "$dir/time.txt")")
  done
  printf '%s\n' "${results[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p" | sed "s/^/$name /"
}
