//! `[[webhooks]]`: where the service POSTs its events.

use std::time::Duration;

use super::table::{Fields, Problem, Secret};
use crate::service::events::EventKind;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// In logs, metrics and the name of its queue on disk (`webhook-1` unless set).
    pub name: String,
    pub url: url::Url,
    /// The kinds sent; `None`: every kind.
    pub events: Option<Vec<EventKind>>,
    /// Signs each body (`X-Preroll-Signature: sha256=<HMAC-SHA256 of the body, hex>`).
    pub secret: Option<Secret>,
    /// For one attempt, from connecting to the whole answer.
    pub timeout: Duration,
    /// How long an event is retried (with backoff) before it is given up, counted and logged.
    pub retry_for: Duration,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A receiver down for a day loses nothing.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(86_400);
/// The floor: a receiver restarted or briefly down loses nothing.
const MIN_RETRY_FOR: f64 = 600.0;

pub fn read_webhooks(
    list: Option<&[toml::Value]>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Vec<WebhookConfig> {
    let mut hooks: Vec<WebhookConfig> = Vec::new();
    for (i, v) in list.unwrap_or(&[]).iter().enumerate() {
        let path = format!("webhooks[{i}]");
        let Some(table) = v.as_table() else {
            problems.push(Problem {
                key: path,
                problem: format!("expected a table, found {}", v.type_str()),
            });
            continue;
        };
        if let Some(h) = read_webhook(&path, i, table, env, problems) {
            if hooks.iter().any(|o| o.name == h.name) {
                problems.push(Problem {
                    key: format!("{path}.name"),
                    problem: format!("{:?} is used by another webhook", h.name),
                });
                continue;
            }
            hooks.push(h);
        }
    }
    hooks
}

fn read_webhook(
    path: &str,
    index: usize,
    table: &toml::Table,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<WebhookConfig> {
    let mut f = Fields::new(path, table, problems);
    let name = match f.string("name") {
        Some(n)
            if !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Some(n.to_owned())
        }
        Some(n) => {
            f.problem(
                "name",
                format!("{n:?} must be 1 to 64 letters, digits, '-' or '_'"),
            );
            None
        }
        None => Some(format!("webhook-{}", index + 1)),
    };
    let url = f
        .required_string("url")
        .and_then(|u| match url::Url::parse(u) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|h| !h.is_empty()) =>
            {
                Some(url)
            }
            _ => {
                f.problem("url", format!("{u:?} is not an http:// or https:// URL"));
                None
            }
        });
    let mut events = None;
    if let Some(list) = f.array("events") {
        let mut kinds = Vec::new();
        for (j, v) in list.iter().enumerate() {
            match v.as_str().map(|s| (s, EventKind::from_name(s))) {
                Some((_, Some(k))) => kinds.push(k),
                Some((s, None)) => f.problem(
                    &format!("events[{j}]"),
                    format!(
                        "{s:?} is not an event kind (one of {})",
                        EventKind::ALL.map(EventKind::name).join(", ")
                    ),
                ),
                None => f.problem(&format!("events[{j}]"), "expected a string"),
            }
        }
        events = Some(kinds);
    }
    let secret = f.secret_env("secret_env", env);
    let timeout = f
        .seconds("timeout", 0.1..=300.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64);
    let retry_for = f
        .seconds("retry_for", MIN_RETRY_FOR..=30.0 * 86_400.0)
        .map_or(DEFAULT_RETRY_FOR, Duration::from_secs_f64);
    f.finish();
    Some(WebhookConfig {
        name: name?,
        url: url?,
        events,
        secret: secret?,
        timeout,
        retry_for,
    })
}
