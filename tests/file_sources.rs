//! File sources beyond MP4: MPEG-TS and Matroska files made by ffmpeg (and GStreamer's live
//! Matroska) recorded through `preroll record` and `preroll serve` (a looped file), read flat
//! out into a whole-file clip, and files preroll cannot read refused at once with what they
//! are.

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

/// The TS `ts_file` makes, remuxed into Matroska without re-encoding (`-c copy`), as
/// `ffmpeg -i rtsp://… -c copy cam.mkv` or an NVR's export leaves it.
fn mkv_file(dir: &Path, name: &str, seconds: u32, video: &[&str]) -> PathBuf {
    let ts = ts_file(dir, &format!("{name}.ts"), seconds, video);
    let path = dir.join(name);
    ffmpeg(&["-i", s(&ts), "-c", "copy", s(&path)]);
    path
}

/// A live recording as GStreamer's `matroskamux streamable=true` writes it: Segment and
/// Clusters of unknown size (nothing is ever seeked back to).
fn live_mkv_file(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let ts = ts_file(dir, &format!("{name}.ts"), seconds, H264);
    let path = dir.join(name);
    let location = |p: &Path| format!("location={}", p.display());
    run(std::process::Command::new("gst-launch-1.0").args([
        "-q",
        "filesrc",
        &location(&ts),
        "!",
        "tsdemux",
        "name=d",
        "d.",
        "!",
        "h264parse",
        "!",
        "queue",
        "!",
        "matroskamux",
        "streamable=true",
        "name=m",
        "!",
        "filesink",
        &location(&path),
        "d.",
        "!",
        "aacparse",
        "!",
        "queue",
        "!",
        "m.",
    ]));
    let bytes = std::fs::read(&path).unwrap();
    let unknown = [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    for (what, id) in [
        ("Segment", [0x18, 0x53, 0x80, 0x67]),
        ("Cluster", [0x1f, 0x43, 0xb6, 0x75]),
    ] {
        let at = bytes.windows(4).position(|w| w == id).expect(what);
        assert_eq!(bytes[at + 4..at + 12], unknown, "{what} of unknown size");
    }
    path
}

/// Records 2 s of pre-roll + 3 s from a TS file and checks the clip: both tracks, audio as
/// long as video, decode times increasing, a keyframe first.
fn record_ts(video: &[&str], codec: &str) -> Probe {
    let d = tempfile::tempdir().unwrap();
    record_file(&ts_file(d.path(), "cam.ts", 9, video), codec)
}

/// The same for a Matroska file made from that TS.
fn record_mkv(video: &[&str], codec: &str) -> Probe {
    let d = tempfile::tempdir().unwrap();
    record_file(&mkv_file(d.path(), "cam.mkv", 9, video), codec)
}

/// Records 2 s of pre-roll + 3 s from a 640x360 H.264/H.265 + AAC file and checks the clip.
fn record_file(src: &Path, codec: &str) -> Probe {
    let out = src.with_extension("clip.mp4");
    let (_, clip, _) = record_2_plus_3(src, &out);
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

/// Without B-frames, every picture is decoded when it is shown.
#[track_caller]
fn assert_no_reordering(clip: &Probe) {
    let v = clip.packets_of(clip.stream_of("video").unwrap());
    assert!(
        v.iter().all(|p| p.pts == p.dts),
        "no B-frames, no reordering"
    );
}

/// With B-frames, some pictures are shown before the one decoded before them.
#[track_caller]
fn assert_b_frames_kept(clip: &Probe) {
    let v = clip.packets_of(clip.stream_of("video").unwrap());
    assert!(v.windows(2).any(|w| w[1].pts < w[0].pts), "B-frames kept");
}

#[test]
fn h264_ts_records_a_clean_clip() {
    assert_no_reordering(&record_ts(H264, "h264"));
}

#[test]
fn h264_ts_with_b_frames_keeps_their_order() {
    assert_b_frames_kept(&record_ts(H264_B, "h264"));
}

#[test]
fn h265_ts_records_a_clean_clip() {
    record_ts(H265, "hevc");
}

#[test]
fn h264_mkv_records_a_clean_clip() {
    assert_no_reordering(&record_mkv(H264, "h264"));
}

#[test]
fn h264_mkv_with_b_frames_keeps_their_order_and_starts_at_zero() {
    // Matroska stores presentation times only: the decode times are derived.
    let clip = record_mkv(H264_B, "h264");
    assert_b_frames_kept(&clip);
    let v = clip.stream_of("video").unwrap();
    assert!(
        clip.packets_of(v).iter().all(|p| p.dts <= p.pts),
        "no frame decoded after it is shown"
    );
    assert_eq!(
        clip.streams[v].start_time,
        Some(0.0),
        "the edit list starts at 0"
    );
}

#[test]
fn h265_mkv_records_a_clean_clip() {
    record_mkv(H265, "hevc");
}

#[test]
fn a_live_mkv_with_unknown_sizes_records_a_clean_clip() {
    let d = tempfile::tempdir().unwrap();
    record_file(&live_mkv_file(d.path(), "live.mkv", 9), "h264");
}

#[test]
fn a_looped_ts_camera_keeps_time_going_across_the_loop() {
    let d = tempfile::tempdir().unwrap();
    // 3 s played over and over: 5 s in the ring holds a loop point.
    looped_camera(d.path(), &ts_file(d.path(), "short.ts", 3, H264_B));
}

#[test]
fn a_looped_mkv_camera_keeps_time_going_across_the_loop() {
    let d = tempfile::tempdir().unwrap();
    looped_camera(d.path(), &mkv_file(d.path(), "short.mkv", 3, H264_B));
}

/// `preroll serve` with `src` as a looped camera: a 5 s lookback holds a loop point, and
/// both tracks go on across it.
fn looped_camera(dir: &Path, src: &Path) {
    let d = dir;
    let cameras = format!(
        "[[cameras]]\nname = \"ts\"\nsource = \"{}\"\nloop = true\n",
        src.display()
    );
    let svc = Service::start(d, &config(d, &cameras));
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

/// Reads `src` flat out (each frame as soon as it is taken, no pacing) through the segmenter
/// into one clip of the whole file, as a benchmark or a bulk import would. Returns how long
/// it took.
fn clip_flat_out(src: &Path, out: &Path) -> Duration {
    use preroll::recorder::{ClipOptions, Recording};
    use preroll::segmenter::{HygieneOptions, Segmenter, SegmenterOptions};
    use preroll::source::{FileSource, Pace, Source, SourceEvent};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let start = Instant::now();
        let mut source = FileSource::open(src, Pace::Fast, false).unwrap();
        let mut seg = Segmenter::new(1, 1, SegmenterOptions::default(), HygieneOptions::default());
        let mut segments = Vec::new();
        while let Some(event) = source.next().await.expect("the file reads to its end") {
            match event {
                SourceEvent::Params(p) => segments.extend(seg.set_params(p).unwrap()),
                SourceEvent::Frame(f) => segments.extend(seg.push(f).unwrap()),
                SourceEvent::Lost(_) => {}
            }
        }
        segments.extend(seg.finish());
        let mut rec = Recording::create(out, ClipOptions::default()).unwrap();
        for segment in &segments {
            rec.write_segment(segment).unwrap();
        }
        rec.finish().unwrap();
        start.elapsed()
    })
}

#[test]
fn an_mkv_read_flat_out_gives_every_frame_in_its_time() {
    let d = tempfile::tempdir().unwrap();
    let src = mkv_file(d.path(), "cam.mkv", 9, H264_B);
    let out = d.path().join("whole.mp4");
    let took = clip_flat_out(&src, &out);
    // A bound on pacing sneaking in (the file lasts 9 s), not a performance target.
    assert!(took < Duration::from_secs(5), "flat out took {took:?}");
    assert_decodes_cleanly(&out);
    check_structure(&out);
    let (clip, file) = (Probe::of(&out), Probe::of(&src));
    assert_dts_increasing(&clip);
    for kind in ["video", "audio"] {
        let (c, f) = (clip.stream_of(kind).unwrap(), file.stream_of(kind).unwrap());
        let (cp, fp) = (clip.packets_of(c), file.packets_of(f));
        // Every video frame; audio from the first picture on (the clip's edit list shows
        // nothing before it), so at most a frame or two fewer.
        let lost = fp.len() - cp.len();
        assert!(
            lost == 0 || (kind == "audio" && lost <= 2),
            "{kind}: {} frames of {}",
            cp.len(),
            fp.len()
        );
        let (a, b) = (shown(&clip, c), shown(&file, f));
        assert!(
            (a - b).abs() < 0.05,
            "{kind} shown for {a} s, in the file {b} s"
        );
    }
    // The pictures are shown at the file's times (Matroska's are in ms; the clip's in 90 kHz).
    let v = clip.stream_of("video").unwrap();
    let times = |p: &Probe, s: usize| -> Vec<i64> {
        let (n, den) = p.streams[s].time_base;
        let mut t: Vec<i64> = p
            .packets_of(s)
            .iter()
            .map(|k| k.pts * n * 1000 / den)
            .collect();
        t.sort_unstable();
        let first = t[0];
        t.iter().map(|x| x - first).collect()
    };
    assert_eq!(
        times(&clip, v),
        times(&file, file.stream_of("video").unwrap())
    );
    let keys = |p: &Probe, s: usize| p.packets_of(s).iter().filter(|k| k.key).count();
    assert_eq!(
        keys(&clip, v),
        keys(&file, file.stream_of("video").unwrap())
    );
}

#[test]
fn mkv_pcm_audio_is_kept_losslessly_as_flac() {
    let d = tempfile::tempdir().unwrap();
    let ts = ts_file(d.path(), "cam.ts", 6, H264);
    let src = d.path().join("pcm.mkv");
    ffmpeg(&["-i", s(&ts), "-c:v", "copy", "-c:a", "pcm_s16le", s(&src)]);
    let out = d.path().join("whole.mp4");
    clip_flat_out(&src, &out);
    assert_decodes_cleanly(&out);
    let clip = Probe::of(&out);
    assert_eq!(clip.streams[clip.stream_of("audio").unwrap()].codec, "flac");
    // Every sample of the clip, as decoded, is the file's own, in a run.
    let pcm = |input: &[&str]| {
        let mut c = std::process::Command::new("ffmpeg");
        c.args(["-nostdin", "-v", "error"])
            .args(input)
            .args(["-map", "0:a", "-f", "s16le", "-"]);
        run(&mut c).stdout
    };
    // All of the clip's samples, not just those its edit list shows.
    let kept = pcm(&["-ignore_editlist", "1", "-i", s(&out)]);
    let file = pcm(&["-i", s(&src)]);
    assert!(
        kept.len() > file.len() * 9 / 10,
        "{} of {} bytes",
        kept.len(),
        file.len()
    );
    let at = file
        .windows(4096)
        .position(|w| w == &kept[..4096])
        .expect("the clip's first samples are in the file");
    assert!(
        file[at..].starts_with(&kept),
        "the samples differ after byte {at}"
    );
}

#[test]
fn a_truncated_mkv_ends_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let full = mkv_file(d.path(), "full.mkv", 6, H264_B);
    let bytes = std::fs::read(&full).unwrap();
    let cut = d.path().join("cut.mkv");
    // Cut in the middle of a Cluster, most likely inside a block.
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10 + 77]).unwrap();
    let out = d.path().join("flat.mp4");
    clip_flat_out(&cut, &out);
    assert_decodes_cleanly(&out);
    let probe = Probe::of(&out);
    let span = probe.span(probe.stream_of("video").unwrap());
    assert!(
        (2.5..4.5).contains(&span),
        "the media before the cut: {span} s"
    );
    // Played once by `record`, the camera ends with the file and the clip keeps what it had.
    let recorded = d.path().join("recorded.mp4");
    let start = Instant::now();
    let summary = preroll_ok(&[
        "record",
        s(&cut),
        "-o",
        s(&recorded),
        "--lookback",
        "0",
        "--duration",
        "30",
    ]);
    assert!(start.elapsed() < Duration::from_secs(15), "{summary}");
    assert_decodes_cleanly(&recorded);
    let probe = Probe::of(&recorded);
    assert!(
        probe.span(probe.stream_of("video").unwrap()) > 1.5,
        "{summary}"
    );
}

