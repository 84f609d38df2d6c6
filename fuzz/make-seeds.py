#!/usr/bin/python3
"""Builds the fuzz seed corpus (fuzz/seeds/<target>/) from real media.

ffmpeg encodes tiny clips (96x64, 10 fps, 0.5 s GOPs, so every segment stays well under the
64 KiB a chunk length can say) as fragmented MP4 through its HLS muxer; preroll itself writes
a finished clip and leaves a real `.partial` when killed with SIGKILL mid-recording. The
files are then packed into each target's input layout (see fuzz/bodies.rs).

    fuzz/make-seeds.py            # needs ffmpeg and target/release/preroll
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
PREROLL = ROOT / "target" / "release" / "preroll"

# name -> ffmpeg encoder arguments (video, then audio or nothing)
VARIANTS = {
    "h264-aac": ["-c:v", "libx264", "-bf", "0", "-c:a", "aac", "-b:a", "16k", "-ar", "16000"],
    "h264-bframes": ["-c:v", "libx264", "-bf", "2", "-an"],
    "h265": ["-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error", "-an"],
}


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, **kw)


def encode(name, args, work):
    """Two seconds of test pattern (+ tone) as init.mp4 + seg*.m4s; returns (init, segments)."""
    out = work / name
    out.mkdir()
    run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "2",
         "-pix_fmt", "yuv420p", "-g", "5", "-keyint_min", "5", "-b:v", "40k", *args,
         "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "0.5", "-hls_list_size", "0",
         "-hls_fmp4_init_filename", "init.mp4", str(out / "index.m3u8")])
    segments = sorted(out.glob("*.m4s"), key=lambda p: int("".join(c for c in p.stem if c.isdigit()) or 0))
    return (out / "init.mp4").read_bytes(), [p.read_bytes() for p in segments]


def with_init(init, rest=b""):
    return struct.pack("<H", len(init)) + init + rest


def chunk(flags, data):
    assert len(data) < 65536, f"a {len(data)}-byte chunk does not fit its u16 length"
    return bytes([flags]) + struct.pack("<H", len(data)) + data


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def preroll_files(work, media):
    """A finished clip written by preroll, and a .partial left by SIGKILL (paced replay)."""
    finished = work / "finished.mp4"
    run([str(PREROLL), "remux", str(work / "h264-aac"), "-o", str(finished)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = work / "killed.mp4"
    p = subprocess.Popen([str(PREROLL), "record", str(media), "-o", str(killed),
                          "--lookback", "0", "--duration", "30"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = Path(str(killed) + ".partial")
    deadline = time.time() + 20
    # Kill once the partial holds a header and several fragments' worth of bytes.
    while time.time() < deadline and (not partial.exists() or partial.stat().st_size < 22000):
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    return finished.read_bytes(), partial.read_bytes()


def progressive_seeds(work, finished):
    """Progressive MP4s: a clip preroll finished (its fragments hidden as free boxes), and
    ffmpeg's with the moov last and first, B-frames and audio."""
    write("progressive", "preroll-clip.mp4", finished)
    base = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "1",
            "-pix_fmt", "yuv420p", "-g", "5", "-b:v", "40k", "-c:v", "libx264", "-bf", "2",
            "-c:a", "aac", "-b:a", "16k"]
    for name, flags in {"moov-last.mp4": [], "faststart.mp4": ["-movflags", "+faststart"]}.items():
        out = work / name
        run([*base, *flags, str(out)])
        write("progressive", name, out.read_bytes())


def matroska_seeds(work):
    """Tiny Matroska files as ffmpeg and GStreamer write them: H.264 with AAC, with B-frames
    and 16-bit PCM, H.265, and a live one (Segment and Clusters of unknown size)."""
    lavfi = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "1",
             "-pix_fmt", "yuv420p", "-g", "5", "-b:v", "40k"]
    variants = {
        "h264-aac.mkv": ["-c:v", "libx264", "-bf", "0", "-c:a", "aac", "-b:a", "16k"],
        "h264-bframes-pcm.mkv": ["-c:v", "libx264", "-bf", "2", "-c:a", "pcm_s16le"],
        "h265.mkv": ["-c:v", "libx265", "-x265-params", "log-level=error", "-an"],
    }
    for name, args in variants.items():
        out = work / name
        run([*lavfi, *args, str(out)])
        write("matroska", name, out.read_bytes())
    ts = work / "live-src.ts"
    run([*lavfi, "-c:v", "libx264", "-bf", "0", "-c:a", "aac", "-b:a", "16k", str(ts)])
    live = work / "live.mkv"
    run(["gst-launch-1.0", "-q", "filesrc", f"location={ts}", "!", "tsdemux", "name=d",
         "d.", "!", "h264parse", "!", "queue", "!", "matroskamux", "streamable=true", "name=m",
         "!", "filesink", f"location={live}", "d.", "!", "aacparse", "!", "queue", "!", "m."])
    write("matroska", "live.mkv", live.read_bytes())


