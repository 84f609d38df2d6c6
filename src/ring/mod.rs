//! The pre-roll ring: the last seconds of one stream, as shared parts.
//!
//! The segmenter hands over parts as they are made (see `segmenter`), so the ring also holds
//! the GOP still being built. It is bounded by seconds of video and by bytes; the oldest GOP
//! goes first, whole: a part whose keyframe is gone could not start a clip, so keeping it
//! would only cost memory. Recordings take `Arc`s of the parts they need, so nothing is
//! copied per consumer, and a part leaves memory when the ring and every recording holding it
//! have let go.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::segment::Segment;

mod feed;
#[cfg(test)]
pub(crate) mod memory;
pub use feed::{Feed, FeedState, Following};

/// How long after the newest part ended a requested point may lie and still be taken as the
/// continuation of that part's stream: the part in progress (up to the segmenter's part
/// duration, 0.5 s by default) plus the ingest tick and some slack. A point further away
/// means the camera went quiet, and what the ring holds is not its pre-roll.
const STALE_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// Keep at least this much video (when the bytes allow): the longest lookback served.
    pub seconds: Duration,
    /// Never hold more media than this.
    pub bytes: u64,
}

impl Default for RingLimits {
    fn default() -> Self {
        RingLimits {
            seconds: Duration::from_secs(10),
            bytes: 64 << 20,
        }
    }
}

/// What a lookback request got.
#[derive(Debug, Clone)]
pub struct Lookback {
    /// From the part holding the keyframe at or before the requested point, to the newest,
    /// each with when it started as far as the ring knows (see [`Ring::push`]).
    pub segments: Vec<(Arc<Segment>, Option<Instant>)>,
    /// From the first part's start to the trigger: the pre-roll actually captured.
    pub achieved: Duration,
}

#[derive(Debug)]
pub struct Ring {
    limits: RingLimits,
    segments: VecDeque<Arc<Segment>>,
    /// When each segment started, as far as is known now (see [`Ring::push`]).
    starts: VecDeque<Option<Instant>>,
    bytes: u64,
    video: Duration,
    evicted: u64,
}

impl Ring {
    pub fn new(limits: RingLimits) -> Self {
        Ring {
            limits,
            segments: VecDeque::new(),
            starts: VecDeque::new(),
            bytes: 0,
            video: Duration::ZERO,
            evicted: 0,
        }
    }

    pub fn limits(&self) -> RingLimits {
        self.limits
    }

    /// Adds the newest segment and drops the oldest ones the limits no longer cover.
    ///
    /// A segment's arrival time is an estimate that later frames can only move earlier (see
    /// `source::arrival`): right after a connect the first ones are placed late, by up to a
    /// read batch. Each segment of a stream starts no later than the next one's start minus
    /// its own duration, so the new evidence is carried back to the older segments here;
    /// otherwise a lookback could take a segment further back than the time asked for.
    pub fn push(&mut self, segment: Arc<Segment>) {
        self.bytes += segment.media_bytes();
        self.video += segment.duration_time();
        self.starts.push_back(segment.received);
        self.segments.push_back(segment);
        for i in (0..self.segments.len().saturating_sub(1)).rev() {
            let (older, newer) = (&self.segments[i], &self.segments[i + 1]);
            if older.stream_id != newer.stream_id {
                break;
            }
            let (Some(start), Some(next)) = (self.starts[i], self.starts[i + 1]) else {
                break;
            };
            match next.checked_sub(older.duration_time()) {
                Some(bound) if bound < start => self.starts[i] = Some(bound),
                _ => break,
            }
        }
        while !self.segments.is_empty() {
            // The oldest GOP: the front part and the parts after it that continue its GOP.
            let gop = 1 + self
                .segments
                .iter()
                .skip(1)
                .take_while(|s| !s.starts_with_keyframe())
                .count();
            let (gop_video, gop_bytes) = self
                .segments
                .iter()
                .take(gop)
                .fold((Duration::ZERO, 0u64), |(v, b), s| {
                    (v + s.duration_time(), b + s.media_bytes())
                });
            // Over the byte cap, the oldest GOP goes (even the newest, if it alone is larger
            // than the cap). Over time, it goes only while the rest still covers the limit. A
            // stream without keyframes is one endless GOP: past twice the limit its oldest
            // parts go one by one (no clip can start in it anyway).
            let over_bytes = self.bytes > self.limits.bytes;
            let over_time = gop < self.segments.len()
                && self.video.saturating_sub(gop_video) >= self.limits.seconds;
            let endless = gop == self.segments.len()
                && self.segments.len() > 1
                && self.video >= self.limits.seconds * 2;
            let drop = if over_bytes && gop < self.segments.len() || over_time {
                gop
            } else if over_bytes || endless {
                1
            } else {
                break;
            };
            let (dropped_video, dropped_bytes) = if drop == gop {
                (gop_video, gop_bytes)
            } else {
                let s = &self.segments[0];
                (s.duration_time(), s.media_bytes())
            };
            self.bytes -= dropped_bytes;
            self.video = self.video.saturating_sub(dropped_video);
            self.segments.drain(..drop);
            self.starts.drain(..drop);
            self.evicted += drop as u64;
        }
    }

