//! Writing the clip's `ftyp` + `moov`: one function per box.

use bytes::Bytes;

use super::init::TrackKind;
use super::kinds::*;
use super::tables::TableBuilder;
use super::write::BoxBuf;
use super::{FourCc, Matrix};

/// What the `moov` of a fragmented clip says.
#[derive(Debug, Clone)]
pub struct MovieSpec {
    pub timescale: u32,
    /// In movie ticks; 0 while the clip is being written.
    pub duration: u64,
    /// Seconds since 1904-01-01 (the MP4 epoch).
    pub creation_time: u64,
    /// Writes an `mehd` with this duration (movie ticks): set once the clip is finished.
    pub fragment_duration: Option<u64>,
    pub tracks: Vec<TrackSpec>,
}

#[derive(Debug, Clone)]
pub struct TrackSpec {
    pub track_id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    pub language: u16,
    pub width: u32,
    pub height: u32,
    pub matrix: Matrix,
    /// In track ticks.
    pub duration: u64,
    /// Whole `stsd` entry boxes.
    pub sample_entries: Vec<Bytes>,
    /// The edit list (`edts`/`elst`); none is written when empty.
    pub edits: Vec<Edit>,
}

/// One entry of an edit list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    /// Length on the movie timeline, in movie ticks.
    pub duration: u64,
    /// Where in the track's media (its presentation times, in track ticks) the edit starts;
    /// `None` for an empty edit (nothing shown, e.g. audio that starts after the video).
    pub media_time: Option<u64>,
}

/// Bytes an edit list of `entries` entries adds to a `trak`.
pub fn edit_list_size(entries: usize) -> usize {
    8 + 12 + 4 + 20 * entries
}

const BRANDS: [FourCc; 3] = [FourCc(*b"isom"), FourCc(*b"iso6"), FourCc(*b"mp41")];

/// `ftyp` + `moov` for a fragmented clip.
pub fn write_init(movie: &MovieSpec) -> Vec<u8> {
    let mut b = BoxBuf::with_capacity(2048);
    write_ftyp(&mut b);
    write_moov(&mut b, movie, None);
    b.into_vec()
}

/// The `moov` of a progressive clip: every sample described in `tables` (one per track, in
/// track order), and no `mvex`. `None` when a table cannot be written (see
/// [`TableBuilder::is_writable`]) or there is not one per track.
pub fn write_progressive_moov(movie: &MovieSpec, tables: &[TableBuilder]) -> Option<Vec<u8>> {
    if tables.len() != movie.tracks.len() || !tables.iter().all(TableBuilder::is_writable) {
        return None;
    }
    let samples: usize = tables.iter().map(TableBuilder::sample_count).sum();
    let mut b = BoxBuf::with_capacity(2048 + 8 * samples);
    write_moov(&mut b, movie, Some(tables));
    Some(b.into_vec())
}

/// The `ftyp` every clip starts with (how a clip file is recognized as one preroll wrote).
pub fn ftyp() -> Vec<u8> {
    let mut b = BoxBuf::with_capacity(32);
    write_ftyp(&mut b);
    b.into_vec()
}

fn write_ftyp(b: &mut BoxBuf) {
    b.begin(FTYP);
    b.bytes(b"isom");
    b.u32(0x200);
    for brand in BRANDS {
        b.bytes(&brand.0);
    }
    b.end();
}

fn write_moov(b: &mut BoxBuf, m: &MovieSpec, tables: Option<&[TableBuilder]>) {
    b.begin(MOOV);
    write_mvhd(b, m);
    for (i, t) in m.tracks.iter().enumerate() {
        write_trak(b, m, t, tables.and_then(|all| all.get(i)));
    }
    if tables.is_none() {
        write_mvex(b, m);
    }
    b.end();
}

fn write_mvhd(b: &mut BoxBuf, m: &MovieSpec) {
    b.begin_full(MVHD, 1, 0);
    b.u64(m.creation_time);
    b.u64(m.creation_time);
    b.u32(m.timescale);
    b.u64(m.duration);
    b.u32(0x0001_0000); // rate 1.0
    b.u16(0x0100); // volume 1.0
    b.zeros(2 + 8);
    b.bytes(&Matrix::IDENTITY.to_bytes());
    b.zeros(24); // pre_defined
    let next = m.tracks.iter().map(|t| t.track_id).max().unwrap_or(0) + 1;
    b.u32(next);
    b.end();
}

fn write_trak(b: &mut BoxBuf, m: &MovieSpec, t: &TrackSpec, table: Option<&TableBuilder>) {
    b.begin(TRAK);
    write_tkhd(b, m, t);
    write_edts(b, t);
    b.begin(MDIA);
    write_mdhd(b, m, t);
    write_hdlr(b, t);
    b.begin(MINF);
    match t.kind {
        TrackKind::Video => {
            b.begin_full(VMHD, 0, 1);
            b.zeros(8); // graphicsmode, opcolor
            b.end();
        }
        _ => {
            b.begin_full(SMHD, 0, 0);
            b.zeros(4); // balance, reserved
            b.end();
        }
    }
    write_dinf(b);
    write_stbl(b, t, table);
    b.end(); // minf
    b.end(); // mdia
    b.end(); // trak
}