#[test]
fn an_mkv_with_audio_preroll_cannot_keep_records_its_video() {
    let d = tempfile::tempdir().unwrap();
    // The TS's video as it is, its audio as Vorbis.
    let ts = ts_file(d.path(), "cam.ts", 9, H264);
    let src = d.path().join("vorbis.mkv");
    ffmpeg(&["-i", s(&ts), "-c:v", "copy", "-c:a", "libvorbis", s(&src)]);
    let out = d.path().join("clip.mp4");
    let stderr = record_warnings(s(&src), &out);
    assert_eq!(
        stderr.matches("Vorbis audio is left out").count(),
        1,
        "named once: {stderr}"
    );
    assert_decodes_cleanly(&out);
    let clip = Probe::of(&out);
    assert!(clip.stream_of("video").is_some() && clip.stream_of("audio").is_none());
}

/// From the first presentation time to the end of the last frame shown, in seconds
/// (Matroska files have no decode times to measure by).
fn shown(probe: &Probe, stream: usize) -> f64 {
    let (n, den) = probe.streams[stream].time_base;
    let p = probe.packets_of(stream);
    let first = p.iter().map(|k| k.pts).min().unwrap_or(0);
    let end = p.iter().map(|k| k.pts + k.duration).max().unwrap_or(0);
    (end - first) as f64 * n as f64 / den as f64
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
    // One second of a small picture or a tone, in `codec`, into `name`.
    let one_second = |name: &str, source: &str, codec: &[&str]| {
        let path = dir.join(name);
        let mut args = vec!["-f", "lavfi", "-i", source, "-t", "1"];
        args.extend_from_slice(codec);
        args.push(s(&path));
        ffmpeg(&args);
        path
    };
    const PICTURE: &str = "testsrc2=size=160x120:rate=25";
    const TONE: &str = "sine=frequency=440:sample_rate=48000";
    let vp9 = [
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
    ];
    let webm = one_second("clip.webm", PICTURE, &vp9);
    assert_refused(&webm, "a WebM file whose video is VP9 (V_VP9)");
    let radio = one_second("radio.mkv", TONE, &["-c:a", "libopus"]);
    assert_refused(
        &radio,
        "a Matroska file with no video track (it holds Opus audio",
    );
    let flv = one_second("clip.flv", PICTURE, &["-c:v", "libx264"]);
    assert_refused(
        &flv,
        "an FLV file; preroll reads MP4, MPEG-TS and Matroska/WebM files",
    );
    // A TS without video is a TS, but still nothing to record.
    let audio_only = one_second("radio.ts", TONE, &["-c:a", "aac", "-f", "mpegts"]);
    assert_refused(&audio_only, "no H.264 or H.265 video in the program");

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
}
