//! MQTT: triggers in, events out, and Home Assistant discovery (see `topics` for the topics).
//!
//! One task drives rumqttc's event loop and tells the manager what happens on the wire; the
//! manager owns everything else. Every outgoing message is QoS 1 and is kept by the manager
//! until the broker acknowledges it: messages wait in a bounded queue while the broker is
//! unreachable (past the bound the oldest event messages are dropped, counted and logged), are
//! handed to rumqttc only while connected, and those not acknowledged when the connection
//! drops go back to the front of the queue. Nothing relies on the broker keeping a session:
//! a broker restarted without persistence loses no event (a receiver may see one twice; the
//! event id tells). Reconnects back off from 1 s to 30 s. The last will marks the service
//! `offline` on the availability topic; it says `online` at every connect.

mod discovery;
mod topics;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event as Wire, EventLoop, Incoming, LastWill,
    MqttOptions, Outgoing, QoS, TlsConfiguration, Transport,
};
use serde::Serialize;
use tokio::sync::mpsc;

use super::Service;
use super::events::{EventBody, EventKind, Subscription};
use super::observe::camera_view;
use super::order::{ClipOrder, extend_seconds};
use crate::config::MqttConfig;

use topics::{Command, Message, Topics};

/// Messages kept while the broker is unreachable.
const MAX_QUEUED: usize = 10_000;
/// Requests rumqttc holds between the manager and the wire.
const CHANNEL: usize = 64;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// How often camera states (their ring seconds) are published again.
const STATE_EVERY: Duration = Duration::from_secs(30);
/// Largest incoming message taken (a trigger is a few hundred bytes; retained discovery
/// configs a few kilobytes).
const MAX_INCOMING: usize = 64 * 1024;

/// Where the MQTT link is, for the API and the metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MqttStatus {
    /// `mqtt://host:port` (no credentials).
    pub broker: String,
    pub connected: bool,
    /// Why it is not connected (or the last failure).
    pub last_error: Option<String>,
    pub connects: u64,
    /// Messages acknowledged by the broker.
    pub published: u64,
    /// Messages waiting for the broker (queued or not yet acknowledged).
    pub waiting: usize,
    /// Messages dropped because more than 10,000 waited.
    pub dropped: u64,
    /// Triggers and commands received.
    pub commands: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the event-loop task reports.
enum WireNote {
    Connected,
    Down(String),
    Sent(u16),
    Acked(u16),
    Received(rumqttc::Publish),
}

/// Starts the link (subscribed to the bus before this returns).
pub fn start(
    service: &Arc<Service>,
    config: &MqttConfig,
) -> anyhow::Result<Arc<Mutex<MqttStatus>>> {
    let topics = Topics {
        prefix: config.topic_prefix.clone(),
        node: service
            .config
            .several_nodes
            .then(|| service.config.node.clone()),
    };
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(true)
        .set_max_packet_size(MAX_INCOMING, 4 << 20)
        .set_last_will(LastWill::new(
            topics.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &config.username {
        let password = config.password.as_ref().map_or("", |p| p.0.as_str());
        options.set_credentials(user, password);
    }
    if config.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls_config(config)?),
        )));
    }
    let scheme = if config.tls { "mqtts" } else { "mqtt" };
    let status = Arc::new(Mutex::new(MqttStatus {
        broker: format!("{scheme}://{}:{}", config.host, config.port),
        ..MqttStatus::default()
    }));
    let (client, eventloop) = AsyncClient::new(options, CHANNEL);
    let (notes_tx, notes) = mpsc::channel(256);
    tokio::spawn(drive(eventloop, notes_tx));
    let node = discovery::node_id(&config.client_id);
    let manager = Manager {
        service: Arc::downgrade(service),
        client,
        topics,
        discovery: config
            .discovery
            .then(|| (config.discovery_prefix.clone(), node.clone())),
        clear_under: (config.discovery_prefix.clone(), node),
        status: status.clone(),
        connected: false,
        queue: VecDeque::new(),
        submitted: VecDeque::new(),
        inflight: HashMap::new(),
        next_seq: 0,
        retained_warned: false,
    };
    let events = service.events.subscribe("mqtt", None);
    tokio::spawn(manager.run(events, notes));
    Ok(status)
}

