//! A clip from a live camera: the lookback from its ring, then what follows, until the
//! requested duration after the trigger is covered.
//!
//! The recording follows the ring by sequence number, taking `Arc`s of its parts (never
//! copies), and hands them to a blocking thread that writes the file. Presentation starts at
//! `trigger - lookback` (see `presentation`) and ends at the requested end or the moment the
//! clip was stopped: the part holding that instant is cut there, so a clip ends within a frame
//! of it, waiting at most for that part rather than for the next keyframe.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use crate::ring::{Feed, FeedState};
use crate::segment::Segment;

use super::salvage::{Kept, salvage};
use super::{ClipSummary, RecordError, Recording};

/// The longest a connected camera may take to deliver the part holding a clip's end. Parts
/// come every half second or so; a camera that sends nothing for its stall timeout (10 s by
/// default) is disconnected, and a clip stops waiting for a camera that is down.
const SEGMENT_SLACK: Duration = Duration::from_secs(30);

/// The longest a clip waits for the part in progress before taking its lookback: a part
/// (0.5 s), the ingest tick (0.25 s) and some slack.
const PART_WAIT: Duration = Duration::from_secs(1);

/// Parts on their way to a clip's writer (about 16 s of media at the default part length).
const WRITER_QUEUE: usize = 32;

/// How often a waiting clip looks at the camera's state again when nothing else wakes it.
const RECHECK: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct ClipRequest {
    /// Media after the trigger.
    pub duration: Duration,
    /// Media before the trigger.
    pub lookback: Duration,
}

/// Media older than the ring (a camera's continuous recording on disk): where a clip's
/// lookback goes on when the ring does not reach back far enough.
pub trait Older: Send + Sync {
    /// Hands `send` the parts presented from `from` up to `until` (instants of the camera's
    /// arrival clock), oldest first, their media cut before the frame `until_frame` (the
    /// ring's first; found by its bytes, as the older media's times are estimates of the
    /// same clock) or, when it is not found, at `until`; `send` returns false when no more
    /// are wanted. Blocks (file reads).
    fn parts(
        &self,
        from: Instant,
        until: Instant,
        until_frame: Option<Bytes>,
        send: &mut dyn FnMut(Segment) -> bool,
    ) -> OlderParts;
}

/// What [`Older::parts`] sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OlderParts {
    /// When the first part sent starts.
    pub first: Option<Instant>,
    /// The media sent ends where `until_frame` begins: the ring continues it exactly. When
    /// false, the two meet by their times only, which is a discontinuity.
    pub meets_frame: bool,
}

/// A part on its way to the writer.
struct Part {
    segment: Arc<Segment>,
    /// When it started, as the ring knows it.
    started: Option<Instant>,
    /// The clip ends inside it, here.
    until: Option<Instant>,
    /// Its stream continues the media before it exactly (the ring after a lookback read
    /// from disk up to the ring's first part).
    joins: bool,
}

/// What a caller can change while a clip records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClipControl {
    /// End now, keeping what was recorded.
    pub stop: bool,
    /// Seconds added to the requested duration.
    pub extended: Duration,
}

/// Where a live clip is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LivePhase {
    #[default]
    Recording,
    /// No more media is taken; the writer is making the file durable.
    Finalizing,
}

/// Progress reported while a live clip records.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveProgress {
    pub phase: LivePhase,
    /// Pre-roll taken from the ring.
    pub preroll: Duration,
    /// Media after the trigger handed to the writer so far.
    pub after_trigger: Duration,
    /// Media bytes handed to the writer so far.
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct LiveClip {
    pub summary: ClipSummary,
    /// Pre-roll actually captured (the ring may have held less than asked).
    pub preroll: Duration,
    /// Set when the clip ended before its duration (stopped, camera ended or down).
    pub cut_short: Option<String>,
    /// Segments the ring dropped before this clip could write them.
    pub lost_segments: u64,
    /// From the end of recording to the clip being durable under its name.
    pub finalize_time: Duration,
}

/// A live clip that failed, with what is known of why.
#[derive(Debug)]
pub struct LiveError {
    pub error: RecordError,
    /// Why recording ended, when it ended early (e.g. the camera was down).
    pub cut_short: Option<String>,
    /// After a write failed (e.g. the disk is full): what became of the media written
    /// before. `None` when no write failed.
    pub kept: Option<Kept>,
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(kept) = &self.kept {
            write!(f, "; {kept}")?;
        }
        if let Some(why) = &self.cut_short {
            write!(f, " ({why})")?;
        }
        Ok(())
    }
}

