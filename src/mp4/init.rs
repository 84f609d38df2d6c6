//! Parsing an initialization segment (`ftyp` + `moov`) into the track descriptions a clip is
//! built from.

use bytes::Bytes;

use super::error::{Mp4Error, Result};
use super::kinds::*;
use super::reader::{BoxRef, Boxes};
use super::{FourCc, Matrix};

/// What an init segment says about one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub track_id: u32,
    pub kind: TrackKind,
    /// Ticks per second of the track's media time.
    pub timescale: u32,
    /// ISO-639-2/T language packed as in `mdhd` (three 5-bit letters); `und` when absent.
    pub language: u16,
    /// Display size in pixels (video); 0 for audio.
    pub width: u32,
    pub height: u32,
    /// The `tkhd` transformation matrix.
    pub matrix: Matrix,
    /// `stsd` entries in order; a fragment's `sample_description_index` is 1-based into this.
    pub sample_entries: Vec<SampleEntry>,
    /// The track's edit list reduced to the one shift it applies to the whole track.
    pub edit: EditShift,
    /// `trex` defaults, used by fragments that do not carry their own.
    pub defaults: TrackDefaults,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    /// Any other handler (subtitles, metadata, hint…): carried through parsing, never written.
    Other(FourCc),
}

/// A sample description (`stsd` entry): the codec configuration a decoder needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleEntry {
    /// The entry's box type (`avc1`, `hvc1`, `mp4a`, …).
    pub format: FourCc,
    /// The whole entry box, header included, exactly as it appeared.
    pub bytes: Bytes,
    pub codec: Codec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    /// MPEG-4 AAC (an `mp4a` entry whose decoder config names an AAC object type).
    Aac,
    /// FLAC (an `fLaC` entry): what G.711 and L16 camera audio is stored as, losslessly.
    Flac,
    /// Opus (an `Opus` entry).
    Opus,
    /// Anything else, by sample entry type (for `mp4a`: not AAC, e.g. MP3).
    Other(FourCc),
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Codec::H264 => f.write_str("H.264"),
            Codec::H265 => f.write_str("H.265"),
            Codec::Aac => f.write_str("AAC"),
            Codec::Flac => f.write_str("FLAC"),
            Codec::Opus => f.write_str("Opus"),
            Codec::Other(c) => write!(f, "{c}"),
        }
    }
}

/// The effect of a track's edit list, reduced to "presentation = media time − media_time +
/// delay". Leading empty edits make up `delay` (in movie timescale ticks); `media_time` is
/// where the first non-empty edit starts. Later edits (rare in fragmented files) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EditShift {
    pub delay: u64,
    pub media_time: i64,
}

/// `trex` defaults for a track's fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackDefaults {
    pub sample_description_index: u32,
    pub sample_duration: u32,
    pub sample_size: u32,
    pub sample_flags: u32,
}

impl Default for TrackDefaults {
    fn default() -> Self {
        Self {
            sample_description_index: 1,
            sample_duration: 0,
            sample_size: 0,
            sample_flags: 0,
        }
    }
}

/// A parsed initialization segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSegment {
    /// The ftyp + moov bytes as received.
    pub raw: Bytes,
    pub movie_timescale: u32,
    pub tracks: Vec<TrackInfo>,
}

impl InitSegment {
    /// Parses `ftyp`/`moov` (any other top-level boxes, e.g. `free`, `udta`, are skipped).
    /// `offset` is where `raw` starts in its file, for error messages.
    pub fn parse(raw: Bytes, offset: u64) -> Result<InitSegment> {
        let mut moov = None;
        for b in Boxes::new(&raw, offset) {
            let b = b?;
            if b.kind == MOOV {
                moov = Some(b);
                break;
            }
            if b.kind == MOOF || b.kind == MDAT {
                return Err(b.error("media data before any moov box: not an init segment"));
            }
        }
        let moov =
            moov.ok_or_else(|| Mp4Error::new(MOOV, offset, "no moov box: not an init segment"))?;
        let (movie_timescale, _) = parse_mvhd(moov.child(MVHD)?)?;
        let mut defaults = Vec::new();
        if let Some(mvex) = moov.find(MVEX)? {
            for b in mvex.children() {
                let b = b?;
                if b.kind == TREX {
                    defaults.push(parse_trex(b)?);
                }
            }
        }
        let mut tracks = Vec::new();
        for b in moov.children() {
            let b = b?;
            if b.kind == TRAK {
                let mut t = parse_trak(b, &raw, offset)?;
                if let Some((_, d)) = defaults.iter().find(|(id, _)| *id == t.track_id) {
                    t.defaults = *d;
                }
                if tracks.iter().any(|o: &TrackInfo| o.track_id == t.track_id) {
                    return Err(b.error(format!("track id {} appears twice", t.track_id)));
                }
                tracks.push(t);
            }
        }
        Ok(InitSegment {
            raw,
            movie_timescale,
            tracks,
        })
    }

    pub fn track(&self, track_id: u32) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }

    /// The first video track.
    pub fn video(&self) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Video)
    }

    /// The first audio track.
    pub fn audio(&self) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Audio)
    }
}

