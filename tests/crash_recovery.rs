//! Crash recovery at scale: `RUNS` times (100 by default), `preroll serve` with the demo
//! camera starts a clip, is killed with SIGKILL at a random moment, and is started again on
//! the same config and directory. Before each restart the `.partial` is read with mp4-atom
//! (complete fragments, their samples, the torn tail); after it, the clip must be listed as
//! recovered and hold exactly those fragments, decode without an error and pass the
//! structural checks — or, with no complete fragment, be gone without a trace.
//!
//! Long (about 10 s per run), so `#[ignore]`d: `scripts/crash-recovery.sh` runs it.

mod common;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::serve::{Service, config};
use common::*;
use libc::SIGKILL;

const CAMERA: &str = "[[cameras]]\nname = \"demo\"\nsource = \"demo\"\n";

/// Long enough that every kill (at most `MAX_SLEEP` after the trigger) lands mid-clip.
const CLIP_SECONDS: f64 = 20.0;
const MAX_LOOKBACK: f64 = 5.0;
const MAX_SLEEP: f64 = 8.0;

/// xorshift64*: the runs are reproducible from the seed printed at the start.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What one run left behind when the service was killed.
struct Killed {
    run: usize,
    lookback: f64,
    sleep: f64,
    final_path: PathBuf,
    partial_path: PathBuf,
    /// The partial as it was on disk after the kill (recovery changes it in place).
    partial: Vec<u8>,
    on_disk: FragmentsOnDisk,
    trigger: SystemTime,
    kill: SystemTime,
    /// Pre-roll the service reported for the clip just before the kill; `None` when it was
    /// not asked (a kill right after the answer) or had not reported it yet.
    preroll: Option<f64>,
    /// The camera's bitrate over its ring just before the clip, in bytes per second.
    bytes_per_second: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Reached {
    /// Listed as recovered and done, the final file there, the partial gone.
    recovered: bool,
    /// ffmpeg decodes it without an error.
    decodes: bool,
}

/// How one run's clip came through the restart.
struct Outcome {
    fragments: usize,
    /// How far the checks of a run with complete fragments got.
    reached: Reached,
    /// The checks that failed, if any.
    failure: Option<String>,
    torn: u64,
    /// Seconds of media the camera had delivered before the kill that are not in the
    /// recovered clip (for a run without a complete fragment: the whole clip).
    lost_seconds: Option<f64>,
    bytes_per_second: f64,
    /// From the trigger to the kill.
    killed_after: f64,
}

#[test]
#[ignore = "about 10 s per run; scripts/crash-recovery.sh runs it"]
fn kill_9_at_random_moments_then_restart_recovers_every_clip_with_a_fragment() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .map(|r| r.parse().expect("RUNS is a number"))
        .unwrap_or(100);
    let seed: u64 = std::env::var("SEED")
        .ok()
        .map(|s| s.parse().expect("SEED is a number"))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash recovery: {runs} runs, SEED={seed}");
    let mut rng = Rng(seed);
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-recovery");
    let d = tempfile::tempdir().unwrap();
    let started = Instant::now();

    let mut svc = Service::start(d.path(), &config(d.path(), CAMERA));
    let config_path = svc.config.clone();
    let mut outcomes = Vec::new();
    let mut last: Option<Killed> = None;
    for run in 0..=runs {
        if let Some(k) = last.take() {
            let o = check_restart(&svc, &k, &keep);
            println!("{}", describe(&k, &o));
            outcomes.push(o);
        }
        if run == runs {
            break;
        }
        let k = kill_mid_clip(&mut svc, run, &mut rng);
        last = Some(k);
        drop(svc);
        svc = Service::start_with(&config_path);
    }
    let log = svc.log();
    drop(svc);
    assert!(!log.contains("panicked"), "the service panicked:\n{log}");

    let summary = summarize(&outcomes);
    println!(
        "{summary} ({:.0} s wall, SEED={seed})",
        started.elapsed().as_secs_f64()
    );
    assert!(summary.ends_with(": PASS"), "{summary}");
}