    /// Seconds of video held.
    pub fn duration(&self) -> Duration {
        self.video
    }

    /// Bytes of media held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Segments dropped so far to respect the limits.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// When the oldest segment held arrived.
    pub fn oldest_start(&self) -> Option<Instant> {
        self.starts.front().copied().flatten()
    }

    pub fn newest_sequence(&self) -> Option<u64> {
        self.segments.back().map(|s| s.sequence)
    }

    /// When the newest part held ends (where the part in progress starts).
    pub fn newest_end(&self) -> Option<Instant> {
        let start = self.starts.back().copied().flatten()?;
        Some(start + self.segments.back()?.duration_time())
    }

    /// The segments for a clip triggered at `trigger` with `lookback` of pre-roll: from the
    /// newest segment starting at or before `trigger - lookback` (or the oldest held, if the
    /// ring does not reach that far) to the newest. Every segment starts with a keyframe, so
    /// the clip starts at the newest keyframe at or before the requested point.
    pub fn lookback(&self, trigger: Instant, lookback: Duration) -> Lookback {
        let wanted = trigger.checked_sub(lookback);
        let mut first = 0;
        if let Some(wanted) = wanted {
            for (i, start) in self.starts.iter().enumerate() {
                match start {
                    Some(t) if *t <= wanted => first = i,
                    _ => break,
                }
            }
        }
        // A part that ended well before the requested point is older media, left from before
        // the camera went quiet: it is not pre-roll of this trigger. (A part that ended just
        // before it is followed by the part in progress, which holds the point.)
        let stale = |i: usize, wanted: Instant| {
            self.starts[i]
                .is_some_and(|t| t + self.segments[i].duration_time() + STALE_AFTER < wanted)
        };
        if let Some(wanted) = wanted
            && first < self.segments.len()
            && stale(first, wanted)
        {
            first = (0..self.segments.len())
                .find(|&i| {
                    self.starts[i].is_some_and(|t| t >= wanted)
                        && self.segments[i].starts_with_keyframe()
                })
                .unwrap_or(self.segments.len());
        }
        // Only a part that starts with a keyframe can start a clip: go back to the one that
        // leads the GOP, or, when that is gone (a GOP longer than the ring), on to the next.
        while first > 0
            && first < self.segments.len()
            && !self.segments[first].starts_with_keyframe()
        {
            first -= 1;
        }
        if first < self.segments.len() && !self.segments[first].starts_with_keyframe() {
            first = (first..self.segments.len())
                .find(|&i| self.segments[i].starts_with_keyframe())
                .unwrap_or(self.segments.len());
        }
        let segments = self
            .segments
            .iter()
            .cloned()
            .zip(self.starts.iter().copied())
            .skip(first)
            .collect();
        let achieved = self
            .starts
            .get(first)
            .copied()
            .flatten()
            .map_or(Duration::ZERO, |t| trigger.saturating_duration_since(t));
        Lookback { segments, achieved }
    }

