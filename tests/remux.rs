//! `preroll remux` and the clip writer on real media made by ffmpeg, checked with ffprobe,
//! ffmpeg's decoder and mp4-atom. Includes Home Assistant's recorder test cases.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use preroll::recorder::{ClipOptions, RecordError, Recording, SegmentOutcome};
use preroll::segment::Segment;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Remuxes `inputs` to `<dir>/clip.mp4` through the binary and checks the basics every clip
/// must meet. Returns the clip path and the summary line.
fn remux(dir: &Path, inputs: &[&Path], extra: &[&str]) -> (std::path::PathBuf, String) {
    let out = dir.join("clip.mp4");
    let mut args = vec!["remux"];
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["-o", s(&out)]);
    args.extend(extra);
    let summary = preroll_ok(&args);
    assert!(out.exists(), "clip written");
    assert!(!dir.join("clip.mp4.partial").exists(), "no .partial left");
    assert_decodes_cleanly(&out);
    check_structure(&out);
    (out, summary)
}

#[test]
fn h264_aac_hls_is_copied_packet_for_packet() {
    let d = tmp();
    let hls = Media::default().hls(&d.path().join("hls"));
    let reference = Probe::of(&concat_hls(&hls, &d.path().join("ref.mp4")));
    let (clip, summary) = remux(d.path(), &[&hls], &[]);
    let probe = Probe::of(&clip);
    assert_same_packets_shifted(&reference, &probe);
    // Home Assistant: AAC in → one audio stream out.
    assert_eq!(probe.count("audio"), 1);
    assert_eq!(probe.count("video"), 1);
    assert!(summary.contains("0 discontinuities"), "{summary}");
    // Duration in the header within one frame (40 ms) of the media.
    let v = probe.stream_of("video").unwrap();
    let a = probe.stream_of("audio").unwrap();
    assert!((probe.duration - probe.span(v).max(probe.span(a))).abs() <= 0.04 + 0.03);
    assert!(
        (probe.span(v) - 4.0).abs() <= 0.04,
        "video span {}",
        probe.span(v)
    );
}

#[test]
fn h265_with_b_frames_keeps_hvc1_and_decode_order() {
    let d = tmp();
    let media = Media {
        video: Video::H265,
        ..Media::default()
    };
    let hls = media.hls(&d.path().join("hls"));
    let reference = Probe::of(&concat_hls(&hls, &d.path().join("ref.mp4")));
    let (clip, _) = remux(d.path(), &[&hls], &[]);
    let probe = Probe::of(&clip);
    assert_eq!(probe.streams[0].codec, "hevc");
    assert_eq!(probe.streams[0].codec_tag, "hvc1");
    // B-frames: presentation order differs from decode order somewhere.
    assert!(
        probe.packets_of(0).windows(2).any(|w| w[1].pts < w[0].pts),
        "stream has B-frames"
    );
    assert_same_packets_shifted(&reference, &probe);
}

#[test]
fn video_only_gives_no_audio_stream() {
    let d = tmp();
    let hls = Media {
        audio: false,
        ..Media::default()
    }
    .hls(&d.path().join("hls"));
    let (clip, _) = remux(d.path(), &[&hls], &[]);
    let probe = Probe::of(&clip);
    assert_eq!(probe.count("audio"), 0);
    assert_eq!(probe.count("video"), 1);
}