/// Returns (timescale, duration).
fn parse_mvhd(b: BoxRef<'_>) -> Result<(u32, u64)> {
    let mut f = b.fields();
    let (version, _) = f.version_flags()?;
    f.u32_or_u64(version)?; // creation
    f.u32_or_u64(version)?; // modification
    let timescale = f.u32()?;
    let duration = f.u32_or_u64(version)?;
    if timescale == 0 {
        return Err(b.error("movie timescale is 0"));
    }
    Ok((timescale, duration))
}

fn parse_trex(b: BoxRef<'_>) -> Result<(u32, TrackDefaults)> {
    let mut f = b.fields();
    f.version_flags()?;
    let track_id = f.u32()?;
    Ok((
        track_id,
        TrackDefaults {
            sample_description_index: f.u32()?,
            sample_duration: f.u32()?,
            sample_size: f.u32()?,
            sample_flags: f.u32()?,
        },
    ))
}

fn parse_trak(trak: BoxRef<'_>, raw: &Bytes, base: u64) -> Result<TrackInfo> {
    let tkhd = trak.child(TKHD)?;
    let mut f = tkhd.fields();
    let (version, _) = f.version_flags()?;
    f.u32_or_u64(version)?; // creation
    f.u32_or_u64(version)?; // modification
    let track_id = f.u32()?;
    if track_id == 0 {
        return Err(tkhd.error("track id 0 is reserved"));
    }
    f.skip(4)?; // reserved
    f.u32_or_u64(version)?; // duration
    f.skip(8 + 2 + 2 + 2 + 2)?; // reserved, layer, alternate_group, volume, reserved
    let mut m = [0i32; 9];
    for v in &mut m {
        *v = f.i32()?;
    }
    let tkhd_width = f.u32()? >> 16;
    let tkhd_height = f.u32()? >> 16;

    let mdia = trak.child(MDIA)?;
    let mdhd = mdia.child(MDHD)?;
    let mut f = mdhd.fields();
    let (version, _) = f.version_flags()?;
    f.u32_or_u64(version)?;
    f.u32_or_u64(version)?;
    let timescale = f.u32()?;
    if timescale == 0 {
        return Err(mdhd.error(format!("track {track_id} has timescale 0")));
    }
    f.u32_or_u64(version)?; // duration
    let language = f.u16()? & 0x7fff;

    let hdlr = mdia.child(HDLR)?;
    let mut f = hdlr.fields();
    f.version_flags()?;
    f.skip(4)?; // pre_defined
    let handler = f.fourcc()?;
    let kind = match handler {
        VIDE => TrackKind::Video,
        SOUN => TrackKind::Audio,
        other => TrackKind::Other(other),
    };

    let stsd = mdia.child(MINF)?.child(STBL)?.child(STSD)?;
    let mut f = stsd.fields();
    f.version_flags()?;
    let count = f.u32()?;
    let mut sample_entries = Vec::new();
    for b in stsd.children_after(8)? {
        let b = b?;
        let codec = detect_codec(b)?;
        sample_entries.push(SampleEntry {
            format: b.kind,
            bytes: with_explicit_size(slice_of(raw, base, b)),
            codec,
        });
    }
    if sample_entries.len() as u64 != u64::from(count) {
        return Err(stsd.error(format!(
            "says {count} sample entries but holds {}",
            sample_entries.len()
        )));
    }
    if sample_entries.is_empty() {
        return Err(stsd.error(format!("track {track_id} has no sample entry")));
    }

    let (mut width, mut height) = (tkhd_width, tkhd_height);
    if kind == TrackKind::Video && (width == 0 || height == 0) {
        // Some muxers leave tkhd's size at 0; the visual sample entry always has it.
        if let Some((w, h)) = visual_size(&sample_entries[0])? {
            width = w;
            height = h;
        }
    }

    let edit = match trak.find(EDTS)? {
        Some(edts) => match edts.find(ELST)? {
            Some(elst) => parse_elst(elst)?,
            None => EditShift::default(),
        },
        None => EditShift::default(),
    };

    Ok(TrackInfo {
        track_id,
        kind,
        timescale,
        language,
        width,
        height,
        matrix: Matrix(m),
        sample_entries,
        edit,
        defaults: TrackDefaults::default(),
    })
}

/// The sub-slice of `raw` (which starts at absolute offset `base`) that holds box `b`, header
/// included, without copying.
fn slice_of(raw: &Bytes, base: u64, b: BoxRef<'_>) -> Bytes {
    // `b` was read out of `raw`, so its offset lies inside it.
    let start = (b.offset - base) as usize;
    raw.slice(start..start + b.size() as usize)
}

/// A box whose size field says "to the end of its parent" (0), stated with its real size:
/// copied into a clip, a sample entry may have another written after it (a codec change),
/// which it would otherwise swallow (found by the clip_writer fuzz target).
fn with_explicit_size(b: Bytes) -> Bytes {
    match u32::try_from(b.len()) {
        Ok(len) if b.len() >= 8 && b[..4] == [0, 0, 0, 0] => {
            let mut v = b.to_vec();
            v[..4].copy_from_slice(&len.to_be_bytes());
            Bytes::from(v)
        }
        _ => b,
    }
}

