//! The Home Assistant integration (integrations/homeassistant/) tested with Home Assistant's
//! own test harness (pytest-homeassistant-custom-component, in target/ha-venv: scripts/deps.sh
//! installs it) against this build's `preroll serve`, started by the tests' conftest.py.

use std::path::Path;
use std::process::Command;

#[test]
fn the_home_assistant_integration_passes_its_tests_against_a_real_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pytest = root.join("target/ha-venv/bin/pytest");
    assert!(
        pytest.exists(),
        "{} is missing: scripts/deps.sh installs it",
        pytest.display()
    );
    let out = Command::new(&pytest)
        .args(["-q", "-p", "no:cacheprovider"])
        .current_dir(root.join("integrations/homeassistant"))
        .env("PREROLL_BIN", env!("CARGO_BIN_EXE_preroll"))
        .output()
        .expect("run pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the integration's tests failed:\n{text}"
    );
    // The summary (seen with --nocapture).
    println!("{}", text.lines().last().unwrap_or_default());
}