/// Waits for the ring, starts a clip, sleeps a random while and kills the service; reads the
/// partial it left.
fn kill_mid_clip(svc: &mut Service, run: usize, rng: &mut Rng) -> Killed {
    let lookback = (rng.unit() * MAX_LOOKBACK * 1000.0).round() / 1000.0;
    // One run in ten kills right after the answer, before the writer has had a chance.
    let sleep_for = if rng.unit() < 0.1 {
        0.0
    } else {
        (rng.unit() * MAX_SLEEP * 1000.0).round() / 1000.0
    };
    // A GOP more than the lookback, so the clip can start at the keyframe it asks for.
    svc.wait_cameras(&["demo"], lookback + 1.0, Duration::from_secs(60));
    let cams = svc.get("/api/cameras").json();
    let bits = cams[0]["bitrate"].as_f64().expect("bitrate");
    assert!(bits > 0.0, "{cams}");

    let name = format!("run-{run:03}.mp4");
    let before = SystemTime::now();
    let clip = svc.clip(
        "demo",
        &format!(r#"{{"filename": "{name}", "duration": {CLIP_SECONDS}, "lookback": {lookback}}}"#),
    );
    let after = SystemTime::now();
    let id = clip["id"].as_str().expect("id").to_owned();
    // The pre-roll the clip reports, asked a millisecond or so before the kill (when the
    // lookback took nothing from the ring, it is known only once the first live segment is
    // in). Not asked for a kill right after the answer, which would come later by as much.
    let seen = (sleep_for > 0.0).then(|| {
        sleep(Duration::from_secs_f64(sleep_for));
        svc.get(&format!("/api/clips/{id}")).json()
    });
    let kill = SystemTime::now();
    svc.signal_and_wait(SIGKILL, Duration::from_secs(10));
    let log = svc.log();
    assert!(!log.contains("panicked"), "the service panicked:\n{log}");

    let trigger = parse_rfc3339(clip["trigger_time"].as_str().expect("trigger_time"));
    // The trigger is stamped in milliseconds when the request arrives.
    assert!(
        trigger + Duration::from_millis(1) >= before && trigger <= after,
        "trigger {trigger:?} outside the request {before:?}..{after:?}"
    );
    // `bytes` counts the media handed to the writer, and so says whether `preroll` is
    // already the one achieved.
    let preroll = seen
        .filter(|c| c["bytes"].as_u64() > Some(0))
        .map(|c| c["preroll"].as_f64().expect("preroll"));

    let final_path = PathBuf::from(clip["path"].as_str().expect("path"));
    let partial_path = PathBuf::from(format!("{}.partial", final_path.display()));
    assert!(
        !final_path.exists(),
        "run {run}: {} finished before the kill",
        final_path.display()
    );
    let partial = fs::read(&partial_path).unwrap_or_else(|e| {
        panic!(
            "run {run}: no partial after the kill: {}: {e}",
            partial_path.display()
        )
    });
    let on_disk = fragments_on_disk(&partial);
    Killed {
        run,
        lookback,
        sleep: sleep_for,
        final_path,
        partial_path,
        partial,
        on_disk,
        trigger,
        kill,
        preroll,
        bytes_per_second: bits / 8.0,
    }
}

/// Checks what the restarted service made of the killed run's partial. A failed check is
/// recorded (and its files kept under `keep`) rather than ending the whole series.
fn check_restart(svc: &Service, k: &Killed, keep: &Path) -> Outcome {
    let mut outcome = Outcome {
        fragments: k.on_disk.fragments.len(),
        reached: Reached::default(),
        failure: None,
        torn: k.on_disk.torn_tail(),
        lost_seconds: None,
        bytes_per_second: k.bytes_per_second,
        killed_after: seconds_between(k.trigger, k.kill),
    };
    let checked = catch_unwind(AssertUnwindSafe(|| {
        if k.on_disk.fragments.is_empty() {
            check_removed(svc, k)
        } else {
            check_recovered(svc, k, &mut outcome.reached)
        }
    }));
    match checked {
        Ok(lost) => outcome.lost_seconds = lost,
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a check panicked".into());
            let dir = keep.join(format!("run-{:03}", k.run));
            fs::create_dir_all(&dir).unwrap();
            let name = |p: &Path| dir.join(p.file_name().unwrap());
            fs::write(name(&k.partial_path), &k.partial).unwrap();
            if k.final_path.exists() {
                fs::copy(&k.final_path, name(&k.final_path)).unwrap();
            }
            fs::write(dir.join("service.log"), svc.log()).unwrap();
            outcome.failure = Some(format!("{why} (files kept in {})", dir.display()));
        }
    }
    outcome
}

