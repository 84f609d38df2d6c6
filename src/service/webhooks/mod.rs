//! Webhooks: each `[[webhooks]]` gets the events it asks for as POSTs of the event's JSON,
//! signed when it has a secret. Deliveries are at least once: an event is on disk (see
//! [`Outbox`]) before it is sent, and marked sent only after a 2xx answer, so a restart or a
//! crash resends what was pending; the event id (`X-Preroll-Event-Id`, and `id` in the body)
//! lets a receiver drop a repeat. Each webhook sends in event order, one at a time, retrying
//! with backoff (1 s doubling to 30 s) until `retry_for` has passed since the first attempt.
//! A webhook has its own tasks and queue: a dead endpoint holds up nothing else.

mod sign;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::events::{EventBus, Subscription};
use super::outbox::{Outbox, Pending};
use crate::config::WebhookConfig;

pub use sign::{HEADER as SIGNATURE_HEADER, signature};

/// Deliveries kept waiting per webhook; past it the oldest is given up.
const MAX_PENDING: usize = 100_000;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// A webhook's counters, for the metrics page.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub name: String,
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub given_up: AtomicU64,
    pub pending: AtomicU64,
}

/// A webhook ready to run: its config and its queue, opened at start.
pub struct Webhook {
    config: WebhookConfig,
    outbox: Arc<Mutex<Outbox>>,
    pub stats: Arc<WebhookStats>,
}

fn lock(o: &Mutex<Outbox>) -> MutexGuard<'_, Outbox> {
    o.lock().unwrap_or_else(|e| e.into_inner())
}

impl Webhook {
    /// Opens the webhook's queue under `<recordings>/.preroll` (`webhook-<name>.jsonl`).
    pub fn open(config: WebhookConfig, recordings: &std::path::Path) -> anyhow::Result<Webhook> {
        let outbox = Outbox::open(recordings, &format!("webhook-{}", config.name), MAX_PENDING)
            .map_err(|e| {
                anyhow::anyhow!(
                    "webhook {}: its queue in {}: {e}",
                    config.name,
                    recordings.join(super::history::DIR).display()
                )
            })?;
        let stats = Arc::new(WebhookStats {
            name: config.name.clone(),
            pending: AtomicU64::new(outbox.len() as u64),
            ..WebhookStats::default()
        });
        if !outbox.is_empty() {
            tracing::info!(webhook = %config.name, pending = outbox.len(), "deliveries pending from before the restart");
        }
        Ok(Webhook {
            config,
            outbox: Arc::new(Mutex::new(outbox)),
            stats,
        })
    }

    /// Starts taking events from `bus` (subscribed before this returns) and sending them.
    pub fn start(self, bus: &Arc<EventBus>) {
        let wake = Arc::new(Notify::new());
        let events = bus.subscribe("webhook", None);
        let config = Arc::new(self.config);
        tokio::spawn(intake(
            config.clone(),
            self.outbox.clone(),
            events,
            self.stats.clone(),
            wake.clone(),
        ));
        tokio::spawn(send(config, self.outbox, self.stats, wake));
    }
}

/// Puts each wanted event on disk, then wakes the sender.
async fn intake(
    config: Arc<WebhookConfig>,
    outbox: Arc<Mutex<Outbox>>,
    mut events: Subscription,
    stats: Arc<WebhookStats>,
    wake: Arc<Notify>,
) {
    while let Some(event) = events.recv().await {
        if config
            .events
            .as_ref()
            .is_some_and(|k| !k.contains(&event.body.kind))
        {
            continue;
        }
        let body = match serde_json::to_string(&*event) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(webhook = %config.name, id = event.id, "an event that does not serialize: {e}");
                continue;
            }
        };
        let (o, id) = (outbox.clone(), event.id);
        let pushed = tokio::task::spawn_blocking(move || {
            let mut o = lock(&o);
            o.push(id, body).map(|given_up| (given_up, o.len()))
        })
        .await;
        match pushed {
            Ok(Ok((given_up, len))) => {
                stats.pending.store(len as u64, Ordering::Relaxed);
                if !given_up.is_empty() {
                    stats
                        .given_up
                        .fetch_add(given_up.len() as u64, Ordering::Relaxed);
                    tracing::warn!(webhook = %config.name, given_up = given_up.len(), "more than {MAX_PENDING} deliveries waiting: the oldest were given up");
                }
            }
            Ok(Err(e)) => {
                stats.given_up.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(webhook = %config.name, id, "event not queued for delivery: {e}");
            }
            Err(e) => tracing::warn!(webhook = %config.name, id, "queueing an event: {e}"),
        }
        wake.notify_one();
    }
}

