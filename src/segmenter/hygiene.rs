//! Timestamp hygiene: what reaches the segmenter has timestamps, starts at a video keyframe,
//! and has strictly increasing decode times per track without wild jumps (the rules Home
//! Assistant's stream worker applies, documented in the README).

use std::time::Duration;

use crate::mp4::{Codec, TrackKind};
use crate::source::{Frame, TrackParams};

use super::adts::strip_adts;
use crate::source::reorder::Reorder;

#[derive(Debug, Clone)]
pub struct HygieneOptions {
    /// Frames without any timestamp are dropped; more than this many in a row end the
    /// connection (Home Assistant: 6).
    pub max_missing_timestamps: u32,
    /// A decode-time jump larger than this (either way) ends the connection, which then
    /// reconnects as a new stream (Home Assistant: 30 s).
    pub max_gap: Duration,
}

impl Default for HygieneOptions {
    fn default() -> Self {
        HygieneOptions {
            max_missing_timestamps: 6,
            max_gap: Duration::from_secs(30),
        }
    }
}

/// Why a stream must be dropped and reconnected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HygieneError {
    #[error("no timestamp in {0} consecutive frames")]
    NoTimestamps(u32),
    #[error(
        "timestamp discontinuity on track {track}: last dts = {last}, dts = {dts} (limit {limit:?})"
    )]
    Discontinuity {
        track: usize,
        last: i64,
        dts: i64,
        limit: Duration,
    },
}

/// Frames dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub no_timestamp: u64,
    pub before_keyframe: u64,
    pub non_increasing: u64,
    pub bad_audio: u64,
}

impl Dropped {
    pub fn total(&self) -> u64 {
        self.no_timestamp + self.before_keyframe + self.non_increasing + self.bad_audio
    }
}

#[derive(Debug)]
struct Track {
    kind: TrackKind,
    codec: Codec,
    timescale: u32,
    last_dts: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Hygiene {
    options: HygieneOptions,
    tracks: Vec<Track>,
    video: Option<usize>,
    missing_in_a_row: u32,
    seen_keyframe: bool,
    reorder: Reorder,
    pub dropped: Dropped,
}

impl Default for Track {
    fn default() -> Self {
        Track {
            kind: TrackKind::Video,
            codec: Codec::H264,
            timescale: 1,
            last_dts: None,
        }
    }
}

impl Hygiene {
    pub fn new(options: HygieneOptions) -> Self {
        Hygiene {
            options,
            ..Hygiene::default()
        }
    }

    /// Declares the tracks (again when they change; per-track state carries over).
    pub fn set_params(&mut self, params: &[TrackParams]) {
        let old = std::mem::take(&mut self.tracks);
        self.tracks = params
            .iter()
            .enumerate()
            .map(|(i, p)| Track {
                kind: p.kind,
                codec: p.codec,
                timescale: p.timescale,
                last_dts: old.get(i).and_then(|t| t.last_dts),
            })
            .collect();
        self.video = self.tracks.iter().position(|t| t.kind == TrackKind::Video);
    }

    /// Checks one frame; returns the frames now ready (video may be held back a few frames
    /// while its decode times are derived).
    pub fn push(&mut self, mut frame: Frame) -> Result<Vec<Frame>, HygieneError> {
        let Some(track) = self.tracks.get(frame.track) else {
            return Ok(Vec::new());
        };
        if frame.pts.is_none() && frame.dts.is_none() {
            self.missing_in_a_row += 1;
            self.dropped.no_timestamp += 1;
            if self.missing_in_a_row > self.options.max_missing_timestamps {
                return Err(HygieneError::NoTimestamps(self.missing_in_a_row));
            }
            return Ok(Vec::new());
        }
        self.missing_in_a_row = 0;
        if !self.seen_keyframe {
            if Some(frame.track) == self.video && frame.keyframe {
                self.seen_keyframe = true;
            } else {
                self.dropped.before_keyframe += 1;
                return Ok(Vec::new());
            }
        }
        if track.codec == Codec::Aac {
            match strip_adts(&frame.data) {
                Ok(Some(raw)) => frame.data = frame.data.slice_ref(raw),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("dropping audio frame: {e}");
                    self.dropped.bad_audio += 1;
                    return Ok(Vec::new());
                }
            }
        }
        if frame.pts.is_none() {
            frame.pts = frame.dts;
        }
        let ready = if frame.dts.is_none() && Some(frame.track) == self.video {
            if !self.reorder.accepts(frame.pts.unwrap_or(0)) {
                self.dropped.non_increasing += 1;
                return Ok(Vec::new());
            }
            self.reorder.push(frame)
        } else {
            if frame.dts.is_none() {
                frame.dts = frame.pts;
            }
            vec![frame]
        };
        self.validate(ready)
    }

    /// Releases the frames held for decode-time derivation (end of stream).
    pub fn flush(&mut self) -> Vec<Frame> {
        let held = self.reorder.flush();
        self.validate(held).unwrap_or_default()
    }

    fn validate(&mut self, frames: Vec<Frame>) -> Result<Vec<Frame>, HygieneError> {
        let mut out = Vec::with_capacity(frames.len());
        for f in frames {
            let Some(t) = self.tracks.get_mut(f.track) else {
                continue;
            };
            let dts = f.dts.unwrap_or(0);
            if let Some(last) = t.last_dts {
                let limit =
                    i128::from(t.timescale) * self.options.max_gap.as_millis() as i128 / 1000;
                if (i128::from(dts) - i128::from(last)).abs() > limit {
                    return Err(HygieneError::Discontinuity {
                        track: f.track,
                        last,
                        dts,
                        limit: self.options.max_gap,
                    });
                }
                if dts <= last {
                    self.dropped.non_increasing += 1;
                    continue;
                }
            }
            t.last_dts = Some(dts);
            out.push(f);
        }
        Ok(out)
    }
}
