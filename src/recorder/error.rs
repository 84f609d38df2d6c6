use std::io;
use std::path::PathBuf;

use crate::mp4::Mp4Error;

/// Why a recording, or one segment of it, could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The clip path is taken; an existing file is never truncated.
    #[error("{} already exists; refusing to overwrite it", path.display())]
    Exists { path: PathBuf },

    /// `<path>.partial` exists: another recording to this path is running, or an interrupted
    /// one is waiting to be recovered.
    #[error("{} exists: a recording to {} is already in progress (or an interrupted one awaits recovery)", partial.display(), path.display())]
    InProgress { path: PathBuf, partial: PathBuf },

    /// No segment held any media, so there is no clip (and no file is left behind).
    #[error("recording failed to capture anything")]
    NothingCaptured,

    /// The segment's init declares no video track; a clip needs one.
    #[error("segment {sequence} (stream {stream_id}) has no video track")]
    NoVideo { sequence: u64, stream_id: u64 },

    /// The reserved header space is used up by codec changes; the clip so far is intact.
    #[error(
        "segment {sequence}: the clip header has no room left for another codec change ({needed} bytes needed, {available} reserved)"
    )]
    HeaderFull {
        sequence: u64,
        needed: usize,
        available: usize,
    },

    /// A segment whose boxes do not make sense; the clip so far is intact.
    #[error("segment {sequence}: {source}")]
    BadSegment { sequence: u64, source: Mp4Error },

    /// A segment whose media cannot be placed on the clip's timeline.
    #[error("segment {sequence}: {problem}")]
    BadTiming { sequence: u64, problem: String },

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl RecordError {
    /// True when the clip itself can no longer be written (as opposed to one segment being
    /// refused while the clip stays good).
    pub fn is_fatal(&self) -> bool {
        matches!(self, RecordError::Io { .. })
    }
}
