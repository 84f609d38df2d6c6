//! A client holding the token, or a local user who can write into the recordings directory,
//! tries what an attacker would: names that forge log lines or exceed file system limits,
//! symlinks planted (and raced) under the recordings directory, slow and many connections.
//! Each must get a clear JSON error or be contained; nothing may land outside.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use common::serve::{Service, config};

const DEMO: &str = "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n";

/// Every file, directory and symlink under `dir`, recursively (symlinks not followed).
fn everything_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            }
            out.push(e.path().display().to_string());
        }
    }
    out
}

#[test]
fn names_and_bodies_get_clear_json_errors_and_nothing_is_created() {
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    let recordings = d.path().join("recordings");
    let refused = |path: &str, body: &str, status: u16, says: &str| {
        let r = svc.post(path, body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{body}: {:?}",
            r.headers
        );
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{body}: {error}");
        assert!(
            !error.chars().any(char::is_control),
            "{body}: the error carries a control character: {error:?}"
        );
    };
    let clips = "/api/cameras/demo/clips";
    // Control characters: a forged log line, a terminal escape, a C1 control.
    refused(
        clips,
        r#"{"filename": "x\r\nInjected: yes.mp4"}"#,
        400,
        "control character (U+000D)",
    );
    refused(
        clips,
        r#"{"filename": "a\u001b[31mred.mp4"}"#,
        400,
        "U+001B",
    );
    refused(clips, r#"{"filename": "c1\u0085.mp4"}"#, 400, "U+0085");
    // Lengths: the file name with its .partial suffix, a directory name, the whole path.
    let long = format!(r#"{{"filename": "{}.mp4"}}"#, "a".repeat(246));
    refused(clips, &long, 400, "the limit is 247");
    let long_dir = format!(r#"{{"filename": "{}/x.mp4"}}"#, "d".repeat(256));
    refused(clips, &long_dir, 400, "directory name is 256 bytes");
    // `null` is not a value any field takes.
    refused(clips, r#"{"filename": null}"#, 400, "null");
    refused(clips, r#"{"duration": null}"#, 400, "null");
    // A body that is not an object (serde would read a struct from an array of its fields).
    refused(clips, "[30, 5]", 400, "expected a JSON object");
    // Over the body limit: still JSON.
    let big = format!(r#"{{"filename": "{}.mp4"}}"#, "a".repeat(20_000));
    refused(clips, &big, 413, "");
    // A method a route does not take, and a route that does not exist.
    let r = svc.request(
        "DELETE",
        "/api/cameras",
        Some(common::serve::TOKEN),
        &[],
        None,
    );
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.json()["error"].is_string(), "{}", r.text());
    assert!(svc.get("/nope").json()["error"].as_str().is_some());
    // Nothing reached the disk but the service's own directory.
    let made: Vec<String> = everything_under(&recordings)
        .into_iter()
        .filter(|p| !p.contains("/.preroll"))
        .collect();
    assert!(made.is_empty(), "{made:?}");
    assert!(
        !svc.log().lines().any(|l| l.starts_with("Injected")),
        "a forged line in the log:\n{}",
        svc.log()
    );

    // The longest name that fits is a clip like any.
    let fits = format!("{}.mp4", "a".repeat(243));
    let clip = svc.clip(
        "demo",
        &format!(r#"{{"filename": "{fits}", "duration": 1, "lookback": 0}}"#),
    );
    let id = clip["id"].as_str().unwrap().to_owned();

    // A clip's file where a later name needs a directory: a conflict, not a server error.
    svc.wait_final(&id, Duration::from_secs(30));
    refused(
        clips,
        &format!(r#"{{"filename": "{fits}/x.mp4"}}"#),
        409,
        "is a file, not a directory",
    );
    refused(
        &format!("/api/clips/{id}/extend"),
        "[1]",
        400,
        "expected a JSON object",
    );

    // Extensions stop at the documented cap (24 h after the trigger).
    let long_clip = svc.clip("demo", r#"{"duration": 86000, "lookback": 0}"#);
    let extend = format!("/api/clips/{}/extend", long_clip["id"].as_str().unwrap());
    let r = svc.post(&extend, r#"{"seconds": 300}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    refused(&extend, r#"{"seconds": 200}"#, 409, "the limit is 86400 s");
    let stop = format!("/api/clips/{}/stop", long_clip["id"].as_str().unwrap());
    assert_eq!(svc.post(&stop, "").status, 200);
    svc.wait_final(&id, Duration::from_secs(30));
    assert!(recordings.join(&fits).is_file());
}

#[test]
fn downloads_refuse_a_file_replaced_by_a_link_and_answer_410_when_it_is_gone() {
    let d = tempfile::tempdir().unwrap();
    let secret = d.path().join("secret.txt");
    std::fs::write(&secret, b"not for the API").unwrap();
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    let recordings = d.path().join("recordings");
    let mut ids = Vec::new();
    for name in ["cam/a.mp4", "cam/b.mp4", "c.mp4"] {
        let clip = svc.clip(
            "demo",
            &format!(r#"{{"filename": "{name}", "duration": 1, "lookback": 0}}"#),
        );
        ids.push(clip["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        svc.wait_final(id, Duration::from_secs(30));
    }
    let file = |id: &str| svc.get(&format!("/api/clips/{id}/file"));
    // Served, with ranges.
    let whole = file(&ids[2]);
    assert_eq!(whole.status, 200);
    assert_eq!(&whole.body[4..8], b"ftyp");
    let r = svc.request(
        "GET",
        &format!("/api/clips/{}/file", ids[2]),
        Some(common::serve::TOKEN),
        &[("Range", "bytes=4-7")],
        None,
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"ftyp");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 4-7/{}", whole.body.len()).as_str())
    );
    let r = svc.request(
        "GET",
        &format!("/api/clips/{}/file", ids[2]),
        Some(common::serve::TOKEN),
        &[("Range", &format!("bytes={}-", whole.body.len()))],
        None,
    );
    assert_eq!(r.status, 416, "{}", r.text());

    // The file replaced by a symlink to another file: not served.
    std::fs::remove_file(recordings.join("c.mp4")).unwrap();
    std::os::unix::fs::symlink(&secret, recordings.join("c.mp4")).unwrap();
    let r = file(&ids[2]);
    assert_eq!(r.status, 410, "{}", r.text());
    assert!(!r.text().contains("not for the API"));
    // Its directory replaced by a symlink to a directory holding a file of that name.
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("a.mp4"), b"not for the API either").unwrap();
    std::fs::rename(recordings.join("cam"), d.path().join("cam-moved")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, recordings.join("cam")).unwrap();
    let r = file(&ids[0]);
    assert_eq!(r.status, 410, "{}", r.text());
    assert!(!r.text().contains("either"));
    // Gone.
    std::fs::remove_file(recordings.join("cam")).unwrap();
    let r = file(&ids[1]);
    assert_eq!(r.status, 410, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("no longer there")
    );
}

#[test]
fn a_symlink_raced_under_the_recordings_directory_never_leads_a_clip_outside() {
    let d = tempfile::tempdir().unwrap();
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // Room for every clip asked for: the cap on clips in progress is not what is tested.
    let text = config(d.path(), DEMO).replacen("[api]\n", "[api]\nmax_clips_recording = 4096\n", 1);
    let svc = Service::start(d.path(), &text);
    svc.wait_cameras(&["demo"], 0.5, Duration::from_secs(30));
    let recordings = d.path().join("recordings");
    let race = recordings.join("race");
    // `race` flips between a real directory and a symlink to `outside`, atomically and as
    // fast as possible (RENAME_EXCHANGE with `alt`), so every check preroll makes can be
    // overtaken by a swap before it creates anything.
    let alt = recordings.join("alt");
    std::fs::create_dir(&race).unwrap();
    std::os::unix::fs::symlink(&outside, &alt).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, race, alt) = (stop.clone(), race.clone(), alt.clone());
        thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let exchanged = rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &race,
                    rustix::fs::CWD,
                    &alt,
                    rustix::fs::RenameFlags::EXCHANGE,
                );
                if exchanged.is_err() {
                    break;
                }
                swaps += 1;
            }
            swaps
        })
    };
    let mut created = 0;
    let mut refused = 0;
    for i in 0..300 {
        let r = svc.post(
            "/api/cameras/demo/clips",
            &format!(r#"{{"filename": "race/deeper/{i}.mp4", "duration": 0.2, "lookback": 0}}"#),
        );
        match r.status {
            201 => created += 1,
            // Refused as a symlink, or as changed while being opened.
            403 => refused += 1,
            s => panic!("{s}: {}", r.text()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    // Let the clips that started finish (or fail), then restart: recovery walks too.
    sleep(Duration::from_secs(3));
    let config = svc.config.clone();
    drop(svc);
    let svc = Service::start_with(&config);
    sleep(Duration::from_secs(1));
    let escaped = everything_under(&outside);
    assert!(
        escaped.is_empty(),
        "{} entries outside ({created} clips created, {refused} refused, {swaps} swaps): {:?}",
        escaped.len(),
        &escaped[..escaped.len().min(10)]
    );
    assert!(
        created + refused == 300 && created > 0 && refused > 0 && swaps > 100,
        "{created} created, {refused} refused, {swaps} swaps: the race was not run"
    );
    drop(svc);
}

/// Reads until the server closes the connection (or `limit` passes); returns whether it did.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if started.elapsed() > limit {
            return false;
        }
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn slow_and_many_clients_are_cut_off_and_capped() {
    let d = tempfile::tempdir().unwrap();
    let mut text = config(d.path(), DEMO);
    text = text.replacen(
        "[api]\n",
        "[api]\nheader_timeout = 1\nmax_connections = 20\n",
        1,
    );
    let svc = Service::start(d.path(), &text);
    let addr = svc.base.trim_start_matches("http://").to_owned();

    // A client that sends its headers a byte at a time is cut off at the header timeout.
    let mut slow = TcpStream::connect(&addr).unwrap();
    let started = Instant::now();
    let dripper = {
        let mut s = slow.try_clone().unwrap();
        thread::spawn(move || {
            for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
                .iter()
                .cycle()
            {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                sleep(Duration::from_millis(100));
            }
        })
    };
    assert!(
        closed_within(&mut slow, Duration::from_secs(10)),
        "a client dripping its headers was not cut off"
    );
    let cut_after = started.elapsed();
    dripper.join().unwrap();
    assert!(cut_after >= Duration::from_millis(900), "{cut_after:?}");

    // 200 clients that connect and say nothing: at most 20 are taken at a time (the rest wait
    // in the listen queue), so the service's descriptors do not grow with them, and each is
    // dropped at its header timeout.
    let before = open_fds(svc.pid());
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    sleep(Duration::from_millis(500));
    let during = open_fds(svc.pid());
    assert!(
        during <= before + 20 + 2,
        "{before} descriptors before, {during} with 200 idle clients"
    );
    // A real request waits its turn behind them (10 rounds of 1 s) and is answered.
    let r = svc.request("GET", "/healthz", None, &[], None);
    assert_eq!(r.status, 200);
    drop(idle);
    sleep(Duration::from_secs(2));
    assert!(open_fds(svc.pid()) <= before + 2);
    assert_eq!(svc.get("/api/cameras").status, 200);
}

#[test]
fn clips_in_progress_are_capped() {
    let d = tempfile::tempdir().unwrap();
    let text = config(d.path(), DEMO).replacen("[api]\n", "[api]\nmax_clips_recording = 3\n", 1);
    let svc = Service::start(d.path(), &text);
    svc.wait_cameras(&["demo"], 0.5, Duration::from_secs(30));
    let long = r#"{"duration": 600, "lookback": 0}"#;
    let ids: Vec<String> = (0..3)
        .map(|_| svc.clip("demo", long)["id"].as_str().unwrap().to_owned())
        .collect();
    let r = svc.post("/api/cameras/demo/clips", long);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("3 clips are recording already"),
        "{}",
        r.text()
    );
    // One ends: there is room again.
    assert_eq!(
        svc.post(&format!("/api/clips/{}/stop", ids[0]), "").status,
        200
    );
    svc.wait_final(&ids[0], Duration::from_secs(30));
    // The slot is free once the clip's task has finished with it, just after it is final.
    let started = Instant::now();
    loop {
        let r = svc.post("/api/cameras/demo/clips", long);
        if r.status == 201 {
            break;
        }
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no room after a clip ended"
        );
        sleep(Duration::from_millis(50));
    }
}
