//! Browser playback: clips that `preroll serve` recorded from cameras, played by Debian's
//! headless Chromium from the service's own download route (`GET /api/clips/{id}/file`, with
//! the bearer token and Range requests), in a `<video>` element. tests/browser/play.mjs drives
//! Chromium (playwright-core) and reports what the element saw; this file makes the clips
//! and judges the report against the API, ffprobe and the clip's own frames.
//!
//! Every source picture carries its frame number as a barcode across its top quarter, so a
//! frame read back from the browser's canvas names itself; ffmpeg decodes the same clip to
//! tell which clip time each number sits at.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::browser::{CHROMIUM, check_tools, mime_of, play};
use common::serve::{Service, TOKEN, config};
use common::{Probe, Video, check_structure, ffmpeg, run, s};
use serde_json::{Value, json};

const FPS: u32 = 25;
/// One frame: the tolerance of the duration comparisons.
const FRAME: f64 = 1.0 / FPS as f64;
/// Blocks in the frame-number barcode (10 bits: 1024 frames, 41 s; the sources last 10 s).
const BITS: u32 = 10;

#[test]
fn chromium_plays_times_and_seeks_clips_from_the_api() {
    check_tools();
    let d = tempfile::tempdir().unwrap();
    let (h264, h265) = (d.path().join("h264.mp4"), d.path().join("h265.mp4"));
    barcoded_source(&h264, Video::H264.encoder_args());
    barcoded_source(&h265, Video::H265.encoder_args());
    let cameras = format!(
        "[[cameras]]\nname = \"h264\"\nsource = \"{}\"\n\n[[cameras]]\nname = \"h265\"\nsource = \"{}\"\n",
        s(&h264),
        s(&h265)
    );
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["h264", "h265"], 2.0, Duration::from_secs(60));
    let started: Vec<Value> = ["h264", "h265"]
        .iter()
        .map(|cam| svc.clip(cam, r#"{"duration": 3, "lookback": 2}"#))
        .collect();
    let clips: Vec<Clip> = started
        .iter()
        .map(|c| {
            let id = c["id"].as_str().expect("id");
            let api = svc.wait_final(id, Duration::from_secs(30));
            assert_eq!(api["state"], "done", "{api}\nlog:\n{}", svc.log());
            Clip::of(api)
        })
        .collect();

    let job = json!({
        "base": svc.base,
        "token": TOKEN,
        "chromium": CHROMIUM,
        "clips": clips.iter().map(Clip::job).collect::<Vec<_>>(),
    });
    let (report, context) = play(&job);
    println!("Chromium {}", report["browser"]);

    let seen = |name: &str| -> &Value {
        report["clips"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no report for {name}\n{context}"))
    };
    clips[0].judge_playback(seen("h264"), &context);
    let h265 = seen("h265");
    if h265["error"].is_null() && h265["video_width"].as_u64().unwrap_or(0) > 0 {
        clips[1].judge_playback(h265, &context);
        println!("H.265: supported by this Chromium, full checks passed");
    } else {
        println!(
            "H.265: not supported by this Chromium ({})",
            clips[1].judge_unsupported(h265, &context)
        );
    }
}

/// A 10 s 320x240 MP4 with AAC whose top quarter is a barcode of the frame number N (block
/// b white when bit b of N is set) over testsrc2, keyframe every second.
fn barcoded_source(path: &Path, video: &[&str]) {
    // geq works on planes: X, Y are the plane's coordinates, SH scales the chroma planes.
    let picture = format!(
        "testsrc2=size=320x240:rate={FPS},format=yuv420p,geq=\
         lum='if(lt(Y,H/4),255*mod(floor(N/pow(2,floor(X*{BITS}/W))),2),lum(X,Y))':\
         cb='if(lt(Y,SH*H/4),128,cb(X,Y))':cr='if(lt(Y,SH*H/4),128,cr(X,Y))'"
    );
    let gop = FPS.to_string();
    let mut args = vec!["-f", "lavfi", "-i", &picture];
    args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    args.extend(["-t", "10", "-pix_fmt", "yuv420p", "-g", &gop]);
    args.extend(video);
    args.extend(["-c:a", "aac", "-b:a", "64k", s(path)]);
    ffmpeg(&args);
}

/// The frame number a row of barcode block luma values encodes.
fn barcode(luma: impl IntoIterator<Item = u64>) -> u32 {
    luma.into_iter()
        .enumerate()
        .map(|(b, l)| u32::from(l > 128) << b)
        .sum()
}

/// A finished clip and what ffmpeg says about it.
struct Clip {
    name: String,
    id: String,
    /// The duration the API reports (the clip's header, checked against `mvhd` in serve.rs).
    api_duration: f64,
    /// ffprobe's format duration.
    probe_duration: f64,
    /// Where the video's edit list starts presentation, in seconds of media (the B-frame
    /// delay): Chromium does not apply it to audio it plays alone.
    edit_start: f64,
    mime: String,
    /// Seconds of video the file holds after the edit list's end: the frames decoded before
    /// the clip's end but shown after it (references of B-frames shown before it).
    hidden_tail: f64,
    /// Video frames in presentation order: time in seconds, barcode number.
    frames: Vec<(f64, u32)>,
    /// Video keyframes: decode and presentation time in seconds.
    keys: Vec<(f64, f64)>,
    /// Seek targets: the start (the frame shown at `trigger - lookback`, inside a GOP: the
    /// edit list must be applied for it to show), the middle, a point mid-GOP, and half a
    /// frame before a keyframe's presentation time (inside the reordering delay after its
    /// decode time).
    seeks: Vec<f64>,
}

impl Clip {
    fn of(api: Value) -> Clip {
        let path = Path::new(api["path"].as_str().expect("path"));
        let moov = check_structure(path);
        let probe = Probe::of(path);
        let v = probe.stream_of("video").expect("a video stream");
        let (n, d) = probe.streams[v].time_base;
        let secs = |t: i64| t as f64 * n as f64 / d as f64;
        let keys: Vec<(f64, f64)> = probe
            .packets_of(v)
            .iter()
            .filter(|p| p.key)
            .map(|p| (secs(p.dts), secs(p.pts)))
            .collect();
        let frames = decode_barcodes(path);
        let api_duration = api["duration"].as_f64().expect("duration");
        let stored_end = probe
            .packets_of(v)
            .iter()
            .map(|p| secs(p.pts + p.duration))
            .fold(0.0, f64::max);
        let hidden_tail = (stored_end - api_duration).max(0.0);
        let middle = api_duration / 2.0;
        let &(_, next_key) = keys
            .iter()
            .find(|k| k.1 > middle + 0.5)
            .unwrap_or_else(|| panic!("no keyframe after the middle: {keys:?}"));
        let mid_gop = frames
            .iter()
            .map(|f| f.0)
            .find(|&t| t >= next_key - 0.5)
            .expect("a frame mid-GOP")
            + FRAME / 2.0;
        let video_trak = moov
            .trak
            .iter()
            .find(|t| t.mdia.minf.vmhd.is_some())
            .expect("a video track");
        let edit_start = video_trak
            .edts
            .as_ref()
            .and_then(|e| e.elst.as_ref())
            .and_then(|l| l.entries.first())
            .and_then(|e| e.media_time)
            .map_or(0.0, |t| {
                t as f64 / f64::from(video_trak.mdia.mdhd.timescale)
            });
        Clip {
            edit_start,
            name: api["camera"].as_str().expect("camera").to_owned(),
            id: api["id"].as_str().expect("id").to_owned(),
            api_duration,
            probe_duration: probe.duration,
            mime: mime_of(&moov),
            hidden_tail,
            frames,
            keys,
            seeks: vec![0.0, middle, mid_gop, next_key - FRAME / 2.0],
        }
    }

    fn job(&self) -> Value {
        json!({
            "name": self.name,
            "path": format!("/api/clips/{}/file", self.id),
            "mime": self.mime,
            "seeks": self.seeks,
            "bits": BITS,
        })
    }

    /// The full checks: plays, lasts what the API says, seeks to the right frames.
    fn judge_playback(&self, r: &Value, context: &str) {
        let name = &self.name;
        assert!(
            r["error"].is_null(),
            "{name}: MediaError {}\n{context}",
            r["error"]
        );
        assert_ne!(r["can_play_type"], "", "{name}: {}\n{context}", self.mime);
        assert_eq!(
            (r["video_width"].as_u64(), r["video_height"].as_u64()),
            (Some(320), Some(240)),
            "{name}\n{context}"
        );

        let duration = r["duration"].as_f64().expect("duration");
        println!(
            "{name}: duration {duration:.3} s in Chromium, {:.3} s from the API, {:.3} s from ffprobe",
            self.api_duration, self.probe_duration
        );
        // What the clip says it presents (its edit list, the API's duration) against what
        // Chromium and ffprobe make of it: ffprobe within one frame; Chromium within one frame
        // plus the video edit's start (the B-frame delay), which it does not apply to the
        // audio track when it times the element (seen: 5.813 and 5.856 s for 5.8 s).
        for (what, d, slack) in [
            ("Chromium", duration, self.edit_start),
            ("ffprobe", self.probe_duration, 0.0),
        ] {
            assert!(
                (self.api_duration - d).abs() <= FRAME + slack + 1e-6,
                "{name}: {what}'s duration {d} s vs the API's {} s\n{context}",
                self.api_duration
            );
        }

        // Playback: real time from 0, then to the end.
        assert_eq!(
            r["advanced"], true,
            "{name}: currentTime did not advance\n{context}"
        );
        let advanced = r["advanced_to"].as_f64().unwrap_or(0.0);
        let wall = r["advance_wall_seconds"].as_f64().unwrap_or(0.0);
        println!("{name}: played to {advanced:.3} s in {wall:.3} s of wall time");
        assert!(
            wall >= advanced * 0.5,
            "{name}: {advanced} s played in {wall} s: not real time\n{context}"
        );
        assert_eq!(
            r["ended"], true,
            "{name}: did not play to the end\n{context}"
        );
        // Chromium applies the edit list's start, but plays the frames hidden after its end
        // (seen: 5.2 s for 5.12 s with two B-frames); ffmpeg hides them (checked above
        // through ffprobe's duration, and in tests/exact_end.rs by the frames it presents).
        let end = r["end_time"].as_f64().unwrap_or(0.0);
        assert!(
            end >= duration - FRAME && end <= duration + self.hidden_tail + FRAME,
            "{name}: ended at {end} s of {duration} s ({:.3} s hidden after the end)\n{context}",
            self.hidden_tail
        );
        let decoded = r["quality"]["total_video_frames"].as_u64().unwrap_or(0);
        assert!(decoded > 0, "{name}: no video frame decoded\n{context}");

        // Range requests make the whole clip seekable.
        let seekable = &r["seekable"];
        let whole = seekable.as_array().is_some_and(|a| {
            a.len() == 1
                && a[0][0].as_f64() == Some(0.0)
                && a[0][1].as_f64().is_some_and(|e| (e - end).abs() < 1e-3)
        });
        assert!(
            whole,
            "{name}: seekable {seekable}, not [0, {end}]\n{context}"
        );

        let seeks = r["seeks"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert_eq!(seeks.len(), self.seeks.len(), "{name}: seeks\n{context}");
        for seek in seeks {
            self.judge_seek(seek, context);
        }
    }

    /// A seek completes and shows the frame at its target: requestVideoFrameCallback and the
    /// canvas's barcode agree on the frame, and it is the one presented at the target. One
    /// exception is allowed, and reported: when the target lies between a keyframe's decode
    /// and presentation times, Chromium shows that keyframe. Its seek (ffmpeg's MP4 demuxer)
    /// does this with any MP4 whose video starts at a positive composition offset and has no
    /// edit list, ffmpeg's own `-use_editlist 0` output included; the same clip remuxed by
    /// ffmpeg with an edit list seeks to the exact frame (seen with Chromium 156).
    fn judge_seek(&self, seek: &Value, context: &str) {
        let name = &self.name;
        let target = seek["target"].as_f64().expect("target");
        assert_eq!(
            seek["seeked"], true,
            "{name}: no seeked event for {target}\n{context}"
        );
        let current = seek["current_time"].as_f64().unwrap_or(-1.0);
        assert!(
            (current - target).abs() < 1e-3,
            "{name}: currentTime {current} after seeking to {target}\n{context}"
        );
        let shown = seek["media_time"].as_f64().unwrap_or_else(|| {
            panic!("{name}: no frame presented after seeking to {target}\n{context}")
        });
        let frame = self
            .frames
            .iter()
            .find(|f| (f.0 - shown).abs() < 1e-3)
            .unwrap_or_else(|| panic!("{name}: Chromium shows a frame at {shown} s, which the clip does not have\n{context}"));
        let drawn = barcode(
            seek["barcode"]
                .as_array()
                .expect("barcode")
                .iter()
                .map(|l| l.as_u64().unwrap_or(0)),
        );
        assert_eq!(
            drawn, frame.1,
            "{name}: the canvas shows frame #{drawn}, requestVideoFrameCallback says {shown} s (#{})\n{context}",
            frame.1
        );
        let std = seek["picture_std"].as_f64().unwrap_or(0.0);
        assert!(
            std > 20.0,
            "{name}: the frame at {shown} s is blank (luma spread {std})\n{context}"
        );

        let exact = self
            .frames
            .iter()
            .rev()
            .find(|f| f.0 <= target + 1e-6)
            .expect("a frame at or before the target");
        let late_key = self.keys.iter().find(|k| k.0 <= target && target < k.1);
        if (exact.0 - shown).abs() < 1e-3 {
            println!(
                "{name}: seek to {target:.3} s shows frame #{drawn} at {shown:.3} s (exact; luma spread {std:.0})"
            );
        } else {
            assert!(
                late_key.is_some_and(|k| (k.1 - shown).abs() < 1e-3),
                "{name}: seek to {target} s shows {shown} s, not the frame at {} s\n{context}",
                exact.0
            );
            println!(
                "{name}: seek to {target:.3} s shows the keyframe at {shown:.3} s, not the frame at {:.3} s \
                 (the target lies between the keyframe's decode time, {:.3} s, and its presentation time)",
                exact.0,
                late_key.map_or(0.0, |k| k.0)
            );
        }
    }

    /// No playback of the codec: Chromium must say so itself, and whatever plays (the AAC
    /// track) must still be right. Returns the evidence.
    fn judge_unsupported(&self, r: &Value, context: &str) -> String {
        let name = &self.name;
        assert_eq!(
            r["can_play_type"], "",
            "{name}: Chromium claims it can play {} but does not show it\n{context}",
            self.mime
        );
        assert_eq!(r["mse_supported"], false, "{name}\n{context}");
        let mut evidence = format!(
            "canPlayType('{}') = '', MediaSource.isTypeSupported = false",
            self.mime
        );
        if let Some(e) = r["error"].as_object() {
            evidence += &format!("; MediaError {}: {}", e["code"], e["message"]);
        } else {
            // Chromium drops streams it cannot decode and plays the rest.
            let decoded = r["quality"]["total_video_frames"].as_u64().unwrap_or(0);
            assert_eq!(decoded, 0, "{name}\n{context}");
            assert_eq!(
                r["ended"], true,
                "{name}: the audio did not play to the end\n{context}"
            );
            // Audio played alone is timed from its own first sample, not from the video's
            // first picture (the edit list's start, the B-frame delay).
            let duration = r["duration"].as_f64().unwrap_or(0.0);
            assert!(
                (duration - self.api_duration).abs() <= FRAME + self.edit_start + 1e-6,
                "{name}: duration {duration} s vs the API's {}\n{context}",
                self.api_duration
            );
            evidence += &format!(
                "; no MediaError: the video track is dropped (videoWidth {}, {decoded} video frames decoded) \
                 and the AAC track plays alone, {duration:.3} s to the end",
                r["video_width"]
            );
        }
        evidence
    }
}

/// Every video frame of a clip in presentation order, with its time and barcode number.
fn decode_barcodes(path: &Path) -> Vec<(f64, u32)> {
    let times = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["frame=pts_time", "-of", "csv=p=0"])
        .arg(path));
    let times: Vec<f64> = String::from_utf8_lossy(&times.stdout)
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap_or_else(|_| panic!("frame time {t:?}")))
        .collect();
    // One luma row through the middle of the barcode band (the browser reads the same row).
    let width = 320;
    let rows = run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v", "-fps_mode", "passthrough", "-vf"])
        // Gray first: yuv420p cannot be cropped to one row.
        .arg(format!("format=gray,crop={width}:1:0:{}", 240 / 8))
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"]));
    let block = width / BITS as usize;
    let numbers: Vec<u32> = rows
        .stdout
        .chunks(width)
        .map(|row| barcode((0..BITS as usize).map(|b| u64::from(row[b * block + block / 2]))))
        .collect();
    assert_eq!(times.len(), numbers.len(), "ffprobe's frames vs ffmpeg's");
    times.into_iter().zip(numbers).collect()
}
