//! Sources: where frames come from. RTSP cameras, file replay, and the built-in demo all yield
//! the same thing — track parameters, then frames — behind the [`Source`] trait, so every stage
//! after this one is the same for all of them and can be tested with real files.

mod aac;
mod arrival;
mod batching;
mod demo;
mod error;
mod file;
mod interleave;
mod mkv;
mod passes;
mod redact;
pub(crate) mod reorder;
mod replay;
mod rtsp;
pub mod sniff;
mod spec;
mod ts;
mod video;

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;

use crate::mp4::{Codec, TrackKind};

pub use batching::{Batching, Hurry};
pub use demo::demo_source;
pub use error::{SourceError, SourceErrorKind};
pub use file::{FileSource, Pace};
pub use mkv::{MkvError, events as matroska_events};
pub use redact::{camera_text, redact_url};
#[doc(hidden)]
pub use rtsp::hidden as rtsp_hidden;
pub use rtsp::{RtspOptions, RtspSource, Transport};
pub use spec::{AnySource, SourceSpec};

/// What a track carries, as the segmenter needs it to build an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackParams {
    pub kind: TrackKind,
    pub codec: Codec,
    /// Ticks per second of the track's timestamps (90 kHz for RTSP video, the sample rate
    /// for audio).
    pub timescale: u32,
    /// The whole `stsd` sample entry box (`avc1`/`hvc1`/`mp4a`/`fLaC` with its
    /// configuration).
    pub sample_entry: Bytes,
    /// Pixels (video), 0 for audio.
    pub width: u32,
    pub height: u32,
}

/// One coded frame (a picture or an audio access unit).
#[derive(Debug, Clone)]
pub struct Frame {
    /// Index into the latest [`SourceEvent::Params`].
    pub track: usize,
    /// Presentation time in track ticks; `None` when the source could not tell.
    pub pts: Option<i64>,
    /// Decode time in track ticks when the source knows it (files); RTSP carries presentation
    /// times only, and the segmenter derives decode times.
    pub dts: Option<i64>,
    /// Length in track ticks when the source knows it; otherwise it is taken from the next
    /// frame.
    pub duration: Option<u32>,
    pub keyframe: bool,
    /// Video: NAL units each preceded by a 4-byte big-endian length. Audio: one raw AAC
    /// access unit (ADTS headers are removed before segmenting), or one FLAC frame.
    pub data: Bytes,
    /// When the frame arrived — or, for a file replayed flat out, when it would have.
    pub received: Instant,
}

#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// The tracks, sent first and again whenever they change (new SPS/PPS, new resolution).
    Params(Vec<TrackParams>),
    Frame(Frame),
    /// Packets the transport lost before the next frame (RTP sequence numbers that never
    /// arrived). Counted, not repaired: the segmenter cuts at keyframes, and a decoder
    /// conceals the damage up to the next one.
    Lost(u32),
}

/// A connected stream. `next` yields events until the stream ends (`Ok(None)`) or fails.
pub trait Source: Send {
    fn next(&mut self) -> impl Future<Output = Result<Option<SourceEvent>, SourceError>> + Send;

    /// The audio the source itself carries, as sent ("PCMU 8000 Hz mono", "AAC 48000 Hz
    /// mono"), known once connected; kept or not. What a clip stores is in the
    /// [`TrackParams`] (for G.711 and L16: FLAC).
    fn source_audio(&self) -> Option<String> {
        None
    }
}
