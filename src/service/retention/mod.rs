//! Retention: deleting the oldest finished clips when they pass an age, a size per camera or
//! in total, or leave too little free space (`[retention]`, see `plan` for the rules).
//!
//! A pass walks the recordings directory (`scan`), decides (`plan`), deletes through the
//! directory handles the walk opened (no symlink followed), and reports what went. It writes
//! nothing before it deletes, so it runs on a full disk: freeing space is its job there.
//! Clips in progress and clips marked `keep` are never deleted.

mod keep;
mod plan;
mod scan;

use std::collections::{BTreeSet, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

pub use keep::KeepSet;
pub use plan::Reason;
use plan::{Candidate, Space};

use crate::config::{CameraRetention, RetentionConfig};
use crate::recorder::Dir;

/// One clip file a pass deleted.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub path: PathBuf,
    pub camera: Option<String>,
    pub bytes: u64,
    pub reason: Reason,
}

/// What one pass saw and did.
#[derive(Debug, Default)]
pub struct PassReport {
    pub deleted: Vec<Deleted>,
    /// Clip files and their bytes before the pass.
    pub files: usize,
    pub bytes: u64,
    /// Deletions that failed (named, with why); tried again next pass.
    pub failed: Vec<String>,
    /// Directories the walk could not read.
    pub unreadable: Vec<String>,
    /// Continuous recordings deleted by their own limits.
    pub continuous: Vec<crate::continuous::Pruned>,
    pub elapsed: Duration,
}

/// The retention of one recordings directory.
#[derive(Debug)]
pub struct Retention {
    limits: RetentionConfig,
    cameras: Vec<String>,
    camera_limits: Vec<CameraRetention>,
    root: Dir,
    keep: Arc<KeepSet>,
    /// Why passes delete nothing (the keep marks could not be read: deleting without them
    /// could take a kept clip).
    suspended: Option<String>,
    /// One pass at a time.
    running: Mutex<()>,
}

impl Retention {
    pub fn new(
        limits: RetentionConfig,
        cameras: Vec<(String, CameraRetention)>,
        root: Dir,
        keep: Arc<KeepSet>,
        suspended: Option<String>,
    ) -> Retention {
        let (cameras, camera_limits) = cameras.into_iter().unzip();
        Retention {
            limits,
            cameras,
            camera_limits,
            root,
            keep,
            suspended,
            running: Mutex::new(()),
        }
    }

    /// Some limit is set, or some camera sets its own.
    pub fn is_on(&self) -> bool {
        self.limits.is_on()
            || self
                .camera_limits
                .iter()
                .any(|c| c.max_age.is_some() || c.max_bytes.is_some())
    }

    pub fn interval(&self) -> Duration {
        self.limits.interval
    }

