//! Reconnect delays: exponential with jitter, capped, and reset by a connection that worked.
//! (Home Assistant's grows by 10 s per failure without a cap, and users lose their camera
//! for minutes; see reference/peers.md.)

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffOptions {
    pub initial: Duration,
    pub max: Duration,
    /// A connection that lasted this long resets the delay to `initial`, even without media.
    pub stable_after: Duration,
}

impl Default for BackoffOptions {
    fn default() -> Self {
        BackoffOptions {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Backoff {
    options: BackoffOptions,
    next: Duration,
    /// xorshift state for jitter (no need for a cryptographic generator).
    rng: u64,
}

impl Backoff {
    pub fn new(options: BackoffOptions, seed: u64) -> Self {
        Backoff {
            options,
            next: options.initial,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt: the current step ±20 %, then the step doubles up
    /// to the cap. Persistent failures (bad credentials) go straight to the cap.
    pub fn next_delay(&mut self, persistent: bool) -> Duration {
        if persistent {
            self.next = self.options.max;
        }
        let base = self.next;
        self.next = (self.next * 2).min(self.options.max);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        // Jitter in [-20 %, +20 %], so cameras that failed together do not retry together.
        let permille = (self.rng % 401) as i64 - 200;
        let nanos = base.as_nanos() as i64;
        Duration::from_nanos((nanos + nanos * permille / 1000).max(0) as u64)
    }

    /// Called when a connection ends, with how long it lasted and whether it delivered media
    /// (a segment reached the ring). Either resets the delay: a camera that worked until a
    /// moment ago is most likely back soon (a reboot, a network blip, a server restart), and
    /// every second of delay is a second no clip can capture. Connections that fail before
    /// any media keep doubling the delay.
    pub fn connection_ended(&mut self, lasted: Duration, delivered_media: bool) {
        if delivered_media || lasted >= self.options.stable_after {
            self.next = self.options.initial;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets_when_stable() {
        let mut b = Backoff::new(BackoffOptions::default(), 42);
        let delays: Vec<f64> = (0..8).map(|_| b.next_delay(false).as_secs_f64()).collect();
        let steps = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0];
        for (d, s) in delays.iter().zip(steps) {
            assert!(*d >= s * 0.8 && *d <= s * 1.2, "{delays:?}");
        }
        b.connection_ended(Duration::from_secs(5), false);
        assert!(b.next_delay(false) >= Duration::from_secs(24));
        b.connection_ended(Duration::from_secs(61), false);
        assert!(b.next_delay(false) <= Duration::from_millis(1200));
        assert!(b.next_delay(true) >= Duration::from_secs(24));
        // A short connection that delivered media resets it too (found by the fault soak:
        // with faults every 5-20 s, the delay stayed near the 30 s cap and half the clips
        // captured nothing while the server was up).
        assert!(b.next_delay(false) >= Duration::from_secs(24));
        b.connection_ended(Duration::from_secs(3), true);
        assert!(b.next_delay(false) <= Duration::from_millis(1200));
    }
}
