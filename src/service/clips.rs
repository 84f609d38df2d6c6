//! The clips a service knows: those being recorded, in memory, and the finished, failed and
//! recovered ones, in the [`History`] on disk; each with its state as the API shows it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::events::EventKind;
use super::history::{History, HistoryError};
use super::remote::{Copies, Storage};
use super::retention::KeepSet;
use crate::continuous::{ExportError, Exported, Gap};
use crate::recorder::live::{ClipControl, LiveClip, LiveError, LivePhase, LiveProgress};
use crate::recorder::{ClipSummary, Kept};

/// Final clips kept in memory when there is no history to write them to (it could not be
/// opened, or the disk is full); the oldest are forgotten first (their files stay).
const REMEMBERED: usize = super::history::KEEP;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipState {
    Recording,
    Finalizing,
    Done,
    Failed,
}

impl ClipState {
    pub const ALL: [ClipState; 4] = [
        ClipState::Recording,
        ClipState::Finalizing,
        ClipState::Done,
        ClipState::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ClipState::Recording => "recording",
            ClipState::Finalizing => "finalizing",
            ClipState::Done => "done",
            ClipState::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, ClipState::Done | ClipState::Failed)
    }
}

/// A clip as the API reports it, and as the history keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipView {
    pub id: String,
    /// The camera it was recorded from (`null` for clips recovered at start).
    pub camera: Option<String>,
    pub state: ClipState,
    pub path: PathBuf,
    /// When it was triggered (RFC 3339, UTC).
    pub trigger_time: Option<String>,
    pub requested_lookback: f64,
    /// Requested seconds after the trigger, extensions included.
    pub requested_duration: f64,
    /// Seconds of pre-roll actually captured.
    pub preroll: f64,
    /// Seconds of media in the clip (so far, while recording).
    pub duration: f64,
    pub bytes: u64,
    pub discontinuities: usize,
    /// Where they are, in seconds from the clip start (once done).
    pub discontinuity_times: Vec<f64>,
    /// Why the clip ended before its requested duration, if it did.
    pub ended_early: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// It was an interrupted recording salvaged at start.
    pub recovered: bool,
    /// The id the trigger carried (API or MQTT), echoed on the clip's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Marked `keep`: retention never deletes it.
    #[serde(default)]
    pub keep: bool,
    /// For an export of a continuous recording: the range, and what it could not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportRange>,
    /// Where the clip is: `local`, `uploading`, `remote` or `local+remote` (see
    /// `[storage.remote]`).
    #[serde(default)]
    pub storage: Storage,
    /// The node that recorded it (`[node] name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// The range an export covers (RFC 3339), the stretches of it with no media, and the files
/// it left out (each with why).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportRange {
    pub start: String,
    pub end: String,
    pub gaps: Vec<Gap>,
    pub skipped: Vec<String>,
}

/// One clip: its view and, while recording, its control.
#[derive(Debug)]
pub struct Clip(Mutex<ClipEntry>);

#[derive(Debug)]
struct ClipEntry {
    view: ClipView,
    /// `clip.recording` was announced (on the first progress report).
    announced: bool,
    /// How stop and extend reach the recording; dropped once the clip is final, as a watch
    /// channel is the largest part of what the registry keeps for each clip.
    control: Option<watch::Sender<ClipControl>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a keep mark could not be set.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("{0}")]
    History(HistoryError),
    /// The mark could not be saved (a full disk, when `full`).
    #[error("{message}")]
    Storage { message: String, full: bool },
}

/// Why a stop or extend was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRecording(pub ClipState);

/// The most a clip records after its trigger, extensions included (24 h): past that, a
/// recording is continuous recording's job, not a clip's.
pub const MAX_CLIP_SECONDS: f64 = 86_400.0;

/// Why an extend was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExtendRefused {
    NotRecording(NotRecording),
    /// The clip would record more than [`MAX_CLIP_SECONDS`] after its trigger.
    TooLong {
        total: f64,
    },
}

