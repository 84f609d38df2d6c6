//! The web UI in Debian's headless Chromium (tests/browser/ui.mjs drives it as a user would)
//! against a real `preroll serve` with gst-rtsp-server cameras: two H.264 cameras whose
//! pictures carry the wall-clock time as a barcode (so the latency of the live view is read
//! off the screen) and an H.265 camera, which Chromium here cannot decode.
//!
//! Screenshots (1280x800 and 390x844) are saved under target/ui-shots for review.

mod common;

use std::path::Path;
use std::time::Duration;

use common::browser::{CHROMIUM, check_tools, run_script};
use common::rtsp::{Auth, RtspServer};
use common::serve::{Service, TOKEN, config};
use common::unix_seconds;
use serde_json::{Value, json};

/// Seconds of latency measurement in the suite (the 10-minute run is `scripts/live-latency.sh`).
const LATENCY_SECONDS: u64 = 15;

#[test]
fn the_ui_logs_in_shows_live_cameras_takes_plays_and_deletes_a_clip() {
    check_tools();
    let d = tempfile::tempdir().unwrap();
    let rtsp = RtspServer::start(
        &[
            ("door", "live:h264?clock"),
            ("yard", "live:h264?clock"),
            ("hevc", "live:h265@320x180"),
        ],
        Auth::None,
    )
    .unwrap();
    let cameras = rtsp.cameras_config(&["door", "yard", "hevc"]);
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["door", "yard", "hevc"], 2.0, Duration::from_secs(60));
    let reconnects_before = reconnects(&svc);
    assert_eq!(svc.get("/api/clips").json(), json!([]));

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-shots");
    let job = json!({
        "base": svc.base,
        "token": TOKEN,
        "chromium": CHROMIUM,
        "cameras": [
            {"name": "door", "clock": true},
            {"name": "yard", "clock": true},
            {"name": "hevc", "clock": false},
        ],
        "clip": {"camera": "door", "lookback": 2, "duration": 2},
        "latency_seconds": LATENCY_SECONDS,
        "shots": shots,
    });
    let (r, stderr) = run_script("ui.mjs", &job, Duration::from_secs(240));
    let context = format!(
        "report: {r:#}\ndriver's stderr:\n{stderr}\nservice log:\n{}",
        svc.log()
    );
    assert!(
        r["failure"].is_null(),
        "the driver failed: {}\n{context}",
        r["failure"]
    );
    println!("Chromium {}; latency {:#}", r["browser"], r["latency"]);

    // Without a session: the login, and nothing else answers.
    assert_eq!(r["start"]["login_shown"], true, "{context}");
    for k in ["cameras_status", "clips_status", "live_status"] {
        assert_eq!(r["start"][k], 401, "{k}\n{context}");
    }
    assert_eq!(r["wrong_token"]["still_login"], true, "{context}");
    let wrong = r["wrong_token"]["message"].as_str().unwrap_or("");
    assert!(wrong.contains("Wrong token"), "{wrong}\n{context}");

    // Each tile: the H.264 ones show a picture within a second of the cameras view, the
    // H.265 one says why it cannot.
    for cam in ["door", "yard"] {
        let t = &r["login"]["cameras"][cam];
        assert_eq!(t["no_picture"], false, "{cam}: {t}\n{context}");
        let first = t["first_picture_ms"].as_f64().unwrap_or(f64::MAX);
        assert!(
            first <= 1000.0,
            "{cam}: first picture after {first} ms (login included)\n{context}"
        );
        let facts = t["facts"].as_str().unwrap_or("");
        assert!(facts.contains("H.264 640×360"), "{cam}: {facts}\n{context}");
        assert_eq!(t["badge"], "Connected", "{context}");
    }
    let hevc = &r["login"]["cameras"]["hevc"];
    assert_eq!(hevc["no_picture"], true, "{hevc}\n{context}");
    let message = hevc["message"].as_str().unwrap_or("");
    assert!(message.contains("H.265"), "{message}\n{context}");

    // The barcode advances and stays close to the camera's clock.
    for cam in ["door", "yard"] {
        let l = &r["latency"][cam];
        // Most of the camera's 25 frames a second reach the screen, each a new picture
        // (a loaded 2-core machine, and the canvas read of every frame, cost some).
        let frames = l["distinct_frames"].as_u64().unwrap_or(0);
        assert!(
            frames >= LATENCY_SECONDS * 25 / 2,
            "{cam}: {frames} distinct frames shown in {LATENCY_SECONDS} s\n{context}"
        );
        let median = l["median"].as_f64().unwrap_or(f64::MAX);
        let p95 = l["p95"].as_f64().unwrap_or(f64::MAX);
        assert!(median <= 1.0, "{cam}: median latency {median} s\n{context}");
        // Stalls on a loaded machine come and go; they must not pile up.
        assert!(
            p95 <= 1.5,
            "{cam}: 95th percentile latency {p95} s\n{context}"
        );
    }

    // A form posted by another site's page, in the browser holding the session: refused
    // (the cookie is SameSite=Strict, and the API checks the origin of cookie writes).
    let status = r["cross_origin"]["status"].as_u64().unwrap_or(0);
    assert!(status == 401 || status == 403, "{status}\n{context}");

    // The Clip control: the clip appears in the list as done within 2 s of finishing, and
    // plays; the trigger mark seeks to the trigger, whose frame carries the trigger's time.
    let clip = &r["clip"];
    let id = clip["id"].as_str().expect("a clip id");
    let shown = clip["row_after_done_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(
        shown <= 2000.0,
        "row shown {shown} ms after done\n{context}"
    );
    let api = &clip["api"];
    assert_eq!(api["state"], "done", "{context}");
    let preroll = api["preroll"].as_f64().unwrap_or(0.0);
    assert!(
        (preroll - 2.0).abs() <= 0.05,
        "preroll {preroll}\n{context}"
    );
    let download = &clip["download"];
    assert_eq!(download["status"], 200, "{context}");
    assert_eq!(download["type"], "video/mp4", "{context}");
    assert_eq!(download["bytes"], api["bytes"], "{context}");
    assert_eq!(download["name"], format!("door-{id}.mp4"), "{context}");
    let player = &clip["player"];
    let duration = player["duration"].as_f64().unwrap_or(0.0);
    assert!(
        (duration - api["duration"].as_f64().unwrap_or(0.0)).abs() <= 0.05,
        "{context}"
    );
    let at_mark = player["at_mark"]["time"].as_f64().unwrap_or(-1.0);
    assert!(
        (at_mark - preroll).abs() <= 0.05,
        "the mark seeks to {at_mark}\n{context}"
    );
    let mark_tick = player["at_mark"]["tick"]
        .as_u64()
        .expect("a barcode at the mark");
    let trigger_tick = tick_of(api["trigger_time"].as_str().expect("trigger time"));
    let off = (trigger_tick as i64 - mark_tick as i64).rem_euclid(65536);
    // The frame at the trigger was made at most half a second before it (the camera's
    // encode and delivery) and not after it.
    assert!(
        off <= 12,
        "trigger frame {off} ticks of 40 ms before the trigger\n{context}"
    );
    let half = player["at_half_second"]["tick"]
        .as_u64()
        .expect("a barcode at 0.5 s");
    let step = (mark_tick as i64 - half as i64).rem_euclid(65536);
    let expected = ((preroll - 0.5) * 25.0).round() as i64;
    assert!(
        (step - expected).abs() <= 1,
        "0.5 s to the mark is {step} frames, not {expected}\n{context}"
    );

    // Delete asks for a confirmation, then removes the clip.
    for (state, text, kept) in [
        ("before", "Keep", false),
        ("marked", "Kept", true),
        ("unmarked", "Keep", false),
    ] {
        let k = &r["keep"][state];
        assert_eq!(k["text"], text, "keep {state}: {context}");
        assert_eq!(k["pressed"], kept.to_string(), "keep {state}: {context}");
        assert_eq!(k["api"], kept, "keep {state}: {context}");
    }
    assert_eq!(r["delete"]["armed_text"], "Confirm delete", "{context}");
    assert_eq!(r["delete"]["row_gone"], true, "{context}");
    assert_eq!(r["delete"]["api_status"], 404, "{context}");
    assert_eq!(svc.get(&format!("/api/clips/{id}")).status, 404);

    // The one clip the test took, and none from the other site's form.
    assert_eq!(svc.get("/api/clips").json(), json!([]), "{context}");

    // Logged out: the login again, and the API refuses the old cookie.
    assert_eq!(r["logout"]["login_shown"], true, "{context}");
    assert_eq!(r["logout"]["cameras_status"], 401, "{context}");

    // Every control named and reachable by keyboard, on every view.
    for view in ["login", "cameras", "clips"] {
        let a = &r["a11y"][view];
        assert!(a["controls"].as_u64().unwrap_or(0) > 0, "{view}: {a}");
        assert_eq!(
            a["unnamed"],
            json!([]),
            "{view}: unnamed controls\n{context}"
        );
        assert_eq!(
            a["unreached"],
            json!([]),
            "{view}: controls Tab never reaches\n{context}"
        );
    }

    // No console errors and no refused request, except the refusals the test asked for.
    let asked = [
        ("start", "/api/cameras".to_owned()),
        ("start", "/api/clips".to_owned()),
        ("start", "/api/cameras/x/live.mp4".to_owned()),
        ("wrong_token", "/api/session".to_owned()),
        ("cross_origin", "/api/cameras/door/clips".to_owned()),
        ("delete", format!("/api/clips/{id}")),
        ("logout", "/api/cameras".to_owned()),
    ];
    let asked_for = |m: &Value| {
        let url = m["url"].as_str().unwrap_or("");
        let path = url.strip_prefix(svc.base.as_str()).unwrap_or(url);
        asked
            .iter()
            .any(|(step, p)| m["step"] == *step && path == p.as_str())
    };
    let unexpected: Vec<&Value> = r["console"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "error" || m["type"] == "pageerror")
        .filter(|m| !(is_refusal(m) && asked_for(m)))
        .chain(
            r["refused"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| !asked_for(m)),
        )
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected errors: {unexpected:#?}\n{context}"
    );

    for shot in [
        "login-1280x800",
        "cameras-1280x800",
        "clips-1280x800",
        "clips-390x844",
        "cameras-390x844",
    ] {
        let p = shots.join(format!("{shot}.png"));
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{} is {len} bytes", p.display());
    }
    // Watching added no camera connection.
    assert_eq!(reconnects(&svc), reconnects_before, "{}", svc.log());
}

