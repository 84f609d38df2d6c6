//! `preroll serve`'s configuration: cameras, storage and the API, read from a TOML file.
//!
//! Every problem is reported with its key path (`cameras[1].transport: …`) before anything
//! starts; see `preroll.example.toml` for every key.

mod mqtt;
mod remote;
mod retention;
mod table;
mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::mp4::Orientation;
use crate::ring::RingLimits;
use crate::source::{Pace, SourceErrorKind, SourceSpec, Transport};

pub use mqtt::MqttConfig;
pub use remote::RemoteConfig;
pub use retention::{CameraRetention, MinFree, RetentionConfig};
use table::Fields;
pub use table::{Problem, Secret};
pub use webhooks::WebhookConfig;

/// The environment variable the API token is read from when the file does not set one.
pub const TOKEN_ENV: &str = "PREROLL_TOKEN";
/// Where the API listens unless told otherwise: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8780";
/// Shortest token accepted: a guessable token on a recorder of cameras is a door left open.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone)]
pub struct Config {
    pub api: ApiConfig,
    pub storage: StorageConfig,
    pub cameras: Vec<CameraConfig>,
    pub webhooks: Vec<WebhookConfig>,
    pub mqtt: Option<MqttConfig>,
    pub retention: RetentionConfig,
    /// This service's name among several sharing a bucket and a broker (`[node] name`).
    pub node: String,
    /// `[node]` is configured: other services share the broker (and the bucket), so
    /// triggers and commands for cameras and clips this one does not know are theirs, not
    /// errors, and MQTT availability is per node.
    pub several_nodes: bool,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub bind: SocketAddr,
    pub token: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// A client must send a request's headers within this (also to keep an idle
    /// connection open).
    pub header_timeout: Duration,
    /// Clips recording or finalizing at once; more are refused (429).
    pub max_clips_recording: usize,
    /// How often `GET /api/events` sends a comment when there is no event, so proxies and
    /// clients see the stream alive.
    pub events_heartbeat: Duration,
    /// How long a browser session (`POST /api/session`) lasts.
    pub session_lifetime: Duration,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Where clips go; request filenames are relative to it.
    pub recordings: PathBuf,
    /// Other directories clips may be written to (absolute filenames).
    pub allowed: Vec<PathBuf>,
    /// The bucket clips are copied to (`[storage.remote]`).
    pub remote: Option<RemoteConfig>,
}

impl StorageConfig {
    /// The recordings directory first, then the others.
    pub fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.recordings.clone()];
        dirs.extend(self.allowed.iter().cloned());
        dirs
    }
}

#[derive(Debug, Clone)]
pub struct CameraConfig {
    pub name: String,
    pub source: SourceSpec,
    pub transport: Transport,
    pub ring: RingLimits,
    /// The longest part the segmenter cuts (see `segmenter`).
    pub part: Duration,
    pub orientation: Option<Orientation>,
    pub enabled: bool,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    /// A clip's duration and lookback when its request leaves them out (the API, an empty
    /// MQTT trigger, Home Assistant's button).
    pub clip_duration: Duration,
    pub clip_lookback: Duration,
    /// This camera's own retention limits, over `[retention]`'s.
    pub retention: CameraRetention,
    /// Continuous recording: the stream written to disk all the time, in files of
    /// this length (`None`: off).
    pub continuous: Option<Duration>,
}

/// A continuous recording file's length unless the camera sets `continuous_file_seconds`.
pub const DEFAULT_CONTINUOUS_FILE: Duration = Duration::from_secs(60);

pub const DEFAULT_CLIP_DURATION: Duration = Duration::from_secs(30);
pub const DEFAULT_CLIP_LOOKBACK: Duration = Duration::from_secs(5);

