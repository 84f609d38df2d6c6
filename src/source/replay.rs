//! The reader thread behind the stream file formats (MPEG-TS, Matroska): a demuxer reads the
//! file in order on a thread of its own, and its frames and parameter changes go through a
//! bounded channel to the [`FileSource`](super::FileSource), which paces them like every
//! other file. What is shared lives here: reading up to the first track parameters (or
//! refusing the file), putting the tracks in decode-time order, and looping with timestamps
//! that go on.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::interleave::Interleave;
use super::passes::Passes;
use super::{SourceError, SourceErrorKind, SourceEvent, TrackParams};

/// What the reader thread sends, in file order.
pub type Events = mpsc::Receiver<Result<SourceEvent, SourceError>>;

/// Events the reader may run ahead of the consumer.
const AHEAD: usize = 64;

/// How much of a file is read looking for the first parameters before it is refused: a
/// camera repeats its SPS/PPS at every keyframe, seconds apart.
const OPEN_SCAN: u64 = 32 << 20;

/// A file demuxer as the reader thread drives it.
pub trait Demux: Send + 'static {
    /// Reads until at least one event is out, or the end (`false`).
    fn read(&mut self, out: &mut Vec<SourceEvent>) -> Result<bool, SourceError>;
    /// Back to the start of the file, with fresh state, for the next pass.
    fn restart(&mut self) -> Result<(), SourceError>;
    /// Bytes of the file read so far.
    fn offset(&self) -> u64;
    /// Why no track parameters came yet ("an MPEG-TS file with no program table (PAT)
    /// found"), for a file that ends (or runs too long) before them.
    fn missing(&self) -> String;
}

/// Reads up to the first track parameters (refusing the file when they do not come) and
/// starts the reader thread. Returns those params and the events after them.
pub fn open<D: Demux>(
    path: &Path,
    mut reader: D,
    looping: bool,
) -> Result<(Vec<TrackParams>, Events), SourceError> {
    let mut events = Vec::new();
    let params = loop {
        let more = reader.read(&mut events)?;
        if let Some(SourceEvent::Params(p)) = events.first() {
            let p = p.clone();
            events.remove(0);
            break p;
        }
        // Frames never come before the first params; anything else is not expected either.
        events.clear();
        if !more || reader.offset() > OPEN_SCAN {
            let within = if more {
                format!(" in its first {} MiB", OPEN_SCAN >> 20)
            } else {
                String::new()
            };
            return Err(SourceError::new(
                SourceErrorKind::Unsupported,
                format!("{}: {}{within}", path.display(), reader.missing()),
            ));
        }
    };
    let (tx, rx) = mpsc::channel(AHEAD);
    let first = params.clone();
    let path = path.to_owned();
    std::thread::spawn(move || replay(path, looping, reader, events, first, tx));
    Ok((params, rx))
}

/// The reader thread: events in file order, passes of a looped file shifted to keep time
/// going, params sent again only when they differ from the last sent.
fn replay<D: Demux>(
    path: PathBuf,
    looping: bool,
    mut reader: D,
    mut events: Vec<SourceEvent>,
    mut last_params: Vec<TrackParams>,
    tx: mpsc::Sender<Result<SourceEvent, SourceError>>,
) {
    let mut passes = Passes::new(last_params.iter().map(|p| p.timescale).collect());
    // Per track, the last decode time of this pass: the last frame's length is taken to be
    // the one before it, for the length of a pass.
    let mut last_dts: Vec<Option<i64>> = vec![None; last_params.len()];
    let mut last_len: Vec<i64> = vec![0; last_params.len()];
    let mut order = Interleave::new(last_params.iter().map(|p| p.timescale).collect());
    let mut ready = Vec::new();
    loop {
        let mut out = Vec::new();
        for event in events.drain(..) {
            match event {
                SourceEvent::Params(p) if p == last_params => {}
                SourceEvent::Params(p) => {
                    // Frames before new params were made under the old ones.
                    order.flush(&mut ready);
                    out.extend(ready.drain(..).map(SourceEvent::Frame));
                    last_params = p.clone();
                    out.push(SourceEvent::Params(p));
                }
                SourceEvent::Frame(mut f) => {
                    if let Some(dts) = f.dts {
                        let t = f.track;
                        if let (Some(last), Some(prev)) = (last_dts.get_mut(t), last_len.get_mut(t))
                        {
                            if let Some(l) = *last
                                && dts > l
                            {
                                *prev = dts - l;
                            }
                            *last = Some(dts);
                            passes.note(t, dts, f.duration.map_or(*prev, i64::from));
                        }
                        let offset = passes.offset(t);
                        f.dts = Some(dts.saturating_add(offset));
                        f.pts = f.pts.map(|p| p.saturating_add(offset));
                    }
                    order.push(f, &mut ready);
                    out.extend(ready.drain(..).map(SourceEvent::Frame));
                }
                other => out.push(other),
            }
        }
        for event in out {
            if tx.blocking_send(Ok(event)).is_err() {
                return; // the source was dropped
            }
        }
        let result = match reader.read(&mut events) {
            Ok(true) => Ok(()),
            Ok(false) if !looping => {
                order.flush(&mut ready);
                for f in ready.drain(..) {
                    if tx.blocking_send(Ok(SourceEvent::Frame(f))).is_err() {
                        return;
                    }
                }
                return;
            }
            Ok(false) => passes
                .next_pass()
                .map_err(|e| {
                    SourceError::new(
                        SourceErrorKind::Unsupported,
                        format!("{}: {e}", path.display()),
                    )
                })
                .and_then(|()| {
                    last_dts.iter_mut().for_each(|d| *d = None);
                    reader.restart()
                }),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    }
}
