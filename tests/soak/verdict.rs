//! Judging the clips: every finished clip must decode without a single error, pass the
//! structural checks and have strictly increasing decode times in each stream; a failed
//! clip is only acceptable when its camera truly had no media during its window.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::common::{Probe, check_structure, decode_errors};
use crate::faults::{Fault, server_out};
use crate::monitor::{Sample, frames_between};
use crate::triggers::ClipRecord;

/// What is wrong with a finished clip.
#[derive(Debug, Default)]
pub struct ClipProblems {
    pub decode: Option<String>,
    pub structure: Option<String>,
    pub non_monotonic: Option<String>,
}

pub fn check_done(path: &Path) -> ClipProblems {
    let errors = decode_errors(path);
    let decode = (!errors.trim().is_empty()).then_some(errors);
    // check_structure asserts; its panic message is the finding.
    let structure = catch_unwind(AssertUnwindSafe(|| check_structure(path)))
        .err()
        .map(|p| panic_text(p.as_ref()));
    let non_monotonic = match catch_unwind(AssertUnwindSafe(|| Probe::of(path))) {
        Ok(probe) => first_dts_step_back(&probe),
        Err(p) => Some(format!("ffprobe: {}", panic_text(p.as_ref()))),
    };
    ClipProblems {
        decode,
        structure,
        non_monotonic,
    }
}

/// The first packet whose decode time is not above the one before it in its stream.
/// Reconnects inside a clip are rebased by preroll, so even across them it must rise.
fn first_dts_step_back(probe: &Probe) -> Option<String> {
    for (i, stream) in probe.streams.iter().enumerate() {
        let packets = probe.packets_of(i);
        for (k, w) in packets.windows(2).enumerate() {
            if w[0].dts == i64::MIN || w[1].dts <= w[0].dts {
                return Some(format!(
                    "stream {i} ({}) packet {}: dts {} after {}",
                    stream.codec,
                    k + 1,
                    w[1].dts,
                    w[0].dts
                ));
            }
        }
    }
    None
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Why a failed clip is acceptable, or `Err` with why it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excuse {
    /// The server was killed or frozen during the clip's window.
    ServerDown,
    /// The server was serving, but preroll was still waiting to reconnect after a fault
    /// (its backoff) and received nothing in the window.
    Reconnecting,
}

/// Media frames in a window that a clip should have caught: two seconds of 25 fps video.
/// Fewer can arrive at the window's very edges (a stream coming back just before the
/// end, or fading out just after the start) without making a segment the clip can take.
const MEDIA_FRAMES: u64 = 50;
/// The samples come every 0.5 s and the ingest reads every 0.25 s: frames counted this
/// close to the window's edges may belong just outside it.
const EDGE: f64 = 0.75;

pub fn excuse(
    clip: &ClipRecord,
    error: &str,
    samples: &[Sample],
    faults: &[Fault],
) -> Result<Excuse, String> {
    if !error.contains("failed to capture anything") {
        return Err(format!("failed with media to record: {error}"));
    }
    let (from, to) = clip.window();
    let frames = frames_between(samples, clip.camera, from + EDGE, to - EDGE);
    if frames >= MEDIA_FRAMES {
        return Err(format!(
            "captured nothing although {frames} frames arrived in its window \
             {from:.1}..{to:.1} s: {error}"
        ));
    }
    Ok(if server_out(faults, from, to) {
        Excuse::ServerDown
    } else {
        Excuse::Reconnecting
    })
}
