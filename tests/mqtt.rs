//! MQTT end to end: a real Mosquitto broker (with a password file) and a real `preroll serve`
//! with the demo camera; Mosquitto's own clients publish triggers and watch what the service
//! publishes. The broker is killed and restarted mid-clip, and comes back refusing the
//! service's password for a while.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::assert_decodes_cleanly;
use common::mosquitto::{Broker, Received};
use common::receiver::{Receiver, signature};
use common::rtsp::{Auth, RtspServer};
use common::serve::{Service, config};
use serde_json::Value;

const USER: (&str, &str) = ("preroll", "preroll-pw-7");
const HOOK_SECRET: &str = "hook secret 99";

const LIMIT: Duration = Duration::from_secs(60);

fn start(dir: &Path, broker: &Broker, password: &str, extra: &str) -> Service {
    let text = config(
        dir,
        &format!(
            "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\nclip_duration = 1\nclip_lookback = 1\n\n\
             {extra}\n\
             [mqtt]\nurl = \"{}\"\nusername = \"{}\"\npassword_env = \"MQTT_PW\"\nclient_id = \"preroll-test\"\n",
            broker.url(),
            USER.0
        ),
    );
    let path = dir.join("preroll.toml");
    std::fs::write(&path, text).unwrap();
    Service::start_with_env(
        &path,
        &[("MQTT_PW", password), ("HOOK_SECRET", HOOK_SECRET)],
    )
}

fn events_on(got: &[Received], topic: &str) -> Vec<Value> {
    got.iter()
        .filter(|r| r.topic == topic && !r.payload.is_empty())
        .map(Received::json)
        .collect()
}

fn clip_done(request_id: &str) -> impl Fn(&[Received]) -> bool + '_ {
    move |got| {
        events_on(got, "preroll/demo/clips")
            .iter()
            .any(|e| e["kind"] == "clip.done" && e["request_id"] == request_id)
    }
}