/// A partial with complete fragments: recovered as a finished clip holding exactly them.
/// Returns the seconds of media delivered before the kill that are not in it.
fn check_recovered(svc: &Service, k: &Killed, reached: &mut Reached) -> Option<f64> {
    let clips = svc.get("/api/clips").json();
    let clip = clips
        .as_array()
        .expect("clip list")
        .iter()
        .find(|c| Path::new(c["path"].as_str().unwrap_or_default()) == k.final_path)
        .unwrap_or_else(|| panic!("{} is not listed: {clips}", k.final_path.display()));
    assert_eq!(clip["recovered"], true, "{clip}");
    assert_eq!(clip["state"], "done", "{clip}");
    assert!(!k.partial_path.exists(), "the partial is still there");
    assert!(k.final_path.exists(), "no final file");
    reached.recovered = true;
    assert_decodes_cleanly(&k.final_path);
    reached.decodes = true;
    let moov = check_structure(&k.final_path);

    // The same fragments, at the same offsets, with the same bytes.
    let bytes = fs::read(&k.final_path).unwrap();
    let finished = fragments_on_disk(&bytes);
    assert_eq!(finished.stop, None, "the finished clip reads to its end");
    assert!(finished.moov_last, "not finished progressive (moov last)");
    assert_eq!(finished.fragments, k.on_disk.fragments, "fragments differ");
    let (from, to) = (
        k.on_disk.fragments[0].offset as usize,
        k.on_disk.complete_end as usize,
    );
    // Finishing hid each moof as a free box of the same size; nothing else changed.
    let mut unhidden = bytes.clone();
    for f in &finished.fragments {
        let at = f.offset as usize;
        assert_eq!(
            &unhidden[at + 4..at + 8],
            b"free",
            "moof at {at} not hidden"
        );
        unhidden[at + 4..at + 8].copy_from_slice(b"moof");
    }
    assert!(
        unhidden[from..to] == k.partial[from..to],
        "fragment bytes changed"
    );

    // ffmpeg sees every sample the complete fragments held.
    let samples = k.on_disk.per_track();
    let probe = Probe::of(&k.final_path);
    for (i, trak) in moov.trak.iter().enumerate() {
        let held = samples.get(&trak.tkhd.track_id).map_or(0, |s| s.0);
        assert_eq!(
            probe.packets_of(i).len(),
            held,
            "track {}: ffprobe's packets vs the partial's samples",
            trak.tkhd.track_id
        );
    }

    let header = moov.mvhd.duration as f64 / f64::from(moov.mvhd.timescale);
    let duration = clip["duration"].as_f64().expect("duration");
    assert!(
        (header - duration).abs() < 0.002,
        "API says {duration} s, the file's header {header} s"
    );
    let cut = recovery_line(&svc.log(), &k.partial_path, "recovered an interrupted clip");
    let cut_bytes = field(&cut, "cut_bytes");
    assert_eq!(
        cut_bytes,
        Some(k.on_disk.torn_tail()),
        "the service's cut vs the torn tail mp4-atom found: {cut}"
    );

    let preroll = k.preroll?;
    let media_end = k.trigger - Duration::from_secs_f64(preroll) + Duration::from_secs_f64(header);
    let lost = seconds_between(media_end, k.kill);
    // The clip cannot hold media from after the kill; allow the trigger's millisecond
    // rounding and the kill being stamped just before the signal.
    assert!(
        lost > -0.05,
        "the clip ends {:.3} s after the kill (preroll {preroll}, {header} s)",
        -lost
    );
    Some(lost)
}

/// A partial without a complete fragment: removed, no file under the final name, not
/// listed as a finished clip. Returns the seconds the clip had covered at the kill.
fn check_removed(svc: &Service, k: &Killed) -> Option<f64> {
    assert!(!k.partial_path.exists(), "the partial is still there");
    assert!(!k.final_path.exists(), "a clip without media was made");
    let clips = svc.get("/api/clips").json();
    assert!(
        !clips.as_array().expect("clip list").iter().any(|c| {
            Path::new(c["path"].as_str().unwrap_or_default()) == k.final_path
                && c["state"] == "done"
        }),
        "listed as done: {clips}"
    );
    recovery_line(&svc.log(), &k.partial_path, "no complete fragment");
    let preroll = k.preroll?;
    Some(seconds_between(
        k.trigger - Duration::from_secs_f64(preroll),
        k.kill,
    ))
}

