//! The recordings directory fills up during a clip: that clip fails with an error naming the
//! full disk and its file, keeps what it had recorded as a shorter playable clip, and nothing
//! else suffers — the earlier clip on the same disk, the other camera's clip in another
//! directory, both rings, the service. A clip asked for on the full disk fails at once, and
//! clips succeed again once space is freed. The real `preroll serve` on a real tmpfs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::serve::{Service, config};
use common::tmpfs::{Tmpfs, fill, fill_up, free_bytes};
use common::*;
use serde_json::Value;

/// Size of the full disk: room for a short clip, then filled to what the test wants.
const TMPFS_SIZE: &str = "1m";

/// What a clip's header region takes before any media (ftyp + moov + reserved room,
/// rounded up to 4 KiB): the demo's header is well under 4 KiB, plus 8 KiB of room.
const HEADER_REGION: u64 = 12 * 1024;

fn camera<'a>(cams: &'a Value, name: &str) -> &'a Value {
    cams.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no camera {name} in {cams}"))
}

/// The value of `preroll_disk_free_bytes` for `dir`.
fn disk_free_metric(svc: &Service, dir: &Path) -> u64 {
    let page = svc.request("GET", "/metrics", None, &[], None).text();
    let prefix = format!("preroll_disk_free_bytes{{dir=\"{}\"}} ", dir.display());
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{page}"))
}

fn clip_path(clip: &Value) -> PathBuf {
    PathBuf::from(clip["path"].as_str().expect("path"))
}

fn partial_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.partial", path.display()))
}

/// The clip file decodes cleanly, is structurally sound, and is as long as the API says.
#[track_caller]
fn assert_playable(clip: &Value) {
    let path = clip_path(clip);
    assert_decodes_cleanly(&path);
    let moov = check_structure(&path);
    let header = moov.mvhd.duration as f64 / f64::from(moov.mvhd.timescale);
    let api = clip["duration"].as_f64().expect("duration");
    assert!(
        (header - api).abs() < 0.002,
        "{}: the API says {api} s, the file's header {header} s",
        path.display()
    );
    assert_eq!(
        clip["bytes"].as_u64(),
        Some(fs::metadata(&path).unwrap().len()),
        "{clip}"
    );
}

