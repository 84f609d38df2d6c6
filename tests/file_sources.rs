//! File sources beyond MP4: MPEG-TS files made by ffmpeg recorded through `preroll record`
//! and `preroll serve` (a looped file), and files preroll cannot read refused at once with
//! what they are.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::serve::{Service, config};
use common::*;
use serde_json::Value;

/// A 640x360 25 fps MPEG-TS with a 440 Hz tone in AAC, a keyframe every second.
fn ts_file(dir: &Path, name: &str, seconds: u32, video: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let t = seconds.to_string();
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &t,
        "-pix_fmt",
        "yuv420p",
        "-g",
        "25",
    ];
    args.extend_from_slice(video);
    args.extend(["-c:a", "aac", "-b:a", "64k", "-f", "mpegts", s(&path)]);
    ffmpeg(&args);
    path
}

const H264: &[&str] = &["-c:v", "libx264", "-preset", "veryfast", "-bf", "0"];
const H264_B: &[&str] = &["-c:v", "libx264", "-preset", "veryfast", "-bf", "2"];
const H265: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "log-level=error",
];

/// Decode times strictly increase in every stream of a clip.
#[track_caller]
fn assert_dts_increasing(clip: &Probe) {
    for i in 0..clip.streams.len() {
        let p = clip.packets_of(i);
        assert!(!p.is_empty(), "stream {i} is empty");
        for w in p.windows(2) {
            assert!(
                w[1].dts > w[0].dts,
                "stream {i}: dts {} then {}",
                w[0].dts,
                w[1].dts
            );
        }
    }
}

/// Records 2 s of pre-roll + 3 s from a TS file and checks the clip: both tracks, audio as
/// long as video, decode times increasing, a keyframe first.
fn record_ts(video: &[&str], codec: &str) -> Probe {
    let d = tempfile::tempdir().unwrap();
    let src = ts_file(d.path(), "cam.ts", 9, video);
    let out = d.path().join("clip.mp4");
    let (_, clip, _) = record_2_plus_3(&src, &out);
    let v = clip.stream_of("video").expect("a video stream");
    let a = clip.stream_of("audio").expect("an audio stream");
    assert_eq!(clip.streams[v].codec, codec);
    assert_eq!(clip.streams[a].codec, "aac");
    assert_eq!(
        (clip.streams[v].width, clip.streams[v].height),
        (Some(640), Some(360))
    );
    assert_dts_increasing(&clip);
    let span = clip.span(v);
    assert!(
        (clip.span(a) - span).abs() < 0.1,
        "audio {} s, video {span} s",
        clip.span(a)
    );
    assert!(clip.packets_of(v)[0].key, "the clip starts at a keyframe");
    clip
}

#[test]
fn h264_ts_records_a_clean_clip() {
    let clip = record_ts(H264, "h264");
    let v = clip.packets_of(clip.stream_of("video").unwrap());
    assert!(
        v.iter().all(|p| p.pts == p.dts),
        "no B-frames, no reordering"
    );
}

#[test]
fn h264_ts_with_b_frames_keeps_their_order() {
    let clip = record_ts(H264_B, "h264");
    let v = clip.packets_of(clip.stream_of("video").unwrap());
    assert!(v.windows(2).any(|w| w[1].pts < w[0].pts), "B-frames kept");
}

#[test]
fn h265_ts_records_a_clean_clip() {
    record_ts(H265, "hevc");
}

#[test]
fn a_looped_ts_camera_keeps_time_going_across_the_loop() {
    let d = tempfile::tempdir().unwrap();
    // 3 s played over and over: 5 s in the ring holds a loop point.
    let src = ts_file(d.path(), "short.ts", 3, H264_B);
    let cameras = format!(
        "[[cameras]]\nname = \"ts\"\nsource = \"{}\"\nloop = true\n",
        src.display()
    );
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["ts"], 5.0, Duration::from_secs(60));
    let clip = svc.clip("ts", r#"{"duration": 1, "lookback": 5}"#);
    let done: Value = svc.wait_final(clip["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(done["state"], "done", "{done}");
    let path = Path::new(done["path"].as_str().unwrap());
    assert_decodes_cleanly(path);
    let probe = Probe::of(path);
    assert!(probe.span(0) > 4.5, "the clip spans a loop point: {done}");
    assert_dts_increasing(&probe);
    // Inside a pass every video step is one frame (40 ms). At a loop point both tracks move
    // by the same pass length (A/V sync kept), so the track that ends first in the file has
    // a short gap there — never an overlap, and never more than the tracks' end mismatch.
    let v = probe.stream_of("video").unwrap();
    let steps = steps(&probe, v);
    let odd: Vec<f64> = steps
        .into_iter()
        .filter(|s| (s - 0.04).abs() > 0.002)
        .collect();
    assert!(!odd.is_empty() && odd.len() <= 2, "loop points: {odd:?}");
    assert!(
        odd.iter().all(|s| (0.04..0.25).contains(s)),
        "loop points: {odd:?}"
    );
    let audio = probe.stream_of("audio").unwrap();
    assert!(
        probe.span(audio) > 4.5,
        "audio goes on across the loop: {done}"
    );
}

/// Decode time steps of a stream, in seconds.
fn steps(probe: &Probe, stream: usize) -> Vec<f64> {
    let (n, den) = probe.streams[stream].time_base;
    probe
        .packets_of(stream)
        .windows(2)
        .map(|w| (w[1].dts - w[0].dts) as f64 * n as f64 / den as f64)
        .collect()
}

/// `preroll record FILE` must fail at once, naming the file and what it looks like.
#[track_caller]
fn assert_refused(file: &Path, looks_like: &str) {
    let out_path = file.with_extension("clip.mp4");
    let start = Instant::now();
    let out = preroll(&["record", s(file), "-o", s(&out_path), "--duration", "1"]);
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{} was recorded", file.display());
    // A bound on a hang (the default --wait is 60 s), not a performance target.
    assert!(
        took < Duration::from_secs(1),
        "refused after {took:?}: {stderr}"
    );
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        stderr.contains(name) && stderr.contains(looks_like),
        "expected {name:?} and {looks_like:?} in: {stderr}"
    );
    assert!(!stderr.contains("truncated"), "{stderr}");
    assert!(!out_path.exists(), "no clip file is left");
}

#[test]
fn files_preroll_cannot_read_are_refused_at_once_with_what_they_are() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let mkv = dir.join("clip.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-t",
        "1",
        "-c:v",
        "libx264",
        s(&mkv),
    ]);
    assert_refused(&mkv, "a Matroska file; preroll reads MP4 and MPEG-TS files");

    let jpeg = dir.join("still.jpg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120",
        "-frames:v",
        "1",
        s(&jpeg),
    ]);
    assert_refused(&jpeg, "a JPEG image");

    let empty = dir.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert_refused(&empty, "an empty file");

    let text = dir.join("notes.ts");
    std::fs::write(&text, "rtsp://camera/stream1\n").unwrap();
    assert_refused(&text, "a text file");

    // Bytes from a fixed generator: no format, and the start shown in the message.
    let random = dir.join("noise.bin");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&random, &bytes).unwrap();
    assert_refused(&random, "not a media file preroll knows (it starts with");

    // A TS without video is a TS, but still nothing to record.
    let audio_only = dir.join("radio.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "1",
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        s(&audio_only),
    ]);
    assert_refused(&audio_only, "no H.264 or H.265 video in the program");
}
