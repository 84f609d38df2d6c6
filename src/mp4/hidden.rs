//! A finished clip read back as it was written.
//!
//! A clip is recorded as a fragmented MP4 and finished as a progressive one in place: a
//! `moov` describing every sample is appended, and the fragmented header and the `moof`s are
//! hidden as `free` boxes of the same size (see `Recording::finish`). Their bytes are all still
//! there, which lets tools and tests read the fragments as they were written and check the
//! progressive tables against them.

use bytes::Bytes;

use super::kinds::{FREE, MFHD, MOOF, MOOV, MVHD};
use super::{Boxes, Result};

/// A finished progressive clip split into what was written and what finishing added.
#[derive(Debug, Clone)]
pub struct AsWritten {
    /// The fragmented MP4 as recorded: header and `moof`s shown again, the progressive
    /// `moov` cut off.
    pub fragmented: Bytes,
    /// Where the progressive `moov` starts, and its bytes.
    pub moov_at: u64,
    pub moov: Bytes,
}

/// Splits a clip finished as a progressive MP4; `Ok(None)` for any other file (a clip
/// finished fragmented, or not a clip). Errors are top-level boxes that do not parse.
pub fn as_written(file: &Bytes) -> Result<Option<AsWritten>> {
    let mut boxes = Vec::new();
    for b in Boxes::new(file, 0) {
        let b = b?;
        let first_child = b.body.get(4..8).map(|k| [k[0], k[1], k[2], k[3]]);
        boxes.push((b.kind, b.offset, b.size(), first_child));
    }
    let Some(&(MOOV, moov_at, moov_len, _)) = boxes.last() else {
        return Ok(None);
    };
    if boxes.get(1).is_none_or(|b| b.0 != FREE) {
        return Ok(None);
    }
    let (Ok(start), Ok(len)) = (usize::try_from(moov_at), usize::try_from(moov_len)) else {
        return Ok(None);
    };
    let mut fragmented = file[..start].to_vec();
    for &(kind, at, _, child) in &boxes {
        let shown = match child.map(super::FourCc) {
            Some(MVHD) => MOOV,
            Some(MFHD) => MOOF,
            _ => continue,
        };
        if kind == FREE
            && let Some(t) = usize::try_from(at)
                .ok()
                .and_then(|a| fragmented.get_mut(a + 4..a + 8))
        {
            t.copy_from_slice(&shown.0);
        }
    }
    Ok(Some(AsWritten {
        fragmented: Bytes::from(fragmented),
        moov_at,
        moov: file.slice(start..start + len),
    }))
}
