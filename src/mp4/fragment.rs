//! Parsing media fragments (`moof` + `mdat`) into sample tables.
//!
//! The result no longer depends on how the writer laid out its boxes: defaults from `tfhd` and
//! `trex` are resolved into every sample, and every run's data position is expressed relative to
//! the start of the `mdat` payload, whichever of the three base-offset rules the source used.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

use super::error::Result;
use super::init::{InitSegment, TrackDefaults};
use super::kinds::*;
use super::reader::{BoxRef, Boxes};

/// Samples per `trun` we accept. A run carries at most a few seconds of media; a count beyond
/// this is corruption, and honouring it would allocate without bound.
pub const MAX_SAMPLES_PER_RUN: u32 = 1 << 20;

/// `tfhd` flags (ISO/IEC 14496-12 8.8.7), shared with the writer.
pub(super) const TFHD_BASE_DATA_OFFSET: u32 = 0x1;
pub(super) const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x2;
pub(super) const TFHD_DEFAULT_DURATION: u32 = 0x8;
pub(super) const TFHD_DEFAULT_SIZE: u32 = 0x10;
pub(super) const TFHD_DEFAULT_FLAGS: u32 = 0x20;
pub(super) const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x2_0000;

/// `trun` flags (8.8.8), shared with the writer.
pub(super) const TRUN_DATA_OFFSET: u32 = 0x1;
pub(super) const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x4;
pub(super) const TRUN_DURATION: u32 = 0x100;
pub(super) const TRUN_SIZE: u32 = 0x200;
pub(super) const TRUN_FLAGS: u32 = 0x400;
pub(super) const TRUN_CTS: u32 = 0x800;

/// `sample_is_non_sync_sample` in the sample flags.
pub const SAMPLE_NON_SYNC: u32 = 0x1_0000;

/// Where a fragment's media bytes (the `mdat` payload) live.
#[derive(Debug, Clone)]
pub enum MediaData {
    /// In memory, shared with every other holder of the segment.
    Memory(Bytes),
    /// A byte range of a file, copied file-to-file when written (no user-space copy).
    File(FileRange),
    /// Consecutive buffers (a live segment keeps its frames' own allocations rather than
    /// copying them into one), written with one vectored write.
    Pieces(Arc<[Bytes]>),
}

#[derive(Debug, Clone)]
pub struct FileRange {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

impl MediaData {
    pub fn len(&self) -> u64 {
        match self {
            MediaData::Memory(b) => b.len() as u64,
            MediaData::File(r) => r.len,
            MediaData::Pieces(p) => p.iter().map(|b| b.len() as u64).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes `start..end` of this payload, still without copying.
    pub fn slice(&self, start: u64, end: u64) -> MediaData {
        let end = end.min(self.len());
        let start = start.min(end);
        match self {
            MediaData::Memory(b) => MediaData::Memory(b.slice(start as usize..end as usize)),
            MediaData::File(r) => MediaData::File(FileRange {
                file: r.file.clone(),
                offset: r.offset + start,
                len: end - start,
            }),
            MediaData::Pieces(parts) => {
                let mut out = Vec::new();
                let mut at = 0u64;
                for b in parts.iter() {
                    let (lo, hi) = (at, at + b.len() as u64);
                    at = hi;
                    if hi <= start || lo >= end {
                        continue;
                    }
                    let from = start.saturating_sub(lo) as usize;
                    let to = (end.min(hi) - lo) as usize;
                    out.push(b.slice(from..to));
                }
                MediaData::Pieces(out.into())
            }
        }
    }

    /// The bytes in memory: shared as they are, or gathered (file ranges are read).
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        Ok(match self {
            MediaData::Memory(b) => b.clone(),
            MediaData::Pieces(p) if p.len() == 1 => p[0].clone(),
            MediaData::Pieces(p) => Bytes::from(p.concat()),
            MediaData::File(r) => {
                use std::os::unix::fs::FileExt;
                let len = usize::try_from(r.len).map_err(std::io::Error::other)?;
                let mut buf = vec![0u8; len];
                r.file.read_exact_at(&mut buf, r.offset)?;
                Bytes::from(buf)
            }
        })
    }
}

/// One sample, with every default resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    /// Presentation time minus decode time, in track ticks.
    pub composition_offset: i32,
}

impl Sample {
    pub fn is_sync(&self) -> bool {
        self.flags & SAMPLE_NON_SYNC == 0
    }
}

/// Samples whose bytes are contiguous in the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRun {
    /// Offset of the first sample's bytes from the start of the `mdat` payload.
    pub data_offset: u64,
    pub samples: Vec<Sample>,
}

impl SampleRun {
    pub fn data_len(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.size)).sum()
    }
}

