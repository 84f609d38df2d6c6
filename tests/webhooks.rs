//! Webhooks end to end: a real `preroll serve` with the demo camera POSTing to a receiver in
//! the test, which checks every signature with its own HMAC; the receiver down for two
//! minutes, and the service killed with SIGKILL while deliveries are pending.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::receiver::{Delivery, Receiver, signature};
use common::serve::{Service, config};
use serde_json::Value;

const SECRET: &str = "a webhook secret, 42";
const LIMIT: Duration = Duration::from_secs(90);
const CLIP_KINDS: [&str; 4] = [
    "clip.created",
    "clip.recording",
    "clip.finalizing",
    "clip.done",
];

fn setup(dir: &std::path::Path, receiver: &Receiver) -> String {
    let cameras = format!(
        "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n\n\
         [[webhooks]]\nname = \"home\"\nurl = \"{}\"\nsecret_env = \"HOOK_SECRET\"\n\
         events = [\"clip.created\", \"clip.recording\", \"clip.finalizing\", \"clip.done\", \"clip.failed\"]\n",
        receiver.url("/hook?token=t0k3n")
    );
    config(dir, &cameras)
}

fn start(dir: &std::path::Path, config_text: &str) -> Service {
    let path = dir.join("preroll.toml");
    std::fs::write(&path, config_text).unwrap();
    Service::start_with_env(&path, &[("HOOK_SECRET", SECRET)])
}

/// Checks a delivery's signature and headers against its body; returns the event.
#[track_caller]
fn checked(d: &Delivery) -> Value {
    assert_eq!(
        d.headers.get("x-preroll-signature"),
        Some(&signature(SECRET, &d.body)),
        "{d:?}"
    );
    assert_eq!(d.path, "/hook?token=t0k3n");
    assert_eq!(
        d.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let event: Value = serde_json::from_slice(&d.body).expect("JSON body");
    assert_eq!(
        d.headers.get("x-preroll-event-id"),
        Some(&event["id"].to_string())
    );
    assert_eq!(
        d.headers.get("x-preroll-event"),
        event["kind"].as_str().map(str::to_owned).as_ref()
    );
    event
}

/// The events received, each id once (a receiver de-duplicating by id), in arrival order.
fn deduplicated(got: &[Delivery]) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    got.iter()
        .map(checked)
        .filter(|e| seen.insert(e["id"].as_u64().expect("id")))
        .collect()
}

/// Kinds per clip id, in arrival order.
fn per_clip(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        let id = e["clip"]["id"].as_str().expect("a clip event").to_owned();
        m.entry(id)
            .or_default()
            .push(e["kind"].as_str().unwrap_or("?").to_owned());
    }
    m
}

fn all_done(clips: usize) -> impl Fn(&[Delivery]) -> bool {
    move |got| {
        let events = deduplicated(got);
        events.iter().filter(|e| e["kind"] == "clip.done").count() >= clips
    }
}

