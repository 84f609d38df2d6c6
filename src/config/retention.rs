//! `[retention]`, and a camera's `retention = {...}`: when finished clips are deleted.

use std::time::Duration;

use super::table::{Fields, Problem};

/// Limits on the clips in the recordings directory. Each is off when unset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionConfig {
    /// Clips older than this (by the time they were finished) go.
    pub max_age: Option<Duration>,
    /// The clips of all cameras together take at most this many bytes.
    pub max_bytes: Option<u64>,
    /// Each camera's clips take at most this many bytes (a camera may set its own).
    pub camera_max_bytes: Option<u64>,
    /// The recordings file system keeps at least this much free.
    pub min_free: Option<MinFree>,
    /// Time between passes (a pass also follows every finished clip).
    pub interval: Duration,
    /// Continuous recordings older than this go (by when they end).
    pub continuous_max_age: Option<Duration>,
    /// Continuous recordings of all cameras together take at most this many bytes.
    pub continuous_max_bytes: Option<u64>,
}

/// Free space to keep on the recordings file system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    Bytes(u64),
    /// Percent of the file system's size.
    Percent(f64),
}

/// A camera's own limits, in place of the `[retention]` ones for its clips.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraRetention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Ten years: an age past this is a mistake, not a policy.
const MAX_AGE_SECONDS: f64 = 10.0 * 366.0 * 86_400.0;
const MAX_BYTES: u64 = 1 << 60;

impl RetentionConfig {
    pub fn none() -> RetentionConfig {
        RetentionConfig {
            interval: DEFAULT_INTERVAL,
            ..RetentionConfig::default()
        }
    }

    /// Something is limited: retention has work to do.
    pub fn is_on(&self) -> bool {
        self.max_age.is_some()
            || self.max_bytes.is_some()
            || self.camera_max_bytes.is_some()
            || self.min_free.is_some()
            || self.continuous_max_age.is_some()
            || self.continuous_max_bytes.is_some()
    }
}

fn age(f: &mut Fields, name: &str) -> Option<Duration> {
    f.age(name, 1.0..=MAX_AGE_SECONDS)
        .map(Duration::from_secs_f64)
}

pub fn read_retention(table: Option<&toml::Table>, problems: &mut Vec<Problem>) -> RetentionConfig {
    let Some(table) = table else {
        return RetentionConfig::none();
    };
    let mut f = Fields::new("retention", table, problems);
    let max_age = age(&mut f, "max_age");
    let max_bytes = f.bytes("max_bytes", 1..=MAX_BYTES);
    let camera_max_bytes = f.bytes("camera_max_bytes", 1..=MAX_BYTES);
    let free_bytes = f.bytes("min_free_bytes", 1..=MAX_BYTES);
    let free_percent = f.seconds("min_free_percent", 0.1..=90.0);
    let min_free = match (free_bytes, free_percent) {
        (Some(_), Some(_)) => {
            f.problem(
                "min_free_percent",
                "set min_free_bytes or min_free_percent, not both",
            );
            None
        }
        (Some(b), None) => Some(MinFree::Bytes(b)),
        (None, Some(p)) => Some(MinFree::Percent(p)),
        (None, None) => None,
    };
    let interval = f
        .age("interval", 1.0..=86_400.0)
        .map_or(DEFAULT_INTERVAL, Duration::from_secs_f64);
    let continuous_max_age = age(&mut f, "continuous_max_age");
    let continuous_max_bytes = f.bytes("continuous_max_bytes", 1..=MAX_BYTES);
    f.finish();
    RetentionConfig {
        max_age,
        max_bytes,
        camera_max_bytes,
        min_free,
        interval,
        continuous_max_age,
        continuous_max_bytes,
    }
}

/// A camera's `retention = { max_age, max_bytes }`.
pub fn read_camera_retention(
    path: &str,
    table: Option<&toml::Table>,
    problems: &mut Vec<Problem>,
) -> CameraRetention {
    let Some(table) = table else {
        return CameraRetention::default();
    };
    let mut f = Fields::new(&format!("{path}.retention"), table, problems);
    let max_age = age(&mut f, "max_age");
    let max_bytes = f.bytes("max_bytes", 1..=MAX_BYTES);
    f.finish();
    CameraRetention { max_age, max_bytes }
}
