//! Clips copied to a real S3-compatible server (SeaweedFS, see `common::s3`), checked from
//! outside with curl's SigV4: the bucket's copy is byte for byte the local file and its
//! sidecar is the clip's view; while a clip records its parts are already there, and after
//! a `kill -9` they are a playable file, completed by the recovery at restart; the server
//! killed mid-upload and started again loses and duplicates nothing; `keep_local = false`
//! removes the local file only after the verified upload, and the clip is then served from
//! the bucket (with ranges); wrong credentials and a missing bucket are named, and the local
//! recording goes on.

mod common;

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::assert_decodes_cleanly;
use common::s3::{S3, SECRET_KEY};
use common::serve::{Service, config};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);
const DEMO: &str = "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n";

/// A config with the demo camera and `[storage.remote]` pointing at `s3`.
fn remote_config(dir: &Path, s3: &S3, bucket: &str, node: &str, extra: &str) -> String {
    format!(
        "{}\n[storage.remote]\nurl = \"s3://{bucket}/site\"\nendpoint = \"{}\"\n\
         progress_interval = 0.3\n{extra}\n\n[node]\nname = \"{node}\"\n",
        config(dir, DEMO),
        s3.endpoint()
    )
}

fn serve(dir: &Path, config: &str, env: &[(&str, &str)]) -> Service {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("preroll.toml");
    std::fs::write(&path, config).expect("write config");
    Service::start_with_env(&path, env)
}

/// The clip's name in the bucket: its path under the recordings directory.
fn name_of(dir: &Path, clip: &Value) -> String {
    let path = PathBuf::from(clip["path"].as_str().expect("path"));
    path.strip_prefix(dir.join("recordings"))
        .expect("under recordings")
        .display()
        .to_string()
}