impl std::error::Error for LiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Records a clip from `camera` (through the ring's seam) into `recording`, triggered at
/// `trigger`. `control` stops or
/// extends it (what was recorded is always finalized). When the camera is down, the clip
/// waits at most until the requested end for media; with none, it fails with
/// [`RecordError::NothingCaptured`] and the camera's state as the reason.
pub async fn record_live<F: Feed + ?Sized>(
    camera: &F,
    mut recording: Recording,
    trigger: Instant,
    request: ClipRequest,
    mut control: watch::Receiver<ClipControl>,
    older: Option<Arc<dyn Older>>,
    progress: &mut (dyn FnMut(LiveProgress) + Send),
) -> Result<LiveClip, LiveError> {
    // Each part is to reach the file as soon as it is complete: a crash then loses at most
    // the part in progress.
    let closely = camera.follow();
    // Presentation starts at the requested instant when the ring reaches it; decoding
    // starts at the keyframe before it.
    if let Some(wanted) = trigger.checked_sub(request.lookback) {
        recording.present_from(wanted);
    }
    // The requested point may lie in the part in progress. That part may start a new GOP,
    // and the clip should then start there rather than a GOP earlier: wait for it (at most
    // a part and a tick, and not for a camera that is down).
    if let Some(wanted) = trigger.checked_sub(request.lookback) {
        let mut updates = camera.subscribe();
        let deadline = Instant::now() + PART_WAIT;
        loop {
            let newest_end = camera.newest_end();
            let now = Instant::now();
            if newest_end.is_none_or(|end| end >= wanted) || now >= deadline || !camera.state().live
            {
                break;
            }
            let _ = tokio::time::timeout(deadline - now, updates.changed()).await;
        }
    }
    // One look at the ring for both: the lookback, and the newest part it holds, after
    // which live media continues. The lookback can be empty while the ring is not (the
    // newest part ended before the requested point, so the part in progress holds it);
    // following from the ring's start would then take the whole ring as pre-roll.
    let (lookback, newest) = camera.lookback(trigger, request.lookback);
    // Bounded: a writer held up by a slow disk holds at most this many parts; the rest stay
    // in the ring (bounded too) until it catches up, and only what the ring dropped by then
    // is lost (counted below).
    let (tx, rx) = mpsc::channel::<Part>(WRITER_QUEUE);
    let writer = tokio::task::spawn_blocking(move || write_all(recording, rx));

    tracing::debug!(
        camera = camera.name(),
        segments = lookback.segments.len(),
        preroll = ?lookback.achieved,
        "lookback"
    );
    // What the ring does not reach back to comes from disk, up to where the ring's media
    // starts, so the two meet without a gap or a frame twice.
    let wanted = trigger.checked_sub(request.lookback);
    let ring_first = lookback.segments.first();
    let ring_from = ring_first.and_then(|(_, started)| *started);
    let ring_frame = ring_first.and_then(|(s, _)| s.first_video_sample());
    let from_disk = match (older, wanted, ring_from) {
        (Some(older), Some(wanted), Some(ring_from)) if ring_from > wanted => {
            let disk = tx.clone();
            tokio::task::spawn_blocking(move || {
                older.parts(wanted, ring_from, ring_frame, &mut |segment| {
                    let started = segment.received;
                    disk.blocking_send(Part {
                        segment: Arc::new(segment),
                        started,
                        until: None,
                        joins: false,
                    })
                    .is_ok()
                })
            })
            .await
            .unwrap_or_default()
        }
        _ => OlderParts::default(),
    };
    let mut last = newest;
    // With no segment from the ring, the first live one can still start before the trigger:
    // its start is then the pre-roll.
    let mut preroll_from_live = lookback.segments.is_empty();
    let mut report = LiveProgress {
        preroll: match (from_disk.first, wanted) {
            (Some(first), Some(wanted)) => trigger.saturating_duration_since(first.max(wanted)),
            _ => lookback.achieved,
        },
        ..LiveProgress::default()
    };
    let mut joins = from_disk.first.is_some() && from_disk.meets_frame;
    // The ring may already hold the requested end (a trigger in the past, or a feed that
    // runs ahead of it): the lookback is then cut there like live media.
    let asked = trigger + request.duration + control.borrow().extended;
    let mut ended_in_lookback = false;
    for (s, started) in lookback.segments {
        let starts = started.unwrap_or(trigger);
        if starts >= asked {
            ended_in_lookback = true;
            break;
        }
        let seg_end = starts + s.duration_time();
        report.after_trigger = seg_end.min(asked).saturating_duration_since(trigger);
        report.bytes += s.media_bytes();
        let last = seg_end >= asked;
        let _ = tx
            .send(Part {
                segment: s,
                started,
                until: last.then_some(asked),
                joins: std::mem::take(&mut joins),
            })
            .await;
        if last {
            ended_in_lookback = true;
            break;
        }
    }
    progress(report);
    let mut updates = camera.subscribe();
    let mut lost = 0u64;
    // When a stop was asked for: the clip ends there, once the part holding it is in.
    let mut stopped_at: Option<Instant> = None;
    let mut controlled = true;
    let cut_short = loop {
        if ended_in_lookback {
            break None;
        }
        if tx.is_closed() {
            // The writer gave up (its error is reported below).
            break None;
        }
        let ctl = *control.borrow_and_update();
        if ctl.stop && stopped_at.is_none() {
            stopped_at = Some(Instant::now());
        }
        let asked = trigger + request.duration + ctl.extended;
        let end = stopped_at.map_or(asked, |at| at.min(asked));
        let stop_reason = || {
            stopped_at
                .filter(|at| *at < asked)
                .map(|_| "stopped".to_owned())
        };
        let fresh = camera.since(last.unwrap_or(0));
        let mut done = false;
        for (s, started) in fresh {
            if let Some(l) = last
                && s.sequence > l + 1
            {
                lost += s.sequence - l - 1;
            }
            last = Some(s.sequence);
            let starts = started.unwrap_or(trigger);
            if starts >= end {
                // Starts after the requested end: not part of the clip.
                done = true;
                break;
            }
            if preroll_from_live {
                report.preroll = trigger.saturating_duration_since(
                    starts.max(trigger.checked_sub(request.lookback).unwrap_or(starts)),
                );
                preroll_from_live = false;
            }
            let seg_end = starts + s.duration_time();
            report.after_trigger = seg_end.min(end).saturating_duration_since(trigger);
            report.bytes += s.media_bytes();
            progress(report);
            // The part holding the end is cut there.
            let last = seg_end >= end;
            let _ = tx
                .send(Part {
                    segment: s,
                    started,
                    until: last.then_some(end),
                    joins: false,
                })
                .await;
            if last {
                done = true;
                break;
            }
        }
        if done {
            break stop_reason();
        }
        let status = camera.state();
        if status.ended {
            break Some("the source ended".to_owned());
        }
        if stopped_at.is_some() && !status.live {
            // Nothing more will come for the part in progress.
            break stop_reason();
        }
        // A connected camera still owes the segment holding `end` (it arrives when the next
        // keyframe closes it); a camera that is down owes nothing, so the clip ends at `end`.
        let deadline = if status.live {
            end + SEGMENT_SLACK
        } else {
            end
        };
        let now = Instant::now();
        if now >= deadline {
            if stopped_at.is_some() {
                break stop_reason();
            }
            break Some(down_reason(camera.name(), &status, request.duration));
        }
        let wake = (deadline - now).min(RECHECK);
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    break Some("the camera stopped".to_owned());
                }
            }
            changed = control.changed(), if controlled => {
                if changed.is_err() {
                    // The controller is gone: end now, as for a stop.
                    controlled = false;
                    stopped_at.get_or_insert_with(Instant::now);
                }
            }
            _ = tx.closed() => {}
            _ = tokio::time::sleep(wake) => {}
        }
    };
    drop(closely);
    report.phase = LivePhase::Finalizing;
    progress(report);
    if lost > 0 {
        tracing::warn!(
            camera = camera.name(),
            lost,
            "the clip fell behind the ring and lost segments"
        );
    }
    drop(tx);
    let finalizing = Instant::now();
    let result = writer
        .await
        .map_err(|e| (join_error(e), None))
        .and_then(|r| r);
    let finalize_time = finalizing.elapsed();
    match result {
        Ok(summary) => Ok(LiveClip {
            // What the clip presents before the trigger (its first picture is shown from
            // `presented_from`).
            preroll: summary
                .presented_from
                .map_or(report.preroll, |p| trigger.saturating_duration_since(p)),
            summary,
            cut_short,
            lost_segments: lost,
            finalize_time,
        }),
        Err((error, kept)) => Err(LiveError {
            error,
            cut_short,
            kept,
        }),
    }
}

