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

/// Why an interrupted clip (`<path>.partial`) was not salvaged. The `.partial` is left as it
/// was in every case but [`RecoverError::Empty`] (removed: it held no media) and
/// [`RecoverError::Finish`] (see there).
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The name does not end in `.partial`, so there is no final name to give it.
    #[error("{}: not a .partial file", path.display())]
    NotPartial { path: PathBuf },

    /// A directory, symlink, device or other non-regular file.
    #[error("{}: not a regular file; left alone", partial.display())]
    NotAFile { partial: PathBuf },

    /// It disappeared meanwhile (its recording finished, or something removed it).
    #[error("{}: gone (finished or removed meanwhile)", partial.display())]
    Gone { partial: PathBuf },

    /// It held no complete fragment (only a header, or less), so no media is lost: it was
    /// removed (or, from a dry run, would be).
    #[error("{}: no complete fragment ({why}); {}", partial.display(), if *removed { "removed" } else { "would be removed" })]
    Empty {
        partial: PathBuf,
        /// Its size.
        bytes: u64,
        /// Where it ends.
        why: String,
        removed: bool,
    },

    /// A running recorder holds its lock: the clip is still being written.
    #[error("{}: in progress (locked by a running recorder)", partial.display())]
    Locked { partial: PathBuf },

    /// The final name is taken; nothing is overwritten.
    #[error("{}: the final name {} already exists; leaving the partial file as it is", partial.display(), path.display())]
    FinalExists { partial: PathBuf, path: PathBuf },

    /// The file's header is not one preroll writes, or cannot be parsed. It is left untouched.
    #[error("{}: not a preroll clip or unreadable header, left untouched: {source}", partial.display())]
    NotOurs { partial: PathBuf, source: Mp4Error },

    /// The header rebuilt from the file does not describe what its fragments reference, so
    /// finalizing would write a wrong file. It is left untouched.
    #[error("{}: cannot be finalized safely, left untouched: {problem}", partial.display())]
    Mismatch { partial: PathBuf, problem: String },

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// Cutting or finalizing failed part-way (I/O). The `.partial` stays, cut back to its
    /// last complete fragment; running recovery again finishes the job.
    #[error("finalizing: {0}")]
    Finish(#[from] RecordError),
}

impl RecoverError {
    /// True when the file was passed over rather than found faulty: it is still being
    /// written, or it went away on its own.
    pub fn is_skip(&self) -> bool {
        matches!(
            self,
            RecoverError::Locked { .. } | RecoverError::Gone { .. }
        )
    }
}
