//! Three `preroll serve` nodes on loopback sharing one MQTT broker (Mosquitto) and one
//! bucket (SeaweedFS), each owning its own camera. A trigger published on MQTT is taken by
//! the node that owns the camera and by no other (none of them refuses it); every node lists
//! every clip, with the node that recorded it, and serves another node's clip from the
//! bucket; a node killed mid-clip leaves the others working and its clip visible as
//! recording, and after its restart that clip is recovered, uploaded and listed as done
//! everywhere.

mod common;

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::mosquitto::Broker;
use common::s3::S3;
use common::serve::{Service, config};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);
const USER: (&str, &str) = ("node", "node-pw-1");
const NODES: [(&str, &str); 3] = [("alpha", "cam-a"), ("beta", "cam-b"), ("gamma", "cam-c")];

fn node_config(dir: &Path, node: &str, camera: &str, broker: &Broker, s3: &S3) -> String {
    config(
        dir,
        &format!(
            "[[cameras]]\nname = \"{camera}\"\nsource = \"demo\"\nclip_duration = 2\nclip_lookback = 1\n\n\
             [mqtt]\nurl = \"{}\"\nusername = \"{}\"\npassword_env = \"MQTT_PW\"\n\n\
             [storage.remote]\nurl = \"s3://preroll-nodes/site\"\nendpoint = \"{}\"\nprogress_interval = 0.3\n\n\
             [node]\nname = \"{node}\"\n",
            broker.url(),
            USER.0,
            s3.endpoint()
        ),
    )
}

fn start_node(dir: &Path, node: &str, camera: &str, broker: &Broker, s3: &S3) -> Service {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("preroll.toml");
    std::fs::write(&path, node_config(dir, node, camera, broker, s3)).expect("config");
    let mut env = s3.env();
    env.push(("MQTT_PW", USER.1));
    Service::start_with_env(&path, &env)
}

/// Waits until `svc` lists a clip matching `want`; returns it.
#[track_caller]
fn wait_listed(svc: &Service, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let all = svc.get("/api/clips").json();
        if let Some(c) = all.as_array().into_iter().flatten().find(|c| want(c)) {
            return c.clone();
        }
        assert!(
            start.elapsed() < LIMIT,
            "{what}: not listed after {LIMIT:?}: {all}\nlog:\n{}",
            svc.log()
        );
        sleep(Duration::from_millis(250));
    }
}

#[test]
fn three_nodes_share_a_broker_and_a_bucket() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(tmp.path().join("mqtt")).expect("dir");
    let broker = Broker::start(&tmp.path().join("mqtt"), &[USER]);
    let s3 = S3::start(&tmp.path().join("s3"));
    s3.create_bucket("preroll-nodes");
    let mut nodes: Vec<Service> = NODES
        .iter()
        .map(|(node, camera)| start_node(&tmp.path().join(node), node, camera, &broker, &s3))
        .collect();
    for (svc, (_, camera)) in nodes.iter().zip(NODES) {
        svc.wait_cameras(&[camera], 2.0, LIMIT);
    }
    let refused = broker.watch("preroll/events");

    // One trigger per camera, on the shared broker.
    for (_, camera) in NODES {
        broker.publish(&format!("preroll/{camera}/clip"), "{}", false);
    }
    // Each node records its own camera's clip, uploads it, and every node lists all three.
    let mut clips = Vec::new();
    for (svc, (node, camera)) in nodes.iter().zip(NODES) {
        let clip = wait_listed(svc, "own clip", |c| {
            c["camera"] == camera && c["node"] == node && c["storage"] == "local+remote"
        });
        clips.push(clip);
    }
    for svc in &nodes {
        for (clip, (node, camera)) in clips.iter().zip(NODES) {
            let seen = wait_listed(svc, "every node's clip, done", |c| {
                c["id"] == clip["id"] && c["state"] == "done"
            });
            assert_eq!(seen["node"], node, "{seen}");
            assert_eq!(seen["camera"], camera, "{seen}");
            assert_eq!(seen["state"], "done", "{seen}");
        }
    }
    // No node took or refused another's trigger: one clip per camera in all.
    let all = nodes[0].get("/api/clips").json();
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");
    assert!(
        !refused
            .all()
            .iter()
            .any(|r| r.payload.contains("trigger.refused")),
        "a node refused another's trigger"
    );
    // A node serves another's clip from the bucket.
    let gamma_file = std::fs::read(clips[2]["path"].as_str().expect("path")).expect("gamma's file");
    let via_alpha = nodes[0].get(&format!(
        "/api/clips/{}/file",
        clips[2]["id"].as_str().expect("id")
    ));
    assert_eq!(via_alpha.status, 200, "{}", via_alpha.text());
    assert!(
        via_alpha.body == gamma_file,
        "alpha serves gamma's clip differently"
    );

    // beta dies mid-clip.
    broker.publish("preroll/cam-b/clip", r#"{"duration": 30}"#, false);
    let long = wait_listed(&nodes[1], "beta's long clip", |c| {
        c["state"] == "recording" && c["requested_duration"] == 30.0
    });
    let parts = format!(
        "site/parts/beta/{}/",
        Path::new(long["path"].as_str().expect("path"))
            .strip_prefix(tmp.path().join("beta/recordings"))
            .expect("under recordings")
            .display()
    );
    let start = Instant::now();
    while s3.list("preroll-nodes", &parts).len() < 3 {
        assert!(start.elapsed() < LIMIT, "no pieces of beta's clip");
        sleep(Duration::from_millis(100));
    }
    nodes[1].signal_and_wait(libc::SIGKILL, LIMIT);
    // The others keep working, and show beta's clip as it was left.
    broker.publish("preroll/cam-a/clip", "{}", false);
    let again = wait_listed(&nodes[0], "alpha's second clip", |c| {
        c["camera"] == "cam-a" && c["id"] != clips[0]["id"] && c["state"] == "done"
    });
    assert_eq!(again["node"], "alpha");
    let left = wait_listed(&nodes[2], "beta's clip as left", |c| c["id"] == long["id"]);
    assert_eq!(left["state"], "recording", "{left}");
    assert_eq!(left["node"], "beta");
    let prefix = nodes[2].get(&format!(
        "/api/clips/{}/file",
        long["id"].as_str().expect("id")
    ));
    assert_eq!(prefix.status, 200, "{}", prefix.text());
    let prefix_path = tmp.path().join("beta-prefix.mp4");
    std::fs::write(&prefix_path, &prefix.body).expect("write");
    common::assert_decodes_cleanly(&prefix_path);

    // beta again: its clip is recovered, uploaded, and listed as done by the others.
    let (node, camera) = NODES[1];
    nodes[1] = start_node(&tmp.path().join(node), node, camera, &broker, &s3);
    for svc in [&nodes[0], &nodes[2]] {
        let recovered = wait_listed(svc, "beta's recovered clip", |c| {
            c["path"] == long["path"] && c["state"] == "done" && c["recovered"] == true
        });
        assert_eq!(recovered["node"], "beta");
        assert_eq!(recovered["storage"], "remote");
    }
    assert_eq!(s3.list("preroll-nodes", &parts), vec![]);
}