/// Everything wrong with a config file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and checks a config file. Relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::read(path, &|k: &str| std::env::var(k).ok())
    }

    /// Reads a config for a command that works on its files only (`preroll prune`): secrets
    /// it will not use (the API token, MQTT and webhook secrets) need not be set.
    pub fn load_for_files(path: &Path) -> Result<Config, ConfigErrors> {
        Config::read(path, &|_: &str| Some("not-used-by-this-command".to_owned()))
    }

    /// Reads a config for a command that uses the bucket but not the API (`preroll upload`):
    /// the `AWS_*` credentials must be set; other secrets need not be.
    pub fn load_for_remote(path: &Path) -> Result<Config, ConfigErrors> {
        Config::read(path, &|k: &str| {
            std::env::var(k)
                .ok()
                .or_else(|| (!k.starts_with("AWS_")).then(|| "not-used-by-this-command".to_owned()))
        })
    }

    fn read(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            file: file.clone(),
            problems: vec![Problem {
                key: "(file)".into(),
                problem: format!("cannot be read: {e}"),
            }],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base, env).map_err(|problems| ConfigErrors { file, problems })
    }

    /// Checks config text; `env` looks up environment variables (the token).
    pub fn parse(
        text: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<Problem>> {
        let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            vec![Problem {
                key: "(syntax)".into(),
                problem: e.to_string().trim_end().replace('\n', " "),
            }]
        })?;
        let mut problems = Vec::new();
        let mut fields = Fields::new("", &root, &mut problems);
        let api = fields.table("api");
        let storage = fields.table("storage");
        let cameras = fields.array("cameras");
        let webhooks = fields.array("webhooks");
        let mqtt = fields.table("mqtt");
        let retention = fields.table("retention");
        let node = fields.table("node");
        fields.finish();

        let api = read_api(api, env, &mut problems);
        let storage = read_storage(storage, base, env, &mut problems);
        let cameras = read_cameras(cameras, base, &mut problems);
        let webhooks = webhooks::read_webhooks(webhooks, env, &mut problems);
        let (node, several_nodes) = remote::read_node(node, &mut problems);
        let mqtt = mqtt::read_mqtt(mqtt, base, env, &mut problems).map(|mut m| {
            // Two clients with one id take turns on the broker, each dropping the other.
            if several_nodes && m.client_id == mqtt::DEFAULT_CLIENT_ID {
                m.client_id = format!("{}-{node}", mqtt::DEFAULT_CLIENT_ID);
            }
            m
        });
        let retention = retention::read_retention(retention, &mut problems);
        match (api, storage) {
            (Some(api), Some(storage)) if problems.is_empty() => Ok(Config {
                api,
                storage,
                cameras,
                webhooks,
                mqtt,
                retention,
                node,
                several_nodes,
            }),
            _ => Err(problems),
        }
    }

    /// The config `preroll serve` runs without a file: the `demo` camera, clips under
    /// `recordings/`, the API on loopback with the token from the environment or `token`.
    pub fn demo(token: String) -> Config {
        Config {
            api: ApiConfig {
                bind: DEFAULT_BIND
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8780))),
                token,
                max_body_bytes: DEFAULT_MAX_BODY,
                max_connections: DEFAULT_MAX_CONNECTIONS,
                header_timeout: DEFAULT_HEADER_TIMEOUT,
                max_clips_recording: DEFAULT_MAX_CLIPS_RECORDING,
                events_heartbeat: DEFAULT_EVENTS_HEARTBEAT,
                session_lifetime: DEFAULT_SESSION_LIFETIME,
            },
            storage: StorageConfig {
                recordings: PathBuf::from("recordings"),
                allowed: Vec::new(),
                remote: None,
            },
            cameras: vec![CameraConfig {
                name: "demo".into(),
                source: SourceSpec::Demo,
                transport: Transport::Tcp,
                ring: RingLimits::default(),
                part: crate::segmenter::DEFAULT_PART,
                orientation: None,
                enabled: true,
                connect_timeout: Duration::from_secs(10),
                stall_timeout: Duration::from_secs(10),
                clip_duration: DEFAULT_CLIP_DURATION,
                clip_lookback: DEFAULT_CLIP_LOOKBACK,
                retention: CameraRetention::default(),
                continuous: None,
            }],
            webhooks: Vec::new(),
            mqtt: None,
            retention: RetentionConfig::none(),
            node: remote::read_node(None, &mut Vec::new()).0,
            several_nodes: false,
        }
    }
}

const DEFAULT_MAX_BODY: usize = 16 * 1024;
/// Far above what a household's browsers and automations open, far below a process's
/// descriptor limit (1024 by default, shared with cameras and clips).
const DEFAULT_MAX_CONNECTIONS: usize = 256;
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_EVENTS_HEARTBEAT: Duration = Duration::from_secs(15);
/// A week: a phone on the wall stays logged in, a lost one not for ever.
const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(7 * 86_400);
/// Far more than cameras trigger at once; each clip in progress holds a thread and a file.
const DEFAULT_MAX_CLIPS_RECORDING: usize = 64;