/// One track's part of a fragment (one `traf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFragment {
    pub track_id: u32,
    /// 1-based index into the track's sample entries.
    pub sample_description_index: u32,
    /// Decode time of the first sample (`tfdt`), if the fragment carries one.
    pub base_decode_time: Option<u64>,
    pub runs: Vec<SampleRun>,
}

impl TrackFragment {
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.runs.iter().flat_map(|r| r.samples.iter())
    }

    pub fn sample_count(&self) -> usize {
        self.runs.iter().map(|r| r.samples.len()).sum()
    }

    /// Sum of the sample durations, in track ticks.
    pub fn duration(&self) -> u64 {
        self.samples().map(|s| u64::from(s.duration)).sum()
    }

    pub fn starts_with_sync(&self) -> bool {
        self.samples().next().is_some_and(Sample::is_sync)
    }
}

/// A parsed media fragment: its sample tables and its payload.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// The `mfhd` sequence number it carried (informational: clips renumber).
    pub sequence: u32,
    pub tracks: Vec<TrackFragment>,
    pub data: MediaData,
}

impl Fragment {
    /// Total number of samples over all tracks.
    pub fn sample_count(&self) -> usize {
        self.tracks.iter().map(TrackFragment::sample_count).sum()
    }

    pub fn track(&self, track_id: u32) -> Option<&TrackFragment> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }

    /// Parses every `moof`+`mdat` pair in an in-memory buffer (an `.m4s` segment, or a whole
    /// fragmented file after its init). `styp`, `sidx`, `free` and other boxes are skipped.
    /// `base_offset` is where `buf` starts in its file.
    pub fn parse_all(buf: &Bytes, base_offset: u64, init: &InitSegment) -> Result<Vec<Fragment>> {
        let mut out = Vec::new();
        let mut pending: Option<BoxRef<'_>> = None;
        for b in Boxes::new(buf, base_offset) {
            let b = b?;
            if b.kind == MOOF {
                if let Some(m) = pending {
                    return Err(m.error("moof is not followed by an mdat"));
                }
                pending = Some(b);
            } else if b.kind == MDAT {
                // An mdat without a moof holds nothing a fragment refers to: skip it.
                if let Some(moof) = pending.take() {
                    let start = (b.body_offset() - base_offset) as usize;
                    let payload = buf.slice(start..start + b.body.len());
                    let (sequence, tracks) =
                        parse_moof(moof, b.body_offset(), b.body.len() as u64, init)?;
                    out.push(Fragment {
                        sequence,
                        tracks,
                        data: MediaData::Memory(payload),
                    });
                }
            } else if b.kind == MOOV || b.kind == FTYP {
                return Err(b.error("init boxes among media fragments"));
            }
        }
        if let Some(m) = pending {
            return Err(m.error("moof is not followed by an mdat"));
        }
        Ok(out)
    }
}

/// Parses a `moof` whose data lies in an `mdat` payload of `payload_len` bytes starting at
/// absolute offset `payload_offset`. Returns the `mfhd` sequence number and the track
/// fragments, with run offsets relative to the payload.
pub fn parse_moof(
    moof: BoxRef<'_>,
    payload_offset: u64,
    payload_len: u64,
    init: &InitSegment,
) -> Result<(u32, Vec<TrackFragment>)> {
    let mut sequence = None;
    let mut tracks = Vec::new();
    // Without a base offset or default-base-is-moof, a traf's data starts where the previous
    // traf's ended (ISO/IEC 14496-12 8.8.7.1).
    let mut previous_end = moof.offset;
    for b in moof.children() {
        let b = b?;
        if b.kind == MFHD {
            let mut f = b.fields();
            f.version_flags()?;
            sequence = Some(f.u32()?);
        } else if b.kind == TRAF {
            let (t, end) = parse_traf(
                b,
                moof.offset,
                previous_end,
                payload_offset,
                payload_len,
                init,
            )?;
            previous_end = end;
            if tracks
                .iter()
                .any(|o: &TrackFragment| o.track_id == t.track_id)
            {
                return Err(b.error(format!("second traf for track {} in one moof", t.track_id)));
            }
            tracks.push(t);
        }
    }
    let sequence = sequence.ok_or_else(|| moof.error("has no mfhd box"))?;
    Ok((sequence, tracks))
}

