//! Reading the sample tables of a progressive (non-fragmented) MP4.
//!
//! A progressive file describes every sample of a track in its `moov`, spread over the boxes of
//! the track's `stbl`: `stts` (durations, run-length), `ctts` (composition offsets,
//! run-length), `stss` (sync samples), `stsz`/`stz2` (sizes), `stsc` (how many samples each
//! chunk holds, run-length) and `stco`/`co64` (where each chunk starts in the file).
//!
//! [`SampleTable`] keeps those tables as they are — run-length entries stay run-length, sizes are
//! stored at their coded width — and computes the samples one at a time, in decode order, when
//! iterated. Nothing is allocated from a count that the box's own bytes do not back, and the
//! tables are checked against each other completely when parsed (sample counts agree, chunk
//! runs are well formed, no offset or time overflows), so iterating cannot fail.

use super::error::Result;
use super::fields::Fields;
use super::kinds::{CO64, CTTS, MDIA, MINF, STBL, STCO, STSC, STSD, STSS, STSZ, STTS, STZ2};
use super::reader::BoxRef;

/// One sample of a track as the progressive sample table describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSample {
    /// Absolute file offset of the sample's first byte.
    pub offset: u64,
    pub size: u32,
    /// Decode time in track ticks, counted from 0 at the first sample. The edit list is not
    /// applied.
    pub dts: u64,
    pub duration: u32,
    /// Presentation time minus decode time, in track ticks.
    pub composition_offset: i32,
    /// A sync sample (keyframe): decoding can start here.
    pub sync: bool,
    /// 1-based index into the track's `stsd` entries.
    pub description_index: u32,
}

/// A track's sample tables, parsed from its `trak` and checked for consistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleTable {
    sample_count: u32,
    sizes: Sizes,
    /// `stts`: runs of samples sharing a duration.
    durations: Vec<Run<u32>>,
    /// `ctts`: runs of samples sharing a composition offset; empty when the box is absent (every
    /// offset 0).
    composition: Vec<Run<i32>>,
    /// `stss`: 1-based numbers of the sync samples, strictly increasing; `None` when the box is
    /// absent (every sample is a sync sample).
    sync: Option<Vec<u32>>,
    /// `stsc`: runs of chunks sharing a sample count and description.
    chunk_runs: Vec<ChunkRun>,
    chunk_offsets: ChunkOffsets,
    /// Sum of all durations.
    duration: u64,
    /// End of the furthest sample's bytes.
    data_end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run<T> {
    count: u32,
    value: T,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkRun {
    /// 1-based number of the run's first chunk.
    first_chunk: u32,
    samples_per_chunk: u32,
    description_index: u32,
}

/// Sample sizes at the width the file coded them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sizes {
    /// `stsz` with one size for every sample.
    Fixed(u32),
    /// `stz2` with 4- or 8-bit fields.
    U8(Vec<u8>),
    /// `stz2` with 16-bit fields.
    U16(Vec<u16>),
    /// `stsz` with a size per sample.
    U32(Vec<u32>),
}

