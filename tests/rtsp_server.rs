//! The RTSP server the source tests run against (tests/common/rtsp.rs driving
//! tests/support/rtsp_server.py): it serves what its mounts say, stalls when paused,
//! refuses connections once killed, comes back on the same port after a restart, and
//! enforces its credentials.

mod common;

use std::io;
use std::process::Command;
use std::time::Duration;

use common::rtsp::{Auth, RtspServer};

fn must<T>(r: io::Result<T>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The codec of each stream ffprobe finds at `url` over RTP/TCP, or ffprobe's complaint.
/// `timeout` bounds every socket operation, so a stalled server makes this fail, not hang.
fn probe(url: &str, timeout: Duration) -> Result<Vec<String>, String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-timeout"])
        .arg(timeout.as_micros().to_string())
        .args(["-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run ffprobe: {e} (run scripts/deps.sh)"))?;
    if !out.status.success() {
        return Err(format!(
            "ffprobe {url} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

#[track_caller]
fn assert_serves(url: &str, codecs: &[&str]) {
    match probe(url, Duration::from_secs(10)) {
        Ok(found) => assert_eq!(found, codecs, "streams at {url}"),
        Err(e) => panic!("{e}"),
    }
}

#[track_caller]
fn assert_refused(url: &str) {
    if let Ok(found) = probe(url, Duration::from_secs(2)) {
        panic!("{url} should not be served, ffprobe found {found:?}");
    }
}

#[test]
fn serves_stalls_and_restarts_on_the_same_port() {
    let mut srv = must(
        RtspServer::start(&[("cam", "live:h264+aac")], Auth::None),
        "start rtsp_server",
    );
    let url = srv.url("cam");
    assert_eq!(url, format!("rtsp://127.0.0.1:{}/cam", srv.port()));
    assert_serves(&url, &["h264", "aac"]);

    // A stopped process still has its socket: the connection opens, then nothing answers.
    srv.pause();
    assert_refused(&url);
    srv.resume();
    assert_serves(&url, &["h264", "aac"]);

    let port = srv.port();
    must(srv.restart(), "restart");
    assert_eq!(srv.port(), port, "restart must keep the port");
    assert_serves(&url, &["h264", "aac"]);

    srv.kill();
    assert!(srv.pid().is_none());
    assert_refused(&url);
    must(srv.restart(), "restart after kill");
    assert_serves(&url, &["h264", "aac"]);
}

#[test]
fn enforces_basic_and_digest_credentials() {
    for auth in [
        Auth::basic("viewer", "p@ss:word"),
        Auth::digest("viewer", "p@ss:word"),
    ] {
        let srv = must(
            RtspServer::start(&[("cam", "live:h264")], auth.clone()),
            "start rtsp_server",
        );
        assert_eq!(
            srv.url("cam"),
            format!("rtsp://viewer:p%40ss%3Aword@127.0.0.1:{}/cam", srv.port())
        );
        assert_serves(&srv.url("cam"), &["h264"]);
        assert_refused(&srv.url_without_credentials("cam"));
        assert_refused(&format!("rtsp://viewer:wrong@127.0.0.1:{}/cam", srv.port()));
    }
}

#[test]
fn reports_a_bad_mount_with_the_servers_own_words() {
    let Err(e) = RtspServer::start(&[("cam", "live:vp9")], Auth::None) else {
        panic!("a live:vp9 mount should not start");
    };
    let message = e.to_string();
    assert!(
        message.contains("unknown live spec 'vp9'"),
        "error should carry the server's stderr: {message}"
    );
}