impl Clip {
    /// A final clip read back from the history.
    fn from_history(view: ClipView) -> Arc<Clip> {
        Arc::new(Clip(Mutex::new(ClipEntry {
            view,
            announced: true,
            control: None,
        })))
    }

    pub fn view(&self) -> ClipView {
        lock(&self.0).view.clone()
    }

    pub fn state(&self) -> ClipState {
        lock(&self.0).view.state
    }

    /// Ends recording now; the clip is then finalized with what it has.
    pub fn stop(&self) -> Result<ClipView, NotRecording> {
        let ClipEntry { view, control, .. } = &*lock(&self.0);
        match control {
            Some(c) if view.state == ClipState::Recording => {
                c.send_modify(|c| c.stop = true);
                Ok(view.clone())
            }
            _ => Err(NotRecording(view.state)),
        }
    }

    /// Records `seconds` more than asked so far, up to [`MAX_CLIP_SECONDS`] after the trigger.
    pub fn extend(&self, seconds: Duration) -> Result<ClipView, ExtendRefused> {
        let ClipEntry { view, control, .. } = &mut *lock(&self.0);
        match control {
            Some(c) if view.state == ClipState::Recording && !c.borrow().stop => {
                let total = view.requested_duration + seconds.as_secs_f64();
                if total > MAX_CLIP_SECONDS {
                    return Err(ExtendRefused::TooLong { total });
                }
                c.send_modify(|c| c.extended += seconds);
                view.requested_duration = total;
                Ok(view.clone())
            }
            _ => Err(ExtendRefused::NotRecording(NotRecording(view.state))),
        }
    }

    /// Takes a progress report; returns the event it makes, if any: `clip.recording` on the
    /// first (the pre-roll is taken), `clip.finalizing` when recording ends.
    pub fn progress(&self, p: LiveProgress) -> Option<(EventKind, ClipView)> {
        let entry = &mut *lock(&self.0);
        let view = &mut entry.view;
        view.preroll = p.preroll.as_secs_f64();
        view.duration = (p.preroll + p.after_trigger).as_secs_f64();
        view.bytes = p.bytes;
        if p.phase == LivePhase::Finalizing && view.state == ClipState::Recording {
            view.state = ClipState::Finalizing;
            entry.announced = true;
            return Some((EventKind::ClipFinalizing, view.clone()));
        }
        if !entry.announced {
            entry.announced = true;
            return Some((EventKind::ClipRecording, view.clone()));
        }
        None
    }

    /// Takes the recording's outcome; returns the event it makes (`clip.done` or
    /// `clip.failed`) with the final view.
    pub fn finished(&self, result: &Result<LiveClip, LiveError>) -> (EventKind, ClipView) {
        let mut entry = lock(&self.0);
        entry.control = None;
        let view = &mut entry.view;
        match result {
            Ok(clip) => {
                done(view, &clip.summary);
                view.preroll = clip.preroll.as_secs_f64();
                view.ended_early = clip.cut_short.clone();
            }
            Err(e) => {
                view.state = ClipState::Failed;
                view.error = Some(e.to_string());
                view.ended_early = e.cut_short.clone();
                // What the file at `path` holds: the part kept after a write failed, if any.
                match &e.kept {
                    Some(Kept::Clip(s)) => {
                        view.duration = s.duration.as_secs_f64();
                        view.bytes = s.bytes;
                        view.discontinuities = s.discontinuities.len();
                        view.discontinuity_times = s.discontinuities.clone();
                    }
                    _ => {
                        view.bytes = 0;
                        view.duration = 0.0;
                    }
                }
            }
        }
        (final_kind(view.state), view.clone())
    }

