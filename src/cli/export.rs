//! `preroll export`: a camera's continuous recording between two times as one clip, from
//! the recordings directory (the service need not run; beside a running one it reads only
//! finished files and writes nothing but the clip).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::continuous::{DIR, Index, export};
use crate::recorder::{ClipOptions, Dir, Recording};
use crate::time::parse_rfc3339;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("place").required(true).args(["config", "recordings"])))]
pub struct ExportArgs {
    /// The service's config file (its recordings directory is read).
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// The recordings directory (instead of --config).
    #[arg(long)]
    recordings: Option<PathBuf>,
    /// The camera, by its name in the config.
    #[arg(long)]
    camera: String,
    /// Start of the range, RFC 3339 (`2026-11-30T08:15:30Z`).
    #[arg(long)]
    start: String,
    /// End of the range, RFC 3339.
    #[arg(long)]
    end: String,
    /// The clip to write (refused if it exists).
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let time = |name: &str, v: &str| {
        parse_rfc3339(v).with_context(|| {
            format!("--{name} {v:?} is not an RFC 3339 time such as 2026-11-30T08:15:30Z")
        })
    };
    let (start, end) = (time("start", &args.start)?, time("end", &args.end)?);
    let recordings = match (&args.config, &args.recordings) {
        (Some(c), _) => Config::load_for_files(c)?.storage.recordings,
        (None, Some(r)) => r.clone(),
        (None, None) => anyhow::bail!("give --config or --recordings"),
    };
    let folder = recordings.join(DIR).join(&args.camera);
    let index = open_index(&recordings, &args.camera)
        .with_context(|| format!("the continuous recording {}", folder.display()))?;
    let recording = Recording::create(&args.output, ClipOptions::default())
        .with_context(|| format!("creating {}", args.output.display()))?;
    let began = Instant::now();
    let done = export(&folder, &index.entries(), start, end, recording)
        .with_context(|| format!("export of {} into {}", args.camera, args.output.display()))?;
    let clip = &done.clip;
    println!(
        "{}: {:.3} s from {} files, {} in {:.2} s; {} discontinuities",
        clip.path.display(),
        clip.duration.as_secs_f64(),
        done.files,
        super::human_bytes(clip.bytes),
        began.elapsed().as_secs_f64(),
        clip.discontinuities.len()
    );
    for g in &done.gaps {
        println!("gap {} to {} ({:.3} s)", g.start, g.end, g.seconds);
    }
    for s in &done.skipped {
        println!("skipped {s}");
    }
    Ok(())
}

/// The camera's index, read as it is (nothing is written: the service may own it).
fn open_index(recordings: &Path, camera: &str) -> anyhow::Result<Index> {
    if camera.is_empty() || camera.contains(['/', '\\']) || camera.starts_with('.') {
        anyhow::bail!("{camera:?} is not a camera name");
    }
    let root = Dir::root(recordings)?;
    let dir = root
        .descend(&Path::new(DIR).join(camera), false)
        .context("no continuous recording of that camera (is `continuous = true` set?)")?;
    Ok(Index::read(dir)?.0)
}
