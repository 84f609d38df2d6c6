//! Building a track's sample tables (`stbl`) as its media is written, for a clip finished as a
//! progressive MP4.
//!
//! A clip is written as fragments, and each fragment's runs become the chunks of the finished
//! file: the media stays where it is, only the description moves from the `moof`s into one
//! `moov`. Runs of equal values are kept run-length as they come (`stts`, `ctts`, `stsc`), so
//! memory grows by about four bytes per sample (its size) and eight per chunk.
//! [`crate::mp4::samples`] reads these tables back.

use super::Sample;
use super::kinds::{CO64, CTTS, STCO, STSC, STSS, STSZ, STTS};
use super::write::BoxBuf;

/// One run of equal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run<T> {
    count: u32,
    value: T,
}

/// Appends `value` to run-length `runs`.
fn push_run<T: PartialEq + Copy>(runs: &mut Vec<Run<T>>, value: T) {
    match runs.last_mut() {
        Some(r) if r.value == value && r.count < u32::MAX => r.count += 1,
        _ => runs.push(Run { count: 1, value }),
    }
}

/// A chunk-run entry of `stsc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkRun {
    first_chunk: u32,
    samples_per_chunk: u32,
    description_index: u32,
}

/// The sample tables of one track, grown chunk by chunk.
#[derive(Debug, Clone, Default)]
pub struct TableBuilder {
    sizes: Vec<u32>,
    durations: Vec<Run<u32>>,
    composition: Vec<Run<i32>>,
    /// 1-based numbers of the sync samples.
    sync: Vec<u32>,
    chunk_offsets: Vec<u64>,
    chunk_runs: Vec<ChunkRun>,
    /// Decode time of the first sample: a progressive track's media time starts there.
    first_dts: Option<u64>,
    /// Decode time where the samples so far end.
    end_dts: u64,
    /// The tables cannot describe the samples: more samples or chunks than they can count
    /// (2^32), or a chunk starting before the previous one ends.
    unwritable: bool,
}