fn read_api(
    table: Option<&toml::Table>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<ApiConfig> {
    let empty = toml::Table::new();
    let present = table.is_some();
    let mut f = Fields::new("api", table.unwrap_or(&empty), problems);
    let bind_text = f.string("bind").unwrap_or(DEFAULT_BIND);
    let bind = match bind_text.parse::<SocketAddr>() {
        Ok(b) => Some(b),
        Err(_) => {
            f.problem(
                "bind",
                format!("{bind_text:?} is not an address:port such as {DEFAULT_BIND}"),
            );
            None
        }
    };
    let token_env = f.string("token_env").unwrap_or(TOKEN_ENV);
    let token = match f.string("token") {
        Some(t) => Some(t.to_owned()),
        None => env(token_env).filter(|t| !t.is_empty()),
    };
    let token = match token {
        Some(t) if t.len() < MIN_TOKEN_LEN => {
            f.problem(
                "token",
                format!("is {} characters; use at least {MIN_TOKEN_LEN}", t.len()),
            );
            None
        }
        Some(t) if t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            f.problem("token", "must not contain spaces or control characters");
            None
        }
        Some(t) => Some(t),
        None => {
            let key = if present { "token" } else { "token (or [api])" };
            f.problem(
                key,
                format!("is not set: set it here or in the environment variable {token_env}"),
            );
            None
        }
    };
    let max_body = f
        .integer("max_body_bytes", 256..=1 << 20)
        .map_or(DEFAULT_MAX_BODY, |v| v as usize);
    let max_connections = f
        .integer("max_connections", 1..=65_536)
        .map_or(DEFAULT_MAX_CONNECTIONS, |v| v as usize);
    let header_timeout = f
        .seconds("header_timeout", 0.1..=3600.0)
        .map_or(DEFAULT_HEADER_TIMEOUT, Duration::from_secs_f64);
    let events_heartbeat = f
        .seconds("events_heartbeat", 0.1..=3600.0)
        .map_or(DEFAULT_EVENTS_HEARTBEAT, Duration::from_secs_f64);
    let session_lifetime = f
        .seconds("session_hours", 0.01..=8760.0)
        .map_or(DEFAULT_SESSION_LIFETIME, |h| {
            Duration::from_secs_f64(h * 3600.0)
        });
    let max_clips_recording = f
        .integer("max_clips_recording", 1..=4096)
        .map_or(DEFAULT_MAX_CLIPS_RECORDING, |v| v as usize);
    f.finish();
    Some(ApiConfig {
        bind: bind?,
        token: token?,
        max_body_bytes: max_body,
        max_connections,
        header_timeout,
        max_clips_recording,
        events_heartbeat,
        session_lifetime,
    })
}

fn read_storage(
    table: Option<&toml::Table>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<StorageConfig> {
    let Some(table) = table else {
        problems.push(Problem {
            key: "storage.recordings".into(),
            problem: "is required (the directory clips are written to)".into(),
        });
        return None;
    };
    let mut f = Fields::new("storage", table, problems);
    let recordings = f.required_string("recordings").and_then(|s| {
        if s.is_empty() {
            f.problem("recordings", "is empty");
            None
        } else {
            Some(base.join(s))
        }
    });
    let mut allowed = Vec::new();
    for (i, v) in f.array("allowed").unwrap_or(&[]).iter().enumerate() {
        match v.as_str() {
            Some(s) if Path::new(s).is_absolute() => allowed.push(PathBuf::from(s)),
            Some(s) => f.problem(
                &format!("allowed[{i}]"),
                format!("{s:?} is not an absolute path"),
            ),
            None => f.problem(
                &format!("allowed[{i}]"),
                format!("expected a string, found {}", v.type_str()),
            ),
        }
    }
    let remote = f.table("remote");
    f.finish();
    let remote = remote::read_remote(remote, env, problems);
    Some(StorageConfig {
        recordings: recordings?,
        allowed,
        remote,
    })
}

fn read_cameras(
    list: Option<&[toml::Value]>,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<CameraConfig> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        problems.push(Problem {
            key: "cameras".into(),
            problem: "no camera is configured (add a [[cameras]] table)".into(),
        });
        return Vec::new();
    };
    let mut cameras: Vec<CameraConfig> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let path = format!("cameras[{i}]");
        let Some(table) = v.as_table() else {
            problems.push(Problem {
                key: path,
                problem: format!("expected a table, found {}", v.type_str()),
            });
            continue;
        };
        if let Some(c) = read_camera(&path, table, base, problems) {
            if cameras.iter().any(|o| o.name == c.name) {
                problems.push(Problem {
                    key: format!("{path}.name"),
                    problem: format!("{:?} is used by another camera", c.name),
                });
            } else {
                cameras.push(c);
            }
        }
    }
    cameras
}

