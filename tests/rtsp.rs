//! `preroll record` against a real RTSP server (gst-rtsp-server, started per test on a free
//! loopback port): codecs, B-frames, a restart and a stall of the server mid-clip, wrong
//! credentials and a closed port.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::rtsp::{Auth, RtspServer};
use common::*;

/// Records from `url` and checks what every clip must be; returns (clip probe, summary).
fn record(dir: &std::path::Path, url: &str, extra: &[&str]) -> (Probe, String) {
    let out = dir.join("clip.mp4");
    let mut args = vec!["record", url, "-o", s(&out)];
    args.extend(extra);
    let summary = preroll_ok(&args);
    assert!(
        !summary.contains("****") || !url.contains('@') || !summary.contains(url),
        "no credentials shown"
    );
    assert_decodes_cleanly(&out);
    check_structure(&out);
    let probe = Probe::of(&out);
    let v = probe.stream_of("video").unwrap();
    let p = probe.packets_of(v);
    assert!(
        p.windows(2).all(|w| w[1].dts > w[0].dts),
        "video dts strictly increasing"
    );
    (probe, summary)
}

fn spawn_record(url: &str, out: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_preroll"))
        .args(["record", url, "-o", s(out)])
        .args(extra)
        .env("PREROLL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_file(path: &std::path::Path, limit: Duration) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn h264_with_aac_over_tcp_and_udp() {
    let srv = RtspServer::start(&[("cam", "live:h264+aac")], Auth::None).unwrap();
    for transport in ["tcp", "udp"] {
        let d = tempfile::tempdir().unwrap();
        let (probe, summary) = record(
            d.path(),
            &srv.url("cam"),
            &[
                "--lookback",
                "2",
                "--duration",
                "2",
                "--transport",
                transport,
            ],
        );
        assert_eq!(probe.streams[0].codec, "h264");
        assert_eq!(probe.count("audio"), 1, "{transport}");
        assert_eq!(
            probe.streams[probe.stream_of("audio").unwrap()].codec,
            "aac"
        );
        let pre = preroll_of(&summary);
        assert!((2.0..=3.1).contains(&pre), "{transport}: pre-roll {pre}");
        let v = probe.stream_of("video").unwrap();
        assert!(
            probe.span(v) >= pre + 2.0 - 0.1,
            "{transport}: {} s: {summary}",
            probe.span(v)
        );
    }
}

#[test]
fn h265_is_recorded_as_hvc1() {
    let srv = RtspServer::start(&[("cam", "live:h265+aac")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let (probe, _) = record(
        d.path(),
        &srv.url("cam"),
        &["--lookback", "1", "--duration", "2"],
    );
    assert_eq!(probe.streams[0].codec, "hevc");
    assert_eq!(probe.streams[0].codec_tag, "hvc1");
}

#[test]
fn video_only_camera_gives_no_audio_stream() {
    let srv = RtspServer::start(&[("cam", "live:h264")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let (probe, _) = record(
        d.path(),
        &srv.url("cam"),
        &["--lookback", "1", "--duration", "2"],
    );
    assert_eq!(probe.count("audio"), 0);
}

#[test]
fn unsupported_audio_is_reported_once_and_the_video_recorded() {
    let srv = RtspServer::start(&[("cam", "live:h264+g722")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("clip.mp4");
    let stderr = record_warnings(&srv.url("cam"), &out);
    assert_eq!(
        stderr.matches("cannot go into MP4 clips").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("g722"), "names the codec: {stderr}");
    assert_decodes_cleanly(&out);
    let probe = Probe::of(&out);
    assert_eq!((probe.count("video"), probe.count("audio")), (1, 0));
}

#[test]
fn b_frames_get_decode_times_from_presentation_times() {
    let srv = RtspServer::start(&[("cam", "live:h264b+aac")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let (probe, _) = record(
        d.path(),
        &srv.url("cam"),
        &["--lookback", "1", "--duration", "3"],
    );
    let v = probe.packets_of(probe.stream_of("video").unwrap());
    assert!(
        v.windows(2).any(|w| w[1].pts < w[0].pts),
        "B-frames: presentation order differs"
    );
    assert!(
        v.iter().all(|p| p.dts <= p.pts),
        "no frame decoded after it is shown"
    );
    // The edit list starts presentation at the frame shown at `trigger - lookback`, not one
    // or two frames (the B-frame delay) after it: the frames decoded before it are not shown.
    let video = &probe.streams[probe.stream_of("video").unwrap()];
    assert_eq!(video.start_time, Some(0.0), "{video:?}");
    assert_eq!(
        v.iter().filter(|p| !p.discard).map(|p| p.pts).min(),
        Some(0)
    );
    // What is hidden lies before the start, or after the end (a reference of B-frames
    // shown before it).
    let shown_end = v
        .iter()
        .filter(|p| !p.discard)
        .map(|p| p.pts + p.duration)
        .max()
        .unwrap_or(0);
    assert!(
        v.iter()
            .filter(|p| p.discard)
            .all(|p| p.pts < 0 || p.pts >= shown_end)
    );
}

#[test]
fn a_server_restart_mid_clip_gives_one_discontinuity_and_a_continuous_timeline() {
    let mut srv = RtspServer::start(&[("cam", "live:h264+aac")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("clip.mp4");
    let child = spawn_record(
        &srv.url("cam"),
        &out,
        &["--lookback", "1", "--duration", "9"],
    );
    wait_for_file(&d.path().join("clip.mp4.partial"), Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    srv.kill();
    srv.restart().unwrap();
    let result = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("reconnected"), "{stderr}");
    assert_eq!(discontinuities_of(&stdout), 1, "{stdout}");
    assert_decodes_cleanly(&out);
    check_structure(&out);
    let probe = Probe::of(&out);
    for (i, st) in probe.streams.iter().enumerate() {
        let p = probe.packets_of(i);
        let (n, den) = st.time_base;
        let max_gap = p
            .windows(2)
            .map(|w| (w[1].dts - w[0].dts) as f64 * n as f64 / den as f64)
            .fold(0.0, f64::max);
        // The outage is collapsed: the new stream continues where the media ended.
        assert!(max_gap < 0.2, "{}: gap of {max_gap} s", st.codec);
    }
}

#[test]
fn a_stalled_server_times_out_and_the_camera_reconnects() {
    let srv = RtspServer::start(&[("cam", "live:h264")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("clip.mp4");
    let child = spawn_record(
        &srv.url("cam"),
        &out,
        &[
            "--lookback",
            "1",
            "--duration",
            "10",
            "--stall-timeout",
            "2",
            "--connect-timeout",
            "2",
        ],
    );
    wait_for_file(&d.path().join("clip.mp4.partial"), Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    srv.pause();
    std::thread::sleep(Duration::from_secs(4));
    srv.resume();
    let result = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("stream stalled"), "{stderr}");
    assert!(stderr.contains("reconnected"), "{stderr}");
    assert!(discontinuities_of(&stdout) >= 1, "{stdout}");
    assert_decodes_cleanly(&out);
}

#[test]
fn credentials_basic_and_digest_wrong_password_and_closed_port() {
    for auth in [
        Auth::Basic {
            user: "viewer".into(),
            password: "s3cret".into(),
        },
        Auth::Digest {
            user: "viewer".into(),
            password: "s3cret".into(),
        },
    ] {
        let srv = RtspServer::start(&[("cam", "live:h264")], auth).unwrap();
        let d = tempfile::tempdir().unwrap();
        record(
            d.path(),
            &srv.url("cam"),
            &["--lookback", "0", "--duration", "1"],
        );
        let wrong = srv.url("cam").replace("s3cret", "wrong");
        let o = preroll(&[
            "record",
            &wrong,
            "-o",
            s(&d.path().join("x.mp4")),
            "--wait",
            "4",
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(stderr.contains("authentication failed"), "{stderr}");
        assert!(
            !stderr.contains("wrong") && !stderr.contains("s3cret"),
            "password leaked: {stderr}"
        );
        assert!(!d.path().join("x.mp4").exists() && !d.path().join("x.mp4.partial").exists());
    }
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = tempfile::tempdir().unwrap();
    let url = format!("rtsp://127.0.0.1:{port}/cam");
    let o = preroll(&[
        "record",
        &url,
        "-o",
        s(&d.path().join("x.mp4")),
        "--wait",
        "3",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

/// `preroll watch` counts RTP packets that never arrived, per camera: the lossy mount's
/// server throws away video packets after numbering them, the clean one loses none over the
/// same loopback connection. The lossy camera keeps its ring going between the gaps.
#[test]
fn lost_packets_are_counted_per_camera() {
    let srv = RtspServer::start(
        &[("clean", "live:h264"), ("lossy", "live:h264?drop-every=40")],
        Auth::None,
    )
    .unwrap();
    let (clean, lossy) = (
        format!("clean={}", srv.url("clean")),
        format!("lossy={}", srv.url("lossy")),
    );
    let out = preroll_ok(&["watch", &clean, &lossy, "--seconds", "6", "--every", "0"]);
    let count = |camera: &str, what: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{camera}: ")))
            .unwrap_or_else(|| panic!("no line for {camera} in {out}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| w.trim_end_matches(',') == what)
            .unwrap_or_else(|| panic!("no {what} in {line}"));
        words[at - 1].parse().unwrap()
    };
    assert_eq!(count("clean", "lost"), 0, "{out}");
    assert!(count("lossy", "lost") > 0, "{out}");
    assert!(count("lossy", "frames") > 50, "{out}");
    assert_eq!(count("lossy", "reconnects"), 0, "{out}");
}
