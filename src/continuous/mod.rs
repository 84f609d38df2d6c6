//! Continuous recording: a camera's stream written to disk all the time, from the same parts
//! its ring holds (no second connection, no re-encoding), as files of about
//! `continuous_file_seconds` cut at keyframes:
//! `<recordings>/continuous/<camera>/<UTC date>/<UTC time>.mp4`.
//!
//! Each file is written as a clip is (a `.partial` that is valid fMP4 after every part,
//! finished progressive), so a `kill -9` loses at most the part in progress and the
//! `.partial` is recovered at the next start. A file ends at its length (at the next
//! keyframe), at a gap (the ring dropped parts, or the camera reconnected), at a change of
//! tracks, when the camera goes down, and at shutdown: each file is one unbroken range, and
//! the spaces between files are the gaps. [`index`] says what is recorded when.

pub mod export;
pub mod gaps;
pub mod index;
mod lookback;
mod prune;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::recorder::{ClipOptions, Dir};
use crate::ring::Feed;
use crate::segment::Segment;

pub use export::{ExportError, Exported, export};
pub use gaps::{GAP_TOLERANCE, Gap, gaps};
pub use index::{Entry, Index};
pub use prune::{Pruned, prune};

/// The folder, in the recordings directory, that holds continuous recordings.
pub const DIR: &str = "continuous";

/// Parts on their way to the writer (about 30 s at the default part length): a disk slower
/// than the camera for longer than that leaves the rest in the ring, bounded there.
const WRITER_QUEUE: usize = 64;

/// One camera's continuous recording.
#[derive(Debug)]
pub struct Archive {
    pub camera: String,
    pub index: Index,
    /// Files are cut at the first keyframe after this much media.
    pub file_length: Duration,
    pub options: ClipOptions,
    /// The file being written and when its media starts.
    current: std::sync::Mutex<Option<(String, SystemTime)>>,
}

impl Archive {
    /// Opens (creating it) `<recordings>/continuous/<camera>`, recovers files a crash left
    /// unfinished there, and reads or rebuilds the index.
    pub fn open(
        recordings: &Dir,
        camera: &str,
        file_length: Duration,
        options: ClipOptions,
    ) -> std::io::Result<Archive> {
        let dir = recordings.descend(&Path::new(DIR).join(camera), true)?;
        for place in crate::recorder::find_partials_beneath(&dir)? {
            let path = place.path();
            match crate::recorder::recover_at(place) {
                Ok(r) => tracing::info!(
                    camera,
                    path = %r.summary.path.display(),
                    duration = r.summary.duration.as_secs_f64(),
                    "recovered an interrupted continuous recording"
                ),
                Err(e) => tracing::warn!(camera, path = %path.display(), "{e}"),
            }
        }
        Ok(Archive {
            camera: camera.to_owned(),
            index: Index::open(dir)?,
            file_length,
            options,
            current: std::sync::Mutex::new(None),
        })
    }
}

impl Archive {
    /// The file being written and when its media starts, if one is.
    pub fn in_progress(&self) -> Option<(String, SystemTime)> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The files holding media of `[start, end)` (wall clock), oldest first, and last the
    /// file being written (`.partial`, its media valid up to its last part; its end is
    /// `now`).
    pub fn files_between(&self, start: SystemTime, end: SystemTime, now: SystemTime) -> Vec<Entry> {
        let mut files: Vec<Entry> = self
            .index
            .entries()
            .into_iter()
            .filter(|e| e.end() > start && e.start() < end)
            .collect();
        if let Some((file, began)) = self.in_progress()
            && began < end
            && now > start
        {
            files.push(Entry {
                file: format!("{file}{}", crate::recorder::PARTIAL_SUFFIX),
                start_ms: index::unix_ms(began),
                end_ms: index::unix_ms(now),
                bytes: 0,
            });
        }
        files
    }

    fn set_in_progress(&self, now: Option<(String, SystemTime)>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
}

/// What the follower hands the writer.
enum Message {
    Part {
        segment: Arc<Segment>,
        started: Option<Instant>,
        /// `started` on the wall clock (for the file's name and the index).
        wall: SystemTime,
    },
    /// The camera is down: finish the file in progress (nothing continues it).
    Close,
}

/// The wall-clock time of an instant of the monotonic clock (in the past).
fn wall(at: Option<Instant>) -> SystemTime {
    let now = SystemTime::now();
    match at {
        Some(at) => now
            .checked_sub(Instant::now().saturating_duration_since(at))
            .unwrap_or(now),
        None => now,
    }
}

/// Records `feed` into `archive` until `stopping` turns true or the feed ends; finishes the
/// file in progress before returning.
pub async fn run<F: Feed + ?Sized>(
    feed: Arc<F>,
    archive: Arc<Archive>,
    mut stopping: watch::Receiver<bool>,
) {
    // Not `feed.follow()`: following closely makes the camera's reads 20 ms ticks instead
    // of 250 ms batches, which tripled what continuous recording costs (0.37 s against 0.14 s
    // of CPU per stream-minute at 4 Mb/s, BENCHMARKS.md). A kill then loses the part in
    // progress and at most one batch the kernel still held.
    let mut changes = feed.subscribe();
    let (tx, rx) = mpsc::channel::<Message>(WRITER_QUEUE);
    let writer = {
        let archive = archive.clone();
        tokio::task::spawn_blocking(move || writer::write(&archive, rx))
    };
    let mut last: Option<u64> = None;
    let mut live = false;
    loop {
        changes.borrow_and_update();
        let parts = match last {
            // The whole ring: what the camera sent before recording started is recorded too.
            None => {
                let (lookback, _) = feed.lookback(Instant::now(), Duration::from_secs(86_400));
                lookback.segments
            }
            Some(l) => feed.since(l),
        };
        for (segment, started) in parts {
            last = Some(segment.sequence);
            let message = Message::Part {
                wall: wall(started),
                segment,
                started,
            };
            if tx.send(message).await.is_err() {
                return;
            }
        }
        let state = feed.state();
        if live && !state.live {
            let _ = tx.send(Message::Close).await;
        }
        live = state.live;
        if state.ended || *stopping.borrow() {
            break;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = stopping.changed() => {}
            // The camera's state changes without a part (it goes down).
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    drop(tx);
    if let Err(e) = writer.await {
        tracing::warn!(camera = archive.camera, "continuous recording writer: {e}");
    }
}
