//! What the service reports about itself: the camera list of the API and the metrics page.

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::mp4::TrackKind;

use super::events::EventKind;
use super::metrics::{Exposition, label};
use super::{Service, ServiceCamera};

/// A camera as `GET /api/cameras` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CameraView {
    pub name: String,
    pub enabled: bool,
    /// The source with credentials redacted.
    pub source: String,
    pub connected: bool,
    /// Video codec of the current stream (`H.264`, `H.265`), once known.
    pub codec: Option<String>,
    /// Audio codec clips store (`AAC`, `FLAC`), once known.
    pub audio_codec: Option<String>,
    /// The camera's audio as sent (`PCMU 8000 Hz mono`, `AAC 48000 Hz mono`), whether or
    /// not clips keep it: G.711 and L16 are stored as FLAC, other codecs are left out.
    pub source_audio: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Media bits per second over what the ring holds.
    pub bitrate: Option<u64>,
    /// Seconds of media in the ring, and its configured limits.
    pub ring_seconds: f64,
    pub ring_bytes: u64,
    pub ring_segments: usize,
    pub ring_limit_seconds: f64,
    pub ring_limit_bytes: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
    pub frames: u64,
    pub bytes: u64,
    pub dropped_frames: u64,
    pub lost_packets: u64,
}

pub fn camera_view(c: &ServiceCamera) -> CameraView {
    let mut v = CameraView {
        name: c.config.name.clone(),
        enabled: c.config.enabled,
        source: c.config.source.display(),
        connected: false,
        codec: None,
        audio_codec: None,
        source_audio: None,
        width: None,
        height: None,
        bitrate: None,
        ring_seconds: 0.0,
        ring_bytes: 0,
        ring_segments: 0,
        ring_limit_seconds: c.config.ring.seconds.as_secs_f64(),
        ring_limit_bytes: c.config.ring.bytes,
        reconnects: 0,
        last_error: None,
        frames: 0,
        bytes: 0,
        dropped_frames: 0,
        lost_packets: 0,
    };
    let Some(camera) = &c.camera else {
        return v;
    };
    let status = camera.status();
    let (seconds, bytes, segments) = {
        let ring = camera.ring();
        (ring.duration(), ring.bytes(), ring.len())
    };
    v.connected = status.connected;
    v.source_audio = status.source_audio.clone();
    for p in &status.params {
        match p.kind {
            TrackKind::Video if v.codec.is_none() => {
                v.codec = Some(p.codec.to_string());
                v.width = Some(p.width);
                v.height = Some(p.height);
            }
            TrackKind::Audio if v.audio_codec.is_none() => {
                v.audio_codec = Some(p.codec.to_string());
            }
            _ => {}
        }
    }
    v.ring_seconds = seconds.as_secs_f64();
    v.ring_bytes = bytes;
    v.ring_segments = segments;
    v.bitrate = (seconds.as_secs_f64() > 0.0)
        .then(|| (bytes as f64 * 8.0 / seconds.as_secs_f64()).round() as u64);
    v.reconnects = status.reconnects;
    v.last_error = status.last_error;
    v.frames = status.frames;
    v.bytes = status.bytes;
    v.dropped_frames = status.dropped_frames;
    v.lost_packets = status.lost_packets;
    v
}

