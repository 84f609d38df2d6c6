#!/usr/bin/python3
"""A hostile RTSP camera for preroll's bound tests: it speaks just enough RTSP to be taken for
a camera, then misbehaves.

    hostile_camera.py MODE

MODE is one of

    huge-describe   answers DESCRIBE with "Content-Length: 200000000" and streams that many
                    bytes of SDP-looking lines (as a camera that once took preroll's RSS to
                    a gigabyte did)
    flood           a valid H.264 SDP; SETUP assigns interleaved channels 0-1, and after
                    PLAY it sends nothing but interleaved frames on channel 9, which no
                    stream was set up on, as fast as the client reads them
    huge-header     answers the first request with a header line that never ends (100 MB,
                    no CRLF)
    garbage         sends a letter, then random bytes without a line end, from the moment a
                    client connects
    bad-sdp         answers DESCRIBE with an SDP full of terminal escapes and a forged log
                    line, whose only media has no usable codec
    endless-frame   after PLAY, H.264 FU-A fragments of one frame (one timestamp, no
                    marker, no end bit) as fast as the client reads them; over UDP when
                    the client's SETUP asks for it, interleaved otherwise
    bad-rtp         after PLAY, RTP with a wrong version, truncated headers, CSRC counts
                    and extensions past the packet, padding longer than the payload, between
                    valid frames
    time-jumps      valid frames (25 a second) whose timestamps run backwards by 10 s,
                    then jump ahead an hour, again and again
    mid-frame-close valid frames for a second, then half an interleaved frame, then the
                    connection closes (on every reconnect)
    reports-only    after PLAY, RTCP sender reports ten times a second and no media at
                    all (as a camera whose encoder hung while its RTSP stack goes on)

It binds 127.0.0.1 on a free port, prints `READY rtsp://127.0.0.1:PORT/cam`, serves every
connection (reconnects included) in a thread of its own, and runs until killed.
"""

import random
import socket
import struct
import sys
import threading
import time

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QAHqy0BQF/y4C1BgYGpQAAAwABAAADADKPFi6g,aO88sA==\r\n"
    "a=control:stream=0\r\n"
)


BAD_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=\x1b[31mhostile\x1b[0m\r\nt=0 0\r\n"
    "m=video 0 RTP/AVP 97\r\na=rtpmap:97 X-EVIL\x1b]0;owned\x07/90000\r\n"
    "a=fmtp:97 \nERROR forged line from the camera\r\n"
    "a=control:stream=0\r\n"
)

MODES = ("huge-describe", "flood", "huge-header", "garbage", "bad-sdp", "endless-frame",
         "bad-rtp", "time-jumps", "mid-frame-close", "reports-only")


def rtp(seq, ts, payload, marker=False, pt=96):
    return struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, 0x1234) + payload


def interleaved(channel, packet):
    return b"$" + bytes([channel]) + struct.pack(">H", len(packet)) + packet


def frame(seq, ts, keyframe):
    """One frame as a single-NAL RTP packet: an IDR or a non-IDR slice header and filler
    (no decoder reads it; preroll and retina look at NAL types and timestamps)."""
    nal = (b"\x65" if keyframe else b"\x41") + bytes(random.randrange(256) for _ in range(200))
    return interleaved(0, rtp(seq, ts, nal, marker=True))