    /// Parts newer than `sequence`, oldest first, each with when it started.
    pub fn since(&self, sequence: u64) -> Vec<(Arc<Segment>, Option<Instant>)> {
        self.segments
            .iter()
            .cloned()
            .zip(self.starts.iter().copied())
            .filter(|(s, _)| s.sequence > sequence)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::{Fragment, MediaData, Sample, SampleRun, TrackFragment};
    use crate::segmenter::build_init;
    use bytes::Bytes;

    /// A 1 s, 1000-byte part that started `at`, led by a keyframe.
    fn segment(sequence: u64, at: Instant) -> Arc<Segment> {
        part(sequence, at, true)
    }

    /// A 1 s, 1000-byte part that started `at`.
    fn part(sequence: u64, at: Instant, keyframe: bool) -> Arc<Segment> {
        let avc1 = {
            let mut v = vec![0u8; 86];
            v[..4].copy_from_slice(&86u32.to_be_bytes());
            v[4..8].copy_from_slice(b"avc1");
            Bytes::from(v)
        };
        let init = Arc::new(
            build_init(&[crate::source::TrackParams {
                kind: crate::mp4::TrackKind::Video,
                codec: crate::mp4::Codec::H264,
                timescale: 1000,
                sample_entry: avc1,
                width: 2,
                height: 2,
            }])
            .unwrap(),
        );
        let fragment = Fragment {
            sequence: sequence as u32,
            tracks: vec![TrackFragment {
                track_id: 1,
                sample_description_index: 1,
                base_decode_time: Some(sequence * 1000),
                runs: vec![SampleRun {
                    data_offset: 0,
                    samples: vec![Sample {
                        duration: 1000,
                        size: 1000,
                        flags: if keyframe {
                            0
                        } else {
                            crate::mp4::fragment::SAMPLE_NON_SYNC
                        },
                        composition_offset: 0,
                    }],
                }],
            }],
            data: MediaData::Memory(Bytes::from(vec![0u8; 1000])),
        };
        let mut s = Segment::new(sequence, 1, init, vec![fragment]);
        s.received = Some(at);
        Arc::new(s)
    }

    fn filled(n: u64, limits: RingLimits) -> (Ring, Instant) {
        let t0 = Instant::now();
        let mut ring = Ring::new(limits);
        for i in 0..n {
            ring.push(segment(i + 1, t0 + Duration::from_secs(i)));
        }
        (ring, t0)
    }

    #[test]
    fn keeps_just_enough_seconds() {
        let (ring, _) = filled(
            20,
            RingLimits {
                seconds: Duration::from_secs(5),
                bytes: 1 << 30,
            },
        );
        assert_eq!(ring.duration(), Duration::from_secs(5));
        assert_eq!(ring.len(), 5);
        assert_eq!(ring.newest_sequence(), Some(20));
        assert_eq!(ring.evicted(), 15);
    }

    #[test]
    fn bytes_cap_wins_over_seconds() {
        let (ring, _) = filled(
            20,
            RingLimits {
                seconds: Duration::from_secs(10),
                bytes: 3500,
            },
        );
        assert_eq!(ring.len(), 3);
        assert!(ring.bytes() <= 3500);
    }

    #[test]
    fn lookback_starts_at_the_newest_segment_at_or_before_the_point() {
        let (ring, t0) = filled(
            10,
            RingLimits {
                seconds: Duration::from_secs(10),
                bytes: 1 << 30,
            },
        );
        // Segments start at t0 + 0..9 s. Trigger at t0 + 9.5 s with 3 s lookback: the point is
        // t0 + 6.5 s, so the clip starts with the segment from t0 + 6 s.
        let trigger = t0 + Duration::from_millis(9500);
        let l = ring.lookback(trigger, Duration::from_secs(3));
        assert_eq!(l.segments.first().unwrap().0.sequence, 7);
        assert_eq!(l.segments.last().unwrap().0.sequence, 10);
        assert_eq!(l.achieved, Duration::from_millis(3500));
        // More than the ring holds: as far back as it reaches.
        let l = ring.lookback(trigger, Duration::from_secs(60));
        assert_eq!(l.segments.first().unwrap().0.sequence, 1);
        assert_eq!(l.achieved, Duration::from_millis(9500));
        // Zero lookback still gives the segment holding the trigger.
        let l = ring.lookback(trigger, Duration::ZERO);
        assert_eq!(
            l.segments
                .iter()
                .map(|(s, _)| s.sequence)
                .collect::<Vec<_>>(),
            [10]
        );
        assert_eq!(
            ring.since(8)
                .iter()
                .map(|(s, _)| s.sequence)
                .collect::<Vec<_>>(),
            [9, 10]
        );
    }

    #[test]
    fn lookback_skips_media_from_before_the_camera_went_quiet() {
        let (mut ring, t0) = filled(
            5,
            RingLimits {
                seconds: Duration::from_secs(10),
                bytes: 1 << 30,
            },
        );
        // Segments cover t0 + 0..5 s; the camera is then down until t0 + 100 s.
        let l = ring.lookback(t0 + Duration::from_secs(60), Duration::from_secs(3));
        assert!(l.segments.is_empty(), "stale media taken as pre-roll");
        assert_eq!(l.achieved, Duration::ZERO);
        // Back at t0 + 100 s: a trigger at t0 + 101.5 s with 3 s lookback takes only new media.
        ring.push(segment(6, t0 + Duration::from_secs(100)));
        ring.push(segment(7, t0 + Duration::from_secs(101)));
        let l = ring.lookback(t0 + Duration::from_millis(101_500), Duration::from_secs(3));
        assert_eq!(
            l.segments
                .iter()
                .map(|(s, _)| s.sequence)
                .collect::<Vec<_>>(),
            [6, 7]
        );
        assert_eq!(l.achieved, Duration::from_millis(1500));
    }

    #[test]
    fn later_arrivals_move_earlier_starts_back() {
        let t0 = Instant::now();
        let mut ring = Ring::new(RingLimits::default());
        // The first two segments were placed late (read in one batch after connecting); the
        // third shows where the stream really was.
        ring.push(segment(1, t0 + Duration::from_millis(900)));
        ring.push(segment(2, t0 + Duration::from_millis(1100)));
        ring.push(segment(3, t0 + Duration::from_secs(2)));
        assert_eq!(ring.oldest_start(), Some(t0));
        let l = ring.lookback(
            t0 + Duration::from_millis(2500),
            Duration::from_millis(1200),
        );
        assert_eq!(
            l.segments
                .iter()
                .map(|(s, _)| s.sequence)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(l.achieved, Duration::from_millis(1500));
    }

    /// Parts of 1 s in GOPs of 4: the ring keeps whole GOPs, as long as the rest covers the
    /// limit, and a lookback starts at a GOP's first part.
    #[test]
    fn evicts_whole_gops_and_starts_lookbacks_at_keyframes() {
        let t0 = Instant::now();
        let mut ring = Ring::new(RingLimits {
            seconds: Duration::from_secs(5),
            bytes: 1 << 30,
        });
        for i in 0..14u64 {
            ring.push(part(i + 1, t0 + Duration::from_secs(i), i % 4 == 0));
        }
        // GOPs start at parts 1, 5, 9, 13. The ring holds 9..14 (6 s): without the GOP at 9
        // it would hold 2 s, less than the limit.
        assert_eq!(
            ring.since(0)
                .iter()
                .map(|(s, _)| s.sequence)
                .collect::<Vec<_>>(),
            [9, 10, 11, 12, 13, 14]
        );
        assert_eq!(ring.evicted(), 8);
        // The point 3.5 s before 13.5 s lies in part 11 (10..11 s): decoding starts at 9.
        let l = ring.lookback(
            t0 + Duration::from_millis(13_500),
            Duration::from_millis(3500),
        );
        assert_eq!(l.segments.first().unwrap().0.sequence, 9);
        assert_eq!(l.achieved, Duration::from_millis(5500));
    }

    /// A stream whose keyframes stopped: its oldest parts go one by one past twice the limit,
    /// and a lookback can start only at a keyframe the ring still holds.
    #[test]
    fn a_lookback_never_starts_without_a_keyframe() {
        let t0 = Instant::now();
        let mut ring = Ring::new(RingLimits {
            seconds: Duration::from_secs(2),
            bytes: 1 << 30,
        });
        for i in 0..6u64 {
            ring.push(part(i + 1, t0 + Duration::from_secs(i), i == 0));
        }
        let held: Vec<u64> = ring.since(0).iter().map(|(s, _)| s.sequence).collect();
        assert_eq!(held, [4, 5, 6]);
        let l = ring.lookback(t0 + Duration::from_secs(6), Duration::from_secs(30));
        assert!(l.segments.is_empty());
        assert_eq!(l.achieved, Duration::ZERO);
        ring.push(part(7, t0 + Duration::from_secs(6), true));
        let l = ring.lookback(t0 + Duration::from_secs(7), Duration::from_secs(30));
        assert_eq!(
            l.segments
                .iter()
                .map(|(s, _)| s.sequence)
                .collect::<Vec<_>>(),
            [7]
        );
        assert_eq!(l.achieved, Duration::from_secs(1));
    }
}
