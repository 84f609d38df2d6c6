//! Retention of continuous recordings, apart from clips: `[retention] continuous_max_age`
//! (by when a file's media ends) and `continuous_max_bytes` (all cameras' files together,
//! the oldest first). The file being written is not in the index, so it is never chosen.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Archive;
use super::index::unix_ms;

/// A continuous recording retention deleted.
#[derive(Debug, Clone)]
pub struct Pruned {
    pub camera: String,
    pub path: std::path::PathBuf,
    pub bytes: u64,
    /// `continuous_max_age` or `continuous_max_bytes`.
    pub reason: &'static str,
}

/// Deletes what the limits ask for; returns what went, and what could not be deleted.
pub fn prune(
    archives: &[Arc<Archive>],
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
    now: SystemTime,
) -> (Vec<Pruned>, Vec<String>) {
    if max_age.is_none() && max_bytes.is_none() {
        return (Vec::new(), Vec::new());
    }
    // (start, archive, entry), oldest first across cameras.
    let mut all: Vec<(u64, usize, super::Entry)> = archives
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            a.index
                .entries()
                .into_iter()
                .map(move |e| (e.start_ms, i, e))
        })
        .collect();
    all.sort_by_key(|(start, i, _)| (*start, *i));
    let oldest_end = max_age.map(|a| unix_ms(now).saturating_sub(a.as_millis() as u64));
    let mut total: u64 = all.iter().map(|(_, _, e)| e.bytes).sum();
    let mut chosen: Vec<(usize, super::Entry, &'static str)> = Vec::new();
    for (_, i, e) in all {
        let reason = if oldest_end.is_some_and(|t| e.end_ms < t) {
            "continuous_max_age"
        } else if max_bytes.is_some_and(|m| total > m) {
            "continuous_max_bytes"
        } else {
            continue;
        };
        total -= e.bytes;
        chosen.push((i, e, reason));
    }
    let (mut pruned, mut failed) = (Vec::new(), Vec::new());
    let mut gone: Vec<Vec<String>> = vec![Vec::new(); archives.len()];
    for (i, e, reason) in chosen {
        let archive = &archives[i];
        let dir = archive.index.dir();
        let path = dir.path().join(&e.file);
        let (date, name) = e.file.split_once('/').unwrap_or(("", e.file.as_str()));
        let removed = dir
            .descend(Path::new(date), false)
            .and_then(|d| d.remove(std::ffi::OsStr::new(name)).map(|()| d));
        match removed {
            Ok(d) => {
                let _ = d.sync();
            }
            // Gone already: the index entry goes all the same.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                failed.push(format!("{}: {err}", path.display()));
                continue;
            }
        }
        gone[i].push(e.file.clone());
        pruned.push(Pruned {
            camera: archive.camera.clone(),
            path,
            bytes: e.bytes,
            reason,
        });
    }
    for (archive, files) in archives.iter().zip(gone) {
        if !files.is_empty()
            && let Err(e) = archive.index.remove(&files)
        {
            failed.push(format!("{} index: {e}", archive.camera));
        }
    }
    (pruned, failed)
}
