//! What a clip keeps when writing it fails part-way: the disk filled up, or another I/O
//! error.
//!
//! A failed append cuts the file back to where its fragment began, so the `.partial` holds
//! only complete fragments: good media. Rather than leaving it for the next start, it is
//! finished at once through crash recovery ([`recover`]), which rebuilds the clip from what
//! the file holds and finalizes it like any recording. That needs almost no new space: the
//! header is rewritten in place (its room was reserved up front), and the index appended is
//! a few dozen bytes, which fit in what the cut fragment freed. If finishing fails too, the
//! `.partial` stays for `preroll check` or the next start of `preroll serve`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::recover::{final_name, recover};
use super::{ClipSummary, RecoverError};

/// What is left of a clip whose writing failed.
#[derive(Debug, Clone)]
pub enum Kept {
    /// No media had been written; no file is left.
    Nothing,
    /// The media written before the failure, finished as a playable (shorter) clip.
    Clip(Box<ClipSummary>),
    /// Finishing failed too: the media is in `partial`, to be recovered later.
    Partial { partial: PathBuf, why: String },
    /// The failure came after the finished clip got its name (syncing its directory): the
    /// clip is there, but its name may not survive a power cut.
    Named(PathBuf),
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::Nothing => write!(f, "no media had been written, so no file is left"),
            Kept::Clip(s) => write!(
                f,
                "the {:.3} s recorded before it were kept as {}",
                s.duration.as_secs_f64(),
                s.path.display()
            ),
            Kept::Partial { partial, why } => write!(
                f,
                "what was recorded is left in {} for `preroll check` or the next start ({why})",
                partial.display()
            ),
            Kept::Named(path) => write!(
                f,
                "the clip is at {}, but its name may not survive a power cut",
                path.display()
            ),
        }
    }
}

/// Finishes what a failed recording left in `partial`. The recording must be dropped first
/// (which closes the file and releases its lock; a recording without media removes it).
pub(crate) fn salvage(partial: &Path) -> Kept {
    match recover(partial) {
        Ok(r) => {
            tracing::info!(
                partial = %partial.display(),
                path = %r.summary.path.display(),
                duration = r.summary.duration.as_secs_f64(),
                bytes = r.summary.bytes,
                "kept what the failed clip had recorded"
            );
            Kept::Clip(Box::new(r.summary))
        }
        // Gone: renamed by a finish that failed only afterwards, or removed on drop by a
        // recording without media.
        Err(RecoverError::Gone { .. }) => match final_name(partial) {
            Some(path) if path.exists() => Kept::Named(path),
            _ => Kept::Nothing,
        },
        // Removed: it held no complete fragment.
        Err(RecoverError::Empty { .. }) => Kept::Nothing,
        Err(e) => {
            tracing::warn!(partial = %partial.display(), "could not finish the failed clip: {e}");
            Kept::Partial {
                partial: partial.to_owned(),
                why: e.to_string(),
            }
        }
    }
}