fn md5_hex(bytes: &[u8]) -> String {
    let tmp = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(tmp.path(), bytes).expect("write");
    let out = std::process::Command::new("md5sum")
        .arg(tmp.path())
        .output()
        .expect("md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Polls the clip until its `storage` is `want`.
#[track_caller]
fn wait_storage(svc: &Service, id: &str, want: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let clip = svc.get(&format!("/api/clips/{id}")).json();
        if clip["storage"] == want {
            return clip;
        }
        assert!(
            start.elapsed() < limit,
            "clip {id} not {want} after {limit:?}: {clip}\nlog:\n{}",
            svc.log()
        );
        sleep(Duration::from_millis(200));
    }
}

#[test]
fn clips_are_uploaded_byte_for_byte_with_a_sidecar_and_parts_while_they_record() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s3 = S3::start(&tmp.path().join("s3"));
    s3.create_bucket("preroll-a");
    let dir = tmp.path().join("node");
    let svc = serve(
        &dir,
        &remote_config(&dir, &s3, "preroll-a", "alpha", ""),
        &s3.env(),
    );
    svc.wait_cameras(&["demo"], 2.0, LIMIT);
    let clip = svc.clip("demo", r#"{"duration": 4, "lookback": 1}"#);
    let id = clip["id"].as_str().expect("id");
    assert_eq!(clip["storage"], "uploading", "{clip}");
    assert_eq!(clip["node"], "alpha", "{clip}");
    let name = name_of(&dir, &clip);

    // While it records: pieces in the bucket, and a sidecar saying so.
    let parts_prefix = format!("site/parts/alpha/{name}/");
    let start = Instant::now();
    let pieces = loop {
        let pieces = s3.list("preroll-a", &parts_prefix);
        if pieces.len() >= 2 {
            break pieces;
        }
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "no pieces in the bucket while the clip records: {pieces:?}\nlog:\n{}",
            svc.log()
        );
        sleep(Duration::from_millis(100));
    };
    assert!(pieces[0].0.ends_with("/000000000000"), "{pieces:?}");
    let sidecar: Value = serde_json::from_slice(
        &s3.get("preroll-a", &format!("site/meta/alpha/{name}.json"))
            .expect("a sidecar while recording"),
    )
    .expect("sidecar JSON");
    assert_eq!(sidecar["id"], id);
    assert_eq!(sidecar["state"], "recording");
    assert_eq!(sidecar["parts"], format!("site/parts/alpha/{name}"));

    let done = svc.wait_final(id, LIMIT);
    assert_eq!(done["state"], "done", "{done}");
    let view = wait_storage(&svc, id, "local+remote", LIMIT);
    let local = std::fs::read(view["path"].as_str().expect("path")).expect("local file");
    let copy = s3
        .get("preroll-a", &format!("site/clips/alpha/{name}"))
        .expect("the clip in the bucket");
    assert!(
        copy == local,
        "the bucket's copy differs from the local file"
    );
    let sidecar: Value = serde_json::from_slice(
        &s3.get("preroll-a", &format!("site/meta/alpha/{name}.json"))
            .expect("sidecar"),
    )
    .expect("sidecar JSON");
    assert_eq!(sidecar["id"], id);
    assert_eq!(sidecar["state"], "done");
    assert_eq!(sidecar["node"], "alpha");
    assert_eq!(sidecar["storage"], "local+remote");
    assert_eq!(sidecar["bytes"].as_u64(), Some(local.len() as u64));
    assert_eq!(sidecar["duration"], done["duration"]);
    assert_eq!(
        sidecar["object"]["bytes"].as_u64(),
        Some(local.len() as u64)
    );
    assert_eq!(
        sidecar["object"]["md5"].as_str(),
        Some(md5_hex(&local).as_str())
    );
    // The pieces went once the whole clip was there.
    assert_eq!(s3.list("preroll-a", &parts_prefix), vec![]);

    let status = svc.get("/api/integrations").json();
    assert_eq!(status["remote"]["uploaded"].as_u64(), Some(1), "{status}");
    assert_eq!(status["remote"]["pending"].as_u64(), Some(0), "{status}");
    assert_eq!(status["remote"]["url"], "s3://preroll-a/site");
    let metrics = svc.get("/metrics").text();
    let bucket = r#"{bucket="s3://preroll-a/site"}"#;
    for line in [
        format!("preroll_remote_uploaded_total{bucket} 1\n"),
        format!(
            "preroll_remote_uploaded_bytes_total{bucket} {}\n",
            local.len()
        ),
        format!("preroll_remote_pending{bucket} 0\n"),
    ] {
        assert!(metrics.contains(&line), "no {line:?} in:\n{metrics}");
    }
    let everything = format!("{status}{metrics}{}", svc.log());
    assert!(!everything.contains(SECRET_KEY), "the secret key was shown");

    // `preroll upload` copies a file the same way, under its absolute path outside the
    // recordings directory.
    let other = tmp.path().join("made elsewhere.mp4");
    std::fs::write(&other, &local).expect("write");
    let config_path = dir.join("preroll.toml");
    // Uploads `file`; what it said on stdout, and where the copy is.
    let upload = |file: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_preroll"))
            .args(["upload", "--config"])
            .arg(&config_path)
            .arg(file)
            .envs(s3.env())
            .output()
            .expect("preroll upload");
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = format!(
            "site/clips/alpha/_{}",
            file.canonicalize().expect("canonical").display()
        );
        (said, key)
    };
    let (said, key) = upload(&other);
    assert!(
        s3.get("preroll-a", &key).expect("uploaded") == local,
        "{key}"
    );
    assert!(said.contains("verified"), "{said}");
    // A file of five 8 MiB parts (the last short), more than are sent at once: a multipart
    // upload whose parts must land in order for the ETag check and the bytes to match.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let big: Vec<u8> = (0..(4 * (8 << 20) + 1000))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let big_path = tmp.path().join("big.mp4");
    std::fs::write(&big_path, &big).expect("write");
    let (said, key) = upload(&big_path);
    assert!(
        said.contains(&format!("verified (MD5 {})", md5_hex(&big))),
        "{said}"
    );
    assert!(
        s3.get("preroll-a", &key).expect("uploaded") == big,
        "the bucket's copy of the multipart upload differs"
    );
    // Without credentials: said, and nothing sent.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_preroll"))
        .args(["upload", "--config"])
        .arg(&config_path)
        .arg(&other)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("preroll upload");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}

#[test]
fn wrong_credentials_and_a_missing_bucket_are_named_and_recording_goes_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s3 = S3::start(&tmp.path().join("s3"));
    s3.create_bucket("preroll-b");
    let cases = [
        (
            "preroll-b",
            vec![
                ("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY),
                ("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-000"),
            ],
            "credentials",
        ),
        ("no-such-bucket", s3.env(), "the bucket does not exist"),
    ];
    for (i, (bucket, env, said)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("node{i}"));
        let svc = serve(&dir, &remote_config(&dir, &s3, bucket, "beta", ""), env);
        svc.wait_cameras(&["demo"], 1.0, LIMIT);
        let clip = svc.clip("demo", r#"{"duration": 1, "lookback": 0}"#);
        let id = clip["id"].as_str().expect("id");
        let done = svc.wait_final(id, LIMIT);
        assert_eq!(done["state"], "done", "{done}");
        assert_eq!(done["storage"], "uploading", "{done}");
        assert_decodes_cleanly(Path::new(done["path"].as_str().expect("path")));
        let start = Instant::now();
        let error = loop {
            let status = svc.get("/api/integrations").json();
            if let Some(e) = status["remote"]["last_error"].as_str() {
                break e.to_owned();
            }
            assert!(start.elapsed() < LIMIT, "no error reported: {status}");
            sleep(Duration::from_millis(200));
        };
        assert!(error.contains(said), "{bucket}: {error}");
        let log = svc.log();
        assert!(
            log.contains(said),
            "{bucket}: the log does not say {said:?}:\n{log}"
        );
        assert!(!log.contains("not-the-secret-key") && !log.contains(SECRET_KEY));
        // The clip is still listed, and still queued.
        assert_eq!(
            svc.get("/api/integrations").json()["remote"]["pending"].as_u64(),
            Some(1)
        );
    }
}

