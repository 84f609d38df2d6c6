//! Every clip in the bucket, from the sidecars of every node: listed every
//! [`REFRESH`] (only sidecars that changed since are read again), and on demand when a clip
//! asked for is not known yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::keys::Keys;
use super::{Remote, Sidecar};
use crate::service::Service;

/// How often the bucket is listed.
pub const REFRESH: Duration = Duration::from_secs(10);
/// At most this often on demand (a client asking for unknown ids).
const ON_DEMAND: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Catalog {
    keys: Keys,
    inner: Mutex<Inner>,
    /// One listing at a time.
    listing: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// By sidecar key: its ETag when read, and what it said.
    sidecars: HashMap<String, (Option<String>, Sidecar)>,
}

impl Catalog {
    pub fn new(keys: Keys) -> Catalog {
        Catalog {
            keys,
            inner: Mutex::default(),
            listing: tokio::sync::Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every sidecar known, newest trigger last.
    pub fn all(&self) -> Vec<Sidecar> {
        let mut all: Vec<Sidecar> = self
            .lock()
            .sidecars
            .values()
            .map(|(_, s)| s.clone())
            .collect();
        all.sort_by(|a, b| a.clip.trigger_time.cmp(&b.clip.trigger_time));
        all
    }

    pub fn find(&self, id: &str) -> Option<Sidecar> {
        self.lock()
            .sidecars
            .values()
            .find(|(_, s)| s.clip.id == id)
            .map(|(_, s)| s.clone())
    }

    /// A sidecar this node just wrote.
    pub fn insert(&self, key: &Key, sidecar: Sidecar) {
        self.lock()
            .sidecars
            .insert(key.to_string(), (None, sidecar));
    }

    pub fn forget(&self, node: &str, name: &str) {
        let key = self.keys.sidecar_of(node, name).to_string();
        self.lock().sidecars.remove(&key);
    }

    /// Lists the bucket's sidecars and reads those that are new or changed.
    pub async fn list(&self, store: &dyn ObjectStore) -> Result<(), object_store::Error> {
        let mut last = self.listing.lock().await;
        let metas: Vec<ObjectMeta> = store
            .list(Some(&self.keys.sidecars()))
            .try_collect()
            .await?;
        let mut read = HashMap::new();
        for meta in metas {
            if self.keys.parse_sidecar(&meta.location).is_none() {
                continue;
            }
            let key = meta.location.to_string();
            let known = self
                .lock()
                .sidecars
                .get(&key)
                .filter(|(etag, _)| etag.is_some() && *etag == meta.e_tag)
                .cloned();
            let entry = match known {
                Some(entry) => entry,
                None => match store.get(&meta.location).await {
                    Ok(got) => {
                        let bytes = got.bytes().await?;
                        match serde_json::from_slice::<Sidecar>(&bytes) {
                            Ok(s) => (meta.e_tag.clone(), s),
                            Err(e) => {
                                tracing::debug!(key = %key, "not a sidecar: {e}");
                                continue;
                            }
                        }
                    }
                    // Deleted between the listing and the read.
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                },
            };
            read.insert(key, entry);
        }
        self.lock().sidecars = read;
        *last = Some(Instant::now());
        Ok(())
    }

    /// Lists again if the last listing is older than [`ON_DEMAND`].
    pub async fn list_if_stale(&self, store: &dyn ObjectStore) {
        let stale = self
            .listing
            .lock()
            .await
            .is_none_or(|t| t.elapsed() >= ON_DEMAND);
        if stale && let Err(e) = self.list(store).await {
            // Said once per outage by `refresh`; a client polling would repeat it every second.
            tracing::debug!("listing the bucket's clips: {}", super::error::describe(&e));
        }
    }
}

/// Lists the bucket every [`REFRESH`] while the service runs.
pub async fn refresh(service: Weak<Service>, remote: Arc<Remote>) {
    let mut failing = false;
    loop {
        if service.strong_count() == 0 {
            return;
        }
        match remote.catalog.list(remote.store.as_ref()).await {
            Ok(()) => failing = false,
            Err(e) => {
                // Said once per outage, not every ten seconds.
                if !failing {
                    tracing::warn!("listing the bucket's clips: {}", super::error::describe(&e));
                }
                failing = true;
            }
        }
        tokio::time::sleep(REFRESH).await;
    }
}