fn down_reason(camera: &str, status: &FeedState, asked: Duration) -> String {
    if status.live {
        return format!("no media from camera {camera} in time");
    }
    let why = status
        .last_error
        .as_deref()
        .unwrap_or("it has not connected yet");
    if status.streamed {
        // It was streaming, then stalled or dropped, and is not back.
        return format!(
            "camera {camera} stopped streaming and was not back by the end of the requested \
             {:.1} s: {why}",
            asked.as_secs_f64()
        );
    }
    format!(
        "camera {camera} was not connected within the requested {:.1} s: {why}",
        asked.as_secs_f64()
    )
}

/// Writes every segment it is sent, then finishes the clip. When a write fails (the disk
/// is full, or another I/O error), it stops taking segments and keeps what the file already
/// holds (see [`salvage`]); the error comes back with what was kept.
fn write_all(
    mut recording: Recording,
    mut rx: mpsc::Receiver<Part>,
) -> Result<ClipSummary, (RecordError, Option<Kept>)> {
    let partial = recording.partial_path().to_owned();
    while let Some(p) = rx.blocking_recv() {
        if p.joins {
            recording.join_seamlessly(p.segment.stream_id);
        }
        match recording.write_part(&p.segment, p.started, p.until) {
            Ok(_) => {}
            Err(e) if e.is_fatal() => {
                // Dropping closes the file and releases its lock, so recovery can take it.
                drop(recording);
                return Err((e, Some(salvage(&partial))));
            }
            Err(e) => tracing::warn!(clip = %recording.path().display(), "{e}"),
        }
    }
    recording.finish().map_err(|e| {
        let kept = e.is_fatal().then(|| salvage(&partial));
        (e, kept)
    })
}