impl Sizes {
    fn get(&self, i: usize) -> Option<u32> {
        match self {
            Sizes::Fixed(s) => Some(*s),
            Sizes::U8(v) => v.get(i).map(|&s| u32::from(s)),
            Sizes::U16(v) => v.get(i).map(|&s| u32::from(s)),
            Sizes::U32(v) => v.get(i).copied(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ChunkOffsets {
    /// `stco`.
    U32(Vec<u32>),
    /// `co64`.
    U64(Vec<u64>),
}

impl ChunkOffsets {
    fn len(&self) -> usize {
        match self {
            ChunkOffsets::U32(v) => v.len(),
            ChunkOffsets::U64(v) => v.len(),
        }
    }

    /// The offset of 1-based chunk `chunk`.
    fn get(&self, chunk: u32) -> Option<u64> {
        let i = usize::try_from(chunk).ok()?.checked_sub(1)?;
        match self {
            ChunkOffsets::U32(v) => v.get(i).map(|&o| u64::from(o)),
            ChunkOffsets::U64(v) => v.get(i).copied(),
        }
    }
}

impl SampleTable {
    /// Parses the sample tables of a `trak` box as found in a progressive file's `moov`.
    /// Offsets in the result are absolute file offsets, as the file states them.
    pub fn parse(trak: BoxRef<'_>) -> Result<SampleTable> {
        let stbl = trak.child(MDIA)?.child(MINF)?.child(STBL)?;
        let descriptions = parse_stsd_count(stbl.child(STSD)?)?;
        let (sizes_box, (sample_count, sizes)) = match (stbl.find(STSZ)?, stbl.find(STZ2)?) {
            (Some(b), None) => (b, parse_stsz(b)?),
            (None, Some(b)) => (b, parse_stz2(b)?),
            (Some(_), Some(_)) => return Err(stbl.error("has both an stsz and an stz2 box")),
            (None, None) => return Err(stbl.error("has no stsz or stz2 box")),
        };
        let n = u64::from(sample_count);
        let counted = |b: BoxRef<'_>, total: u64| {
            if total == n {
                Ok(())
            } else {
                Err(b.error(format!(
                    "describes {total} samples but {} has {n}",
                    sizes_box.kind
                )))
            }
        };

        let stts = stbl.child(STTS)?;
        let durations = parse_runs(stts, |f, _| f.u32())?;
        counted(stts, run_total(&durations))?;
        let duration = durations
            .iter()
            .try_fold(0u64, |sum, r| {
                u64::from(r.count)
                    .checked_mul(u64::from(r.value))
                    .and_then(|d| sum.checked_add(d))
            })
            .ok_or_else(|| stts.error("total duration overflows 64 bits"))?;

        let composition = match stbl.find(CTTS)? {
            Some(ctts) => {
                // Version 1 offsets are signed. Version 0 ones are unsigned by the letter of
                // ISO/IEC 14496-12, but muxers write negative values there too and every
                // demuxer (ffmpeg's, Apple's) reads them as signed: so do we.
                let runs = parse_runs(ctts, |f, version| match version {
                    0 | 1 => f.i32(),
                    v => Err(f.error(format!("unknown ctts version {v}"))),
                })?;
                counted(ctts, run_total(&runs))?;
                runs
            }
            None => Vec::new(),
        };

        let sync = match stbl.find(STSS)? {
            Some(stss) => Some(parse_stss(stss, sample_count)?),
            None => None,
        };

        let (offsets_box, chunk_offsets) = match (stbl.find(STCO)?, stbl.find(CO64)?) {
            (Some(b), None) => (b, ChunkOffsets::U32(parse_table(b, 4, |f| f.u32())?)),
            (None, Some(b)) => (b, ChunkOffsets::U64(parse_table(b, 8, |f| f.u64())?)),
            (Some(_), Some(_)) => return Err(stbl.error("has both an stco and a co64 box")),
            (None, None) => return Err(stbl.error("has no stco or co64 box")),
        };
        let stsc = stbl.child(STSC)?;
        let chunk_runs = parse_stsc(stsc, chunk_offsets.len(), descriptions)?;

        let mut table = SampleTable {
            sample_count,
            sizes,
            durations,
            composition,
            sync,
            chunk_runs,
            chunk_offsets,
            duration,
            data_end: 0,
        };
        table.data_end = table.check_chunks(stsc, offsets_box)?;
        Ok(table)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.sample_count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.sample_count == 0
    }

    /// The samples in decode order, computed as they are iterated.
    pub fn iter(&self) -> Samples<'_> {
        Samples {
            table: self,
            next: 0,
            dts: 0,
            durations: RunCursor::default(),
            composition: RunCursor::default(),
            next_sync: 0,
            chunk_run: 0,
            chunk: 0,
            left_in_chunk: 0,
            offset: 0,
        }
    }

    /// Sum of the sample durations, in track ticks.
    pub fn duration(&self) -> u64 {
        self.duration
    }

    /// The file offset just past the furthest sample's bytes (0 without samples): a file shorter
    /// than this is truncated.
    pub fn data_end(&self) -> u64 {
        self.data_end
    }

    /// Walks the chunks: checks that the `stsc` runs map exactly the samples `stsz` has and
    /// that no chunk's bytes run past 2^64. Costs one step per chunk plus one per stored size,
    /// never one per sample of a fixed-size table. Returns the end of the furthest chunk.
    fn check_chunks(&self, stsc: BoxRef<'_>, offsets_box: BoxRef<'_>) -> Result<u64> {
        let n = u64::from(self.sample_count);
        let chunk_count = self.chunk_offsets.len() as u64;
        let mut sample = 0u64;
        let mut data_end = 0u64;
        for (i, run) in self.chunk_runs.iter().enumerate() {
            let end_chunk = self
                .chunk_runs
                .get(i + 1)
                .map_or(chunk_count + 1, |next| u64::from(next.first_chunk));
            let per_chunk = u64::from(run.samples_per_chunk);
            for chunk in u64::from(run.first_chunk)..end_chunk {
                if per_chunk == 0 {
                    continue;
                }
                // `sample` is at most the u32 sample count, as are both factors of the
                // fixed-size product below: neither can overflow.
                let end_sample = sample + per_chunk;
                if end_sample > n {
                    return Err(stsc.error(format!(
                        "chunk {chunk} would hold samples up to {end_sample}, but there are only {n}"
                    )));
                }
                let len = match &self.sizes {
                    Sizes::Fixed(s) => per_chunk * u64::from(*s),
                    _ => (sample..end_sample)
                        .map(|i| u64::from(self.sizes.get(i as usize).unwrap_or(0)))
                        .sum(),
                };
                // Chunk numbers come from a u32 table index, so this always fits.
                let offset = u32::try_from(chunk)
                    .ok()
                    .and_then(|c| self.chunk_offsets.get(c))
                    .unwrap_or(0);
                let end = offset.checked_add(len).ok_or_else(|| {
                    offsets_box.error(format!(
                        "chunk {chunk} at offset {offset} with {len} bytes of samples ends past 2^64"
                    ))
                })?;
                data_end = data_end.max(end);
                sample = end_sample;
            }
        }
        if sample != n {
            return Err(stsc.error(format!(
                "maps {sample} samples to chunks, but there are {n}"
            )));
        }
        Ok(data_end)
    }
}

impl<'a> IntoIterator for &'a SampleTable {
    type Item = TableSample;
    type IntoIter = Samples<'a>;

    fn into_iter(self) -> Samples<'a> {
        self.iter()
    }
}

/// The samples of a [`SampleTable`], in decode order.
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    table: &'a SampleTable,
    /// 0-based index of the next sample.
    next: u32,
    dts: u64,
    durations: RunCursor,
    composition: RunCursor,
    /// Index into the sync sample list of the next sync sample.
    next_sync: usize,
    chunk_run: usize,
    /// 1-based chunk the next sample is in; 0 before the first.
    chunk: u32,
    left_in_chunk: u32,
    /// Offset of the next sample.
    offset: u64,
}