    /// Takes an export's outcome, as [`Clip::finished`] a recording's.
    pub fn exported(&self, result: &Result<Exported, ExportError>) -> (EventKind, ClipView) {
        let mut entry = lock(&self.0);
        entry.control = None;
        let view = &mut entry.view;
        match result {
            Ok(e) => {
                done(view, &e.clip);
                if let Some(range) = view.export.as_mut() {
                    range.gaps.clone_from(&e.gaps);
                    range.skipped.clone_from(&e.skipped);
                }
            }
            Err(e) => {
                view.state = ClipState::Failed;
                view.error = Some(e.to_string());
                if let (Some(range), ExportError::NothingRecorded { skipped, .. }) =
                    (view.export.as_mut(), e)
                {
                    range.skipped.clone_from(skipped);
                }
            }
        }
        (final_kind(view.state), view.clone())
    }
}

/// A clip finished as `summary` says.
fn done(view: &mut ClipView, summary: &ClipSummary) {
    view.state = ClipState::Done;
    view.path = summary.path.clone();
    view.duration = summary.duration.as_secs_f64();
    view.bytes = summary.bytes;
    view.discontinuities = summary.discontinuities.len();
    view.discontinuity_times = summary.discontinuities.clone();
}

fn final_kind(state: ClipState) -> EventKind {
    match state {
        ClipState::Done => EventKind::ClipDone,
        _ => EventKind::ClipFailed,
    }
}

/// What a new clip starts with.
pub struct NewClip {
    pub camera: Option<String>,
    pub path: PathBuf,
    pub trigger: SystemTime,
    pub lookback: Duration,
    pub duration: Duration,
    pub request_id: Option<String>,
    /// Set for an export: the range it covers.
    pub export: Option<(SystemTime, SystemTime)>,
}

/// Every clip by id.
#[derive(Debug, Default)]
pub struct Clips {
    inner: Mutex<Inner>,
    /// Where final clips go; without one they stay in memory.
    history: Option<History>,
    /// The clips marked `keep`, by path.
    keep: Arc<KeepSet>,
    /// With a bucket: which clips have a copy there.
    copies: Option<Arc<Copies>>,
    /// This service's node name, on every view.
    node: Option<String>,
    next: AtomicU64,
}

