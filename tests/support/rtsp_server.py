#!/usr/bin/python3
"""A real RTSP server for preroll's tests and benchmarks, built on GStreamer's gst-rtsp-server.

Run it with Debian's /usr/bin/python3: that is the interpreter python3-gi is installed for
(another python3 on PATH may not have `gi`).

    rtsp_server.py [--port N] --mount NAME=SPEC [--mount NAME=SPEC ...]
                   [--user U --password P --auth basic|digest]

SPEC is one of

    live:VIDEO[@WxH][+AUDIO]
                            a live test pattern, 640x360 (or WxH, e.g.
                            `live:h264@1280x720+aac`) at 25 fps, 1 s GOP (see `?gop=N`), optional
                            audio. VIDEO is h264 (High, no B-frames), h264b (High with
                            2 B-frames), h265 (Main, no B-frames) or h265b (Main with
                            2 B-frames). One encoder per mount, shared by all its
                            clients, as with a camera. (A camera that changes its
                            resolution is a server restarted on the same port with the
                            same mount name at another size.)

AUDIO is CODEC[/RATE[/CHANNELS]], written like an SDP rtpmap (`l16/16000/2`):

    aac    AAC-LC (RFC 3640 mpeg4-generic) of a 440 Hz sine; default 48000 Hz, mono;
           any rate voaacenc takes (8000 to 48000 tested), 1 or 2 channels
    pcmu   G.711 mu-law (payload type 0 at 8000 Hz mono, dynamic otherwise); default
           8000 Hz, mono only
    pcma   G.711 A-law (payload type 8 at 8000 Hz mono); default 8000 Hz, mono only
    l16    16-bit big-endian linear PCM (RFC 3551 L16); default 16000 Hz, mono; 1 or
           2 channels
    opus   Opus (RFC 7587) of a 440 Hz sine; 48000 Hz (the only rate Opus RTP has), 1 or
           2 channels (`sprop-stereo` says which)
    latm   AAC-LC in MP4A-LATM (RFC 3016, rtpmp4apay: cpresent=0, the StreamMuxConfig in
           the SDP's config=) of a 440 Hz sine; default 48000 Hz, mono; rates and
           channels as for aac
    g722   G.722 (avenc_g722, RFC 3551: an RTP clock of 8000 for 16 kHz audio); mono: a
           codec clips do not keep

The G.711 and L16 variants send pink noise rather than a sine: any stretch of a few
hundred samples then occurs once in a stream, so a test can find where a recording's
audio lies in another client's capture and compare them sample for sample. (Two clients
of a mount get the same packets: the pipeline is shared.)
    file:/abs/path.mp4      an existing MP4 or MOV (H.264 or H.265; optional AAC, or G.711
                            µ-law/A-law at 8000 Hz mono as `ulaw`/`alaw` in a MOV) sent as
                            it is, paced in real time, once; every client gets it from the
                            start.
    file-loop:/abs/path.mp4 the same, looped forever with continuous timestamps.

Any SPEC may end in `?drop-every=N`: about one video RTP packet in N is thrown away after
the payloader has numbered it, so clients see sequence gaps, as on a lossy network. (A
payloader that pushes a frame's packets as one list loses the whole list.)

A live SPEC may end in `?params=sdp` (after drop-every, joined by `&`): the video's
parameter sets (SPS/PPS, VPS) are only in the SDP, never in-band before keyframes, as some
cameras send them (h264 and h264b; the H.265 encoder repeats them itself).

A live SPEC may end in `?clock`: instead of the test pattern, each picture carries the
wall-clock time it was made as a barcode, for measuring a viewer's latency. The value is
floor(unix_time * 25) mod 65536 (the number of the 40 ms tick since the epoch), in 16 blocks
across the top quarter of the picture, bit 0 leftmost, white for 1 and black for 0; diagonal
stripes move below it so the encoder makes real P-frames. A viewer that reads value v at
time t is (floor(t * 25) - v) mod 65536 ticks of 40 ms behind the source.

A live SPEC may also end in `?gop=N` (joined to the other options by `&`, e.g.
`live:h264?gop=250&drop-every=50`): a keyframe every N frames (1 to 3000) instead of every
25, i.e. a GOP of N/25 s. `gop=250` is a 10 s GOP, as cameras with long GOPs have (the
stream then carries no keyframe for 10 s; the encoder sets no scene cuts).

It binds 127.0.0.1 only (port 0 picks a free one), serves RTP over TCP (interleaved) and
UDP, prints exactly one line `READY rtsp://127.0.0.1:PORT` on stdout once it accepts
connections, and exits with status 0 on SIGTERM or SIGINT. Errors go to stderr.

SIGUSR1 drops every client (closes its connection and tears down its sessions) while the
server keeps running and accepts new clients at once: a camera that resets its streams.
It prints `KICKED N` on stdout, N being the number of clients dropped.
"""

