//! `preroll serve` end to end: the real binary, its HTTP API over real sockets, cameras from
//! gst-rtsp-server and the built-in demo, clips checked with ffmpeg and mp4-atom.

mod common;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::rtsp::{Auth, RtspServer};
use common::serve::{Service, TOKEN, config, read};
use common::*;
use libc::{SIGKILL, SIGTERM};
use serde_json::Value;

const DEMO: &str = "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n";

fn clip_path(clip: &Value) -> &Path {
    Path::new(clip["path"].as_str().expect("path"))
}

#[track_caller]
fn assert_good_clip(clip: &Value) {
    assert_eq!(clip["state"], "done", "{clip}");
    let path = clip_path(clip);
    assert_decodes_cleanly(path);
    let moov = check_structure(path);
    let header = moov.mvhd.duration as f64 / f64::from(moov.mvhd.timescale);
    let duration = clip["duration"].as_f64().expect("duration");
    assert!(
        (header - duration).abs() < 0.002,
        "API says {duration} s, the file's header {header} s"
    );
}

#[test]
fn two_rtsp_cameras_overlapping_clips_stop_extend_and_download() {
    let d = tempfile::tempdir().unwrap();
    let srv = RtspServer::start(
        &[("front", "live:h264+aac"), ("back", "live:h265")],
        Auth::basic("admin", "pw-secret-42"),
    )
    .unwrap();
    let cameras = format!(
        "[[cameras]]\nname = \"front\"\nsource = \"{}\"\npreroll_seconds = 8\n\n\
         [[cameras]]\nname = \"back\"\nsource = \"{}\"\norientation = 6\n",
        srv.url("front"),
        srv.url("back")
    );
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["front", "back"], 3.0, Duration::from_secs(60));

    let cams = svc.get("/api/cameras").json();
    let front = &cams[0];
    assert_eq!(front["name"], "front");
    assert_eq!(front["codec"], "H.264");
    assert_eq!(front["audio_codec"], "AAC");
    assert_eq!(
        (front["width"].as_u64(), front["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert!(front["bitrate"].as_u64().unwrap_or(0) > 10_000, "{front}");
    assert_eq!(cams[1]["codec"], "H.265");
    assert_eq!(cams[1]["reconnects"], 0);

    // Two overlapping clips on one camera, one on the other.
    let a = svc.clip(
        "front",
        r#"{"filename": "a.mp4", "duration": 3, "lookback": 2}"#,
    );
    let b = svc.clip("front", r#"{"duration": 60, "lookback": 1}"#);
    let c = svc.clip("back", r#"{"duration": 2, "lookback": 2}"#);
    let (a_id, b_id, c_id) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        c["id"].as_str().unwrap(),
    );
    assert_eq!(a["state"], "recording");
    // Not done yet: no file to serve.
    assert_eq!(svc.get(&format!("/api/clips/{b_id}/file")).status, 409);

    let extended = svc.post(&format!("/api/clips/{c_id}/extend"), r#"{"seconds": 2}"#);
    assert_eq!(extended.status, 200, "{}", extended.text());
    assert_eq!(extended.json()["requested_duration"], 4.0);

    sleep(Duration::from_secs(3));
    let stopped = svc.post(&format!("/api/clips/{b_id}/stop"), "");
    assert_eq!(stopped.status, 200, "{}", stopped.text());

    let a = svc.wait_final(a_id, Duration::from_secs(40));
    let b = svc.wait_final(b_id, Duration::from_secs(40));
    let c = svc.wait_final(c_id, Duration::from_secs(40));
    for clip in [&a, &b, &c] {
        assert_good_clip(clip);
    }
    // The clip holds its pre-roll (the newest keyframe at or before trigger - lookback, 1 s
    // GOPs) and the requested time after the trigger (up to the keyframe after it).
    let pre = a["preroll"].as_f64().unwrap();
    assert!((2.0..=3.2).contains(&pre), "pre-roll {pre}: {a}");
    let dur = a["duration"].as_f64().unwrap();
    assert!(dur >= pre + 3.0 - 0.1 && dur <= pre + 3.0 + 1.2, "{a}");
    assert!(clip_path(&a).ends_with("recordings/a.mp4"), "{a}");
    // Stopped after about 3 s of its 60.
    assert_eq!(b["ended_early"], "stopped");
    assert!(b["duration"].as_f64().unwrap() < 10.0, "{b}");
    assert!(
        clip_path(&b)
            .parent()
            .unwrap()
            .ends_with("recordings/front"),
        "{b}"
    );
    // Extended from 2 to 4 s after the trigger.
    let c_after = c["duration"].as_f64().unwrap() - c["preroll"].as_f64().unwrap();
    assert!(c_after >= 3.9, "{c}");
    assert_eq!(svc.post(&format!("/api/clips/{a_id}/stop"), "").status, 409);
    assert_eq!(Probe::of(clip_path(&a)).count("audio"), 1);

    // Download, whole and by range.
    let file = svc.get(&format!("/api/clips/{a_id}/file"));
    assert_eq!(file.status, 200);
    assert_eq!(file.header("content-type"), Some("video/mp4"));
    let on_disk = read(clip_path(&a));
    assert!(file.body == on_disk, "download differs from the file");
    let part = svc.request(
        "GET",
        &format!("/api/clips/{a_id}/file"),
        Some(TOKEN),
        &[("Range", "bytes=100-199")],
        None,
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, on_disk[100..200]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{}", on_disk.len()).as_str())
    );

    let metrics = svc.request("GET", "/metrics", None, &[], None).text();
    for want in [
        "preroll_clips_total{state=\"done\"} 3\n",
        "preroll_camera_connected{camera=\"front\"} 1\n",
        "preroll_camera_connected{camera=\"back\"} 1\n",
        "preroll_finalize_seconds_count 3\n",
        "preroll_fsync_seconds_count 3\n",
        "preroll_clips{state=\"done\"} 3\n",
    ] {
        assert!(metrics.contains(want), "{want:?} missing from:\n{metrics}");
    }
    for line in metrics.lines() {
        assert!(
            line.starts_with('#') || line.starts_with("preroll_"),
            "{line}"
        );
    }
    let ingest: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("preroll_ingest_bytes_total{camera=\"back\"} "))
        .and_then(|v| v.parse().ok())
        .expect("ingest bytes of back");
    assert!(ingest > 10_000.0, "{ingest}");

    // Credentials appear nowhere the service shows.
    let everything = format!(
        "{}{}{}{}",
        svc.get("/api/cameras").text(),
        svc.get("/api/clips").text(),
        metrics,
        svc.log()
    );
    assert!(!everything.contains("pw-secret-42"), "{everything}");
}

#[test]
fn a_clip_from_a_camera_that_is_down_fails_in_time_and_blocks_nothing() {
    let d = tempfile::tempdir().unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cameras = format!(
        "{DEMO}\n[[cameras]]\nname = \"down\"\nsource = \"rtsp://user:pw-down-7@127.0.0.1:{closed}/x\"\n"
    );
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["demo"], 1.0, Duration::from_secs(30));

    let asked = Instant::now();
    let down = svc.clip("down", r#"{"duration": 3}"#);
    let demo = svc.clip("demo", r#"{"duration": 1, "lookback": 0}"#);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "requests took {:?}",
        asked.elapsed()
    );
    let down = svc.wait_final(down["id"].as_str().unwrap(), Duration::from_secs(15));
    let failed_after = asked.elapsed();
    assert_eq!(down["state"], "failed", "{down}");
    let error = down["error"].as_str().unwrap();
    assert!(
        error.contains("recording failed to capture anything") && error.contains("not connected"),
        "{error}"
    );
    assert!(!error.contains("pw-down-7"), "{error}");
    // It waited its duration (3 s) for media, not much longer.
    assert!(failed_after < Duration::from_secs(8), "{failed_after:?}");
    let path = clip_path(&down);
    assert!(!path.exists());
    assert!(!Path::new(&format!("{}.partial", path.display())).exists());

    let demo = svc.wait_final(demo["id"].as_str().unwrap(), Duration::from_secs(15));
    assert_good_clip(&demo);
    let cams = svc.get("/api/cameras").json();
    let down_cam = cams
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "down")
        .unwrap();
    assert_eq!(down_cam["connected"], false);
    assert!(
        down_cam["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{down_cam}"
    );
    assert!(!svc.log().contains("pw-down-7"));
}

#[test]
fn api_refuses_bad_tokens_paths_and_bodies() {
    let d = tempfile::tempdir().unwrap();
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let cameras =
        format!("{DEMO}\n[[cameras]]\nname = \"off\"\nsource = \"demo\"\nenabled = false\n");
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    let recordings = d.path().join("recordings");
    std::os::unix::fs::symlink(&outside, recordings.join("out")).unwrap();

    // Tokens.
    let none = svc.request("GET", "/api/cameras", None, &[], None);
    assert_eq!(none.status, 401);
    assert!(none.header("www-authenticate").is_some());
    assert!(
        none.json()["error"]
            .as_str()
            .unwrap()
            .contains("missing bearer token")
    );
    for wrong in ["test-token-0123456788", "x", "test-token-01234567890"] {
        let r = svc.request("GET", "/api/cameras", Some(wrong), &[], None);
        assert_eq!(r.status, 401, "{wrong}");
    }
    let r = svc.request(
        "POST",
        "/api/cameras/demo/clips",
        Some("nope"),
        &[],
        Some("{}"),
    );
    assert_eq!(r.status, 401);
    // Open routes.
    let health = svc.request("GET", "/healthz", None, &[], None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(svc.request("GET", "/metrics", None, &[], None).status, 200);
    let openapi = svc.request("GET", "/openapi.json", None, &[], None).json();
    for route in [
        "/api/cameras",
        "/api/cameras/{camera}/clips",
        "/api/clips",
        "/api/clips/{id}",
        "/api/clips/{id}/stop",
        "/api/clips/{id}/extend",
        "/api/clips/{id}/file",
        "/metrics",
        "/healthz",
    ] {
        assert!(
            openapi["paths"][route].is_object(),
            "{route} not documented"
        );
    }

    // Paths.
    let refused = |body: &str, status: u16, says: &str| {
        let r = svc.post("/api/cameras/demo/clips", body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{body}: {error}");
    };
    refused(r#"{"filename": "../x.mp4"}"#, 403, "'..' is not allowed");
    refused(
        r#"{"filename": "a/../../x.mp4"}"#,
        403,
        "'..' is not allowed",
    );
    let abs = format!(r#"{{"filename": "{}/x.mp4"}}"#, outside.display());
    refused(&abs, 403, "must lie inside the recordings directory");
    refused(r#"{"filename": "/etc/x.mp4"}"#, 403, "must lie inside");
    refused(r#"{"filename": "out/x.mp4"}"#, 403, "symbolic link");
    refused(r#"{"filename": "out/new/x.mp4"}"#, 403, "symbolic link");
    refused(r#"{"filename": "x.mp4.partial"}"#, 400, ".partial");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

    // The same target twice: while recording, and once done.
    let first = svc.clip(
        "demo",
        r#"{"filename": "same.mp4", "duration": 1, "lookback": 0}"#,
    );
    refused(r#"{"filename": "same.mp4"}"#, 409, "in progress");
    svc.wait_final(first["id"].as_str().unwrap(), Duration::from_secs(30));
    refused(r#"{"filename": "same.mp4"}"#, 409, "already exists");
    // An absolute path inside the recordings directory is fine.
    let inside = format!(
        r#"{{"filename": "{}/abs.mp4", "duration": 1, "lookback": 0}}"#,
        recordings.canonicalize().unwrap().display()
    );
    svc.clip("demo", &inside);

    // Bodies.
    refused("{", 400, "request body");
    refused(r#"{"durration": 3}"#, 400, "unknown field");
    refused(r#"{"duration": -1}"#, 400, "duration");
    refused(r#"{"duration": 0}"#, 400, "duration");
    refused(r#"{"lookback": 1e9}"#, 400, "lookback");
    let big = format!(r#"{{"filename": "{}.mp4"}}"#, "a".repeat(20_000));
    let r = svc.post("/api/cameras/demo/clips", &big);
    assert_eq!(r.status, 413);

    // Names.
    let r = svc.post("/api/cameras/nope/clips", "{}");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("no camera named"));
    let r = svc.post("/api/cameras/off/clips", "{}");
    assert_eq!(r.status, 409);
    assert!(r.text().contains("disabled"));
    assert_eq!(svc.get("/api/clips/nope").status, 404);
    assert_eq!(svc.post("/api/clips/nope/stop", "").status, 404);
    let extend_first = format!("/api/clips/{}/extend", first["id"].as_str().unwrap());
    assert_eq!(svc.post(&extend_first, "").status, 400);
    assert_eq!(svc.post(&extend_first, r#"{"seconds": 1}"#).status, 409);
}

#[test]
fn sigterm_finalizes_the_clip_in_progress_and_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let mut svc = Service::start(d.path(), &config(d.path(), DEMO));
    svc.wait_cameras(&["demo"], 1.0, Duration::from_secs(30));
    let clip = svc.clip(
        "demo",
        r#"{"filename": "long.mp4", "duration": 60, "lookback": 1}"#,
    );
    sleep(Duration::from_secs(4));
    let status = svc.signal_and_wait(SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status}; log:\n{}", svc.log());
    let path = clip_path(&clip);
    assert!(path.exists(), "log:\n{}", svc.log());
    assert!(!Path::new(&format!("{}.partial", path.display())).exists());
    assert_decodes_cleanly(path);
    check_structure(path);
    let seconds = Probe::of(path).duration;
    assert!((2.0..15.0).contains(&seconds), "{seconds}");

    // Finalized at shutdown, it is in the history the next start lists.
    let config = svc.config.clone();
    drop(svc);
    let svc = Service::start_with(&config);
    let id = clip["id"].as_str().unwrap();
    let listed = svc.get(&format!("/api/clips/{id}")).json();
    assert_eq!(listed["state"], "done", "{listed}");
    assert_eq!(clip_path(&listed), path);
    assert!(
        (listed["duration"].as_f64().unwrap() - seconds).abs() < 0.05,
        "{listed}"
    );
}

#[test]
fn kill_9_mid_clip_then_restart_recovers_the_clip() {
    let d = tempfile::tempdir().unwrap();
    let mut svc = Service::start(d.path(), &config(d.path(), DEMO));
    svc.wait_cameras(&["demo"], 2.0, Duration::from_secs(30));
    let earlier = svc.clip(
        "demo",
        r#"{"filename": "earlier.mp4", "duration": 1, "lookback": 1}"#,
    );
    let earlier = svc.wait_final(earlier["id"].as_str().unwrap(), Duration::from_secs(20));
    assert_eq!(earlier["state"], "done", "{earlier}");
    let clip = svc.clip(
        "demo",
        r#"{"filename": "crash.mp4", "duration": 60, "lookback": 2}"#,
    );
    let id = clip["id"].as_str().unwrap();
    let start = Instant::now();
    while svc.get(&format!("/api/clips/{id}")).json()["duration"].as_f64() < Some(4.0) {
        assert!(start.elapsed() < Duration::from_secs(30));
        sleep(Duration::from_millis(200));
    }
    svc.signal_and_wait(SIGKILL, Duration::from_secs(10));
    let path = clip_path(&clip).to_owned();
    let partial = Path::new(&format!("{}.partial", path.display())).to_owned();
    assert!(partial.exists() && !path.exists());

    let config = svc.config.clone();
    drop(svc);
    let svc = Service::start_with(&config);
    let clips = svc.get("/api/clips").json();
    let recovered = clips
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["recovered"] == true)
        .unwrap_or_else(|| panic!("no recovered clip in {clips}"));
    assert_eq!(clip_path(recovered), path);
    assert_good_clip(recovered);
    assert!(!partial.exists());
    assert!(
        recovered["duration"].as_f64().unwrap() >= 3.0,
        "{recovered}"
    );
    assert!(svc.log().contains("recovered an interrupted clip"));
    let metrics = svc.request("GET", "/metrics", None, &[], None).text();
    assert!(
        metrics.contains("preroll_clips_recovered_total 1\n"),
        "{metrics}"
    );
    // The clip finished before the kill is still listed, as it was, and served; with the
    // recovered one, two clips are done.
    let id = earlier["id"].as_str().unwrap();
    assert_eq!(svc.get(&format!("/api/clips/{id}")).json(), earlier);
    let file = svc.get(&format!("/api/clips/{id}/file"));
    assert_eq!(file.status, 200);
    assert!(
        metrics.contains("preroll_clips{state=\"done\"} 2\n"),
        "{metrics}"
    );
}

/// A lookback that ends inside the part in progress: the clip must start with the GOP that
/// part belongs to (or the one before, when the part starts a GOP), not with the oldest one in
/// the ring: it once took the whole ring, 12 s of pre-roll for a 0.02 s lookback, reporting 0 s.
#[test]
fn a_lookback_inside_the_segment_in_progress_takes_one_gop_not_the_whole_ring() {
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    svc.wait_cameras(&["demo"], 6.0, Duration::from_secs(60));
    // The demo has a keyframe every second: a lookback of 0 always ends inside the segment in
    // progress, unless a keyframe arrived in the very instant of the request.
    let clips: Vec<Value> = (0..3)
        .map(|_| {
            let clip = svc.clip("demo", r#"{"duration": 1, "lookback": 0}"#);
            sleep(Duration::from_millis(330));
            clip
        })
        .collect();
    for clip in clips {
        let done = svc.wait_final(clip["id"].as_str().unwrap(), Duration::from_secs(30));
        assert_good_clip(&done);
        let preroll = done["preroll"].as_f64().unwrap();
        let duration = done["duration"].as_f64().unwrap();
        // At most one GOP (1 s) before the trigger (the clip waits for the part in progress,
        // which may start a new GOP), plus the 250 ms the ingest runtime may hold a part.
        assert!(preroll <= 1.3, "{done}");
        assert!(duration <= 3.6, "the ring's 6 s went in: {done}");
        // The reported pre-roll is what the file holds before the trigger, and the clip ends
        // within a frame of the requested second after it, plus the demo's two B-frames (the
        // last P-frame decoded before the end is shown after it) and up to a frame of error in
        // where the arrival clock places a part (seen: +0.138 s on a loaded machine).
        let after = duration - preroll;
        assert!(
            (1.0 - 0.05..=1.0 + 0.16).contains(&after),
            "{after} s after the trigger: {done}"
        );
    }
}

#[test]
fn invalid_config_lists_every_problem_and_starts_nothing() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("bad.toml");
    std::fs::write(
        &path,
        "[api]\nbind = \"everywhere\"\n[storage]\nrecordings = \"r\"\n\
         [[cameras]]\nname = \"a b\"\nsource = \"rtsp://u:hidden-pw@\"\ntransport = \"quic\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_preroll"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("PREROLL_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "api.bind:",
        "api.token:",
        "cameras[0].name:",
        "cameras[0].source:",
        "cameras[0].transport:",
    ] {
        assert!(stderr.contains(key), "{key} missing:\n{stderr}");
    }
    assert!(stderr.contains("5 problems"), "{stderr}");
    assert!(!stderr.contains("hidden-pw"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
    assert!(!d.path().join("r").exists(), "started something");
}