#[test]
fn two_copies_as_two_streams_make_one_continuous_clip_of_twice_the_length() {
    let d = tmp();
    let hls = Media::default().hls(&d.path().join("hls"));
    let reference = Probe::of(&concat_hls(&hls, &d.path().join("ref.mp4")));
    let (clip, summary) = remux(d.path(), &[&hls, &hls], &[]);
    assert!(summary.contains("1 discontinuities"), "{summary}");
    let probe = Probe::of(&clip);
    for (i, stream) in probe.streams.iter().enumerate() {
        let p = probe.packets_of(i);
        assert_eq!(
            p.len(),
            2 * reference.packets_of(i).len(),
            "{} packets",
            stream.codec
        );
        assert!(
            p.windows(2).all(|w| w[1].dts > w[0].dts),
            "{} dts strictly increasing",
            stream.codec
        );
        let span = probe.span(i);
        let single = reference.span(i);
        // Continuous: twice the length, and no gap beyond one frame at the join.
        assert!(
            (span - 2.0 * single).abs() <= 0.05,
            "{}: {span} vs 2 × {single}",
            stream.codec
        );
    }
}

#[test]
fn orientation_is_written_into_the_video_matrix() {
    let d = tmp();
    let hls = Media {
        audio: false,
        seconds: 1,
        ..Media::default()
    }
    .hls(&d.path().join("hls"));
    // Home Assistant's ROTATE_RIGHT + XYW_ROW, byte for byte.
    let rotate_right = [
        0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0x40, 0, 0, 0,
    ];
    let mut rotations = Vec::new();
    for n in 1..=8 {
        let sub = d.path().join(format!("o{n}"));
        let (clip, _) = remux(&sub, &[&hls], &["--orientation", &n.to_string()]);
        if n == 8 {
            assert_eq!(first_tkhd_matrix(&clip), rotate_right);
        }
        rotations.push(Probe::of(&clip).streams[0].rotation);
    }
    // ffprobe reports a rotation for the pure rotations 3, 6 and 8 only.
    assert_eq!(rotations[0], None);
    assert_eq!(rotations[2].map(i64::abs), Some(180));
    assert_eq!(rotations[5].map(i64::abs), Some(90));
    assert_eq!(rotations[7].map(i64::abs), Some(90));
    assert_ne!(rotations[5], rotations[7], "left and right differ");
    let bad = preroll(&[
        "remux",
        s(&hls),
        "-o",
        s(&d.path().join("x.mp4")),
        "--orientation",
        "9",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1..8"));
}

#[test]
fn codec_change_between_streams_decodes_cleanly_across_it() {
    let d = tmp();
    let a = Media::default().hls(&d.path().join("a"));
    let b = Media {
        width: 640,
        height: 360,
        pattern: "testsrc",
        ..Media::default()
    }
    .hls(&d.path().join("b"));
    let (clip, _) = remux(d.path(), &[&a, &b, &a], &[]);
    // Every frame decodes at its own size.
    let out = run(std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "frame=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&clip));
    let sizes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches(',').to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(sizes.iter().filter(|s| *s == "320,240").count(), 200);
    assert_eq!(sizes.iter().filter(|s| *s == "640,360").count(), 100);
}

#[test]
fn audio_may_start_or_stop_mid_clip() {
    let d = tmp();
    let with = Media::default().hls(&d.path().join("with"));
    let without = Media {
        audio: false,
        ..Media::default()
    }
    .hls(&d.path().join("without"));
    // Starts: the audio track is added to the header after the first stream.
    let sub = d.path().join("starts");
    let (clip, _) = remux(&sub, &[&without, &with], &[]);
    let p = Probe::of(&clip);
    let a = p.stream_of("audio").expect("audio track added");
    let first_audio = p.packets_of(a)[0].pts as f64 / 48_000.0;
    assert!(
        (3.9..4.2).contains(&first_audio),
        "audio starts with the second stream: {first_audio}"
    );
    // Stops.
    let sub = d.path().join("stops");
    let (clip, _) = remux(&sub, &[&with, &without], &[]);
    let p = Probe::of(&clip);
    let v = p.stream_of("video").unwrap();
    assert!(p.span(v) > 7.9, "video goes on after audio stops");
}

#[test]
fn single_fragmented_files_with_either_base_offset_rule() {
    let d = tmp();
    for (name, flags) in [
        ("explicit.mp4", "frag_keyframe+empty_moov"),
        ("moof.mp4", "frag_keyframe+empty_moov+default_base_moof"),
    ] {
        let src = Media::default().fragmented(&d.path().join(name), flags);
        let reference = Probe::of(&src);
        let (clip, _) = remux(&d.path().join(format!("out-{name}")), &[&src], &[]);
        assert_same_packets_shifted(&reference, &Probe::of(&clip));
    }
}

#[test]
fn a_truncated_segment_keeps_what_came_before_the_damage() {
    let d = tmp();
    let hls = Media::default().hls(&d.path().join("hls"));
    let last = hls.join("seg3.m4s");
    let bytes = fs::read(&last).unwrap();
    fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let out = d.path().join("clip.mp4");
    let o = preroll(&["remux", s(&hls), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("seg3.m4s"),
        "names the damaged file: {stderr}"
    );
    assert_decodes_cleanly(&out);
    let p = Probe::of(&out);
    let v = p.stream_of("video").unwrap();
    assert!(
        (p.span(v) - 3.0).abs() < 0.05,
        "three good segments kept: {}",
        p.span(v)
    );
}

#[test]
fn existing_file_is_refused_and_left_untouched() {
    let d = tmp();
    let hls = Media {
        seconds: 1,
        ..Media::default()
    }
    .hls(&d.path().join("hls"));
    let out = d.path().join("taken.mp4");
    fs::write(&out, b"precious").unwrap();
    let o = preroll(&["remux", s(&hls), "-o", s(&out)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    assert_eq!(fs::read(&out).unwrap(), b"precious");
}

#[test]
fn parent_directories_are_created() {
    let d = tmp();
    let hls = Media {
        seconds: 1,
        ..Media::default()
    }
    .hls(&d.path().join("hls"));
    let out = d.path().join("a/b/c/clip.mp4");
    preroll_ok(&["remux", s(&hls), "-o", s(&out)]);
    assert_decodes_cleanly(&out);
}

#[test]
fn no_media_fails_and_leaves_no_file() {
    let d = tmp();
    let hls = Media {
        seconds: 1,
        ..Media::default()
    }
    .hls(&d.path().join("hls"));
    // Only empty segments.
    for e in fs::read_dir(&hls).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "m4s") {
            fs::write(&p, b"").unwrap();
        }
    }
    let out = d.path().join("clip.mp4");
    let o = preroll(&["remux", s(&hls), "-o", s(&out)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("recording failed to capture anything"));
    assert!(!out.exists());
    assert!(!d.path().join("clip.mp4.partial").exists());
}

#[test]
fn lookback_overlap_and_empty_segments_are_skipped() {
    let d = tmp();
    let hls = Media::default().hls(&d.path().join("hls"));
    let segs = hls_segments(&hls, 1, 10);
    let path = d.path().join("clip.mp4");
    let mut rec = Recording::create(&path, ClipOptions::default()).unwrap();
    // Lookback hands over 10, 11; live then repeats 11 before going on.
    for s in &segs[..2] {
        assert!(matches!(
            rec.write_segment(s).unwrap(),
            SegmentOutcome::Written { .. }
        ));
    }
    assert_eq!(
        rec.write_segment(&segs[1]).unwrap(),
        SegmentOutcome::SkippedOld
    );
    let empty = Segment::new(12, 1, segs[0].init.clone(), Vec::new());
    assert_eq!(
        rec.write_segment(&empty).unwrap(),
        SegmentOutcome::SkippedEmpty
    );
    assert_eq!(
        rec.write_segment(&segs[2]).unwrap(),
        SegmentOutcome::SkippedOld,
        "12 was taken by the empty one"
    );
    let mut later = segs[3].clone();
    later.sequence = 13;
    assert!(matches!(
        rec.write_segment(&later).unwrap(),
        SegmentOutcome::Written { .. }
    ));
    let summary = rec.finish().unwrap();
    assert_eq!(summary.segments, 3);
    assert_decodes_cleanly(&path);
}

#[test]
fn no_segments_is_an_error_and_leaves_nothing() {
    let d = tmp();
    let path = d.path().join("sub/clip.mp4");
    let rec = Recording::create(&path, ClipOptions::default()).unwrap();
    assert!(
        path.with_extension("mp4.partial").exists(),
        "name reserved while recording"
    );
    let err = rec.finish().unwrap_err();
    assert!(matches!(err, RecordError::NothingCaptured));
    assert_eq!(err.to_string(), "recording failed to capture anything");
    assert!(!path.exists());
    assert!(!path.with_extension("mp4.partial").exists());
}

#[test]
fn a_second_recording_to_the_same_path_is_refused() {
    let d = tmp();
    let path = d.path().join("clip.mp4");
    let _first = Recording::create(&path, ClipOptions::default()).unwrap();
    let err = Recording::create(&path, ClipOptions::default()).unwrap_err();
    assert!(matches!(err, RecordError::InProgress { .. }), "{err}");
}

#[test]
fn the_partial_file_is_a_valid_mp4_after_every_fragment() {
    let d = tmp();
    let hls = Media::default().hls(&d.path().join("hls"));
    let segs = hls_segments(&hls, 1, 1);
    let path = d.path().join("clip.mp4");
    let mut rec = Recording::create(&path, ClipOptions::default()).unwrap();
    let mut video_packets = 0;
    for (i, s) in segs.iter().enumerate() {
        rec.write_segment(s).unwrap();
        video_packets += s
            .fragments
            .iter()
            .map(|f| f.tracks[0].sample_count())
            .sum::<usize>();
        // What a crash right now would leave behind.
        let snapshot = d.path().join(format!("snap{i}.mp4"));
        fs::copy(rec.partial_path(), &snapshot).unwrap();
        assert_decodes_cleanly(&snapshot);
        let p = Probe::of(&snapshot);
        assert_eq!(
            p.packets_of(p.stream_of("video").unwrap()).len(),
            video_packets
        );
    }
    rec.finish().unwrap();
}

#[test]
fn a_clip_preroll_finished_remuxes_again_and_other_progressive_files_are_refused_plainly() {
    let d = tmp();
    let hls = Media::default().hls(&d.path().join("hls"));
    let (first, _) = remux(d.path(), &[&hls], &[]);
    assert!(is_progressive(&first), "clips are finished progressive");
    // A clip preroll wrote: its fragments are hidden, not gone, and remux reads them.
    let again = d.path().join("again.mp4");
    preroll_ok(&["remux", s(&first), "-o", s(&again)]);
    assert_decodes_cleanly(&again);
    check_structure(&again);
    assert_same_packets_shifted(&Probe::of(&first), &Probe::of(&again));
    // Two clips joined: twice the packets.
    let joined = d.path().join("joined.mp4");
    preroll_ok(&["remux", s(&first), s(&again), "-o", s(&joined)]);
    let (one, two) = (Probe::of(&first), Probe::of(&joined));
    assert_eq!(two.packets_of(0).len(), 2 * one.packets_of(0).len());

    // Any other progressive MP4 (ffmpeg's, moov first or last): said so, nothing written.
    for (name, flags) in [
        ("last.mp4", &[][..]),
        ("faststart.mp4", &["-movflags", "+faststart"]),
    ] {
        let input = d.path().join(name);
        let mut args = vec!["-i", s(&first), "-c", "copy"];
        args.extend(flags);
        args.push(s(&input));
        ffmpeg(&args);
        let out = d.path().join(format!("from-{name}"));
        let result = preroll(&["remux", s(&input), "-o", s(&out)]);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{name}: {stderr}");
        assert!(stderr.contains("is a progressive MP4"), "{name}: {stderr}");
        assert!(!out.exists() && !d.path().join(format!("from-{name}.partial")).exists());
    }
}