impl Default for KeepSet {
    fn default() -> KeepSet {
        KeepSet::in_memory()
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first: the clips in progress, and final ones the history did not take (at most
    /// [`REMEMBERED`] of those). Short, so looking one up by id is a scan.
    order: VecDeque<Arc<Clip>>,
}

impl Clips {
    pub fn new(history: Option<History>, keep: Arc<KeepSet>) -> Clips {
        Clips {
            history,
            keep,
            ..Clips::default()
        }
    }

    /// Names this node on every view, and with a bucket, says where each clip is.
    pub fn located(mut self, node: &str, copies: Option<Arc<Copies>>) -> Clips {
        self.node = Some(node.to_owned());
        self.copies = copies;
        self
    }

    /// A view read back from the history, with its keep mark and storage as they are now.
    fn marked(&self, mut view: ClipView) -> ClipView {
        view.keep = self.keep.contains(&view.path);
        if view.node.is_none() {
            view.node = self.node.clone();
        }
        if let Some(copies) = &self.copies {
            view.storage = if view.state.is_final() {
                copies.storage(&view.path)
            } else {
                Storage::Uploading
            };
        }
        view
    }

    /// Brings the storage of the clip at `path` held in memory up to date (an upload ended).
    pub fn relocate(&self, path: &Path) {
        let Some(copies) = &self.copies else { return };
        for clip in lock(&self.inner).order.iter() {
            let mut entry = lock(&clip.0);
            if entry.view.path == path && entry.view.state.is_final() {
                entry.view.storage = copies.storage(path);
            }
        }
    }

    /// Marks a clip `keep` (or not). `Ok(None)`: no such clip.
    pub fn set_keep(&self, id: &str, keep: bool) -> Result<Option<ClipView>, KeepError> {
        let Some(clip) = self.get(id).map_err(KeepError::History)? else {
            return Ok(None);
        };
        let path = clip.view().path;
        self.keep.set(&path, keep).map_err(|e| KeepError::Storage {
            message: format!("marking {}: {e}", path.display()),
            full: e.kind() == std::io::ErrorKind::StorageFull,
        })?;
        let mut entry = lock(&clip.0);
        entry.view.keep = keep;
        Ok(Some(entry.view.clone()))
    }

    /// Forgets the final clips at these paths (their files are gone): out of memory and out
    /// of the history in one rewrite. Returns their last views, read before the rewrite, and
    /// the rewrite's error if it failed (a full disk: the caller tries again later).
    pub fn forget_paths(
        &self,
        paths: &std::collections::HashSet<PathBuf>,
    ) -> (Vec<ClipView>, Option<HistoryError>) {
        let mut inner = lock(&self.inner);
        let mut gone = Vec::new();
        inner.order.retain(|c| {
            let view = c.view();
            let forget = view.state.is_final() && paths.contains(&view.path);
            if forget {
                gone.push(view);
            }
            !forget
        });
        drop(inner);
        let Some(history) = &self.history else {
            return (gone, None);
        };
        let before = gone.len();
        match history.all() {
            Ok(all) => gone.extend(all.into_iter().filter(|v| paths.contains(&v.path))),
            Err(e) => return (gone, Some(e)),
        }
        if gone.len() == before {
            return (gone, None);
        }
        (gone, history.remove_paths(paths).err())
    }

    /// A new id: unique in this process and, through the start time in it, across restarts.
    fn new_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let start = process_start_millis();
        format!("{start:x}-{n}")
    }

    /// Registers a clip in state `recording`; the receiver is how stop and extend reach its
    /// recording.
    pub fn add(&self, new: NewClip) -> (Arc<Clip>, watch::Receiver<ClipControl>) {
        let view = ClipView {
            id: self.new_id(),
            camera: new.camera,
            state: ClipState::Recording,
            path: new.path,
            trigger_time: Some(crate::time::rfc3339(new.trigger)),
            requested_lookback: new.lookback.as_secs_f64(),
            requested_duration: new.duration.as_secs_f64(),
            preroll: 0.0,
            duration: 0.0,
            bytes: 0,
            discontinuities: 0,
            discontinuity_times: Vec::new(),
            ended_early: None,
            error: None,
            recovered: false,
            request_id: new.request_id,
            keep: false,
            export: new.export.map(|(start, end)| ExportRange {
                start: crate::time::rfc3339(start),
                end: crate::time::rfc3339(end),
                gaps: Vec::new(),
                skipped: Vec::new(),
            }),
            storage: Storage::Local,
            node: None,
        };
        let (control, receiver) = watch::channel(ClipControl::default());
        (self.insert(view, Some(control)), receiver)
    }

    /// Registers a clip found and handled at start (recovered, or failed to recover).
    pub fn add_recovered(
        &self,
        path: PathBuf,
        result: Result<(Duration, u64), String>,
    ) -> Arc<Clip> {
        let (state, duration, bytes, error) = match result {
            Ok((d, b)) => (ClipState::Done, d.as_secs_f64(), b, None),
            Err(e) => (ClipState::Failed, 0.0, 0, Some(e)),
        };
        let view = ClipView {
            id: self.new_id(),
            camera: None,
            state,
            path,
            trigger_time: None,
            requested_lookback: 0.0,
            requested_duration: 0.0,
            preroll: 0.0,
            duration,
            bytes,
            discontinuities: 0,
            discontinuity_times: Vec::new(),
            ended_early: None,
            error,
            recovered: true,
            request_id: None,
            keep: false,
            export: None,
            storage: Storage::Local,
            node: None,
        };
        self.insert(view, None)
    }

    /// Moves a clip that has become final from memory to the history; if the history cannot
    /// take it (a full disk), it stays in memory and the API still shows it.
    pub fn settle(&self, clip: &Arc<Clip>) {
        let Some(history) = &self.history else {
            return;
        };
        let view = clip.view();
        if !view.state.is_final() {
            return;
        }
        // Held while appending, so a lookup finds the clip in memory or in the history.
        let mut inner = lock(&self.inner);
        match history.append(&view) {
            Ok(()) => inner.order.retain(|c| !Arc::ptr_eq(c, clip)),
            Err(e) => tracing::warn!(
                clip = %view.id,
                "{e}; the clip is listed from memory until the service restarts"
            ),
        }
    }

    fn insert(&self, view: ClipView, control: Option<watch::Sender<ClipControl>>) -> Arc<Clip> {
        let view = self.marked(view);
        let announced = control.is_none();
        let clip = Arc::new(Clip(Mutex::new(ClipEntry {
            view,
            announced,
            control,
        })));
        let mut inner = lock(&self.inner);
        inner.order.push_back(clip.clone());
        // Forget the oldest finished clips beyond the limit (never one still recording).
        while inner.order.len() > REMEMBERED {
            let Some(pos) = inner.order.iter().position(|c| c.state().is_final()) else {
                break;
            };
            inner.order.remove(pos);
        }
        clip
    }

    pub fn get(&self, id: &str) -> Result<Option<Arc<Clip>>, HistoryError> {
        let in_memory = lock(&self.inner)
            .order
            .iter()
            .find(|c| lock(&c.0).view.id == id)
            .cloned();
        match (in_memory, &self.history) {
            (Some(clip), _) => Ok(Some(clip)),
            // Not in memory: a clip leaves memory only once it is in the history.
            (None, Some(history)) => {
                Ok(history.get(id)?.map(|v| Clip::from_history(self.marked(v))))
            }
            (None, None) => Ok(None),
        }
    }

    /// Forgets a final clip: out of memory or out of the history. `false` when it was in
    /// neither.
    pub fn remove(&self, id: &str) -> Result<bool, HistoryError> {
        let mut inner = lock(&self.inner);
        let before = inner.order.len();
        inner
            .order
            .retain(|c| !(lock(&c.0).view.id == id && c.state().is_final()));
        let in_memory = inner.order.len() < before;
        let in_history = match &self.history {
            Some(h) => h.remove(id)?,
            None => false,
        };
        Ok(in_memory || in_history)
    }

    /// The clips held in memory: every one in progress, oldest first.
    pub fn in_memory(&self) -> Vec<Arc<Clip>> {
        lock(&self.inner).order.iter().cloned().collect()
    }

    /// Every clip: those in the history, then those in memory, each oldest first.
    pub fn all(&self) -> Result<Vec<ClipView>, HistoryError> {
        let inner = lock(&self.inner);
        let mut views = match &self.history {
            Some(history) => history.all()?.into_iter().map(|v| self.marked(v)).collect(),
            None => Vec::new(),
        };
        views.extend(inner.order.iter().map(|c| c.view()));
        Ok(views)
    }

    /// Number of clips in each state.
    pub fn counts(&self) -> [(ClipState, usize); 4] {
        let states: Vec<ClipState> = self.in_memory().iter().map(|c| c.state()).collect();
        let (done, failed) = self.history.as_ref().map_or((0, 0), History::counts);
        ClipState::ALL.map(|s| {
            let in_history = match s {
                ClipState::Done => done,
                ClipState::Failed => failed,
                ClipState::Recording | ClipState::Finalizing => 0,
            };
            (s, in_history + states.iter().filter(|&&t| t == s).count())
        })
    }
}

fn process_start_millis() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::RecordError;

