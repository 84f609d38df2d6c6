//! One time line for the whole soak: seconds since it started, so clip windows, faults and
//! monitor samples can be compared with each other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn now(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    /// The instant `at` seconds after the start.
    pub fn at(&self, at: f64) -> Instant {
        self.0 + Duration::from_secs_f64(at.max(0.0))
    }
}

/// Sleeps until `until`, waking early when `abort` is set (another worker failed). Returns
/// false when aborted.
pub fn sleep_until(until: Instant, abort: &AtomicBool) -> bool {
    loop {
        if abort.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}

/// Sets `abort` when dropped during a panic, so the other workers stop instead of running
/// to their deadline next to a dead one.
pub struct AbortOnPanic<'a>(pub &'a AtomicBool);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}
