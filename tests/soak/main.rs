//! The fault soak: four cameras on gst-rtsp-server recorded by `preroll serve` while clips
//! are triggered every few seconds and the server is kicked, killed and restarted, and
//! frozen, at random. Not part of the normal suite (it runs for minutes): `scripts/soak.sh`
//! runs it, `SOAK_MINUTES` sets the length of the fault phase (10 by default) and
//! `SOAK_SEED` replays a run; `SOAK_KEEP=1` keeps the clips, logs and time line of a run
//! that passed (one that fails always keeps them).
//!
//! Afterwards every clip must be final; every finished clip must decode without an error,
//! pass the structural checks and have strictly increasing decode times; a failed clip is
//! only accepted when its camera had no media in its window; the log must hold no panic;
//! the service must still answer and exit 0 on SIGTERM; and its memory with full rings at
//! the end must be within 10 % of the same measure after the warm-up. One summary line
//! reports it all.

mod clock;
// The shared helpers live beside the other tests.
#[path = "../common/mod.rs"]
mod common;
mod faults;
mod monitor;
mod rng;
mod triggers;
mod verdict;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clock::{AbortOnPanic, Clock};
use common::rtsp::{Auth, RtspServer};
use common::serve::{Service, config};
use common::{Media, Video, ffmpeg, s};
use faults::Kind;
use triggers::{ClipRecord, Triggers};
use verdict::Excuse;

/// The cameras: the codecs and layouts preroll must keep apart, each a looped file so the
/// server spends no CPU encoding.
const CAMERAS: [&str; 4] = ["h264aac", "h264b", "h265", "h265aac"];
/// Seconds each ring keeps; also the fill the soak waits for before measuring memory.
const RING: f64 = 10.0;
const WARM_UP: Duration = Duration::from_secs(60);
/// Memory at the end may exceed the warm-up's by this share.
const RSS_SLACK: f64 = 0.10;