/// Free bytes for unprivileged writers on the filesystem holding `dir`.
fn disk_free(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The `/metrics` page (Prometheus text format 0.0.4).
pub fn metrics_page(service: &Service) -> String {
    let views: Vec<CameraView> = service.cameras.iter().map(camera_view).collect();
    let mut e = Exposition::default();
    type Field = fn(&CameraView) -> f64;
    let per_camera: [(&str, &str, &str, Field); 11] = [
        (
            "camera_connected",
            "gauge",
            "1 while the camera's stream is connected.",
            |v| f64::from(u8::from(v.connected)),
        ),
        (
            "ingest_bytes_total",
            "counter",
            "Media bytes received from the camera.",
            |v| v.bytes as f64,
        ),
        (
            "ingest_frames_total",
            "counter",
            "Frames received from the camera.",
            |v| v.frames as f64,
        ),
        (
            "dropped_frames_total",
            "counter",
            "Frames dropped by timestamp hygiene (no timestamp, before the first keyframe, out of order).",
            |v| v.dropped_frames as f64,
        ),
        (
            "lost_packets_total",
            "counter",
            "RTP packets the camera sent that never arrived (sequence number gaps).",
            |v| v.lost_packets as f64,
        ),
        (
            "reconnects_total",
            "counter",
            "Connections to the camera after the first.",
            |v| v.reconnects as f64,
        ),
        (
            "ring_seconds",
            "gauge",
            "Seconds of media held in the pre-roll ring.",
            |v| v.ring_seconds,
        ),
        (
            "ring_bytes",
            "gauge",
            "Bytes of media held in the pre-roll ring.",
            |v| v.ring_bytes as f64,
        ),
        (
            "ring_segments",
            "gauge",
            "Segments held in the pre-roll ring.",
            |v| v.ring_segments as f64,
        ),
        (
            "ring_limit_seconds",
            "gauge",
            "Configured pre-roll seconds of the ring.",
            |v| v.ring_limit_seconds,
        ),
        (
            "ring_limit_bytes",
            "gauge",
            "Configured byte cap of the ring.",
            |v| v.ring_limit_bytes as f64,
        ),
    ];
    for (name, kind, help, field) in per_camera {
        e.family(name, kind, help);
        for v in views.iter().filter(|v| v.enabled) {
            e.sample(name, &label("camera", &v.name), field(v));
        }
    }
    e.family("clips", "gauge", "Clips known to the service, by state.");
    for (state, n) in service.clips.counts() {
        e.sample("clips", &label("state", state.name()), n as f64);
    }
    e.family("clips_total", "counter", "Clips that ended, by outcome.");
    let m = &service.metrics;
    e.sample(
        "clips_total",
        &label("state", "done"),
        m.clips_done.load(Ordering::Relaxed) as f64,
    );
    e.sample(
        "clips_total",
        &label("state", "failed"),
        m.clips_failed.load(Ordering::Relaxed) as f64,
    );
    e.single(
        "clips_recovered_total",
        "counter",
        "Interrupted clips salvaged and finalized at start.",
        m.clips_recovered.load(Ordering::Relaxed) as f64,
    );
    let r = &m.retention;
    let clip_reasons: Vec<&str> = super::Reason::ALL.iter().map(|r| r.name()).collect();
    let continuous_reasons = ["continuous_max_age", "continuous_max_bytes"];
    let by_reason: [(&str, &str, &[&str], &[std::sync::atomic::AtomicU64]); 4] = [
        (
            "retention_deleted_total",
            "Clips deleted, by reason (a retention limit, or api for DELETE /api/clips/{id}).",
            &clip_reasons,
            &r.deleted,
        ),
        (
            "retention_deleted_bytes_total",
            "Bytes of clips deleted by retention, by reason.",
            &clip_reasons,
            &r.deleted_bytes,
        ),
        (
            "retention_continuous_deleted_total",
            "Continuous recordings deleted by retention, by reason.",
            &continuous_reasons,
            &r.continuous_deleted,
        ),
        (
            "retention_continuous_deleted_bytes_total",
            "Bytes of continuous recordings deleted by retention, by reason.",
            &continuous_reasons,
            &r.continuous_deleted_bytes,
        ),
    ];
    for (name, help, reasons, counts) in by_reason {
        e.family(name, "counter", help);
        for (reason, n) in reasons.iter().zip(counts) {
            e.sample(
                name,
                &label("reason", reason),
                n.load(Ordering::Relaxed) as f64,
            );
        }
        if name == "retention_deleted_total" {
            e.sample(
                name,
                &label("reason", "api"),
                r.deleted_by_api.load(Ordering::Relaxed) as f64,
            );
        }
    }
    let retention_singles: [(&str, &str, &str, &std::sync::atomic::AtomicU64); 4] = [
        (
            "retention_passes_total",
            "counter",
            "Retention passes over the recordings directory.",
            &r.passes,
        ),
        (
            "retention_failures_total",
            "counter",
            "Clip files retention could not delete (tried again next pass).",
            &r.failures,
        ),
        (
            "retention_clip_files",
            "gauge",
            "Clip files in the recordings directory after the last pass.",
            &r.files,
        ),
        (
            "retention_clip_bytes",
            "gauge",
            "Bytes of those clip files.",
            &r.bytes,
        ),
    ];
    for (name, kind, help, n) in retention_singles {
        e.single(name, kind, help, n.load(Ordering::Relaxed) as f64);
    }
    e.histogram(
        "retention_pass_seconds",
        "Time a retention pass takes (walk, decide, delete).",
        &r.last_pass,
    );
    e.family("events_total", "counter", "Events published, by kind.");
    for (kind, n) in EventKind::ALL.iter().zip(&m.events) {
        e.sample(
            "events_total",
            &label("kind", kind.name()),
            n.load(Ordering::Relaxed) as f64,
        );
    }
    e.family(
        "events_lost_total",
        "counter",
        "Events a consumer missed because it fell behind by more than the events kept.",
    );
    for (consumer, n) in service.events.lost() {
        e.sample("events_lost_total", &label("consumer", consumer), n as f64);
    }
    type HookField = fn(&super::webhooks::WebhookStats) -> &std::sync::atomic::AtomicU64;
    let per_webhook: [(&str, &str, &str, HookField); 4] = [
        (
            "webhook_delivered_total",
            "counter",
            "Events a webhook's endpoint accepted (2xx).",
            |w| &w.delivered,
        ),
        (
            "webhook_failed_attempts_total",
            "counter",
            "Delivery attempts that failed (no answer, or not 2xx); each is retried.",
            |w| &w.failed_attempts,
        ),
        (
            "webhook_given_up_total",
            "counter",
            "Events given up after retry_for, or past the queue's limit.",
            |w| &w.given_up,
        ),
        (
            "webhook_pending",
            "gauge",
            "Events waiting for delivery (kept on disk).",
            |w| &w.pending,
        ),
    ];
    for (name, kind, help, field) in per_webhook {
        e.family(name, kind, help);
        for w in &service.webhooks {
            e.sample(
                name,
                &label("webhook", &w.name),
                field(w).load(Ordering::Relaxed) as f64,
            );
        }
    }
    if let Some(m) = service.mqtt_status() {
        let broker = label("broker", &m.broker);
        for (name, kind, help, value) in [
            (
                "mqtt_connected",
                "gauge",
                "1 while connected to the MQTT broker.",
                f64::from(u8::from(m.connected)),
            ),
            (
                "mqtt_connects_total",
                "counter",
                "Connections made to the broker.",
                m.connects as f64,
            ),
            (
                "mqtt_published_total",
                "counter",
                "Messages the broker acknowledged.",
                m.published as f64,
            ),
            (
                "mqtt_waiting",
                "gauge",
                "Messages waiting for the broker (queued or unacknowledged).",
                m.waiting as f64,
            ),
            (
                "mqtt_dropped_total",
                "counter",
                "Messages dropped because more than 10,000 waited.",
                m.dropped as f64,
            ),
            (
                "mqtt_commands_total",
                "counter",
                "Triggers and clip commands received.",
                m.commands as f64,
            ),
        ] {
            e.labelled(name, kind, help, &broker, value);
        }
    }
    if let Some(r) = service.remote.as_ref().map(|r| r.status()) {
        let bucket = label("bucket", &r.url);
        for (name, kind, help, value) in [
            (
                "remote_pending",
                "gauge",
                "Uploads and deletions waiting for the bucket (kept on disk).",
                r.pending as f64,
            ),
            (
                "remote_uploaded_total",
                "counter",
                "Clips and continuous files copied to the bucket and verified.",
                r.uploaded as f64,
            ),
            (
                "remote_uploaded_bytes_total",
                "counter",
                "Bytes of the verified copies.",
                r.uploaded_bytes as f64,
            ),
            (
                "remote_parts_total",
                "counter",
                "Pieces of clips in progress put in the bucket.",
                r.parts as f64,
            ),
            (
                "remote_failures_total",
                "counter",
                "Requests to the bucket that failed; each is retried.",
                r.failures as f64,
            ),
        ] {
            e.labelled(name, kind, help, &bucket, value);
        }
    }
    e.histogram(
        "finalize_seconds",
        "From the end of recording to the clip being durable under its name.",
        &m.finalize,
    );
    e.histogram(
        "fsync_seconds",
        "Time of the fsync that makes a finished clip durable.",
        &m.fsync,
    );
    e.family(
        "disk_free_bytes",
        "gauge",
        "Free space for clips in each allowed directory.",
    );
    for dir in service.dirs.all() {
        if let Some(free) = disk_free(dir) {
            e.sample(
                "disk_free_bytes",
                &label("dir", &dir.display().to_string()),
                free as f64,
            );
        }
    }
    e.finish()
}
