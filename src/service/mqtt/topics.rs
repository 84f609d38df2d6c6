//! The MQTT topics, under `<prefix>`:
//!
//! | topic | direction | payload |
//! |---|---|---|
//! | `<prefix>/<camera>/clip` | in | `{duration?, lookback?, filename?, request_id?}` (empty: the camera's defaults): starts a clip |
//! | `<prefix>/clips/<id>/stop` | in | anything: ends clip `<id>` now |
//! | `<prefix>/clips/<id>/extend` | in | `{seconds}` |
//! | `<prefix>/clips/<id>/keep` | in | `{keep}` (empty: `true`): retention never deletes it |
//! | `<prefix>/<camera>/clips` | out | every clip event of the camera (the event JSON) |
//! | `<prefix>/<camera>/last_clip` | out, retained | the newest clip done (its API view) |
//! | `<prefix>/<camera>/state` | out, retained | the camera as `GET /api/cameras` shows it |
//! | `<prefix>/events` | out | every event (service, camera, refused triggers too) |
//! | `<prefix>/availability` | out, retained | `online`, or `offline` (also the last will) |
//! | `<prefix>/nodes/<node>/availability` | out, retained | the same, in place of the above when `[node]` is set (several services share the broker) |

use super::super::events::{Event, EventKind};

/// An outgoing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Message {
    pub fn new(topic: String, payload: impl Into<Vec<u8>>, retain: bool) -> Message {
        Message {
            topic,
            payload: payload.into(),
            retain,
        }
    }
}

/// What an incoming message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Clip { camera: String },
    Stop { clip: String },
    Extend { clip: String },
    Keep { clip: String },
}

#[derive(Debug, Clone)]
pub struct Topics {
    pub prefix: String,
    /// Set when several services share the broker: each says its own availability.
    pub node: Option<String>,
}

impl Topics {
    pub fn availability(&self) -> String {
        match &self.node {
            Some(node) => format!("{}/nodes/{node}/availability", self.prefix),
            None => format!("{}/availability", self.prefix),
        }
    }

    pub fn camera(&self, camera: &str, leaf: &str) -> String {
        format!("{}/{camera}/{leaf}", self.prefix)
    }

    /// What the service subscribes to.
    pub fn commands(&self) -> [String; 4] {
        [
            format!("{}/+/clip", self.prefix),
            format!("{}/clips/+/stop", self.prefix),
            format!("{}/clips/+/extend", self.prefix),
            format!("{}/clips/+/keep", self.prefix),
        ]
    }

    /// The command an incoming topic names, if any.
    pub fn command(&self, topic: &str) -> Option<Command> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let levels: Vec<&str> = rest.split('/').collect();
        match levels[..] {
            [camera, "clip"] if !camera.is_empty() => Some(Command::Clip {
                camera: camera.to_owned(),
            }),
            ["clips", id, "stop"] if !id.is_empty() => Some(Command::Stop {
                clip: id.to_owned(),
            }),
            ["clips", id, "extend"] if !id.is_empty() => Some(Command::Extend {
                clip: id.to_owned(),
            }),
            ["clips", id, "keep"] if !id.is_empty() => Some(Command::Keep {
                clip: id.to_owned(),
            }),
            _ => None,
        }
    }

    /// The messages an event makes (besides camera states, which the caller adds from the
    /// camera's view).
    pub fn for_event(&self, event: &Event, json: &[u8]) -> Vec<Message> {
        let mut out = vec![Message::new(
            format!("{}/events", self.prefix),
            json.to_vec(),
            false,
        )];
        let kind = event.body.kind;
        if let (true, Some(camera)) = (kind.is_clip(), &event.body.camera) {
            out.push(Message::new(
                self.camera(camera, "clips"),
                json.to_vec(),
                false,
            ));
            if kind == EventKind::ClipDone
                && let Some(clip) = &event.body.clip
                && let Ok(view) = serde_json::to_vec(clip)
            {
                out.push(Message::new(self.camera(camera, "last_clip"), view, true));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_from_their_topics_only() {
        let t = Topics {
            prefix: "home/preroll".into(),
            node: None,
        };
        let shared = Topics {
            node: Some("garage".into()),
            ..t.clone()
        };
        assert_eq!(
            shared.availability(),
            "home/preroll/nodes/garage/availability"
        );
        assert_eq!(t.availability(), "home/preroll/availability");
        assert_eq!(
            t.command("home/preroll/front/clip"),
            Some(Command::Clip {
                camera: "front".into()
            })
        );
        assert_eq!(
            t.command("home/preroll/clips/1a2-3/extend"),
            Some(Command::Extend {
                clip: "1a2-3".into()
            })
        );
        assert_eq!(
            t.command("home/preroll/clips/x/stop"),
            Some(Command::Stop { clip: "x".into() })
        );
        for other in [
            "home/preroll/front/clips",
            "home/preroll//clip",
            "home/prerollx/front/clip",
            "home/preroll/a/b/clip",
            "preroll/front/clip",
        ] {
            assert_eq!(t.command(other), None, "{other}");
        }
    }
}
