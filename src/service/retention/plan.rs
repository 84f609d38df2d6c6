//! Which clip files a retention pass deletes, and why: a pure function of the files found,
//! the limits and the free space, so every rule is tested without a disk.
//!
//! The rules, applied in this order, each to the oldest deletable files first:
//! 1. older than the camera's `max_age` (or `[retention] max_age`);
//! 2. the camera's clips over its `max_bytes` (or `[retention] camera_max_bytes`);
//! 3. all clips over `[retention] max_bytes`;
//! 4. the file system with less free than `min_free_bytes` / `min_free_percent`.
//!
//! Kept clips and clips in progress count toward every total but are never chosen.

use std::time::Duration;

use crate::config::{CameraRetention, MinFree, RetentionConfig};

/// Why retention deleted a clip (the `reason` of its `clip.deleted` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MaxAge,
    CameraMaxBytes,
    MaxBytes,
    MinFree,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::MaxAge,
        Reason::CameraMaxBytes,
        Reason::MaxBytes,
        Reason::MinFree,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::MaxAge => "max_age",
            Reason::CameraMaxBytes => "camera_max_bytes",
            Reason::MaxBytes => "max_bytes",
            Reason::MinFree => "min_free",
        }
    }
}

/// What the plan needs to know of one file (in the order given: oldest first).
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub bytes: u64,
    /// Unix seconds.
    pub modified: i64,
    pub camera: Option<u16>,
    /// Not kept and not in progress.
    pub deletable: bool,
}

/// The recordings file system's space, from `statvfs`.
#[derive(Debug, Clone, Copy)]
pub struct Space {
    /// Bytes an unprivileged writer can still use.
    pub free: u64,
    pub total: u64,
}

/// The files to delete (indexes into `files`) with their reason, oldest first.
pub fn plan(
    files: &[Candidate],
    limits: &RetentionConfig,
    cameras: &[CameraRetention],
    now: i64,
    space: Option<Space>,
) -> Vec<(usize, Reason)> {
    let mut chosen: Vec<Option<Reason>> = vec![None; files.len()];
    let camera_limits = |c: Option<u16>| c.and_then(|c| cameras.get(usize::from(c)));

    let too_old =
        |age: Duration, modified: i64| now.saturating_sub(modified) as f64 > age.as_secs_f64();
    for (i, f) in files.iter().enumerate() {
        let max_age = camera_limits(f.camera)
            .and_then(|c| c.max_age)
            .or(limits.max_age);
        if f.deletable && max_age.is_some_and(|a| too_old(a, f.modified)) {
            chosen[i] = Some(Reason::MaxAge);
        }
    }

    // Each camera's bytes, of the files still there.
    let mut per_camera: Vec<u64> = vec![0; cameras.len()];
    for (f, c) in files.iter().zip(&chosen) {
        if let (None, Some(cam)) = (c, f.camera)
            && let Some(total) = per_camera.get_mut(usize::from(cam))
        {
            *total += f.bytes;
        }
    }
    for (cam, total) in per_camera.iter_mut().enumerate() {
        let limit = cameras[cam].max_bytes.or(limits.camera_max_bytes);
        let Some(limit) = limit else { continue };
        for (i, f) in files.iter().enumerate() {
            if *total <= limit {
                break;
            }
            if f.camera == Some(cam as u16) && f.deletable && chosen[i].is_none() {
                chosen[i] = Some(Reason::CameraMaxBytes);
                *total -= f.bytes;
            }
        }
    }

    if let Some(limit) = limits.max_bytes {
        let remaining = bytes_where(files, &chosen, |c| c.is_none());
        take_oldest(files, &mut chosen, Reason::MaxBytes, |freed| {
            remaining.saturating_sub(freed) > limit
        });
    }

    if let (Some(min_free), Some(space)) = (limits.min_free, space) {
        let want = match min_free {
            MinFree::Bytes(b) => b,
            MinFree::Percent(p) => (space.total as f64 * p / 100.0) as u64,
        };
        // What the earlier rules free counts too.
        let freed_before = bytes_where(files, &chosen, |c| c.is_some());
        let free = space.free.saturating_add(freed_before);
        take_oldest(files, &mut chosen, Reason::MinFree, |freed| {
            free.saturating_add(freed) < want
        });
    }

    chosen
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|r| (i, r)))
        .collect()
}

