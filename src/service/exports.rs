//! `POST /api/cameras/{camera}/exports`: a range of a camera's continuous recording written
//! as a clip. An export is a clip in every other way: it is listed, downloaded, deleted,
//! kept and pruned like one, with the same events (`clip.created`, `clip.recording`, then
//! `clip.done` or `clip.failed`); its view carries the range, its gaps and the files it left
//! out.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::api::ApiError;
use super::clips::{self, Clip};
use super::events::EventKind;
use super::order::ExportOrder;
use super::{ClipRefused, Service};
use crate::continuous::{Archive, export};
use crate::recorder::ClipOptions;
use crate::recorder::live::LiveProgress;
use crate::time::rfc3339;

pub async fn create(
    State(service): State<Arc<Service>>,
    Path(camera): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let order = ExportOrder::from_json(&bytes).map_err(ApiError::bad_request)?;
    let clip = service.start_export(&camera, order).await?;
    Ok(super::api::created(&clip))
}

/// Why an export was refused before it started.
#[derive(Debug, thiserror::Error)]
pub enum ExportRefused {
    #[error(transparent)]
    Clip(#[from] ClipRefused),
    #[error("camera {0:?} does not record continuously (continuous = true in its config)")]
    NotContinuous(String),
    #[error("{0}")]
    BadRange(String),
    #[error(
        "camera {camera:?} recorded nothing between {start} and {end} (see GET /api/cameras/{camera}/recordings)"
    )]
    NothingRecorded {
        camera: String,
        start: String,
        end: String,
    },
}

impl From<ExportRefused> for ApiError {
    fn from(e: ExportRefused) -> Self {
        match e {
            ExportRefused::Clip(c) => c.into(),
            ExportRefused::BadRange(e) => ApiError::bad_request(e),
            other => ApiError::new(StatusCode::NOT_FOUND, other.to_string()),
        }
    }
}

impl Service {
    /// The continuous recording of a configured camera.
    pub fn archive(&self, camera: &str) -> Result<&Archive, ExportRefused> {
        if self.camera(camera).is_none() {
            return Err(ClipRefused::UnknownCamera(camera.to_owned()).into());
        }
        self.archives
            .iter()
            .find(|a| a.camera == camera)
            .map(|a| &**a)
            .ok_or_else(|| ExportRefused::NotContinuous(camera.to_owned()))
    }

    /// Starts an export: refused at once when nothing was recorded in the range; the file is
    /// reserved before this returns, and written in the background.
    pub async fn start_export(
        self: &Arc<Self>,
        camera: &str,
        order: ExportOrder,
    ) -> Result<Arc<Clip>, ExportRefused> {
        self.admit()?;
        let archive = self.archive(camera)?;
        let (start, end) = order.range().map_err(ExportRefused::BadRange)?;
        // The file being written too: an export of the last minutes reaches its last part.
        let entries = archive.files_between(start, end, SystemTime::now());
        if entries.is_empty() {
            return Err(ExportRefused::NothingRecorded {
                camera: camera.to_owned(),
                start: rfc3339(start),
                end: rfc3339(end),
            });
        }
        let folder = archive.index.dir().path().to_owned();
        let name = match &order.filename {
            Some(f) => f.clone(),
            None => format!(
                "{camera}/{camera}-export-{}-{}.mp4",
                crate::time::compact(start),
                crate::time::compact(end)
            ),
        };
        let options = ClipOptions {
            orientation: self.camera(camera).and_then(|c| c.config.orientation),
        };
        let (path, recording) = self.reserve(&name, options).await?;
        let (clip, _control) = self.clips.add(clips::NewClip {
            camera: Some(camera.to_owned()),
            path,
            trigger: start,
            lookback: std::time::Duration::ZERO,
            duration: end.duration_since(start).unwrap_or_default(),
            request_id: order.request_id,
            export: Some((start, end)),
        });
        self.active.send_modify(|n| *n += 1);
        self.clip_event(EventKind::ClipCreated, clip.view());
        let service = self.clone();
        let task_clip = clip.clone();
        let camera = camera.to_owned();
        tokio::spawn(async move {
            if let Some((kind, view)) = task_clip.progress(LiveProgress::default()) {
                service.clip_event(kind, view);
            }
            let result = tokio::task::spawn_blocking(move || {
                export(&folder, &entries, start, end, recording)
            })
            .await
            .unwrap_or_else(|e| Err(crate::continuous::ExportError::Panicked(e.to_string())));
            let (kind, view) = task_clip.exported(&result);
            service.clip_event(kind, view.clone());
            match &result {
                Ok(done) => tracing::info!(
                    camera,
                    clip = %view.id,
                    path = %view.path.display(),
                    duration = view.duration,
                    files = done.files,
                    gaps = done.gaps.len(),
                    skipped = done.skipped.len(),
                    "export done"
                ),
                Err(e) => tracing::warn!(camera, clip = %view.id, "export failed: {e}"),
            }
            service.active.send_modify(|n| *n = n.saturating_sub(1));
        });
        Ok(clip)
    }
}
