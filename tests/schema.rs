//! schemathesis (PyPI) against a real `preroll serve`: it reads the served OpenAPI document,
//! generates valid and invalid requests for every operation, and checks every answer against
//! the document (status codes, content types, bodies, headers, auth, methods). A bounded run
//! here; `scripts/schemathesis.sh` runs it longer. scripts/deps.sh installs it.

mod common;

use std::path::Path;
use std::process::Command;

use common::serve::{Service, TOKEN, config};

const CAMERAS: &str = "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n\n\
                       [[cameras]]\nname = \"off\"\nsource = \"demo\"\nenabled = false\n";

/// Runs schemathesis with `max_examples` per operation against a fresh service; returns its
/// output and whether it passed.
pub fn run_schemathesis(max_examples: u32) -> (bool, String) {
    let st = concat!(env!("CARGO_MANIFEST_DIR"), "/target/schemathesis/bin/st");
    assert!(
        Path::new(st).exists(),
        "{st} is missing: scripts/deps.sh installs it"
    );
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(d.path(), &config(d.path(), CAMERAS));
    // Camera names that exist, so clips are really made; clip ids stay random (404s) except
    // in the stateful phase, which follows the links from created clips. Names in ASCII:
    // the document can state their limits in characters, the file system counts bytes.
    let settings = d.path().join("schemathesis.toml");
    std::fs::write(
        &settings,
        format!(
            "headers = {{ Authorization = \"Bearer {TOKEN}\" }}\n\
             [parameters]\n\"path.camera\" = \"demo\"\n\
             [generation]\ncodec = \"ascii\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(st)
        .arg("--config-file")
        .arg(&settings)
        .args(["run", &format!("{}/openapi.json", svc.base)])
        .args(["--checks", "all", "--workers", "1", "--max-failures", "20"])
        .args(["--max-examples", &max_examples.to_string()])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        // Endless streams (Server-Sent Events, and the live view): their own tests are in
        // tests/events.rs and tests/live.rs. And the login, whose wrong tokens would brake
        // every later request for a minute (its own tests are in tests/session.rs).
        .args([
            "--exclude-path",
            "/api/events",
            "--exclude-path",
            "/api/cameras/{camera}/live",
            "--exclude-path",
            "/api/cameras/{camera}/live.mp4",
            "--exclude-path",
            "/api/session",
        ])
        .args(["--generation-deterministic", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(d.path())
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(svc);
    (out.status.success(), text)
}

#[test]
fn schemathesis_finds_nothing_against_the_served_openapi_document() {
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let (passed, output) = run_schemathesis(examples);
    assert!(passed, "schemathesis reported failures:\n{output}");
    // The summary, for the long run's figures (seen with --nocapture).
    let summary: Vec<&str> = output.lines().rev().take(22).collect();
    for line in summary.iter().rev() {
        println!("{line}");
    }
}
