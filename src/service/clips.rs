//! The clips a service knows: those being recorded, and the finished, failed and recovered
//! ones, each with its state as the API shows it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

use crate::recorder::Kept;
use crate::recorder::live::{ClipControl, LiveClip, LiveError, LivePhase, LiveProgress};

/// Finished clips remembered for the API; the oldest are forgotten first (their files stay).
const REMEMBERED: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// A clip as the API reports it.
#[derive(Debug, Clone, Serialize)]
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
}

/// One clip: its view and, while recording, its control.
#[derive(Debug)]
pub struct Clip {
    view: Mutex<ClipView>,
    control: watch::Sender<ClipControl>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a stop or extend was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRecording(pub ClipState);

impl Clip {
    pub fn view(&self) -> ClipView {
        lock(&self.view).clone()
    }

    pub fn state(&self) -> ClipState {
        lock(&self.view).state
    }

    pub fn control(&self) -> watch::Receiver<ClipControl> {
        self.control.subscribe()
    }

    /// Ends recording now; the clip is then finalized with what it has.
    pub fn stop(&self) -> Result<ClipView, NotRecording> {
        let view = lock(&self.view);
        if view.state != ClipState::Recording {
            return Err(NotRecording(view.state));
        }
        self.control.send_modify(|c| c.stop = true);
        Ok(view.clone())
    }

    /// Records `seconds` more than asked so far.
    pub fn extend(&self, seconds: Duration) -> Result<ClipView, NotRecording> {
        let mut view = lock(&self.view);
        if view.state != ClipState::Recording || self.control.borrow().stop {
            return Err(NotRecording(view.state));
        }
        self.control.send_modify(|c| c.extended += seconds);
        view.requested_duration += seconds.as_secs_f64();
        Ok(view.clone())
    }

    pub fn progress(&self, p: LiveProgress) {
        let mut view = lock(&self.view);
        view.preroll = p.preroll.as_secs_f64();
        view.duration = (p.preroll + p.after_trigger).as_secs_f64();
        view.bytes = p.bytes;
        if p.phase == LivePhase::Finalizing && view.state == ClipState::Recording {
            view.state = ClipState::Finalizing;
        }
    }

    pub fn finished(&self, result: &Result<LiveClip, LiveError>) {
        let mut view = lock(&self.view);
        match result {
            Ok(clip) => {
                let s = &clip.summary;
                view.state = ClipState::Done;
                view.path = s.path.clone();
                view.preroll = clip.preroll.as_secs_f64();
                view.duration = s.duration.as_secs_f64();
                view.bytes = s.bytes;
                view.discontinuities = s.discontinuities.len();
                view.discontinuity_times = s.discontinuities.clone();
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
    }
}

/// What a new clip starts with.
pub struct NewClip {
    pub camera: Option<String>,
    pub path: PathBuf,
    pub trigger: SystemTime,
    pub lookback: Duration,
    pub duration: Duration,
}

/// Every clip by id.
#[derive(Debug, Default)]
pub struct Clips {
    inner: Mutex<Inner>,
    next: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Arc<Clip>>,
    order: VecDeque<String>,
}

impl Clips {
    /// A new id: unique in this process and, through the start time in it, across restarts.
    fn new_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let start = process_start_millis();
        format!("{start:x}-{n}")
    }

    /// Registers a clip in state `recording`.
    pub fn add(&self, new: NewClip) -> Arc<Clip> {
        let view = ClipView {
            id: self.new_id(),
            camera: new.camera,
            state: ClipState::Recording,
            path: new.path,
            trigger_time: Some(super::time::rfc3339(new.trigger)),
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
        };
        self.insert(view)
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
        };
        self.insert(view)
    }

    fn insert(&self, view: ClipView) -> Arc<Clip> {
        let id = view.id.clone();
        let (control, _) = watch::channel(ClipControl::default());
        let clip = Arc::new(Clip {
            view: Mutex::new(view),
            control,
        });
        let mut inner = lock(&self.inner);
        inner.by_id.insert(id.clone(), clip.clone());
        inner.order.push_back(id);
        // Forget the oldest finished clips beyond the limit (never one still recording).
        while inner.order.len() > REMEMBERED {
            let Some(pos) = inner
                .order
                .iter()
                .position(|id| inner.by_id.get(id).is_none_or(|c| c.state().is_final()))
            else {
                break;
            };
            if let Some(old) = inner.order.remove(pos) {
                inner.by_id.remove(&old);
            }
        }
        clip
    }

    pub fn get(&self, id: &str) -> Option<Arc<Clip>> {
        lock(&self.inner).by_id.get(id).cloned()
    }

    /// All clips, oldest first.
    pub fn all(&self) -> Vec<Arc<Clip>> {
        let inner = lock(&self.inner);
        inner
            .order
            .iter()
            .filter_map(|id| inner.by_id.get(id).cloned())
            .collect()
    }

    /// Number of clips in each state.
    pub fn counts(&self) -> [(ClipState, usize); 4] {
        let all = self.all();
        ClipState::ALL.map(|s| (s, all.iter().filter(|c| c.state() == s).count()))
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
