//! Range export with the real `preroll serve`: a gst-rtsp-server camera whose pictures carry
//! the wall-clock time as a barcode (a tick per 40 ms frame) recorded continuously in 5 s
//! files across a camera restart, then exported across the gap by the API and by
//! `preroll export`. The barcodes read back from the decoded export show every frame of the
//! range exactly once, in order, with one jump (the restart) and ends within a few frames
//! of the times asked for. And the refusals: an empty range, a range with nothing recorded,
//! a camera that does not record continuously, a file that cannot be read.
//!
//! And a clip whose lookback (120 s) is twelve times what the camera's ring holds: the older
//! part is read from the continuous recording and the ring's media follows it without a
//! missing or repeated frame.

mod common;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, UNIX_EPOCH};

use common::rtsp::{Auth, RtspServer};
use common::serve::{Service, config};
use common::{assert_decodes_cleanly, unix_seconds};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
/// Frames a second of the `?clock` mounts (a barcode tick each).
const FPS: f64 = 25.0;

/// The barcode of every presented picture of `path` (see `?clock` in rtsp_server.py: 16
/// blocks across the top quarter, bit b at block b, white for 1), in presentation order.
fn clock_ticks(path: &Path) -> Vec<u32> {
    let width = 640usize;
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-fps_mode",
            "passthrough",
            "-vf",
            "format=gray,crop=640:1:0:44",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let block = width / 16;
    out.stdout
        .chunks_exact(width)
        .map(|row| {
            (0..16).fold(0u32, |n, b| {
                n | (u32::from(row[b * block + block / 2] > 128) << b)
            })
        })
        .collect()
}

/// Checks that `ticks` run one by one except for a single jump; returns the jump's size in
/// ticks.
fn one_jump(ticks: &[u32]) -> u32 {
    let mut jumps = Vec::new();
    for (i, pair) in ticks.windows(2).enumerate() {
        let step = pair[1].wrapping_sub(pair[0]) & 0xffff;
        if step != 1 {
            jumps.push((i, pair[0], pair[1], step));
        }
    }
    assert_eq!(
        jumps.len(),
        1,
        "the frames run one by one except across the restart: (index, tick, next, step) {jumps:?}"
    );
    jumps[0].3
}

/// Where an unwrapped tick lies in unix seconds, near `near`.
fn tick_seconds(tick: u32, near: f64) -> f64 {
    let base = (near * FPS) as i64;
    let wrapped = i64::from(tick);
    let candidate = base - base.rem_euclid(65536) + wrapped;
    let best = [candidate - 65536, candidate, candidate + 65536]
        .into_iter()
        .min_by_key(|c| (c - base).abs())
        .unwrap_or(candidate);
    best as f64 / FPS
}

