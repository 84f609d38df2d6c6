//! Home Assistant MQTT discovery: per camera a device with a "Record clip" button (the
//! camera's default lookback and duration), a connectivity sensor, the last clip (path, time,
//! duration) and the seconds its ring holds, all tied to the availability topic. Configs are
//! retained under `<discovery_prefix>/<component>/<node>/<camera>_<what>/config`; at connect
//! the service reads back what is retained under its node and clears the configs of cameras
//! it no longer has.

use serde_json::{Value, json};

use super::topics::{Message, Topics};

/// The node id: the client id as Home Assistant takes it (letters, digits, `_`, `-`).
pub fn node_id(client_id: &str) -> String {
    client_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The topic under which the service's own retained configs are found.
pub fn retained_configs(discovery_prefix: &str, node: &str) -> String {
    format!("{discovery_prefix}/+/{node}/+/config")
}

/// Every config of one camera: (topic, payload), retained.
pub fn camera_configs(
    discovery_prefix: &str,
    node: &str,
    topics: &Topics,
    camera: &str,
) -> Vec<Message> {
    let device = json!({
        "identifiers": [format!("preroll_{node}_{camera}")],
        "name": camera,
        "manufacturer": "preroll",
        "model": "Camera recorder",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let state = topics.camera(camera, "state");
    let last = topics.camera(camera, "last_clip");
    let entity = |component: &str, what: &str, mut config: Value| {
        let object = format!("{camera}_{what}");
        config["unique_id"] = json!(format!("preroll_{node}_{object}"));
        config["object_id"] = json!(format!("preroll_{object}"));
        config["availability_topic"] = json!(topics.availability());
        config["payload_available"] = json!("online");
        config["payload_not_available"] = json!("offline");
        config["device"] = device.clone();
        Message::new(
            format!("{discovery_prefix}/{component}/{node}/{object}/config"),
            config.to_string(),
            true,
        )
    };
    vec![
        entity(
            "button",
            "record",
            json!({
                "name": "Record clip",
                "command_topic": topics.camera(camera, "clip"),
                "payload_press": "{}",
                "icon": "mdi:record-rec",
            }),
        ),
        entity(
            "binary_sensor",
            "connected",
            json!({
                "name": "Connected",
                "state_topic": state,
                "value_template": "{{ 'ON' if value_json.connected else 'OFF' }}",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
            }),
        ),
        entity(
            "sensor",
            "last_clip",
            json!({
                "name": "Last clip",
                "state_topic": last,
                "value_template": "{{ value_json.path }}",
                "json_attributes_topic": last,
                "icon": "mdi:filmstrip",
            }),
        ),
        entity(
            "sensor",
            "last_clip_time",
            json!({
                "name": "Last clip time",
                "state_topic": last,
                "value_template": "{{ value_json.trigger_time }}",
                "device_class": "timestamp",
            }),
        ),
        entity(
            "sensor",
            "last_clip_duration",
            json!({
                "name": "Last clip duration",
                "state_topic": last,
                "value_template": "{{ value_json.duration }}",
                "device_class": "duration",
                "unit_of_measurement": "s",
            }),
        ),
        entity(
            "sensor",
            "ring_seconds",
            json!({
                "name": "Pre-roll held",
                "state_topic": state,
                "value_template": "{{ value_json.ring_seconds }}",
                "device_class": "duration",
                "unit_of_measurement": "s",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            }),
        ),
    ]
}

/// The object id of a retained config topic under `node`, if it is one.
pub fn object_of<'t>(topic: &'t str, discovery_prefix: &str, node: &str) -> Option<&'t str> {
    let rest = topic.strip_prefix(discovery_prefix)?.strip_prefix('/')?;
    let levels: Vec<&str> = rest.split('/').collect();
    match levels[..] {
        [_component, n, object, "config"] if n == node => Some(object),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_has_what_home_assistant_requires() {
        let topics = Topics {
            prefix: "preroll".into(),
            node: None,
        };
        let configs = camera_configs("homeassistant", "preroll", &topics, "front");
        assert_eq!(configs.len(), 6);
        for m in &configs {
            assert!(m.retain);
            let v: Value = serde_json::from_slice(&m.payload).unwrap();
            assert!(
                v["unique_id"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("preroll_preroll_front_"))
            );
            assert_eq!(v["availability_topic"], "preroll/availability");
            assert_eq!(v["device"]["identifiers"][0], "preroll_preroll_front");
            let component = m.topic.split('/').nth(1).unwrap();
            match component {
                "button" => assert_eq!(v["command_topic"], "preroll/front/clip"),
                "binary_sensor" | "sensor" => assert!(v["state_topic"].is_string()),
                other => panic!("{other}"),
            }
            assert_eq!(
                object_of(&m.topic, "homeassistant", "preroll").map(|o| o.starts_with("front_")),
                Some(true)
            );
        }
        assert_eq!(node_id("preroll.home"), "preroll_home");
        assert_eq!(
            object_of(
                "homeassistant/sensor/other/x/config",
                "homeassistant",
                "preroll"
            ),
            None
        );
    }
}
