//! Frames of all tracks put in decode-time order, as a camera sends them. A TS muxer writes
//! audio in PES of several frames, placed up to a few hundred milliseconds from the video of
//! the same time; replayed in file order, the audio of a clip's last moments would arrive
//! after the segment that should hold it was closed.

use crate::source::Frame;

/// Frames held at most; past it the oldest goes regardless (a track that stopped).
const MAX_HELD: usize = 512;

#[derive(Debug)]
pub struct Interleave {
    timescales: Vec<u32>,
    /// Per track, the newest decode time seen (ns).
    newest: Vec<Option<i128>>,
    /// Held frames by (decode time in ns, arrival order).
    held: Vec<(i128, u64, Frame)>,
    count: u64,
}

impl Interleave {
    pub fn new(timescales: Vec<u32>) -> Self {
        Interleave {
            newest: vec![None; timescales.len()],
            timescales,
            held: Vec::new(),
            count: 0,
        }
    }

    /// Takes a frame; hands over, in order, those no track can come before any more.
    pub fn push(&mut self, f: Frame, out: &mut Vec<Frame>) {
        let ts = self.timescales.get(f.track).copied().unwrap_or(1).max(1);
        let ns = f.dts.map_or(i128::MIN, |d| {
            i128::from(d) * 1_000_000_000 / i128::from(ts)
        });
        if let Some(n) = self.newest.get_mut(f.track) {
            *n = Some(n.map_or(ns, |n| n.max(ns)));
        }
        self.count += 1;
        let key = (ns, self.count);
        let at = self.held.partition_point(|(t, c, _)| (*t, *c) < key);
        self.held.insert(at, (ns, self.count, f));
        // Every track that has sent something is past this time: nothing earlier can come.
        let safe = self
            .newest
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(i128::MIN);
        let ready = self.held.partition_point(|(t, _, _)| *t <= safe);
        let ready = ready.max(self.held.len().saturating_sub(MAX_HELD));
        out.extend(self.held.drain(..ready).map(|(_, _, f)| f));
    }

    /// Hands over everything held (end of file, or before new params).
    pub fn flush(&mut self, out: &mut Vec<Frame>) {
        out.extend(self.held.drain(..).map(|(_, _, f)| f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(track: usize, dts: i64) -> Frame {
        Frame {
            track,
            pts: Some(dts),
            dts: Some(dts),
            duration: None,
            keyframe: true,
            data: bytes::Bytes::new(),
            received: std::time::Instant::now(),
        }
    }

    #[test]
    fn audio_written_late_comes_out_in_time_order() {
        let mut i = Interleave::new(vec![90_000, 48_000]);
        let mut out = Vec::new();
        // Video at 0, 40, 80 ms; then audio for 0..64 ms in one PES.
        for d in [0, 3600, 7200] {
            i.push(frame(0, d), &mut out);
        }
        assert_eq!(out.len(), 3, "one track alone is not held");
        for d in [0, 1024, 2048] {
            i.push(frame(1, d), &mut out);
        }
        i.push(frame(0, 10_800), &mut out);
        i.flush(&mut out);
        let order: Vec<(usize, i64)> = out.iter().map(|f| (f.track, f.dts.unwrap())).collect();
        assert_eq!(
            order[3..],
            [(1, 0), (1, 1024), (1, 2048), (0, 10_800)],
            "{order:?}"
        );
    }
}
