"""One load run of `preroll serve` fed by `rtsp-replay` (see scripts/load-serve.sh).

N cameras, all the same file served by one rtsp-replay process, ingested by one
`preroll serve`; a clip is asked of the next camera in turn every --clip-every seconds.
Prints one result line and exits 0 when the run passed, 1 when it did not.

The run passes when, over the steady window (from --warm seconds to the end):
- every camera received the video frames the source holds for that time, less at most one
  second's worth (counts are taken at instants, and a stream starts from its keyframe);
- no RTP packet was lost (sequence gaps), no frame dropped, no camera reconnected;
- every clip asked for is done with no discontinuity, each within --late seconds of the
  moment its last frame arrived (its trigger plus its duration).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

TOKEN = "load-test-token-0123456789"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15; after the ")" they are the 12th and 13th.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def machine_idle():
    """(idle jiffies, all jiffies) of the whole machine."""
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    return cpu[3] + cpu[4], sum(cpu[:8])


class Api:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {TOKEN}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())


def start_replay(args, log):
    replay = subprocess.Popen(
        [args.replay, "--listen", "127.0.0.1:0", "--file", args.source],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    first = replay.stdout.readline()
    if "rtsp://" not in first:
        raise SystemExit(f"rtsp-replay did not start: {first!r}")
    addr = first.split("rtsp://", 1)[1].split()[0]

    def drain():
        for line in replay.stdout:
            log.write(line)
            log.flush()

    threading.Thread(target=drain, daemon=True).start()
    return replay, addr


def start_preroll(args, addr, run_dir, log):
    rec = os.path.abspath(os.path.join(run_dir, "rec"))
    shutil.rmtree(rec, ignore_errors=True)
    lines = [
        "[storage]",
        f'recordings = "{rec}"',
        "[api]",
        'bind = "127.0.0.1:0"',
        f'token = "{TOKEN}"',
        f"max_connections = {max(256, args.streams + 64)}",
    ]
    for k in range(1, args.streams + 1):
        lines += [
            "[[cameras]]",
            f'name = "cam{k}"',
            f'source = "rtsp://{addr}/cam{k}"',
            f"preroll_seconds = {args.ring}",
        ]
    config = os.path.join(run_dir, "preroll.toml")
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")
    env = dict(os.environ)
    env.setdefault("PREROLL_LOG", "warn")
    preroll = subprocess.Popen(
        [args.preroll, "serve", "--config", config],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    for line in preroll.stdout:
        if line.startswith("preroll: listening on "):
            base = line.split("listening on ", 1)[1].strip()
            break
    else:
        raise SystemExit("preroll serve did not start; see its log")
    threading.Thread(target=lambda: [None for _ in preroll.stdout], daemon=True).start()
    return preroll, Api(base)


def cameras(api):
    return {c["name"]: c for c in api.call("GET", "/api/cameras")}


class Clips:
    """Asks for clips and watches each until it is final, noting when that was seen."""

    def __init__(self, api, duration, lookback):
        self.api, self.duration, self.lookback = api, duration, lookback
        self.pending = {}  # id -> asked at (monotonic)
        self.final = []  # (asked at, seen final at, view)
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def ask(self, camera):
        asked = time.monotonic()
        try:
            view = self.api.call(
                "POST",
                f"/api/cameras/{camera}/clips",
                {"duration": self.duration, "lookback": self.lookback},
            )
        except Exception as e:  # noqa: BLE001 - a refused clip is a result of the run
            self.errors.append(f"{camera}: {e}")
            return
        with self.lock:
            self.pending[view["id"]] = asked

    def watch(self):
        while not self.stop.is_set():
            with self.lock:
                ids = list(self.pending.items())
            for cid, asked in ids:
                # Not before its last frame can have arrived.
                if time.monotonic() < asked + self.duration:
                    continue
                view = self.api.call("GET", f"/api/clips/{cid}")
                if view["state"] in ("done", "failed"):
                    with self.lock:
                        del self.pending[cid]
                        self.final.append((asked, time.monotonic(), view))
            time.sleep(0.05)

    def wait(self, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            with self.lock:
                if not self.pending:
                    break
            time.sleep(0.1)
        self.stop.set()
        self.thread.join()


def run(args):
    run_dir = os.path.join(args.dir, f"n{args.streams}-{args.seconds}s")
    os.makedirs(run_dir, exist_ok=True)
    log = open(os.path.join(run_dir, "log.txt"), "w")
    replay, addr = start_replay(args, log)
    preroll = None
    try:
        preroll, api = start_preroll(args, addr, run_dir, log)
        limit = time.monotonic() + 60 + args.streams * 0.2
        while True:
            health = api.call("GET", "/healthz")
            if health["cameras_connected"] == args.streams:
                break
            if time.monotonic() > limit:
                raise SystemExit(
                    f"only {health['cameras_connected']} of {args.streams} cameras connected"
                )
            time.sleep(0.5)
        t0 = time.monotonic()
        clips = Clips(api, args.clip_duration, args.clip_lookback)
        rss_max = 0
        next_clip, turn = t0 + args.warm / 2, 0
        before = None
        while True:
            now = time.monotonic()
            if before is None and now >= t0 + args.warm:
                before = (
                    cameras(api),
                    cpu_seconds(preroll.pid),
                    cpu_seconds(replay.pid),
                    machine_idle(),
                    time.monotonic(),
                )
            if now >= t0 + args.seconds:
                break
            if now >= next_clip:
                turn += 1
                threading.Thread(
                    target=clips.ask, args=(f"cam{(turn - 1) % args.streams + 1}",)
                ).start()
                next_clip += args.clip_every
            rss_max = max(rss_max, status_kb(preroll.pid, "VmRSS"))
            if preroll.poll() is not None or replay.poll() is not None:
                raise SystemExit("preroll serve or rtsp-replay ended during the run")
            time.sleep(0.25)
        after = (
            cameras(api),
            cpu_seconds(preroll.pid),
            cpu_seconds(replay.pid),
            machine_idle(),
            time.monotonic(),
        )
        rss_end = status_kb(preroll.pid, "VmRSS")
        rss_peak = status_kb(preroll.pid, "VmHWM")
        clips.wait(args.clip_duration + 30)
    finally:
        if preroll is not None and preroll.poll() is None:
            preroll.send_signal(signal.SIGTERM)
            try:
                preroll.wait(60)
            except subprocess.TimeoutExpired:
                preroll.kill()
        replay.kill()
        replay.wait()

    (cams0, p0, r0, idle0, w0), (cams1, p1, r1, idle1, w1) = before, after
    window = w1 - w0
    want = args.rate * window
    got = {n: cams1[n]["frames"] - cams0[n]["frames"] for n in cams1}
    short = sorted(n for n, g in got.items() if g < want - args.rate)
    lost = sum(c["lost_packets"] for c in cams1.values())
    dropped = sum(c["dropped_frames"] for c in cams1.values())
    reconnects = sum(c["reconnects"] for c in cams1.values())
    media = sum(c["ring_bytes"] for c in cams1.values())
    late = [fin - (asked + args.clip_duration) for asked, fin, _ in clips.final]
    bad = [
        v["id"]
        for _, _, v in clips.final
        if v["state"] != "done" or v["discontinuities"] != 0
    ]
    unfinished = len(clips.pending) + len(clips.errors)
    too_late = [x for x in late if x > args.late]
    idle = (idle1[0] - idle0[0]) / max(1, idle1[1] - idle0[1])
    ok = (
        len(cams1) == args.streams
        and not short
        and lost == 0
        and dropped == 0
        and reconnects == 0
        and not bad
        and unfinished == 0
        and not too_late
        and late
    )
    print(
        f"N={args.streams} {args.seconds} s: {'PASS' if ok else 'FAIL'}; "
        f"steady {window:.0f} s: fewest frames {min(got.values())} of {want:.0f} "
        f"({len(short)} short), {lost} lost packets, {dropped} dropped, {reconnects} reconnects; "
        f"clips {len(clips.final)} final ({len(bad)} bad, {unfinished} unfinished), "
        f"finalize after last frame median {statistics.median(late) if late else 0:.2f} s "
        f"max {max(late) if late else 0:.2f} s ({len(too_late)} over {args.late} s); "
        f"preroll CPU {100 * (p1 - p0) / window:.1f} % of a core "
        f"({100 * (p1 - p0) / window / args.streams:.3f} %/stream), "
        f"RSS {rss_end / 1024:.0f} MB at end (max sampled {rss_max / 1024:.0f} MB, "
        f"peak {rss_peak / 1024:.0f} MB) holding {media / 1e6:.0f} MB of media; "
        f"rtsp-replay CPU {100 * (r1 - r0) / window:.0f} % of a core; "
        f"machine idle {100 * idle:.0f} %",
        flush=True,
    )
    if short:
        print(f"  short: {', '.join(short[:10])}{' …' if len(short) > 10 else ''}")
    for e in clips.errors[:5]:
        print(f"  clip refused: {e}")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preroll", required=True)
    p.add_argument("--replay", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--streams", type=int, required=True)
    p.add_argument("--seconds", type=int, required=True)
    p.add_argument("--warm", type=int, default=30)
    p.add_argument("--rate", type=float, required=True, help="video frames a second")
    p.add_argument("--ring", type=float, default=10)
    p.add_argument("--clip-every", type=float, default=10)
    p.add_argument("--clip-duration", type=float, default=5)
    p.add_argument("--clip-lookback", type=float, default=5)
    p.add_argument("--late", type=float, default=2.0)
    sys.exit(run(p.parse_args()))


if __name__ == "__main__":
    main()