    fn new_clip(n: usize) -> NewClip {
        NewClip {
            camera: Some("cam".into()),
            path: PathBuf::from(format!("/clips/{n}.mp4")),
            trigger: SystemTime::UNIX_EPOCH,
            lookback: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            request_id: None,
            export: None,
        }
    }

    fn failed() -> LiveError {
        LiveError {
            error: RecordError::NothingCaptured,
            cut_short: None,
            kept: None,
        }
    }

    #[test]
    fn stop_and_extend_reach_the_recording_until_it_is_final() {
        let clips = Clips::default();
        let (clip, mut control) = clips.add(new_clip(0));
        let view = clip.extend(Duration::from_secs(3)).expect("extend");
        assert_eq!(view.requested_duration, 5.0);
        assert_eq!(control.borrow_and_update().extended, Duration::from_secs(3));
        clip.stop().expect("stop");
        assert!(control.borrow_and_update().stop);
        // Once stopped it takes no extension.
        assert_eq!(
            clip.extend(Duration::from_secs(1)).map(|_| ()),
            Err(ExtendRefused::NotRecording(NotRecording(
                ClipState::Recording
            )))
        );
        // Nor past the cap, counting what was asked so far.
        let (long, _control) = clips.add(new_clip(1));
        let asked = long.view().requested_duration;
        let over = Duration::from_secs_f64(MAX_CLIP_SECONDS - asked + 1.0);
        assert_eq!(
            long.extend(over).map(|_| ()),
            Err(ExtendRefused::TooLong {
                total: MAX_CLIP_SECONDS + 1.0
            })
        );
        assert!(long.extend(over - Duration::from_secs(1)).is_ok());

        clip.finished(&Err(failed()));
        assert_eq!(clip.state(), ClipState::Failed);
        assert_eq!(
            clip.stop().map(|_| ()),
            Err(NotRecording(ClipState::Failed))
        );
        // The channel is gone with the recording: the receiver sees it closed.
        assert!(control.has_changed().is_err());
    }