#[test]
fn the_bucket_down_loses_nothing_and_keep_local_false_removes_only_verified_copies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s3 = S3::start(&tmp.path().join("s3"));
    s3.create_bucket("preroll-c");
    let dir = tmp.path().join("node");
    let cfg = remote_config(&dir, &s3, "preroll-c", "gamma", "keep_local = false");
    let mut svc = serve(&dir, &cfg, &s3.env());
    svc.wait_cameras(&["demo"], 2.0, LIMIT);
    let clip = svc.clip("demo", r#"{"duration": 5, "lookback": 1}"#);
    let id = clip["id"].as_str().expect("id").to_owned();
    let name = name_of(&dir, &clip);
    let parts_prefix = format!("site/parts/gamma/{name}/");
    let start = Instant::now();
    while s3.list("preroll-c", &parts_prefix).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "no pieces");
        sleep(Duration::from_millis(100));
    }
    // The server goes away while the clip records and uploads.
    s3.kill();
    let done = svc.wait_final(&id, LIMIT);
    assert_eq!(done["state"], "done", "{done}");
    let path = PathBuf::from(done["path"].as_str().expect("path"));
    sleep(Duration::from_secs(2));
    let view = svc.get(&format!("/api/clips/{id}")).json();
    assert_eq!(view["storage"], "uploading", "{view}");
    let local = std::fs::read(&path).expect("the local file stays until a verified upload");
    // And the service stops with the upload still queued.
    let status = svc.signal_and_wait(libc::SIGTERM, LIMIT);
    assert!(status.success(), "{status:?}");
    assert!(path.exists());

    s3.restart();
    let svc = serve(&dir, &cfg, &s3.env());
    let view = wait_storage(&svc, &id, "remote", LIMIT);
    assert_eq!(view["state"], "done", "{view}");
    assert!(
        !path.exists(),
        "the local file is removed once the copy is verified"
    );
    let copy = s3
        .get("preroll-c", &format!("site/clips/gamma/{name}"))
        .expect("the clip in the bucket");
    assert!(
        copy == local,
        "the bucket's copy differs from the file recorded"
    );
    // Nothing duplicated, nothing left behind.
    let everything: Vec<String> = s3
        .list("preroll-c", "site/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        everything,
        vec![
            format!("site/clips/gamma/{name}"),
            format!("site/meta/gamma/{name}.json"),
        ]
    );
    // Served from the bucket: whole, and a range.
    let whole = svc.get(&format!("/api/clips/{id}/file"));
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert!(
        whole.body == local,
        "the download differs from the file recorded"
    );
    let part = svc.request(
        "GET",
        &format!("/api/clips/{id}/file"),
        Some(common::serve::TOKEN),
        &[("Range", "bytes=100-1099")],
        None,
    );
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-1099/{}", local.len()).as_str())
    );
    assert!(part.body == local[100..1100]);
    drop(svc);

    // With presigned URLs, a redirect the client follows without the service's token.
    let svc = serve(
        &dir,
        &remote_config(
            &dir,
            &s3,
            "preroll-c",
            "gamma",
            "keep_local = false\npresign_seconds = 60",
        ),
        &s3.env(),
    );
    // curl, as the tests' HTTP client follows redirects by itself.
    let asked = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
            &format!("Authorization: Bearer {}", common::serve::TOKEN),
            &format!("{}/api/clips/{id}/file", svc.base),
        ])
        .output()
        .expect("curl");
    let asked = String::from_utf8_lossy(&asked.stdout).into_owned();
    let (code, location) = asked.split_once(' ').expect("code and location");
    assert_eq!(code, "307", "{asked}");
    let location = location.to_owned();
    assert!(location.starts_with(&s3.endpoint()), "{location}");
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "30", &location])
        .output()
        .expect("curl");
    assert!(
        out.stdout == local,
        "the presigned URL does not give the clip"
    );
}

