//! `preroll serve`: every configured camera ingesting all the time, clips on request over
//! an HTTP API, metrics, and recovery of clips a crash left unfinished.

pub(crate) mod api;
pub mod clips;
mod download;
pub mod events;
mod exports;
mod history;
mod http;
mod json_file;
mod listeners;
mod listing;
mod live;
mod metrics;
pub mod mqtt;
mod observe;
pub mod order;
mod outbox;
mod paths;
mod recordings;
pub mod remote;
pub mod retention;
pub mod sessions;
mod ui;
pub mod webhooks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::camera::{Camera, CameraOptions, IngestRuntime, TICK_TCP, TICK_UDP};
use crate::config::{CameraConfig, Config};
use crate::recorder::live::{ClipRequest, record_live};
use crate::recorder::{self, ClipOptions, RecordError, Recording};
use crate::source::Transport;

use events::{EventBody, EventBus, EventKind};
use retention::{KeepSet, Reason, Retention};

pub use clips::{Clip, ClipState, ClipView, Clips};
pub use history::History;
pub use order::ClipOrder;
pub use paths::{AllowedDirs, PathRefused};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a stopping service waits for the broker to take its last messages.
const MQTT_DRAIN: Duration = Duration::from_secs(2);

/// A configured camera and, when enabled, its running ingest.
pub struct ServiceCamera {
    pub config: CameraConfig,
    pub camera: Option<Arc<Camera>>,
}

/// Counters kept by the service itself (cameras and clips keep the rest).
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    pub finalize: metrics::Histogram,
    pub fsync: metrics::Histogram,
    pub clips_done: AtomicU64,
    pub clips_failed: AtomicU64,
    pub clips_recovered: AtomicU64,
    /// Events published, by kind (in the order of [`EventKind::ALL`]).
    pub events: [AtomicU64; EventKind::ALL.len()],
    /// Retention: clips and bytes deleted by reason (in the order of [`Reason::ALL`]),
    /// passes, and what clips took after the last pass.
    pub retention: RetentionMetrics,
}

#[derive(Debug, Default)]
pub struct RetentionMetrics {
    pub deleted: [AtomicU64; Reason::ALL.len()],
    pub deleted_bytes: [AtomicU64; Reason::ALL.len()],
    /// By `DELETE /api/clips/{id}`.
    pub deleted_by_api: AtomicU64,
    /// Continuous recordings deleted: by `continuous_max_age`, by `continuous_max_bytes`.
    pub continuous_deleted: [AtomicU64; 2],
    pub continuous_deleted_bytes: [AtomicU64; 2],
    pub passes: AtomicU64,
    pub failures: AtomicU64,
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub last_pass: metrics::Histogram,
}

/// Everything a running service shares between its API and its clip tasks.
pub struct Service {
    pub config: Config,
    pub dirs: AllowedDirs,
    pub cameras: Vec<ServiceCamera>,
    pub clips: Clips,
    /// The clips marked `keep`, which retention passes over.
    pub keep: Arc<KeepSet>,
    pub retention: Arc<Retention>,
    /// The bucket clips are copied to, when `[storage.remote]` is configured.
    pub remote: Option<Arc<remote::Remote>>,
    /// Each continuous-recording camera's archive.
    pub archives: Vec<Arc<crate::continuous::Archive>>,
    /// The continuous recorders; shutdown waits for them to finish their files.
    recorders: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Paths of clips retention deleted whose history entries could not be removed yet.
    forget_pending: Mutex<std::collections::HashSet<std::path::PathBuf>>,
    pub metrics: ServiceMetrics,
    /// Every clip, camera and service event, to every consumer.
    pub events: Arc<EventBus>,
    /// Each webhook's counters.
    pub webhooks: Vec<Arc<webhooks::WebhookStats>>,
    /// Browser sessions (the UI's cookie) and the brake on wrong tokens.
    pub sessions: sessions::Sessions,
    /// The MQTT link's state, when `[mqtt]` is configured.
    pub mqtt: Mutex<Option<Arc<Mutex<mqtt::MqttStatus>>>>,
    /// The id of the last event the clip history has handled (shutdown waits for it).
    history_done: watch::Sender<u64>,
    /// True once the service stops: refuses new clips, and ends long-lived streams.
    shutting_down: watch::Sender<bool>,
    /// Clips not yet final; shutdown waits for this to reach 0.
    active: watch::Sender<usize>,
    /// The cameras run here, apart from the API (see [`IngestRuntime`]). Declared last: it
    /// stops after the cameras are dropped.
    _ingest: IngestRuntime,
}

