//! A camera: its stream kept flowing into its pre-roll ring, whatever the camera does.
//!
//! One task per camera runs source → segmenter → ring. Each (re)connect is a new
//! `stream_id`; sequence numbers keep increasing across reconnects so recordings can follow
//! the ring by sequence. Failures are logged with the camera's name and the reason
//! (credentials redacted), once per change of reason rather than once per retry.

mod backoff;
mod ingest;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::watch;

use crate::ring::{Feed, FeedState, Following, Lookback, Ring, RingLimits};
use crate::segment::Segment;
use crate::segmenter::{HygieneOptions, Segmenter, SegmenterOptions};
use crate::source::{
    Batching, Hurry, RtspOptions, Source, SourceError, SourceErrorKind, SourceEvent, SourceSpec,
    TrackParams,
};

pub use backoff::{Backoff, BackoffOptions};
pub use ingest::{IngestRuntime, TICK_TCP, TICK_UDP};

#[derive(Debug, Clone)]
pub struct CameraOptions {
    pub name: String,
    pub source: SourceSpec,
    pub rtsp: RtspOptions,
    pub ring: RingLimits,
    pub segmenter: SegmenterOptions,
    pub hygiene: HygieneOptions,
    pub backoff: BackoffOptions,
    /// End the camera at an error no retry can fix (refused credentials, no video), as for
    /// a file: for a one-off recording, which should fail at once rather than wait for a fix.
    pub give_up_when_persistent: bool,
}

impl CameraOptions {
    pub fn new(name: &str, source: SourceSpec) -> Self {
        CameraOptions {
            name: name.to_owned(),
            source,
            rtsp: RtspOptions::default(),
            ring: RingLimits::default(),
            segmenter: SegmenterOptions::default(),
            hygiene: HygieneOptions::default(),
            backoff: BackoffOptions::default(),
            give_up_when_persistent: false,
        }
    }
}

/// What a camera is doing, for status lines and the API.
#[derive(Debug, Clone, Default)]
pub struct CameraStatus {
    pub connected: bool,
    pub stream_id: u64,
    /// Connections after the first.
    pub reconnects: u64,
    pub last_error: Option<String>,
    pub params: Vec<TrackParams>,
    /// The source's audio as sent ("PCMU 8000 Hz mono"), kept or not; the audio track in
    /// `params` is what clips store.
    pub source_audio: Option<String>,
    /// A finite source (a file played once) has ended: nothing more will come.
    pub ended: bool,
    pub frames: u64,
    pub bytes: u64,
    /// Media held by the segmenter for the segment in progress (not in the ring yet).
    pub pending_bytes: u64,
    pub dropped_frames: u64,
    /// Packets the transport lost (RTP sequence gaps); 0 for files and the demo camera.
    pub lost_packets: u64,
}

/// A change in a camera's connection, as it happens (for the service's events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraChange {
    /// Streaming, with these tracks as clips store them.
    Connected { stream_id: u64, tracks: Vec<String> },
    /// The tracks changed while streaming (codec, resolution, audio).
    TracksChanged { tracks: Vec<String> },
    /// The connection ended (or never came up); `ended`: nothing more will come.
    Disconnected { reason: String, ended: bool },
}

/// How many changes a slow listener may fall behind by before it misses some.
const CHANGES_KEPT: usize = 64;

#[derive(Debug)]
struct Shared {
    name: String,
    changes: tokio::sync::broadcast::Sender<CameraChange>,
    ring: Mutex<Ring>,
    status: Mutex<CameraStatus>,
    /// The newest sequence in the ring; bumped (also without a new segment) on status changes
    /// that waiting recordings care about (ended).
    updates: watch::Sender<u64>,
    batching: Batching,
}

/// A running camera. Dropping it stops its task.
#[derive(Debug)]
pub struct Camera {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    /// Subscribed before the camera's task started, for the first listener: a camera can
    /// connect before the service has put its listeners in place.
    first_changes: Mutex<Option<tokio::sync::broadcast::Receiver<CameraChange>>>,
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    crate::source::camera_text(text.as_bytes(), 200)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves the data as consistent as our short
    // critical sections make it; keep serving rather than cascade.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Camera {
    /// Starts ingesting in the background (needs a tokio runtime).
    pub fn spawn(options: CameraOptions) -> Camera {
        Camera::spawn_with(&tokio::runtime::Handle::current(), options)
    }

    /// Starts ingesting on `ingest`, batching reads with its other cameras.
    pub fn spawn_on(ingest: &IngestRuntime, mut options: CameraOptions) -> Camera {
        options.rtsp.batching = ingest.batching();
        Camera::spawn_with(ingest.handle(), options)
    }

