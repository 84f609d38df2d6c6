//! What a clip request says, read the same way whether it came over HTTP or MQTT: a JSON
//! object `{filename?, duration?, lookback?, request_id?}` (an empty body is `{}`), and
//! `{seconds}` to extend one. Each problem is named in words a caller can act on.

use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::clips::MAX_CLIP_SECONDS;

/// A clip request, before the camera's defaults fill what it left out.
#[derive(Debug, Clone, Default)]
pub struct ClipOrder {
    pub filename: Option<String>,
    /// Media after the trigger (default: the camera's `clip_duration`).
    pub duration: Option<Duration>,
    /// Media before the trigger (default: the camera's `clip_lookback`).
    pub lookback: Option<Duration>,
    /// Echoed on the clip's events.
    pub request_id: Option<String>,
}

/// Longest `request_id` taken (it is echoed on every event of the clip).
pub const MAX_REQUEST_ID: usize = 128;

/// A field that may be left out, but not sent as `null` (the OpenAPI document gives each a
/// type without null).
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClipBody {
    #[serde(default, deserialize_with = "not_null")]
    filename: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    duration: Option<f64>,
    #[serde(default, deserialize_with = "not_null")]
    lookback: Option<f64>,
    #[serde(default, deserialize_with = "not_null")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    seconds: f64,
}

/// Reads a JSON object; an empty (or all-blank) body is `{}`.
pub fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // serde would also read a struct from an array of its fields (`[1.5]`); the document
    // says an object.
    if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("request body: expected a JSON object".into());
    }
    serde_json::from_slice(text).map_err(|e| format!("request body: {e}"))
}

/// Seconds within (0 or above 0) and [`MAX_CLIP_SECONDS`].
pub fn seconds(name: &str, v: f64, allow_zero: bool) -> Result<Duration, String> {
    let ok = v.is_finite() && v <= MAX_CLIP_SECONDS && (v > 0.0 || (allow_zero && v == 0.0));
    if !ok {
        let low = if allow_zero { "0" } else { "above 0" };
        return Err(format!(
            "{name} {v} must be {low} and at most {MAX_CLIP_SECONDS} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn request_id(v: Option<String>) -> Result<Option<String>, String> {
    match v {
        Some(id) if id.is_empty() || id.chars().count() > MAX_REQUEST_ID => Err(format!(
            "request_id must be 1 to {MAX_REQUEST_ID} characters"
        )),
        Some(id) if id.chars().any(char::is_control) => {
            Err("request_id must not contain control characters".into())
        }
        v => Ok(v),
    }
}

impl ClipOrder {
    /// A clip request's body.
    pub fn from_json(bytes: &[u8]) -> Result<ClipOrder, String> {
        let b: ClipBody = object(bytes)?;
        Ok(ClipOrder {
            filename: b.filename,
            duration: b
                .duration
                .map(|d| seconds("duration", d, false))
                .transpose()?,
            lookback: b
                .lookback
                .map(|l| seconds("lookback", l, true))
                .transpose()?,
            request_id: request_id(b.request_id)?,
        })
    }

    /// The `request_id` of a body that may be refused, to echo on the refusal.
    pub fn request_id_of(bytes: &[u8]) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        request_id(v.get("request_id")?.as_str().map(str::to_owned))
            .ok()
            .flatten()
    }
}

/// An export: a range of a camera's continuous recording, as a clip. The times are read
/// by [`ExportOrder::range`], once the camera is known to record continuously: an unknown
/// camera is a 404 whatever the body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOrder {
    pub start: String,
    pub end: String,
    pub filename: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    start: String,
    end: String,
    #[serde(default, deserialize_with = "not_null")]
    filename: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    request_id: Option<String>,
}

impl ExportOrder {
    /// `{"start": RFC 3339, "end": RFC 3339, "filename"?, "request_id"?}`.
    pub fn from_json(bytes: &[u8]) -> Result<ExportOrder, String> {
        let b: ExportBody = object(bytes)?;
        Ok(ExportOrder {
            start: b.start,
            end: b.end,
            filename: b.filename,
            request_id: request_id(b.request_id)?,
        })
    }

    /// The range: two RFC 3339 times, the end after the start, no longer than a clip may be.
    pub fn range(&self) -> Result<(SystemTime, SystemTime), String> {
        let time = |name: &str, v: &str| {
            crate::time::parse_rfc3339(v).ok_or_else(|| {
                format!("{name} {v:?} is not an RFC 3339 time such as 2026-11-30T08:15:30Z")
            })
        };
        let (start, end) = (time("start", &self.start)?, time("end", &self.end)?);
        let length = end
            .duration_since(start)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("end {} is not after start {}", self.end, self.start))?;
        if length.as_secs_f64() > MAX_CLIP_SECONDS {
            return Err(format!(
                "the range is {:.0} s long; an export holds at most {MAX_CLIP_SECONDS:.0} s",
                length.as_secs_f64()
            ));
        }
        Ok((start, end))
    }
}

