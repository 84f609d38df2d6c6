//! Live view: a camera's media from its ring, as an fMP4 stream a browser's Media Source
//! Extensions (or any fMP4 player) takes as it comes: an init, then the parts as the ring
//! gets them.
//!
//! A viewer is one more consumer of the ring through the [`Feed`] seam: it costs no camera
//! connection and no transcoding, only the copy of each part's bytes. A viewer starts at the
//! newest keyframe, so its first picture is at most one GOP old, and one that falls more than
//! [`MAX_BEHIND`] behind skips ahead to the newest keyframe rather than drifting.

mod mux;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::mp4::InitSegment;
use crate::mp4::codecs::mime;
use crate::ring::{Feed, Following};
use crate::segment::Segment;

pub use mux::MuxError;

/// How far behind the newest part a viewer may fall before it skips to the newest keyframe.
pub const MAX_BEHIND: Duration = Duration::from_secs(3);

/// What a viewer receives next.
#[derive(Debug, Clone)]
pub enum LiveChunk {
    /// A new init: the stream starts or the camera's tracks changed (a reconnect, another
    /// resolution or codec). Media that follows refers to it.
    Init(LiveInit),
    /// One part: `moof`+`mdat` pairs for the latest init.
    Media(Bytes),
}

#[derive(Debug, Clone)]
pub struct LiveInit {
    /// `video/mp4; codecs="…"`, or `None` when a track's codec has no name a browser knows.
    pub mime: Option<String>,
    /// The `ftyp`+`moov`.
    pub bytes: Bytes,
    /// The video's size, when there is video.
    pub width: u32,
    pub height: u32,
}

/// Why a live stream ended.
#[derive(Debug, thiserror::Error)]
pub enum LiveEnd {
    #[error("the camera's stream ended")]
    Ended,
}

/// One viewer's position in a feed.
pub struct LiveStream<F: Feed + ?Sized> {
    feed: Arc<F>,
    changes: watch::Receiver<u64>,
    _following: Following,
    /// The newest part handed out or passed over.
    last: Option<u64>,
    /// The init the media sent so far refers to.
    init: Option<Arc<InitSegment>>,
    /// The stream the last part sent came from.
    stream: Option<u64>,
    /// Media cannot continue before a keyframe (start, gap, skip or new stream).
    resync: bool,
    pending: VecDeque<Arc<Segment>>,
    /// Fragment numbers for `mfhd`, counted per viewer.
    number: u32,
}

impl<F: Feed + ?Sized> LiveStream<F> {
    pub fn new(feed: Arc<F>) -> LiveStream<F> {
        let changes = feed.subscribe();
        let following = feed.follow();
        LiveStream {
            feed,
            changes,
            _following: following,
            last: None,
            init: None,
            stream: None,
            resync: true,
            pending: VecDeque::new(),
            number: 0,
        }
    }

    /// The next chunk, waiting for the camera when there is none yet; an error once no more
    /// media can come.
    pub async fn next(&mut self) -> Result<LiveChunk, LiveEnd> {
        loop {
            while let Some(part) = self.pending.pop_front() {
                match self.take(part) {
                    Taken::Media(first) => return Ok(self.coalesce(first)),
                    Taken::InitFirst(init, part) => {
                        self.pending.push_front(part);
                        return Ok(LiveChunk::Init(init));
                    }
                    Taken::Skipped => {}
                    Taken::Failed(e) => {
                        tracing::warn!(camera = self.feed.name(), "live view: {e}");
                        self.resync = true;
                    }
                }
            }
            // Marked seen before the ring is read, so a part that lands in between still
            // wakes the wait below.
            self.changes.borrow_and_update();
            let parts = self.fetch();
            if !parts.is_empty() {
                self.pending.extend(parts);
                continue;
            }
            if self.feed.state().ended {
                return Err(LiveEnd::Ended);
            }
            if self.changes.changed().await.is_err() {
                return Err(LiveEnd::Ended);
            }
        }
    }