    fn spawn_with(runtime: &tokio::runtime::Handle, options: CameraOptions) -> Camera {
        let (updates, _) = watch::channel(0);
        let (changes, first_changes) = tokio::sync::broadcast::channel(CHANGES_KEPT);
        let shared = Arc::new(Shared {
            name: options.name.clone(),
            changes,
            ring: Mutex::new(Ring::new(options.ring)),
            status: Mutex::new(CameraStatus::default()),
            updates,
            batching: options.rtsp.batching.clone(),
        });
        let task = runtime.spawn(run(shared.clone(), options));
        Camera {
            shared,
            task,
            first_changes: Mutex::new(Some(first_changes)),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn ring(&self) -> MutexGuard<'_, Ring> {
        lock(&self.shared.ring)
    }

    pub fn status(&self) -> CameraStatus {
        lock(&self.shared.status).clone()
    }

    /// Data from this camera is read as it arrives while the returned guard is held (a clip
    /// recording), so each part reaches the ring as soon as it is complete.
    pub fn follow_closely(&self) -> Hurry {
        self.shared.batching.recording()
    }

    /// Wakes on every new segment (and when the source ends).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.updates.subscribe()
    }

    /// Connects, disconnects and track changes: for the first caller, all of them since the
    /// camera started (up to the last `CHANGES_KEPT`); for later ones, from now on.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<CameraChange> {
        lock(&self.first_changes)
            .take()
            .unwrap_or_else(|| self.shared.changes.subscribe())
    }
}

/// The tracks as clips store them, one line each (`"H.264 1920x1080"`, `"AAC"`).
fn track_lines(params: &[TrackParams]) -> Vec<String> {
    params
        .iter()
        .map(|p| match p.kind {
            crate::mp4::TrackKind::Video => format!("{} {}x{}", p.codec, p.width, p.height),
            _ => p.codec.to_string(),
        })
        .collect()
}

impl Feed for Camera {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn lookback(&self, trigger: Instant, lookback: Duration) -> (Lookback, Option<u64>) {
        let ring = self.ring();
        (ring.lookback(trigger, lookback), ring.newest_sequence())
    }

    fn newest_end(&self) -> Option<Instant> {
        self.ring().newest_end()
    }

    fn since(&self, sequence: u64) -> Vec<(Arc<Segment>, Option<Instant>)> {
        self.ring().since(sequence)
    }

    fn state(&self) -> FeedState {
        let st = lock(&self.shared.status);
        FeedState {
            live: st.connected,
            ended: st.ended,
            streamed: st.frames > 0,
            last_error: st.last_error.clone(),
        }
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        Camera::subscribe(self)
    }

    fn follow(&self) -> Following {
        Following::new(self.follow_closely())
    }
}

async fn run(shared: Arc<Shared>, options: CameraOptions) {
    let mut backoff = Backoff::new(options.backoff, seed());
    let mut next_sequence = 1u64;
    let mut stream_id = 0u64;
    let mut last_reason: Option<String> = None;
    let mut failures = 0u64;
    loop {
        stream_id += 1;
        let started = Instant::now();
        let first_sequence = next_sequence;
        // A panic while reading a camera (a bug, in preroll or a library, set off by what the
        // camera sent) ends this connection, not the camera: it is reported and retried.
        let streaming = run_stream(&shared, &options, stream_id, &mut next_sequence);
        let result = match std::panic::AssertUnwindSafe(streaming).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(SourceError::new(
                SourceErrorKind::Protocol,
                format!(
                    "reading the camera hit a bug in preroll ({}); reconnecting",
                    panic_text(panic.as_ref())
                ),
            )),
        };
        let was_connected = std::mem::replace(&mut lock(&shared.status).connected, false);
        backoff.connection_ended(started.elapsed(), next_sequence > first_sequence);
        let error = match result {
            Ok(()) if options.source.is_finite() => {
                tracing::info!(camera = %shared.name, "source ended");
                let _ = shared.changes.send(CameraChange::Disconnected {
                    reason: "the source ended".to_owned(),
                    ended: true,
                });
                lock(&shared.status).ended = true;
                shared.updates.send_modify(|_| {});
                return;
            }
            Ok(()) => SourceError::new(SourceErrorKind::Protocol, "the stream ended"),
            Err(e) => e,
        };
        failures += 1;
        let reason = error.to_string();
        let ended = (options.source.is_finite() || options.give_up_when_persistent)
            && error.is_persistent();
        // Told when a connection ends, or when the reason it cannot connect changes; not
        // at every retry.
        if was_connected || ended || last_reason.as_deref() != Some(reason.as_str()) {
            let _ = shared.changes.send(CameraChange::Disconnected {
                reason: reason.clone(),
                ended,
            });
        }
        if ended {
            // A file played once that can never be read (not a format preroll reads, no
            // video in it), or a one-off recording from a camera that refuses it: another
            // attempt fails the same way, so the camera ends here with the reason, and
            // whoever waits for its media learns at once.
            tracing::warn!(camera = %shared.name, source = %options.source.display(), "{reason}");
            let mut st = lock(&shared.status);
            st.last_error = Some(reason);
            st.ended = true;
            drop(st);
            shared.updates.send_modify(|_| {});
            return;
        }
        if last_reason.as_deref() != Some(reason.as_str()) {
            tracing::warn!(camera = %shared.name, source = %options.source.display(), "{reason}");
        } else {
            tracing::debug!(camera = %shared.name, failures, "{reason}");
        }
        lock(&shared.status).last_error = Some(reason.clone());
        last_reason = Some(reason);
        tokio::time::sleep(backoff.next_delay(error.is_persistent())).await;
    }
}