    /// One pass (blocking): deletes what the limits ask for, except `in_progress` and kept
    /// clips. With `dry_run`, only reports what it would delete.
    pub fn pass(&self, in_progress: &HashSet<PathBuf>, dry_run: bool) -> io::Result<PassReport> {
        let _one = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let scan = scan::scan(&self.root, &self.cameras)?;
        let kept: BTreeSet<PathBuf> = self.keep.snapshot();
        let candidates: Vec<Candidate> = scan
            .files
            .iter()
            .map(|f| {
                let deletable = if in_progress.is_empty() && kept.is_empty() {
                    true
                } else {
                    let path = scan.path(f);
                    !in_progress.contains(&path) && !kept.contains(&path)
                };
                Candidate {
                    bytes: f.bytes,
                    modified: f.modified,
                    camera: f.camera,
                    deletable,
                }
            })
            .collect();
        let space = rustix::fs::fstatvfs(&self.root).ok().map(|s| Space {
            free: s.f_bavail.saturating_mul(s.f_frsize),
            total: s.f_blocks.saturating_mul(s.f_frsize),
        });
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let chosen = plan::plan(&candidates, &self.limits, &self.camera_limits, now, space);
        let mut report = PassReport {
            files: scan.files.len(),
            bytes: candidates.iter().map(|c| c.bytes).sum(),
            unreadable: scan.unreadable.clone(),
            ..PassReport::default()
        };
        if let Some(why) = &self.suspended
            && !chosen.is_empty()
        {
            report.failed.push(format!(
                "{} clips are due for deletion, but retention is suspended: {why}",
                chosen.len()
            ));
            report.elapsed = started.elapsed();
            return Ok(report);
        }
        let mut touched: Vec<u32> = Vec::new();
        for (i, reason) in chosen {
            let file = &scan.files[i];
            let path = scan.path(file);
            if !dry_run {
                match scan.dir(file).remove(&file.name) {
                    Ok(()) => touched.push(file.dir),
                    // Deleted meanwhile (the API): gone all the same.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        report.failed.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                }
            }
            report.deleted.push(Deleted {
                camera: file
                    .camera
                    .and_then(|c| self.cameras.get(usize::from(c)).cloned()),
                path,
                bytes: file.bytes,
                reason,
            });
        }
        touched.sort_unstable();
        touched.dedup();
        for d in touched {
            // Durable removal; a failure here loses nothing (the file is gone or comes back).
            let _ = scan.dirs[d as usize].sync();
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

/// Opens the keep marks of `recordings` (in its `.preroll` folder); on failure, an empty set
/// held in memory and the reason retention must not delete.
pub fn open_keep(recordings: &Path) -> (Arc<KeepSet>, Option<String>) {
    let opened = Dir::root(recordings)
        .and_then(|root| root.descend(Path::new(super::history::DIR), true))
        .and_then(KeepSet::open);
    match opened {
        Ok(k) => (Arc::new(k), None),
        Err(e) => {
            let why = format!("the keep marks cannot be read ({e})");
            tracing::error!("{why}; retention deletes nothing until this is mended");
            (Arc::new(KeepSet::in_memory()), Some(why))
        }
    }
}

/// Runs retention for a service: a pass every interval, and soon after each clip becomes
/// final (a new clip is what fills the disk). Ends with the service.
pub async fn run(service: Weak<super::Service>, retention: Arc<Retention>) {
    let Some(mut events) = service
        .upgrade()
        .map(|s| s.events.subscribe("retention", None))
    else {
        return;
    };
    // At most one pass a second however fast clips finish.
    const MIN_GAP: Duration = Duration::from_secs(1);
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        let Some(svc) = service.upgrade() else { return };
        let in_progress: HashSet<PathBuf> = svc
            .clips
            .in_memory()
            .iter()
            .map(|c| c.view())
            .filter(|v| !v.state.is_final())
            .map(|v| v.path)
            .collect();
        let r = retention.clone();
        let archives = svc.archives.clone();
        let service = svc.clone();
        let pass = move || {
            let mut report = r.pass(&in_progress, false);
            let limits = &r.limits;
            let (pruned, failed) = crate::continuous::prune(
                &archives,
                limits.continuous_max_age,
                limits.continuous_max_bytes,
                SystemTime::now(),
            );
            if let Ok(report) = &mut report {
                report.continuous = pruned;
                report.failed.extend(failed);
            }
            // A pass over many files allocates a name for each; hand those pages back now
            // rather than at the next periodic release.
            crate::memory::release_free();
            // On this thread too: taking the deleted clips out of the history rewrites it.
            match report {
                Ok(report) => service.retention_done(report),
                Err(e) => tracing::warn!("retention pass: {e}"),
            }
        };
        if let Err(e) = tokio::task::spawn_blocking(pass).await {
            tracing::warn!("retention pass: {e}");
        }
        drop(svc);
        let earliest = tokio::time::Instant::now() + MIN_GAP;
        let deadline = tokio::time::Instant::now() + retention.interval();
        // Wait for the interval, or a clip becoming final, whichever is first.
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                event = events.recv() => match event {
                    Some(e) if e.body.kind.is_final_clip() => break,
                    Some(_) => continue,
                    None => return,
                },
            }
        }
        next = earliest.max(tokio::time::Instant::now());
    }
}