/// The service's log line about `partial` that contains `what` (ANSI colours removed).
#[track_caller]
fn recovery_line(log: &str, partial: &Path, what: &str) -> String {
    let partial = partial.display().to_string();
    strip_ansi(log)
        .lines()
        .find(|l| l.contains(&partial) && l.contains(what))
        .unwrap_or_else(|| panic!("no {what:?} line for {partial} in the log:\n{log}"))
        .to_owned()
}

/// `name=123` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ending with a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `b - a` in seconds, negative when `b` is earlier.
fn seconds_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// `2026-11-24T08:15:30.123Z` as the service writes it.
fn parse_rfc3339(s: &str) -> SystemTime {
    let num = |r: std::ops::Range<usize>| -> i64 {
        s.get(r)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{s:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ"))
    };
    assert!(s.len() == 24 && s.ends_with('Z'), "{s:?}");
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // Days from 1970-01-01 to the date (proleptic Gregorian), counting years from March.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_millis(num(20..23) as u64)
}

fn describe(k: &Killed, o: &Outcome) -> String {
    let lost = o.lost_seconds.map_or("?".into(), |l| format!("{l:.2} s"));
    format!(
        "run {:3}: lookback {:.2} s, slept {:.2} s, killed {:.3} s after the trigger: partial {} B, \
         {} complete fragments, torn tail {} B, media not on disk {lost}: {}",
        k.run,
        k.lookback,
        k.sleep,
        o.killed_after,
        k.on_disk.len,
        o.fragments,
        o.torn,
        o.failure.as_deref().unwrap_or("ok")
    )
}

fn max_median(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (v[n - 1], median)
}

fn kb(bytes: f64) -> String {
    if bytes < 1e3 {
        format!("{bytes:.0} B")
    } else if bytes >= 1e6 {
        format!("{:.2} MB", bytes / 1e6)
    } else {
        format!("{:.1} KB", bytes / 1e3)
    }
}

/// The one summary line, ending in PASS when every run came through.
fn summarize(outcomes: &[Outcome]) -> String {
    let with: Vec<&Outcome> = outcomes.iter().filter(|o| o.fragments > 0).collect();
    let without: Vec<&Outcome> = outcomes.iter().filter(|o| o.fragments == 0).collect();
    let recovered = with.iter().filter(|o| o.reached.recovered).count();
    let decode = with.iter().filter(|o| o.reached.decodes).count();
    let recovered_ok = with.iter().filter(|o| o.failure.is_none()).count();
    let removed_ok = without.iter().filter(|o| o.failure.is_none()).count();
    // Every run's partial, also those removed whole: what followed the header there.
    let (torn_max, torn_median) = max_median(outcomes.iter().map(|o| o.torn as f64).collect());
    let lost: Vec<(f64, f64)> = with
        .iter()
        .filter_map(|o| o.lost_seconds.map(|s| (s, s * o.bytes_per_second)))
        .collect();
    let (lost_max, lost_median) = max_median(lost.iter().map(|l| l.0).collect());
    let (lost_bytes_max, lost_bytes_median) = max_median(lost.iter().map(|l| l.1).collect());
    let unmeasured = with.len() - lost.len();
    let (none_max, _) = max_median(without.iter().map(|o| o.killed_after).collect());
    let pass = outcomes.iter().all(|o| o.failure.is_none());
    let mut s = format!(
        "crash recovery: {} runs, {} with ≥1 complete fragment: {recovered} recovered, \
         {decode} decode cleanly, {recovered_ok} pass every check; {} killed before \
         the first fragment ({removed_ok} partials removed, no file left; killed at most \
         {none_max:.3} s after the trigger); torn tail cut: max {}, median {}; media not on \
         disk at the kill: max {lost_max:.2} s (≈ {}), median {lost_median:.2} s (≈ {})",
        outcomes.len(),
        with.len(),
        without.len(),
        kb(torn_max),
        kb(torn_median),
        kb(lost_bytes_max),
        kb(lost_bytes_median),
    );
    if unmeasured > 0 {
        s.push_str(&format!(
            " ({unmeasured} runs killed right after the answer, without asking for the \
             pre-roll, are not in these figures)"
        ));
    }
    s.push_str(if pass { ": PASS" } else { ": FAIL" });
    s
}
