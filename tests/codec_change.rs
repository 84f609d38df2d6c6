//! A camera that comes back from a reconnect at another resolution (640x360, then 1280x720):
//! the clip recorded across the change keeps both, as two `avc1` sample entries with the
//! parameter sets also in-band, and plays everywhere. ffmpeg decodes it whole and from ten
//! seek points around the change without an error; Chromium (tests/browser/play.mjs) plays
//! it and, after each seek, shows a frame at the resolution the clip has at that point.

mod common;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use common::browser::{CHROMIUM, check_tools, mime_of, play};
use common::rtsp::{Auth, RtspServer};
use common::serve::{Service, TOKEN, config};
use common::{assert_decodes_cleanly, check_structure, run};
use serde_json::json;

const SMALL: (u64, u64) = (640, 360);
const LARGE: (u64, u64) = (1280, 720);
/// One frame at the mounts' 25 fps.
const FRAME: f64 = 0.04;

/// Every video frame of the clip in presentation order: (time in s, width, height).
fn frames(path: &Path) -> Vec<(f64, u64, u64)> {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["frame=pts_time,width,height", "-of", "json"])
        .arg(path));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    v["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            let t = f["pts_time"].as_str().and_then(|t| t.parse().ok());
            let (w, h) = (f["width"].as_u64(), f["height"].as_u64());
            match (t, w, h) {
                (Some(t), Some(w), Some(h)) => (t, w, h),
                _ => panic!("frame {f}"),
            }
        })
        .collect()
}

/// ffmpeg's complaints when it seeks to `at` and decodes 5 frames from there.
fn seek_errors(path: &Path, at: f64) -> String {
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-ss",
            &format!("{at:.3}"),
        ])
        .arg("-i")
        .arg(path)
        .args(["-frames:v", "5", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let mut e = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        e.push_str(&format!("(exit {})", out.status));
    }
    e
}