import argparse
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstPbutils", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstPbutils, GstRtsp, GstRtspServer  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 360, 25

# Video encoders for live mounts; each ends in payloader pay0.
#
# - key-int-max={gop} (FPS, or the mount's `?gop=N`) with scenecut=0: a fixed GOP, 1 s by
#   default, as cameras have. (Without scenecut=0,
#   x264 without lookahead took the scrolling pattern for scene cuts and put an IDR every
#   8 frames or so.)
# - tune=zerolatency: the encoder holds no frames back (no lookahead, no frame threads), so
#   what a client receives is as fresh as a camera's output. It also turns B-frames off,
#   which is why the B-frame variants set their own options instead.
# - sliced-threads=false: zerolatency would cut each frame into one slice per thread, and
#   rtph264pay then repeats SPS/PPS before every slice of a keyframe, which makes ffmpeg
#   split that keyframe into two access units with the same timestamp.
# - config-interval=-1: SPS/PPS (and VPS) in-band before every keyframe, as most cameras
#   send them, besides the copy in the SDP. `?params=sdp` makes that 0 and also stops x264
#   from repeating them (repeat-headers=0): the SDP then has the only copy.
# - B-frames (h264b, h265b) are what make decode order differ from presentation order;
#   b-adapt off puts both B-frames in every GOP, a short lookahead keeps the delay small.
LIVE_VIDEO = {
    "h264": (
        "x264enc speed-preset=veryfast tune=zerolatency key-int-max={gop} bitrate=1000"
        " sliced-threads=false option-string=scenecut=0{repeat}"
        " ! video/x-h264,profile=high"
        " ! rtph264pay name=pay0 pt=96 config-interval={interval}"
    ),
    "h264b": (
        "x264enc speed-preset=veryfast key-int-max={gop} bitrate=1000"
        " bframes=2 b-adapt=false rc-lookahead=5 sync-lookahead=0 option-string=scenecut=0{repeat}"
        " ! video/x-h264,profile=high"
        " ! rtph264pay name=pay0 pt=96 config-interval={interval}"
    ),
    "h265": (
        "x265enc speed-preset=ultrafast tune=zerolatency key-int-max={gop} bitrate=800"
        " option-string=scenecut=0"
        " ! video/x-h265,profile=main"
        " ! rtph265pay name=pay0 pt=96 config-interval={interval}"
    ),
    "h265b": (
        "x265enc speed-preset=ultrafast key-int-max={gop} bitrate=800"
        " option-string=bframes=2:b-adapt=0:rc-lookahead=5:scenecut=0"
        " ! video/x-h265,profile=main"
        " ! rtph265pay name=pay0 pt=96 config-interval={interval}"
    ),
}

# A moving picture (the SMPTE bars scroll sideways), so consecutive frames differ and the
# encoder produces real P/B-frames rather than empty skips.
def live_video_source(width, height):
    return (
        "videotestsrc is-live=true pattern=smpte horizontal-speed=4"
        f" ! video/x-raw,format=I420,width={width},height={height},framerate={FPS}/1"
    )


def video_size(size):
    """(width, height) of a live mount's `@WxH` option (even sizes, as 4:2:0 needs)."""
    w, sep, h = size.partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise SpecError(f"bad size {size!r}: want WxH, e.g. 1280x720")
    w, h = int(w), int(h)
    if not (16 <= w <= 3840 and 16 <= h <= 2160) or w % 2 or h % 2:
        raise SpecError(f"size {size!r}: want even sizes from 16x16 to 3840x2160")
    return w, h

