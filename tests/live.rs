//! The live view's endpoints without a browser (tests/ui.rs drives them from Chromium): the
//! WebSocket a plain client reads, the fMP4 stream ffmpeg plays, what they refuse, a
//! camera that changes resolution, twenty viewers, and a shutdown with viewers attached.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::rtsp::{Auth, RtspServer};
use common::serve::{Service, TOKEN, config};
use common::{Probe, assert_decodes_cleanly, s};
use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const LIMIT: Duration = Duration::from_secs(60);

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn start(dir: &Path, rtsp: &RtspServer, mounts: &[&str]) -> Service {
    let cameras = rtsp.cameras_config(mounts);
    let svc = Service::start(dir, &config(dir, &cameras));
    svc.wait_cameras(mounts, 2.0, LIMIT);
    svc
}

/// Opens the camera's live socket with these headers; the refusal's status otherwise.
fn socket(svc: &Service, camera: &str, headers: &[(&str, &str)]) -> Result<Socket, u16> {
    let url = format!(
        "{}/api/cameras/{camera}/live",
        svc.base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().expect("a request");
    for (k, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("a header name");
        request
            .headers_mut()
            .insert(name, v.parse().expect("a header value"));
    }
    match tungstenite::connect(request) {
        Ok((mut ws, _)) => {
            if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            }
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("the live socket: {e}"),
    }
}

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

fn authorized(svc: &Service, camera: &str) -> Socket {
    let (k, v) = bearer();
    socket(svc, camera, &[(k, &v)]).expect("the live socket opens with the token")
}

/// What a viewer read: the init announcements, the init bytes, and the media since the
/// latest init.
#[derive(Default)]
struct Seen {
    inits: Vec<Value>,
    init_bytes: Vec<Vec<u8>>,
    media: Vec<Vec<u8>>,
    statuses: Vec<Value>,
    ended: Option<String>,
    closed: bool,
}

impl Seen {
    /// Reads until `done` holds, the socket closes, or `limit` passes.
    fn read(ws: &mut Socket, limit: Duration, done: impl Fn(&Seen) -> bool) -> Seen {
        let mut seen = Seen::default();
        let start = Instant::now();
        let mut init_next = false;
        while start.elapsed() < limit && !done(&seen) {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("a JSON text message");
                    match v["type"].as_str() {
                        Some("init") => {
                            seen.inits.push(v);
                            seen.media.clear();
                            init_next = true;
                        }
                        Some("status") => seen.statuses.push(v),
                        Some("ended") => seen.ended = v["reason"].as_str().map(str::to_owned),
                        other => panic!("an unknown message type {other:?}: {t}"),
                    }
                }
                Ok(Message::Binary(b)) if init_next => {
                    seen.init_bytes.push(b.to_vec());
                    init_next = false;
                }
                Ok(Message::Binary(b)) => seen.media.push(b.to_vec()),
                Ok(Message::Close(_)) => {
                    seen.closed = true;
                    break;
                }
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    seen.closed = true;
                    break;
                }
                Err(e) => panic!("reading the live socket: {e}"),
            }
        }
        seen
    }
}

impl Seen {
    /// The latest init and the media after it written to `path` as one file, which must
    /// decode cleanly; what ffprobe says of it.
    fn to_file(&self, path: &Path) -> Probe {
        let mut bytes = self.init_bytes.last().expect("an init").clone();
        for m in &self.media {
            bytes.extend_from_slice(m);
        }
        std::fs::write(path, &bytes).unwrap();
        assert_decodes_cleanly(path);
        Probe::of(path)
    }
}

/// The four-character type of the first box of `b`.
fn first_box(b: &[u8]) -> &str {
    std::str::from_utf8(&b[4..8]).unwrap_or("?")
}

