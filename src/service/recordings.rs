//! `GET /api/cameras/{camera}/recordings?start&end`: what a camera's continuous recording
//! holds between two times: the files (each an unbroken range), the gaps between them, and
//! the file being written.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::Service;
use super::api::ApiError;
use crate::continuous::Entry;
use crate::time::{parse_rfc3339, rfc3339};

/// Spaces between files shorter than this are the seams of cutting, not gaps.
pub const GAP_TOLERANCE: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Range {
    pub start: String,
    pub end: String,
    pub path: std::path::PathBuf,
    pub bytes: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Gap {
    pub start: String,
    pub end: String,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct InProgress {
    pub start: String,
    pub path: std::path::PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Recordings {
    pub camera: String,
    pub start: String,
    pub end: String,
    pub ranges: Vec<Range>,
    pub gaps: Vec<Gap>,
    pub in_progress: Option<InProgress>,
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<SystemTime>, ApiError> {
    value
        .map(|v| {
            parse_rfc3339(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} {v:?} is not an RFC 3339 time such as 2026-11-30T08:15:30Z"
                ))
            })
        })
        .transpose()
}

pub async fn list(
    State(service): State<Arc<Service>>,
    Path(camera): Path<String>,
    Query(span): Query<Span>,
) -> Result<axum::Json<Recordings>, ApiError> {
    let start = time_param("start", span.start.as_deref())?;
    let end = time_param("end", span.end.as_deref())?;
    if service.camera(&camera).is_none() {
        return Err(super::ClipRefused::UnknownCamera(camera).into());
    }
    let archive = service
        .archives
        .iter()
        .find(|a| a.camera == camera)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("camera {camera:?} does not record continuously (continuous = true in its config)"),
            )
        })?;
    let entries = archive.index.entries();
    let in_progress = archive.in_progress();
    let end = end.unwrap_or_else(SystemTime::now);
    let start = start
        .or_else(|| entries.first().map(Entry::start))
        .or_else(|| in_progress.as_ref().map(|(_, s)| *s))
        .unwrap_or(end);
    if start > end {
        return Err(ApiError::bad_request(format!(
            "start {} is after end {}",
            rfc3339(start),
            rfc3339(end)
        )));
    }
    let dir = archive.index.dir().path().to_owned();
    let inside: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.end() > start && e.start() < end)
        .collect();
    let covered: Vec<(SystemTime, SystemTime)> = inside
        .iter()
        .map(|e| (e.start(), e.end()))
        .chain(in_progress.as_ref().map(|(_, s)| (*s, SystemTime::now())))
        .collect();
    Ok(axum::Json(Recordings {
        camera,
        start: rfc3339(start),
        end: rfc3339(end),
        ranges: inside
            .iter()
            .map(|e| Range {
                start: rfc3339(e.start()),
                end: rfc3339(e.end()),
                path: dir.join(&e.file),
                bytes: e.bytes,
            })
            .collect(),
        gaps: gaps(start, end, &covered),
        in_progress: in_progress.map(|(file, s)| InProgress {
            start: rfc3339(s),
            path: dir.join(file),
        }),
    }))
}

/// The stretches of `[start, end]` that `covered` (sorted by start) leaves out, longer than
/// [`GAP_TOLERANCE`].
pub fn gaps(start: SystemTime, end: SystemTime, covered: &[(SystemTime, SystemTime)]) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut cursor = start;
    let mut push = |from: SystemTime, to: SystemTime| {
        if let Ok(d) = to.duration_since(from)
            && d > GAP_TOLERANCE
        {
            out.push(Gap {
                start: rfc3339(from),
                end: rfc3339(to),
                seconds: d.as_secs_f64(),
            });
        }
    };
    for &(s, e) in covered {
        if s > cursor {
            push(cursor, s.min(end));
        }
        cursor = cursor.max(e);
        if cursor >= end {
            return out;
        }
    }
    push(cursor, end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn gaps_are_what_the_files_leave_out_past_the_seams() {
        let covered = [(at(100), at(160)), (at(160), at(220)), (at(300), at(360))];
        let g = gaps(at(50), at(400), &covered);
        let secs: Vec<f64> = g.iter().map(|g| g.seconds).collect();
        assert_eq!(secs, [50.0, 80.0, 40.0]);
        assert!(gaps(at(100), at(220), &covered).is_empty());
        assert_eq!(gaps(at(0), at(10), &[]).len(), 1);
    }
}
