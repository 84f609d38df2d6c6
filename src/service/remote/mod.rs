//! Copies of clips in an S3-compatible bucket (`[storage.remote]`), and the clips of every
//! node sharing it.
//!
//! It hangs off the service's event stream like the other outside consumers:
//! - `clip.created`: the clip's file is followed while it records, and each complete part
//!   is put in the bucket as it lands (`parts`), with a sidecar, so a machine lost mid-clip
//!   leaves a playable prefix behind;
//! - `clip.done`, `clip.recovered`: the finished file goes in the queue of uploads, kept on
//!   disk until done (`queue`); it is uploaded, verified (size and MD5), described by a
//!   sidecar, recorded (`copies`), then — with `keep_local = false` — removed here;
//! - `clip.deleted` by the API: the copy goes too;
//! - with `upload = "clips+continuous"`, each continuous file once it is finished.
//!
//! Any node lists and serves every clip in the bucket from the sidecars (`catalog`).

pub mod catalog;
pub mod copies;
mod error;
pub mod keys;
mod parts;
mod queue;
pub mod serve;
mod transfer;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use serde::{Deserialize, Serialize};

use crate::config::RemoteConfig;

pub use copies::{Copies, Copy, Storage};
pub use error::RemoteError;
pub use keys::Keys;
pub use transfer::upload as upload_file;

use super::ClipView;

/// What a sidecar holds: the clip's view as its node last saw it, and where its media is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sidecar {
    #[serde(flatten)]
    pub clip: ClipView,
    /// The finished file's object, once it is uploaded and verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Copy>,
    /// The prefix of its pieces while it records (or when its node died recording it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<String>,
}

/// The link to the bucket, and what is known of the uploads.
#[derive(Debug)]
pub struct Remote {
    pub store: Arc<AmazonS3>,
    pub keys: Keys,
    pub config: RemoteConfig,
    pub copies: Arc<Copies>,
    queue: queue::Queue,
    pub catalog: catalog::Catalog,
    status: Mutex<RemoteStatus>,
}

/// What `GET /api/integrations` says of the bucket (as `remote`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteStatus {
    pub url: String,
    /// Uploads waiting (finished clips and deletions).
    pub pending: usize,
    pub uploaded: u64,
    pub uploaded_bytes: u64,
    /// Pieces of clips in progress put in the bucket.
    pub parts: u64,
    pub failures: u64,
    /// The last failure, until the next success.
    pub last_error: Option<String>,
}

/// How long a single request may take before it is retried (a part is 8 MiB: over a 1 Mb/s
/// uplink that is about a minute).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

impl Remote {
    /// Builds the link (no request is made yet) and reads the queue and the copies kept
    /// under `<recordings>/.preroll`.
    pub fn open(config: &RemoteConfig, node: &str, recordings: &Path) -> anyhow::Result<Remote> {
        let store = connect(config)?;
        let dir = crate::recorder::Dir::root(recordings)?
            .descend(Path::new(super::history::DIR), true)?;
        let copies = Copies::open(dir)
            .map_err(|e| anyhow::anyhow!("storage.remote: the record of uploads: {e}"))?;
        let queue = queue::Queue::open(recordings)
            .map_err(|e| anyhow::anyhow!("storage.remote: the queue of uploads: {e}"))?;
        for path in queue.paths() {
            copies.uploading(&path, true);
        }
        let keys = Keys::new(&config.prefix, node);
        Ok(Remote {
            store: Arc::new(store),
            catalog: catalog::Catalog::new(keys.clone()),
            keys,
            config: config.clone(),
            copies: Arc::new(copies),
            queue,
            status: Mutex::new(RemoteStatus {
                url: config.url(),
                ..RemoteStatus::default()
            }),
        })
    }

    pub fn status(&self) -> RemoteStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.pending = self.queue.len();
        s
    }

    fn note(&self, f: impl FnOnce(&mut RemoteStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The clips of this node, then those in the bucket it does not hold (other nodes',
    /// and its own it no longer lists), as the bucket's sidecars describe them.
    pub fn merge(&self, mut local: Vec<ClipView>) -> Vec<ClipView> {
        let ids: std::collections::HashSet<String> = local.iter().map(|v| v.id.clone()).collect();
        local.extend(
            self.catalog
                .all()
                .into_iter()
                .filter(|s| !ids.contains(&s.clip.id))
                .map(Sidecar::into_view),
        );
        local
    }

    /// A clip this node does not hold, from the bucket's sidecars (listed again first when
    /// it is not known yet).
    pub async fn find(&self, id: &str) -> Option<Sidecar> {
        if let Some(s) = self.catalog.find(id) {
            return Some(s);
        }
        self.catalog.list_if_stale(self.store.as_ref()).await;
        self.catalog.find(id)
    }
}

impl Sidecar {
    /// The clip as this node lists it: held in the bucket only.
    pub fn into_view(self) -> ClipView {
        let mut view = self.clip;
        view.storage = if self.object.is_some() {
            Storage::Remote
        } else {
            Storage::Uploading
        };
        view
    }
}

/// The client for the configured bucket (no request is made yet).
pub fn connect(config: &RemoteConfig) -> anyhow::Result<AmazonS3> {
    // reqwest's TLS takes the process's provider: the ring one rustls is built with.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut options = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(REQUEST_TIMEOUT);
    if let Some(e) = &config.endpoint {
        options = options.with_allow_http(e.starts_with("http://"));
    }
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key.0)
        .with_secret_access_key(&config.secret_key.0)
        .with_client_options(options)
        // Not a SHA-256 of every byte for the signature: each copy is checked against the
        // MD5 taken as it was read (its ETag), which catches a body changed on the way too.
        .with_unsigned_payload(true)
        // A few quick retries per request; the queue retries the rest, with backoff,
        // across restarts.
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(30),
        });
    if let Some(t) = &config.session_token {
        builder = builder.with_token(&t.0);
    }
    if let Some(e) = &config.endpoint {
        builder = builder.with_endpoint(e);
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("storage.remote: {}", error::describe(&e)))
}

/// Starts following clips and working through the queue (needs a runtime).
pub fn start(service: &Arc<super::Service>) {
    let Some(remote) = service.remote.clone() else {
        return;
    };
    // Finished clips with no copy and no upload queued: finished before the bucket was
    // configured, or in the moment between their event and its record on disk.
    match service.clips.all() {
        Ok(views) => {
            for v in views {
                if v.state == super::ClipState::Done && v.storage == Storage::Local {
                    let job = queue::Job::Clip {
                        id: v.id.clone(),
                        path: v.path.clone(),
                    };
                    remote.copies.uploading(&v.path, true);
                    if let Err(e) = remote.queue.push(&job) {
                        tracing::warn!(clip = %v.id, "upload queue: {e}");
                    }
                }
            }
        }
        Err(e) => tracing::warn!("looking for clips not uploaded yet: {e}"),
    }
    let weak = Arc::downgrade(service);
    tokio::spawn(queue::listen(
        weak.clone(),
        remote.clone(),
        service.events.subscribe("remote", None),
    ));
    tokio::spawn(queue::work(weak.clone(), remote.clone()));
    if remote.config.continuous {
        tokio::spawn(queue::scan_continuous(weak.clone(), remote.clone()));
    }
    tokio::spawn(catalog::refresh(weak, remote));
}