#[test]
#[ignore = "the fault soak runs for minutes: scripts/soak.sh"]
fn fault_soak() {
    let minutes: f64 = std::env::var("SOAK_MINUTES")
        .map(|m| m.parse().expect("SOAK_MINUTES is a number of minutes"))
        .unwrap_or(10.0);
    let seed = std::env::var("SOAK_SEED")
        .map(|s| s.parse().expect("SOAK_SEED is an integer"))
        .unwrap_or_else(|_| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos() as u64
        });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-{seed}"));
    std::fs::create_dir_all(&dir).expect("soak directory");
    println!(
        "soak: {minutes} min of faults, seed {seed}, in {}",
        dir.display()
    );

    let media = make_media(&dir);
    let mounts: Vec<(&str, String)> = CAMERAS
        .iter()
        .zip(&media)
        .map(|(name, file)| (*name, format!("file-loop:{}", file.display())))
        .collect();
    let mounts: Vec<(&str, &str)> = mounts.iter().map(|(n, m)| (*n, m.as_str())).collect();
    let server = RtspServer::start(&mounts, Auth::None).expect("start the RTSP server");
    let mut svc = Service::start(&dir, &config(&dir, &cameras_toml(&server)));
    svc.wait_cameras(&CAMERAS, RING - 1.0, Duration::from_secs(90));

    let clock = Clock::start();
    let abort = AtomicBool::new(false);
    let monitor_done = AtomicBool::new(false);
    let server = Mutex::new(server);
    let mut triggers = Triggers::new(rng::Rng::new(seed));
    let mut fault_rng = rng::Rng::new(seed.rotate_left(32) ^ 0x5EED);

    let (samples, faults, rss_warm, rss_end, soak_secs) = thread::scope(|scope| {
        let monitor = scope.spawn(|| {
            let _g = AbortOnPanic(&abort);
            monitor::watch(&svc, &CAMERAS, &clock, &monitor_done)
        });
        // Whatever happens in this thread, the monitor must stop for the scope to end.
        let _stop_monitor = SetOnDrop(&monitor_done);
        let _g = AbortOnPanic(&abort);

        // Warm-up: clips but no faults, so the rings fill and the allocator settles.
        let warm_until = Instant::now() + WARM_UP;
        triggers.run(&svc, &CAMERAS, &clock, warm_until, &abort);
        let rss_warm = quiesce(&svc, &triggers.clips);
        println!(
            "soak: warm-up done at {:.0} s, RSS {}",
            clock.now(),
            mib(rss_warm)
        );

        let soak_start = clock.now();
        let until = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
        let (server, fault_rng, abort) = (&server, &mut fault_rng, &abort);
        let injector = scope.spawn(move || {
            let _g = AbortOnPanic(abort);
            faults::inject(server, fault_rng, &clock, until, abort)
        });
        triggers.run(&svc, &CAMERAS, &clock, until, abort);
        let faults = injector
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let soak_secs = clock.now() - soak_start;
        println!("soak: faults stopped at {:.0} s", clock.now());

        let rss_end = quiesce(&svc, &triggers.clips);
        monitor_done.store(true, Ordering::Relaxed);
        let samples = monitor
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (samples, faults, rss_warm, rss_end, soak_secs)
    });

    let Triggers { clips, actions, .. } = triggers;
    // Every clip final; finished ones checked, failed ones excused or not.
    let mut problems = String::new();
    let (mut done, mut failed, mut decode, mut structure, mut non_monotonic) = (0, 0, 0, 0, 0);
    let (mut server_down, mut reconnecting, mut discontinuities) = (0, 0, 0u64);
    for clip in &clips {
        let view = svc.get(&format!("/api/clips/{}", clip.id)).json();
        let camera = CAMERAS[clip.camera];
        let (from, to) = clip.window();
        let what = format!("clip {} ({camera}, window {from:.1}..{to:.1} s)", clip.id);
        match view["state"].as_str().unwrap_or_default() {
            "done" => {
                done += 1;
                discontinuities += view["discontinuities"].as_u64().unwrap_or(0);
                let path = Path::new(view["path"].as_str().expect("path"));
                let found = verdict::check_done(path);
                for (bad, count, kind) in [
                    (&found.decode, &mut decode, "decode errors"),
                    (&found.structure, &mut structure, "structure"),
                    (&found.non_monotonic, &mut non_monotonic, "non-monotonic"),
                ] {
                    if let Some(bad) = bad {
                        *count += 1;
                        let _ = writeln!(problems, "{what} {}: {kind}: {bad}", path.display());
                    }
                }
            }
            "failed" => {
                failed += 1;
                let error = view["error"].as_str().unwrap_or_default();
                match verdict::excuse(clip, error, &samples, &faults) {
                    Ok(Excuse::ServerDown) => server_down += 1,
                    Ok(Excuse::Reconnecting) => reconnecting += 1,
                    Err(why) => {
                        let _ = writeln!(problems, "{what}: {why}");
                    }
                }
            }
            state => {
                let _ = writeln!(problems, "{what}: not final but {state:?}: {view}");
            }
        }
    }
    let unexcused = failed - server_down - reconnecting;

    let log = svc.log();
    let panics = log
        .lines()
        .filter(|l| l.to_lowercase().contains("panic"))
        .count();
    let reconnects: u64 = svc
        .get("/api/cameras")
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["reconnects"].as_u64().unwrap_or(0))
        .sum();
    let health = svc.request("GET", "/healthz", None, &[], None);
    if health.status != 200 {
        let _ = writeln!(
            problems,
            "/healthz answered {}: {}",
            health.status,
            health.text()
        );
    }
    let status = svc.signal_and_wait(libc::SIGTERM, Duration::from_secs(150));
    if !status.success() {
        let _ = writeln!(problems, "preroll serve exited with {status} after SIGTERM");
    }
    let server = server.into_inner().unwrap_or_else(|p| p.into_inner());

    let rss_max = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let growth = rss_end as f64 / rss_warm as f64 - 1.0;
    let pass = problems.is_empty() && panics == 0 && unexcused == 0 && growth <= RSS_SLACK;
    let summary = format!(
        "soak: {:.1} min, {} cameras, {} clips ({done} done, {failed} failed: {server_down} \
         server down, {reconnecting} reconnecting, {unexcused} unexplained), \
         {discontinuities} discontinuities, {decode} decode errors, {non_monotonic} \
         non-monotonic, {structure} bad structure, {} stopped and {} extended clips, \
         {} kicks, {} restarts, {} pauses, {reconnects} reconnects, {panics} panics, RSS {} after warm-up, {} at end \
         ({:+.1} %), max {}: {}",
        soak_secs / 60.0,
        CAMERAS.len(),
        clips.len(),
        actions.stopped,
        actions.extended,
        faults::count(&faults, Kind::Kick),
        faults::count(&faults, Kind::Restart),
        faults::count(&faults, Kind::Pause),
        mib(rss_warm),
        mib(rss_end),
        growth * 100.0,
        mib(rss_max),
        if pass { "PASS" } else { "FAIL" }
    );
    let keep = !pass || std::env::var_os("SOAK_KEEP").is_some();
    if keep {
        std::fs::write(dir.join("service.log"), &log).expect("write service.log");
        std::fs::write(dir.join("rtsp_server.log"), server.stderr()).expect("write log");
        std::fs::write(
            dir.join("timeline.txt"),
            timeline(&faults, &clips, &samples),
        )
        .expect("write timeline.txt");
        println!("kept for inspection: {}", dir.display());
    } else {
        // Nothing worth keeping: the clips were all good.
        let _ = std::fs::remove_dir_all(&dir);
    }
    if !pass {
        for line in log.lines().filter(|l| l.to_lowercase().contains("panic")) {
            println!("panic in the log: {line}");
        }
        print!("{problems}");
    }
    println!("{summary}");
    assert!(pass, "{summary}");
}

