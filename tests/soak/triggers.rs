//! Clip triggers: every few seconds a clip on a random camera with a random lookback and
//! duration; some are stopped or extended while they record. Every clip is remembered with
//! the window of media it asked for.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::clock::{Clock, sleep_until};
use crate::common::serve::Service;
use crate::rng::Rng;

/// Seconds between triggers.
const EVERY: (f64, f64) = (2.0, 5.0);
const LOOKBACK: (f64, f64) = (0.0, 5.0);
const DURATION: (f64, f64) = (2.0, 8.0);
/// A share of clips long enough to outlast a reconnect (with its backoff), so clips that
/// hold two streams of a camera, joined by preroll, are part of every run.
const LONG_SHARE: f64 = 0.1;
const LONG_DURATION: (f64, f64) = (20.0, 45.0);
const EXTEND: (f64, f64) = (1.0, 5.0);
/// Share of clips stopped early, and of clips extended, while they record.
const STOP_SHARE: f64 = 0.15;
const EXTEND_SHARE: f64 = 0.15;

#[derive(Debug, Clone)]
pub struct ClipRecord {
    pub id: String,
    pub camera: usize,
    /// When the request was sent (soak seconds).
    pub trigger: f64,
    pub lookback: f64,
    pub duration: f64,
    /// Seconds added by accepted extends.
    pub extended: f64,
    /// When an accepted stop was sent.
    pub stopped_at: Option<f64>,
}

impl ClipRecord {
    /// The media the clip asked for: `[trigger − lookback, end]`, its end moved by stops
    /// and extends.
    pub fn window(&self) -> (f64, f64) {
        let end = self.trigger + self.duration + self.extended;
        let end = self.stopped_at.map_or(end, |s| s.min(end));
        (self.trigger - self.lookback, end)
    }
}

/// Stop and extend requests: accepted, and refused because the clip had already ended.
#[derive(Debug, Default, Clone, Copy)]
pub struct Actions {
    pub stopped: usize,
    pub stop_refused: usize,
    pub extended: usize,
    pub extend_refused: usize,
}

enum Action {
    Stop,
    Extend(f64),
}

/// The clips triggered so far, and what was done to them.
pub struct Triggers {
    pub rng: Rng,
    pub clips: Vec<ClipRecord>,
    pub actions: Actions,
}

impl Triggers {
    pub fn new(rng: Rng) -> Triggers {
        Triggers {
            rng,
            clips: Vec::new(),
            actions: Actions::default(),
        }
    }

    /// Triggers clips on `cameras` until `until`.
    pub fn run(
        &mut self,
        svc: &Service,
        cameras: &[&str],
        clock: &Clock,
        until: Instant,
        abort: &AtomicBool,
    ) {
        let Triggers {
            rng,
            clips,
            actions,
        } = self;
        let mut pending: Vec<(f64, usize, Action)> = Vec::new();
        let mut next = clock.now();
        loop {
            let now = clock.now();
            if Instant::now() >= until {
                // Actions still due are dropped: those clips run to their end.
                return;
            }
            let (due, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|p| p.0 <= now);
            pending = later;
            for (_, idx, action) in due {
                act(svc, &mut clips[idx], action, clock, actions);
            }
            if now >= next {
                let camera = rng.below(cameras.len());
                // Tenths of a second, so the request bodies stay readable in a log.
                let lookback = (rng.range(LOOKBACK.0, LOOKBACK.1) * 10.0).round() / 10.0;
                let (low, high) = if rng.chance(LONG_SHARE) {
                    LONG_DURATION
                } else {
                    DURATION
                };
                let duration = (rng.range(low, high) * 10.0).round() / 10.0;
                let trigger = clock.now();
                let body = format!(r#"{{"lookback": {lookback}, "duration": {duration}}}"#);
                let clip = svc.clip(cameras[camera], &body);
                let id = clip["id"].as_str().expect("clip id").to_owned();
                clips.push(ClipRecord {
                    id,
                    camera,
                    trigger,
                    lookback,
                    duration,
                    extended: 0.0,
                    stopped_at: None,
                });
                let idx = clips.len() - 1;
                if rng.chance(STOP_SHARE) {
                    pending.push((trigger + rng.range(0.5, duration), idx, Action::Stop));
                } else if rng.chance(EXTEND_SHARE) {
                    let more = (rng.range(EXTEND.0, EXTEND.1) * 10.0).round() / 10.0;
                    pending.push((
                        trigger + rng.range(0.5, duration),
                        idx,
                        Action::Extend(more),
                    ));
                }
                next = trigger + rng.range(EVERY.0, EVERY.1);
            }
            if !sleep_until(Instant::now() + Duration::from_millis(50), abort) {
                return;
            }
        }
    }
}

fn act(svc: &Service, clip: &mut ClipRecord, action: Action, clock: &Clock, n: &mut Actions) {
    let id = &clip.id;
    let (path, body) = match action {
        Action::Stop => (format!("/api/clips/{id}/stop"), String::new()),
        Action::Extend(s) => (
            format!("/api/clips/{id}/extend"),
            format!(r#"{{"seconds": {s}}}"#),
        ),
    };
    let sent = clock.now();
    let reply = if body.is_empty() {
        svc.request("POST", &path, Some(crate::common::serve::TOKEN), &[], None)
    } else {
        svc.post(&path, &body)
    };
    // 409: the clip is no longer recording (finalizing, done or failed), which happens
    // when its end came first.
    match (reply.status, action) {
        (200, Action::Stop) => {
            clip.stopped_at = Some(sent);
            n.stopped += 1;
        }
        (200, Action::Extend(s)) => {
            clip.extended += s;
            n.extended += 1;
        }
        (409, Action::Stop) => n.stop_refused += 1,
        (409, Action::Extend(_)) => n.extend_refused += 1,
        (status, _) => panic!("POST {path}: {status}: {}", reply.text()),
    }
}