/// The ids in the clip history of a recordings directory; every line must be a whole clip.
fn history_ids(recordings: &Path) -> Vec<String> {
    let path = recordings.join(".preroll/clips.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{text}");
    text.lines()
        .map(|line| {
            let clip: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {e}: {line:?}", path.display()));
            clip["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

/// Every file under `dir` but the fillers and the clip history: no `.partial` is left,
/// every clip plays.
fn assert_every_clip_plays(dir: &Path, fillers: &[&Path]) -> usize {
    let mut clips = 0;
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path == dir.join(".preroll") {
                history_ids(dir);
            } else if path.is_dir() {
                dirs.push(path);
            } else if !fillers.contains(&path.as_path()) {
                assert_eq!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("mp4"),
                    "unexpected file {}",
                    path.display()
                );
                assert_decodes_cleanly(&path);
                check_structure(&path);
                clips += 1;
            }
        }
    }
    clips
}

#[test]
fn a_full_disk_fails_its_clip_keeps_what_was_recorded_and_spares_everything_else() {
    let d = tempfile::tempdir().unwrap();
    // Canonical, as the service names its directories and clips.
    let root = d.path().canonicalize().unwrap();
    let full = root.join("recordings");
    let other = root.join("other");
    fs::create_dir_all(&other).unwrap();
    // Declared before the service, so the service is killed before the unmount.
    let _tmpfs = Tmpfs::mount(&full, TMPFS_SIZE);
    // `config` ends with the [storage] table open: `allowed` goes into it.
    let cameras = format!(
        "allowed = [\"{}\"]\n\n\
         [[cameras]]\nname = \"a\"\nsource = \"demo\"\n\n\
         [[cameras]]\nname = \"b\"\nsource = \"demo\"\n",
        other.display()
    );
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["a", "b"], 4.0, Duration::from_secs(60));

    // A clip on the small disk while it has room: it must come through untouched.
    let before = svc.clip("a", r#"{"duration": 1, "lookback": 1}"#);
    let before = svc.wait_final(before["id"].as_str().unwrap(), Duration::from_secs(20));
    assert_eq!(before["state"], "done", "{before}");
    assert_playable(&before);
    let before_bytes = fs::read(clip_path(&before)).unwrap();

    // Leave room for the header, the lookback and about 3 s more of camera a's media.
    let cams = svc.get("/api/cameras").json();
    let a = camera(&cams, "a");
    let rate = a["ring_bytes"].as_f64().unwrap() / a["ring_seconds"].as_f64().unwrap();
    let room = HEADER_REGION + (rate * 5.0) as u64;
    let free = free_bytes(&full);
    assert!(
        free > room + 64 * 1024,
        "{TMPFS_SIZE} tmpfs too small: {free} bytes free, the test leaves {room} (camera a: {rate:.0} B/s)"
    );
    let filler = full.join("filler-1.bin");
    fill(&filler, free - room);

    // The clip that fills the disk, and one on camera b into the other directory meanwhile.
    let b_path = other.join("b-during.mp4");
    let b_clip = svc.clip(
        "b",
        &format!(
            r#"{{"filename": "{}", "duration": 6, "lookback": 2}}"#,
            b_path.display()
        ),
    );
    let asked = Instant::now();
    let filling = svc.clip("a", r#"{"duration": 20, "lookback": 2}"#);
    let filling = svc.wait_final(filling["id"].as_str().unwrap(), Duration::from_secs(30));
    let failed_after = asked.elapsed();
    eprintln!("the clip that filled the disk: {filling}");
    assert_eq!(filling["state"], "failed", "{filling}");
    assert!(
        failed_after < Duration::from_secs(15),
        "the disk was full after a few seconds, yet the clip failed only after {failed_after:?}"
    );
    let path = clip_path(&filling);
    let error = filling["error"].as_str().unwrap();
    for want in [
        "No space left on device".to_owned(),
        partial_of(&path).display().to_string(),
        format!("kept as {}", path.display()),
    ] {
        assert!(error.contains(&want), "{want:?} not in the error: {error}");
    }
    // What was written before the disk filled is a playable, shorter clip.
    assert!(!partial_of(&path).exists());
    let kept = filling["duration"].as_f64().unwrap();
    assert!(
        kept > 1.0 && kept < 20.0,
        "kept {kept} s of a 2 + 20 s clip: {filling}"
    );
    assert_playable(&filling);

    // The disk is full before the clip starts: it fails at once and leaves no file.
    let filler_2 = full.join("filler-2.bin");
    fill_up(&filler_2);
    let free_now = free_bytes(&full);
    assert!(free_now < HEADER_REGION, "{free_now} bytes still free");
    assert_eq!(disk_free_metric(&svc, &full), free_now);
    let asked = Instant::now();
    let on_full = svc.clip("a", r#"{"duration": 5, "lookback": 2}"#);
    let on_full = svc.wait_final(on_full["id"].as_str().unwrap(), Duration::from_secs(10));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "a clip on a full disk took {:?} to fail",
        asked.elapsed()
    );
    eprintln!("the clip asked for on the full disk: {on_full}");
    assert_eq!(on_full["state"], "failed", "{on_full}");
    let error = on_full["error"].as_str().unwrap();
    let path = clip_path(&on_full);
    for want in [
        "No space left on device".to_owned(),
        partial_of(&path).display().to_string(),
        "no media had been written".to_owned(),
    ] {
        assert!(error.contains(&want), "{want:?} not in the error: {error}");
    }
    assert!(!path.exists() && !partial_of(&path).exists());
    // Whether or not its history line found room, the API lists it.
    let listed = svc.get("/api/clips").json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == on_full["id"] && c["state"] == "failed"),
        "{listed}"
    );

    // Camera b's clip in the other directory is whole; both rings are as full as before.
    let b_clip = svc.wait_final(b_clip["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(b_clip["state"], "done", "{b_clip}");
    assert_eq!(clip_path(&b_clip), b_path);
    assert_playable(&b_clip);
    let cams = svc.get("/api/cameras").json();
    for name in ["a", "b"] {
        let c = camera(&cams, name);
        assert_eq!(c["connected"], true, "{c}");
        assert_eq!(c["reconnects"], 0, "{c}");
        assert!(c["ring_seconds"].as_f64().unwrap() >= 4.0, "{c}");
    }

    // Nothing that was good is damaged: the earlier clip is byte for byte what it was, and
    // every file in both directories plays.
    assert_eq!(fs::read(clip_path(&before)).unwrap(), before_bytes);
    let fillers = [filler.as_path(), filler_2.as_path()];
    assert_eq!(assert_every_clip_plays(&full, &fillers), 2);
    assert_eq!(assert_every_clip_plays(&other, &fillers), 1);

    // Space freed: the metric shows it and clips on the same disk succeed again.
    fs::remove_file(&filler).unwrap();
    fs::remove_file(&filler_2).unwrap();
    let freed = free_bytes(&full);
    assert!(freed > 256 * 1024, "{freed}");
    assert_eq!(disk_free_metric(&svc, &full), freed);
    let after = svc.clip("a", r#"{"duration": 2, "lookback": 1}"#);
    let after = svc.wait_final(after["id"].as_str().unwrap(), Duration::from_secs(20));
    assert_eq!(after["state"], "done", "{after}");
    assert_playable(&after);
    // The history takes lines again, whole, and still holds the clip from before the fill.
    let history = history_ids(&full);
    for clip in [&before, &after] {
        let id = clip["id"].as_str().unwrap().to_owned();
        assert!(history.contains(&id), "{id} not in {history:?}");
    }

    let metrics = svc.request("GET", "/metrics", None, &[], None).text();
    for want in [
        "preroll_clips_total{state=\"failed\"} 2\n",
        "preroll_clips_total{state=\"done\"} 3\n",
    ] {
        assert!(metrics.contains(want), "{want:?} missing from:\n{metrics}");
    }
    let health = svc.request("GET", "/healthz", None, &[], None);
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["cameras_connected"], 2);
}