/// Returns the track fragment and the absolute end of its data.
fn parse_traf(
    traf: BoxRef<'_>,
    moof_offset: u64,
    previous_end: u64,
    payload_offset: u64,
    payload_len: u64,
    init: &InitSegment,
) -> Result<(TrackFragment, u64)> {
    let tfhd = traf.child(TFHD)?;
    let mut f = tfhd.fields();
    let (_, flags) = f.version_flags()?;
    let track_id = f.u32()?;
    let track = init.track(track_id).ok_or_else(|| {
        tfhd.error(format!(
            "track {track_id} is not declared in the init segment"
        ))
    })?;
    let trex = track.defaults;
    let base = if flags & TFHD_BASE_DATA_OFFSET != 0 {
        f.u64()?
    } else if flags & TFHD_DEFAULT_BASE_IS_MOOF != 0 {
        moof_offset
    } else {
        previous_end
    };
    let sample_description_index = if flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
        f.u32()?
    } else {
        trex.sample_description_index
    };
    let defaults = TrackDefaults {
        sample_description_index,
        sample_duration: if flags & TFHD_DEFAULT_DURATION != 0 {
            f.u32()?
        } else {
            trex.sample_duration
        },
        sample_size: if flags & TFHD_DEFAULT_SIZE != 0 {
            f.u32()?
        } else {
            trex.sample_size
        },
        sample_flags: if flags & TFHD_DEFAULT_FLAGS != 0 {
            f.u32()?
        } else {
            trex.sample_flags
        },
    };
    if sample_description_index == 0
        || sample_description_index as usize > track.sample_entries.len()
    {
        return Err(tfhd.error(format!(
            "sample description index {sample_description_index} is outside track {track_id}'s {} entries",
            track.sample_entries.len()
        )));
    }

    let mut base_decode_time = None;
    let mut runs = Vec::new();
    let mut next = base;
    for b in traf.children() {
        let b = b?;
        if b.kind == TFDT {
            let mut f = b.fields();
            let (version, _) = f.version_flags()?;
            base_decode_time = Some(f.u32_or_u64(version)?);
        } else if b.kind == TRUN {
            let (start, samples) = parse_trun(b, &defaults, base, next)?;
            let len: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
            let end = start
                .checked_add(len)
                .ok_or_else(|| b.error("data range overflows"))?;
            if start < payload_offset || end > payload_offset + payload_len {
                return Err(b.error(format!(
                    "sample data {start}..{end} lies outside the mdat payload {payload_offset}..{}",
                    payload_offset + payload_len
                )));
            }
            next = end;
            if !samples.is_empty() {
                runs.push(SampleRun {
                    data_offset: start - payload_offset,
                    samples,
                });
            }
        }
    }
    Ok((
        TrackFragment {
            track_id,
            sample_description_index,
            base_decode_time,
            runs,
        },
        next,
    ))
}

/// Returns the absolute offset of the run's data and its samples. A run's `data_offset` is
/// relative to the traf's base; a run without one continues where the previous run ended
/// (`next`, which is the base for the first run).
fn parse_trun(
    trun: BoxRef<'_>,
    d: &TrackDefaults,
    base: u64,
    next: u64,
) -> Result<(u64, Vec<Sample>)> {
    let mut f = trun.fields();
    let (version, flags) = f.version_flags()?;
    let count = f.u32()?;
    let start = if flags & TRUN_DATA_OFFSET != 0 {
        let rel = i64::from(f.i32()?);
        base.checked_add_signed(rel)
            .ok_or_else(|| trun.error(format!("data offset {rel} points before the file start")))?
    } else {
        next
    };
    let first_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
        Some(f.u32()?)
    } else {
        None
    };
    let per_sample = 4 * [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count();
    if count > MAX_SAMPLES_PER_RUN {
        return Err(trun.error(format!(
            "{count} samples in one run (limit {MAX_SAMPLES_PER_RUN})"
        )));
    }
    if (count as usize) * per_sample > f.remaining() {
        return Err(trun.error(format!(
            "{count} samples need {} bytes of sample fields, box has {}",
            count as usize * per_sample,
            f.remaining()
        )));
    }
    let mut samples = Vec::with_capacity(count as usize);
    for i in 0..count {
        let duration = if flags & TRUN_DURATION != 0 {
            f.u32()?
        } else {
            d.sample_duration
        };
        let size = if flags & TRUN_SIZE != 0 {
            f.u32()?
        } else {
            d.sample_size
        };
        let mut sample_flags = if flags & TRUN_FLAGS != 0 {
            f.u32()?
        } else {
            d.sample_flags
        };
        if let (0, Some(ff)) = (i, first_flags) {
            sample_flags = ff;
        }
        let composition_offset = if flags & TRUN_CTS != 0 {
            let raw = f.u32()?;
            if version == 0 {
                i32::try_from(raw).map_err(|_| {
                    trun.error(format!(
                        "sample {i}: composition offset {raw} is out of range"
                    ))
                })?
            } else {
                raw as i32
            }
        } else {
            0
        };
        samples.push(Sample {
            duration,
            size,
            flags: sample_flags,
            composition_offset,
        });
    }
    Ok((start, samples))
}