#[test]
fn an_export_across_a_camera_restart_holds_every_frame_once_with_one_discontinuity() {
    let mut srv = RtspServer::start(&[("cam", "live:h264?clock")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let cameras = format!(
        "[[cameras]]\nname = \"cam\"\nsource = \"{}\"\ncontinuous = true\n\
         continuous_file_seconds = 5\n\n[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n",
        srv.url("cam")
    );
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["cam"], 1.0, LIMIT);
    sleep(Duration::from_secs(11));
    srv.kill();
    sleep(Duration::from_secs(4));
    srv.restart().unwrap();
    svc.wait_cameras(&["cam"], 1.0, LIMIT);
    sleep(Duration::from_secs(13));

    let listed = svc.get("/api/cameras/cam/recordings").json();
    let ranges = listed["ranges"].as_array().unwrap();
    let gaps = listed["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{listed:#}");
    let gap_seconds = gaps[0]["seconds"].as_f64().unwrap();
    let first = unix_seconds(ranges[0]["start"].as_str().unwrap());
    let last = unix_seconds(ranges[ranges.len() - 1]["end"].as_str().unwrap());
    assert!(
        unix_seconds(gaps[0]["start"].as_str().unwrap()) > first + 3.0
            && unix_seconds(gaps[0]["end"].as_str().unwrap()) < last - 3.0,
        "the gap lies inside the recording: {listed:#}"
    );
    // From inside the first file to inside the last one, across every seam and the gap.
    let (start, end) = (first + 2.3, last - 1.1);
    let rfc = |t: f64| preroll::time::rfc3339(UNIX_EPOCH + Duration::from_secs_f64(t));
    let body = json!({"start": rfc(start), "end": rfc(end), "request_id": "x1"}).to_string();
    let created = svc.post("/api/cameras/cam/exports", &body);
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let done = svc.wait_final(&id, LIMIT);
    assert_eq!(done["state"], "done", "{done:#}");
    assert_eq!(done["discontinuities"], 1, "{done:#}");
    assert_eq!(
        done["export"]["gaps"].as_array().map(Vec::len),
        Some(1),
        "{done:#}"
    );
    assert_eq!(done["export"]["skipped"], json!([]), "{done:#}");
    let path = Path::new(done["path"].as_str().unwrap()).to_owned();
    assert!(common::is_progressive(&path), "{}", path.display());
    assert_decodes_cleanly(&path);

    let ticks = clock_ticks(&path);
    let jump = one_jump(&ticks);
    let missing = f64::from(jump - 1) / FPS;
    assert!(
        (missing - gap_seconds).abs() < 1.0,
        "{missing} s of frames missing across the restart, the gap listed {gap_seconds} s"
    );
    // Each end is the frame of the recording at the time asked for, within a frame: the
    // frame of the first file `start` falls on, and the last one before `end` in the last.
    // (Against the painted time the ends are off by what the camera's pictures took to
    // arrive, which after a reconnect includes what the server queued before PLAY.)
    let frame_at = |range: &Value, t: f64| {
        let in_file = clock_ticks(Path::new(range["path"].as_str().unwrap()));
        let i = ((t - unix_seconds(range["start"].as_str().unwrap())) * FPS).round();
        in_file[(i.max(0.0) as usize).min(in_file.len() - 1)]
    };
    let apart = |a: u32, b: u32| (a.wrapping_sub(b) & 0xffff).min(b.wrapping_sub(a) & 0xffff);
    let (want_first, want_last) = (
        frame_at(&ranges[0], start),
        frame_at(&ranges[ranges.len() - 1], end - 1.0 / FPS),
    );
    let (got_first, got_last) = (ticks[0], ticks[ticks.len() - 1]);
    println!(
        "export of {:.3} s: {} frames; first frame {} from the recording's at start, last \
         {} from its last before end; against the painted time {:+.3} s and {:+.3} s; \
         {missing:.2} s missing across a gap listed as {gap_seconds:.2} s",
        end - start,
        ticks.len(),
        i64::from(got_first) - i64::from(want_first),
        i64::from(got_last) - i64::from(want_last),
        tick_seconds(got_first, start) - start,
        tick_seconds(got_last, end) + 1.0 / FPS - end,
    );
    assert!(
        apart(got_first, want_first) <= 1,
        "first {got_first}, the recording's {want_first}"
    );
    assert!(
        apart(got_last, want_last) <= 1,
        "last {got_last}, the recording's {want_last}"
    );
    let expected = (end - start - gap_seconds) * FPS;
    assert!(
        (ticks.len() as f64 - expected).abs() < 0.5 * FPS,
        "{} frames, about {expected} expected",
        ticks.len()
    );

    // The same range from the command line, beside the running service: the same frames.
    let out = d.path().join("cli.mp4");
    let recordings = d.path().join("recordings");
    let export = |from: f64, to: f64, out: &Path| {
        common::preroll(&[
            "export",
            "--recordings",
            common::s(&recordings),
            "--camera",
            "cam",
            "--start",
            &rfc(from),
            "--end",
            &rfc(to),
            "-o",
            common::s(out),
        ])
    };
    let succeeded = |o: std::process::Output| {
        let said = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "preroll export failed: {said}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let printed = succeeded(export(start, end, &out));
    assert!(printed.contains("1 discontinuities"), "{printed}");
    assert_eq!(
        clock_ticks(&out),
        ticks,
        "the command line's export differs"
    );

    // Refusals, each at once and leaving no file.
    let refused = |camera: &str, body: Value, status: u16, says: &str| {
        let r = svc.post(&format!("/api/cameras/{camera}/exports"), &body.to_string());
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.text().contains(says), "{body}: {}", r.text());
    };
    refused(
        "cam",
        json!({"start": rfc(end), "end": rfc(start)}),
        400,
        "is not after start",
    );
    refused(
        "cam",
        json!({"start": "yesterday", "end": rfc(end)}),
        400,
        "RFC 3339",
    );
    refused("cam", json!({"start": rfc(start)}), 400, "end");
    refused(
        "cam",
        json!({"start": rfc(first - 600.0), "end": rfc(first - 300.0)}),
        404,
        "recorded nothing between",
    );
    refused(
        "demo",
        json!({"start": rfc(start), "end": rfc(end)}),
        404,
        "continuous = true",
    );
    refused(
        "nope",
        json!({"start": rfc(start), "end": rfc(end)}),
        404,
        "nope",
    );
    let clips = svc.get("/api/clips").json();
    assert_eq!(clips.as_array().map(Vec::len), Some(1), "{clips:#}");
    let missing_cli = export(first - 600.0, first - 300.0, &d.path().join("none.mp4"));
    let said = String::from_utf8_lossy(&missing_cli.stderr);
    assert!(
        !missing_cli.status.success() && said.contains("nothing was recorded"),
        "{said}"
    );
    assert!(!d.path().join("none.mp4").exists() && !d.path().join("none.mp4.partial").exists());

    // A file that cannot be read is left out, its time reported as a gap; the rest is kept.
    let second = Path::new(ranges[1]["path"].as_str().unwrap());
    std::fs::write(second, b"not an mp4 any more").unwrap();
    let broken = d.path().join("broken.mp4");
    let printed = succeeded(export(start, end, &broken));
    assert!(printed.contains("skipped"), "{printed}");
    assert_eq!(
        printed.matches("\ngap ").count() + usize::from(printed.starts_with("gap ")),
        2,
        "{printed}"
    );
    assert_decodes_cleanly(&broken);
    let kept = clock_ticks(&broken);
    assert!(
        kept.len() + (4.0 * FPS) as usize <= ticks.len() && kept.len() > ticks.len() / 3,
        "{} frames kept of {}",
        kept.len(),
        ticks.len()
    );
}

/// A clock camera with a 10 s ring and a continuous recording in files of `file_seconds`,
/// served for `seconds` after it is live. The RTSP server lives as long as what is returned.
fn clock_camera_with_ring_of_10_s(
    file_seconds: u32,
    seconds: u64,
) -> (RtspServer, tempfile::TempDir, Service) {
    let srv = RtspServer::start(&[("cam", "live:h264?clock")], Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let cameras = format!(
        "[[cameras]]\nname = \"cam\"\nsource = \"{}\"\npreroll_seconds = 10\n\
         continuous = true\ncontinuous_file_seconds = {file_seconds}\n",
        srv.url("cam")
    );
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["cam"], 1.0, LIMIT);
    sleep(Duration::from_secs(seconds));
    (srv, d, svc)
}

#[test]
fn a_lookback_past_the_ring_comes_from_disk_and_meets_the_ring_exactly() {
    let (_srv, _dir, svc) = clock_camera_with_ring_of_10_s(30, 127);
    let ring = svc.get("/api/cameras").json()[0]["ring_seconds"]
        .as_f64()
        .unwrap();
    assert!(ring < 12.0, "the ring holds {ring} s");

    // And at the same moment a clip the ring alone holds: the two must agree where they
    // overlap, so the long one starts 115 s before the short one, to the frame.
    let clip = svc.clip("cam", r#"{"lookback": 120, "duration": 2}"#);
    let short = svc.clip("cam", r#"{"lookback": 5, "duration": 2}"#);
    let done = svc.wait_final(clip["id"].as_str().unwrap(), LIMIT);
    let short = svc.wait_final(short["id"].as_str().unwrap(), LIMIT);
    assert_eq!(done["state"], "done", "{done:#}");
    assert_eq!(short["state"], "done", "{short:#}");
    let preroll = done["preroll"].as_f64().unwrap();
    assert!(
        (preroll - 120.0).abs() < 0.05,
        "pre-roll {preroll} s: {done:#}"
    );
    assert_eq!(done["discontinuities"], 0, "{done:#}");
    let path = Path::new(done["path"].as_str().unwrap()).to_owned();
    assert_decodes_cleanly(&path);
    let ticks = clock_ticks(&path);
    let steps: Vec<(usize, u32)> = ticks
        .windows(2)
        .enumerate()
        .map(|(i, p)| (i, p[1].wrapping_sub(p[0]) & 0xffff))
        .filter(|(_, step)| *step != 1)
        .collect();
    assert!(
        steps.is_empty(),
        "frames missing or repeated at (index, step) {steps:?}"
    );
    let ring_only = clock_ticks(Path::new(short["path"].as_str().unwrap()));
    let between = unix_seconds(short["trigger_time"].as_str().unwrap())
        - unix_seconds(done["trigger_time"].as_str().unwrap());
    let signed = |a: u32, b: u32| {
        let d = i64::from(a.wrapping_sub(b) & 0xffff);
        if d > 32768 { d - 65536 } else { d }
    };
    let first_off = signed(ring_only[0], ticks[0]) - ((115.0 + between) * FPS).round() as i64;
    let last_off = signed(ring_only[ring_only.len() - 1], ticks[ticks.len() - 1])
        - (between * FPS).round() as i64;
    println!(
        "lookback 120 s with a {ring:.1} s ring: {} frames, pre-roll {preroll:.3} s; against a \
         clip of the ring alone triggered {between:.3} s later, the first frame {first_off:+} \
         and the last {last_off:+} frames off",
        ticks.len()
    );
    assert!(first_off.abs() <= 1, "first frame {first_off} frames off");
    assert!(last_off.abs() <= 1, "last frame {last_off} frames off");
    let expected = 122.0 * FPS;
    assert!(
        (ticks.len() as f64 - expected).abs() <= 2.0,
        "{} frames, {expected} expected",
        ticks.len()
    );
}

/// Changes the last byte of every keyframe in a finished MP4 (from ffprobe's packet list):
/// the file reads as before, but none of its keyframes is found by its bytes.
fn alter_keyframes(path: &str) {
    let out = common::run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-select_streams",
        "v",
        "-show_entries",
        "packet=pos,size,flags",
        "-of",
        "csv=p=0",
        path,
    ]));
    let mut bytes = std::fs::read(path).unwrap();
    let mut altered = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() == 3 && f[2].starts_with('K') {
            let (size, pos): (usize, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
            bytes[pos + size - 1] ^= 0x01;
            altered += 1;
        }
    }
    assert!(altered > 0, "no keyframe in {path}");
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_lookback_whose_ring_start_is_not_on_disk_ends_at_the_ring_with_a_discontinuity() {
    let (_srv, _dir, svc) = clock_camera_with_ring_of_10_s(5, 35);
    // The finished file that holds the ring's first frame, well inside it (the ring starts
    // up to a part before `now - ring_seconds`).
    let file_holding_ring_start = || {
        common::wait_for(
            LIMIT,
            || {
                let now = std::time::SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                let ring = svc.get("/api/cameras").json()[0]["ring_seconds"]
                    .as_f64()
                    .unwrap();
                let ring_start = now - ring;
                let listed = svc.get("/api/cameras/cam/recordings").json();
                listed["ranges"].as_array().unwrap().iter().find_map(|r| {
                    let start = unix_seconds(r["start"].as_str().unwrap());
                    let end = unix_seconds(r["end"].as_str().unwrap());
                    (start + 0.3 < ring_start - 1.0 && ring_start + 1.5 < end)
                        .then(|| r["path"].as_str().unwrap().to_owned())
                })
            },
            Option::is_some,
            |_| "no finished file holding the ring's start".to_owned(),
        )
        .unwrap()
    };
    // A clip reaching past the ring, at once: it must end its disk media at the ring's
    // start (reading on would show the ring's first seconds twice) and count the join.
    let lookback_past = |case: &str| {
        let clip = svc.clip("cam", r#"{"lookback": 25, "duration": 2}"#);
        let done = svc.wait_final(clip["id"].as_str().unwrap(), LIMIT);
        assert_eq!(done["state"], "done", "{done:#}");
        let ticks = clock_ticks(Path::new(done["path"].as_str().unwrap()));
        // Frames shown again: each step back of the painted clock, by how far.
        let repeated: u32 = ticks
            .windows(2)
            .map(|p| p[0].wrapping_sub(p[1]) & 0xffff)
            .filter(|back| *back < 32768)
            .map(|back| back + 1)
            .sum();
        println!(
            "{case}: {} frames, {repeated} shown twice, discontinuities {}, pre-roll {}",
            ticks.len(),
            done["discontinuities"],
            done["preroll"]
        );
        assert!(
            done["discontinuities"].as_u64().unwrap() >= 1,
            "{case}: the join is not seamless: {done:#}"
        );
        assert!(repeated <= 3, "{case}: {repeated} frames shown twice");
    };
    // The file is there, but its keyframes are not the ring's.
    alter_keyframes(&file_holding_ring_start());
    lookback_past("keyframes altered");
    // The file is gone.
    sleep(Duration::from_secs(12));
    std::fs::remove_file(file_holding_ring_start()).unwrap();
    lookback_past("file removed");
}

#[test]
fn an_export_of_the_last_seconds_reads_the_file_being_written() {
    // Files of 30 s, 15 s in: everything recorded is in the file being written.
    let (_srv, _dir, svc) = clock_camera_with_ring_of_10_s(30, 15);
    let listed = svc.get("/api/cameras/cam/recordings").json();
    assert_eq!(listed["ranges"], json!([]), "{listed:#}");
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (start, end) = (now - 12.0, now - 2.0);
    let rfc = |t: f64| preroll::time::rfc3339(UNIX_EPOCH + Duration::from_secs_f64(t));
    let body = json!({"start": rfc(start), "end": rfc(end)}).to_string();
    let created = svc.post("/api/cameras/cam/exports", &body);
    assert_eq!(created.status, 201, "{}", created.text());
    let done = svc.wait_final(created.json()["id"].as_str().unwrap(), LIMIT);
    assert_eq!(done["state"], "done", "{done:#}");
    assert_eq!(done["discontinuities"], 0, "{done:#}");
    let path = Path::new(done["path"].as_str().unwrap()).to_owned();
    assert_decodes_cleanly(&path);
    let ticks = clock_ticks(&path);
    // Against the painted time the ends are off by what the pictures took to arrive.
    let (first, last) = (
        tick_seconds(ticks[0], start) - start,
        tick_seconds(ticks[ticks.len() - 1], end) + 1.0 / FPS - end,
    );
    println!(
        "export of the last 12 to 2 s: {} frames, against the painted time {first:+.3} s and \
         {last:+.3} s",
        ticks.len()
    );
    assert!(
        (ticks.len() as f64 - 10.0 * FPS).abs() <= 2.0,
        "{} frames",
        ticks.len()
    );
    // The test server's pictures arrive about 0.9 s after their painted time.
    assert!(first.abs() < 2.0 && last.abs() < 2.0, "{first} {last}");
    let steps = ticks
        .windows(2)
        .filter(|p| p[1].wrapping_sub(p[0]) & 0xffff != 1)
        .count();
    assert_eq!(steps, 0, "frames missing or repeated");
}
