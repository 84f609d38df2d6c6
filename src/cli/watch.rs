use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use crate::camera::{Camera, CameraOptions, IngestRuntime, TICK_TCP, TICK_UDP};
use crate::ring::RingLimits;
use crate::source::{SourceSpec, Transport};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Sources to ingest, each `demo`, an `rtsp://` URL or a file, optionally named `NAME=SOURCE`.
    #[arg(required = true)]
    sources: Vec<String>,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds of pre-roll each ring keeps.
    #[arg(long, default_value_t = 10.0)]
    ring_seconds: f64,
    /// Most megabytes each ring holds.
    #[arg(long, default_value_t = 64)]
    ring_mb: u64,
    /// RTP transport for RTSP sources.
    #[arg(long, default_value = "tcp")]
    transport: Transport,
    /// Seconds between status lines (0: only the final summary).
    #[arg(long, default_value_t = 5.0)]
    every: f64,
}

/// Ingests sources into their rings without recording, reporting what each camera does.
pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    if !(args.ring_seconds.is_finite() && args.ring_seconds > 0.0) {
        bail!("--ring-seconds must be above 0");
    }
    let tick = match args.transport {
        Transport::Tcp => TICK_TCP,
        Transport::Udp => TICK_UDP,
    };
    let ingest = IngestRuntime::start(tick)?;
    let cameras: Vec<Camera> = args
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (name, source) = match s.split_once('=') {
                Some((n, src)) if !n.contains('/') && !n.contains(':') => (n.to_owned(), src),
                _ => (format!("cam{}", i + 1), s.as_str()),
            };
            let mut o = CameraOptions::new(&name, SourceSpec::parse(source));
            o.rtsp.transport = args.transport;
            o.ring = RingLimits {
                seconds: Duration::from_secs_f64(args.ring_seconds),
                bytes: args.ring_mb << 20,
            };
            Camera::spawn_on(&ingest, o)
        })
        .collect();
    let started = Instant::now();
    let end = args
        .seconds
        .map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    let every = Duration::from_secs_f64(args.every.max(0.0));
    let mut next_report = started + every;
    let ctrl_c = crate::signals::stop_requested();
    tokio::pin!(ctrl_c);
    loop {
        let mut wake = end.unwrap_or(started + Duration::from_secs(86_400 * 365));
        if !every.is_zero() {
            wake = wake.min(next_report);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = &mut ctrl_c => break,
        }
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        if !every.is_zero() && Instant::now() >= next_report {
            next_report += every;
            for c in &cameras {
                eprintln!("{}", status_line(c, started.elapsed()));
            }
        }
    }
    for c in &cameras {
        println!("{}", status_line(c, started.elapsed()));
    }
    // Memory against the media it buffers, taken at one instant (for scripts/bench-ingest.sh).
    let buffered: u64 = cameras
        .iter()
        .map(|c| c.ring().bytes() + c.status().pending_bytes)
        .sum();
    let (rss, peak) = own_memory();
    println!(
        "process: rss {} (peak {}); media buffered {} (rings and parts in progress); rss_bytes={} buffered_bytes={}",
        super::human_bytes(rss),
        super::human_bytes(peak),
        super::human_bytes(buffered),
        rss,
        buffered
    );
    Ok(())
}

/// (VmRSS, VmHWM) of this process in bytes, from /proc (0 where unavailable).
fn own_memory() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn status_line(c: &Camera, elapsed: Duration) -> String {
    let st = c.status();
    let (ring_secs, ring_bytes, segments) = {
        let r = c.ring();
        (r.duration().as_secs_f64(), r.bytes(), r.len())
    };
    let video = st
        .params
        .iter()
        .find(|p| p.kind == crate::mp4::TrackKind::Video)
        .map(|p| format!("{} {}x{}", p.codec, p.width, p.height))
        .unwrap_or_else(|| "no video yet".into());
    let kept = st
        .params
        .iter()
        .find(|p| p.kind == crate::mp4::TrackKind::Audio)
        .map(|p| p.codec.to_string());
    // The codec kept, and what the camera sends when that differs (G.711 kept as FLAC) or
    // when it is not kept at all.
    let audio = match (kept, &st.source_audio) {
        (Some(k), Some(src)) if !src.starts_with(&k) => format!("+{k} (from {src})"),
        (Some(k), _) => format!("+{k}"),
        (None, Some(src)) if !st.params.is_empty() => format!(" ({src} audio not kept)"),
        (None, _) => String::new(),
    };
    format!(
        "{}: {} {video}{audio}, {} frames, {:.2} Mb/s, ring {:.1} s / {} in {} parts, {} reconnects, {} lost packets, {} dropped{}",
        c.name(),
        if st.connected {
            "connected"
        } else if st.ended {
            "ended"
        } else {
            "down"
        },
        st.frames,
        st.bytes as f64 * 8.0 / elapsed.as_secs_f64().max(1e-3) / 1e6,
        ring_secs,
        super::human_bytes(ring_bytes),
        segments,
        st.reconnects,
        st.lost_packets,
        st.dropped_frames,
        st.last_error
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default()
    )
}
