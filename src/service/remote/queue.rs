//! The uploads to do, kept on disk until done (`<recordings>/.preroll/uploads.jsonl`, an
//! [`Outbox`]), so a restart or a crash loses none; and the task that works through them one
//! at a time, oldest first, retrying with backoff while the bucket cannot be reached.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::copies::{Copy, Storage};
use super::error::RemoteError;
use super::keys::Keys;
use super::{Remote, Sidecar, transfer};
use crate::service::Service;
use crate::service::events::{EventBody, EventKind, Subscription};
use crate::service::outbox::Outbox;

/// Far more than a disconnected bucket sees queued in a month of events.
const MAX_PENDING: usize = 100_000;
/// How often finished continuous files are looked for.
const CONTINUOUS_SCAN: Duration = Duration::from_secs(5);
/// The longest wait between attempts while the bucket fails.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// A finished clip: upload, verify, describe, and (without `keep_local`) remove here.
    Clip { id: String, path: PathBuf },
    /// A finished continuous recording of `camera`, starting at `start_ms`.
    Continuous {
        path: PathBuf,
        camera: String,
        file: String,
        start_ms: u64,
    },
    /// A clip deleted (or failed): its objects go.
    Delete { path: PathBuf },
}

impl Job {
    fn path(&self) -> &std::path::Path {
        match self {
            Job::Clip { path, .. } | Job::Continuous { path, .. } | Job::Delete { path } => path,
        }
    }
}

#[derive(Debug)]
pub struct Queue {
    outbox: Mutex<Outbox>,
    wake: Notify,
    last_id: AtomicU64,
}

