//! Parameter sets (SPS/PPS, and VPS for H.265) out of `avcC`/`hvcC`, laid out as in-band NAL
//! units, for players that ignore a fragment's `sample_description_index`.

use bytes::Bytes;

use super::FourCc;
use super::error::Result;
use super::init::Codec;
use super::kinds::{AVC1, AVC3, HEV1, HVC1};
use super::reader::{BoxRef, Boxes};

const AVCC: FourCc = FourCc(*b"avcC");
const HVCC: FourCc = FourCc(*b"hvcC");
/// Bytes of VisualSampleEntry fields before its child boxes.
const VISUAL_ENTRY_FIELDS: usize = 78;

/// The entry's parameter sets as length-prefixed NAL units (the sample layout), or `None` for
/// codecs that have none to carry.
pub fn inband_parameter_sets(entry: &Bytes, codec: Codec) -> Result<Option<Bytes>> {
    let Some(cfg) = decoder_config(entry, codec)? else {
        return Ok(None);
    };
    let config = cfg.kind;
    let mut f = cfg.fields();
    let mut nals: Vec<&[u8]> = Vec::new();
    let length_size;
    if config == AVCC {
        f.skip(4)?;
        length_size = usize::from(f.u8()? & 3) + 1;
        for mask in [0x1f, 0xff] {
            // SPS count (low 5 bits), then PPS count.
            let n = f.u8()? & mask;
            for _ in 0..n {
                let len = usize::from(f.u16()?);
                nals.push(f.bytes(len)?);
            }
        }
    } else {
        f.skip(21)?;
        length_size = usize::from(f.u8()? & 3) + 1;
        let arrays = f.u8()?;
        for _ in 0..arrays {
            f.u8()?; // completeness + NAL type
            let n = f.u16()?;
            for _ in 0..n {
                let len = usize::from(f.u16()?);
                nals.push(f.bytes(len)?);
            }
        }
    }
    if length_size == 3 {
        return Err(cfg.error("NAL length size 3 is not allowed"));
    }
    if nals.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for nal in nals {
        let len = (nal.len() as u32).to_be_bytes();
        out.extend_from_slice(&len[4 - length_size..]);
        out.extend_from_slice(nal);
    }
    Ok(Some(Bytes::from(out)))
}

/// The `avcC` or `hvcC` box of an H.264 or H.265 sample entry; `None` for other codecs or an
/// entry without one.
pub(crate) fn decoder_config(entry: &Bytes, codec: Codec) -> Result<Option<BoxRef<'_>>> {
    let Some(b) = Boxes::new(entry, 0).next() else {
        return Ok(None);
    };
    let b = b?;
    let config = match (codec, b.kind) {
        (Codec::H264, AVC1 | AVC3) => AVCC,
        (Codec::H265, HVC1 | HEV1) => HVCC,
        _ => return Ok(None),
    };
    b.children_after(VISUAL_ENTRY_FIELDS)?
        .find_map(|c| match c {
            Ok(c) if c.kind == config => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .transpose()
}