    #[test]
    fn forgets_the_oldest_final_clips_but_never_one_recording() {
        let clips = Clips::default();
        let (first, _control) = clips.add(new_clip(0));
        let mut ids = vec![first.view().id];
        for n in 1..REMEMBERED + 5 {
            let (clip, _) = clips.add(new_clip(n));
            clip.finished(&Err(failed()));
            ids.push(clip.view().id);
        }
        let all = clips.all().expect("memory");
        assert_eq!(all.len(), REMEMBERED);
        // The recording clip stays; the five oldest final ones after it went.
        assert_eq!(all[0].id, ids[0]);
        assert_eq!(all[1].id, ids[6]);
        assert!(clips.get(&ids[0]).expect("memory").is_some());
        assert!(clips.get(&ids[5]).expect("memory").is_none());
        assert!(clips.get(&ids[6]).expect("memory").is_some());
        let last = ids.last().expect("ids");
        let found = clips.get(last).expect("memory").map(|c| c.view().id);
        assert_eq!(found.as_ref(), Some(last));
        assert!(clips.get("no-such-clip").expect("memory").is_none());
    }

    #[test]
    fn final_clips_go_to_the_history_and_are_there_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clips = Clips::new(
            Some(History::open(dir.path()).expect("history")),
            Arc::default(),
        );
        let (recording, _control) = clips.add(new_clip(0));
        let (failing, _) = clips.add(new_clip(1));
        failing.finished(&Err(failed()));
        clips.settle(&failing);
        // Still recording: stays in memory, and settling it does nothing.
        clips.settle(&recording);
        let id = failing.view().id;
        assert_eq!(clips.in_memory().len(), 1);
        let found = clips.get(&id).expect("readable").expect("found");
        assert_eq!(found.state(), ClipState::Failed);
        assert_eq!(
            found.stop().map(|_| ()),
            Err(NotRecording(ClipState::Failed))
        );
        let all = clips.all().expect("readable");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, id);
        assert_eq!(all[1].id, recording.view().id);
        let counts = clips.counts();
        assert_eq!(counts[0], (ClipState::Recording, 1));
        assert_eq!(counts[3], (ClipState::Failed, 1));

        let restarted = Clips::new(
            Some(History::open(dir.path()).expect("history")),
            Arc::default(),
        );
        assert!(restarted.in_memory().is_empty());
        let all = restarted.all().expect("readable");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, id);
        assert_eq!(all[0].path, PathBuf::from("/clips/1.mp4"));
    }
}