fn join_error(e: tokio::task::JoinError) -> RecordError {
    RecordError::Io {
        op: "running the writer for",
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::ClipOptions;
    use crate::ring::memory::{MemoryFeed, demo_feed};

    async fn record(
        feed: &MemoryFeed,
        trigger: Instant,
        lookback: f64,
        duration: f64,
    ) -> (tempfile::TempDir, Result<LiveClip, LiveError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let recording =
            Recording::create(dir.path().join("clip.mp4"), ClipOptions::default()).unwrap();
        let (_control, watching) = watch::channel(ClipControl::default());
        let request = ClipRequest {
            duration: Duration::from_secs_f64(duration),
            lookback: Duration::from_secs_f64(lookback),
        };
        let result = record_live(
            feed,
            recording,
            trigger,
            request,
            watching,
            None,
            &mut |_| {},
        )
        .await;
        (dir, result)
    }

    /// A clip from a feed that already holds all it needs: the lookback and the requested
    /// end, each within a frame (the demo runs at 25 fps).
    #[tokio::test]
    async fn a_clip_from_an_in_memory_feed_starts_and_ends_where_asked() {
        let live = FeedState {
            live: true,
            streamed: true,
            ..FeedState::default()
        };
        let (feed, start) = demo_feed(6.0, live).await;
        let trigger = start + Duration::from_secs(4);
        let (_dir, result) = record(&feed, trigger, 2.0, 1.0).await;
        let clip = result.expect("the clip is recorded");
        let frame = 0.041;
        assert!((clip.preroll.as_secs_f64() - 2.0).abs() < frame, "{clip:?}");
        let duration = clip.summary.duration.as_secs_f64();
        assert!((duration - 3.0).abs() < frame, "{clip:?}");
        assert_eq!(clip.cut_short, None);
        assert_eq!(clip.lost_segments, 0);
    }

    /// A lookback of many more parts than the writer's queue holds goes through whole: the
    /// recording waits for the writer rather than dropping or holding parts.
    #[tokio::test]
    async fn a_lookback_longer_than_the_writer_queue_is_written_whole() {
        let live = FeedState {
            live: true,
            streamed: true,
            ..FeedState::default()
        };
        let (feed, start) = demo_feed(45.0, live).await;
        let parts = feed.ring.lock().unwrap().len();
        assert!(parts > 2 * WRITER_QUEUE, "{parts} parts");
        let trigger = start + Duration::from_secs(42);
        let (_dir, result) = record(&feed, trigger, 40.0, 1.0).await;
        let clip = result.expect("the clip is recorded");
        assert!(
            (clip.preroll.as_secs_f64() - 40.0).abs() < 0.041,
            "{clip:?}"
        );
        assert!(
            (clip.summary.duration.as_secs_f64() - 41.0).abs() < 0.041,
            "{clip:?}"
        );
        assert_eq!(clip.lost_segments, 0);
    }

    /// A feed that went down before the requested end: the clip keeps what came, and says
    /// why it is short in the feed's own words.
    #[tokio::test]
    async fn a_clip_from_a_feed_that_went_down_says_why_it_is_short() {
        let down = FeedState {
            live: false,
            streamed: true,
            ended: false,
            last_error: Some("connection reset by the camera".into()),
        };
        let (feed, start) = demo_feed(3.0, down).await;
        let trigger = start + Duration::from_secs(2);
        let (_dir, result) = record(&feed, trigger, 1.0, 3.0).await;
        let clip = result.expect("what came is kept");
        let why = clip.cut_short.expect("cut short");
        assert!(
            why.contains("stopped streaming") && why.contains("connection reset by the camera"),
            "{why}"
        );
        assert!(clip.summary.duration.as_secs_f64() < 3.0);
    }
}
