//! When did a frame really arrive? Sources that read in batches (see `rtsp::READ_BATCH_TCP`)
//! see frames up to a batch late. The camera's own timestamps are exact relative to each
//! other, so each frame is placed at `anchor + (pts − first pts)`, where the anchor tracks the
//! earliest arrival consistent with them: it moves earlier whenever a frame arrives sooner
//! than predicted, and later only when predictions fall more than `MAX_LAG` behind (a camera
//! clock slower than ours, or a stream resuming after a pause).

use std::time::{Duration, Instant};

/// Batching never delays a frame this much; beyond it, the clocks really disagree.
const MAX_LAG: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ArrivalClock {
    timescale: u32,
    /// (instant of the first timestamp, first timestamp).
    anchor: Option<(Instant, i64)>,
}

impl ArrivalClock {
    pub fn new(timescale: u32) -> Self {
        ArrivalClock {
            timescale: timescale.max(1),
            anchor: None,
        }
    }

    /// The estimated arrival of a frame with timestamp `pts` that was read at `read`.
    pub fn place(&mut self, pts: i64, read: Instant) -> Instant {
        let (anchor, pts0) = *self.anchor.get_or_insert((read, pts));
        let ticks = pts.saturating_sub(pts0);
        let offset = Duration::from_nanos(
            (i128::from(ticks.max(0)) * 1_000_000_000 / i128::from(self.timescale)) as u64,
        );
        let predicted = anchor + offset;
        let placed = if predicted > read {
            // Arrived sooner than predicted: the anchor was late.
            read
        } else if read.duration_since(predicted) > MAX_LAG {
            read - MAX_LAG
        } else {
            return predicted;
        };
        self.anchor = Some((placed.checked_sub(offset).unwrap_or(placed), pts0));
        placed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_reads_are_placed_on_the_camera_timeline() {
        let t0 = Instant::now();
        let mut c = ArrivalClock::new(90_000);
        // Frames every 40 ms, read in batches every 250 ms (so up to 250 ms late); the first
        // frame happened to be read 200 ms late, the second batch's first frame almost fresh.
        let read_at = |i: u64| {
            let due = t0 + Duration::from_millis(40 * i);
            let batch_end = t0 + Duration::from_millis((40 * i / 250 + 1) * 250);
            if i == 0 {
                due + Duration::from_millis(200)
            } else {
                batch_end.max(due)
            }
        };
        let mut placed = Vec::new();
        for i in 0..100u64 {
            placed.push(c.place(i as i64 * 3600, read_at(i)));
        }
        // After the anchor settles, every frame sits within a few ms of when it was due.
        for (i, p) in placed.iter().enumerate().skip(20) {
            let due = t0 + Duration::from_millis(40 * i as u64);
            let err = p.saturating_duration_since(due) + due.saturating_duration_since(*p);
            assert!(err <= Duration::from_millis(10), "frame {i}: {err:?}");
        }
        // Never in the future of its read.
        assert!(
            placed
                .iter()
                .enumerate()
                .all(|(i, p)| *p <= read_at(i as u64))
        );
    }

    #[test]
    fn a_slow_camera_clock_is_followed() {
        let t0 = Instant::now();
        let mut c = ArrivalClock::new(1000);
        // Timestamps advance 1 tick per 2 ms of real time: the prediction falls behind.
        let last = (0..2000)
            .map(|i| c.place(i, t0 + Duration::from_millis(2 * i as u64)))
            .last()
            .unwrap();
        let read = t0 + Duration::from_millis(2 * 1999);
        assert!(read.duration_since(last) <= MAX_LAG);
    }
}