/// Converts a duration between timescales, rounding up so a header never claims less media
/// than there is.
pub fn rescale_up(value: u64, from: u32, to: u32) -> u64 {
    let v = u128::from(value) * u128::from(to);
    let f = u128::from(from.max(1));
    u64::try_from(v.div_ceil(f)).unwrap_or(u64::MAX)
}

fn write_tkhd(b: &mut BoxBuf, m: &MovieSpec, t: &TrackSpec) {
    b.begin_full(TKHD, 1, 0x3); // enabled | in_movie
    b.u64(m.creation_time);
    b.u64(m.creation_time);
    b.u32(t.track_id);
    b.u32(0);
    // With an edit list, the track lasts as long as its edits (what is presented).
    let duration = if t.edits.is_empty() {
        rescale_up(t.duration, t.timescale, m.timescale)
    } else {
        t.edits.iter().map(|e| e.duration).sum()
    };
    b.u64(duration);
    b.zeros(8);
    b.u16(0); // layer
    let audio = t.kind == TrackKind::Audio;
    b.u16(u16::from(audio)); // alternate_group
    b.u16(if audio { 0x0100 } else { 0 }); // volume
    b.u16(0);
    b.bytes(&t.matrix.to_bytes());
    b.u32(t.width << 16);
    b.u32(t.height << 16);
    b.end();
}

/// The edit list: where presentation starts in the media and how long it lasts (ISO/IEC
/// 14496-12 8.6.6), version 1 for 64-bit times.
fn write_edts(b: &mut BoxBuf, t: &TrackSpec) {
    if t.edits.is_empty() {
        return;
    }
    b.begin(EDTS);
    b.begin_full(ELST, 1, 0);
    b.u32(t.edits.len() as u32);
    for e in &t.edits {
        b.u64(e.duration);
        match e.media_time {
            Some(m) => b.u64(m),
            None => b.u64(u64::MAX), // -1: an empty edit
        }
        b.u32(0x0001_0000); // media_rate 1.0
    }
    b.end();
    b.end();
}

fn write_mdhd(b: &mut BoxBuf, m: &MovieSpec, t: &TrackSpec) {
    b.begin_full(MDHD, 1, 0);
    b.u64(m.creation_time);
    b.u64(m.creation_time);
    b.u32(t.timescale);
    b.u64(t.duration);
    b.u16(t.language & 0x7fff);
    b.u16(0);
    b.end();
}

fn write_hdlr(b: &mut BoxBuf, t: &TrackSpec) {
    let (kind, name): (FourCc, &[u8]) = match t.kind {
        TrackKind::Video => (VIDE, b"VideoHandler\0"),
        TrackKind::Audio => (SOUN, b"SoundHandler\0"),
        TrackKind::Other(k) => (k, b"\0"),
    };
    b.begin_full(HDLR, 0, 0);
    b.u32(0);
    b.bytes(&kind.0);
    b.zeros(12);
    b.bytes(name);
    b.end();
}

fn write_dinf(b: &mut BoxBuf) {
    b.begin(DINF);
    b.begin_full(DREF, 0, 0);
    b.u32(1);
    b.begin_full(URL, 0, 1); // self-contained
    b.end();
    b.end();
    b.end();
}

/// The sample table: every sample's (progressive), or an empty one when fragments carry the
/// samples (`stco` is written although empty because some readers require it in every
/// `stbl`).
fn write_stbl(b: &mut BoxBuf, t: &TrackSpec, table: Option<&TableBuilder>) {
    b.begin(STBL);
    b.begin_full(STSD, 0, 0);
    b.u32(t.sample_entries.len() as u32);
    for e in &t.sample_entries {
        b.bytes(e);
    }
    b.end();
    if let Some(table) = table {
        table.write(b);
        b.end();
        return;
    }
    for kind in [STTS, STSC] {
        b.begin_full(kind, 0, 0);
        b.u32(0);
        b.end();
    }
    b.begin_full(STSZ, 0, 0);
    b.u32(0);
    b.u32(0);
    b.end();
    b.begin_full(STCO, 0, 0);
    b.u32(0);
    b.end();
    b.end();
}

fn write_mvex(b: &mut BoxBuf, m: &MovieSpec) {
    b.begin(MVEX);
    if let Some(d) = m.fragment_duration {
        b.begin_full(MEHD, 1, 0);
        b.u64(d);
        b.end();
    }
    for t in &m.tracks {
        b.begin_full(TREX, 0, 0);
        b.u32(t.track_id);
        b.u32(1);
        b.u32(0);
        b.u32(0);
        b.u32(0);
        b.end();
    }
    b.end();
}
