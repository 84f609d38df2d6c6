//! `[storage.remote]`: the S3-compatible bucket clips are copied to, and `[node]`: this
//! service's name among several sharing one bucket and one broker.

use std::time::Duration;

use super::table::{Fields, Problem, Secret};

#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// `http://host:port` of an S3-compatible server; AWS itself when absent.
    pub endpoint: Option<String>,
    pub region: String,
    /// Continuous recordings are uploaded too, not only clips.
    pub continuous: bool,
    /// Local copies stay after a verified upload.
    pub keep_local: bool,
    /// A download of a clip held only in the bucket answers with a redirect to a presigned
    /// URL valid this long, instead of passing the bytes through the service.
    pub presign: Option<Duration>,
    /// How often the file of a clip in progress is read for new parts to upload.
    pub progress_interval: Duration,
    /// Read from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set,
    /// `AWS_SESSION_TOKEN`: never from the config file, never printed.
    pub access_key: Secret,
    pub secret_key: Secret,
    pub session_token: Option<Secret>,
}

impl RemoteConfig {
    /// `s3://bucket/prefix`, as configured (credentials are never part of it).
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// A bucket name as S3 allows it (3–63 lowercase letters, digits, `-` and `.`).
fn bucket_ok(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
}

pub fn read_remote(
    table: Option<&toml::Table>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<RemoteConfig> {
    let table = table?;
    let mut f = Fields::new("storage.remote", table, problems);
    let location = f.required_string("url").and_then(|u| {
        let parsed = url::Url::parse(u).ok().filter(|url| {
            url.scheme() == "s3"
                && url.username().is_empty()
                && url.password().is_none()
                && url.query().is_none()
                && url.host_str().is_some_and(bucket_ok)
        });
        match parsed {
            Some(url) => Some((
                url.host_str().unwrap_or_default().to_owned(),
                url.path().trim_matches('/').to_owned(),
            )),
            None => {
                f.problem(
                    "url",
                    format!(
                        "{u:?} is not s3://bucket or s3://bucket/prefix (a bucket of 3 to 63 \
                         lowercase letters, digits, '-' and '.'; credentials go in the environment)"
                    ),
                );
                None
            }
        }
    });
    let endpoint = f.string("endpoint").and_then(|e| match url::Url::parse(e) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            Some(e.trim_end_matches('/').to_owned())
        }
        _ => {
            f.problem(
                "endpoint",
                format!("{e:?} is not http(s)://host[:port] (credentials go in the environment)"),
            );
            None
        }
    });
    let region = f
        .string("region")
        .map(str::to_owned)
        .or_else(|| env("AWS_REGION").filter(|r| !r.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let continuous = match f.string("upload") {
        None | Some("clips") => false,
        Some("clips+continuous") => true,
        Some(other) => {
            f.problem(
                "upload",
                format!("{other:?} is not \"clips\" or \"clips+continuous\""),
            );
            false
        }
    };
    let keep_local = f.bool("keep_local").unwrap_or(true);
    let presign = f
        .seconds("presign_seconds", 1.0..=604_800.0)
        .map(Duration::from_secs_f64);
    let progress_interval = f
        .seconds("progress_interval", 0.1..=60.0)
        .map_or(DEFAULT_PROGRESS_INTERVAL, Duration::from_secs_f64);
    let secret = |f: &mut Fields<'_, '_>, var: &str| match env(var).filter(|s| !s.is_empty()) {
        Some(s) => Some(Secret(s)),
        None => {
            f.problem(
                "url",
                format!("needs credentials: the environment variable {var} is not set or empty"),
            );
            None
        }
    };
    let access_key = secret(&mut f, "AWS_ACCESS_KEY_ID");
    let secret_key = secret(&mut f, "AWS_SECRET_ACCESS_KEY");
    let session_token = env("AWS_SESSION_TOKEN")
        .filter(|s| !s.is_empty())
        .map(Secret);
    f.finish();
    let (bucket, prefix) = location?;
    Some(RemoteConfig {
        bucket,
        prefix,
        endpoint,
        region,
        continuous,
        keep_local,
        presign,
        progress_interval,
        access_key: access_key?,
        secret_key: secret_key?,
        session_token,
    })
}

/// `[node] name`: how this service is told apart from others sharing a bucket and a broker.
/// Defaults to the host's name. `true` with it when it was set: the service is one of
/// several (see `Config::several_nodes`).
pub fn read_node(table: Option<&toml::Table>, problems: &mut Vec<Problem>) -> (String, bool) {
    let default = || host_name().unwrap_or_else(|| "preroll".to_owned());
    let Some(table) = table else {
        return (default(), false);
    };
    let mut f = Fields::new("node", table, problems);
    let name = match f.string("name") {
        Some(n) if node_name_ok(n) => n.to_owned(),
        Some(n) => {
            f.problem(
                "name",
                format!("{n:?} must be 1 to 63 letters, digits, '-' or '_'"),
            );
            default()
        }
        None => default(),
    };
    f.finish();
    (name, true)
}

fn node_name_ok(n: &str) -> bool {
    (1..=63).contains(&n.len())
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The host's name, when it makes a valid node name.
fn host_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = text.trim();
    node_name_ok(name).then(|| name.to_owned())
}
