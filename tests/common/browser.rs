//! Debian's headless Chromium driven by tests/browser/play.mjs (playwright-core): the driver
//! plays clips that `preroll serve` serves and reports what each `<video>` element saw; the
//! tests judge that report.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// What the test needs besides cargo's own: Chromium and the driver's packages.
pub fn check_tools() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/deps.sh (installs Debian's chromium)"
    );
    assert!(
        Path::new(DRIVER)
            .join("node_modules/playwright-core")
            .exists(),
        "{DRIVER}/node_modules is missing: run scripts/deps.sh (npm ci there)"
    );
}

/// The MIME type with the RFC 6381 codecs of the clip's sample entries.
pub fn mime_of(moov: &mp4_atom::Moov) -> String {
    use mp4_atom::Codec;
    let hevc = |tag: &str, c: &mp4_atom::Hvcc| {
        // Profile, compatibility flags in reverse bit order, tier and level, constraint
        // bytes without trailing zeros (ISO/IEC 14496-15 annex E).
        let compat = u32::from_be_bytes(c.general_profile_compatibility_flags).reverse_bits();
        let mut s = format!(
            "{tag}.{}{}.{compat:X}.{}{}",
            ["", "A", "B", "C"][usize::from(c.general_profile_space & 3)],
            c.general_profile_idc,
            if c.general_tier_flag { 'H' } else { 'L' },
            c.general_level_idc
        );
        let flags = &c.general_constraint_indicator_flags;
        let used = flags.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        for b in &flags[..used] {
            s += &format!(".{b:X}");
        }
        s
    };
    let codecs: Vec<String> = moov
        .trak
        .iter()
        .flat_map(|t| &t.mdia.minf.stbl.stsd.codecs)
        .map(|codec| match codec {
            Codec::Avc1(a) => format!(
                "avc1.{:02x}{:02x}{:02x}",
                a.avcc.avc_profile_indication,
                a.avcc.profile_compatibility,
                a.avcc.avc_level_indication
            ),
            Codec::Hvc1(h) => hevc("hvc1", &h.hvcc),
            Codec::Hev1(h) => hevc("hev1", &h.hvcc),
            Codec::Flac(_) => "flac".to_owned(),
            Codec::Opus(_) => "opus".to_owned(),
            Codec::Mp4a(m) => {
                let dc = &m.esds.es_desc.dec_config;
                let object = dc.dec_specific.as_ref().map_or(2, |d| d.profile);
                format!("mp4a.{:x}.{object}", dc.object_type_indication)
            }
            other => panic!("unexpected sample entry {other:?}"),
        })
        .collect();
    format!("video/mp4; codecs=\"{}\"", codecs.join(", "))
}

/// Runs the driver and checks that it ran: returns its report and, for failure messages,
/// the report with Chromium's console and the driver's stderr.
pub fn play(job: &Value) -> (Value, String) {
    let (report, stderr) = run_driver(job);
    let context = format!(
        "report: {report}\nChromium's console: {:#?}\ndriver's stderr (Chromium's with it):\n{stderr}",
        report["console"]
    );
    assert!(
        report["failure"].is_null(),
        "the driver failed: {}\n{context}",
        report["failure"]
    );
    (report, context)
}

/// Runs the driver with a time limit; returns its JSON report and its stderr.
pub fn run_driver(job: &Value) -> (Value, String) {
    run_script("play.mjs", job, Duration::from_secs(120))
}

/// Runs one of the driver scripts in tests/browser with `job` as its argument; returns its
/// JSON report and its stderr.
pub fn run_script(script: &str, job: &Value, limit: Duration) -> (Value, String) {
    let mut child = Command::new("node")
        .arg(Path::new(DRIVER).join(script))
        .arg(job.to_string())
        .current_dir(DRIVER)
        // playwright copies Chromium's stdout and stderr to ours under this debug name.
        .env("DEBUG", "pw:browser")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (installed with the machine; scripts/deps.sh otherwise)");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the browser driver {script} ran over {limit:?}; stderr:\n{}",
                err.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let report = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
        panic!("the driver ({status}) printed no report ({e}): {out}\nstderr:\n{err}")
    });
    (report, err)
}