/// rustls with the ring provider, trusting `ca_file` or the public roots.
fn tls_config(config: &MqttConfig) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| anyhow::anyhow!("mqtt.ca_file {}: {e}", path.display()))?
            {
                let cert =
                    cert.map_err(|e| anyhow::anyhow!("mqtt.ca_file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| anyhow::anyhow!("mqtt.ca_file {}: {e}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("mqtt TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Polls rumqttc's event loop (which connects and reconnects) and passes on what matters.
async fn drive(mut eventloop: EventLoop, notes: mpsc::Sender<WireNote>) {
    let mut delay = FIRST_RETRY;
    loop {
        let note = match eventloop.poll().await {
            Ok(Wire::Incoming(Incoming::ConnAck(_))) => {
                delay = FIRST_RETRY;
                WireNote::Connected
            }
            Ok(Wire::Incoming(Incoming::PubAck(ack))) => WireNote::Acked(ack.pkid),
            Ok(Wire::Incoming(Incoming::Publish(p))) => WireNote::Received(p),
            Ok(Wire::Outgoing(Outgoing::Publish(pkid))) => WireNote::Sent(pkid),
            Ok(_) => continue,
            Err(e) => {
                let why = describe(&e);
                if notes.send(WireNote::Down(why)).await.is_err() {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(LONGEST_RETRY);
                continue;
            }
        };
        if notes.send(note).await.is_err() {
            return;
        }
    }
}

/// A connection failure in words a user can act on.
fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => "the broker refused the username or password (mqtt.username, mqtt.password_env)"
            .to_owned(),
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection: {code:?}")
        }
        ConnectionError::Io(io) => format!("cannot reach the broker: {io}"),
        other => other.to_string(),
    }
}

/// A message on its way, numbered so that what comes back after a drop keeps its order.
#[derive(Debug, Clone)]
struct Outbound {
    seq: u64,
    message: Message,
}

struct Manager {
    service: Weak<Service>,
    client: AsyncClient,
    topics: Topics,
    /// `(discovery prefix, node id)` when discovery is on.
    discovery: Option<(String, String)>,
    /// Where the service's own retained configs are looked for (to clear stale ones, or all
    /// of them when discovery is off).
    clear_under: (String, String),
    status: Arc<Mutex<MqttStatus>>,
    connected: bool,
    /// Not yet handed to rumqttc.
    queue: VecDeque<Outbound>,
    /// Handed to rumqttc, not yet on the wire (their packet ids come with `Sent`, in order).
    submitted: VecDeque<Outbound>,
    /// On the wire, waiting for the broker's acknowledgement.
    inflight: HashMap<u16, Outbound>,
    next_seq: u64,
    retained_warned: bool,
}

impl Manager {
    async fn run(mut self, mut events: Subscription, mut notes: mpsc::Receiver<WireNote>) {
        let mut states = tokio::time::interval(STATE_EVERY);
        states.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { return };
                    self.on_event(&event);
                }
                note = notes.recv() => {
                    let Some(note) = note else { return };
                    self.on_wire(note).await;
                }
                _ = states.tick() => {
                    if self.connected {
                        self.publish_states(None);
                    }
                }
            }
            self.flush();
            let waiting = self.queue.len() + self.submitted.len() + self.inflight.len();
            lock(&self.status).waiting = waiting;
        }
    }

    fn push(&mut self, message: Message) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push_back(Outbound { seq, message });
        let mut dropped = 0;
        while self.queue.len() > MAX_QUEUED {
            self.queue.pop_front();
            dropped += 1;
        }
        if dropped > 0 {
            let mut st = lock(&self.status);
            if st.dropped == 0 {
                tracing::warn!(
                    "more than {MAX_QUEUED} MQTT messages waiting for the broker: dropping the oldest (counted in preroll_mqtt_dropped_total)"
                );
            }
            st.dropped += dropped;
        }
    }

    /// Hands queued messages to rumqttc while connected and its channel has room.
    fn flush(&mut self) {
        while self.connected {
            let Some(next) = self.queue.pop_front() else {
                return;
            };
            let m = &next.message;
            match self
                .client
                .try_publish(&m.topic, QoS::AtLeastOnce, m.retain, m.payload.clone())
            {
                Ok(()) => self.submitted.push_back(next),
                Err(_) => {
                    // Full: wait for the wire to take some.
                    self.queue.push_front(next);
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, event: &super::events::Event) {
        let Ok(json) = serde_json::to_vec(event) else {
            return;
        };
        for m in self.topics.for_event(event, &json) {
            self.push(m);
        }
        match event.body.kind {
            EventKind::CameraConnected
            | EventKind::CameraDisconnected
            | EventKind::CameraCodecChanged => {
                if let Some(camera) = &event.body.camera {
                    self.publish_states(Some(camera));
                }
            }
            EventKind::ServiceStopping => {
                self.push(Message::new(self.topics.availability(), "offline", true));
            }
            _ => {}
        }
    }

    /// Each camera's view, retained on its state topic (`only`: one camera).
    fn publish_states(&mut self, only: Option<&str>) {
        let Some(service) = self.service.upgrade() else {
            return;
        };
        for c in &service.cameras {
            if only.is_some_and(|o| o != c.config.name) {
                continue;
            }
            if let Ok(view) = serde_json::to_vec(&camera_view(c)) {
                self.push(Message::new(
                    self.topics.camera(&c.config.name, "state"),
                    view,
                    true,
                ));
            }
        }
    }

    async fn on_wire(&mut self, note: WireNote) {
        match note {
            WireNote::Connected => {
                self.connected = true;
                {
                    let mut st = lock(&self.status);
                    st.connected = true;
                    st.connects += 1;
                    if st.last_error.take().is_some() || st.connects > 1 {
                        tracing::info!(broker = %st.broker, "MQTT connected");
                    }
                }
                self.subscribe().await;
                // Ahead of anything queued while down: the service is back, with its cameras.
                let mut first = vec![Message::new(self.topics.availability(), "online", true)];
                if let (Some((prefix, node)), Some(service)) =
                    (&self.discovery, self.service.upgrade())
                {
                    for c in &service.cameras {
                        first.extend(discovery::camera_configs(
                            prefix,
                            node,
                            &self.topics,
                            &c.config.name,
                        ));
                    }
                }
                let queued = std::mem::take(&mut self.queue);
                for m in first {
                    self.push(m);
                }
                self.publish_states(None);
                self.queue.extend(queued);
            }
            WireNote::Down(why) => {
                if self.connected {
                    tracing::warn!("MQTT connection lost: {why}; reconnecting");
                }
                self.connected = false;
                // What the broker did not acknowledge goes again, in its order, first.
                let mut back: BTreeMap<u64, Outbound> = BTreeMap::new();
                for o in self
                    .inflight
                    .drain()
                    .map(|(_, o)| o)
                    .chain(self.submitted.drain(..))
                {
                    back.insert(o.seq, o);
                }
                for (_, o) in back.into_iter().rev() {
                    self.queue.push_front(o);
                }
                let mut st = lock(&self.status);
                st.connected = false;
                if st.last_error.as_deref() != Some(why.as_str()) {
                    tracing::warn!(broker = %st.broker, "MQTT: {why}");
                    st.last_error = Some(why);
                }
            }
            WireNote::Sent(pkid) => {
                if let Some(o) = self.submitted.pop_front() {
                    self.inflight.insert(pkid, o);
                }
            }
            WireNote::Acked(pkid) => {
                if self.inflight.remove(&pkid).is_some() {
                    lock(&self.status).published += 1;
                }
            }
            WireNote::Received(p) => self.on_publish(p),
        }
    }

    async fn subscribe(&self) {
        for topic in self.topics.commands() {
            let _ = self.client.subscribe(topic, QoS::AtLeastOnce).await;
        }
        let (prefix, node) = &self.clear_under;
        let _ = self
            .client
            .subscribe(discovery::retained_configs(prefix, node), QoS::AtLeastOnce)
            .await;
    }

    fn on_publish(&mut self, p: rumqttc::Publish) {
        let topic = p.topic.clone();
        let (prefix, node) = &self.clear_under;
        if let Some(object) = discovery::object_of(&topic, prefix, node) {
            // A retained config of ours: cleared unless it is one of a configured camera.
            let current = self.discovery.is_some()
                && self.service.upgrade().is_some_and(|s| {
                    s.cameras.iter().any(|c| {
                        object
                            .strip_prefix(&c.config.name)
                            .is_some_and(|r| r.starts_with('_'))
                    })
                });
            if !current && !p.payload.is_empty() {
                tracing::info!(topic = %topic, "clearing the discovery config of a camera no longer configured");
                self.push(Message::new(topic, Vec::new(), true));
            }
            return;
        }
        let Some(command) = self.topics.command(&topic) else {
            return;
        };
        if p.retain {
            // A trigger left retained on the broker would start a clip at every connect.
            if !self.retained_warned {
                self.retained_warned = true;
                tracing::warn!(topic = %topic, "ignoring a retained command (publish triggers without the retain flag)");
            }
            return;
        }
        lock(&self.status).commands += 1;
        let Some(service) = self.service.upgrade() else {
            return;
        };
        let payload = p.payload.to_vec();
        tokio::spawn(async move {
            if let Err((camera, request_id, reason)) =
                command_for(&service, &command, &payload).await
            {
                service.events.publish(EventBody {
                    camera,
                    request_id,
                    reason: Some(format!("MQTT {topic}: {reason}")),
                    ..EventBody::new(EventKind::TriggerRefused)
                });
            }
        });
    }
}

/// Carries out a command; on refusal, the camera, request id and reason for the event.
async fn command_for(
    service: &Arc<Service>,
    command: &Command,
    payload: &[u8],
) -> Result<(), (Option<String>, Option<String>, String)> {
    // With several nodes on the broker, a camera or clip this one does not have is another's.
    let others = service.config.several_nodes;
    match command {
        Command::Clip { camera } if others && service.camera(camera).is_none() => Ok(()),
        Command::Stop { clip } | Command::Extend { clip } | Command::Keep { clip }
            if others && matches!(service.clips.get(clip), Ok(None)) =>
        {
            Ok(())
        }
        Command::Clip { camera } => {
            let refuse = |reason: String| {
                (
                    Some(camera.clone()),
                    ClipOrder::request_id_of(payload),
                    reason,
                )
            };
            if payload.len() > 4096 {
                return Err(refuse(format!(
                    "payload of {} bytes; at most 4096",
                    payload.len()
                )));
            }
            let order = ClipOrder::from_json(payload).map_err(refuse)?;
            service
                .start_clip(camera, order)
                .await
                .map(|_| ())
                .map_err(|e| refuse(e.to_string()))
        }
        Command::Keep { clip } => {
            let keep = super::order::keep_of(payload, true).map_err(|e| (None, None, e))?;
            match service.set_keep(clip, keep).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err((None, None, format!("no clip with id {clip:?}"))),
                Err(e) => Err((None, None, e.to_string())),
            }
        }
        Command::Stop { clip } | Command::Extend { clip } => {
            let refuse = |reason: String| (None, None, reason);
            let found = service
                .clips
                .get(clip)
                .map_err(|e| refuse(e.to_string()))?
                .ok_or_else(|| refuse(format!("no clip with id {clip:?}")))?;
            let camera = found.view().camera;
            let refuse = |reason: String| (camera.clone(), None, reason);
            if matches!(command, Command::Stop { .. }) {
                found
                    .stop()
                    .map(|_| ())
                    .map_err(|e| refuse(format!("clip {clip} is {}, not recording", e.0.name())))
            } else {
                let (_, more) = extend_seconds(payload).map_err(refuse)?;
                found.extend(more).map(|_| ()).map_err(|e| match e {
                    super::clips::ExtendRefused::NotRecording(n) => {
                        refuse(format!("clip {clip} is {}, not recording", n.0.name()))
                    }
                    super::clips::ExtendRefused::TooLong { total } => refuse(format!(
                        "extending clip {clip} would make it record {total} s after its trigger; \
                         the limit is {} s",
                        super::clips::MAX_CLIP_SECONDS
                    )),
                })
            }
        }
    }
}
