//! Writing the movie fragment random access index (`mfra`) that ends a finished clip, so
//! players can seek without scanning every fragment.

use super::kinds::*;
use super::write::BoxBuf;

/// A random access point: a fragment whose track run starts with a sync sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomAccessPoint {
    /// Decode time of the sync sample, in track ticks.
    pub time: u64,
    /// Absolute file offset of the `moof` holding it.
    pub moof_offset: u64,
    /// 1-based position of the track's `traf` in that `moof`.
    pub traf_number: u8,
}

/// `mfra` with one `tfra` for `track_id`, closed by `mfro`.
pub fn write_mfra(track_id: u32, points: &[RandomAccessPoint]) -> Vec<u8> {
    let mut b = BoxBuf::with_capacity(64 + points.len() * 19);
    b.begin(MFRA);
    b.begin_full(TFRA, 1, 0);
    b.u32(track_id);
    // length_size_of_traf_num, _trun_num, _sample_num all 0: one byte each.
    b.u32(0);
    b.u32(points.len() as u32);
    for p in points {
        b.u64(p.time);
        b.u64(p.moof_offset);
        b.u8(p.traf_number);
        b.u8(1); // trun_number
        b.u8(1); // sample_number
    }
    b.end();
    b.begin_full(MFRO, 0, 0);
    let size_at = b.len();
    b.u32(0);
    b.end();
    b.end();
    let total = b.len() as u32;
    b.patch_u32(size_at, total);
    b.into_vec()
}