/// Why a clip could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteRefused {
    #[error("no clip with id {0:?}")]
    NotFound(String),
    #[error("the clip is {}; stop it and delete it once it is final", .0.name())]
    InProgress(ClipState),
    #[error("{0}")]
    Storage(String),
}

/// Why a clip request was refused, with the HTTP status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ClipRefused {
    #[error("no camera named {0:?}")]
    UnknownCamera(String),
    #[error("camera {0:?} is disabled in the config")]
    CameraDisabled(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Path(#[from] PathRefused),
    #[error("{0}")]
    Conflict(String),
    #[error("the service is shutting down")]
    ShuttingDown,
    /// As many clips as `api.max_clips_recording` are recording or finalizing.
    #[error("{0} clips are recording already (api.max_clips_recording); try again when one ends")]
    TooMany(usize),
    #[error("{0}")]
    Storage(String),
}

impl Service {
    /// Resolves the storage directories and starts every enabled camera (needs a runtime).
    pub fn start(config: Config) -> anyhow::Result<Arc<Service>> {
        let dirs = AllowedDirs::resolve(&config.storage.recordings, &config.storage.allowed)?;
        let udp = config
            .cameras
            .iter()
            .any(|c| c.enabled && c.transport == Transport::Udp);
        let ingest = IngestRuntime::start(if udp { TICK_UDP } else { TICK_TCP })?;
        let cameras = config
            .cameras
            .iter()
            .map(|c| ServiceCamera {
                config: c.clone(),
                camera: c
                    .enabled
                    .then(|| Arc::new(Camera::spawn_on(&ingest, camera_options(c)))),
            })
            .collect();
        let (active, _) = watch::channel(0);
        let history = match History::open(&dirs.recordings) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("{e}; finished clips are listed from memory, until a restart");
                None
            }
        };
        let (keep, suspended) = retention::open_keep(&dirs.recordings);
        let retention = Arc::new(Retention::new(
            config.retention.clone(),
            config
                .cameras
                .iter()
                .map(|c| (c.name.clone(), c.retention.clone()))
                .collect(),
            recorder::Dir::root(&dirs.recordings)?,
            keep.clone(),
            suspended,
        ));
        let recordings_dir = recorder::Dir::root(&dirs.recordings)?;
        let mut archives = Vec::new();
        for c in config.cameras.iter().filter(|c| c.enabled) {
            let Some(length) = c.continuous else { continue };
            let options = ClipOptions {
                orientation: c.orientation,
            };
            let archive =
                crate::continuous::Archive::open(&recordings_dir, &c.name, length, options)
                    .map_err(|e| {
                        anyhow::anyhow!("cameras {:?}: continuous recording: {e}", c.name)
                    })?;
            archives.push(Arc::new(archive));
        }
        let hooks = config
            .webhooks
            .iter()
            .map(|h| webhooks::Webhook::open(h.clone(), &dirs.recordings))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let remote = match &config.storage.remote {
            Some(r) => Some(Arc::new(remote::Remote::open(
                r,
                &config.node,
                &dirs.recordings,
            )?)),
            None => None,
        };
        let clips = Clips::new(history, keep.clone())
            .located(&config.node, remote.as_ref().map(|r| r.copies.clone()));
        let events = Arc::new(EventBus::default());
        let session_lifetime = config.api.session_lifetime;
        let service = Arc::new(Service {
            config,
            dirs,
            cameras,
            clips,
            remote,
            keep,
            retention,
            forget_pending: Mutex::default(),
            archives,
            recorders: Mutex::default(),
            metrics: ServiceMetrics::default(),
            webhooks: hooks.iter().map(|h| h.stats.clone()).collect(),
            mqtt: Mutex::new(None),
            sessions: sessions::Sessions::new(session_lifetime),
            history_done: watch::channel(events.next_id().saturating_sub(1)).0,
            events,
            shutting_down: watch::channel(false).0,
            active,
            _ingest: ingest,
        });
        listeners::start(&service);
        remote::start(&service);
        for archive in &service.archives {
            let Some(camera) = service
                .camera(&archive.camera)
                .and_then(|c| c.camera.clone())
            else {
                continue;
            };
            let task = tokio::spawn(crate::continuous::run(
                camera,
                archive.clone(),
                service.shutting_down.subscribe(),
            ));
            lock(&service.recorders).push(task);
        }
        if service.retention.is_on() {
            tokio::spawn(retention::run(
                Arc::downgrade(&service),
                service.retention.clone(),
            ));
        }
        for hook in hooks {
            hook.start(&service.events);
        }
        if let Some(config) = &service.config.mqtt {
            let status = mqtt::start(&service, config)?;
            *service.mqtt.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        }
        Ok(service)
    }

    /// The MQTT link's state, when there is one.
    pub fn mqtt_status(&self) -> Option<mqtt::MqttStatus> {
        let link = self
            .mqtt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let status = link.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Some(status)
    }

    /// Publishes an event of a clip.
    fn clip_event(&self, kind: EventKind, view: ClipView) {
        self.events.publish(EventBody::clip(kind, view));
    }

    pub fn camera(&self, name: &str) -> Option<&ServiceCamera> {
        self.cameras.iter().find(|c| c.config.name == name)
    }

    /// A configured camera that is enabled, with its running `Camera`.
    pub fn running_camera(&self, name: &str) -> Result<(&ServiceCamera, Arc<Camera>), ClipRefused> {
        let entry = self
            .camera(name)
            .ok_or_else(|| ClipRefused::UnknownCamera(name.to_owned()))?;
        let camera = entry
            .camera
            .clone()
            .ok_or_else(|| ClipRefused::CameraDisabled(name.to_owned()))?;
        Ok((entry, camera))
    }

    /// Starts a clip: the file is reserved before this returns (so a taken path is refused
    /// here), and recording goes on in the background.
    pub async fn start_clip(
        self: &Arc<Self>,
        camera_name: &str,
        order: ClipOrder,
    ) -> Result<Arc<Clip>, ClipRefused> {
        self.admit()?;
        let (entry, camera) = self.running_camera(camera_name)?;
        let duration = order.duration.unwrap_or(entry.config.clip_duration);
        let lookback = order.lookback.unwrap_or(entry.config.clip_lookback);
        // The trigger is when the request arrived, before any file work.
        let trigger = Instant::now();
        let trigger_wall = SystemTime::now();
        let name = match &order.filename {
            Some(f) => f.clone(),
            None => default_filename(camera_name, trigger_wall),
        };
        let options = ClipOptions {
            orientation: entry.config.orientation,
        };
        let (path, recording) = self.reserve(&name, options).await?;
        let (clip, control) = self.clips.add(clips::NewClip {
            camera: Some(camera_name.to_owned()),
            path,
            trigger: trigger_wall,
            lookback,
            duration,
            request_id: order.request_id.clone(),
            export: None,
        });
        self.active.send_modify(|n| *n += 1);
        self.clip_event(EventKind::ClipCreated, clip.view());
        let service = self.clone();
        let task_clip = clip.clone();
        let request = ClipRequest { duration, lookback };
        // A lookback past the ring goes on in the camera's continuous recording, if it has one.
        let older = self
            .archives
            .iter()
            .find(|a| a.camera == camera_name)
            .map(|a| a.clone() as Arc<dyn crate::recorder::live::Older>);
        tokio::spawn(async move {
            let result = record_live(
                &*camera,
                recording,
                trigger,
                request,
                control,
                older,
                &mut |p| {
                    if let Some((kind, view)) = task_clip.progress(p) {
                        service.clip_event(kind, view);
                    }
                },
            )
            .await;
            let (kind, view) = task_clip.finished(&result);
            // The history takes the final clip from the event (see `listeners`).
            service.clip_event(kind, view.clone());
            match &result {
                Ok(done) => {
                    service.metrics.finalize.observe(done.finalize_time);
                    service.metrics.fsync.observe(done.summary.sync_time);
                    tracing::info!(
                        camera = %camera.name(),
                        clip = %view.id,
                        path = %view.path.display(),
                        duration = view.duration,
                        preroll = view.preroll,
                        bytes = view.bytes,
                        "clip done"
                    );
                }
                Err(e) => {
                    tracing::warn!(camera = %camera.name(), clip = %view.id, "clip failed: {e}");
                }
            }
            service.active.send_modify(|n| *n = n.saturating_sub(1));
        });
        Ok(clip)
    }

    /// Refuses a new clip while shutting down, or when too many are in progress.
    fn admit(&self) -> Result<(), ClipRefused> {
        if *self.shutting_down.borrow() {
            return Err(ClipRefused::ShuttingDown);
        }
        // Each clip in progress holds a writer thread and a file: a client may not take all
        // of them. (Counted again where the clip is added; the check is only a cap.)
        let limit = self.config.api.max_clips_recording;
        if *self.active.borrow() >= limit {
            return Err(ClipRefused::TooMany(limit));
        }
        Ok(())
    }

    /// Checks a clip's file name and reserves its file, so a taken path is refused before
    /// the clip is announced.
    async fn reserve(
        &self,
        name: &str,
        options: ClipOptions,
    ) -> Result<(std::path::PathBuf, Recording), ClipRefused> {
        let path = self.dirs.clip_path(name)?;
        let recording = {
            let (path, dirs) = (path.clone(), self.dirs.clone());
            tokio::task::spawn_blocking(move || {
                // Directories are made and the file created through handles that follow no
                // symlink: a link planted after the check above is refused, not followed.
                let place = dirs.clip_place(&path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidInput => ClipRefused::Path(PathRefused::Forbidden {
                        name: path.display().to_string(),
                        rule: paths::RULE_SYMLINK,
                    }),
                    // A file (another clip) stands where the name needs a directory.
                    std::io::ErrorKind::NotADirectory => ClipRefused::Conflict(e.to_string()),
                    _ => ClipRefused::Storage(format!("{}: {e}", path.display())),
                })?;
                Recording::create_at(place, options).map_err(|e| match e {
                    RecordError::Exists { .. } | RecordError::InProgress { .. } => {
                        ClipRefused::Conflict(e.to_string())
                    }
                    other => ClipRefused::Storage(other.to_string()),
                })
            })
            .await
            .map_err(|e| ClipRefused::Storage(e.to_string()))??
        };
        Ok((path, recording))
    }

    /// Deletes a final clip: its file (through the storage handles, following no link), then
    /// its entry; publishes `clip.deleted`. A clip still recording or finalizing is refused.
    pub async fn delete_clip(self: &Arc<Self>, id: &str) -> Result<ClipView, DeleteRefused> {
        let clip = self
            .clips
            .get(id)
            .map_err(|e| DeleteRefused::Storage(e.to_string()))?
            .ok_or_else(|| DeleteRefused::NotFound(id.to_owned()))?;
        let view = clip.view();
        if !view.state.is_final() {
            return Err(DeleteRefused::InProgress(view.state));
        }
        let (dirs, path) = (self.dirs.clone(), view.path.clone());
        let removed = tokio::task::spawn_blocking(move || dirs.remove_clip(&path))
            .await
            .map_err(|e| DeleteRefused::Storage(e.to_string()))?;
        match removed {
            Ok(_) => {}
            // Not reachable below a storage directory without following a link (a
            // directory replaced by one): nothing of ours to remove there; the entry goes.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                tracing::warn!(clip = %view.id, "deleting: {e}; the entry is removed");
            }
            Err(e) => {
                return Err(DeleteRefused::Storage(format!(
                    "removing {}: {e}",
                    view.path.display()
                )));
            }
        }
        let (service, id) = (self.clone(), id.to_owned());
        let forgotten = {
            let id = id.clone();
            tokio::task::spawn_blocking(move || service.clips.remove(&id))
                .await
                .map_err(|e| DeleteRefused::Storage(e.to_string()))?
                .map_err(|e| DeleteRefused::Storage(e.to_string()))?
        };
        if !forgotten {
            return Err(DeleteRefused::NotFound(id));
        }
        tracing::info!(clip = %view.id, path = %view.path.display(), "clip deleted");
        self.keep.forget(std::slice::from_ref(&view.path));
        self.metrics
            .retention
            .deleted_by_api
            .fetch_add(1, Ordering::Relaxed);
        self.events.publish(EventBody {
            reason: Some("api".into()),
            path: Some(view.path.clone()),
            bytes: Some(view.bytes),
            ..EventBody::clip(EventKind::ClipDeleted, view.clone())
        });
        Ok(view)
    }

    /// Takes a retention pass's report: forgets the deleted clips' entries, and publishes,
    /// counts and logs each deletion.
    pub fn retention_done(&self, report: retention::PassReport) {
        let m = &self.metrics.retention;
        m.passes.fetch_add(1, Ordering::Relaxed);
        m.last_pass.observe(report.elapsed);
        let freed: u64 = report.deleted.iter().map(|d| d.bytes).sum();
        m.files.store(
            (report.files - report.deleted.len()) as u64,
            Ordering::Relaxed,
        );
        m.bytes
            .store(report.bytes.saturating_sub(freed), Ordering::Relaxed);
        for f in &report.failed {
            m.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("retention: {f}");
        }
        for u in &report.unreadable {
            tracing::warn!("retention: passed over {u}");
        }
        for p in &report.continuous {
            let i = usize::from(p.reason == "continuous_max_bytes");
            m.continuous_deleted[i].fetch_add(1, Ordering::Relaxed);
            m.continuous_deleted_bytes[i].fetch_add(p.bytes, Ordering::Relaxed);
            tracing::info!(
                camera = p.camera,
                path = %p.path.display(),
                bytes = p.bytes,
                reason = p.reason,
                "continuous recording deleted by retention"
            );
        }
        if report.deleted.is_empty() && lock(&self.forget_pending).is_empty() {
            return;
        }
        let mut paths = std::mem::take(&mut *lock(&self.forget_pending));
        paths.extend(report.deleted.iter().map(|d| d.path.clone()));
        let (views, failed) = self.clips.forget_paths(&paths);
        if let Some(e) = failed {
            // The files are gone; their entries go at the next pass (a download answers 410
            // meanwhile).
            tracing::warn!("retention: removing deleted clips from the history: {e}");
            *lock(&self.forget_pending) = paths;
        }
        let mut views: std::collections::HashMap<_, _> =
            views.into_iter().map(|v| (v.path.clone(), v)).collect();
        for d in report.deleted {
            let i = Reason::ALL.iter().position(|r| *r == d.reason).unwrap_or(0);
            m.deleted[i].fetch_add(1, Ordering::Relaxed);
            m.deleted_bytes[i].fetch_add(d.bytes, Ordering::Relaxed);
            let view = views.remove(&d.path);
            tracing::info!(
                clip = view.as_ref().map_or("", |v| v.id.as_str()),
                path = %d.path.display(),
                bytes = d.bytes,
                reason = d.reason.name(),
                "clip deleted by retention"
            );
            let mut body = match view {
                Some(v) => EventBody::clip(EventKind::ClipDeleted, v),
                None => EventBody::new(EventKind::ClipDeleted),
            };
            body.camera = body.camera.or(d.camera);
            body.reason = Some(d.reason.name().into());
            body.path = Some(d.path);
            body.bytes = Some(d.bytes);
            self.events.publish(body);
        }
    }

    /// Marks a clip `keep` (retention never deletes it) or not.
    pub async fn set_keep(
        self: &Arc<Self>,
        id: &str,
        keep: bool,
    ) -> Result<Option<ClipView>, clips::KeepError> {
        let (service, id) = (self.clone(), id.to_owned());
        tokio::task::spawn_blocking(move || service.clips.set_keep(&id, keep))
            .await
            .map_err(|e| clips::KeepError::Storage {
                message: e.to_string(),
                full: false,
            })?
    }

    /// Refuses new clips, stops every clip in progress, and waits (up to `limit`) until all
    /// of them are finalized.
    pub async fn shut_down(&self, limit: Duration) -> bool {
        self.shutting_down.send_replace(true);
        for clip in self.clips.in_memory() {
            let _ = clip.stop();
        }
        let mut active = self.active.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        if tokio::time::timeout_at(deadline, active.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            return false;
        }
        // Continuous recorders finish their files.
        let recorders = std::mem::take(&mut *lock(&self.recorders));
        for task in recorders {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                return false;
            }
        }
        // The last clips' events reach the history before the service exits.
        let last = self.events.next_id().saturating_sub(1);
        let mut history = self.history_done.subscribe();
        let settled = tokio::time::timeout_at(deadline, history.wait_for(|done| *done >= last))
            .await
            .is_ok();
        // And the broker, briefly (what is left is published again after the restart: the
        // states are retained, and the will says offline).
        let until = tokio::time::Instant::now() + MQTT_DRAIN;
        while self
            .mqtt_status()
            .is_some_and(|s| s.connected && s.waiting > 0)
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        settled
    }

    /// Publishes `service.started`, then the cameras' connection events, which follow it
    /// however fast a camera connected.
    fn announce_started(self: &Arc<Self>) {
        self.events
            .publish(EventBody::new(EventKind::ServiceStarted));
        listeners::forward_camera_changes(self);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutting_down.borrow()
    }

    /// Resolves once the service is stopping (at once if it already is).
    pub async fn stopping(&self) {
        let mut rx = self.shutting_down.subscribe();
        // An error means the service is gone, which is stopping too.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

fn camera_options(c: &CameraConfig) -> CameraOptions {
    let mut o = CameraOptions::new(&c.name, c.source.clone());
    o.rtsp.transport = c.transport;
    o.rtsp.connect_timeout = c.connect_timeout;
    o.rtsp.stall_timeout = c.stall_timeout;
    o.ring = c.ring;
    o.segmenter.part_duration = c.part;
    o
}

/// `front/front-20261124T081530.123Z-3.mp4`: grouped by camera, sorted by time, and unique
/// through the per-process counter.
fn default_filename(camera: &str, at: SystemTime) -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{camera}/{camera}-{}-{n}.mp4", crate::time::compact(at))
}

