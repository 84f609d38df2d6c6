//! The service's event stream end to end: `GET /api/events` from a real `preroll serve` with
//! the demo camera, read over a real socket as Server-Sent Events.

mod common;

use std::time::Duration;

use common::serve::{Service, config};
use serde_json::Value;

const DEMO: &str = "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n";
const LIMIT: Duration = Duration::from_secs(60);

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?"))
        .collect()
}

fn ids(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect()
}

/// A clip's events arrive in order with its view and the request id; a client that drops
/// the stream and resumes with `Last-Event-ID` gets exactly what it missed, the same events
/// an uninterrupted client got.
#[test]
fn clip_events_in_order_and_a_resume_gives_exactly_the_missed_ones() {
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    svc.wait_cameras(&["demo"], 2.0, LIMIT);

    // From the start of the run: the service started and the camera connected.
    let from_start = svc.events("/api/events?after=0", None);
    assert!(
        from_start.head.starts_with("HTTP/1.0 200"),
        "{}",
        from_start.head
    );
    assert!(
        from_start.head.contains("text/event-stream"),
        "{}",
        from_start.head
    );
    let early = from_start.until(LIMIT, |e| e["kind"] == "camera.connected");
    // The service's own event comes first, however fast the camera connected (the cameras
    // start before the API listens).
    assert_eq!(
        kinds(&early).first(),
        Some(&"service.started"),
        "{early:#?}"
    );
    let connected = early.last().expect("connected");
    assert_eq!(connected["camera"], "demo");
    assert_eq!(
        connected["tracks"],
        serde_json::json!(["H.264 640x360", "AAC"])
    );

    let all = svc.events("/api/events", None);
    let dropped = svc.events("/api/events", None);
    let clip = svc.clip(
        "demo",
        r#"{"duration": 2, "lookback": 1, "request_id": "motion-42"}"#,
    );
    let id = clip["id"].as_str().expect("id").to_owned();
    let is_done = |e: &Value| e["clip"]["id"] == id.as_str() && e["kind"] == "clip.done";

    // The dropping client reads up to `clip.recording`, then goes away.
    let before_drop = dropped.until(LIMIT, |e| e["kind"] == "clip.recording");
    let last_seen = *ids(&before_drop).last().expect("an event");
    drop(dropped);

    let everything = all.until(LIMIT, is_done);
    let clip_events: Vec<&Value> = everything
        .iter()
        .filter(|e| e["clip"]["id"] == id.as_str())
        .collect();
    let clip_kinds: Vec<&str> = clip_events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        clip_kinds,
        [
            "clip.created",
            "clip.recording",
            "clip.finalizing",
            "clip.done"
        ]
    );
    for e in &clip_events {
        assert_eq!(e["request_id"], "motion-42", "{e}");
        assert_eq!(e["camera"], "demo", "{e}");
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }
    let done = clip_events.last().expect("done");
    assert_eq!(done["clip"]["state"], "done");
    assert!(
        done["clip"]["duration"].as_f64().unwrap_or(0.0) > 2.5,
        "{done}"
    );
    // Ids grow by one with each event.
    let seen = ids(&everything);
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");

    // Resuming after the last event seen gives exactly the rest.
    let resumed = svc.events("/api/events", Some(last_seen));
    let missed = resumed.until(LIMIT, is_done);
    let expected: Vec<u64> = seen.iter().copied().filter(|&i| i > last_seen).collect();
    assert_eq!(ids(&missed), expected);
    // The history has the clip once it is done.
    let listed = svc.get(&format!("/api/clips/{id}")).json();
    assert_eq!(listed["state"], "done");
    assert_eq!(listed["request_id"], "motion-42");

    // Filtered by kind; and the counters follow the events.
    let only_done = svc.events("/api/events?after=0&kinds=clip.done", None);
    let got = only_done.until(LIMIT, is_done);
    assert_eq!(kinds(&got), ["clip.done"]);
    let metrics = svc.request("GET", "/metrics", None, &[], None).text();
    assert!(
        metrics.contains("preroll_events_total{kind=\"clip.done\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("preroll_clips_total{state=\"done\"} 1"),
        "{metrics}"
    );
}

/// Bad requests to the stream are refused at once with a reason; the token is required.
#[test]
fn the_event_stream_refuses_bad_ids_kinds_and_tokens() {
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    let r = svc.request("GET", "/api/events", None, &[], None);
    assert_eq!(r.status, 401);
    let r = svc.request(
        "GET",
        "/api/events",
        Some(common::serve::TOKEN),
        &[("Last-Event-ID", "yesterday")],
        None,
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Last-Event-ID"), "{}", r.text());
    let r = svc.get("/api/events?kinds=clip.done,clip.exploded");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("clip.exploded"), "{}", r.text());
}

/// A service stopping tells its event clients so and ends their streams, so shutdown does
/// not wait for them.
#[test]
fn stopping_ends_the_stream_with_service_stopping() {
    let d = tempfile::tempdir().unwrap();
    let mut svc = Service::start(d.path(), &config(d.path(), DEMO));
    let stream = svc.events("/api/events", None);
    let started = std::time::Instant::now();
    let status = svc.signal_and_wait(libc::SIGTERM, LIMIT);
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown waited for the event client: {:?}",
        started.elapsed()
    );
    let got = stream.drain(Duration::from_secs(5));
    assert_eq!(kinds(&got).last(), Some(&"service.stopping"), "{got:#?}");
}

/// Deleting a final clip removes its file and its entry, for good, with a `clip.deleted`
/// event; a clip still recording is refused, and an unknown id is 404.
#[test]
fn deleting_a_clip_removes_file_and_entry_with_an_event() {
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    svc.wait_cameras(&["demo"], 2.0, LIMIT);
    let events = svc.events("/api/events?kinds=clip.deleted", None);
    let long = svc.clip("demo", r#"{"duration": 60, "lookback": 0}"#);
    let long_id = long["id"].as_str().unwrap();
    let r = svc.request(
        "DELETE",
        &format!("/api/clips/{long_id}"),
        Some(common::serve::TOKEN),
        &[],
        None,
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("recording"), "{}", r.text());
    svc.post(&format!("/api/clips/{long_id}/stop"), "");

    let clip = svc.clip("demo", r#"{"duration": 1, "lookback": 1}"#);
    let id = clip["id"].as_str().unwrap().to_owned();
    let done = svc.wait_final(&id, LIMIT);
    let path = std::path::PathBuf::from(done["path"].as_str().unwrap());
    assert!(path.is_file());
    let r = svc.request(
        "DELETE",
        &format!("/api/clips/{id}"),
        Some(common::serve::TOKEN),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id.as_str());
    assert!(!path.exists(), "the file is gone");
    assert_eq!(svc.get(&format!("/api/clips/{id}")).status, 404);
    assert!(!svc.get("/api/clips").text().contains(&id));
    let deleted = events.next(LIMIT);
    assert_eq!(deleted["kind"], "clip.deleted");
    assert_eq!(deleted["clip"]["id"], id.as_str());
    let again = svc.request(
        "DELETE",
        &format!("/api/clips/{id}"),
        Some(common::serve::TOKEN),
        &[],
        None,
    );
    assert_eq!(again.status, 404);
    // Gone from the history on disk too: not back after a restart.
    svc.wait_final(long_id, LIMIT);
    drop(svc);
    let svc = Service::start(d.path(), &config(d.path(), DEMO));
    assert_eq!(svc.get(&format!("/api/clips/{id}")).status, 404);
    assert_eq!(svc.get(&format!("/api/clips/{long_id}")).status, 200);
}
