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

/// Runs `preroll record` under `/usr/bin/time -v`: (stderr, peak RSS in kB, wall time).
fn record_measured(url: &str, extra: &[&str]) -> (String, u64, Duration) {
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
        .output()
        .expect("run /usr/bin/time");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "a hostile camera gives no clip: {stderr}"
    );
    assert!(!out.exists(), "no clip file");
    let rss = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak RSS in time -v output");
    (stderr, rss, took)
}

/// A DESCRIBE answer announcing a 200 MB body is refused when its head arrives: the message
/// names the bound, the body is never buffered, nothing of it reaches the log.
#[test]
fn a_huge_describe_body_is_refused_at_once() {
    let cam = Hostile::start("huge-describe");
    let (stderr, rss, took) = record_measured(&cam.url, &["--wait", "2"]);
    println!("huge DESCRIBE body: peak RSS {rss} kB, {took:?}");
    assert!(
        stderr.contains(
            "the camera sent an RTSP message body of 200000000 bytes (Content-Length), \
             over the 65536-byte bound"
        ),
        "{stderr}"
    );
    // Every attempt fails the same way; the first within a second of starting.
    let first = stderr
        .lines()
        .position(|l| l.contains("65536-byte bound"))
        .expect("the bound named");
    assert!(first <= 1, "the first thing logged is the bound: {stderr}");
    assert!(
        !stderr.contains("a=x-hostile"),
        "the body is not logged: {stderr}"
    );
    assert!(rss <= MAX_RSS_KB, "peak RSS {rss} kB");
    assert!(took < Duration::from_secs(6), "{took:?}");
}

/// A camera that floods an interleaved channel no SETUP assigned: the data is dropped as it
/// arrives (gigabytes of it), counted, and reported when the stream stalls for want of video.
#[test]
fn a_flood_on_an_unassigned_channel_is_dropped_and_counted() {
    let cam = Hostile::start("flood");
    let (stderr, rss, took) = record_measured(&cam.url, &["--wait", "5", "--stall-timeout", "2"]);
    let dropped: u64 = stderr
        .split("no frame for 2s (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the stall names the dropped bytes: {stderr}"));
    println!("flood: {dropped} bytes dropped in 2 s; peak RSS {rss} kB, {took:?}");
    assert!(
        stderr.contains("the camera sends interleaved data on channels no stream was set up on"),
        "{stderr}"
    );
    assert!(dropped > 10_000_000, "{dropped} bytes dropped");
    assert!(rss <= MAX_RSS_KB, "peak RSS {rss} kB");
}
