//! Continuous recording with the real `preroll serve`: a gst-rtsp-server camera recorded in
//! 5 s files across a camera restart (the gap shows in `GET .../recordings`, every file
//! decodes, the files meet at their seams), then preroll killed with SIGKILL and started
//! again with its index deleted: the interrupted file is recovered, the index is rebuilt from
//! the files, and what the kill lost is at most about a part. And continuous retention.

mod common;

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::rtsp::{Auth, RtspServer};
use common::serve::{Service, config};
use common::{assert_decodes_cleanly, unix_seconds, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn seconds(rfc3339: &Value) -> f64 {
    unix_seconds(rfc3339.as_str().expect("a time"))
}

fn recordings(svc: &Service, camera: &str) -> Value {
    let r = svc.get(&format!("/api/cameras/{camera}/recordings"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn probe_duration(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

#[test]
fn files_across_a_camera_restart_show_the_gap_and_a_kill_loses_about_a_part() {
    let mut srv = RtspServer::start(&[("cam", "live:h264")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let cameras = format!(
        "[[cameras]]\nname = \"cam\"\nsource = \"{}\"\ncontinuous = true\n\
         continuous_file_seconds = 5\n",
        srv.url("cam")
    );
    let text = config(d.path(), &cameras);
    let mut svc = Service::start(d.path(), &text);
    svc.wait_cameras(&["cam"], 1.0, LIMIT);
    sleep(Duration::from_secs(11));
    srv.kill();
    sleep(Duration::from_secs(4));
    srv.restart().unwrap();
    svc.wait_cameras(&["cam"], 1.0, LIMIT);
    sleep(Duration::from_secs(8));

    let listed = recordings(&svc, "cam");
    let ranges = listed["ranges"].as_array().unwrap().clone();
    let gaps = listed["gaps"].as_array().unwrap();
    assert!(ranges.len() >= 3, "{listed:#}");
    assert_eq!(gaps.len(), 1, "one gap, the camera's restart: {listed:#}");
    let gap = gaps[0]["seconds"].as_f64().unwrap();
    assert!((3.0..15.0).contains(&gap), "gap of {gap} s: {listed:#}");
    // The files meet at their seams, except across the gap.
    let mut seams = Vec::new();
    for pair in ranges.windows(2) {
        seams.push(seconds(&pair[1]["start"]) - seconds(&pair[0]["end"]));
    }
    let across = seams.iter().filter(|s| **s > 1.0).count();
    assert_eq!(across, 1, "seams {seams:?}");
    assert!(
        seams.iter().all(|s| *s > 1.0 || s.abs() < 0.1),
        "seams {seams:?}"
    );
    for r in &ranges {
        let path = Path::new(r["path"].as_str().unwrap());
        assert_decodes_cleanly(path);
        let listed_length = seconds(&r["end"]) - seconds(&r["start"]);
        let probed = probe_duration(path);
        assert!(
            (probed - listed_length).abs() < 0.1,
            "{}: ffprobe {probed} s, listed {listed_length} s",
            path.display()
        );
        assert!(
            listed_length < 5.0 + 1.5,
            "a file longer than 5 s + a GOP: {r}"
        );
    }
    assert!(listed["in_progress"]["path"].is_string(), "{listed:#}");

    // SIGKILL mid-file; the index lost too.
    sleep(Duration::from_secs(2));
    let killed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    svc.signal_and_wait(9, Duration::from_secs(10));
    let camera_dir = d.path().join("recordings/continuous/cam");
    let partials: Vec<PathBuf> = std::fs::read_dir(&camera_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().unwrap().is_dir())
        .flat_map(|day| {
            std::fs::read_dir(day.path())
                .unwrap()
                .filter_map(Result::ok)
        })
        .map(|f| f.path())
        .filter(|p| p.to_string_lossy().ends_with(".mp4.partial"))
        .collect();
    assert_eq!(partials.len(), 1, "{partials:?}");
    let partial = partials[0].clone();
    let in_progress = partial
        .to_string_lossy()
        .trim_end_matches(".partial")
        .to_owned();
    std::fs::remove_file(camera_dir.join("index.jsonl")).unwrap();
    let svc = Service::start(d.path(), &text);
    assert!(!partial.exists(), "the partial was not recovered");
    let after = recordings(&svc, "cam");
    let rebuilt: Vec<&Value> = after["ranges"].as_array().unwrap().iter().collect();
    for before in &ranges {
        assert!(
            rebuilt.iter().any(|r| r["path"] == before["path"]
                && r["start"] == before["start"]
                && r["end"] == before["end"]),
            "{before} is not in the rebuilt index: {after:#}"
        );
    }
    let recovered = rebuilt
        .iter()
        .find(|r| r["path"] == in_progress.as_str())
        .unwrap_or_else(|| panic!("the interrupted file is not listed: {after:#}"));
    assert_decodes_cleanly(Path::new(&in_progress));
    let lost = killed_at - seconds(&recovered["end"]);
    eprintln!("continuous: the kill lost {lost:.3} s");
    assert!(
        lost < 0.8,
        "the kill lost {lost:.3} s of media (a part is 0.5 s)"
    );
    assert!(
        svc.log()
            .contains("recovered an interrupted continuous recording")
    );
    // Recovered continuous files are not clips.
    let clips = svc.get("/api/clips").json();
    assert_eq!(clips.as_array().unwrap().len(), 0, "{clips}");
}

#[test]
fn continuous_retention_keeps_the_newest_bytes_and_the_api_names_bad_requests() {
    let d = tempfile::tempdir().unwrap();
    let cameras = "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\ncontinuous = true\n\
                   continuous_file_seconds = 5\n\n[[cameras]]\nname = \"plain\"\nsource = \"demo\"\n";
    let text = format!(
        "{}\n[retention]\ncontinuous_max_bytes = 700000\ninterval = 1\n",
        config(d.path(), cameras)
    );
    let svc = Service::start(d.path(), &text);
    let dir = d.path().join("recordings/continuous/demo");
    let files_bytes = || -> u64 {
        recordings(&svc, "demo")["ranges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["bytes"].as_u64().unwrap())
            .sum()
    };
    // About 330 kB a file: past 700 kB after three, then the oldest go.
    let deleted = wait_for(
        Duration::from_secs(40),
        || {
            let text = svc.get("/metrics").text();
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(
                        "preroll_retention_continuous_deleted_total{reason=\"continuous_max_bytes\"} ",
                    )?
                    .parse::<f64>()
                    .ok()
                })
                .unwrap_or(0.0)
        },
        |n| *n >= 1.0,
        |n| format!("{n} deleted"),
    );
    assert!(deleted >= 1.0);
    let listed = recordings(&svc, "demo");
    assert!(files_bytes() <= 700_000, "{listed:#}");
    // What is left is the newest: the first file listed starts after the deleted ones.
    let on_disk: usize = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|day| {
            std::fs::read_dir(day.path())
                .unwrap()
                .filter(|f| {
                    f.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".mp4")
                })
                .count()
        })
        .sum();
    assert_eq!(
        on_disk,
        listed["ranges"].as_array().unwrap().len(),
        "files on disk and ranges listed differ: {listed:#}"
    );
    assert!(
        svc.log()
            .contains("continuous recording deleted by retention")
    );

    for (path, status, says) in [
        (
            "/api/cameras/plain/recordings",
            404,
            "does not record continuously",
        ),
        ("/api/cameras/nosuch/recordings", 404, "no camera named"),
        (
            "/api/cameras/demo/recordings?start=yesterday",
            400,
            "is not an RFC 3339 time",
        ),
        (
            "/api/cameras/demo/recordings?start=2026-11-30T10:00:00Z&end=2026-11-30T09:00:00Z",
            400,
            "is after end",
        ),
    ] {
        let r = svc.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.text().contains(says), "{path}: {}", r.text());
    }
    // A span in the past with nothing recorded is one gap.
    let old = svc
        .get("/api/cameras/demo/recordings?start=2020-01-01T00:00:00Z&end=2020-01-01T01:00:00Z")
        .json();
    assert_eq!(old["ranges"].as_array().unwrap().len(), 0, "{old}");
    assert_eq!(old["gaps"][0]["seconds"], 3600.0, "{old}");
}
