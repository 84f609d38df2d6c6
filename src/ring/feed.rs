//! The one seam through which the ring's consumers (a clip's recording today; live view and
//! continuous recording next) reach a camera's media: a look back, the parts after a point,
//! a wake-up when more arrive, and whether more can come. A consumer knows parts and this
//! seam, not the camera behind it, so it can be driven by an in-memory feed in its tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Lookback;
use crate::segment::Segment;

/// Whether more media can come from a feed, and why not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    /// Media is flowing (the camera is connected).
    pub live: bool,
    /// Nothing more will ever come (a file played once has ended).
    pub ended: bool,
    /// Media came at some point (the camera streamed, then stopped).
    pub streamed: bool,
    /// Why the feed is down, when it is.
    pub last_error: Option<String>,
}

/// Held while a consumer wants each part as soon as it is complete (see `Feed::follow`).
pub struct Following(#[allow(dead_code)] Box<dyn Send>);

impl Following {
    pub fn new(guard: impl Send + 'static) -> Following {
        Following(Box::new(guard))
    }
}

/// A camera's media as its ring holds it.
pub trait Feed: Send + Sync {
    /// The feed's name (the camera's), for logs and reasons.
    fn name(&self) -> &str;

    /// In one look at the ring: what a clip triggered at `trigger` with `lookback` of
    /// pre-roll takes from it, and the newest part's sequence, after which live media
    /// continues.
    fn lookback(&self, trigger: Instant, lookback: Duration) -> (Lookback, Option<u64>);

    /// When the newest part held ended.
    fn newest_end(&self) -> Option<Instant>;

    /// Parts newer than `sequence`, oldest first, each with when it started.
    fn since(&self, sequence: u64) -> Vec<(Arc<Segment>, Option<Instant>)>;

    fn state(&self) -> FeedState;

    /// Changes on every new part, and when the state changes in a way a waiting consumer
    /// cares about (the feed ended).
    fn subscribe(&self) -> watch::Receiver<u64>;

    /// While the returned guard is held, parts reach the ring as soon as they are complete
    /// rather than with the next batch of reads.
    fn follow(&self) -> Following;
}