/// The receiver is down for two minutes while two clips record; once up, every event is
/// delivered, signed, each id at least once and in order, and nothing else was held up.
#[test]
fn a_receiver_down_for_two_minutes_gets_every_event_once_up() {
    let d = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::down();
    let svc = start(d.path(), &setup(d.path(), &receiver));
    svc.wait_cameras(&["demo"], 2.0, LIMIT);
    let a = svc.clip(
        "demo",
        r#"{"duration": 1, "lookback": 1, "request_id": "a"}"#,
    );
    let b = svc.clip(
        "demo",
        r#"{"duration": 1, "lookback": 1, "request_id": "b"}"#,
    );
    // The dead endpoint holds up no clip.
    for clip in [&a, &b] {
        let id = clip["id"].as_str().unwrap();
        assert_eq!(svc.wait_final(id, LIMIT)["state"], "done");
    }
    std::thread::sleep(Duration::from_secs(120));
    let metrics = svc.request("GET", "/metrics", None, &[], None).text();
    assert!(
        metrics.contains("preroll_webhook_pending{webhook=\"home\"} 8"),
        "{metrics}"
    );
    assert!(!metrics.contains("preroll_webhook_failed_attempts_total{webhook=\"home\"} 0\n"));
    receiver.up();
    // The longest wait between retries is 30 s.
    let got = receiver.wait(Duration::from_secs(60), all_done(2));
    let events = deduplicated(&got);
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order: {ids:?}");
    let clips = per_clip(&events);
    for clip in [&a, &b] {
        let kinds = &clips[clip["id"].as_str().unwrap()];
        assert_eq!(kinds, &CLIP_KINDS, "{clips:?}");
    }
    assert!(
        events
            .iter()
            .all(|e| e["request_id"] == "a" || e["request_id"] == "b")
    );
    // The URL's token is not logged.
    assert!(!svc.log().contains("t0k3n"), "{}", svc.log());
    // The receiver holds the last event a moment before preroll reads its answer and takes
    // the event off the queue.
    common::wait_for(
        Duration::from_secs(10),
        || svc.request("GET", "/metrics", None, &[], None).text(),
        |m| m.contains("preroll_webhook_pending{webhook=\"home\"} 0"),
        |m| m.clone(),
    );
    let metrics = svc.request("GET", "/metrics", None, &[], None).text();
    assert!(
        metrics.contains("preroll_webhook_delivered_total{webhook=\"home\"} 8"),
        "{metrics}"
    );
}

/// Killed with SIGKILL while deliveries wait: they are on disk, and sent after the restart.
#[test]
fn deliveries_pending_at_a_kill_9_are_sent_after_the_restart() {
    let d = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::down();
    let text = setup(d.path(), &receiver);
    let mut svc = start(d.path(), &text);
    svc.wait_cameras(&["demo"], 2.0, LIMIT);
    let clip = svc.clip("demo", r#"{"duration": 1, "lookback": 1}"#);
    let id = clip["id"].as_str().unwrap().to_owned();
    assert_eq!(svc.wait_final(&id, LIMIT)["state"], "done");
    let queue = d.path().join("recordings/.preroll/webhook-home.jsonl");
    let queued = std::fs::read_to_string(&queue).expect("the queue is on disk");
    assert_eq!(queued.lines().count(), 4, "{queued}");
    svc.signal_and_wait(libc::SIGKILL, LIMIT);

    receiver.up();
    let svc = start(d.path(), &text);
    let got = receiver.wait(LIMIT, |got| {
        deduplicated(got)
            .iter()
            .any(|e| e["kind"] == "clip.done" && e["clip"]["id"] == id.as_str())
    });
    let events = deduplicated(&got);
    assert_eq!(per_clip(&events)[&id], CLIP_KINDS);
    assert!(
        svc.log()
            .contains("deliveries pending from before the restart")
    );
    // Sent: the queue empties.
    let start = std::time::Instant::now();
    while std::fs::metadata(&queue).map_or(1, |m| m.len()) > 0 {
        assert!(start.elapsed() < LIMIT, "the queue did not empty");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A webhook that cannot work is a config error, named, before anything starts.
#[test]
fn bad_webhook_config_is_refused_with_every_problem() {
    let d = tempfile::tempdir().unwrap();
    let text = config(
        d.path(),
        "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n\n\
         [[webhooks]]\nurl = \"ftp://example.com/x\"\nevents = [\"clip.exploded\"]\n\
         secret_env = \"NO_SUCH_VARIABLE_SET\"\nretry_for = 5\n",
    );
    let path = d.path().join("preroll.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_preroll"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("NO_SUCH_VARIABLE_SET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "webhooks[0].url",
        "webhooks[0].events[0]",
        "clip.exploded",
        "webhooks[0].secret_env",
        "NO_SUCH_VARIABLE_SET",
        "webhooks[0].retry_for",
    ] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
}