#[test]
fn a_resolution_change_across_a_reconnect_decodes_seeks_and_plays_in_chromium() {
    check_tools();
    // The parameter sets only in the SDP: the clip's keyframes get them in-band from
    // preroll alone (see `OutTrack::inband`), which players that keep to the first sample
    // entry need to decode the second resolution.
    let mut srv = RtspServer::start(&[("cam", "live:h264?params=sdp")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let cameras = format!(
        "[[cameras]]\nname = \"cam\"\nsource = \"{}\"\n",
        srv.url("cam")
    );
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["cam"], 2.5, Duration::from_secs(60));
    let clip = svc.clip("cam", r#"{"lookback": 2, "duration": 14}"#);
    let id = clip["id"].as_str().expect("id");
    sleep(Duration::from_secs(4));
    // The camera reboots into 720p: same port, same mount name.
    srv.restart_with(&[(
        "cam",
        &format!("live:h264@{}x{}?params=sdp", LARGE.0, LARGE.1),
    )])
    .unwrap();
    let api = svc.wait_final(id, Duration::from_secs(60));
    assert_eq!(api["state"], "done", "{api}\nlog:\n{}", svc.log());
    let discontinuities = api["discontinuities"].as_u64().unwrap_or(0);
    assert!(discontinuities >= 1, "{api}\nlog:\n{}", svc.log());
    let path = Path::new(api["path"].as_str().expect("path")).to_owned();

    // Two avc1 sample entries, one per resolution.
    let moov = check_structure(&path);
    let entries: Vec<(u64, u64)> = moov.trak[0]
        .mdia
        .minf
        .stbl
        .stsd
        .codecs
        .iter()
        .map(|c| match c {
            mp4_atom::Codec::Avc1(a) => (u64::from(a.visual.width), u64::from(a.visual.height)),
            other => panic!("video sample entry {other:?}"),
        })
        .collect();
    assert_eq!(entries, [SMALL, LARGE], "the video track's sample entries");

    // ffmpeg: both resolutions, one change, where the API says the discontinuity is.
    assert_decodes_cleanly(&path);
    let frames = frames(&path);
    let sizes: Vec<(u64, u64)> = frames.iter().map(|f| (f.1, f.2)).collect();
    let change = sizes
        .iter()
        .position(|&s| s == LARGE)
        .unwrap_or_else(|| panic!("no {LARGE:?} frame: {sizes:?}"));
    assert!(change >= 25, "{change} frames before the change");
    assert!(
        sizes[..change].iter().all(|&s| s == SMALL) && sizes[change..].iter().all(|&s| s == LARGE),
        "one change from {SMALL:?} to {LARGE:?}: {sizes:?}"
    );
    assert!(frames.len() - change >= 50, "{frames:?}");
    let at = frames[change].0;
    let first = frames[0].0;
    let last = frames[frames.len() - 1].0;
    let reported = api["discontinuity_times"][0].as_f64().expect("a time");
    println!(
        "{} frames {first:.3}..{last:.3} s, {SMALL:?} until {at:.3} s (frame {change}), \
         the API's discontinuity at {reported:.3} s",
        frames.len()
    );
    assert!(
        (reported - at).abs() <= FRAME + 1e-3,
        "the API's discontinuity at {reported} s, the new resolution from {at} s"
    );

    // The frame on screen at t: the last one presented at or before it.
    let shown_at = |t: f64| {
        *frames
            .iter()
            .rev()
            .find(|f| f.0 <= t + 1e-6)
            .expect("a frame at or before the target")
    };
    // Ten seek points: spread over both parts, and just before and just after the change
    // (half a frame either side, and half a second). Each is moved to the middle of the frame
    // it falls in: a target on a frame's boundary (10.919999… for 10.92) shows the frame
    // before it in Chromium, which is right, but not what this test asks about.
    let seeks: Vec<f64> = [
        first + 0.1,
        first + (at - first) / 3.0,
        at - 0.5,
        at - FRAME / 2.0,
        at + FRAME / 2.0,
        at + 0.5,
        at + (last - at) / 3.0,
        at + (last - at) / 2.0,
        at + 2.0 * (last - at) / 3.0,
        last - 0.1,
    ]
    .iter()
    .map(|&t| shown_at(t).0 + FRAME / 2.0)
    .collect();
    for &t in &seeks {
        let e = seek_errors(&path, t);
        assert!(e.trim().is_empty(), "ffmpeg seeking to {t:.3} s:\n{e}");
    }

    // Chromium, from the service's download route.
    let job = json!({
        "base": svc.base,
        "token": TOKEN,
        "chromium": CHROMIUM,
        "clips": [{
            "name": "cam",
            "path": format!("/api/clips/{id}/file"),
            "mime": mime_of(&moov),
            "seeks": seeks,
            "bits": 10,
        }],
    });
    let (report, context) = play(&job);
    let r = &report["clips"][0];
    assert!(r["error"].is_null(), "MediaError {}\n{context}", r["error"]);
    assert_ne!(r["can_play_type"], "", "{context}");
    assert_eq!(r["ended"], true, "did not play to the end\n{context}");
    let seen = r["seeks"].as_array().map(Vec::as_slice).unwrap_or_default();
    assert_eq!(seen.len(), seeks.len(), "seeks\n{context}");
    for (seek, &t) in seen.iter().zip(&seeks) {
        let want = shown_at(t);
        assert_eq!(seek["seeked"], true, "no seeked event for {t}\n{context}");
        let presented = seek["presented"].as_array().map_or(0, Vec::len);
        assert!(
            presented > 0,
            "no frame presented after seeking to {t}\n{context}"
        );
        let size = (
            seek["video_width"].as_u64().unwrap_or(0),
            seek["video_height"].as_u64().unwrap_or(0),
        );
        let media_time = seek["media_time"].as_f64().unwrap_or(-1.0);
        let std = seek["picture_std"].as_f64().unwrap_or(0.0);
        println!(
            "seek to {t:.3} s: Chromium shows {media_time:.3} s at {}x{} (luma spread {std:.0}); \
             ffprobe's frame there is {:.3} s at {}x{}",
            size.0, size.1, want.0, want.1, want.2
        );
        assert_eq!(
            size,
            (want.1, want.2),
            "seek to {t}: Chromium's size, the frame at {} s\n{context}",
            want.0
        );
        assert!(
            (media_time - want.0).abs() < 1e-3,
            "seek to {t}: Chromium shows {media_time} s, not the frame at {} s\n{context}",
            want.0
        );
        assert!(std > 20.0, "seek to {t}: a blank frame\n{context}");
    }
    println!(
        "Chromium {}: {} video frames decoded, {} dropped",
        report["browser"], r["quality"]["total_video_frames"], r["quality"]["dropped_video_frames"]
    );
}