    /// `first` and the parts already waiting after it, as one chunk: a viewer that starts or
    /// catches up gets what is there at once, so its player can start at the live edge of
    /// all of it rather than at the end of the first part.
    fn coalesce(&mut self, first: Bytes) -> LiveChunk {
        let mut more: Vec<Bytes> = Vec::new();
        while let Some(part) = self.pending.pop_front() {
            match self.take(part) {
                Taken::Media(b) => more.push(b),
                Taken::InitFirst(_, part) => {
                    // Not now: the next call sends the init, then this part.
                    self.init = None;
                    self.pending.push_front(part);
                    break;
                }
                Taken::Skipped => {}
                Taken::Failed(e) => {
                    tracing::warn!(camera = self.feed.name(), "live view: {e}");
                    self.resync = true;
                }
            }
        }
        if more.is_empty() {
            return LiveChunk::Media(first);
        }
        let mut all = bytes::BytesMut::with_capacity(
            first.len() + more.iter().map(Bytes::len).sum::<usize>(),
        );
        all.extend_from_slice(&first);
        for b in more {
            all.extend_from_slice(&b);
        }
        LiveChunk::Media(all.freeze())
    }

    /// Parts to send next: from the newest keyframe at the start and after falling behind,
    /// otherwise every part after the last one.
    fn fetch(&mut self) -> Vec<Arc<Segment>> {
        let parts: Vec<Arc<Segment>> = match self.last {
            None => {
                let (lookback, _) = self.feed.lookback(Instant::now(), Duration::ZERO);
                lookback.segments.into_iter().map(|(s, _)| s).collect()
            }
            Some(last) => self.feed.since(last).into_iter().map(|(s, _)| s).collect(),
        };
        let behind: Duration = parts.iter().map(|p| p.duration_time()).sum();
        if behind <= MAX_BEHIND {
            return parts;
        }
        // Too far behind: from the newest keyframe on.
        let Some(key) = parts.iter().rposition(|p| p.starts_with_keyframe()) else {
            return parts;
        };
        if let Some(skipped) = key.checked_sub(1).and_then(|i| parts.get(i)) {
            tracing::debug!(
                camera = self.feed.name(),
                "live view: a viewer {behind:?} behind skips to part {}",
                parts[key].sequence
            );
            self.last = Some(skipped.sequence);
            self.resync = true;
        }
        parts[key..].to_vec()
    }

    fn take(&mut self, part: Arc<Segment>) -> Taken {
        if self.last.is_some_and(|last| part.sequence <= last) {
            return Taken::Skipped;
        }
        let gap = self.last.is_some_and(|last| part.sequence > last + 1);
        let new_stream = self.stream != Some(part.stream_id);
        if (gap || new_stream || self.resync) && !part.starts_with_keyframe() {
            self.last = Some(part.sequence);
            return Taken::Skipped;
        }
        let same_init = self
            .init
            .as_ref()
            .is_some_and(|i| Arc::ptr_eq(i, &part.init) || i.raw == part.init.raw);
        if !same_init {
            self.init = Some(part.init.clone());
            return Taken::InitFirst(describe(&part.init), part);
        }
        self.last = Some(part.sequence);
        match mux::part_bytes(&part, &mut self.number) {
            Ok(bytes) if bytes.is_empty() => Taken::Skipped,
            Ok(bytes) => {
                self.stream = Some(part.stream_id);
                self.resync = false;
                Taken::Media(bytes)
            }
            Err(e) => Taken::Failed(e),
        }
    }
}

enum Taken {
    Media(Bytes),
    InitFirst(LiveInit, Arc<Segment>),
    Skipped,
    Failed(MuxError),
}

fn describe(init: &InitSegment) -> LiveInit {
    let video = init
        .tracks
        .iter()
        .find(|t| t.kind == crate::mp4::TrackKind::Video);
    LiveInit {
        mime: mime(init).ok().flatten(),
        bytes: init.raw.clone(),
        width: video.map_or(0, |v| v.width),
        height: video.map_or(0, |v| v.height),
    }
}

#[cfg(test)]
mod tests;
