//! Retention on a real, small tmpfs with the real `preroll serve`: clips pile up past
//! `max_bytes` and the oldest go first, a clip marked `keep` and a clip in progress stay, each
//! deletion is an event and a metric; then the disk is filled to the last byte and retention
//! frees it by itself (`min_free_bytes`), and clips record again. And `preroll prune`, the
//! same pass from the command line, on files of chosen ages.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::serve::{Service, TOKEN, config};
use common::tmpfs::{Tmpfs, fill_up, free_bytes};
use common::wait_for;
use serde_json::Value;

const MAX_BYTES: u64 = 1_000_000;
const MIN_FREE: u64 = 1_000_000;

/// Finished clip files (`*.mp4`) under `dir` and their sizes.
fn clip_files(dir: &Path) -> HashMap<PathBuf, u64> {
    let mut out = HashMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let t = e.file_type().unwrap();
            if t.is_dir() && e.file_name() != ".preroll" {
                pending.push(e.path());
            } else if t.is_file() && e.path().extension().is_some_and(|x| x == "mp4") {
                out.insert(e.path(), e.metadata().unwrap().len());
            }
        }
    }
    out
}

fn metric(svc: &Service, line_start: &str) -> f64 {
    let text = svc.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in metrics:\n{text}"))
}

fn patch(svc: &Service, id: &str, body: &str) -> common::serve::Reply {
    svc.request(
        "PATCH",
        &format!("/api/clips/{id}"),
        Some(TOKEN),
        &[],
        Some(body),
    )
}

