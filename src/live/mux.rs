//! A ring part as the bytes a live viewer appends: one `moof`+`mdat` per fragment, exactly the
//! samples the camera sent, renumbered for this viewer.

use bytes::{Bytes, BytesMut};

use crate::mp4::moof::{TrafSpec, write_moof};
use crate::mp4::write::mdat_header;
use crate::segment::Segment;

/// Why a part could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("part {sequence}: track {track} has no decode time (tfdt)")]
    NoDecodeTime { sequence: u64, track: u32 },
    #[error("part {sequence}: {problem}")]
    Layout { sequence: u64, problem: String },
    #[error("part {sequence}: reading its media: {source}")]
    Read {
        sequence: u64,
        #[source]
        source: std::io::Error,
    },
}

/// The part's fragments, each a `moof` (numbered from `*number` on) and its `mdat`.
pub fn part_bytes(part: &Segment, number: &mut u32) -> Result<Bytes, MuxError> {
    let sequence = part.sequence;
    let mut out = BytesMut::with_capacity(part.media_bytes() as usize + 512);
    for fragment in &part.fragments {
        if fragment.sample_count() == 0 {
            continue;
        }
        let mut specs = Vec::with_capacity(fragment.tracks.len());
        for t in fragment.tracks.iter().filter(|t| t.sample_count() > 0) {
            let base_decode_time = t.base_decode_time.ok_or(MuxError::NoDecodeTime {
                sequence,
                track: t.track_id,
            })?;
            specs.push(TrafSpec {
                track_id: t.track_id,
                sample_description_index: t.sample_description_index,
                base_decode_time,
                runs: &t.runs,
            });
        }
        let payload = fragment
            .data
            .to_bytes()
            .map_err(|source| MuxError::Read { sequence, source })?;
        let mdat = mdat_header(payload.len() as u64);
        *number = number.wrapping_add(1);
        let moof =
            write_moof(*number, &specs, mdat.len() as u64).map_err(|e| MuxError::Layout {
                sequence,
                problem: e.to_string(),
            })?;
        out.extend_from_slice(&moof);
        out.extend_from_slice(&mdat);
        out.extend_from_slice(&payload);
    }
    Ok(out.freeze())
}
