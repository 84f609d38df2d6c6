use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use crate::camera::{Camera, CameraOptions, wait_for_preroll};
use crate::mp4::Orientation;
use crate::recorder::live::{ClipControl, ClipRequest, record_live};
use crate::recorder::{ClipOptions, Recording};
use crate::ring::RingLimits;
use crate::source::{SourceSpec, Transport};

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// `demo`, an `rtsp://` URL (credentials in the URL), or an MP4 (fragmented or
    /// progressive) or MPEG-TS file replayed as a camera.
    source: String,
    /// The clip to write (refused if it exists).
    #[arg(short, long)]
    output: PathBuf,
    /// Seconds to record after the trigger.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds of pre-roll before the trigger.
    #[arg(long, default_value_t = 5.0)]
    lookback: f64,
    /// EXIF orientation 1..8 written into the video track.
    #[arg(long)]
    orientation: Option<Orientation>,
    /// RTP transport for RTSP sources.
    #[arg(long, default_value = "tcp")]
    transport: Transport,
    /// Longest wait for the pre-roll to fill before triggering anyway, in seconds.
    #[arg(long, default_value_t = 60.0)]
    wait: f64,
    /// Seconds allowed for connecting (TCP, DESCRIBE, SETUP, PLAY).
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Seconds without a video frame (RTCP reports do not count) before the stream counts as stalled and is reconnected.
    #[arg(long, default_value_t = 10.0)]
    stall_timeout: f64,
}

fn seconds(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
        bail!("--{name} {v} is not a number of seconds between 0 and 86400");
    }
    Ok(Duration::from_secs_f64(v))
}

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let duration = seconds("duration", args.duration)?;
    let lookback = seconds("lookback", args.lookback)?;
    let wait = seconds("wait", args.wait)?;
    if duration.is_zero() {
        bail!("--duration must be above 0");
    }
    let source = SourceSpec::parse(&args.source);
    if let SourceSpec::File { path, .. } = &source
        && !path.is_file()
    {
        // A file that is not there will not appear while we wait for its pre-roll.
        bail!("{}: no such file", path.display());
    }
    let mut options = CameraOptions::new("record", source.clone());
    options.rtsp.transport = args.transport;
    options.rtsp.connect_timeout = seconds("connect-timeout", args.connect_timeout)?;
    options.rtsp.stall_timeout = seconds("stall-timeout", args.stall_timeout)?;
    options.give_up_when_persistent = true;
    // The ring keeps what the lookback needs, plus one GOP of slack.
    options.ring = RingLimits {
        seconds: lookback + Duration::from_secs(4),
        ..RingLimits::default()
    };
    let camera = Camera::spawn(options);

    let bar = ProgressBar::new_spinner();
    bar.set_message(format!(
        "{}: waiting for {:.1} s of pre-roll",
        source.display(),
        lookback.as_secs_f64()
    ));
    bar.enable_steady_tick(Duration::from_millis(200));
    let (control_tx, control) = watch::channel(ClipControl::default());
    // Ctrl-C, SIGTERM and SIGHUP all end the clip where it is, finished.
    tokio::spawn(async move {
        let why = crate::signals::stop_requested().await;
        tracing::info!("{why}: finishing the clip");
        control_tx.send_modify(|c| c.stop = true);
    });
    let mut interrupted = control.clone();
    let held = tokio::select! {
        held = wait_for_preroll(&camera, lookback, wait) => held,
        _ = interrupted.changed() => bail!("interrupted before recording started"),
    };
    if held.is_zero() {
        let status = camera.status();
        bar.finish_and_clear();
        if status.ended
            && let Some(error) = status.last_error
        {
            // The source gave up for good (a file that cannot be read): say why, not "waited".
            bail!("{error}");
        }
        bail!(
            "no media from {} within {:.0} s: {}",
            source.display(),
            wait.as_secs_f64(),
            status
                .last_error
                .unwrap_or_else(|| "nothing received".into())
        );
    }

    bar.set_style(ProgressStyle::with_template("{bar:40} {msg}").context("progress bar template")?);
    bar.set_length(duration.as_millis() as u64);
    bar.set_message("recording");
    let options = ClipOptions {
        orientation: args.orientation,
    };
    let trigger = std::time::Instant::now();
    let recording = Recording::create(&args.output, options)
        .with_context(|| format!("recording {}", args.output.display()))?;
    let request = ClipRequest { duration, lookback };
    let result = record_live(
        &camera,
        recording,
        trigger,
        request,
        control,
        None,
        &mut |p| {
            bar.set_position(p.after_trigger.as_millis() as u64);
            bar.set_message(format!(
                "{:.1}/{:.1} s, {}",
                p.after_trigger.as_secs_f64(),
                duration.as_secs_f64(),
                super::human_bytes(p.bytes)
            ));
        },
    )
    .await;
    bar.finish_and_clear();
    let clip = result.with_context(|| format!("recording {}", args.output.display()))?;
    let s = &clip.summary;
    println!(
        "{}: {:.3} s with {:.3} s of pre-roll, {}; {} parts, {} discontinuities{}",
        s.path.display(),
        s.duration.as_secs_f64(),
        clip.preroll.as_secs_f64(),
        super::human_bytes(s.bytes),
        s.segments,
        s.discontinuities.len(),
        clip.cut_short
            .map(|r| format!("; ended early: {r}"))
            .unwrap_or_default()
    );
    Ok(())
}