/// An extend request's body: the seconds to add.
pub fn extend_seconds(bytes: &[u8]) -> Result<(f64, Duration), String> {
    let b: ExtendBody = object(bytes)?;
    Ok((b.seconds, seconds("seconds", b.seconds, false)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeepBody {
    keep: bool,
}

/// A keep request's body, `{"keep": true|false}`; an empty one (an MQTT message without a
/// payload) means `true`.
pub fn keep_of(bytes: &[u8], empty_means_keep: bool) -> Result<bool, String> {
    if empty_means_keep && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(true);
    }
    let b: KeepBody = object(bytes)?;
    Ok(b.keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_ranges_are_two_times_in_order_and_at_most_a_day() {
        let range = |start: &str, end: &str| {
            let body = format!(r#"{{"start": "{start}", "end": "{end}"}}"#);
            ExportOrder::from_json(body.as_bytes())
                .and_then(|o| o.range())
                .map(|(s, e)| e.duration_since(s).unwrap_or_default().as_secs())
        };
        assert_eq!(
            range("2026-11-30T08:00:00Z", "2026-11-30T08:05:00Z"),
            Ok(300)
        );
        assert_eq!(
            range("2026-11-30T08:00:00Z", "2026-12-01T08:00:00Z"),
            Ok(86_400)
        );
        let e = range("2026-11-30T08:00:00Z", "2026-12-01T08:00:01Z").unwrap_err();
        assert!(e.contains("at most 86400 s"), "{e}");
        let e = range("2026-11-30T08:00:00Z", "2026-11-30T08:00:00Z").unwrap_err();
        assert!(e.contains("is not after start"), "{e}");
        let e = range("2026-11-30 08:00", "2026-11-30T08:00:00Z").unwrap_err();
        assert!(
            e.contains("start \"2026-11-30 08:00\" is not an RFC 3339 time"),
            "{e}"
        );
        let e = ExportOrder::from_json(br#"{"start": "2026-11-30T08:00:00Z"}"#).unwrap_err();
        assert!(e.contains("end"), "{e}");
        let e = ExportOrder::from_json(br#"{"start": "a", "end": "b", "x": 1}"#).unwrap_err();
        assert!(e.contains("x"), "{e}");
    }

    #[test]
    fn bodies_are_read_with_every_problem_named() {
        let o = ClipOrder::from_json(b"").unwrap();
        assert!(o.duration.is_none() && o.lookback.is_none() && o.filename.is_none());
        let o = ClipOrder::from_json(br#"{"duration": 2.5, "lookback": 0, "request_id": "x"}"#)
            .unwrap();
        assert_eq!(o.duration, Some(Duration::from_millis(2500)));
        assert_eq!(o.lookback, Some(Duration::ZERO));
        assert_eq!(o.request_id.as_deref(), Some("x"));
        for (body, says) in [
            (&br#"{"duration": 0}"#[..], "duration 0 must be above 0"),
            (br#"{"lookback": -1}"#, "lookback -1 must be 0"),
            (br#"{"duration": null}"#, "invalid type: null"),
            (br#"{"colour": "red"}"#, "unknown field `colour`"),
            (b"[1]", "expected a JSON object"),
            (b"{not json", "request body"),
            (br#"{"request_id": ""}"#, "request_id must be 1 to 128"),
            (br#"{"request_id": "a\u0007b"}"#, "control characters"),
        ] {
            let e = ClipOrder::from_json(body).unwrap_err();
            assert!(
                e.contains(says),
                "{e} for {}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            ClipOrder::request_id_of(br#"{"duration": -5, "request_id": "r1"}"#).as_deref(),
            Some("r1")
        );
        assert_eq!(extend_seconds(br#"{"seconds": 4}"#).unwrap().0, 4.0);
        assert_eq!(keep_of(br#"{"keep": false}"#, true), Ok(false));
        assert_eq!(keep_of(b"", true), Ok(true));
        assert!(keep_of(b"", false).is_err());
        assert!(
            keep_of(br#"{"keep": 1}"#, true)
                .unwrap_err()
                .contains("invalid type")
        );
        assert!(
            extend_seconds(b"{}")
                .unwrap_err()
                .contains("missing field `seconds`")
        );
    }
}
