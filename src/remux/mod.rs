//! `preroll remux`: fMP4 segments on disk (HLS directories or playlists, fragmented MP4
//! files) into one clip, through the same [`Recording`] the live path uses.

mod input;
pub mod playlist;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::recorder::{ClipOptions, ClipSummary, RecordError, Recording, SegmentOutcome};
use crate::segment::Segment;

pub use input::{BoxFile, InputError, StreamPlan, natural_cmp, plan};

#[derive(Debug, Clone)]
pub struct RemuxOptions {
    /// Each input is its own stream (`stream_id`): timestamps restart between them.
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub clip: ClipOptions,
}

#[derive(Debug, Clone)]
pub struct RemuxReport {
    pub clip: ClipSummary,
    /// Media bytes read from the inputs.
    pub input_bytes: u64,
    pub elapsed: Duration,
    /// Inputs or segments that could not be used, each with its reason.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// Remuxes `opts.inputs` into `opts.output`. `progress(done, total)` is called with media
/// bytes after every segment.
pub fn remux(
    opts: &RemuxOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RemuxReport, RemuxError> {
    let started = Instant::now();
    // Resolve every input before touching the output, so a typo costs nothing.
    let plans = opts
        .inputs
        .iter()
        .map(|p| plan(p))
        .collect::<Result<Vec<_>, _>>()?;
    let total: u64 = plans.iter().map(StreamPlan::media_bytes).sum();
    let mut recording = Recording::create(&opts.output, opts.clip.clone())?;
    let mut skipped = Vec::new();
    let mut done = 0u64;
    let mut sequence = 0u64;
    let mut stream_id = 0u64;

    for plan in &plans {
        for part in &plan.parts {
            if part.new_stream {
                stream_id += 1;
            }
            let init = match BoxFile::open(&part.init).and_then(|mut f| f.read_fragmented_init()) {
                Ok(i) => Arc::new(i),
                Err(e) => {
                    tracing::warn!("skipping {} segment(s): {e}", part.media.len());
                    skipped.push(e.to_string());
                    continue;
                }
            };
            for resource in &part.media {
                let mut file = match BoxFile::open(resource) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!("skipping: {e}");
                        skipped.push(e.to_string());
                        continue;
                    }
                };
                let start = file.position();
                // A whole fragmented file becomes one segment per fragment, which keeps memory
                // flat however long it is; an .m4s file or byte range is one segment.
                let whole_file = *resource == part.init;
                if whole_file && let Err(e) = file.skip_init() {
                    tracing::warn!("skipping: {e}");
                    skipped.push(e.to_string());
                    continue;
                }
                loop {
                    let (fragments, at_end) =
                        read_batch(&mut file, &init, whole_file, &mut skipped);
                    if !fragments.is_empty() {
                        sequence += 1;
                        let segment = Segment::new(sequence, stream_id, init.clone(), fragments);
                        match recording.write_segment(&segment) {
                            Ok(SegmentOutcome::Written { .. }) => {}
                            Ok(other) => tracing::debug!(?other, "segment {sequence} not written"),
                            Err(e) if !e.is_fatal() => {
                                tracing::warn!("{}: {e}", resource.path.display());
                                skipped.push(format!("{}: {e}", resource.path.display()));
                            }
                            Err(e) => return Err(e.into()),
                        }
                        progress(done + file.position() - start, total);
                    }
                    if at_end {
                        break;
                    }
                }
                done += file.position() - start;
                progress(done, total);
            }
        }
    }
    let clip = recording.finish()?;
    Ok(RemuxReport {
        clip,
        input_bytes: done,
        elapsed: started.elapsed(),
        skipped,
    })
}

/// Reads the next segment's fragments: one fragment of a whole file, or all of an `.m4s`.
/// Damage ends the batch; the fragments before it are kept. Returns the fragments and whether
/// the input is exhausted.
fn read_batch(
    file: &mut BoxFile,
    init: &crate::mp4::InitSegment,
    one: bool,
    skipped: &mut Vec<String>,
) -> (Vec<crate::mp4::Fragment>, bool) {
    let mut fragments = Vec::new();
    loop {
        match file.next_fragment(init) {
            Ok(Some(f)) => {
                fragments.push(f);
                if one {
                    return (fragments, false);
                }
            }
            Ok(None) => return (fragments, true),
            Err(e) => {
                tracing::warn!("{e}; keeping the fragments before it");
                skipped.push(e.to_string());
                return (fragments, true);
            }
        }
    }
}