fn parse_elst(elst: BoxRef<'_>) -> Result<EditShift> {
    let mut f = elst.fields();
    let (version, _) = f.version_flags()?;
    let count = f.u32()?;
    let mut shift = EditShift::default();
    for _ in 0..count {
        let (duration, media_time) = if version == 1 {
            (f.u64()?, f.i64()?)
        } else {
            (u64::from(f.u32()?), i64::from(f.i32()?))
        };
        f.skip(4)?; // media_rate
        if media_time == -1 {
            shift.delay = shift.delay.saturating_add(duration);
        } else {
            if media_time < 0 {
                return Err(elst.error(format!("negative edit media time {media_time}")));
            }
            shift.media_time = media_time;
            break;
        }
    }
    Ok(shift)
}

fn detect_codec(entry: BoxRef<'_>) -> Result<Codec> {
    Ok(match entry.kind {
        AVC1 | AVC3 => Codec::H264,
        HVC1 | HEV1 => Codec::H265,
        MP4A => match mp4a_object_type(entry)? {
            // 0x40: MPEG-4 Audio; 0x66..0x68: MPEG-2 AAC profiles.
            Some(0x40 | 0x66 | 0x67 | 0x68) => Codec::Aac,
            _ => Codec::Other(MP4A),
        },
        FLAC => Codec::Flac,
        OPUS => Codec::Opus,
        other => Codec::Other(other),
    })
}

/// Width and height from a visual sample entry.
fn visual_size(entry: &SampleEntry) -> Result<Option<(u32, u32)>> {
    let Some(b) = Boxes::new(&entry.bytes, 0).next() else {
        return Ok(None);
    };
    let b = b?;
    let mut f = b.fields();
    f.skip(8 + 16)?; // SampleEntry header, pre_defined/reserved
    Ok(Some((u32::from(f.u16()?), u32::from(f.u16()?))))
}

/// The objectTypeIndication of an `mp4a` entry's `esds` decoder config, if it has one.
fn mp4a_object_type(entry: BoxRef<'_>) -> Result<Option<u8>> {
    let mut f = entry.fields();
    f.skip(8)?; // reserved + data_reference_index
    let sound_version = f.u16()?;
    // AudioSampleEntry is 28 bytes before its children; QuickTime sound versions 1 and 2
    // extend it by 16 and 36 bytes.
    let skip = match sound_version {
        0 => 28,
        1 => 44,
        2 => 64,
        v => return Err(entry.error(format!("unknown audio sample entry version {v}"))),
    };
    let Some(esds) = entry.children_after(skip)?.find_map(|b| match b {
        Ok(b) if b.kind == ESDS => Some(Ok(b)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }) else {
        return Ok(None);
    };
    let esds = esds?;
    let mut f = esds.fields();
    f.version_flags()?;
    // ES_Descriptor (tag 3) → DecoderConfigDescriptor (tag 4) → objectTypeIndication.
    if f.u8()? != 0x03 {
        return Ok(None);
    }
    descriptor_len(&mut f)?;
    f.skip(2)?; // ES_ID
    let es_flags = f.u8()?;
    if es_flags & 0x80 != 0 {
        f.skip(2)?; // dependsOn_ES_ID
    }
    if es_flags & 0x40 != 0 {
        let n = f.u8()?;
        f.skip(usize::from(n))?; // URL
    }
    if es_flags & 0x20 != 0 {
        f.skip(2)?; // OCR_ES_ID
    }
    if f.u8()? != 0x04 {
        return Ok(None);
    }
    descriptor_len(&mut f)?;
    Ok(Some(f.u8()?))
}

/// An MPEG-4 descriptor's expandable length (up to four 7-bit groups).
fn descriptor_len(f: &mut super::Fields<'_>) -> Result<u32> {
    let mut len = 0u32;
    for _ in 0..4 {
        let b = f.u8()?;
        len = (len << 7) | u32::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Ok(len);
        }
    }
    Err(f.error("descriptor length longer than four bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample entry sized "to the end of the stsd" is kept with its real size.
    #[test]
    fn a_sample_entry_sized_to_the_end_gets_its_real_size() {
        let mut avc1 = vec![0u8; 86];
        avc1[4..8].copy_from_slice(b"avc1");
        let init = crate::segmenter::build_init(&[crate::source::TrackParams {
            kind: TrackKind::Video,
            codec: Codec::H264,
            timescale: 90_000,
            sample_entry: Bytes::from(avc1),
            width: 2,
            height: 2,
        }])
        .expect("an init with a size-0 sample entry reads");
        let entry = &init.tracks[0].sample_entries[0].bytes;
        assert_eq!(entry.len(), 86);
        assert_eq!(entry[..8], [0, 0, 0, 86, b'a', b'v', b'c', b'1']);
    }
}
