# Sourced by the load scripts: finds the most streams that pass, then confirms it.
#
#   probe_then_confirm NAME WHAT
#
# For each N in "${streams[@]}" (ascending), `run N $probe` (skipped when probe is 0: every N
# is a candidate). Every N that passes its probe is a candidate; the largest is run for
# $confirm seconds first, and a confirm that fails (what keeps up for a minute can still
# drift behind over ten) steps down to the next candidate. `run N SECONDS` is the script's
# own and returns 0 when the run passed. NAME starts the messages, WHAT ends the success
# line. Returns 0 when some N was confirmed.
probe_then_confirm() {
  local name=$1 what=$2 passed=() n k
  if [ "$probe" -gt 0 ]; then
    for n in "${streams[@]}"; do
      if run "$n" "$probe"; then passed+=("$n"); else break; fi
    done
  else
    passed=("${streams[@]}")
  fi
  [ "${#passed[@]}" -gt 0 ] || { echo "$name: no N passed the probe" >&2; return 1; }
  for ((k = ${#passed[@]} - 1; k >= 0; k--)); do
    n=${passed[$k]}
    if run "$n" "$confirm"; then
      echo "$name: $n streams sustained for $confirm s $what"
      return 0
    fi
    echo "$name: $n streams passed the probe but not the $confirm s run" >&2
  done
  return 1
}