/// A plain client reads the init (its MIME type naming the codecs), then parts from a
/// keyframe on, and the status; the stream written to a file is an MP4 ffmpeg decodes
/// cleanly. Another site's page, and a client without the token, are refused.
#[test]
fn a_websocket_viewer_gets_the_init_then_parts_from_a_keyframe() {
    let d = tempfile::tempdir().unwrap();
    let rtsp = RtspServer::start(&[("front", "live:h264+aac")], Auth::None).unwrap();
    let svc = start(d.path(), &rtsp, &["front"]);

    assert_eq!(socket(&svc, "front", &[]).err(), Some(401));
    let (k, v) = bearer();
    let evil = socket(&svc, "front", &[(k, &v), ("origin", "http://evil.example")]);
    assert_eq!(evil.err(), Some(403));
    assert_eq!(socket(&svc, "nobody", &[(k, &v)]).err(), Some(404));

    let mut ws = authorized(&svc, "front");
    let seen = Seen::read(&mut ws, Duration::from_secs(20), |s| {
        s.media.len() >= 8 && !s.statuses.is_empty()
    });
    assert_eq!(seen.inits.len(), 1, "{:?}", seen.inits);
    let init = &seen.inits[0];
    let mime = init["mime"].as_str().unwrap_or("");
    assert!(
        mime.starts_with("video/mp4; codecs=\"avc1.64") && mime.contains("mp4a.40.2"),
        "{mime}"
    );
    assert_eq!(
        (init["width"].as_u64(), init["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(first_box(&seen.init_bytes[0]), "ftyp");
    assert!(seen.media.iter().all(|m| first_box(m) == "moof"));
    assert_eq!(seen.statuses[0]["camera"]["name"], "front");
    assert_eq!(seen.statuses[0]["camera"]["connected"], true);

    let probe = seen.to_file(&d.path().join("live.mp4"));
    let video = probe.stream_of("video").expect("video");
    let packets = probe.packets_of(video);
    assert!(packets[0].key, "the first picture is a keyframe");
    // Eight parts of up to 0.5 s (the first from the keyframe the viewer joined at).
    assert!(
        packets.len() >= 60,
        "{} frames in {} parts",
        packets.len(),
        seen.media.len()
    );
    assert!(probe.stream_of("audio").is_some());
}

/// `live.mp4` is one fMP4 that ffmpeg reads with the token, as VLC or Home Assistant's
/// generic camera would; without the token it is refused.
#[test]
fn live_mp4_plays_in_ffmpeg_with_the_token_and_twenty_viewers_cost_no_camera_connection() {
    let d = tempfile::tempdir().unwrap();
    let rtsp = RtspServer::start(&[("front", "live:h264")], Auth::None).unwrap();
    let svc = start(d.path(), &rtsp, &["front"]);
    let refused = svc.request("GET", "/api/cameras/front/live.mp4", None, &[], None);
    assert_eq!(refused.status, 401);
    let wrong = "/api/cameras/front/live.mp4?token=not-the-token";
    assert_eq!(svc.request("GET", wrong, None, &[], None).status, 401);
    // The token in the URL works for live.mp4 alone.
    let elsewhere = format!("/api/cameras?token={TOKEN}");
    assert_eq!(svc.request("GET", &elsewhere, None, &[], None).status, 401);

    let out = d.path().join("from-ffmpeg.mp4");
    let url = format!("{}/api/cameras/front/live.mp4", svc.base);
    let header = format!("Authorization: Bearer {TOKEN}\r\n");
    common::ffmpeg(&[
        "-headers",
        &header,
        "-i",
        &url,
        "-t",
        "3",
        "-c",
        "copy",
        s(&out),
    ]);
    assert_decodes_cleanly(&out);
    let probe = Probe::of(&out);
    let video = probe.stream_of("video").expect("video");
    let packets = probe.packets_of(video);
    assert!(packets[0].key);
    assert!(packets.len() >= 70, "{} frames", packets.len());

    // With the token in the URL, as Home Assistant's generic camera sends it.
    let out = d.path().join("from-url.mp4");
    let url = format!("{}/api/cameras/front/live.mp4?token={TOKEN}", svc.base);
    common::ffmpeg(&["-i", &url, "-t", "1", "-c", "copy", s(&out)]);
    let probe = Probe::of(&out);
    assert!(
        probe
            .packets_of(probe.stream_of("video").expect("video"))
            .len()
            >= 20
    );

    // Twenty viewers at once: each gets its picture, and the camera still has one
    // connection (no reconnect, nothing lost).
    let mut viewers: Vec<Socket> = (0..20).map(|_| authorized(&svc, "front")).collect();
    for ws in &mut viewers {
        let seen = Seen::read(ws, Duration::from_secs(10), |s| s.media.len() >= 2);
        assert_eq!(seen.inits.len(), 1);
        assert!(seen.media.len() >= 2);
    }
    let metrics = svc.get("/metrics").text();
    assert!(
        metrics.contains("preroll_reconnects_total{camera=\"front\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("preroll_lost_packets_total{camera=\"front\"} 0"),
        "{metrics}"
    );
}

/// A camera that comes back at another resolution: the viewer gets a new init for it, and
/// the media after it is the new size.
#[test]
fn a_camera_back_at_another_resolution_sends_its_viewers_a_new_init() {
    let d = tempfile::tempdir().unwrap();
    let mut rtsp = RtspServer::start(&[("front", "live:h264")], Auth::None).unwrap();
    let svc = start(d.path(), &rtsp, &["front"]);
    let mut ws = authorized(&svc, "front");
    let before = Seen::read(&mut ws, Duration::from_secs(10), |s| s.media.len() >= 2);
    assert_eq!(before.inits[0]["width"], 640);
    rtsp.restart_with(&[("front", "live:h264@320x240")])
        .unwrap();
    let after = Seen::read(&mut ws, LIMIT, |s| {
        !s.init_bytes.is_empty() && s.media.len() >= 2
    });
    assert_eq!(
        after.inits.len(),
        1,
        "no new init within {LIMIT:?}\n{}",
        svc.log()
    );
    assert_eq!(
        (
            after.inits[0]["width"].as_u64(),
            after.inits[0]["height"].as_u64()
        ),
        (Some(320), Some(240))
    );
    // The new stream starts at a keyframe, in the new size.
    let probe = after.to_file(&d.path().join("after.mp4"));
    let video = probe.stream_of("video").expect("video");
    assert!(probe.packets_of(video)[0].key);
    assert_eq!(probe.streams[video].width, Some(320));
}

/// SIGTERM with a viewer attached: the viewer is told why, the socket closes, and the
/// service exits without waiting for it.
#[test]
fn viewers_are_told_when_the_service_stops() {
    let d = tempfile::tempdir().unwrap();
    let rtsp = RtspServer::start(&[("front", "live:h264")], Auth::None).unwrap();
    let mut svc = start(d.path(), &rtsp, &["front"]);
    let mut ws = authorized(&svc, "front");
    Seen::read(&mut ws, Duration::from_secs(10), |s| s.media.len() >= 2);
    let reader =
        std::thread::spawn(move || Seen::read(&mut ws, Duration::from_secs(20), |s| s.closed));
    let started = Instant::now();
    let status = svc.signal_and_wait(libc::SIGTERM, Duration::from_secs(15));
    assert!(status.success(), "{status:?}\n{}", svc.log());
    let seen = reader.join().expect("the reader");
    assert_eq!(seen.ended.as_deref(), Some("the service is stopping"));
    assert!(seen.closed);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
