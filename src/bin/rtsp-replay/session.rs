//! One client: the RTSP exchange a camera answers (OPTIONS, DESCRIBE, SETUP with TCP
//! interleaving, PLAY, GET_PARAMETER keep-alives, TEARDOWN), then the stream's packets on
//! channel 0 as their times come, from a keyframe, looping with timestamps that go on. One
//! task per client reads its requests and writes its packets; a tick writes what is due
//! in one `write_all`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::packets::Stream;

/// How often due packets are written.
const TICK: Duration = Duration::from_millis(10);
/// A request head larger than this ends the session (clients send a few hundred bytes).
const MAX_REQUEST: usize = 16 << 10;

/// Counters of every session.
#[derive(Debug, Default)]
pub struct Totals {
    pub sessions: AtomicU64,
    pub playing: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

/// One request: method, CSeq and the URL.
struct Request {
    method: String,
    url: String,
    cseq: String,
}

/// Takes a whole request head off the front of `buf` (interleaved frames from the client,
/// RTCP receiver reports, are dropped).
fn take_request(buf: &mut Vec<u8>) -> Option<Request> {
    loop {
        if buf.first() == Some(&b'$') {
            if buf.len() < 4 {
                return None;
            }
            let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < len {
                return None;
            }
            buf.drain(..len);
            continue;
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let mut lines = head.lines();
        let mut first = lines.next()?.split_whitespace();
        let method = first.next()?.to_owned();
        let url = first.next().unwrap_or("*").to_owned();
        let cseq = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("cseq"))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "0".to_owned());
        return Some(Request { method, url, cseq });
    }
}

fn sdp(stream: &Stream) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=preroll rtsp-replay\r\nt=0 0\r\na=control:*\r\n\
         m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 {}\r\n\
         a=framesize:96 {}-{}\r\na=control:track0\r\n",
        stream.fmtp, stream.width, stream.height
    )
}

/// Serves one client until it leaves.
pub async fn serve(
    mut socket: TcpStream,
    stream: Arc<Stream>,
    number: u64,
    totals: Arc<Totals>,
) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    totals.sessions.fetch_add(1, Ordering::Relaxed);
    let ssrc = 0x5052_0000u32 ^ (number as u32).wrapping_mul(2_654_435_761);
    // Sessions start at different keyframes, so their bursts do not line up.
    let start_at = stream.keyframes[number as usize % stream.keyframes.len()];
    let mut input = Vec::new();
    let mut read_buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(64 << 10);
    let mut playing: Option<Instant> = None;
    let mut next = start_at;
    let mut loops = 0u32;
    let mut seq = 1u16;
    let base_time = stream.packets[start_at].time;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            n = socket.read(&mut read_buf) => {
                let n = n?;
                if n == 0 {
                    break;
                }
                input.extend_from_slice(&read_buf[..n]);
                if input.len() > MAX_REQUEST && input.first() != Some(&b'$') {
                    break;
                }
                while let Some(r) = take_request(&mut input) {
                    let mut head = format!("RTSP/1.0 200 OK\r\nCSeq: {}\r\n", r.cseq);
                    let mut body = String::new();
                    match r.method.as_str() {
                        "OPTIONS" => head.push_str(
                            "Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n",
                        ),
                        "DESCRIBE" => {
                            body = sdp(&stream);
                            let base = r.url.trim_end_matches('/');
                            head.push_str(&format!(
                                "Content-Type: application/sdp\r\nContent-Base: {base}/\r\n"
                            ));
                        }
                        "SETUP" => head.push_str(
                            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 1;timeout=60\r\n",
                        ),
                        "PLAY" => {
                            head.push_str(&format!(
                                "Session: 1\r\nRTP-Info: url={};seq={seq};rtptime=0\r\n",
                                r.url
                            ));
                            if playing.is_none() {
                                playing = Some(Instant::now());
                                totals.playing.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        "TEARDOWN" => {
                            socket.write_all(format!("{head}\r\n").as_bytes()).await?;
                            return Ok(());
                        }
                        _ => head.push_str("Session: 1\r\n"),
                    }
                    if !body.is_empty() {
                        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                    }
                    head.push_str("\r\n");
                    head.push_str(&body);
                    socket.write_all(head.as_bytes()).await?;
                }
            }
            _ = tick.tick(), if playing.is_some() => {
                let Some(since) = playing else { continue };
                let now = (since.elapsed().as_micros() * 9 / 100) as u64;
                out.clear();
                let mut sent = 0u64;
                loop {
                    let p = &stream.packets[next];
                    // Ticks since PLAY: times only grow from the first keyframe sent, and a
                    // loop adds its length (packets before that keyframe come after a wrap).
                    let at = (i64::from(loops) * i64::from(stream.loop_ticks)
                        + i64::from(p.time)
                        - i64::from(base_time))
                        .max(0) as u64;
                    if at > now {
                        break;
                    }
                    let ts = (at as u32).wrapping_add(0x1000);
                    let len = 12 + p.payload.len();
                    out.extend_from_slice(&[b'$', 0]);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                    out.extend_from_slice(&[0x80, if p.marker { 0x80 | 96 } else { 96 }]);
                    out.extend_from_slice(&seq.to_be_bytes());
                    out.extend_from_slice(&ts.to_be_bytes());
                    out.extend_from_slice(&ssrc.to_be_bytes());
                    out.extend_from_slice(&p.payload);
                    seq = seq.wrapping_add(1);
                    sent += 1;
                    next += 1;
                    if next == stream.packets.len() {
                        next = 0;
                        loops += 1;
                    }
                }
                if !out.is_empty() {
                    socket.write_all(&out).await?;
                    totals.packets.fetch_add(sent, Ordering::Relaxed);
                    totals.bytes.fetch_add(out.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }
    if playing.is_some() {
        totals.playing.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(())
}
