//! Watches the service twice a second: each camera's frame counter (to know when a camera
//! really had media) and the process's resident memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::clock::{Clock, sleep_until};
use crate::common::serve::Service;

const EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Sample {
    pub t: f64,
    /// Frames received so far, per camera, in the order of the names given to `watch`.
    pub frames: Vec<u64>,
    pub rss_kb: u64,
}

/// Samples until `done` is set.
pub fn watch(svc: &Service, cameras: &[&str], clock: &Clock, done: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    // `done` is also what wakes the pause between samples.
    while !done.load(Ordering::Relaxed) {
        let t = clock.now();
        let cams = svc.get("/api/cameras").json();
        let frames = cameras
            .iter()
            .map(|name| {
                cams.as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["name"] == *name)
                    .and_then(|c| c["frames"].as_u64())
                    .unwrap_or_else(|| panic!("no frames for camera {name} in {cams}"))
            })
            .collect();
        samples.push(Sample {
            t,
            frames,
            rss_kb: rss_kb(svc.pid()),
        });
        sleep_until(Instant::now() + EVERY, done);
    }
    samples
}

/// VmRSS of a process, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Frames `camera` received between the first sample at or after `from` and the last one
/// at or before `to` (0 when no two samples lie in between).
pub fn frames_between(samples: &[Sample], camera: usize, from: f64, to: f64) -> u64 {
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t >= from && s.t <= to)
        .collect();
    match (inside.first(), inside.last()) {
        (Some(a), Some(b)) => b.frames[camera] - a.frames[camera],
        _ => 0,
    }
}
