//! The unit the pipeline passes from the segmenter to the ring and on to recordings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::mp4::{Fragment, InitSegment, TrackKind};

/// A keyframe-aligned run of media fragments from one stream connection.
///
/// Segments are cheap to clone: the init is shared by every segment of a `stream_id`, and
/// fragment payloads are shared bytes (or file ranges), never copied per consumer.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Position in the source's output; strictly increasing across reconnects.
    pub sequence: u64,
    /// Which connection of the source produced it. Timestamps are continuous within one
    /// `stream_id` and unrelated across them.
    pub stream_id: u64,
    pub init: Arc<InitSegment>,
    pub fragments: Vec<Fragment>,
    /// Decode time of the first video sample, in video ticks (0 if the segment has no video).
    pub start: u64,
    /// Sum of the video sample durations, in video ticks.
    pub duration: u64,
    /// When the segment's first frame arrived (live sources); `None` for media read from disk.
    pub received: Option<Instant>,
}

impl Segment {
    /// Builds a segment, deriving `start` and `duration` from its video samples.
    pub fn new(
        sequence: u64,
        stream_id: u64,
        init: Arc<InitSegment>,
        fragments: Vec<Fragment>,
    ) -> Self {
        let video = init
            .tracks
            .iter()
            .find(|t| t.kind == TrackKind::Video)
            .map(|t| t.track_id);
        let mut start = None;
        let mut duration = 0u64;
        for f in &fragments {
            if let Some(t) = video.and_then(|id| f.track(id)) {
                if start.is_none() && t.sample_count() > 0 {
                    start = t.base_decode_time;
                }
                duration += t.duration();
            }
        }
        Segment {
            sequence,
            stream_id,
            init,
            fragments,
            start: start.unwrap_or(0),
            duration,
            received: None,
        }
    }

    /// Ticks per second of `start` and `duration` (the video track's timescale).
    pub fn timescale(&self) -> u32 {
        self.init.video().map_or(1, |t| t.timescale)
    }

    /// `duration` as time.
    pub fn duration_time(&self) -> Duration {
        let ts = u64::from(self.timescale().max(1));
        Duration::from_nanos((u128::from(self.duration) * 1_000_000_000 / u128::from(ts)) as u64)
    }

    /// Whether its first video sample is a sync sample (a clip can start here).
    pub fn starts_with_keyframe(&self) -> bool {
        let Some(video) = self.init.video().map(|t| t.track_id) else {
            return false;
        };
        self.fragments
            .iter()
            .filter_map(|f| f.track(video))
            .find(|t| t.sample_count() > 0)
            .is_some_and(|t| t.starts_with_sync())
    }

    /// The bytes of its first video sample (None without video, or when they cannot be
    /// read).
    pub fn first_video_sample(&self) -> Option<Bytes> {
        let video = self.init.video()?.track_id;
        self.fragments.iter().find_map(|f| {
            let run = f
                .track(video)?
                .runs
                .iter()
                .find(|r| !r.samples.is_empty())?;
            let size = u64::from(run.samples.first()?.size);
            f.data
                .slice(run.data_offset, run.data_offset + size)
                .to_bytes()
                .ok()
        })
    }

    /// True when no fragment holds a sample.
    pub fn is_empty(&self) -> bool {
        self.fragments.iter().all(|f| f.sample_count() == 0)
    }

    /// Bytes of media payload.
    pub fn media_bytes(&self) -> u64 {
        self.fragments.iter().map(|f| f.data.len()).sum()
    }
}
