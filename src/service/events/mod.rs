//! What happens in the service, told once: every clip, camera and service event goes through
//! one [`EventBus`] to each consumer (the clip history, metrics, `GET /api/events`, and the
//! outside world as it is added). Events carry an id that only grows, so a consumer that
//! reconnects or falls behind asks for what came after the last one it saw.

mod bus;
pub mod sse;

use serde::{Deserialize, Serialize};

use super::ClipView;

pub use bus::{EventBus, KEEP_EVENTS, KEEP_FOR, Subscription};

/// What an event is about, as `kind` in its JSON (`"clip.done"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// The clip's file is reserved; recording starts.
    #[serde(rename = "clip.created")]
    ClipCreated,
    /// The pre-roll is taken and media is being written.
    #[serde(rename = "clip.recording")]
    ClipRecording,
    /// No more media is taken; the file is being made durable under its name.
    #[serde(rename = "clip.finalizing")]
    ClipFinalizing,
    #[serde(rename = "clip.done")]
    ClipDone,
    #[serde(rename = "clip.failed")]
    ClipFailed,
    /// An interrupted clip was salvaged at start.
    #[serde(rename = "clip.recovered")]
    ClipRecovered,
    #[serde(rename = "clip.deleted")]
    ClipDeleted,
    /// A verified copy of the clip is in the bucket (`[storage.remote]`); its `storage`
    /// says whether the local file stayed.
    #[serde(rename = "clip.uploaded")]
    ClipUploaded,
    #[serde(rename = "camera.connected")]
    CameraConnected,
    #[serde(rename = "camera.disconnected")]
    CameraDisconnected,
    /// The camera's tracks changed while it streamed (codec, resolution, audio).
    #[serde(rename = "camera.codec_changed")]
    CameraCodecChanged,
    #[serde(rename = "service.started")]
    ServiceStarted,
    #[serde(rename = "service.stopping")]
    ServiceStopping,
    /// A trigger that came from outside the API was refused (a bad MQTT payload): `reason`
    /// names the problem.
    #[serde(rename = "trigger.refused")]
    TriggerRefused,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::ClipCreated,
        EventKind::ClipRecording,
        EventKind::ClipFinalizing,
        EventKind::ClipDone,
        EventKind::ClipFailed,
        EventKind::ClipRecovered,
        EventKind::ClipDeleted,
        EventKind::ClipUploaded,
        EventKind::CameraConnected,
        EventKind::CameraDisconnected,
        EventKind::CameraCodecChanged,
        EventKind::ServiceStarted,
        EventKind::ServiceStopping,
        EventKind::TriggerRefused,
    ];

    /// The name in JSON, config (`events = [...]`) and metrics.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ClipCreated => "clip.created",
            EventKind::ClipRecording => "clip.recording",
            EventKind::ClipFinalizing => "clip.finalizing",
            EventKind::ClipDone => "clip.done",
            EventKind::ClipFailed => "clip.failed",
            EventKind::ClipRecovered => "clip.recovered",
            EventKind::ClipDeleted => "clip.deleted",
            EventKind::ClipUploaded => "clip.uploaded",
            EventKind::CameraConnected => "camera.connected",
            EventKind::CameraDisconnected => "camera.disconnected",
            EventKind::CameraCodecChanged => "camera.codec_changed",
            EventKind::ServiceStarted => "service.started",
            EventKind::ServiceStopping => "service.stopping",
            EventKind::TriggerRefused => "trigger.refused",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// An event of a clip (`clip.*`).
    pub fn is_clip(self) -> bool {
        self.name().starts_with("clip.")
    }

    /// A clip reached a state it will not leave.
    pub fn is_final_clip(self) -> bool {
        matches!(
            self,
            EventKind::ClipDone | EventKind::ClipFailed | EventKind::ClipRecovered
        )
    }
}

/// What happened, before the bus gives it an id and a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBody {
    pub kind: EventKind,
    /// The camera it concerns, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// The clip as `GET /api/clips/{id}` shows it at the time of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipView>,
    /// Why (a disconnect, a failed clip, a refused trigger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The camera's tracks as clips store them (`"H.264 1920x1080"`, `"AAC"`), on connect
    /// and codec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<String>>,
    /// The `request_id` a trigger carried, echoed on the events of the clip it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The file a `clip.deleted` removed (also when the clip had no entry any more: the
    /// history keeps only the newest clips).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<std::path::PathBuf>,
    /// Its size, on `clip.deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl EventBody {
    pub fn new(kind: EventKind) -> EventBody {
        EventBody {
            kind,
            camera: None,
            clip: None,
            reason: None,
            tracks: None,
            request_id: None,
            path: None,
            bytes: None,
        }
    }

    /// A clip event: the camera, reason and request id come from the clip's view.
    pub fn clip(kind: EventKind, clip: ClipView) -> EventBody {
        EventBody {
            camera: clip.camera.clone(),
            reason: clip.error.clone().or_else(|| clip.ended_early.clone()),
            request_id: clip.request_id.clone(),
            clip: Some(clip),
            ..EventBody::new(kind)
        }
    }

    pub fn camera(kind: EventKind, camera: &str) -> EventBody {
        EventBody {
            camera: Some(camera.to_owned()),
            ..EventBody::new(kind)
        }
    }
}

/// An event as every consumer receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Grows by one with each event, and across restarts: a run's ids start at its start
    /// time in Unix seconds × 1,000,000 (see [`EventBus::new`]), so they stay below 2^53 and
    /// read exactly as JavaScript numbers.
    pub id: u64,
    /// When it was published (RFC 3339, UTC, milliseconds).
    pub time: String,
    #[serde(flatten)]
    pub body: EventBody,
}