/// Faults, clips and monitor samples on the soak's time line, for reading after a run.
fn timeline(faults: &[faults::Fault], clips: &[ClipRecord], samples: &[monitor::Sample]) -> String {
    let mut out = String::new();
    for f in faults {
        let _ = writeln!(out, "{:7.1} fault {:?} until {:.1}", f.start, f.kind, f.end);
    }
    for c in clips {
        let (from, to) = c.window();
        let _ = writeln!(
            out,
            "{:7.1} clip {} {} window {from:.1}..{to:.1} {c:?}",
            c.trigger, c.id, CAMERAS[c.camera]
        );
    }
    for s in samples {
        let _ = writeln!(out, "{:7.1} frames {:?} rss {} kB", s.t, s.frames, s.rss_kb);
    }
    out
}

/// Waits until every clip is final and every camera's ring is full again, then returns the
/// service's resident memory (median of five readings a second apart, in kB). The soak
/// measures memory only in this state, so the two readings compare like with like.
fn quiesce(svc: &Service, clips: &[ClipRecord]) -> u64 {
    for clip in clips {
        svc.wait_final(&clip.id, Duration::from_secs(120));
    }
    // After a fault preroll may be waiting out its reconnect backoff (up to 30 s).
    svc.wait_cameras(&CAMERAS, RING - 1.0, Duration::from_secs(180));
    let mut readings: Vec<u64> = (0..5)
        .map(|i| {
            if i > 0 {
                thread::sleep(Duration::from_secs(1));
            }
            monitor::rss_kb(svc.pid())
        })
        .collect();
    readings.sort_unstable();
    readings[2]
}

/// Four looped 10 s files at 640x360, 25 fps, 1 s GOP: H.264 without B-frames with AAC (as
/// most cameras send), H.264 with B-frames, H.265 with B-frames, and H.265 with AAC.
fn make_media(dir: &Path) -> Vec<PathBuf> {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).expect("media directory");
    let plain = media.join("h264aac.mp4");
    // Media's H.264 always has B-frames, so the camera-like stream is made here.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "10",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "0",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        s(&plain),
    ]);
    let base = Media {
        seconds: 10,
        width: 640,
        height: 360,
        ..Media::default()
    };
    let others = [
        ("h264b", Video::H264, false, "testsrc"),
        ("h265", Video::H265, false, "testsrc2"),
        ("h265aac", Video::H265, true, "testsrc"),
    ];
    let mut files = vec![plain];
    for (name, video, audio, pattern) in others {
        let m = Media {
            video,
            audio,
            pattern,
            ..base
        };
        files.push(m.progressive(&media.join(format!("{name}.mp4"))));
    }
    files
}

/// Short timeouts, so a frozen server costs a reconnect within seconds, and a 10 s ring.
fn cameras_toml(server: &RtspServer) -> String {
    CAMERAS
        .iter()
        .map(|name| {
            format!(
                "[[cameras]]\nname = \"{name}\"\nsource = \"{}\"\npreroll_seconds = {RING}\n\
                 connect_timeout = 3\nstall_timeout = 4\n\n",
                server.url(name)
            )
        })
        .collect()
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// Sets a flag when dropped, panicking or not.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
