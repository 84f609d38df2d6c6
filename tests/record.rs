//! `preroll record` from file and demo sources, paced in real time like a camera: pre-roll,
//! duration, packet continuity, and Ctrl-C finalizing what was recorded.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The clip's packets of one stream must be a contiguous run of the source's, shifted by one
/// constant (nothing lost, duplicated or reordered inside the clip).
#[track_caller]
fn assert_contiguous_run(source: &Probe, clip: &Probe, kind: &str) {
    let (s, c) = (
        source.stream_of(kind).unwrap(),
        clip.stream_of(kind).unwrap(),
    );
    let src = source.packets_of(s);
    let out = clip.packets_of(c);
    assert!(!out.is_empty());
    // Video: find where the clip's first packet sits in the source by matching durations and
    // key flags of the whole run, with a constant pts shift.
    let found = (0..src.len()).find(|&k| {
        k + out.len() <= src.len() && {
            let shift = out[0].pts - src[k].pts;
            out.iter()
                .zip(&src[k..])
                .all(|(o, i)| o.pts - i.pts == shift && o.key == i.key)
        }
    });
    assert!(
        found.is_some(),
        "{kind}: the clip's {} packets are not a run of the source's",
        out.len()
    );
}

#[test]
fn progressive_file_with_b_frames_records_lookback_plus_duration() {
    let d = tempfile::tempdir().unwrap();
    let src = Media {
        seconds: 9,
        ..Media::default()
    }
    .progressive(&d.path().join("cam.mp4"));
    let out = d.path().join("clip.mp4");
    let (_, clip, _) = record_2_plus_3(&src, &out);
    let v = clip.stream_of("video").unwrap();
    let source = Probe::of(&src);
    assert_contiguous_run(&source, &clip, "video");
    assert!(
        clip.packets_of(v).windows(2).any(|w| w[1].pts < w[0].pts),
        "B-frames kept"
    );
    assert_eq!(clip.count("audio"), 1);
}

#[test]
fn fragmented_file_source_records_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let src = Media {
        seconds: 7,
        ..Media::default()
    }
    .fragmented(&d.path().join("cam.mp4"), "frag_keyframe+empty_moov");
    let out = d.path().join("clip.mp4");
    let summary = preroll_ok(&[
        "record",
        s(&src),
        "-o",
        s(&out),
        "--lookback",
        "1",
        "--duration",
        "2",
    ]);
    assert_decodes_cleanly(&out);
    let pre = preroll_of(&summary);
    assert!((1.0..=2.05).contains(&pre), "pre-roll {pre}");
    assert_contiguous_run(&Probe::of(&src), &Probe::of(&out), "video");
}

/// Records the demo camera (2 s of lookback, 60 s asked), sends `signal` (`-INT`, `-TERM`,
/// `-HUP`) once about 3 s are recorded, and checks that `record` finalized the clip and
/// exited 0. Returns the clip and the summary line.
fn record_demo_then(signal: &str, dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let out = dir.join("demo.mp4");
    let child = Command::new(env!("CARGO_BIN_EXE_preroll"))
        .args(["record", "demo", "-o", s(&out)])
        .args(["--lookback", "2", "--duration", "60"])
        .env("PREROLL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Pre-roll (2 s) fills, then about 3 s of recording, then the signal.
    let started = Instant::now();
    while !dir.join("demo.mp4.partial").exists() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    run(Command::new("kill").args([signal, &child.id().to_string()]));
    let result = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(
        result.status.success(),
        "{signal}: {:?} {stdout} {}",
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        stdout.contains("ended early: stopped"),
        "{signal}: {stdout}"
    );
    assert!(!dir.join("demo.mp4.partial").exists(), "{signal}");
    assert_decodes_cleanly(&out);
    check_structure(&out);
    (out, stdout)
}

#[test]
fn the_demo_camera_records_and_ctrl_c_finalizes() {
    let d = tempfile::tempdir().unwrap();
    let (out, stdout) = record_demo_then("-INT", d.path());
    let clip = Probe::of(&out);
    assert_eq!((clip.count("video"), clip.count("audio")), (1, 1));
    let pre = preroll_of(&stdout);
    assert!((2.0..=3.05).contains(&pre), "pre-roll {pre}");
    let v = clip.stream_of("video").unwrap();
    assert!(
        clip.span(v) >= pre + 1.5 && clip.span(v) <= pre + 5.0,
        "{} s",
        clip.span(v)
    );
}

#[test]
fn sigterm_and_sighup_finalize_like_ctrl_c() {
    for signal in ["-TERM", "-HUP"] {
        let d = tempfile::tempdir().unwrap();
        record_demo_then(signal, d.path());
    }
}