impl Queue {
    pub fn open(recordings: &std::path::Path) -> std::io::Result<Queue> {
        let outbox = Outbox::open(recordings, "uploads", MAX_PENDING)?;
        let last_id = outbox.pending().map(|p| p.id).max().unwrap_or(0);
        Ok(Queue {
            outbox: Mutex::new(outbox),
            wake: Notify::new(),
            last_id: AtomicU64::new(last_id),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The paths of the clips waiting to be uploaded.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.lock()
            .pending()
            .filter_map(|p| serde_json::from_str::<Job>(&p.body).ok())
            .filter(|j| !matches!(j, Job::Delete { .. }))
            .map(|j| j.path().to_owned())
            .collect()
    }

    /// Adds a job once it is on disk.
    pub fn push(&self, job: &Job) -> std::io::Result<()> {
        let body = serde_json::to_string(job).map_err(std::io::Error::other)?;
        // Ids only grow, across restarts too: microseconds since 1970, or one more.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut last = self.last_id.load(Ordering::Relaxed);
        let id = loop {
            let id = now.max(last + 1);
            match self
                .last_id
                .compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break id,
                Err(now_last) => last = now_last,
            }
        };
        for lost in self.lock().push(id, body)? {
            tracing::warn!(job = %lost.body, "upload queue full: the oldest job is given up");
        }
        self.wake.notify_one();
        Ok(())
    }

    fn front(&self) -> Option<(u64, Result<Job, String>)> {
        let outbox = self.lock();
        let p = outbox.front()?;
        Some((
            p.id,
            serde_json::from_str(&p.body).map_err(|_| p.body.clone()),
        ))
    }

    fn done(&self, id: u64) {
        let mut outbox = self.lock();
        if let Err(e) = outbox.done(id) {
            // Done again after a restart: uploads are idempotent.
            tracing::warn!("upload queue: marking a job done: {e}");
            outbox.forget(id);
        }
    }
}

/// Turns clip events into uploads, and follows each new clip while it records.
pub async fn listen(service: Weak<Service>, remote: Arc<Remote>, mut events: Subscription) {
    while let Some(event) = events.recv().await {
        let Some(service) = service.upgrade() else {
            return;
        };
        let Some(view) = &event.body.clip else {
            continue;
        };
        let job = match event.body.kind {
            EventKind::ClipCreated => {
                tokio::spawn(super::parts::follow(
                    Arc::downgrade(&service),
                    remote.clone(),
                    view.clone(),
                ));
                None
            }
            EventKind::ClipDone | EventKind::ClipRecovered => Some(Job::Clip {
                id: view.id.clone(),
                path: view.path.clone(),
            }),
            EventKind::ClipFailed if !view.recovered => Some(Job::Delete {
                path: view.path.clone(),
            }),
            EventKind::ClipDeleted if event.body.reason.as_deref() == Some("api") => {
                Some(Job::Delete {
                    path: view.path.clone(),
                })
            }
            _ => None,
        };
        let Some(job) = job else { continue };
        if !matches!(job, Job::Delete { .. }) {
            remote.copies.uploading(job.path(), true);
            service.clips.relocate(job.path());
        }
        if let Err(e) = remote.queue.push(&job) {
            // Not on disk: it is still done now, but a crash before it would lose it.
            tracing::warn!(clip = %view.id, "upload queue: {e}; uploading without a record");
            remote.queue.wake.notify_one();
        }
    }
}

/// Works through the queue until the service ends.
pub async fn work(service: Weak<Service>, remote: Arc<Remote>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some((id, job)) = remote.queue.front() else {
            let _ =
                tokio::time::timeout(Duration::from_secs(5), remote.queue.wake.notified()).await;
            if service.strong_count() == 0 {
                return;
            }
            continue;
        };
        let Some(s) = service.upgrade() else { return };
        let job = match job {
            Ok(j) => j,
            Err(body) => {
                tracing::warn!(job = %body, "upload queue: not a job, dropped");
                remote.queue.done(id);
                continue;
            }
        };
        let result = run(&s, &remote, &job).await;
        drop(s);
        match result {
            Ok(()) => {
                remote.queue.done(id);
                remote.note(|st| st.last_error = None);
                backoff = Duration::from_secs(1);
            }
            Err(e) if e.is_permanent() => {
                tracing::warn!(path = %job.path().display(), "upload given up: {e}");
                remote.copies.uploading(job.path(), false);
                remote.queue.done(id);
            }
            Err(e) => {
                tracing::warn!(
                    path = %job.path().display(),
                    retry_in = backoff.as_secs_f64(),
                    "upload failed: {e}"
                );
                remote.note(|st| {
                    st.failures += 1;
                    st.last_error = Some(e.to_string());
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn run(service: &Arc<Service>, remote: &Arc<Remote>, job: &Job) -> Result<(), RemoteError> {
    match job {
        Job::Clip { id, path } => upload_clip(service, remote, id, path).await,
        Job::Continuous {
            path,
            camera,
            file,
            start_ms,
        } => upload_continuous(service, remote, path, camera, file, *start_ms).await,
        Job::Delete { path } => delete(service, remote, path).await,
    }
}

/// Opens a file below the allowed directories (following no link) with its length.
async fn open(
    service: &Arc<Service>,
    path: &std::path::Path,
) -> std::io::Result<(std::fs::File, u64)> {
    let (dirs, path) = (service.dirs.clone(), path.to_owned());
    tokio::task::spawn_blocking(move || {
        let f = dirs.open_clip(&path)?;
        let len = f.metadata()?.len();
        Ok((f, len))
    })
    .await
    .map_err(std::io::Error::other)?
}

async fn upload_clip(
    service: &Arc<Service>,
    remote: &Arc<Remote>,
    id: &str,
    path: &std::path::Path,
) -> Result<(), RemoteError> {
    match service.clips.get(id) {
        Ok(Some(_)) => {}
        // Deleted meanwhile (its deletion job follows this one): nothing to upload.
        Ok(None) => {
            remote.copies.uploading(path, false);
            return Ok(());
        }
        Err(e) => return Err(RemoteError::Local(std::io::Error::other(e))),
    }
    let name = Keys::name(&service.dirs.recordings, path);
    let (file, len) = match open(service, path).await {
        Ok(f) => f,
        // Uploaded and removed before a restart that replayed the job.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && remote.copies.get(path).is_some() => {
            remote.copies.uploading(path, false);
            return Ok(());
        }
        Err(e) => return Err(RemoteError::Local(e)),
    };
    let key = remote.keys.clip(&name);
    let started = std::time::Instant::now();
    let copy = transfer::upload(remote.store.as_ref(), Arc::new(file), len, &key).await?;
    let keep_local = remote.config.keep_local;
    // The sidecar says where the clip will be once this job is done.
    let mut view = match service.clips.get(id) {
        Ok(Some(c)) => c.view(),
        _ => {
            remote.copies.uploading(path, false);
            return Ok(());
        }
    };
    view.storage = if keep_local {
        Storage::LocalAndRemote
    } else {
        Storage::Remote
    };
    put_sidecar(remote, &name, &view, Some(copy.clone()), None).await?;
    remote
        .copies
        .set(path, copy.clone())
        .map_err(RemoteError::Local)?;
    if !keep_local {
        let (dirs, p) = (service.dirs.clone(), path.to_owned());
        let removed = tokio::task::spawn_blocking(move || dirs.remove_clip(&p))
            .await
            .map_err(|e| RemoteError::Local(std::io::Error::other(e)))?;
        match removed {
            Ok(_) => {
                remote
                    .copies
                    .set(
                        path,
                        Copy {
                            local: false,
                            ..copy.clone()
                        },
                    )
                    .map_err(RemoteError::Local)?;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "removing the local copy after its upload: {e}")
            }
        }
    }
    remove_parts(remote, &name).await;
    remote.copies.uploading(path, false);
    service.clips.relocate(path);
    let elapsed = started.elapsed();
    remote.note(|st| {
        st.uploaded += 1;
        st.uploaded_bytes += len;
    });
    tracing::info!(
        path = %path.display(),
        key = %key,
        bytes = len,
        seconds = elapsed.as_secs_f64(),
        storage = view.storage.name(),
        "clip uploaded and verified"
    );
    let mut view = service
        .clips
        .get(id)
        .ok()
        .flatten()
        .map_or(view, |c| c.view());
    view.storage = remote.copies.storage(path);
    service.events.publish(EventBody {
        bytes: Some(len),
        ..EventBody::clip(EventKind::ClipUploaded, view)
    });
    Ok(())
}

async fn upload_continuous(
    service: &Arc<Service>,
    remote: &Arc<Remote>,
    path: &std::path::Path,
    camera: &str,
    file: &str,
    start_ms: u64,
) -> Result<(), RemoteError> {
    let (file_handle, len) = match open(service, path).await {
        Ok(f) => f,
        // Pruned by retention before its turn: nothing to upload.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            remote.copies.uploading(path, false);
            return Ok(());
        }
        Err(e) => return Err(RemoteError::Local(e)),
    };
    let key = remote.keys.continuous(&format!("{camera}/{file}"));
    transfer::upload(remote.store.as_ref(), Arc::new(file_handle), len, &key).await?;
    remote
        .copies
        .set_continuous_done(camera, start_ms)
        .map_err(RemoteError::Local)?;
    remote.copies.uploading(path, false);
    remote.note(|st| {
        st.uploaded += 1;
        st.uploaded_bytes += len;
    });
    tracing::debug!(camera, key = %key, bytes = len, "continuous recording uploaded and verified");
    Ok(())
}

/// Queues each camera's continuous files finished since the last one uploaded
/// (`upload = "clips+continuous"`), every [`CONTINUOUS_SCAN`].
pub async fn scan_continuous(service: Weak<Service>, remote: Arc<Remote>) {
    loop {
        let Some(s) = service.upgrade() else { return };
        for archive in &s.archives {
            let done = remote.copies.continuous_done(&archive.camera).unwrap_or(0);
            let dir = s
                .dirs
                .recordings
                .join(crate::continuous::DIR)
                .join(&archive.camera);
            let mut entries = archive.index.entries();
            entries.sort_by_key(|e| e.start_ms);
            for e in entries.into_iter().filter(|e| e.start_ms > done) {
                let path = dir.join(&e.file);
                if remote.copies.storage(&path) == Storage::Uploading {
                    continue;
                }
                remote.copies.uploading(&path, true);
                let job = Job::Continuous {
                    path,
                    camera: archive.camera.clone(),
                    file: e.file.clone(),
                    start_ms: e.start_ms,
                };
                if let Err(e) = remote.queue.push(&job) {
                    tracing::warn!(camera = %archive.camera, "upload queue: {e}");
                }
            }
        }
        drop(s);
        tokio::time::sleep(CONTINUOUS_SCAN).await;
    }
}

/// Removes a clip's objects: file, sidecar and pieces.
async fn delete(
    service: &Arc<Service>,
    remote: &Arc<Remote>,
    path: &std::path::Path,
) -> Result<(), RemoteError> {
    let name = Keys::name(&service.dirs.recordings, path);
    for key in [remote.keys.clip(&name), remote.keys.sidecar(&name)] {
        match remote.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(RemoteError::store("deleting", &key, e)),
        }
    }
    remove_parts(remote, &name).await;
    remote.copies.forget(path).map_err(RemoteError::Local)?;
    remote.catalog.forget(&remote.keys.node, &name);
    // A failed clip no longer says `uploading`.
    service.clips.relocate(path);
    Ok(())
}

/// Deletes the pieces of a clip that was in progress (best effort: a piece left behind is
/// only space, and the next upload of the clip tries again).
pub async fn remove_parts(remote: &Remote, name: &str) {
    let prefix = remote.keys.parts(name);
    let keys: Result<Vec<Key>, _> = remote
        .store
        .list(Some(&prefix))
        .map_ok(|m| m.location)
        .try_collect()
        .await;
    match keys {
        Ok(keys) => {
            for k in keys {
                if let Err(e) = remote.store.delete(&k).await {
                    tracing::warn!(key = %k, "deleting a piece of a clip: {e}");
                }
            }
        }
        Err(e) => tracing::warn!(prefix = %prefix, "listing the pieces of a clip: {e}"),
    }
}

/// Puts a clip's sidecar.
pub async fn put_sidecar(
    remote: &Remote,
    name: &str,
    view: &crate::service::ClipView,
    object: Option<Copy>,
    parts: Option<String>,
) -> Result<(), RemoteError> {
    let mut clip = view.clone();
    clip.node = Some(remote.keys.node.clone());
    let sidecar = Sidecar {
        clip,
        object,
        parts,
    };
    let body = serde_json::to_vec_pretty(&sidecar)
        .map_err(|e| RemoteError::Local(std::io::Error::other(e)))?;
    let key = remote.keys.sidecar(name);
    transfer::put(remote.store.as_ref(), &key, body.into()).await?;
    remote.catalog.insert(&key, sidecar);
    Ok(())
}
