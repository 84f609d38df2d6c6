//! An in-memory feed for the tests of the ring's consumers: a ring filled beforehand from the
//! demo camera, a state the test sets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Feed, FeedState, Following, Lookback, Ring, RingLimits};
use crate::segment::Segment;
use crate::segmenter::{HygieneOptions, Segmenter, SegmenterOptions};
use crate::source::{Pace, Source, SourceEvent, demo_source};

/// A feed held in memory: the ring filled beforehand, the state set by the test.
pub struct MemoryFeed {
    pub ring: Mutex<Ring>,
    pub state: FeedState,
    pub updates: watch::Sender<u64>,
}

impl Feed for MemoryFeed {
    fn name(&self) -> &str {
        "memory"
    }
    fn lookback(&self, trigger: Instant, lookback: Duration) -> (Lookback, Option<u64>) {
        let ring = self.ring.lock().unwrap();
        (ring.lookback(trigger, lookback), ring.newest_sequence())
    }
    fn newest_end(&self) -> Option<Instant> {
        self.ring.lock().unwrap().newest_end()
    }
    fn since(&self, sequence: u64) -> Vec<(Arc<Segment>, Option<Instant>)> {
        self.ring.lock().unwrap().since(sequence)
    }
    fn state(&self) -> FeedState {
        self.state.clone()
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }
    fn follow(&self) -> Following {
        Following::new(())
    }
}

/// The demo camera's first `seconds`, as parts with the instants a camera would have
/// delivered them at, from now on.
pub async fn demo_feed(seconds: f64, state: FeedState) -> (MemoryFeed, Instant) {
    let mut source = demo_source(Pace::Fast).expect("demo");
    let start = Instant::now();
    let mut segmenter =
        Segmenter::new(1, 1, SegmenterOptions::default(), HygieneOptions::default());
    let mut ring = Ring::new(RingLimits {
        seconds: Duration::from_secs(60),
        bytes: 1 << 30,
    });
    while let Some(event) = source.next().await.expect("demo reads") {
        match event {
            SourceEvent::Params(p) => {
                if let Some(s) = segmenter.set_params(p).expect("params") {
                    ring.push(Arc::new(s));
                }
            }
            SourceEvent::Frame(f) => {
                let past = f.received.duration_since(start).as_secs_f64() > seconds;
                for s in segmenter.push(f).expect("frame") {
                    ring.push(Arc::new(s));
                }
                if past {
                    break;
                }
            }
            SourceEvent::Lost(_) => {}
        }
    }
    let (updates, _) = watch::channel(0);
    let feed = MemoryFeed {
        ring: Mutex::new(ring),
        state,
        updates,
    };
    (feed, start)
}