/// Runs the service until SIGINT, SIGTERM or SIGHUP: salvages interrupted clips, starts the
/// cameras, serves the API; on the signal stops taking requests, finalizes every clip in
/// progress, and returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let service = Service::start(config)?;
    service.recover_interrupted().await;
    let listener = tokio::net::TcpListener::bind(service.config.api.bind)
        .await
        .map_err(|e| anyhow::anyhow!("api.bind {}: {e}", service.config.api.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        cameras = service.cameras.iter().filter(|c| c.camera.is_some()).count(),
        recordings = %service.dirs.recordings.display(),
        "listening on http://{addr}"
    );
    // A line for scripts (and tests) that start the service on port 0.
    println!("preroll: listening on http://{addr}");
    service.announce_started();
    // The service runs for months: memory freed after reconnects and clips goes back.
    let releasing = tokio::spawn(crate::memory::release_free_periodically());

    let on_signal = {
        let service = service.clone();
        async move {
            let why = crate::signals::stop_requested().await;
            tracing::info!("{why}: finishing the clips in progress, then exiting");
            service.events.publish(EventBody {
                reason: Some(why.to_string()),
                ..EventBody::new(EventKind::ServiceStopping)
            });
            service.shutting_down.send_replace(true);
            for clip in service.clips.in_memory() {
                let _ = clip.stop();
            }
        }
    };
    let limits = http::HttpLimits {
        max_connections: service.config.api.max_connections,
        header_timeout: service.config.api.header_timeout,
    };
    http::serve(listener, api::router(service.clone()), limits, on_signal).await;
    releasing.abort();
    if service.shut_down(Duration::from_secs(120)).await {
        tracing::info!("every clip finalized; bye");
        Ok(())
    } else {
        anyhow::bail!(
            "clips were still finalizing after 120 s; their .partial files will be recovered at the next start"
        )
    }
}

