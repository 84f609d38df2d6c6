//! Matroska and WebM files (RFC 9559) as sources: `.mkv` recordings from ffmpeg, GStreamer,
//! OBS and NVRs, finished or cut short while recording (a Segment and Clusters of unknown
//! size). The file is read element by element on a thread of its own
//! ([`replay`](super::replay)), as an MPEG-TS file is.
//!
//! Small parts, one job each: [`ebml`] (element IDs and sizes), [`input`] (bounded reads),
//! [`tracks`] (EBML header, Info, Tracks), [`codecs`] (which tracks are recorded, as what),
//! [`block`] (block headers and lacing), [`demux`] (the walk through Segment and Clusters),
//! [`frames`] (blocks to frames: decode times, audio timing, the params).

mod block;
mod codecs;
mod demux;
mod ebml;
mod error;
mod frames;
mod input;
mod tracks;

use std::collections::HashSet;
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use super::replay::{self, Demux, Events};
use super::{SourceError, SourceErrorKind, SourceEvent, TrackParams};
use demux::Demuxer;
pub use error::MkvError;

/// A demuxer over a file.
struct Reader {
    path: PathBuf,
    demux: Demuxer<File>,
    said: HashSet<String>,
}

impl Reader {
    fn open(path: &Path) -> Result<Reader, SourceError> {
        let file = File::open(path).map_err(|e| {
            SourceError::new(SourceErrorKind::Io, format!("{}: {e}", path.display()))
        })?;
        let demux = Demuxer::new(file).map_err(|e| error(path, false, e))?;
        Ok(Reader {
            path: path.to_owned(),
            demux,
            said: HashSet::new(),
        })
    }
}

/// A reader error as the source's: a file that breaks the format before its media starts
/// can never be recorded (`Unsupported`, which no retry heals); damage later is the stream's.
fn error(path: &Path, started: bool, e: MkvError) -> SourceError {
    let kind = match &e {
        MkvError::Io { .. } => SourceErrorKind::Io,
        MkvError::Invalid { .. } | MkvError::Truncated { .. } if started => {
            SourceErrorKind::Protocol
        }
        _ => SourceErrorKind::Unsupported,
    };
    SourceError::new(kind, format!("{}: {e}", path.display()))
}

impl Demux for Reader {
    fn read(&mut self, out: &mut Vec<SourceEvent>) -> Result<bool, SourceError> {
        let result = self.demux.read(out);
        // Said once per file: a looped file would repeat them every pass.
        for w in self.demux.take_warnings() {
            let text = format!("{}: {w}", self.path.display());
            if self.said.insert(text.clone()) {
                tracing::warn!("{text}");
            }
        }
        result.map_err(|e| error(&self.path, self.demux.started(), e))
    }

    fn restart(&mut self) -> Result<(), SourceError> {
        let said = std::mem::take(&mut self.said);
        *self = Reader::open(&self.path)?;
        self.said = said;
        Ok(())
    }

    fn offset(&self) -> u64 {
        self.demux.offset()
    }

    fn missing(&self) -> String {
        self.demux.missing()
    }
}

/// Opens a Matroska/WebM file: reads up to its track parameters (refusing it at once when
/// its video is not H.264 or H.265) and starts the reader thread.
pub fn open(path: &Path, looping: bool) -> Result<(Vec<TrackParams>, Events), SourceError> {
    replay::open(path, Reader::open(path)?, looping)
}

/// Every event a Matroska file held in memory gives, at most `limit` of them, and the error
/// that ended it if one did: the reader on untrusted bytes, for fuzzing and tests.
pub fn events(data: &[u8], limit: usize) -> (Vec<SourceEvent>, Option<MkvError>) {
    let mut all = Vec::new();
    let mut demux = match Demuxer::new(Cursor::new(data)) {
        Ok(d) => d,
        Err(e) => return (all, Some(e)),
    };
    while all.len() < limit {
        let mut out = Vec::new();
        match demux.read(&mut out) {
            Ok(more) => {
                all.extend(out);
                if !more {
                    break;
                }
            }
            Err(e) => return (all, Some(e)),
        }
    }
    (all, None)
}