def rtsp_seeds():
    """What GStreamer's RTSP server sends a client (OPTIONS, DESCRIBE, SETUP over TCP and UDP,
    PLAY and a moment of interleaved RTP and RTCP; a Digest challenge), each behind a first
    byte that sets the size of the fuzz target's reads."""
    server = ROOT / "tests" / "support" / "rtsp_server.py"

    def session(extra, requests, seconds):
        proc = subprocess.Popen(["/usr/bin/python3", str(server), "--mount", "cam=live:h264+aac",
                                 *extra], stdout=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().split()[1] + "/cam"
            import socket
            conn = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])))
            got = b""
            for n, (method, target, headers) in enumerate(requests, 1):
                conn.sendall(f"{method} {url}{target} RTSP/1.0\r\nCSeq: {n}\r\n{headers}"
                             f"Session: {{session}}\r\n\r\n".replace(
                                 "Session: {session}\r\n", session_of(got)).encode())
                conn.settimeout(2)
                chunk = conn.recv(65536)
                got += chunk
                while b"\r\n\r\n" not in chunk:
                    chunk = conn.recv(65536)
                    got += chunk
            conn.settimeout(0.2)
            end = time.time() + seconds
            while time.time() < end and len(got) < 60000:
                try:
                    got += conn.recv(65536)
                except OSError:
                    break
            return got[:60000]
        finally:
            proc.terminate()
            proc.wait()

    def session_of(got):
        for line in got.decode("latin-1").split("\r\n"):
            if line.lower().startswith("session:"):
                return f"Session: {line.split(':', 1)[1].split(';')[0].strip()}\r\n"
        return ""

    tcp = [("OPTIONS", "", ""), ("DESCRIBE", "", "Accept: application/sdp\r\n"),
           ("SETUP", "/stream=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"),
           ("SETUP", "/stream=1", "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"),
           ("PLAY", "", "Range: npt=0.000-\r\n")]
    write("rtsp_camera", "gst-tcp-play", b"\x0f" + session([], tcp, 1.5))
    write("rtsp_camera", "gst-tcp-play-whole", b"\xff" + session([], tcp, 0.5))
    udp = tcp[:2] + [("SETUP", "/stream=0",
                      "Transport: RTP/AVP;unicast;client_port=40000-40001\r\n")]
    write("rtsp_camera", "gst-udp-setup", b"\x03" + session([], udp, 0))
    digest = ["--user", "u", "--password", "p", "--auth", "digest"]
    write("rtsp_camera", "gst-digest-challenge", b"\x07" + session(digest, tcp[:2], 0))


def main():
    if sys.argv[1:] == ["rtsp_camera"]:
        return rtsp_seeds()
    if not PREROLL.exists():
        sys.exit(f"{PREROLL} is missing: run `cargo build --release` first")
    shutil.rmtree(SEEDS, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        media = {name: encode(name, args, work) for name, args in VARIANTS.items()}
        # A looped file camera for the SIGKILL partial: the H.264+AAC segments as one file.
        looped = work / "camera.mp4"
        init, segs = media["h264-aac"]
        looped.write_bytes(init + b"".join(segs))
        finished, partial = preroll_files(work, looped)

        for name, (init, segs) in media.items():
            write("boxes", f"{name}-init.mp4", init)
            write("boxes", f"{name}-segment.m4s", segs[1])
            write("init_fragments", name, with_init(init, b"".join(segs[:2])))
            write("clip_writer", name,
                  with_init(init, b"".join(chunk(0, s) for s in segs)))
        write("boxes", "preroll-clip.mp4", finished)
        write("boxes", "preroll-partial.mp4.partial", partial)
        progressive_seeds(work, finished)

        # Reconnects and codec changes: new streams restart timestamps; an H.265 init
        # arrives mid-clip and its segments follow.
        h264, h265 = media["h264-aac"], media["h265"]
        write("clip_writer", "reconnect",
              with_init(h264[0], chunk(0, h264[1][0]) + chunk(0, h264[1][1])
                        + chunk(1, h264[1][0]) + chunk(0, h264[1][1])))
        write("clip_writer", "codec-change",
              with_init(h264[0], chunk(0, h264[1][0]) + chunk(3, h265[0])
                        + chunk(0, h265[1][0]) + chunk(0, h265[1][1])))

        write("recover", "killed.partial", partial)
        write("recover", "killed-torn.partial", partial[: len(partial) - 700])
        write("recover", "finished-clip", finished)
        write("recover", "header-only", partial[:9000])
        matroska_seeds(work)
    rtsp_seeds()
    for d in sorted(SEEDS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