impl TableBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sample_count(&self) -> usize {
        self.sizes.len()
    }

    /// Decode time of the first sample, where the track's media time 0 is.
    pub fn first_dts(&self) -> Option<u64> {
        self.first_dts
    }

    /// Adds a chunk: `samples` stored back to back from file offset `offset`, the first
    /// decoded at `dts`, described by sample entry `description_index` (1-based).
    ///
    /// A progressive track's decode times are the running sum of its sample durations, so a
    /// gap before the chunk (media missing from the clip: audio that stopped and came back)
    /// is added to the duration of the sample before it, which keeps every later sample at
    /// its decode time.
    pub fn push_chunk(
        &mut self,
        offset: u64,
        description_index: u32,
        dts: u64,
        samples: &[Sample],
    ) {
        if samples.is_empty() || self.unwritable {
            return;
        }
        match self.first_dts {
            None => {
                self.first_dts = Some(dts);
                self.end_dts = dts;
            }
            Some(_) if dts < self.end_dts => {
                self.unwritable = true;
                return;
            }
            Some(_) if dts > self.end_dts => {
                if !self.stretch_last(dts - self.end_dts) {
                    self.unwritable = true;
                    return;
                }
                self.end_dts = dts;
            }
            Some(_) => {}
        }
        let (Ok(n), Ok(first), Ok(chunk)) = (
            u32::try_from(samples.len()),
            u32::try_from(self.sizes.len() + 1),
            u32::try_from(self.chunk_offsets.len() + 1),
        ) else {
            self.unwritable = true;
            return;
        };
        if first.checked_add(n).is_none() || chunk == u32::MAX {
            self.unwritable = true;
            return;
        }
        for (i, s) in samples.iter().enumerate() {
            self.end_dts = self.end_dts.saturating_add(u64::from(s.duration));
            self.sizes.push(s.size);
            push_run(&mut self.durations, s.duration);
            push_run(&mut self.composition, s.composition_offset);
            if s.is_sync() {
                self.sync.push(first + i as u32);
            }
        }
        self.chunk_offsets.push(offset);
        let same = self
            .chunk_runs
            .last()
            .is_some_and(|r| r.samples_per_chunk == n && r.description_index == description_index);
        if !same {
            self.chunk_runs.push(ChunkRun {
                first_chunk: chunk,
                samples_per_chunk: n,
                description_index,
            });
        }
    }

    /// Adds `gap` ticks to the last sample's duration; false when it cannot be counted.
    fn stretch_last(&mut self, gap: u64) -> bool {
        let Some(last) = self.durations.last_mut() else {
            return false;
        };
        let Some(longer) = u32::try_from(gap)
            .ok()
            .and_then(|g| last.value.checked_add(g))
        else {
            return false;
        };
        if last.count == 1 {
            last.value = longer;
        } else {
            last.count -= 1;
            self.durations.push(Run {
                count: 1,
                value: longer,
            });
        }
        true
    }

    /// Whether the tables can be written (see `unwritable`).
    pub fn is_writable(&self) -> bool {
        !self.unwritable
    }

    /// Writes `stts`, `ctts` (when any sample is presented off its decode time), `stss` (when
    /// not every sample is a sync sample), `stsz`, `stsc` and `stco` (`co64` when an offset
    /// needs 64 bits) into the open `stbl`.
    pub fn write(&self, b: &mut BoxBuf) {
        b.begin_full(STTS, 0, 0);
        b.u32(self.durations.len() as u32);
        for r in &self.durations {
            b.u32(r.count);
            b.u32(r.value);
        }
        b.end();

        if self.composition.iter().any(|r| r.value != 0) {
            // Version 1 offsets are signed; version 0 is what older readers know.
            let signed = self.composition.iter().any(|r| r.value < 0);
            b.begin_full(CTTS, u8::from(signed), 0);
            b.u32(self.composition.len() as u32);
            for r in &self.composition {
                b.u32(r.count);
                b.u32(r.value as u32);
            }
            b.end();
        }

        if self.sync.len() != self.sizes.len() {
            b.begin_full(STSS, 0, 0);
            b.u32(self.sync.len() as u32);
            for &n in &self.sync {
                b.u32(n);
            }
            b.end();
        }

        b.begin_full(STSZ, 0, 0);
        // A shared size of 0 would read as "a size per sample follows" (ISO/IEC 14496-12
        // 8.7.3.2): samples all empty get their zeros listed (found by the clip_writer fuzz
        // target).
        match self.sizes.first() {
            Some(&s) if s != 0 && self.sizes.iter().all(|&x| x == s) => {
                b.u32(s);
                b.u32(self.sizes.len() as u32);
            }
            _ => {
                b.u32(0);
                b.u32(self.sizes.len() as u32);
                for &s in &self.sizes {
                    b.u32(s);
                }
            }
        }
        b.end();

        b.begin_full(STSC, 0, 0);
        b.u32(self.chunk_runs.len() as u32);
        for r in &self.chunk_runs {
            b.u32(r.first_chunk);
            b.u32(r.samples_per_chunk);
            b.u32(r.description_index);
        }
        b.end();

        let wide = self.chunk_offsets.iter().any(|&o| o > u64::from(u32::MAX));
        b.begin_full(if wide { CO64 } else { STCO }, 0, 0);
        b.u32(self.chunk_offsets.len() as u32);
        for &o in &self.chunk_offsets {
            if wide {
                b.u64(o);
            } else {
                b.u32(o as u32);
            }
        }
        b.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(duration: u32, size: u32, sync: bool, cts: i32) -> Sample {
        Sample {
            duration,
            size,
            // sample_is_non_sync_sample, and "depends on others" for non-sync samples
            flags: if sync { 0x0200_0000 } else { 0x0101_0000 },
            composition_offset: cts,
        }
    }

    fn stbl(t: &TableBuilder) -> Vec<u8> {
        let mut b = BoxBuf::new();
        b.begin(crate::mp4::kinds::STBL);
        t.write(&mut b);
        b.end();
        b.into_vec()
    }

    fn kinds_in(bytes: &[u8]) -> Vec<String> {
        crate::mp4::Boxes::new(&bytes[8..], 8)
            .map(|b| b.map(|b| b.kind.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn equal_values_stay_run_length() {
        let mut t = TableBuilder::new();
        let gop: Vec<Sample> = (0..4)
            .map(|i| sample(3600, 100 + i, i == 0, if i == 1 { 7200 } else { 0 }))
            .collect();
        t.push_chunk(1000, 1, 0, &gop);
        t.push_chunk(5000, 1, 4 * 3600, &gop);
        t.push_chunk(9000, 2, 8 * 3600, &gop[..2]);
        assert_eq!(
            t.durations,
            [Run {
                count: 10,
                value: 3600
            }]
        );
        assert_eq!(t.sync, [1, 5, 9]);
        assert_eq!(
            t.chunk_runs,
            [
                ChunkRun {
                    first_chunk: 1,
                    samples_per_chunk: 4,
                    description_index: 1
                },
                ChunkRun {
                    first_chunk: 3,
                    samples_per_chunk: 2,
                    description_index: 2
                },
            ]
        );
        assert_eq!(
            kinds_in(&stbl(&t)),
            ["stts", "ctts", "stss", "stsz", "stsc", "stco"]
        );
    }

    /// The body of the stsz box in `stbl`: sample_size, sample_count, then the entries.
    fn stsz_body(stbl: &[u8]) -> Vec<u32> {
        let b = crate::mp4::Boxes::new(&stbl[8..], 8)
            .filter_map(Result::ok)
            .find(|b| b.kind == STSZ)
            .expect("an stsz box");
        b.body[4..]
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn sizes_shared_when_equal_and_listed_when_all_empty() {
        let mut t = TableBuilder::new();
        t.push_chunk(0, 1, 0, &[sample(1024, 6, true, 0); 3]);
        assert_eq!(stsz_body(&stbl(&t)), [6, 3]);
        let mut t = TableBuilder::new();
        t.push_chunk(0, 1, 0, &[sample(1024, 0, true, 0); 3]);
        assert_eq!(stsz_body(&stbl(&t)), [0, 3, 0, 0, 0]);
    }

    #[test]
    fn all_sync_no_offsets_and_wide_offsets() {
        let mut t = TableBuilder::new();
        t.push_chunk(5 << 32, 1, 0, &[sample(1024, 6, true, 0); 3]);
        assert_eq!(kinds_in(&stbl(&t)), ["stts", "stsz", "stsc", "co64"]);
    }

    #[test]
    fn a_gap_lengthens_the_sample_before_it_and_an_overlap_is_refused() {
        let mut t = TableBuilder::new();
        let run = |n| vec![sample(1024, 6, true, 0); n];
        t.push_chunk(0, 1, 48_000, &run(3));
        t.push_chunk(100, 1, 48_000 + 3 * 1024 + 500, &run(2));
        assert_eq!(t.first_dts(), Some(48_000));
        let runs: Vec<(u32, u32)> = t.durations.iter().map(|r| (r.count, r.value)).collect();
        assert_eq!(runs, [(2, 1024), (1, 1524), (2, 1024)]);
        assert!(t.is_writable());
        t.push_chunk(200, 1, 48_000, &run(1));
        assert!(!t.is_writable());
    }
}
