//! `[mqtt]`: the broker the service takes triggers from and publishes events to.

use std::path::{Path, PathBuf};

use super::table::{Fields, Problem, Secret};

#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS, checked against `ca_file` or the public roots.
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub client_id: String,
    pub topic_prefix: String,
    /// Home Assistant MQTT discovery.
    pub discovery: bool,
    pub discovery_prefix: String,
}

/// The client id when `client_id` is not set (with `[node]`, `preroll-<node>`).
pub const DEFAULT_CLIENT_ID: &str = "preroll";

/// A topic level of our own: no wildcard, separator or control character.
fn topic_level_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn read_mqtt(
    table: Option<&toml::Table>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<MqttConfig> {
    let table = table?;
    let mut f = Fields::new("mqtt", table, problems);
    let url = f
        .required_string("url")
        .and_then(|u| match url::Url::parse(u) {
            Ok(url)
                if matches!(url.scheme(), "mqtt" | "mqtts")
                    && url.host_str().is_some_and(|h| !h.is_empty())
                    && url.path().trim_matches('/').is_empty()
                    && url.username().is_empty() =>
            {
                Some(url)
            }
            _ => {
                f.problem(
                    "url",
                    format!(
                        "{u:?} is not mqtt://host[:port] or mqtts://host[:port] (credentials go in \
                     username and password_env)"
                    ),
                );
                None
            }
        });
    let username = f.string("username").map(str::to_owned);
    let password = f.secret_env("password_env", env);
    let client_id = match f.string("client_id") {
        Some(c) if topic_level_ok(c) && c.len() <= 23 => Some(c.to_owned()),
        Some(c) => {
            f.problem(
                "client_id",
                format!("{c:?} must be 1 to 23 letters, digits, '-', '_' or '.'"),
            );
            None
        }
        None => Some(DEFAULT_CLIENT_ID.to_owned()),
    };
    let level = |f: &mut Fields<'_, '_>, key: &str, default: &str| match f.string(key) {
        Some(p) if p.split('/').all(topic_level_ok) => Some(p.to_owned()),
        Some(p) => {
            f.problem(
                key,
                format!(
                    "{p:?} must be topic levels of letters, digits, '-', '_' or '.' separated \
                     by '/'"
                ),
            );
            None
        }
        None => Some(default.to_owned()),
    };
    let topic_prefix = level(&mut f, "topic_prefix", "preroll");
    let discovery_prefix = level(&mut f, "discovery_prefix", "homeassistant");
    let discovery = f.bool("discovery").unwrap_or(true);
    let ca_file = f.string("ca_file").map(|p| base.join(p));
    if let Some(p) = &ca_file
        && !p.is_file()
    {
        f.problem("ca_file", format!("{} is not a readable file", p.display()));
    }
    f.finish();
    let url = url?;
    let tls = url.scheme() == "mqtts";
    Some(MqttConfig {
        host: url.host_str().unwrap_or_default().to_owned(),
        port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
        tls,
        ca_file,
        username,
        password: password?,
        client_id: client_id?,
        topic_prefix: topic_prefix?,
        discovery,
        discovery_prefix: discovery_prefix?,
    })
}