def stream(conn, mode, udp):
    """What follows PLAY in the modes that send media. `udp` is (socket, client address) when
    the client asked for RTP over UDP, else None (interleaved on the connection)."""
    seq = 0
    if mode == "endless-frame":
        def send(packet):
            if udp:
                udp[0].sendto(packet, udp[1])
            else:
                conn.sendall(interleaved(0, packet))
        start = b"\x7c\x85"  # FU-A indicator (type 28), header: start bit, IDR
        send(rtp(seq, 9000, start + b"\x00" * 1400))
        middle = b"\x7c\x05" + b"\x00" * 60000
        while True:
            seq += 1
            send(rtp(seq, 9000, middle))
            if udp:
                time.sleep(0.0005)  # the client's socket buffer holds a few datagrams
    if mode == "bad-rtp":
        bad = [
            b"\x40" + b"\x60" + b"\x00" * 20,                     # version 1
            b"\x80\x60\x00",                                      # 3 bytes
            b"\x8f\x60" + b"\x00" * 14,                            # 15 CSRCs, 16 bytes
            b"\x90\x60" + b"\x00" * 10 + b"\x00\x00\xff\xff",      # extension past the end
            b"\xa0\x60" + b"\x00" * 10 + b"\x00" * 4 + b"\xff",      # padding 255 of 5
        ]
        ts = 0
        while True:
            for b in bad:
                seq += 1
                conn.sendall(frame(seq, ts, seq % 25 == 1))
                conn.sendall(interleaved(0, b))
                ts += 3600
                time.sleep(0.04)
    if mode == "time-jumps":
        ts = 0
        while True:
            for i in range(50):
                seq += 1
                conn.sendall(frame(seq, ts, i % 10 == 0))
                ts += 3600
                time.sleep(0.04)
            ts -= 90000 * 10 if seq % 100 < 50 else -90000 * 3600
    if mode == "reports-only":
        while True:
            now = time.time()
            ntp = int(now) + 2208988800
            frac = int((now % 1) * (1 << 32))
            # V=2, no reports, PT 200 (SR), length 6 words after the first; the SSRC of
            # the RTP that never comes, NTP time, RTP time, zero packets and octets.
            sr = struct.pack(">BBHIIIIII", 0x80, 200, 6, 0x1234, ntp, frac, int(now * 90000) & 0xFFFFFFFF, 0, 0)
            conn.sendall(interleaved(1, sr))
            time.sleep(0.1)
    if mode == "mid-frame-close":
        ts = 0
        for i in range(25):
            seq += 1
            conn.sendall(frame(seq, ts, i % 10 == 0))
            ts += 3600
            time.sleep(0.04)
        whole = frame(seq + 1, ts, False)
        conn.sendall(whole[: len(whole) // 2])
        conn.close()
        raise OSError("closed mid-frame")
    frame_bytes = b"$\x09\xff\xff" + b"\x80" * 65535
    while True:
        conn.sendall(frame_bytes * 4)


def read_request(conn, buf):
    """(method, cseq, transport, rest of the buffer) of the next request; None at EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ")[0]
    def header(name):
        return next((l.split(":", 1)[1].strip() for l in lines
                     if l.lower().startswith(name + ":")), "")
    return method, header("cseq") or "0", header("transport"), rest


def serve(conn, mode):
    buf = b""
    udp = None
    try:
        if mode == "garbage":
            # The hard case: a letter first, as a message would start, and no line end, so
            # the bytes never make a head whose start line could be checked whole.
            conn.sendall(b"H")
            while True:
                conn.sendall(random.randbytes(65536).replace(b"\n", b"\0"))
        while True:
            req = read_request(conn, buf)
            if req is None:
                return
            method, cseq, transport, buf = req
            head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n"
            if mode == "huge-header":
                conn.sendall((head + "X-Junk: ").encode())
                chunk = b"A" * 65536
                for _ in range(100_000_000 // len(chunk)):
                    conn.sendall(chunk)
            elif method == "OPTIONS":
                conn.sendall((head + "Public: DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n").encode())
            elif method == "DESCRIBE" and mode == "huge-describe":
                size = 200_000_000
                conn.sendall(
                    (head + f"Content-Type: application/sdp\r\nContent-Length: {size}\r\n\r\n").encode()
                )
                line = b"a=x-hostile:" + b"A" * 100 + b"\r\n"
                chunk = line * (65536 // len(line))
                sent = 0
                while sent < size:
                    conn.sendall(chunk)
                    sent += len(chunk)
            elif method == "DESCRIBE":
                body = (BAD_SDP if mode == "bad-sdp" else SDP).encode()
                conn.sendall(
                    (
                        head
                        + "Content-Type: application/sdp\r\nContent-Base: rtsp://127.0.0.1/cam/\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n"
                    ).encode()
                    + body
                )
            elif method == "SETUP" and "client_port=" in transport and mode == "endless-frame":
                port = int(transport.split("client_port=")[1].split("-")[0].split(";")[0])
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(("127.0.0.1", 0))
                udp = (sock, (conn.getpeername()[0], port))
                server = sock.getsockname()[1]
                conn.sendall(
                    (
                        head
                        + f"Transport: RTP/AVP;unicast;client_port={port}-{port + 1};"
                        + f"server_port={server}-{server + 1}\r\nSession: 4242;timeout=60\r\n\r\n"
                    ).encode()
                )
            elif method == "SETUP":
                conn.sendall(
                    (
                        head
                        + "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4242;timeout=60\r\n\r\n"
                    ).encode()
                )
            elif method == "PLAY":
                conn.sendall((head + "Session: 4242\r\nRTP-Info: url=rtsp://127.0.0.1/cam/stream=0;seq=1;rtptime=0\r\n\r\n").encode())
                stream(conn, mode, udp)
            else:
                conn.sendall((head + "Session: 4242\r\n\r\n").encode())
    except OSError:
        pass
    finally:
        conn.close()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in MODES:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(MODES)}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(f"READY rtsp://127.0.0.1:{listener.getsockname()[1]}/cam", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
