//! Writing a `moof` for samples whose bytes follow in the next `mdat`.

use super::fragment::{
    Sample, SampleRun, TFHD_DEFAULT_BASE_IS_MOOF, TFHD_DEFAULT_DURATION, TFHD_DEFAULT_FLAGS,
    TFHD_DEFAULT_SIZE, TFHD_SAMPLE_DESCRIPTION_INDEX, TRUN_CTS, TRUN_DATA_OFFSET, TRUN_DURATION,
    TRUN_FIRST_SAMPLE_FLAGS, TRUN_FLAGS, TRUN_SIZE,
};
use super::kinds::*;
use super::write::BoxBuf;

/// One track's part of the fragment to write.
#[derive(Debug, Clone, Copy)]
pub struct TrafSpec<'a> {
    pub track_id: u32,
    pub sample_description_index: u32,
    pub base_decode_time: u64,
    /// Runs with offsets relative to the start of the `mdat` payload.
    pub runs: &'a [SampleRun],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sample data at payload offset {0} is beyond the 2 GiB a trun data offset can reach")]
pub struct OffsetTooLarge(pub u64);

/// Writes a `moof` whose runs point into an `mdat` written right after it with a header of
/// `mdat_header_len` bytes. Every `tfhd` uses default-base-is-moof, so the fragment is valid
/// wherever it lands in the file.
pub fn write_moof(
    sequence: u32,
    trafs: &[TrafSpec<'_>],
    mdat_header_len: u64,
) -> Result<Vec<u8>, OffsetTooLarge> {
    let mut b = BoxBuf::with_capacity(256 + 16 * trafs.iter().map(sample_total).sum::<usize>());
    b.begin(MOOF);
    b.begin_full(MFHD, 0, 0);
    b.u32(sequence);
    b.end();
    // Positions of the data_offset fields, with the payload offset each must point at.
    let mut patches = Vec::new();
    for t in trafs {
        write_traf(&mut b, t, &mut patches);
    }
    b.end();
    let moof_len = b.len() as u64;
    for (at, payload_offset) in patches {
        let off = moof_len + mdat_header_len + payload_offset;
        let off = i32::try_from(off).map_err(|_| OffsetTooLarge(payload_offset))?;
        b.patch_u32(at, off as u32);
    }
    Ok(b.into_vec())
}

fn sample_total(t: &TrafSpec<'_>) -> usize {
    t.runs.iter().map(|r| r.samples.len()).sum()
}

/// How the samples of one traf are encoded: a field every sample shares goes into `tfhd`.
struct Encoding {
    default_duration: Option<u32>,
    default_size: Option<u32>,
    default_flags: Option<u32>,
    /// Set when only the first sample's flags differ from the default (a keyframe).
    first_flags_differ: bool,
    any_cts: bool,
    negative_cts: bool,
}

fn uniform<T: PartialEq + Copy>(mut it: impl Iterator<Item = T>) -> Option<T> {
    let first = it.next()?;
    it.all(|v| v == first).then_some(first)
}

fn choose_encoding(t: &TrafSpec<'_>) -> Encoding {
    let all = || t.runs.iter().flat_map(|r| r.samples.iter());
    let default_flags_all = uniform(all().map(|s| s.flags));
    // The common layout: a sync first sample followed by non-sync ones.
    let rest_flags = if default_flags_all.is_none() && t.runs.len() == 1 {
        uniform(all().skip(1).map(|s| s.flags))
    } else {
        None
    };
    Encoding {
        default_duration: uniform(all().map(|s| s.duration)),
        default_size: uniform(all().map(|s| s.size)),
        default_flags: default_flags_all.or(rest_flags),
        first_flags_differ: rest_flags.is_some(),
        any_cts: all().any(|s| s.composition_offset != 0),
        negative_cts: all().any(|s| s.composition_offset < 0),
    }
}

fn write_traf(b: &mut BoxBuf, t: &TrafSpec<'_>, patches: &mut Vec<(usize, u64)>) {
    let e = choose_encoding(t);
    b.begin(TRAF);

    let mut flags = TFHD_DEFAULT_BASE_IS_MOOF | TFHD_SAMPLE_DESCRIPTION_INDEX;
    if e.default_duration.is_some() {
        flags |= TFHD_DEFAULT_DURATION;
    }
    if e.default_size.is_some() {
        flags |= TFHD_DEFAULT_SIZE;
    }
    if e.default_flags.is_some() {
        flags |= TFHD_DEFAULT_FLAGS;
    }
    b.begin_full(TFHD, 0, flags);
    b.u32(t.track_id);
    b.u32(t.sample_description_index);
    for v in [e.default_duration, e.default_size, e.default_flags]
        .into_iter()
        .flatten()
    {
        b.u32(v);
    }
    b.end();

    b.begin_full(TFDT, 1, 0);
    b.u64(t.base_decode_time);
    b.end();

    for run in t.runs {
        let mut flags = TRUN_DATA_OFFSET;
        if e.first_flags_differ {
            flags |= TRUN_FIRST_SAMPLE_FLAGS;
        }
        if e.default_duration.is_none() {
            flags |= TRUN_DURATION;
        }
        if e.default_size.is_none() {
            flags |= TRUN_SIZE;
        }
        if e.default_flags.is_none() {
            flags |= TRUN_FLAGS;
        }
        if e.any_cts {
            flags |= TRUN_CTS;
        }
        b.begin_full(TRUN, u8::from(e.negative_cts), flags);
        b.u32(run.samples.len() as u32);
        patches.push((b.len(), run.data_offset));
        b.u32(0); // data_offset, patched once the moof size is known
        if e.first_flags_differ {
            b.u32(run.samples.first().map_or(0, |s| s.flags));
        }
        for s in &run.samples {
            write_sample(b, s, flags);
        }
        b.end();
    }
    b.end();
}

fn write_sample(b: &mut BoxBuf, s: &Sample, flags: u32) {
    if flags & TRUN_DURATION != 0 {
        b.u32(s.duration);
    }
    if flags & TRUN_SIZE != 0 {
        b.u32(s.size);
    }
    if flags & TRUN_FLAGS != 0 {
        b.u32(s.flags);
    }
    if flags & TRUN_CTS != 0 {
        b.i32(s.composition_offset);
    }
}