fn read_camera(
    path: &str,
    table: &toml::Table,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Option<CameraConfig> {
    let mut f = Fields::new(path, table, problems);
    let name = f.required_string("name").and_then(|n| {
        let ok = !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            f.problem(
                "name",
                format!("{n:?} must be 1 to 64 letters, digits, '-' or '_' (it is used in URLs and file names)"),
            );
        }
        ok.then(|| n.to_owned())
    });
    let looping = f.bool("loop").unwrap_or(true);
    let source = f.required_string("source").and_then(|s| {
        let spec = SourceSpec::parse(s);
        match &spec {
            SourceSpec::Rtsp(url) => match url::Url::parse(url) {
                Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Some(spec),
                _ => {
                    f.problem(
                        "source",
                        format!("{} is not a valid rtsp:// URL", spec.display()),
                    );
                    None
                }
            },
            SourceSpec::Demo => Some(spec),
            SourceSpec::File { path, .. } => {
                let full = base.join(path);
                // A file in a format preroll cannot read is a mistake in the config, said now
                // rather than by a camera that never comes up.
                let refused = full
                    .is_file()
                    .then(|| crate::source::sniff::sniff_file(&full).err())
                    .flatten()
                    .filter(|e| e.kind == SourceErrorKind::Unsupported);
                if let Some(e) = refused {
                    f.problem("source", e.message);
                    None
                } else if full.is_file() {
                    Some(SourceSpec::File {
                        path: full,
                        pace: Pace::RealTime,
                        looping,
                    })
                } else {
                    f.problem(
                        "source",
                        format!(
                            "{s:?} is not \"demo\", an rtsp:// URL, or an existing file ({} not found)",
                            full.display()
                        ),
                    );
                    None
                }
            }
        }
    });
    let transport = f.string("transport").and_then(|t| match t.parse() {
        Ok(t) => Some(t),
        Err(e) => {
            f.problem("transport", e);
            None
        }
    });
    let defaults = RingLimits::default();
    let seconds = f
        .seconds("preroll_seconds", 0.0..=3600.0)
        .map_or(defaults.seconds, Duration::from_secs_f64);
    let bytes = f
        .integer("preroll_bytes", 1 << 20..=16 << 30)
        .map_or(defaults.bytes, |b| b as u64);
    let part = f
        .seconds("part_seconds", 0.02..=10.0)
        .map_or(crate::segmenter::DEFAULT_PART, Duration::from_secs_f64);
    let orientation = f.integer("orientation", 1..=8).and_then(|o| {
        let parsed: Result<Orientation, String> = o.to_string().parse();
        parsed.ok()
    });
    let enabled = f.bool("enabled").unwrap_or(true);
    let connect_timeout = f
        .seconds("connect_timeout", 1.0..=300.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64);
    let stall_timeout = f
        .seconds("stall_timeout", 1.0..=300.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64);
    let max_clip = crate::service::clips::MAX_CLIP_SECONDS;
    let clip_duration = f
        .seconds("clip_duration", 0.001..=max_clip)
        .map_or(DEFAULT_CLIP_DURATION, Duration::from_secs_f64);
    let clip_lookback = f
        .seconds("clip_lookback", 0.0..=max_clip)
        .map_or(DEFAULT_CLIP_LOOKBACK, Duration::from_secs_f64);
    let retention_table = f.table("retention");
    let continuous = f.bool("continuous").unwrap_or(false);
    let continuous_file = f
        .seconds("continuous_file_seconds", 5.0..=3600.0)
        .map_or(DEFAULT_CONTINUOUS_FILE, Duration::from_secs_f64);
    f.finish();
    let retention = retention::read_camera_retention(path, retention_table, problems);
    Some(CameraConfig {
        name: name?,
        source: source?,
        transport: transport.unwrap_or_default(),
        ring: RingLimits { seconds, bytes },
        part,
        orientation,
        enabled,
        connect_timeout,
        stall_timeout,
        clip_duration,
        clip_lookback,
        retention,
        continuous: continuous.then_some(continuous_file),
    })
}

#[cfg(test)]
mod tests;
