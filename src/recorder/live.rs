//! A clip from a live camera: the lookback from its ring, then what follows, until the
//! requested duration after the trigger is covered.
//!
//! The recording follows the ring by sequence number, taking `Arc`s of its segments (never
//! copies), and hands them to a blocking thread that writes the file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::camera::Camera;
use crate::segment::Segment;

use super::{ClipOptions, ClipSummary, RecordError, Recording};

#[derive(Debug, Clone)]
pub struct ClipRequest {
    pub path: PathBuf,
    /// Media after the trigger.
    pub duration: Duration,
    /// Media before the trigger.
    pub lookback: Duration,
    pub options: ClipOptions,
}

/// Progress reported while a live clip records.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveProgress {
    /// Media after the trigger written so far.
    pub after_trigger: Duration,
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
}

/// Records a clip from `camera`, triggered now. `stop` ends it early (what was recorded is
/// finalized). If no media arrives for `request.duration`, the clip ends with what it has.
pub async fn record_live(
    camera: &Camera,
    request: ClipRequest,
    mut stop: watch::Receiver<bool>,
    progress: &mut (dyn FnMut(LiveProgress) + Send),
) -> Result<LiveClip, RecordError> {
    let trigger = Instant::now();
    let recording = {
        let path = request.path.clone();
        let options = request.options.clone();
        tokio::task::spawn_blocking(move || Recording::create(path, options))
            .await
            .map_err(join_error)??
    };
    let (tx, rx) = mpsc::unbounded_channel::<Arc<Segment>>();
    let writer = tokio::task::spawn_blocking(move || write_all(recording, rx));

    let lookback = camera.ring().lookback(trigger, request.lookback);
    let mut last = lookback.segments.last().map(|s| s.sequence);
    for s in lookback.segments {
        let _ = tx.send(s);
    }
    let end = trigger + request.duration;
    let mut updates = camera.subscribe();
    let mut lost = 0u64;
    let mut report = LiveProgress::default();
    let cut_short = loop {
        let fresh = camera.ring().since(last.unwrap_or(0));
        let mut done = false;
        for s in fresh {
            if let Some(l) = last
                && s.sequence > l + 1
            {
                lost += s.sequence - l - 1;
            }
            last = Some(s.sequence);
            let starts = s.received.unwrap_or(trigger);
            if starts >= end {
                // Starts after the requested end: not part of the clip.
                done = true;
                break;
            }
            let seg_end = starts + s.duration_time();
            report.after_trigger = seg_end
                .saturating_duration_since(trigger)
                .min(request.duration);
            report.bytes += s.media_bytes();
            progress(report);
            let _ = tx.send(s);
            if seg_end >= end {
                done = true;
                break;
            }
        }
        if done {
            break None;
        }
        if camera.status().ended {
            break Some("the source ended".to_owned());
        }
        // Waiting: for the next segment, for stop, or — if the camera is down — at most the
        // clip's duration without media.
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    break Some("the camera stopped".to_owned());
                }
            }
            _ = stop.changed() => break Some("stopped".to_owned()),
            _ = tokio::time::sleep(request.duration.max(Duration::from_secs(1))) => {
                break Some(format!("no media for {:?}", request.duration));
            }
        }
    };
    if lost > 0 {
        tracing::warn!(
            camera = camera.name(),
            lost,
            "the clip fell behind the ring and lost segments"
        );
    }
    drop(tx);
    let summary = writer.await.map_err(join_error)??;
    Ok(LiveClip {
        summary,
        preroll: lookback.achieved,
        cut_short,
        lost_segments: lost,
    })
}

fn write_all(
    mut recording: Recording,
    mut rx: mpsc::UnboundedReceiver<Arc<Segment>>,
) -> Result<ClipSummary, RecordError> {
    while let Some(s) = rx.blocking_recv() {
        match recording.write_segment(&s) {
            Ok(_) => {}
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => tracing::warn!(clip = %recording.path().display(), "{e}"),
        }
    }
    recording.finish()
}

fn join_error(e: tokio::task::JoinError) -> RecordError {
    RecordError::Io {
        op: "running the writer for",
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    }
}