#[test]
fn triggers_events_discovery_and_a_broker_restart_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(d.path(), &[USER]);
    // A config left retained by a camera that is no longer configured.
    broker.publish(
        "homeassistant/button/preroll-test/gone_record/config",
        r#"{"name": "Record clip", "command_topic": "preroll/gone/clip"}"#,
        true,
    );
    let everything = broker.watch("#");
    // A gst-rtsp-server camera beside the demo, and a webhook receiving the clip events.
    let rtsp = RtspServer::start(&[("front", "live:h264+aac")], Auth::None).unwrap();
    let mut receiver = Receiver::down();
    receiver.up();
    let extra = format!(
        "[[cameras]]\nname = \"front\"\nsource = \"{}\"\n\n\
         [[webhooks]]\nurl = \"{}\"\nsecret_env = \"HOOK_SECRET\"\n",
        rtsp.url("front"),
        receiver.url("/hook")
    );
    let svc = start(d.path(), &broker, USER.1, &extra);
    let sse = svc.events("/api/events?after=0", None);

    // Online, discovery retained and complete, the stale config cleared.
    let got = everything.wait(LIMIT, |got| {
        got.iter()
            .any(|r| r.topic == "preroll/availability" && r.payload == "online")
            && got
                .iter()
                .filter(|r| r.topic.starts_with("homeassistant/") && r.topic.contains("/demo_"))
                .count()
                >= 6
            && got
                .iter()
                .any(|r| r.topic.contains("/gone_record/") && r.payload.is_empty())
    });
    for r in got
        .iter()
        .filter(|r| r.topic.starts_with("homeassistant/") && r.topic.contains("/demo_"))
    {
        let c = r.json();
        assert!(c["unique_id"].as_str().is_some(), "{c}");
        assert_eq!(c["availability_topic"], "preroll/availability");
        assert_eq!(c["device"]["name"], "demo");
        let component = r.topic.split('/').nth(1).unwrap();
        match component {
            "button" => assert_eq!(c["command_topic"], "preroll/demo/clip"),
            "sensor" | "binary_sensor" => assert!(
                c["state_topic"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("preroll/demo/"))
            ),
            other => panic!("unexpected component {other}"),
        }
    }
    // The state retained: what the API says of the camera.
    let state = everything.wait(LIMIT, |got| {
        events_on(got, "preroll/demo/state")
            .iter()
            .any(|s| s["connected"] == true)
    });
    let state = events_on(&state, "preroll/demo/state").pop().unwrap();
    assert_eq!(state["codec"], "H.264");
    // Retained: a subscriber arriving now gets the configs and states at once.
    let late = broker.watch("homeassistant/#");
    let retained = late.wait(LIMIT, |got| {
        got.iter()
            .filter(|r| r.retained && r.topic.contains("/preroll-test/"))
            .count()
            >= 12
    });
    assert!(
        !retained.iter().any(|r| r.topic.contains("/gone_record/")),
        "the stale config is still retained"
    );
    drop(late);

    // A trigger on the RTSP camera: its clip decodes; its events arrive in the same order
    // on MQTT, on the SSE stream and at the webhook (whose signatures the receiver checks).
    svc.wait_cameras(&["front"], 2.0, LIMIT);
    broker.publish(
        "preroll/front/clip",
        r#"{"duration": 1, "lookback": 1, "request_id": "f1"}"#,
        false,
    );
    let on_mqtt = everything.wait(LIMIT, |got| {
        events_on(got, "preroll/front/clips")
            .iter()
            .any(|e| e["kind"] == "clip.done" && e["request_id"] == "f1")
    });
    let ids_of = |events: Vec<Value>| -> Vec<u64> {
        events
            .into_iter()
            .filter(|e| e["request_id"] == "f1")
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    };
    let mqtt_f1 = ids_of(events_on(&on_mqtt, "preroll/front/clips"));
    assert_eq!(mqtt_f1.len(), 4, "{mqtt_f1:?}");
    let sse_f1 = ids_of(sse.until(LIMIT, |e| {
        e["kind"] == "clip.done" && e["request_id"] == "f1"
    }));
    let hooked = receiver.wait(LIMIT, |got| {
        got.iter().any(|d| {
            serde_json::from_slice::<Value>(&d.body)
                .is_ok_and(|e| e["kind"] == "clip.done" && e["request_id"] == "f1")
        })
    });
    let hook_f1 = ids_of(
        hooked
            .iter()
            .map(|d| {
                assert_eq!(
                    d.headers.get("x-preroll-signature"),
                    Some(&signature(HOOK_SECRET, &d.body)),
                    "bad signature"
                );
                serde_json::from_slice(&d.body).unwrap()
            })
            .collect(),
    );
    assert_eq!(sse_f1, mqtt_f1);
    assert_eq!(hook_f1, mqtt_f1);
    let f1_path = events_on(&on_mqtt, "preroll/front/clips")
        .into_iter()
        .find(|e| e["kind"] == "clip.done" && e["request_id"] == "f1")
        .unwrap()["clip"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_decodes_cleanly(Path::new(&f1_path));

    // A trigger: a clip that decodes, its events in order, the last clip retained.
    svc.wait_cameras(&["demo"], 2.0, LIMIT);
    broker.publish(
        "preroll/demo/clip",
        r#"{"duration": 1, "lookback": 1, "request_id": "m1"}"#,
        false,
    );
    let got = everything.wait(LIMIT, clip_done("m1"));
    let m1: Vec<Value> = events_on(&got, "preroll/demo/clips")
        .into_iter()
        .filter(|e| e["request_id"] == "m1")
        .collect();
    let kinds: Vec<&str> = m1.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "clip.created",
            "clip.recording",
            "clip.finalizing",
            "clip.done"
        ]
    );
    let done = &m1[3]["clip"];
    assert_decodes_cleanly(Path::new(done["path"].as_str().unwrap()));
    let last = everything.wait(LIMIT, |got| {
        got.iter()
            .any(|r| r.topic == "preroll/demo/last_clip" && r.json()["id"] == done["id"])
    });
    assert!(last.iter().any(|r| r.topic == "preroll/demo/last_clip"));

    // A bad payload: an error event naming the problem, and no clip.
    let clips_before = svc.get("/api/clips").json().as_array().unwrap().len();
    broker.publish(
        "preroll/demo/clip",
        r#"{"duration": -1, "request_id": "bad"}"#,
        false,
    );
    let got = everything.wait(LIMIT, |got| {
        events_on(got, "preroll/events")
            .iter()
            .any(|e| e["kind"] == "trigger.refused")
    });
    let refused = events_on(&got, "preroll/events")
        .into_iter()
        .find(|e| e["kind"] == "trigger.refused")
        .unwrap();
    assert_eq!(refused["request_id"], "bad");
    assert!(
        refused["reason"].as_str().unwrap().contains("duration -1"),
        "{refused}"
    );
    // Nor does an empty payload on an unknown camera make anything but a refusal.
    broker.publish("preroll/nosuch/clip", "", false);
    everything.wait(LIMIT, |got| {
        events_on(got, "preroll/events").iter().any(|e| {
            e["kind"] == "trigger.refused"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("no camera named"))
        })
    });
    assert_eq!(
        svc.get("/api/clips").json().as_array().unwrap().len(),
        clips_before
    );

    // keep: an empty payload marks the clip, `{"keep": false}` unmarks it, a bad one is
    // refused by name.
    let m1_id = done["id"].as_str().unwrap();
    let kept = |want: bool| {
        common::wait_for(
            LIMIT,
            || svc.get(&format!("/api/clips/{m1_id}")).json()["keep"].clone(),
            |k| *k == want,
            |k| format!("keep is {k}"),
        )
    };
    broker.publish(&format!("preroll/clips/{m1_id}/keep"), "", false);
    kept(true);
    broker.publish(
        &format!("preroll/clips/{m1_id}/keep"),
        r#"{"keep": false}"#,
        false,
    );
    kept(false);
    broker.publish(
        &format!("preroll/clips/{m1_id}/keep"),
        r#"{"keep": "yes"}"#,
        false,
    );
    everything.wait(LIMIT, |got| {
        events_on(got, "preroll/events").iter().any(|e| {
            e["kind"] == "trigger.refused"
                && e["reason"].as_str().is_some_and(|r| {
                    r.contains(&format!("preroll/clips/{m1_id}/keep")) && r.contains("invalid type")
                })
        })
    });
    drop(everything);

    // The broker dies mid-clip, and comes back refusing the service's password for a while:
    // the events wait, a clear error is shown, and nothing is lost once it is let in.
    broker.publish(
        "preroll/demo/clip",
        r#"{"duration": 3, "lookback": 1, "request_id": "m2"}"#,
        false,
    );
    let recording = sse.until(LIMIT, |e| {
        e["kind"] == "clip.recording" && e["request_id"] == "m2"
    });
    let m2_id = recording.last().unwrap()["clip"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    broker.kill();
    broker.set_users(&[(USER.0, "another password")]);
    broker.restart();
    let refused = {
        let start = std::time::Instant::now();
        loop {
            let s = svc.get("/api/integrations").json();
            if s["mqtt"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused the username or password"))
            {
                break s;
            }
            assert!(
                start.elapsed() < LIMIT,
                "no credentials error: {s}\n{}",
                svc.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert_eq!(refused["mqtt"]["connected"], false);
    assert!(svc.log().contains("refused the username or password"));
    // The API still records while MQTT is down.
    let api_clip = svc.clip("demo", r#"{"duration": 1, "lookback": 0}"#);
    assert_eq!(
        svc.wait_final(api_clip["id"].as_str().unwrap(), LIMIT)["state"],
        "done"
    );
    assert_eq!(svc.wait_final(&m2_id, LIMIT)["state"], "done");
    let after = broker.watch("preroll/#");
    broker.set_users(&[USER]);
    let got = after.wait(Duration::from_secs(90), clip_done("m2"));
    // Every clip event the service published (SSE has them all) reached MQTT.
    let sse_ids: BTreeSet<u64> = sse
        .drain(Duration::from_secs(1))
        .into_iter()
        .chain(recording)
        .filter(|e| {
            e["kind"].as_str().is_some_and(|k| k.starts_with("clip."))
                && e["clip"]["id"] == m2_id.as_str()
        })
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    let mqtt_ids: BTreeSet<u64> = events_on(&got, "preroll/demo/clips")
        .iter()
        .filter(|e| e["clip"]["id"] == m2_id.as_str())
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(sse_ids.len(), 4, "{sse_ids:?}");
    assert_eq!(mqtt_ids, sse_ids, "MQTT lost or changed events of the clip");
    // Triggers work again after the reconnect.
    broker.publish("preroll/demo/clip", r#"{"request_id": "m3"}"#, false);
    after.wait(LIMIT, clip_done("m3"));
    // A stop: SIGTERM says offline, retained.
    let mut svc = svc;
    let offline = broker.watch("preroll/availability");
    assert!(svc.signal_and_wait(libc::SIGTERM, LIMIT).success());
    offline.wait(LIMIT, |got| got.iter().any(|r| r.payload == "offline"));
}

/// mqtts:// with the broker's CA given: triggers and events work over TLS; without it (the
/// public roots), the certificate is refused and the status says so.
#[test]
fn mqtts_with_the_brokers_ca_works_and_without_it_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let broker = Broker::start_tls(d.path(), &[USER]);
    let (tls_port, ca) = broker.tls.clone().unwrap();
    let watch = broker.watch("preroll/#");
    let run = |ca_line: &str, sub: &str| {
        let dir = d.path().join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        let text = config(
            &dir,
            &format!(
                "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n\n\
                 [mqtt]\nurl = \"mqtts://127.0.0.1:{tls_port}\"\nusername = \"{}\"\n\
                 password_env = \"MQTT_PW\"\nclient_id = \"{sub}\"\ndiscovery = false\n{ca_line}",
                USER.0
            ),
        );
        let path = dir.join("preroll.toml");
        std::fs::write(&path, text).unwrap();
        Service::start_with_env(&path, &[("MQTT_PW", USER.1)])
    };
    let trusted = run(&format!("ca_file = \"{}\"\n", ca.display()), "trusted");
    trusted.wait_cameras(&["demo"], 2.0, LIMIT);
    broker.publish(
        "preroll/demo/clip",
        r#"{"duration": 1, "lookback": 1, "request_id": "tls"}"#,
        false,
    );
    watch.wait(LIMIT, clip_done("tls"));
    assert_eq!(
        trusted.get("/api/integrations").json()["mqtt"]["connected"],
        true
    );
    drop(trusted);

    let untrusted = run("", "untrusted");
    let start = std::time::Instant::now();
    loop {
        let s = untrusted.get("/api/integrations").json();
        if let Some(e) = s["mqtt"]["last_error"].as_str() {
            assert!(
                e.contains("certificate") || e.contains("Certificate"),
                "{e}"
            );
            assert_eq!(s["mqtt"]["connected"], false);
            break;
        }
        assert!(start.elapsed() < LIMIT, "no TLS error shown: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
