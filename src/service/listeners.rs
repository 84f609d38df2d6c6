//! The service's own consumers of its events: the clip history and the metrics; and the
//! cameras' connection changes, turned into events.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::broadcast;

use super::Service;
use super::events::{EventBody, EventKind, Subscription};
use crate::camera::CameraChange;

/// Starts the consumers (subscribed before this returns, so they miss no event). They hold
/// the service weakly: they end with it.
pub fn start(service: &Arc<Service>) {
    let weak = Arc::downgrade(service);
    tokio::spawn(history(
        weak.clone(),
        service.events.subscribe("history", None),
    ));
    tokio::spawn(metrics(weak, service.events.subscribe("metrics", None)));
}

/// Starts the cameras' forwarders. Called once `service.started` is published, so a run's
/// camera events follow it; each camera kept its changes since it started for its first
/// listener, so none made before is lost.
pub fn forward_camera_changes(service: &Arc<Service>) {
    for c in &service.cameras {
        if let Some(camera) = &c.camera {
            tokio::spawn(camera_changes(
                Arc::downgrade(service),
                c.config.name.clone(),
                camera.changes(),
            ));
        }
    }
}

/// Moves each clip that became final from memory to the history on disk.
async fn history(service: Weak<Service>, mut events: Subscription) {
    while let Some(event) = events.recv().await {
        let Some(service) = service.upgrade() else {
            return;
        };
        let settle = event
            .body
            .clip
            .as_ref()
            .filter(|_| event.body.kind.is_final_clip())
            .map(|c| c.id.clone());
        if let Some(id) = settle {
            let s = service.clone();
            let done = tokio::task::spawn_blocking(move || match s.clips.get(&id) {
                Ok(Some(clip)) => s.clips.settle(&clip),
                Ok(None) => {}
                Err(e) => tracing::warn!(clip = %id, "writing the clip to the history: {e}"),
            })
            .await;
            if let Err(e) = done {
                tracing::warn!("writing a clip to the history: {e}");
            }
        }
        service.history_done.send_replace(event.id);
    }
}

/// Counts events by kind, and clips by outcome.
async fn metrics(service: Weak<Service>, mut events: Subscription) {
    while let Some(event) = events.recv().await {
        let Some(service) = service.upgrade() else {
            return;
        };
        let m = &service.metrics;
        let kind = event.body.kind;
        if let Some(i) = EventKind::ALL.iter().position(|k| *k == kind) {
            m.events[i].fetch_add(1, Ordering::Relaxed);
        }
        let recovered = event.body.clip.as_ref().is_some_and(|c| c.recovered);
        let counter = match kind {
            EventKind::ClipDone => Some(&m.clips_done),
            EventKind::ClipFailed if !recovered => Some(&m.clips_failed),
            EventKind::ClipRecovered => Some(&m.clips_recovered),
            _ => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A camera's connects, disconnects and track changes, as events.
async fn camera_changes(
    service: Weak<Service>,
    camera: String,
    mut changes: broadcast::Receiver<CameraChange>,
) {
    loop {
        let change = match changes.recv().await {
            Ok(c) => c,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Flapping faster than the events are forwarded: the camera's status in the
                // API still tells where it is now.
                tracing::warn!(camera = %camera, missed = n, "camera changes came too fast to report each");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(service) = service.upgrade() else {
            return;
        };
        let mut body = EventBody::camera(
            match change {
                CameraChange::Connected { .. } => EventKind::CameraConnected,
                CameraChange::TracksChanged { .. } => EventKind::CameraCodecChanged,
                CameraChange::Disconnected { .. } => EventKind::CameraDisconnected,
            },
            &camera,
        );
        match change {
            CameraChange::Connected { tracks, .. } | CameraChange::TracksChanged { tracks } => {
                body.tracks = Some(tracks);
            }
            CameraChange::Disconnected { reason, .. } => body.reason = Some(reason),
        }
        service.events.publish(body);
    }
}