# Live audio variants: (default rate, allowed channel counts, launch line template). Each
# ends in payloader pay1. {rate} and {channels} are filled in; {pt} is the static payload
# type at 8000 Hz mono where RFC 3551 has one, else the dynamic 97.
LIVE_AUDIO = {
    # AAC-LC as cameras send it (RFC 3640 mpeg4-generic).
    "aac": (
        48000,
        (1, 2),
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.3"
        " ! audio/x-raw,rate={rate},channels={channels}"
        " ! audioconvert ! voaacenc bitrate={bitrate}"
        " ! rtpmp4gpay name=pay1 pt=97",
    ),
    "pcmu": (
        8000,
        (1,),
        "audiotestsrc is-live=true wave=pink-noise volume=0.3"
        " ! audio/x-raw,rate={rate},channels=1"
        # 20 ms packets (160 samples at 8 kHz), as cameras send G.711.
        " ! audioconvert ! mulawenc ! rtppcmupay name=pay1 pt={pt} max-ptime=20000000",
    ),
    "pcma": (
        8000,
        (1,),
        "audiotestsrc is-live=true wave=pink-noise volume=0.3"
        " ! audio/x-raw,rate={rate},channels=1"
        " ! audioconvert ! alawenc ! rtppcmapay name=pay1 pt={pt}",
    ),
    "l16": (
        16000,
        (1, 2),
        "audiotestsrc is-live=true wave=pink-noise volume=0.3"
        " ! audioconvert"
        " ! audio/x-raw,format=S16BE,layout=interleaved,rate={rate},channels={channels}"
        " ! rtpL16pay name=pay1 pt=97",
    ),
    "latm": (
        48000,
        (1, 2),
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.3"
        " ! audio/x-raw,rate={rate},channels={channels}"
        " ! audioconvert ! voaacenc bitrate={bitrate}"
        " ! rtpmp4apay name=pay1 pt=97",
    ),
    # G.722: a codec clips do not keep, for the test that unsupported audio is named once
    # and the video recorded.
    "g722": (
        16000,
        (1,),
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.3"
        " ! audio/x-raw,rate=16000,channels=1"
        " ! audioconvert ! avenc_g722 ! rtpg722pay name=pay1 pt=9",
    ),
    "opus": (
        48000,
        (1, 2),
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.3"
        " ! audio/x-raw,rate={rate},channels={channels}"
        " ! audioconvert ! opusenc ! rtpopuspay name=pay1 pt=97",
    ),
}
STATIC_PT = {"pcmu": 0, "pcma": 8}


def audio_launch(audio):
    """The launch line of a live mount's AUDIO part (CODEC[/RATE[/CHANNELS]])."""
    codec, *rest = audio.split("/")
    if codec not in LIVE_AUDIO or len(rest) > 2 or not all(r.isdigit() for r in rest):
        raise SpecError(
            f"unknown audio {audio!r}: want CODEC[/RATE[/CHANNELS]], CODEC one of "
            + ", ".join(LIVE_AUDIO)
        )
    default_rate, layouts, launch = LIVE_AUDIO[codec]
    rate = int(rest[0]) if rest else default_rate
    channels = int(rest[1]) if len(rest) > 1 else 1
    if channels not in layouts or not 1000 <= rate <= 192000:
        raise SpecError(f"audio {audio!r}: {codec} takes channels {layouts}, rate 1000-192000")
    pt = STATIC_PT.get(codec, 97) if (rate, channels) == (8000, 1) else 97
    # voaacenc refuses bitrates too high for the rate: about 6 bits per sample and channel.
    bitrate = min(64000, rate * 6) * channels
    return launch.format(rate=rate, channels=channels, pt=pt, bitrate=bitrate)

# File mounts pass the coded video on untouched: the parser only frames it for the
# payloader, which adds in-band parameter sets as for live mounts.
FILE_VIDEO = {
    "H.264": "h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1",
    "H.265": "h265parse ! rtph265pay name=pay0 pt=96 config-interval=-1",
}
FILE_AUDIO = {
    "aac": "aacparse ! rtpmp4gpay name=pay1 pt=97",
    # 20 ms packets, as cameras (and the live mounts) send G.711.
    "pcmu": "rtppcmupay name=pay1 pt=0 min-ptime=20000000 max-ptime=20000000",
    "pcma": "rtppcmapay name=pay1 pt=8 min-ptime=20000000 max-ptime=20000000",
}


class SpecError(Exception):
    pass


CLOCK_BITS = 16