impl Service {
    /// Salvages every `.partial` under the allowed directories (left by a crash or a kill),
    /// logging each and listing it among the clips.
    pub async fn recover_interrupted(&self) {
        let roots = self.dirs.handles().to_vec();
        // Continuous recordings are recovered by their archives (they are not clips).
        let continuous = self.dirs.recordings.join(crate::continuous::DIR);
        let found = tokio::task::spawn_blocking(move || {
            let mut results = Vec::new();
            for root in roots {
                match crate::recorder::find_partials_beneath(&root) {
                    Ok(places) => {
                        for place in places {
                            if place.path().starts_with(&continuous) {
                                continue;
                            }
                            let partial = crate::recorder::partial_path(&place.path());
                            results.push((partial, crate::recorder::recover_at(place)));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(dir = %root.path().display(), "looking for interrupted clips: {e}")
                    }
                }
            }
            results
        })
        .await
        .unwrap_or_default();
        for (partial, result) in found {
            match result {
                Ok(r) => {
                    tracing::info!(
                        partial = %partial.display(),
                        path = %r.summary.path.display(),
                        duration = r.summary.duration.as_secs_f64(),
                        bytes = r.summary.bytes,
                        cut_bytes = r.cut_bytes,
                        "recovered an interrupted clip"
                    );
                    self.metrics.fsync.observe(r.summary.sync_time);
                    let clip = self.clips.add_recovered(
                        r.summary.path.clone(),
                        Ok((r.summary.duration, r.summary.bytes)),
                    );
                    self.clip_event(EventKind::ClipRecovered, clip.view());
                }
                Err(e @ crate::recorder::RecoverError::Empty { .. }) => {
                    // Nothing was lost: the recording had no complete fragment yet.
                    tracing::info!(partial = %partial.display(), "{e}");
                }
                Err(e) if e.is_skip() => {
                    tracing::info!(partial = %partial.display(), "left alone: {e}");
                }
                Err(e) => {
                    tracing::warn!(partial = %partial.display(), "could not recover: {e}");
                    let clip = self.clips.add_recovered(partial, Err(e.to_string()));
                    self.clip_event(EventKind::ClipFailed, clip.view());
                }
            }
        }
    }
}