impl Iterator for Samples<'_> {
    type Item = TableSample;

    fn next(&mut self) -> Option<TableSample> {
        let t = self.table;
        if self.next >= t.sample_count {
            return None;
        }
        // Every `?` below is unreachable for a table `parse` accepted; they end the iteration
        // rather than panic should that ever be wrong.
        while self.left_in_chunk == 0 {
            self.chunk = self.chunk.checked_add(1)?;
            while t
                .chunk_runs
                .get(self.chunk_run + 1)
                .is_some_and(|r| r.first_chunk <= self.chunk)
            {
                self.chunk_run += 1;
            }
            self.left_in_chunk = t.chunk_runs.get(self.chunk_run)?.samples_per_chunk;
            self.offset = t.chunk_offsets.get(self.chunk)?;
        }
        let size = t.sizes.get(self.next as usize)?;
        let duration = self.durations.next(&t.durations)?;
        let composition_offset = if t.composition.is_empty() {
            0
        } else {
            self.composition.next(&t.composition)?
        };
        let number = self.next + 1;
        let sync = match &t.sync {
            None => true,
            Some(list) => {
                let hit = list.get(self.next_sync) == Some(&number);
                if hit {
                    self.next_sync += 1;
                }
                hit
            }
        };
        let sample = TableSample {
            offset: self.offset,
            size,
            dts: self.dts,
            duration,
            composition_offset,
            sync,
            description_index: t.chunk_runs.get(self.chunk_run)?.description_index,
        };
        // `parse` checked that neither sum can overflow.
        self.offset = self.offset.saturating_add(u64::from(size));
        self.dts = self.dts.saturating_add(u64::from(duration));
        self.left_in_chunk -= 1;
        self.next = number;
        Some(sample)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.table.sample_count.saturating_sub(self.next) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Samples<'_> {}

/// Position in a run-length table.
#[derive(Debug, Clone, Copy, Default)]
struct RunCursor {
    run: usize,
    used: u32,
}

impl RunCursor {
    fn next<T: Copy>(&mut self, runs: &[Run<T>]) -> Option<T> {
        loop {
            let r = runs.get(self.run)?;
            if self.used < r.count {
                self.used += 1;
                return Some(r.value);
            }
            self.run += 1;
            self.used = 0;
        }
    }
}

fn run_total<T>(runs: &[Run<T>]) -> u64 {
    runs.iter().map(|r| u64::from(r.count)).sum()
}

/// Reads an entry count and checks that `count` entries of `entry_bytes` each fit in what is
/// left of the box, so the table can be allocated safely. Returns the count.
fn entry_count(b: BoxRef<'_>, f: &mut Fields<'_>, entry_bytes: u64) -> Result<u32> {
    let count = f.u32()?;
    check_room(b, f, count, u64::from(count) * entry_bytes)?;
    Ok(count)
}

fn check_room(b: BoxRef<'_>, f: &Fields<'_>, count: u32, bytes: u64) -> Result<()> {
    if bytes > f.remaining() as u64 {
        return Err(b.error(format!(
            "{count} entries need {bytes} bytes, the box has {} left",
            f.remaining()
        )));
    }
    Ok(())
}

/// A full box holding a count and that many fixed-size entries.
fn parse_table<T>(
    b: BoxRef<'_>,
    entry_bytes: u64,
    mut read: impl FnMut(&mut Fields<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut f = b.fields();
    f.version_flags()?;
    let count = entry_count(b, &mut f, entry_bytes)?;
    let mut v = Vec::with_capacity(count as usize);
    for _ in 0..count {
        v.push(read(&mut f)?);
    }
    Ok(v)
}

/// `stts` or `ctts`: a count and that many (sample_count, value) entries.
fn parse_runs<T>(
    b: BoxRef<'_>,
    mut value: impl FnMut(&mut Fields<'_>, u8) -> Result<T>,
) -> Result<Vec<Run<T>>> {
    let mut f = b.fields();
    let (version, _) = f.version_flags()?;
    let count = entry_count(b, &mut f, 8)?;
    let mut v = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let count = f.u32()?;
        let value = value(&mut f, version)?;
        v.push(Run { count, value });
    }
    Ok(v)
}

fn parse_stsd_count(stsd: BoxRef<'_>) -> Result<u32> {
    let mut f = stsd.fields();
    f.version_flags()?;
    f.u32()
}

/// `stsz`: a size for every sample, or one size per sample.
fn parse_stsz(b: BoxRef<'_>) -> Result<(u32, Sizes)> {
    let mut f = b.fields();
    f.version_flags()?;
    let fixed = f.u32()?;
    let count = f.u32()?;
    if fixed != 0 {
        return Ok((count, Sizes::Fixed(fixed)));
    }
    check_room(b, &f, count, u64::from(count) * 4)?;
    let mut v = Vec::with_capacity(count as usize);
    for _ in 0..count {
        v.push(f.u32()?);
    }
    Ok((count, Sizes::U32(v)))
}

/// `stz2`: compact sizes of 4, 8 or 16 bits.
fn parse_stz2(b: BoxRef<'_>) -> Result<(u32, Sizes)> {
    let mut f = b.fields();
    f.version_flags()?;
    f.skip(3)?; // reserved
    let field_size = f.u8()?;
    let count = f.u32()?;
    let n = u64::from(count);
    let sizes = match field_size {
        4 => {
            check_room(b, &f, count, n.div_ceil(2))?;
            let packed = f.bytes(n.div_ceil(2) as usize)?;
            // Two sizes a byte, the first in the high nibble.
            Sizes::U8(
                packed
                    .iter()
                    .flat_map(|&p| [p >> 4, p & 0x0f])
                    .take(count as usize)
                    .collect(),
            )
        }
        8 => {
            check_room(b, &f, count, n)?;
            Sizes::U8(f.bytes(count as usize)?.to_vec())
        }
        16 => {
            check_room(b, &f, count, n * 2)?;
            let mut v = Vec::with_capacity(count as usize);
            for _ in 0..count {
                v.push(f.u16()?);
            }
            Sizes::U16(v)
        }
        other => {
            return Err(b.error(format!("field size {other} is not 4, 8 or 16 bits")));
        }
    };
    Ok((count, sizes))
}

/// `stss`: the 1-based numbers of the sync samples, strictly increasing.
fn parse_stss(b: BoxRef<'_>, sample_count: u32) -> Result<Vec<u32>> {
    let list = parse_table(b, 4, |f| f.u32())?;
    let mut previous = 0;
    for (i, &number) in list.iter().enumerate() {
        if number == 0 || number > sample_count {
            return Err(b.error(format!(
                "entry {i}: sync sample {number} is not among samples 1..={sample_count}"
            )));
        }
        if number <= previous {
            return Err(b.error(format!(
                "entry {i}: sync sample {number} does not follow the previous entry's {previous}"
            )));
        }
        previous = number;
    }
    Ok(list)
}

/// `stsc`: runs of chunks. The first run starts at chunk 1, runs start at increasing chunks
/// that exist, and name an existing sample description.
fn parse_stsc(b: BoxRef<'_>, chunk_count: usize, descriptions: u32) -> Result<Vec<ChunkRun>> {
    let runs = parse_table(b, 12, |f| {
        Ok(ChunkRun {
            first_chunk: f.u32()?,
            samples_per_chunk: f.u32()?,
            description_index: f.u32()?,
        })
    })?;
    let mut previous = 0;
    for (i, r) in runs.iter().enumerate() {
        let first = r.first_chunk;
        if i == 0 && first != 1 {
            return Err(b.error(format!(
                "first entry starts at chunk {first}; chunks are numbered from 1"
            )));
        }
        if first <= previous {
            return Err(b.error(format!(
                "entry {i} starts at chunk {first}, not after the previous entry's {previous}"
            )));
        }
        if first as usize > chunk_count {
            return Err(b.error(format!(
                "entry {i} starts at chunk {first}, but there are {chunk_count} chunks"
            )));
        }
        if r.description_index == 0 || r.description_index > descriptions {
            return Err(b.error(format!(
                "entry {i}: sample description {} is not among the {descriptions} in stsd",
                r.description_index
            )));
        }
        previous = first;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::write::BoxBuf;
    use crate::mp4::{Boxes, FourCc};

    fn full(kind: FourCc, version: u8, body: impl FnOnce(&mut BoxBuf)) -> Vec<u8> {
        let mut b = BoxBuf::new();
        b.begin_full(kind, version, 0);
        body(&mut b);
        b.end();
        b.into_vec()
    }

    fn stsd(entries: u32) -> Vec<u8> {
        full(STSD, 0, |b| {
            b.u32(entries);
            for _ in 0..entries {
                b.begin(FourCc(*b"test"));
                b.zeros(8);
                b.end();
            }
        })
    }

    fn stts(runs: &[(u32, u32)]) -> Vec<u8> {
        full(STTS, 0, |b| {
            b.u32(runs.len() as u32);
            for &(n, d) in runs {
                b.u32(n);
                b.u32(d);
            }
        })
    }

    fn ctts(version: u8, runs: &[(u32, i32)]) -> Vec<u8> {
        full(CTTS, version, |b| {
            b.u32(runs.len() as u32);
            for &(n, o) in runs {
                b.u32(n);
                b.i32(o);
            }
        })
    }

    fn stss(numbers: &[u32]) -> Vec<u8> {
        full(STSS, 0, |b| {
            b.u32(numbers.len() as u32);
            numbers.iter().for_each(|&n| b.u32(n));
        })
    }

    fn stsz(fixed: u32, count: u32, sizes: &[u32]) -> Vec<u8> {
        full(STSZ, 0, |b| {
            b.u32(fixed);
            b.u32(count);
            sizes.iter().for_each(|&s| b.u32(s));
        })
    }

    fn stz2(bits: u8, sizes: &[u32]) -> Vec<u8> {
        full(STZ2, 0, |b| {
            b.zeros(3);
            b.u8(bits);
            b.u32(sizes.len() as u32);
            match bits {
                4 => sizes
                    .chunks(2)
                    .for_each(|p| b.u8(((p[0] as u8) << 4) | p.get(1).map_or(0, |&s| s as u8))),
                8 => sizes.iter().for_each(|&s| b.u8(s as u8)),
                _ => sizes.iter().for_each(|&s| b.u16(s as u16)),
            }
        })
    }

    fn stsc(runs: &[(u32, u32, u32)]) -> Vec<u8> {
        full(STSC, 0, |b| {
            b.u32(runs.len() as u32);
            for &(first, per, desc) in runs {
                b.u32(first);
                b.u32(per);
                b.u32(desc);
            }
        })
    }

    fn stco(offsets: &[u32]) -> Vec<u8> {
        full(STCO, 0, |b| {
            b.u32(offsets.len() as u32);
            offsets.iter().for_each(|&o| b.u32(o));
        })
    }

    fn co64(offsets: &[u64]) -> Vec<u8> {
        full(CO64, 0, |b| {
            b.u32(offsets.len() as u32);
            offsets.iter().for_each(|&o| b.u64(o));
        })
    }

    /// A `trak` > `mdia` > `minf` > `stbl` holding the given boxes.
    fn trak(stbl: &[Vec<u8>]) -> Vec<u8> {
        let mut b = BoxBuf::new();
        for kind in [FourCc(*b"trak"), MDIA, MINF, STBL] {
            b.begin(kind);
        }
        stbl.iter().for_each(|x| b.bytes(x));
        for _ in 0..4 {
            b.end();
        }
        b.into_vec()
    }

    fn parse(bytes: &[u8]) -> Result<SampleTable> {
        let trak = Boxes::new(bytes, 1000).next().unwrap()?;
        SampleTable::parse(trak)
    }

    fn samples(bytes: &[u8]) -> Vec<TableSample> {
        let t = parse(bytes).unwrap();
        let v: Vec<_> = t.iter().collect();
        assert_eq!(v.len(), t.len());
        v
    }

    fn sample(
        offset: u64,
        size: u32,
        dts: u64,
        duration: u32,
        composition_offset: i32,
        sync: bool,
        description_index: u32,
    ) -> TableSample {
        TableSample {
            offset,
            size,
            dts,
            duration,
            composition_offset,
            sync,
            description_index,
        }
    }

    /// Five samples in three chunks (2, 2, 1) over two stsc runs and two descriptions, with
    /// B-frame-like composition offsets and two keyframes.
    fn video() -> Vec<Vec<u8>> {
        vec![
            stsd(2),
            stts(&[(4, 512), (1, 256)]),
            ctts(0, &[(1, 1024), (2, 0), (2, 512)]),
            stss(&[1, 4]),
            stsz(0, 5, &[100, 20, 30, 90, 10]),
            stsc(&[(1, 2, 1), (3, 1, 2)]),
            stco(&[40, 500, 1000]),
        ]
    }

    #[test]
    fn several_stsc_runs_stco_ctts_stss() {
        let t = parse(&trak(&video())).unwrap();
        assert_eq!(
            (t.len(), t.duration(), t.data_end()),
            (5, 4 * 512 + 256, 1010)
        );
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            vec![
                sample(40, 100, 0, 512, 1024, true, 1),
                sample(140, 20, 512, 512, 0, false, 1),
                sample(500, 30, 1024, 512, 0, false, 1),
                sample(530, 90, 1536, 512, 512, true, 1),
                sample(1000, 10, 2048, 256, 512, false, 2),
            ]
        );
        assert_eq!(t.iter().len(), 5);
        assert_eq!(t.iter().skip(3).len(), 2);
    }

    #[test]
    fn stz2_4_bit_co64_no_stss_no_ctts() {
        let big = 5 << 32;
        let s = samples(&trak(&[
            stsd(1),
            stts(&[(3, 1024)]),
            stz2(4, &[15, 1, 7]),
            stsc(&[(1, 3, 1)]),
            co64(&[big]),
        ]));
        assert_eq!(
            s,
            vec![
                sample(big, 15, 0, 1024, 0, true, 1),
                sample(big + 15, 1, 1024, 1024, 0, true, 1),
                sample(big + 16, 7, 2048, 1024, 0, true, 1),
            ]
        );
    }

    #[test]
    fn stz2_8_and_16_bit_and_fixed_size() {
        for bits in [8, 16] {
            let s = samples(&trak(&[
                stsd(1),
                stts(&[(2, 1)]),
                stz2(bits, &[200, 9]),
                stsc(&[(1, 1, 1)]),
                stco(&[8, 4000]),
            ]));
            assert_eq!(
                s.iter().map(|s| (s.offset, s.size)).collect::<Vec<_>>(),
                [(8, 200), (4000, 9)]
            );
        }
        let s = samples(&trak(&[
            stsd(1),
            stts(&[(4, 1)]),
            stsz(300, 4, &[]),
            stsc(&[(1, 2, 1)]),
            stco(&[0, 10_000]),
        ]));
        assert_eq!(
            s.iter().map(|s| s.offset).collect::<Vec<_>>(),
            [0, 300, 10_000, 10_300]
        );
        assert!(s.iter().all(|s| s.size == 300));
    }

    #[test]
    fn ctts_version_1_negative_and_empty_stss() {
        let s = samples(&trak(&[
            stsd(1),
            stts(&[(3, 10)]),
            ctts(1, &[(1, 0), (1, -20), (1, 10)]),
            stss(&[]),
            stsz(0, 3, &[1, 2, 3]),
            stsc(&[(1, 3, 1)]),
            stco(&[100]),
        ]));
        assert_eq!(
            s.iter()
                .map(|s| (s.dts, s.composition_offset, s.sync))
                .collect::<Vec<_>>(),
            [(0, 0, false), (10, -20, false), (20, 10, false)]
        );
    }

    #[test]
    fn empty_chunks_and_zero_count_runs_are_skipped() {
        let s = samples(&trak(&[
            stsd(1),
            stts(&[(0, 99), (2, 5), (0, 7), (1, 6)]),
            stsz(0, 3, &[1, 2, 3]),
            // Chunk 1 empty, chunk 2 holds two samples, chunk 3 empty, chunk 4 one.
            stsc(&[(1, 0, 1), (2, 2, 1), (3, 0, 1), (4, 1, 1)]),
            stco(&[10, 20, 30, 40]),
        ]));
        assert_eq!(
            s.iter()
                .map(|s| (s.offset, s.dts, s.duration))
                .collect::<Vec<_>>(),
            [(20, 0, 5), (21, 5, 5), (40, 10, 6)]
        );
    }

    #[test]
    fn an_empty_track_has_no_samples() {
        let t = parse(&trak(&[
            stsd(1),
            stts(&[]),
            stsz(0, 0, &[]),
            stsc(&[]),
            stco(&[]),
        ]))
        .unwrap();
        assert!(t.is_empty());
        assert_eq!((t.iter().next(), t.duration(), t.data_end()), (None, 0, 0));
    }

    #[test]
    fn a_huge_fixed_size_table_is_neither_allocated_nor_walked() {
        let t = parse(&trak(&[
            stsd(1),
            stts(&[(u32::MAX, 1)]),
            stsz(1, u32::MAX, &[]),
            stsc(&[(1, u32::MAX, 1)]),
            stco(&[0]),
        ]))
        .unwrap();
        assert_eq!(t.len(), u32::MAX as usize);
        assert_eq!(t.data_end(), u64::from(u32::MAX));
        let last3: Vec<_> = t.iter().take(3).map(|s| s.offset).collect();
        assert_eq!(last3, [0, 1, 2]);
    }

    /// `video()` with box `kind` replaced.
    fn video_with(kind: FourCc, replacement: Vec<u8>) -> Vec<u8> {
        let mut boxes = video();
        let i = boxes
            .iter()
            .position(|b| b[4..8] == kind.0)
            .expect("box to replace");
        boxes[i] = replacement;
        trak(&boxes)
    }

    fn video_without(kind: FourCc) -> Vec<u8> {
        trak(
            &video()
                .into_iter()
                .filter(|b| b[4..8] != kind.0)
                .collect::<Vec<_>>(),
        )
    }

    #[track_caller]
    fn assert_error(bytes: &[u8], kind: FourCc, contains: &str) {
        let e = parse(bytes).unwrap_err();
        assert_eq!(e.kind, kind, "{e}");
        assert!(e.problem.contains(contains), "{e}");
        assert!(e.offset >= 1000, "{e}");
    }

    #[test]
    fn counts_beyond_the_box_are_errors_naming_it() {
        let mut huge_stsz = stsz(0, 5, &[100, 20, 30, 90, 10]);
        huge_stsz[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_error(&video_with(STSZ, huge_stsz), STSZ, "need 17179869180 bytes");

        let mut short_stts = stts(&[(4, 512), (1, 256)]);
        short_stts[12..16].copy_from_slice(&3u32.to_be_bytes());
        assert_error(
            &video_with(STTS, short_stts),
            STTS,
            "3 entries need 24 bytes",
        );

        let mut huge_stco = stco(&[40, 500, 1000]);
        huge_stco[12..16].copy_from_slice(&0x4000_0000u32.to_be_bytes());
        assert_error(&video_with(STCO, huge_stco), STCO, "entries need");

        let mut huge_stz2 = stz2(4, &[1, 2, 3, 4, 5]);
        huge_stz2[16..20].copy_from_slice(&7u32.to_be_bytes());
        assert_error(&video_with(STSZ, huge_stz2), STZ2, "7 entries need 4 bytes");

        // A box cut short inside its fixed fields.
        assert_error(
            &video_with(STSC, full(STSC, 0, |b| b.u16(0))),
            STSC,
            "truncated",
        );
    }

    #[test]
    fn tables_that_disagree_are_errors() {
        assert_error(
            &video_with(STTS, stts(&[(4, 512)])),
            STTS,
            "describes 4 samples but stsz has 5",
        );
        assert_error(
            &video_with(CTTS, ctts(0, &[(6, 0)])),
            CTTS,
            "describes 6 samples",
        );
        assert_error(&video_with(CTTS, ctts(2, &[(5, 0)])), CTTS, "version 2");
        assert_error(
            &video_with(STSS, stss(&[1, 6])),
            STSS,
            "sync sample 6 is not among samples 1..=5",
        );
        assert_error(
            &video_with(STSS, stss(&[4, 1])),
            STSS,
            "sync sample 1 does not follow the previous entry's 4",
        );
        assert_error(
            &video_with(STSS, stss(&[0])),
            STSS,
            "sync sample 0 is not among",
        );
    }

    #[test]
    fn bad_chunk_runs_are_errors() {
        type Runs = &'static [(u32, u32, u32)];
        let cases: [(Runs, &str); 7] = [
            (&[(0, 2, 1), (3, 1, 2)], "first entry starts at chunk 0"),
            (&[(2, 2, 1), (3, 1, 2)], "first entry starts at chunk 2"),
            (
                &[(1, 2, 1), (1, 1, 2)],
                "entry 1 starts at chunk 1, not after",
            ),
            (
                &[(1, 2, 1), (3, 1, 2), (2, 1, 1)],
                "entry 2 starts at chunk 2",
            ),
            (&[(1, 2, 1), (4, 1, 2)], "there are 3 chunks"),
            (&[(1, 2, 0), (3, 1, 2)], "sample description 0"),
            (
                &[(1, 2, 1), (3, 1, 3)],
                "sample description 3 is not among the 2",
            ),
        ];
        for (runs, problem) in cases {
            assert_error(&video_with(STSC, stsc(runs)), STSC, problem);
        }
        // Too few samples per chunk for the five samples, then too many.
        assert_error(
            &video_with(STSC, stsc(&[(1, 1, 1)])),
            STSC,
            "maps 3 samples to chunks, but there are 5",
        );
        assert_error(
            &video_with(STSC, stsc(&[(1, 2, 1)])),
            STSC,
            "chunk 3 would hold samples up to 6, but there are only 5",
        );
        assert_error(&video_with(STSC, stsc(&[])), STSC, "maps 0 samples");
        // Chunk bytes that would end past 2^64.
        assert_error(
            &video_with(STCO, co64(&[40, 500, u64::MAX - 5])),
            CO64,
            "chunk 3 at offset 18446744073709551610 with 10 bytes",
        );
    }

    #[test]
    fn missing_doubled_or_unknown_boxes_are_errors() {
        assert_error(&video_without(STTS), STBL, "has no stts box");
        assert_error(&video_without(STSC), STBL, "has no stsc box");
        assert_error(&video_without(STSD), STBL, "has no stsd box");
        assert_error(&video_without(STCO), STBL, "has no stco or co64 box");
        assert_error(&video_without(STSZ), STBL, "has no stsz or stz2 box");
        let mut both = video();
        both.push(stz2(8, &[1, 2, 3, 4, 5]));
        assert_error(&trak(&both), STBL, "both an stsz and an stz2");
        let mut both = video();
        both.push(co64(&[1, 2, 3]));
        assert_error(&trak(&both), STBL, "both an stco and a co64");
        assert_error(
            &video_with(STSZ, stz2(12, &[1, 2, 3, 4, 5])),
            STZ2,
            "field size 12",
        );
        let no_stbl = {
            let mut b = BoxBuf::new();
            b.begin(FourCc(*b"trak"));
            b.begin(MDIA);
            b.begin(MINF);
            b.end();
            b.end();
            b.end();
            b.into_vec()
        };
        assert_error(&no_stbl, MINF, "has no stbl box");
    }

    /// Every byte of a valid table overwritten with a few values, and every truncation of it:
    /// each either parses into a table that iterates to its stated length, or is an error.
    #[test]
    fn damaged_tables_never_panic() {
        let good = trak(&video());
        let check = |bytes: &[u8]| {
            if let Ok(t) = parse(bytes) {
                // Cap the walk: a damaged fixed size can make the count large (but lazy).
                let n = t.len().min(1 << 16);
                assert_eq!(t.iter().take(n).count(), n);
            }
        };
        for i in 0..good.len() {
            for v in [0, 1, 2, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                check(&bad);
            }
            // Truncate the body of the outermost box, keeping its header consistent.
            let mut cut = good[..i.max(8)].to_vec();
            let len = cut.len() as u32;
            cut[..4].copy_from_slice(&len.to_be_bytes());
            check(&cut);
        }
    }
}
