//! The blocking side of continuous recording: parts into files, a new file at each length,
//! gap, new stream or new tracks, each finished file entered in the index.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use super::index::{Entry, unix_ms};
use super::{Archive, Message};
use crate::mp4::InitSegment;
use crate::recorder::{ClipPlace, Recording};
use crate::segment::Segment;

/// The file being written.
struct Open {
    recording: Recording,
    /// `<date>/<time>.mp4`
    file: String,
    start: SystemTime,
    stream: u64,
    init: Arc<InitSegment>,
    last: u64,
}

pub(super) fn write(archive: &Archive, mut rx: mpsc::Receiver<Message>) {
    let mut open: Option<Open> = None;
    // Where the next file starts when it continues the one just cut for its length: at that
    // file's end on the media's own clock. Arrival times (the fallback) are estimates, up to a
    // read batch off; the media's clock makes files that follow each other meet exactly.
    let mut carry: Option<SystemTime> = None;
    while let Some(message) = rx.blocking_recv() {
        let (segment, started, wall) = match message {
            Message::Part {
                segment,
                started,
                wall,
            } => (segment, started, wall),
            Message::Close => {
                finish(archive, open.take());
                carry = None;
                continue;
            }
        };
        if let Some(o) = &open {
            let gap = segment.sequence > o.last + 1;
            let other_stream = segment.stream_id != o.stream;
            let other_tracks =
                !Arc::ptr_eq(&segment.init, &o.init) && segment.init.raw != o.init.raw;
            let long_enough =
                segment.starts_with_keyframe() && o.recording.duration() >= archive.file_length;
            if gap || other_stream || other_tracks {
                finish(archive, open.take());
                carry = None;
            } else if long_enough {
                carry = finish(archive, open.take());
            }
        }
        if open.is_none() {
            // A file starts at a keyframe: what comes before the next one cannot be decoded.
            if !segment.starts_with_keyframe() {
                continue;
            }
            open = start(archive, &segment, carry.take().unwrap_or(wall));
        }
        let Some(o) = open.as_mut() else { continue };
        o.last = segment.sequence;
        if let Err(e) = write_part(o, &segment, started) {
            tracing::warn!(
                camera = archive.camera,
                file = o.file,
                "continuous recording: {e}; the file is finished with what it has"
            );
            finish(archive, open.take());
        }
    }
    finish(archive, open.take());
}

fn write_part(
    o: &mut Open,
    segment: &Segment,
    started: Option<Instant>,
) -> Result<(), crate::recorder::RecordError> {
    match o.recording.write_part(segment, started, None) {
        Ok(_) => Ok(()),
        Err(e) if e.is_fatal() => Err(e),
        Err(e) => {
            tracing::debug!(file = o.file, "continuous recording: part refused: {e}");
            Ok(())
        }
    }
}

/// A new file for media starting at `wall`.
fn start(archive: &Archive, segment: &Arc<Segment>, wall: SystemTime) -> Option<Open> {
    let date = crate::time::date(wall);
    let name = format!("{}.mp4", crate::time::time_of_day(wall));
    let dir = match archive.index.dir().descend(Path::new(&date), true) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(camera = archive.camera, "continuous recording: {e}");
            return None;
        }
    };
    let place = ClipPlace {
        dir,
        name: OsString::from(&name),
    };
    match Recording::create_at(place, archive.options.clone()) {
        Ok(recording) => Some({
            archive.set_in_progress(Some((format!("{date}/{name}"), wall)));
            Open {
                recording,
                file: format!("{date}/{name}"),
                start: wall,
                stream: segment.stream_id,
                init: segment.init.clone(),
                last: segment.sequence,
            }
        }),
        Err(e) => {
            tracing::warn!(
                camera = archive.camera,
                "continuous recording {date}/{name}: {e}"
            );
            None
        }
    }
}

/// Finishes a file and enters it in the index; a file without media leaves nothing.
/// Returns when its media ends, once it is finished.
fn finish(archive: &Archive, open: Option<Open>) -> Option<SystemTime> {
    let o = open?;
    archive.set_in_progress(None);
    if !o.recording.has_media() {
        o.recording.discard();
        return None;
    }
    let partial = o.recording.partial_path().to_owned();
    match o.recording.finish() {
        Ok(summary) => {
            let start_ms = unix_ms(o.start);
            let entry = Entry {
                file: o.file.clone(),
                start_ms,
                end_ms: start_ms + summary.duration.as_millis() as u64,
                bytes: summary.bytes,
            };
            if let Err(e) = archive.index.add(entry) {
                // The file is whole; the next start enters it from its header.
                tracing::warn!(
                    camera = archive.camera,
                    file = o.file,
                    "continuous index: {e}"
                );
            }
            Some(o.start + summary.duration)
        }
        Err(e) => {
            tracing::warn!(
                camera = archive.camera,
                partial = %partial.display(),
                "finishing a continuous recording: {e}; it is recovered at the next start"
            );
            None
        }
    }
}