def clock_source(width, height):
    """Raw pictures pushed by a ClockPainter (see `?clock`)."""
    return (
        "appsrc name=clock is-live=true format=time do-timestamp=true"
        f" caps=video/x-raw,format=I420,width={width},height={height},framerate={FPS}/1"
    )


class ClockPainter:
    """Feeds a `?clock` mount's appsrc: one picture per 40 ms tick of the wall clock, its
    barcode the tick's number, until the media is unprepared."""

    def __init__(self, media):
        src = media.get_element().get_by_name("clock")
        caps = src.get_property("caps").get_structure(0)
        self.src = src
        self.width, self.height = caps.get_value("width"), caps.get_value("height")
        # A sawtooth twice the width: row r of tick n is a window into it, so stripes run
        # diagonally and move 4 pixels a tick.
        self.saw = bytes((x * 4) % 200 + 30 for x in range(2 * self.width))
        self.chroma = bytes([128]) * (self.width * self.height // 2)
        self.ended = threading.Event()
        media.connect("unprepared", lambda _media: self.ended.set())
        threading.Thread(target=self.run, daemon=True).start()

    def picture(self, n):
        w, h = self.width, self.height
        block = w // CLOCK_BITS
        row = b"".join(
            bytes([235 if (n >> b) & 1 else 16]) * block for b in range(CLOCK_BITS)
        )
        row += bytes([16]) * (w - len(row))
        band = h // 4
        rows = [row * band]
        for r in range(band, h):
            at = (n * 4 + r) % w
            rows.append(self.saw[at : at + w])
        return b"".join(rows) + self.chroma

    def run(self):
        tick = 1 / FPS
        # The appsrc refuses buffers (FLUSHING) while the media changes state. A painter
        # that stopped at the first refusal would leave a mount that answers RTSP and
        # never sends a frame (a UI test once saw a `?clock` camera connected with no
        # frame for a minute). It stops when the media is unprepared, or after a minute of
        # refusals (a media that was never prepared).
        refused_since = None
        # Every tick is painted, in order: a thread that wakes late (a loaded machine)
        # catches up rather than skipping pictures, unless it fell more than a second
        # behind. And pictures are stamped on a grid of exact 40 ms steps from an anchor in
        # the pipeline's running time, as a camera's encoder clock would: stamped when
        # pushed (do-timestamp), they carried this thread's wake-up jitter. The anchor moves
        # when the grid drifts off the running time by more than the catch-up allows (a
        # state change, a stalled thread).
        anchor = None
        step = Gst.SECOND // FPS
        n = None
        while not self.ended.is_set():
            if n is None or time.time() - (n + 1) * tick > 1.0:
                n = int(time.time() // tick) + 1
            else:
                n += 1
            time.sleep(max(0.0, n * tick - time.time()))
            buf = Gst.Buffer.new_wrapped(self.picture(n % (1 << CLOCK_BITS)))
            clock = self.src.get_clock()
            if clock is not None:
                running = clock.get_time() - self.src.get_base_time()
                drift = anchor[0] + (n - anchor[1]) * step - running if anchor else 0
                if anchor is None or abs(drift) > 3 * Gst.SECOND // 2:
                    anchor = (running, n)
                buf.pts = anchor[0] + (n - anchor[1]) * step
                buf.duration = step
            if self.src.emit("push-buffer", buf) == Gst.FlowReturn.OK:
                refused_since = None
            elif refused_since is None:
                refused_since = time.monotonic()
            elif time.monotonic() - refused_since > 60:
                return


def live_launch(spec, inband=True, gop=FPS, clock=False):
    """The launch line of a live:VIDEO[@WxH][+AUDIO] mount; `inband` False keeps the
    parameter sets out of the stream (SDP only); `gop` is the keyframe interval in frames;
    `clock` draws pictures that carry the time (see `?clock`)."""
    video, _, audio = spec.partition("+")
    video, at, size = video.partition("@")
    if video not in LIVE_VIDEO:
        raise SpecError(
            f"unknown live spec {spec!r}: want VIDEO[@WxH][+AUDIO], VIDEO one of "
            + ", ".join(LIVE_VIDEO)
        )
    width, height = video_size(size) if at else (WIDTH, HEIGHT)
    encode = LIVE_VIDEO[video].format(
        interval=-1 if inband else 0, repeat="" if inband else ":repeat-headers=0", gop=gop
    )
    source = clock_source(width, height) if clock else live_video_source(width, height)
    parts = [f"{source} ! {encode}"]
    if audio:
        parts.append(audio_launch(audio))
    return "( " + " ".join(parts) + " )"


def probe_file(path):
    """(video codec name, audio kind in FILE_AUDIO or None) of an MP4, found by GStreamer's own discoverer so a
    file the server cannot demux is refused before READY, not when a client connects."""
    if not path.startswith("/"):
        raise SpecError(f"file mounts need an absolute path, got {path!r}")
    try:
        info = GstPbutils.Discoverer.new(10 * Gst.SECOND).discover_uri(
            Gst.filename_to_uri(path)
        )
    except GLib.Error as e:
        raise SpecError(f"cannot read {path}: {e.message}") from None
    container = info.get_stream_info().get_caps().get_structure(0).get_name()
    if container != "video/quicktime":
        raise SpecError(f"{path} is {container}, not an MP4")
    videos = info.get_video_streams()
    if not videos:
        raise SpecError(f"{path} has no video stream")
    video = GstPbutils.pb_utils_get_codec_description(videos[0].get_caps())
    codec = next((c for c in FILE_VIDEO if video.startswith(c)), None)
    if codec is None:
        raise SpecError(f"{path}: video is {video}, want H.264 or H.265")
    audio = None
    for a in info.get_audio_streams():
        s = a.get_caps().get_structure(0)
        if s.get_name() == "audio/mpeg" and s.get_value("mpegversion") in (2, 4):
            audio = "aac"
        elif s.get_name() in ("audio/x-mulaw", "audio/x-alaw"):
            if (s.get_value("rate"), s.get_value("channels")) != (8000, 1):
                raise SpecError(f"{path}: G.711 must be 8000 Hz mono for payload types 0/8")
            audio = "pcmu" if s.get_name() == "audio/x-mulaw" else "pcma"
        if audio:
            break
    return codec, audio


def file_launch(path):
    """The launch line of a file mount: demux and payload, no decoding or encoding."""
    codec, audio = probe_file(path)
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    parts = [
        f'filesrc location="{location}" ! qtdemux name=demux',
        f"demux.video_0 ! queue ! {FILE_VIDEO[codec]}",
    ]
    if audio:
        parts.append(f"demux.audio_0 ! queue ! {FILE_AUDIO[audio]}")
    return "( " + " ".join(parts) + " )"


class Looper:
    """Loops one media's qtdemux forever, with timestamps that keep going up.

    Downstream of the demuxer (parsers, payloaders, the RTSP session) nothing may learn
    that the file ended, so when every demuxed stream has reached its end:

    - the EOS events are dropped;
    - the demuxer alone gets a flushing seek back to 0, and the flush events it sends
      downstream for that seek are dropped too. (A non-flushing seek does not work: once
      EOS has passed a pad, the pad refuses data until a flush clears it. A flushing seek on
      the whole pipeline would reset its running time, and RTP timestamps with it.)
    - the demuxer restarts its timeline at 0, so its source pads get an offset that moves
      the new pass to where the previous one ended in running time, which is what RTP
      payloaders stamp packets with: clients see one endless stream.
    - audio buffers that lie before their segment are dropped at the demuxer: the AAC encoder's
      priming frame, which the file's edit list cuts (the segment starts 21 ms in). A
      payloader would number it, but the server never delivers it, so clients saw one lost
      audio packet at every pass. (Done in the probe that exists anyway: a Python callback
      per buffer costs the server real CPU with dozens of streams.)
    """

    def __init__(self, media):
        self.demux = media.get_element().get_by_name("demux")
        self.pads = []
        self.ended = set()
        self.segments = {}
        # Running time (as seen downstream, offset included) at which the current pass
        # ends: the end of its latest sample, in nanoseconds.
        self.pass_end = 0
        self.seek_seqnum = None
        self.demux.connect("pad-added", self.on_pad_added)

    def on_pad_added(self, _demux, pad):
        self.pads.append(pad)
        # Flush events reach only probes that ask for them by name.
        pad.add_probe(
            Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH, self.on_event
        )
        pad.add_probe(Gst.PadProbeType.BUFFER, self.on_buffer)

    def on_buffer(self, pad, info):
        buf = info.get_buffer()
        seg = self.segments.get(pad.get_name())
        if seg is not None and buf.pts != Gst.CLOCK_TIME_NONE:
            start = seg.to_running_time(Gst.Format.TIME, buf.pts)
            if start == Gst.CLOCK_TIME_NONE and pad.get_name().startswith("audio"):
                # Before the segment: the priming frame the edit list cuts (see above).
                # (Video is left alone: a frame there may be a reference for later ones.)
                return Gst.PadProbeReturn.DROP
            if start != Gst.CLOCK_TIME_NONE:
                duration = buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0
                self.pass_end = max(self.pass_end, start + duration)
        return Gst.PadProbeReturn.OK

    def on_event(self, pad, info):
        event = info.get_event()
        ours = event.get_seqnum() == self.seek_seqnum
        if event.type == Gst.EventType.SEGMENT:
            self.segments[pad.get_name()] = event.parse_segment()
        elif event.type in (Gst.EventType.FLUSH_START, Gst.EventType.FLUSH_STOP):
            if ours:
                return Gst.PadProbeReturn.DROP
            if event.type == Gst.EventType.FLUSH_STOP:
                # Someone else (the RTSP media, for a client's PLAY) seeked the whole
                # pipeline: running time starts again from 0, and so do we.
                self.reset()
        elif event.type == Gst.EventType.EOS:
            self.ended.add(pad.get_name())
            if len(self.ended) == len(self.pads):
                self.ended.clear()
                # Seeking from the streaming thread that is sending EOS would deadlock on
                # the demuxer's stream lock: do it from the main loop.
                GLib.idle_add(self.rewind)
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    def reset(self):
        self.pass_end = 0
        for pad in self.pads:
            pad.set_offset(0)

    def rewind(self):
        # After the flushing seek the demuxer's running time starts from 0 again; the
        # offset puts that 0 where the pass just played ended. (Probes see segments with
        # the pad's offset already applied, so pass_end is in that same timeline.)
        for pad in self.pads:
            pad.set_offset(self.pass_end)
        seek = Gst.Event.new_seek(
            1.0,
            Gst.Format.TIME,
            Gst.SeekFlags.FLUSH,
            Gst.SeekType.SET,
            0,
            Gst.SeekType.NONE,
            -1,
        )
        self.seek_seqnum = seek.get_seqnum()
        if not self.demux.send_event(seek):
            print("rtsp_server: cannot loop: seek to 0 failed", file=sys.stderr, flush=True)
        return GLib.SOURCE_REMOVE


def refuse_seeking(_factory, media):
    """Makes a live media answer "not seekable", as a camera does.

    videotestsrc says it can seek, so gst-rtsp-server would honour the `Range: npt=0-` that
    clients such as ffmpeg send with PLAY by seeking the shared pipeline back to 0: every
    client joining a live mount would restart the running time, and with it the RTP
    timestamps of everyone already watching. Answering the pipeline's SEEKING query at the
    payloaders makes the server skip that seek (the PLAY still succeeds).
    """

    def on_query(_pad, info):
        if info.get_query().type != Gst.QueryType.SEEKING:
            return Gst.PadProbeReturn.OK
        # A new SEEKING query already reads "not seekable", so answering it untouched says
        # what we want. (It could not be written here anyway: PyGObject's wrapper holds a
        # second reference to it, which makes it read-only.)
        return Gst.PadProbeReturn.HANDLED

    element = media.get_element()
    for name in ("pay0", "pay1"):
        pay = element.get_by_name(name)
        if pay is not None:
            pay.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, on_query)


def drop_packets(every):
    """A media-configure handler that throws away about one RTP packet of pay0 in `every`.
    The payloader has numbered the packets already, so the gaps are in the sequence."""

    def configure(_factory, media):
        count = [0]

        def on_data(_pad, info):
            # Packets pushed as a list (rtph264pay sends a frame's packets together) are
            # dropped as a whole when the Nth packet falls in the list.
            packets = 1
            if info.type & Gst.PadProbeType.BUFFER_LIST:
                packets = info.get_buffer_list().length()
            before = count[0]
            count[0] += packets
            if count[0] // every > before // every:
                return Gst.PadProbeReturn.DROP
            return Gst.PadProbeReturn.OK

        pay = media.get_element().get_by_name("pay0")
        pay.get_static_pad("src").add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, on_data
        )

    return configure