#[test]
fn a_clip_killed_mid_recording_leaves_a_playable_prefix_then_the_recovered_clip() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s3 = S3::start(&tmp.path().join("s3"));
    s3.create_bucket("preroll-d");
    let dir = tmp.path().join("node");
    let cfg = remote_config(&dir, &s3, "preroll-d", "delta", "");
    let mut svc = serve(&dir, &cfg, &s3.env());
    svc.wait_cameras(&["demo"], 2.0, LIMIT);
    let clip = svc.clip("demo", r#"{"duration": 30, "lookback": 1}"#);
    let name = name_of(&dir, &clip);
    let parts_prefix = format!("site/parts/delta/{name}/");
    let start = Instant::now();
    while s3.list("preroll-d", &parts_prefix).len() < 5 {
        assert!(start.elapsed() < Duration::from_secs(10), "no pieces");
        sleep(Duration::from_millis(100));
    }
    svc.signal_and_wait(libc::SIGKILL, LIMIT);

    // Before any restart: the pieces, in key order, are a playable file.
    let pieces = s3.list("preroll-d", &parts_prefix);
    let mut prefix = Vec::new();
    for (key, size) in &pieces {
        let bytes = s3.get("preroll-d", key).expect("a piece");
        assert_eq!(bytes.len() as u64, *size);
        prefix.extend(bytes);
    }
    let prefix_path = tmp.path().join("prefix.mp4");
    std::fs::write(&prefix_path, &prefix).expect("write");
    assert_decodes_cleanly(&prefix_path);
    let probe = common::Probe::of(&prefix_path);
    assert!(
        probe.extent() >= 1.5,
        "the prefix holds {} s",
        probe.extent()
    );
    let sidecar: Value = serde_json::from_slice(
        &s3.get("preroll-d", &format!("site/meta/delta/{name}.json"))
            .expect("sidecar"),
    )
    .expect("JSON");
    assert_eq!(sidecar["state"], "recording");

    // After the restart: recovered, uploaded, the pieces gone.
    let svc = serve(&dir, &cfg, &s3.env());
    let start = Instant::now();
    let recovered = loop {
        let all = svc.get("/api/clips").json();
        let found = all.as_array().into_iter().flatten().find(|c| {
            c["recovered"] == true && c["path"] == clip["path"] && c["storage"] == "local+remote"
        });
        if let Some(c) = found {
            break c.clone();
        }
        assert!(
            start.elapsed() < LIMIT,
            "not recovered and uploaded: {all}\n{}",
            svc.log()
        );
        sleep(Duration::from_millis(200));
    };
    let local = std::fs::read(recovered["path"].as_str().expect("path")).expect("local");
    let copy = s3
        .get("preroll-d", &format!("site/clips/delta/{name}"))
        .expect("the recovered clip in the bucket");
    assert!(copy == local);
    assert!(local.len() >= prefix.len() / 2);
    assert_eq!(s3.list("preroll-d", &parts_prefix), vec![]);
    let sidecar: Value = serde_json::from_slice(
        &s3.get("preroll-d", &format!("site/meta/delta/{name}.json"))
            .expect("sidecar"),
    )
    .expect("JSON");
    assert_eq!(sidecar["state"], "done");
    assert_eq!(sidecar["recovered"], true);
}

#[test]
fn continuous_recordings_are_uploaded_in_order_with_clips_continuous() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s3 = S3::start(&tmp.path().join("s3"));
    s3.create_bucket("preroll-e");
    let dir = tmp.path().join("node");
    let text = remote_config(
        &dir,
        &s3,
        "preroll-e",
        "eps",
        "upload = \"clips+continuous\"",
    )
    .replace(
        "source = \"demo\"\n",
        "source = \"demo\"\ncontinuous = true\ncontinuous_file_seconds = 5\n",
    );
    let svc = serve(&dir, &text, &s3.env());
    let camera_dir = dir.join("recordings/continuous/demo");
    // Two finished files, each in the bucket byte for byte.
    let start = Instant::now();
    loop {
        let listed = s3.list("preroll-e", "site/continuous/eps/demo/");
        if listed.len() >= 2 {
            for (key, _) in &listed[..2] {
                let file = key
                    .strip_prefix("site/continuous/eps/demo/")
                    .expect("under the camera");
                let local = std::fs::read(camera_dir.join(file)).expect("the local file");
                let copy = s3.get("preroll-e", key).expect("object");
                assert!(copy == local, "{key} differs from the local file");
            }
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "continuous files not uploaded: {listed:?}\nlog:\n{}",
            svc.log()
        );
        sleep(Duration::from_millis(500));
    }
    // No clip was asked for: nothing else is in the bucket.
    assert!(s3.list("preroll-e", "site/clips/").is_empty());
}