/// The bytes of the files whose choice so far passes `test`.
fn bytes_where(
    files: &[Candidate],
    chosen: &[Option<Reason>],
    test: impl Fn(&Option<Reason>) -> bool,
) -> u64 {
    files
        .iter()
        .zip(chosen)
        .filter(|(_, c)| test(c))
        .map(|(f, _)| f.bytes)
        .sum()
}

/// Chooses the oldest deletable files not yet chosen while `more(bytes freed by this rule)`.
fn take_oldest(
    files: &[Candidate],
    chosen: &mut [Option<Reason>],
    reason: Reason,
    more: impl Fn(u64) -> bool,
) {
    let mut freed = 0u64;
    for (i, f) in files.iter().enumerate() {
        if !more(freed) {
            break;
        }
        if f.deletable && chosen[i].is_none() {
            chosen[i] = Some(reason);
            freed += f.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: u64, modified: i64, camera: Option<u16>) -> Candidate {
        Candidate {
            bytes,
            modified,
            camera,
            deletable: true,
        }
    }

    fn limits() -> RetentionConfig {
        RetentionConfig::none()
    }

    #[test]
    fn nothing_is_deleted_without_limits() {
        let files = [file(10, 0, None), file(10, 1, Some(0))];
        assert!(
            plan(
                &files,
                &limits(),
                &[CameraRetention::default()],
                1_000_000,
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn max_age_takes_what_is_older_with_a_cameras_own_age_first() {
        let files = [
            file(1, 100, Some(0)),
            file(1, 100, Some(1)),
            file(1, 900, Some(0)),
            file(1, 900, None),
        ];
        let l = RetentionConfig {
            max_age: Some(Duration::from_secs(500)),
            ..limits()
        };
        let cams = [
            CameraRetention::default(),
            CameraRetention {
                max_age: Some(Duration::from_secs(5000)),
                max_bytes: None,
            },
        ];
        // now = 1000: files from 100 are 900 s old, from 900 100 s old; camera 1 keeps 5000 s.
        assert_eq!(
            plan(&files, &l, &cams, 1000, None),
            vec![(0, Reason::MaxAge)]
        );
    }

    #[test]
    fn bytes_limits_take_the_oldest_until_under_and_skip_kept_files() {
        let mut files = vec![
            file(40, 1, Some(0)),
            file(40, 2, Some(1)),
            file(40, 3, Some(0)),
            file(40, 4, Some(0)),
            file(40, 5, None),
        ];
        files[0].deletable = false; // kept
        let cams = [CameraRetention::default(), CameraRetention::default()];
        let l = RetentionConfig {
            camera_max_bytes: Some(80),
            ..limits()
        };
        // Camera 0 holds 120 over 80: its oldest deletable (index 2) goes; the kept one stays.
        assert_eq!(
            plan(&files, &l, &cams, 10, None),
            vec![(2, Reason::CameraMaxBytes)]
        );
        let l = RetentionConfig {
            max_bytes: Some(100),
            ..limits()
        };
        // 200 over 100: three oldest deletable, passing over the kept one.
        assert_eq!(
            plan(&files, &l, &cams, 10, None),
            vec![
                (1, Reason::MaxBytes),
                (2, Reason::MaxBytes),
                (3, Reason::MaxBytes)
            ]
        );
    }

    #[test]
    fn min_free_counts_what_other_rules_free() {
        let files = [file(30, 1, None), file(30, 2, None), file(30, 3, None)];
        let space = Space {
            free: 10,
            total: 1000,
        };
        let l = RetentionConfig {
            min_free: Some(MinFree::Bytes(50)),
            ..limits()
        };
        assert_eq!(
            plan(&files, &l, &[], 10, Some(space)),
            vec![(0, Reason::MinFree), (1, Reason::MinFree)]
        );
        let l = RetentionConfig {
            min_free: Some(MinFree::Percent(5.0)),
            max_bytes: Some(60),
            ..limits()
        };
        // max_bytes frees 30 (free 40 < 50 = 5 %), then min_free takes one more.
        assert_eq!(
            plan(&files, &l, &[], 10, Some(space)),
            vec![(0, Reason::MaxBytes), (1, Reason::MinFree)]
        );
        // Without the space known, min_free deletes nothing.
        assert!(
            plan(
                &files,
                &RetentionConfig {
                    min_free: Some(MinFree::Bytes(50)),
                    ..limits()
                },
                &[],
                10,
                None
            )
            .is_empty()
        );
    }
}