def make_factory(spec):
    spec, _, query = spec.partition("?")
    drop_every = None
    inband = True
    gop = FPS
    clock = False
    for option in query.split("&") if query else []:
        key, _, value = option.partition("=")
        if key == "drop-every" and value.isdigit() and int(value) >= 2:
            drop_every = int(value)
        elif key == "params" and value == "sdp" and spec.startswith("live:"):
            inband = False
        elif key == "gop" and value.isdigit() and 1 <= int(value) <= 3000 and spec.startswith("live:"):
            gop = int(value)
        elif key == "clock" and not value and spec.startswith("live:"):
            clock = True
        else:
            raise SpecError(
                f"unknown option {option!r} in {spec!r}: want drop-every=N (N >= 2)"
                " or, for live mounts, params=sdp, gop=N (1 <= N <= 3000) or clock"
            )
    kind, _, arg = spec.partition(":")
    factory = GstRtspServer.RTSPMediaFactory()
    if kind == "live":
        factory.set_launch(live_launch(arg, inband, gop, clock))
        # One encoder per mount, whatever the number of clients: that is a camera, and it
        # keeps the CPU cost of a mount fixed.
        factory.set_shared(True)
        factory.connect("media-configure", refuse_seeking)
        if clock:
            # The painter lives as long as its thread, which ends with the media.
            factory.connect("media-configure", lambda _factory, media: ClockPainter(media))
    elif kind in ("file", "file-loop"):
        factory.set_launch(file_launch(arg))
        # Each client gets its own pipeline, from the start of the file: a reconnecting
        # test sees the same media again, and a seek for one client cannot disturb another.
        factory.set_shared(False)
        if kind == "file-loop":
            # The Looper lives as long as the media: its probes and handlers hold it.
            factory.connect("media-configure", lambda _factory, media: Looper(media))
    else:
        raise SpecError(f"unknown mount kind {kind!r} in {spec!r}: want live, file or file-loop")
    if drop_every:
        factory.connect("media-configure", drop_packets(drop_every))
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
    return factory


