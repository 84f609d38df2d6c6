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

It binds 127.0.0.1 on a free port, prints `READY rtsp://127.0.0.1:PORT/cam`, serves every
connection (reconnects included) in a thread of its own, and runs until killed.
"""

import socket
import sys
import threading

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QAHqy0BQF/y4C1BgYGpQAAAwABAAADADKPFi6g,aO88sA==\r\n"
    "a=control:stream=0\r\n"
)


def read_request(conn, buf):
    """(method, cseq, rest of the buffer) of the next request; None at EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ")[0]
    cseq = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("cseq:")), "0")
    return method, cseq, rest


def serve(conn, mode):
    buf = b""
    try:
        while True:
            req = read_request(conn, buf)
            if req is None:
                return
            method, cseq, buf = req
            head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n"
            if method == "OPTIONS":
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
                body = SDP.encode()
                conn.sendall(
                    (
                        head
                        + "Content-Type: application/sdp\r\nContent-Base: rtsp://127.0.0.1/cam/\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n"
                    ).encode()
                    + body
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
                frame = b"$\x09\xff\xff" + b"\x80" * 65535
                while True:
                    conn.sendall(frame * 4)
            else:
                conn.sendall((head + "Session: 4242\r\n\r\n").encode())
    except OSError:
        pass
    finally:
        conn.close()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("huge-describe", "flood"):
        sys.exit(f"usage: {sys.argv[0]} huge-describe|flood")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(f"READY rtsp://127.0.0.1:{listener.getsockname()[1]}/cam", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
