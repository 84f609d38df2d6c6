//! A `.partial` whose progressive finish was cut short (see `Recording::finish`): its
//! progressive `moov` was appended and made durable, and hiding the fragmented header and
//! the `moof`s (each turned into a `free` box) had begun when the recorder died.
//!
//! Such a file is recognized by its layout: after the `ftyp`, the first box is `free` (the
//! hidden header) and the file ends with a `moov`, every box in between being a `free`, a
//! `moof` or an `mdat`. The `moov` is checked to describe only media before it; completing
//! the finish then hides the `moof`s still showing, and the clip gets its name.

use std::fs::File;
use std::io;
use std::time::Duration;

use bytes::Bytes;

use crate::mp4::kinds::{FREE, MDAT, MOOF, MOOV, MVHD, TRAK};
use crate::mp4::samples::SampleTable;
use crate::mp4::{BoxRef, Boxes, InitSegment, Mp4Error};

use super::recover::{MAX_BOX, Probe, probe, read_at};

/// What completing an interrupted progressive finish does.
#[derive(Debug)]
pub(crate) struct Finishing {
    /// The `moof`s still to hide.
    pub moofs: Vec<u64>,
    /// Fragments the clip was written as (`moof`s and the `free` boxes that were `moof`s,
    /// counted as the `mdat`s they precede).
    pub fragments: usize,
    /// What the `moov` says the clip presents.
    pub duration: Duration,
}

/// `Ok(None)` when the file is not in this state (its header is still a `moov`, or the box
/// after the `ftyp` is not a `free` box). An error when it starts like one but is not: a
/// box cut short, one that does not belong, or a `moov` that does not describe the media.
pub(crate) fn read(
    file: &File,
    ftyp_len: u64,
    len: u64,
) -> io::Result<Result<Option<Finishing>, Mp4Error>> {
    let first = match probe(file, ftyp_len, len)? {
        Probe::Box(h, _) if h.kind == FREE => h,
        _ => return Ok(Ok(None)),
    };
    let mut pos = first.offset;
    let mut moofs = Vec::new();
    let mut fragments = 0;
    let mut moov = None;
    while pos < len {
        let (h, size) = match probe(file, pos, len)? {
            Probe::Box(h, size) => (h, size),
            Probe::Cut(h, size) => {
                return Ok(Err(Mp4Error::new(
                    h.kind,
                    pos,
                    format!("claims {size} bytes, more than the file holds"),
                )));
            }
            Probe::Damaged(d) => return Ok(Err(Mp4Error::new(FREE, pos, d.problem))),
        };
        match h.kind {
            MOOF => moofs.push(pos),
            MDAT => fragments += 1,
            FREE => {}
            MOOV if pos + size == len => moov = Some((pos, size)),
            other => {
                return Ok(Err(Mp4Error::new(
                    other,
                    pos,
                    "a box a clip being finished never holds",
                )));
            }
        }
        pos += size;
    }
    let Some((at, size)) = moov else {
        return Ok(Err(Mp4Error::new(
            FREE,
            ftyp_len,
            "the header is hidden but the file does not end with the moov that replaces it",
        )));
    };
    if size > MAX_BOX {
        return Ok(Err(Mp4Error::new(
            MOOV,
            at,
            format!("{size} bytes is far more than a clip's moov takes"),
        )));
    }
    let raw = Bytes::from(read_at(file, at, size)?);
    Ok(check_moov(raw, at).map(|duration| {
        Some(Finishing {
            moofs,
            fragments,
            duration,
        })
    }))
}

/// Checks that the `moov` at `at` describes a video track and only media before it; returns
/// the movie's duration.
fn check_moov(raw: Bytes, at: u64) -> Result<Duration, Mp4Error> {
    let init = InitSegment::parse(raw.clone(), at)?;
    if init.video().is_none() {
        return Err(Mp4Error::new(MOOV, at, "no video track"));
    }
    let moov: BoxRef<'_> = Boxes::new(&raw, at)
        .next()
        .ok_or_else(|| Mp4Error::new(MOOV, at, "empty"))??;
    for trak in moov.children() {
        let trak = trak?;
        if trak.kind != TRAK {
            continue;
        }
        let table = SampleTable::parse(trak)?;
        if table.data_end() > at {
            return Err(trak.error(format!(
                "its samples reach byte {}, past the moov at byte {at}",
                table.data_end()
            )));
        }
    }
    let mut f = moov.child(MVHD)?.fields();
    let (version, _) = f.version_flags()?;
    f.u32_or_u64(version)?;
    f.u32_or_u64(version)?;
    let timescale = f.u32()?;
    let duration = f.u32_or_u64(version)?;
    Ok(Duration::from_secs_f64(
        duration as f64 / f64::from(timescale.max(1)),
    ))
}
