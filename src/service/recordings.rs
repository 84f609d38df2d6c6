//! `GET /api/cameras/{camera}/recordings?start&end`: what a camera's continuous recording
//! holds between two times: the files (each an unbroken range), the gaps between them, and
//! the file being written.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::Service;
use super::api::ApiError;
use crate::continuous::{Entry, Gap, gaps};
use crate::time::{parse_rfc3339, rfc3339};

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
    let archive = service.archive(&camera)?;
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
