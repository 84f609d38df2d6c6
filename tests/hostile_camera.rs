//! Cameras that misbehave on purpose (`tests/support/hostile_camera.py`): whatever they send,
//! `preroll record` fails with a message naming what was wrong, and its memory stays bounded
//! (peak RSS from `/usr/bin/time -v`), because the camera link bounds every byte before it is
//! buffered.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Peak RSS a `record` of a hostile camera may reach. A healthy `record` of a 640x360 camera
/// peaks around 10 MB here; the hostile cameras once took a gigabyte.
const MAX_RSS_KB: u64 = 40 * 1024;

struct Hostile {
    child: Child,
    url: String,
}

impl Hostile {
    fn start(mode: &str) -> Hostile {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/hostile_camera.py"
        );
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(mode)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("run hostile_camera.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("READY line");
        let url = line
            .strip_prefix("READY ")
            .expect("READY line")
            .trim()
            .to_owned();
        Hostile { child, url }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Most a hostile camera may make `record` log (it once wrote 381 MB).
const MAX_LOG_BYTES: usize = 64 * 1024;

/// What a `record` of a hostile camera did.
struct Recorded {
    ok: bool,
    stderr: String,
    rss_kb: u64,
    took: Duration,
    clip: bool,
}

/// Runs `preroll record` under `/usr/bin/time -v`, whatever the outcome, and checks what
/// holds for every hostile camera: no panic, the log bounded and free of raw control
/// characters (escape sequences, forged lines), peak RSS bounded.
fn record_any(url: &str, extra: &[&str]) -> Recorded {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("clip.mp4");
    let started = Instant::now();
    let o = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_preroll"))
        .args(["record", url, "-o"])
        .arg(&out)
        .args(extra)
        .env("PREROLL_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("run /usr/bin/time");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let rss_kb = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak RSS in time -v output");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.len() <= MAX_LOG_BYTES,
        "{} bytes of log",
        stderr.len()
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "raw escape sequences in the log: {stderr:?}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("ERROR forged")),
        "a forged line in the log: {stderr}"
    );
    assert!(rss_kb <= MAX_RSS_KB, "peak RSS {rss_kb} kB: {stderr}");
    // A clip of the camera's frames (filler, not pictures) is checked as a file, not decoded.
    if o.status.success() {
        common::check_structure(&out);
    }
    Recorded {
        ok: o.status.success(),
        stderr,
        rss_kb,
        took,
        clip: out.exists(),
    }
}

/// A hostile camera `record` must refuse: no clip, and an error that says `says`.
fn refused(mode: &str, extra: &[&str], says: &str) -> Recorded {
    let cam = Hostile::start(mode);
    let r = record_any(&cam.url, extra);
    println!(
        "{mode}: peak RSS {} kB, {:?}, {} bytes of log",
        r.rss_kb,
        r.took,
        r.stderr.len()
    );
    assert!(!r.ok && !r.clip, "{mode}: {}", r.stderr);
    assert!(r.stderr.contains(says), "{mode}: {}", r.stderr);
    r
}

/// A DESCRIBE answer announcing a 200 MB body is refused when its head arrives: the message
/// names the bound, the body is never buffered, nothing of it reaches the log.
#[test]
fn a_huge_describe_body_is_refused_at_once() {
    let r = refused(
        "huge-describe",
        &["--wait", "2"],
        "the camera sent an RTSP message body of 200000000 bytes (Content-Length), over the \
         65536-byte bound",
    );
    // Every attempt fails the same way; the first within a second of starting.
    let first = r
        .stderr
        .lines()
        .position(|l| l.contains("65536-byte bound"))
        .expect("the bound named");
    assert!(
        first <= 1,
        "the first thing logged is the bound: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("a=x-hostile"), "the body is not logged");
    assert!(r.took < Duration::from_secs(6), "{:?}", r.took);
}

/// A camera that floods an interleaved channel no SETUP assigned: the data is dropped as it
/// arrives (gigabytes of it), counted, and reported when the stream stalls for want of video.
#[test]
fn a_flood_on_an_unassigned_channel_is_dropped_and_counted() {
    let r = refused(
        "flood",
        &["--wait", "5", "--stall-timeout", "2"],
        "the camera sends interleaved data on channels no stream was set up on",
    );
    let dropped: u64 = r
        .stderr
        .split("no video frame for 2s (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the stall names the dropped bytes: {}", r.stderr));
    println!("flood: {dropped} bytes dropped in 2 s");
    assert!(dropped > 10_000_000, "{dropped} bytes dropped");
}

/// A camera that answers PLAY and then sends only RTCP sender reports: each packet it sends
/// is read, but no frame comes, so the stream counts as stalled at its stall timeout.
#[test]
fn a_camera_sending_only_reports_stalls_at_the_stall_timeout() {
    let r = refused(
        "reports-only",
        &["--wait", "5", "--stall-timeout", "2"],
        "no video frame for 2s",
    );
    assert!(r.took < Duration::from_secs(10), "waited {:?}", r.took);
}

/// A header line that never ends: refused when it passes the head bound, never buffered.
#[test]
fn an_endless_header_line_is_refused_at_its_bound() {
    let r = refused("huge-header", &["--wait", "2"], "65536");
    assert!(!r.stderr.contains("AAAAAAAA"), "{}", r.stderr);
}

/// Random bytes instead of RTSP: refused as not RTSP, with a short escaped excerpt.
#[test]
fn garbage_instead_of_rtsp_is_refused_and_shown_escaped() {
    refused(
        "garbage",
        &["--wait", "2"],
        "the camera sent bytes that are neither an RTSP message nor an interleaved frame",
    );
}

/// An SDP with escape sequences, a forged log line and no usable codec: `record` fails at
/// once (the error can never clear) and logs the camera's text escaped.
#[test]
fn a_malformed_sdp_fails_at_once_and_is_logged_escaped() {
    let r = refused(
        "bad-sdp",
        &["--wait", "30"],
        "the camera sent a malformed SDP: line 3",
    );
    assert!(r.took < Duration::from_secs(10), "waited {:?}", r.took);
}

/// A frame that never ends (one timestamp, no marker): refused at the frame bound, before
/// retina holds more than that.
#[test]
fn a_frame_that_never_ends_is_refused_at_the_frame_bound() {
    refused(
        "endless-frame",
        &["--wait", "3"],
        "the camera sent a frame of more than 8388608 bytes",
    );
}

/// The same endless frame over UDP: the link relays RTP over UDP too, and bounds it the same.
#[test]
fn a_frame_that_never_ends_over_udp_is_refused_at_the_frame_bound() {
    let r = refused(
        "endless-frame",
        &["--wait", "3", "--transport", "udp"],
        "the camera sent a frame of more than 8388608 bytes (RTP packets of one timestamp",
    );
    assert!(r.stderr.contains("over UDP to port"), "{}", r.stderr);
}

/// Malformed RTP between valid frames, timestamps running back and jumping ahead, and a
/// connection closed mid-frame on every reconnect: whatever `record` makes of them (a clip
/// of what was good, or a clear error), it never panics, hangs, or grows.
#[test]
fn malformed_rtp_jumping_timestamps_and_mid_frame_closes_stay_bounded() {
    for mode in ["bad-rtp", "time-jumps", "mid-frame-close"] {
        let cam = Hostile::start(mode);
        let r = record_any(
            &cam.url,
            &[
                "--wait",
                "4",
                "--lookback",
                "0",
                "--duration",
                "3",
                "--stall-timeout",
                "3",
            ],
        );
        println!(
            "{mode}: {} in {:?}, peak RSS {} kB, {} bytes of log",
            if r.ok { "a clip" } else { "no clip" },
            r.took,
            r.rss_kb,
            r.stderr.len()
        );
        assert!(r.took < Duration::from_secs(40), "{mode}: {:?}", r.took);
        if !r.ok {
            assert!(!r.clip, "{mode}: a failed record leaves no clip");
            assert!(r.stderr.contains("error"), "{mode}: {}", r.stderr);
        }
    }
}

/// Peak RSS (VmHWM) of a running process, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Most `serve` may hold with every hostile camera at once, beside a demo camera.
const MAX_SERVE_RSS_KB: u64 = 80 * 1024;
/// Most it may log in the run below (every reason once per change, then debug).
const MAX_SERVE_LOG_BYTES: usize = 256 * 1024;

/// Every hostile camera at once in one `preroll serve`, beside a good one: the API stays
/// responsive, a clip of the good camera is made, each hostile camera's error is shown
/// escaped, memory and log stay bounded, and SIGTERM still ends it cleanly.
#[test]
fn serve_with_every_hostile_camera_stays_responsive_and_bounded() {
    let modes = [
        "huge-describe",
        "flood",
        "huge-header",
        "garbage",
        "bad-sdp",
        "endless-frame",
        "bad-rtp",
        "time-jumps",
        "mid-frame-close",
        "reports-only",
    ];
    let cams: Vec<Hostile> = modes.iter().map(|m| Hostile::start(m)).collect();
    let d = tempfile::tempdir().unwrap();
    let mut cameras = String::from("[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n");
    for (mode, cam) in modes.iter().zip(&cams) {
        cameras.push_str(&format!(
            "\n[[cameras]]\nname = \"{mode}\"\nsource = \"{}\"\nstall_timeout = 3\n",
            cam.url
        ));
    }
    let mut svc =
        common::serve::Service::start(d.path(), &common::serve::config(d.path(), &cameras));
    let started = Instant::now();
    svc.wait_cameras(&["demo"], 1.0, Duration::from_secs(30));
    let clip = svc.clip("demo", r#"{"duration": 2, "lookback": 1}"#);
    // The API answers throughout, while the hostile cameras do their worst.
    while started.elapsed() < Duration::from_secs(15) {
        assert_eq!(svc.request("GET", "/healthz", None, &[], None).status, 200);
        std::thread::sleep(Duration::from_millis(500));
    }
    let done = svc.wait_final(clip["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(done["state"], "done", "{done}");
    let cameras = svc.get("/api/cameras").json();
    for mode in modes {
        let cam = cameras
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == mode)
            .unwrap_or_else(|| panic!("{mode} listed: {cameras}"));
        let shown = cam.to_string();
        assert!(
            !shown.contains("\\u001b") && !shown.contains("\\u0007"),
            "{mode}: {shown}"
        );
        if mode == "reports-only" {
            // Connected, yet silent: it is dropped and dialled again, not shown as live.
            let error = cam["last_error"].as_str().unwrap_or_default();
            assert!(error.contains("no video frame for 3s"), "{shown}");
            assert!(cam["reconnects"].as_u64() >= Some(2), "{shown}");
        }
    }
    let rss = peak_rss_kb(svc.pid());
    let log = svc.log();
    println!(
        "serve with {} hostile cameras for {:?}: peak RSS {rss} kB, {} bytes of log",
        modes.len(),
        started.elapsed(),
        log.len()
    );
    assert!(rss <= MAX_SERVE_RSS_KB, "peak RSS {rss} kB");
    assert!(
        log.len() <= MAX_SERVE_LOG_BYTES,
        "{} bytes of log",
        log.len()
    );
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains('\u{1b}'), "raw escapes in the log");
    assert!(!log.lines().any(|l| l.starts_with("ERROR forged")), "{log}");
    let status = svc.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status}");
}