/// One connection: open, stream until it ends or fails, and flush what it held.
async fn run_stream(
    shared: &Shared,
    options: &CameraOptions,
    stream_id: u64,
    next_sequence: &mut u64,
) -> Result<(), SourceError> {
    let mut source = options.source.open(&options.name, &options.rtsp).await?;
    {
        let mut st = lock(&shared.status);
        st.connected = true;
        if st.stream_id > 0 {
            st.reconnects += 1;
            tracing::info!(camera = %shared.name, stream_id, "reconnected");
        }
        st.stream_id = stream_id;
        st.last_error = None;
        st.source_audio = source.source_audio();
    }
    let mut segmenter = Segmenter::new(
        stream_id,
        *next_sequence,
        options.segmenter.clone(),
        options.hygiene.clone(),
    );
    let mut announced = false;
    let result = loop {
        let event = match source.next().await {
            Ok(Some(e)) => e,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match event {
            SourceEvent::Params(params) => {
                let tracks = track_lines(&params);
                let before = std::mem::replace(&mut lock(&shared.status).params, params.clone());
                // The first tracks of a connection announce it; later ones are a change.
                let change = if announced {
                    (track_lines(&before) != tracks)
                        .then_some(CameraChange::TracksChanged { tracks })
                } else {
                    announced = true;
                    Some(CameraChange::Connected { stream_id, tracks })
                };
                if let Some(change) = change {
                    let _ = shared.changes.send(change);
                }
                match segmenter.set_params(params) {
                    Ok(closed) => publish(shared, closed),
                    Err(e) => {
                        break Err(SourceError::new(
                            SourceErrorKind::Unsupported,
                            format!("track parameters: {e}"),
                        ));
                    }
                }
            }
            SourceEvent::Lost(packets) => {
                lock(&shared.status).lost_packets += u64::from(packets);
                tracing::debug!(camera = %shared.name, packets, "packets lost");
            }
            SourceEvent::Frame(frame) => {
                {
                    let mut st = lock(&shared.status);
                    st.frames += 1;
                    st.bytes += frame.data.len() as u64;
                }
                let pushed = segmenter.push(frame);
                lock(&shared.status).pending_bytes = segmenter.pending_bytes();
                match pushed {
                    Ok(segments) => segments.into_iter().for_each(|s| publish(shared, Some(s))),
                    Err(e) => {
                        break Err(SourceError::new(SourceErrorKind::Protocol, e.to_string()));
                    }
                }
            }
        }
    };
    for s in segmenter.finish() {
        publish(shared, Some(s));
    }
    lock(&shared.status).dropped_frames += segmenter.dropped().total();
    *next_sequence = segmenter.next_sequence();
    result
}

fn publish(shared: &Shared, segment: Option<Segment>) {
    let Some(segment) = segment else { return };
    let sequence = segment.sequence;
    tracing::debug!(camera = %shared.name, sequence, age = ?segment.received.map(|r| r.elapsed()), duration = ?segment.duration_time(), "segment");
    lock(&shared.ring).push(Arc::new(segment));
    shared.updates.send_replace(sequence);
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// Waits until the camera's ring reaches `lookback` back from now (measured, like the
/// lookback itself, by when segments arrived), the source ends, or `limit` passes. Returns
/// how far back the ring reaches.
pub async fn wait_for_preroll(camera: &Camera, lookback: Duration, limit: Duration) -> Duration {
    let mut updates = camera.subscribe();
    let deadline = Instant::now() + limit;
    loop {
        let reach = camera
            .ring()
            .oldest_start()
            .map(|t| Instant::now().saturating_duration_since(t));
        // At least one segment, even for a zero lookback: the clip starts at a keyframe.
        if reach.is_some_and(|r| r >= lookback) || camera.status().ended {
            return reach.unwrap_or_default();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return reach.unwrap_or_default();
        }
        // Time alone can complete the wait, so do not sleep on updates only.
        let step = left.min(Duration::from_millis(50));
        let _ = tokio::time::timeout(step, updates.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceSpec;

    /// The service puts its listeners in place after its cameras start; a camera that is
    /// already streaming by then still reports its connection to the first listener.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_listener_hears_a_connection_made_before_it_listened() {
        let camera = Camera::spawn(CameraOptions::new("demo", SourceSpec::Demo));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !camera.status().connected {
            assert!(Instant::now() < deadline, "the demo never connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut first = camera.changes();
        match first.try_recv() {
            Ok(CameraChange::Connected { tracks, .. }) => assert!(!tracks.is_empty()),
            other => panic!("expected the connection, got {other:?}"),
        }
        // A later listener hears what happens from then on only.
        let mut later = camera.changes();
        assert!(matches!(
            later.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty)
        ));
    }
}
