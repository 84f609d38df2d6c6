use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::mp4::Orientation;
use crate::recorder::ClipOptions;
use crate::remux::{RemuxOptions, remux};

#[derive(Debug, Args)]
pub struct RemuxArgs {
    /// HLS fMP4 directories, .m3u8 playlists or fragmented MP4 files; each one is a new
    /// stream, joined after the previous one.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The clip to write (refused if it exists).
    #[arg(short, long)]
    output: PathBuf,
    /// EXIF orientation 1..8 written into the video track (default: keep the input's).
    #[arg(long)]
    orientation: Option<Orientation>,
}

pub fn run(args: RemuxArgs) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .context("progress bar template")?,
    );
    let opts = RemuxOptions {
        inputs: args.inputs,
        output: args.output,
        clip: ClipOptions {
            orientation: args.orientation,
        },
    };
    let result = remux(&opts, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = result.with_context(|| format!("remux into {}", opts.output.display()))?;
    let clip = &report.clip;
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "{}: {:.3} s, {} in {:.2} s ({:.0} MB/s); {} segments, {} discontinuities{}",
        clip.path.display(),
        clip.duration.as_secs_f64(),
        super::human_bytes(clip.bytes),
        secs,
        clip.bytes as f64 / secs / 1e6,
        clip.segments,
        clip.discontinuities.len(),
        if report.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped (see warnings)", report.skipped.len())
        }
    );
    Ok(())
}
