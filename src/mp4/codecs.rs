//! The RFC 6381 `codecs` parameter of a track (`avc1.64001f`, `hvc1.1.6.L93.B0`,
//! `mp4a.40.2`, `flac`, `opus`), which a browser's `MediaSource.isTypeSupported` needs before
//! it takes a stream.

use super::error::Result;
use super::init::{Codec, InitSegment, SampleEntry};
use super::params::decoder_config;

/// The codecs string of one sample entry; `None` for a codec with no string a browser knows.
pub fn rfc6381(entry: &SampleEntry) -> Result<Option<String>> {
    let tag = entry.format.to_string();
    Ok(match entry.codec {
        Codec::H264 => match decoder_config(&entry.bytes, entry.codec)? {
            Some(c) => {
                let mut f = c.fields();
                f.u8()?; // configurationVersion
                let (profile, compat, level) = (f.u8()?, f.u8()?, f.u8()?);
                Some(format!("{tag}.{profile:02x}{compat:02x}{level:02x}"))
            }
            None => None,
        },
        Codec::H265 => match decoder_config(&entry.bytes, entry.codec)? {
            Some(c) => Some(hevc(&tag, &mut c.fields())?),
            None => None,
        },
        // AAC-LC: what cameras send; HE-AAC streams carry an LC base layer, which is what
        // browsers signal them as too.
        Codec::Aac => Some("mp4a.40.2".to_owned()),
        Codec::Flac => Some("flac".to_owned()),
        Codec::Opus => Some("opus".to_owned()),
        Codec::Other(_) => None,
    })
}

/// ISO/IEC 14496-15 annex E: profile space and profile, compatibility flags with their bits
/// reversed, tier and level, then the constraint bytes up to the last non-zero one.
fn hevc(tag: &str, f: &mut super::Fields<'_>) -> Result<String> {
    f.u8()?; // configurationVersion
    let first = f.u8()?;
    let space = ["", "A", "B", "C"][usize::from(first >> 6)];
    let tier = if first & 0x20 != 0 { 'H' } else { 'L' };
    let profile = first & 0x1f;
    let compat = f.u32()?.reverse_bits();
    let constraints = f.bytes(6)?;
    let level = f.u8()?;
    let mut s = format!("{tag}.{space}{profile}.{compat:X}.{tier}{level}");
    let used = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s += &format!(".{b:X}");
    }
    Ok(s)
}

/// `video/mp4; codecs="…"` for the first sample entry of each track of an init; `None` when a
/// track's codec has no string.
pub fn mime(init: &InitSegment) -> Result<Option<String>> {
    let mut codecs = Vec::new();
    for t in &init.tracks {
        let Some(entry) = t.sample_entries.first() else {
            continue;
        };
        match rfc6381(entry)? {
            Some(c) => codecs.push(c),
            None => return Ok(None),
        }
    }
    Ok(Some(format!("video/mp4; codecs=\"{}\"", codecs.join(","))))
}