/// Sends the oldest pending delivery until it succeeds or its time is up, then the next.
async fn send(
    config: Arc<WebhookConfig>,
    outbox: Arc<Mutex<Outbox>>,
    stats: Arc<WebhookStats>,
    wake: Arc<Notify>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(config.timeout))
        .http_status_as_error(false)
        // A redirect is an answer that is not a delivery; following one would send the
        // body (and its signature) somewhere else.
        .max_redirects(0)
        .user_agent(concat!("preroll/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let shown = redacted(&config.url);
    loop {
        let front = lock(&outbox).front().cloned();
        let Some(message) = front else {
            wake.notified().await;
            continue;
        };
        let first_attempt = Instant::now();
        let mut delay = FIRST_RETRY;
        let mut failures = 0u32;
        let delivered = loop {
            let attempt = {
                let (agent, config, message) = (agent.clone(), config.clone(), message.clone());
                tokio::task::spawn_blocking(move || post(&agent, &config, &message)).await
            };
            let problem = match attempt {
                Ok(Ok(())) => break true,
                Ok(Err(p)) => p,
                Err(e) => e.to_string(),
            };
            stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
            failures += 1;
            if failures == 1 {
                tracing::warn!(webhook = %config.name, url = %shown, id = message.id, "delivery failed, retrying: {problem}");
            } else {
                tracing::debug!(webhook = %config.name, id = message.id, failures, "{problem}");
            }
            if first_attempt.elapsed() >= config.retry_for {
                tracing::warn!(webhook = %config.name, url = %shown, id = message.id, failures, "giving up a delivery after {:?}: {problem}", config.retry_for);
                break false;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(LONGEST_RETRY);
        };
        if delivered {
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            if failures > 0 {
                tracing::info!(webhook = %config.name, id = message.id, failures, "delivered after retries");
            }
        } else {
            stats.given_up.fetch_add(1, Ordering::Relaxed);
        }
        let o = outbox.clone();
        let id = message.id;
        let marked = tokio::task::spawn_blocking(move || {
            let mut o = lock(&o);
            o.done(id).map(|()| o.len())
        })
        .await;
        match marked {
            Ok(Ok(len)) => stats.pending.store(len as u64, Ordering::Relaxed),
            Ok(Err(e)) => {
                // Sent, but the mark did not reach the disk: a restart sends it again, which
                // the event id lets the receiver see.
                tracing::warn!(webhook = %config.name, id, "marking a delivery sent: {e}");
                lock(&outbox).forget(id);
            }
            Err(e) => tracing::warn!(webhook = %config.name, id, "marking a delivery sent: {e}"),
        }
    }
}

/// One attempt: `Ok` on a 2xx answer, else what went wrong.
fn post(agent: &ureq::Agent, config: &WebhookConfig, message: &Pending) -> Result<(), String> {
    let kind = serde_json::from_str::<serde_json::Value>(&message.body)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut request = agent
        .post(config.url.as_str())
        .header("Content-Type", "application/json")
        .header("X-Preroll-Event", &kind)
        .header("X-Preroll-Event-Id", &message.id.to_string());
    if let Some(secret) = &config.secret {
        request = request.header(
            SIGNATURE_HEADER,
            &signature(secret.0.as_bytes(), message.body.as_bytes()),
        );
    }
    match request.send(message.body.as_bytes()) {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("answered {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// The URL for logs: without credentials or query (a token is often put there).
fn redacted(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        u.set_query(Some("…"));
    }
    u.to_string()
}