#[test]
fn the_oldest_go_first_kept_and_recording_clips_stay_and_a_full_disk_frees_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let recordings = tmp.path().join("recordings");
    let _tmpfs = Tmpfs::mount(&recordings, "5m");
    let text = format!(
        "{}\n[retention]\nmax_bytes = {MAX_BYTES}\nmin_free_bytes = \"{}kB\"\ninterval = 1\n",
        config(
            tmp.path(),
            "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\npreroll_seconds = 5\n"
        ),
        MIN_FREE / 1000
    );
    let svc = Service::start(tmp.path(), &text);
    svc.wait_cameras(&["demo"], 2.0, Duration::from_secs(30));
    let deletions = svc.events("/api/events?kinds=clip.deleted", None);
    let short = r#"{"duration": 2, "lookback": 1}"#;
    let record = |body: &str| {
        let id = svc.clip("demo", body)["id"].as_str().unwrap().to_owned();
        let done = svc.wait_final(&id, Duration::from_secs(30));
        assert_eq!(done["state"], "done", "{done}");
        done
    };

    // The first clip is kept; bad keep requests are refused by name.
    let kept = record(short);
    let kept_id = kept["id"].as_str().unwrap();
    let r = patch(&svc, kept_id, r#"{"keep": true}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["keep"], true);
    assert_eq!(
        svc.get(&format!("/api/clips/{kept_id}")).json()["keep"],
        true
    );
    for (body, status, says) in [
        ("{}", 400, "missing field `keep`"),
        (r#"{"keep": "yes"}"#, 400, "invalid type"),
        (r#"{"keep": true, "x": 1}"#, 400, "unknown field `x`"),
    ] {
        let r = patch(&svc, kept_id, body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.text().contains(says), "{body}: {}", r.text());
    }
    assert_eq!(patch(&svc, "no-such-clip", r#"{"keep": true}"#).status, 404);

    // Finished in this order: six short clips, two more while a long one records, the long.
    let mut order: Vec<Value> = (0..6).map(|_| record(short)).collect();
    let long = svc.clip("demo", r#"{"duration": 10, "lookback": 0}"#);
    let long_id = long["id"].as_str().unwrap().to_owned();
    let deleted_before = metric(
        &svc,
        "preroll_retention_deleted_total{reason=\"max_bytes\"}",
    );
    order.push(record(short));
    order.push(record(short));
    let during = metric(
        &svc,
        "preroll_retention_deleted_total{reason=\"max_bytes\"}",
    );
    assert_eq!(
        svc.get(&format!("/api/clips/{long_id}")).json()["state"],
        "recording",
        "the long clip should still record while retention deletes"
    );
    assert!(
        during > deleted_before,
        "retention deleted nothing while the long clip recorded ({deleted_before} → {during})"
    );
    order.push(svc.wait_final(&long_id, Duration::from_secs(30)));

    let kept_path = PathBuf::from(kept["path"].as_str().unwrap());
    let files = wait_for(
        Duration::from_secs(10),
        || clip_files(&recordings),
        |f| f.values().sum::<u64>() <= MAX_BYTES,
        |f| format!("{f:#?}"),
    );
    assert!(
        files.contains_key(&kept_path),
        "the kept clip went: {files:#?}"
    );
    // What is left is the newest clips; the newest deleted one was needed to get under.
    let left: Vec<bool> = order
        .iter()
        .map(|c| files.contains_key(Path::new(c["path"].as_str().unwrap())))
        .collect();
    let first_left = left.iter().position(|l| *l).expect("some clip left");
    assert!(
        left[first_left..].iter().all(|l| *l),
        "not the oldest went first: {left:?}"
    );
    assert!(first_left > 0, "nothing was deleted: {files:#?}");
    let newest_deleted = order[first_left - 1]["bytes"].as_u64().unwrap();
    let total: u64 = files.values().sum();
    assert!(
        total + newest_deleted > MAX_BYTES,
        "more was deleted than needed: {total} + {newest_deleted} <= {MAX_BYTES}"
    );

    // One event per deleted clip, with the reason, the clip and its path; the entries went.
    let events: Vec<Value> = (0..first_left)
        .map(|_| deletions.next(Duration::from_secs(10)))
        .collect();
    for (clip, event) in order[..first_left].iter().zip(&events) {
        assert_eq!(event["reason"], "max_bytes", "{event}");
        assert_eq!(event["clip"]["id"], clip["id"], "{event}");
        assert_eq!(event["path"], clip["path"], "{event}");
        assert_eq!(event["camera"], "demo", "{event}");
        let id = clip["id"].as_str().unwrap();
        assert_eq!(svc.get(&format!("/api/clips/{id}")).status, 404);
    }
    assert_eq!(
        metric(
            &svc,
            "preroll_retention_deleted_total{reason=\"max_bytes\"}"
        ),
        first_left as f64
    );

    // The disk filled to the last byte by something else: retention frees what it can (all
    // but the kept clip), needing no space to do it, and clips record again.
    fill_up(&recordings.join("filler.bin"));
    assert!(free_bytes(&recordings) < 64 * 1024);
    let freed = deletions.next(Duration::from_secs(15));
    assert_eq!(freed["reason"], "min_free", "{freed}");
    let after = wait_for(
        Duration::from_secs(10),
        || clip_files(&recordings),
        |f| f.len() == 1,
        |f| format!("{f:#?}"),
    );
    assert!(after.contains_key(&kept_path), "{after:#?}");
    let again = record(r#"{"duration": 1, "lookback": 0.5}"#);
    assert!(again["bytes"].as_u64().unwrap() > 10_000, "{again}");
    assert!(metric(&svc, "preroll_retention_deleted_total{reason=\"min_free\"}") >= 1.0);
    assert!(svc.log().contains("clip deleted by retention"));
    // Unmarked, the kept clip is retention's like any other.
    let r = patch(&svc, kept_id, r#"{"keep": false}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        Duration::from_secs(10),
        || kept_path.exists(),
        |exists| !exists,
        |_| "the unmarked clip is still there".into(),
    );
}

fn prune(config: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_preroll"))
        .arg("prune")
        .arg("--config")
        .arg(config)
        .args(extra)
        .env_remove("PREROLL_TOKEN")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn prune_applies_ages_and_sizes_per_camera_and_leaves_what_is_not_a_clip() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    for d in ["front", "back", "continuous", ".preroll", "other"] {
        fs::create_dir_all(rec.join(d)).unwrap();
    }
    let file = |rel: &str, bytes: usize, age: &str| {
        let p = rec.join(rel);
        fs::write(&p, vec![0u8; bytes]).unwrap();
        let ok = Command::new("touch")
            .args(["-d", age])
            .arg(&p)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    for i in 1..=4 {
        file(
            &format!("front/f{i}.mp4"),
            1000,
            // Half a day off each whole day, so no file sits on the 7 d boundary however
            // long the machine takes between `touch` and the prune.
            &format!("{} hours ago", (10 - i) * 24 - 12),
        );
        file(
            &format!("back/b{i}.mp4"),
            1000,
            &format!("{} hours ago", 10 - i),
        );
    }
    file("continuous/old.mp4", 5000, "1 year ago");
    file("other/notes.txt", 10, "1 year ago");
    file("other/o1.mp4", 1000, "1 hour ago");
    std::os::unix::fs::symlink("/etc/hostname", rec.join("front/link.mp4")).unwrap();
    let config = tmp.path().join("c.toml");
    fs::write(
        &config,
        "[storage]\nrecordings = \"rec\"\n[retention]\nmax_age = \"7d\"\nmax_bytes = \"5kB\"\n\
         [[cameras]]\nname = \"front\"\nsource = \"demo\"\n\
         [[cameras]]\nname = \"back\"\nsource = \"demo\"\nretention = { max_bytes = 2000 }\n",
    )
    .unwrap();

    let (ok, dry) = prune(&config, &["--dry-run"]);
    assert!(ok, "{dry}");
    // front: 8.5 and 7.5 days old go by age; back: over its own 2000 bytes, its two oldest; then
    // 4000 left of 5000 allowed. Nothing else is a clip of retention's.
    let expect = [
        ("front/f1.mp4", "max_age"),
        ("front/f2.mp4", "max_age"),
        ("back/b1.mp4", "camera_max_bytes"),
        ("back/b2.mp4", "camera_max_bytes"),
    ];
    for (rel, reason) in expect {
        let line = format!(
            "would delete {} (1000 bytes, {reason})",
            rec.canonicalize().unwrap().join(rel).display()
        );
        assert!(dry.contains(&line), "no {line:?} in:\n{dry}");
    }
    assert!(
        dry.contains("9 clip files, 9000 bytes; would delete 4 files, 4000 bytes"),
        "{dry}"
    );
    assert_eq!(clip_files(&rec).len(), 10, "a dry run deleted something");

    let (ok, out) = prune(&config, &[]);
    assert!(ok, "{out}");
    let left = clip_files(&rec);
    for (rel, _) in expect {
        assert!(!rec.join(rel).exists(), "{rel} is still there:\n{out}");
    }
    assert!(rec.join("continuous/old.mp4").exists());
    assert!(rec.join("other/notes.txt").exists());
    assert!(fs::symlink_metadata(rec.join("front/link.mp4")).is_ok());
    assert_eq!(left.len(), 6, "{left:#?}");

    // A mistake in the limits is named with its key, and nothing is deleted.
    fs::write(
        &config,
        "[storage]\nrecordings = \"rec\"\n[retention]\nmax_age = \"7 fortnights\"\n\
         min_free_bytes = \"1GB\"\nmin_free_percent = 5\n[[cameras]]\nname = \"front\"\n\
         source = \"demo\"\nretention = { max_bytes = \"lots\" }\n",
    )
    .unwrap();
    let (ok, out) = prune(&config, &[]);
    assert!(!ok, "{out}");
    for says in [
        "retention.max_age: \"7 fortnights\" is not an age",
        "retention.min_free_percent: set min_free_bytes or min_free_percent, not both",
        "cameras[0].retention.max_bytes: \"lots\" is not a size",
    ] {
        assert!(out.contains(says), "no {says:?} in:\n{out}");
    }
    assert_eq!(clip_files(&rec).len(), 6);
}