/// A request refused with 401 or 403, as Chromium logs it.
fn is_refusal(m: &Value) -> bool {
    let text = m["text"].as_str().unwrap_or("");
    ["status of 401", "status of 403", "status of 404"]
        .iter()
        .any(|s| text.contains(s))
}

/// Sum of `preroll_reconnects_total` over the cameras.
fn reconnects(svc: &Service) -> u64 {
    svc.get("/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with("preroll_reconnects_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The 40 ms tick (mod 2^16) of an RFC 3339 UTC time, as the clock cameras number them.
fn tick_of(rfc3339: &str) -> u64 {
    let t = unix_seconds(rfc3339);
    ((t * 25.0).floor() as u64) % 65536
}

/// The live view over a long run (`scripts/live-latency.sh`; LATENCY_MINUTES, default 10):
/// one clock camera with a 1 s GOP, watched in Chromium; the latency in the first minute
/// and in the last must stay within the targets (1.0 s at the start, 1.5 s at the end).
#[test]
#[ignore = "a 10-minute run: scripts/live-latency.sh"]
fn live_latency_stays_low_for_ten_minutes() {
    check_tools();
    let minutes: u64 = std::env::var("LATENCY_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let d = tempfile::tempdir().unwrap();
    let rtsp = RtspServer::start(&[("door", "live:h264?clock")], Auth::None).unwrap();
    let cameras = rtsp.cameras_config(&["door"]);
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    svc.wait_cameras(&["door"], 2.0, Duration::from_secs(60));
    let job = json!({
        "base": svc.base, "token": TOKEN, "chromium": CHROMIUM,
        "cameras": ["door"], "minutes": minutes,
    });
    let limit = Duration::from_secs(minutes * 60 + 120);
    let (r, stderr) = run_script("latency.mjs", &job, limit);
    assert!(r["failure"].is_null(), "{r}\n{stderr}");
    let per_minute = r["minutes"]["door"].as_array().expect("minutes");
    println!("Chromium {}; latency per minute (s):", r["browser"]);
    println!("minute  frames  median  p95    max");
    for (i, m) in per_minute.iter().enumerate() {
        println!(
            "{:>6}  {:>6}  {:>6.2}  {:>5.2}  {:>5.2}",
            i + 1,
            m["distinct_frames"],
            m["median"].as_f64().unwrap_or(f64::NAN),
            m["p95"].as_f64().unwrap_or(f64::NAN),
            m["max"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let (first, last) = (&per_minute[0], &per_minute[per_minute.len() - 1]);
    assert!(
        first["median"].as_f64().unwrap_or(f64::MAX) <= 1.0,
        "{first}"
    );
    assert!(last["median"].as_f64().unwrap_or(f64::MAX) <= 1.5, "{last}");
    assert!(last["p95"].as_f64().unwrap_or(f64::MAX) <= 1.5, "{last}");
    assert_eq!(r["console"], json!([]), "console errors");
    assert_eq!(reconnects(&svc), 0, "{}", svc.log());
}