def make_auth(method, user, password):
    """An RTSPAuth that lets `user` (and nobody else) see and play every mount."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    if method == "basic":
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    else:
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(user, password, token)
    return auth


def permissions():
    perms = GstRtspServer.RTSPPermissions()
    for permission in (
        GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS,
        GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
    ):
        perms.add_permission_for_role("user", permission, True)
    return perms


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free one)")
    p.add_argument("--mount", action="append", default=[], metavar="NAME=SPEC", required=True)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--auth", choices=("basic", "digest"))
    args = p.parse_args()
    if (args.auth is None) != (args.user is None) or (args.user is None) != (args.password is None):
        p.error("--user, --password and --auth go together")
    return args


def kick_all(server):
    """Closes every client's connection (SIGUSR1). Closing from the filter callback tears
    the client's sessions down as a lost connection would; the clients see EOF."""

    kicked = []

    def close(_server, client):
        kicked.append(client)
        client.close()
        return GstRtspServer.RTSPFilterResult.REMOVE

    # REMOVE leaves the client out of the returned list, so the callback counts them.
    server.client_filter(close)
    print(f"KICKED {len(kicked)}", flush=True)
    return GLib.SOURCE_CONTINUE


def main():
    args = parse_args()
    Gst.init(None)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    auth = make_auth(args.auth, args.user, args.password) if args.auth else None
    if auth:
        server.set_auth(auth)
    names = set()
    for m in args.mount:
        name, sep, spec = m.partition("=")
        name = name.strip("/")
        if not sep or not name or not spec:
            sys.exit(f"rtsp_server: bad --mount {m!r}: want NAME=SPEC")
        if name in names:
            sys.exit(f"rtsp_server: mount {name!r} given twice")
        names.add(name)
        try:
            factory = make_factory(spec)
        except SpecError as e:
            sys.exit(f"rtsp_server: mount {name!r}: {e}")
        if auth:
            factory.set_permissions(permissions())
        mounts.add_factory("/" + name, factory)

    loop = GLib.MainLoop()
    # attach() binds the socket now, so a taken port is reported here rather than later.
    if server.attach(None) == 0:
        sys.exit(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}")
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    # Installed before READY: SIGUSR1's default action would end the process.
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, kick_all, server)

    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
