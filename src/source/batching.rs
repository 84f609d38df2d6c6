//! How long ingest lets a camera's data wait before reading it, and who may ask for less.
//!
//! Reading a socket once per packet is most of what an idle stream costs, so ingest reads in
//! batches: the ticked ingest runtime (`camera::ingest`) polls its sockets once per tick, and
//! an RTSP source sleeps between reads. That is invisible to a ring that holds seconds, but
//! two things want data as it arrives:
//! - a source that is connecting: each request and answer round trip (DESCRIBE, SETUP, PLAY)
//!   crosses the camera link, and a tick per hop would make a connection take seconds;
//! - a clip that is recording: every part reaches the file as soon as it is complete, so a
//!   crash loses at most the part in progress, not that part plus a batch or two.
//!
//! A [`Batching`] is shared by an ingest runtime and its cameras; each camera has its own
//! view, so a clip hurries only its camera's reads (and the runtime's tick, which serves all).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The batch while a source connects: short enough for a round trip per hop to be quick.
const CONNECTING: Duration = Duration::from_millis(5);
/// The batch while a clip records from a camera: a few percent of a part.
const HURRIED: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Counts {
    connecting: AtomicUsize,
    hurried: AtomicUsize,
    /// Of a runtime: when its current tick was due, in nanoseconds after [`epoch`] plus one;
    /// 0 while no tick has run (a stand-alone source).
    tick_due: AtomicU64,
}

/// The instant tick times are counted from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// One camera's view of its ingest runtime's batching (or a stand-alone one, by default).
#[derive(Debug, Clone, Default)]
pub struct Batching {
    runtime: Arc<Counts>,
    camera: Arc<Counts>,
}

/// Holds a request for shorter batches; dropping it withdraws the request.
#[derive(Debug)]
#[must_use = "the request lasts as long as the guard"]
pub struct Hurry {
    runtime: Arc<Counts>,
    camera: Arc<Counts>,
    connecting: bool,
}

impl Batching {
    /// Another camera on the same runtime: shares the runtime's tick, has its own reads.
    pub fn for_camera(&self) -> Batching {
        Batching {
            runtime: self.runtime.clone(),
            camera: Arc::default(),
        }
    }

    /// Held while a source connects.
    pub fn connecting(&self) -> Hurry {
        self.hold(true)
    }

    /// Held while a clip records from this camera.
    pub fn recording(&self) -> Hurry {
        self.hold(false)
    }

    fn hold(&self, connecting: bool) -> Hurry {
        for c in [&self.runtime, &self.camera] {
            count(c, connecting).fetch_add(1, Ordering::SeqCst);
        }
        Hurry {
            runtime: self.runtime.clone(),
            camera: self.camera.clone(),
            connecting,
        }
    }

    /// The runtime's tick, given its usual `tick`.
    pub fn tick(&self, tick: Duration) -> Duration {
        interval(&self.runtime, tick)
    }

    /// How long this camera's source waits between reads, given its usual `batch`.
    pub fn read_batch(&self, batch: Duration) -> Duration {
        interval(&self.camera, batch)
    }

    /// Told by the runtime at each tick: when that tick was due.
    pub fn tick_started(&self, due: Instant) {
        let nanos = due.saturating_duration_since(epoch()).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1;
        self.runtime.tick_due.store(nanos, Ordering::Relaxed);
    }

    /// When this camera's source, having read at `now`, reads next, given its usual `batch`.
    ///
    /// On a ticked runtime the time is counted from when the current tick was due, not from
    /// `now`, and ends just before a tick: the read then happens at that tick. The ticks keep
    /// a schedule (`camera::ingest`), so counted from `now` a source that read late in a
    /// tick's work would find its time not yet come at the next tick and wait for the one
    /// after: with hundreds of streams, where a tick's work takes a good part of a tick, many
    /// sources would read every other tick.
    pub fn next_read(&self, batch: Duration, now: Instant) -> Instant {
        let batch = self.read_batch(batch);
        let due = self.runtime.tick_due.load(Ordering::Relaxed);
        if due == 0 {
            return now + batch;
        }
        let tick = epoch() + Duration::from_nanos(due - 1);
        // Just before the tick `batch` after this one (timers are kept to the millisecond).
        let step = batch
            .saturating_sub(Duration::from_millis(1))
            .max(Duration::from_millis(1));
        let mut next = tick + step;
        if next <= now {
            // The work of this tick ran past it: the first such time still to come.
            let behind = now.duration_since(tick).as_nanos() / batch.as_nanos().max(1);
            next = tick + batch * u32::try_from(behind).unwrap_or(u32::MAX) + step;
            if next <= now {
                next += batch;
            }
        }
        next
    }
}

fn count(c: &Counts, connecting: bool) -> &AtomicUsize {
    if connecting {
        &c.connecting
    } else {
        &c.hurried
    }
}

fn interval(c: &Counts, usual: Duration) -> Duration {
    if c.connecting.load(Ordering::SeqCst) > 0 {
        CONNECTING.min(usual)
    } else if c.hurried.load(Ordering::SeqCst) > 0 {
        HURRIED.min(usual)
    } else {
        usual
    }
}

impl Drop for Hurry {
    fn drop(&mut self) {
        for c in [&self.runtime, &self.camera] {
            count(c, self.connecting).fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_shortens_batches_while_held_and_only_where_it_applies() {
        let usual = Duration::from_millis(250);
        let runtime = Batching::default();
        let a = runtime.for_camera();
        let b = runtime.for_camera();
        assert_eq!(a.tick(usual), usual);
        let rec = a.recording();
        assert_eq!(a.read_batch(usual), HURRIED);
        assert_eq!(b.read_batch(usual), usual, "another camera keeps its batch");
        assert_eq!(
            b.tick(usual),
            HURRIED,
            "the shared tick serves the clip too"
        );
        let conn = b.connecting();
        assert_eq!(runtime.tick(usual), CONNECTING);
        drop(conn);
        drop(rec);
        assert_eq!(a.read_batch(usual), usual);
        assert_eq!(runtime.tick(usual), usual);
        assert_eq!(
            a.read_batch(Duration::from_millis(1)),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn reads_are_timed_from_the_tick_and_end_just_before_one() {
        let ms = Duration::from_millis;
        let usual = ms(250);
        let runtime = Batching::default();
        let a = runtime.for_camera();
        let now = Instant::now();
        // Stand-alone: a batch from now.
        assert_eq!(a.next_read(usual, now), now + usual);
        // A tick due at `t`; read 180 ms into its work: the next read is at the next tick,
        // not 250 ms after the read.
        let t = now;
        runtime.tick_started(t);
        let at = a.next_read(usual, t + ms(180));
        assert!(at > t + ms(180) && at < t + usual, "{:?}", at - t);
        assert!(at >= t + ms(248), "{:?}", at - t);
        // Work that ran past the next tick: just before the tick after.
        let at = a.next_read(usual, t + ms(300));
        assert!(at > t + ms(300) && at < t + ms(500), "{:?}", at - t);
        assert!(at >= t + ms(498), "{:?}", at - t);
        // Recording: 20 ms batches, still ending before a tick.
        let rec = a.recording();
        let at = a.next_read(usual, t + ms(5));
        assert!(at > t + ms(5) && at < t + ms(20), "{:?}", at - t);
        drop(rec);
    }
}
