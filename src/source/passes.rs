//! Continuous timestamps over the passes of a looped file, shared by every file reader (MP4
//! fragments, progressive MP4, MPEG-TS): a camera's clock never jumps back, so each pass is
//! shifted by the length of one pass — the same time for every track, so they stay in sync.

/// One pass lasts from the earliest first decode time to the latest decode end, over all
/// tracks, measured during the first pass (or known up front).
#[derive(Debug, Clone)]
pub struct Passes {
    timescales: Vec<u32>,
    /// Per track, the earliest decode time and the latest decode end of the first pass.
    first: Vec<Option<i64>>,
    end: Vec<Option<i64>>,
    pass: u64,
    pass_nanos: Option<u128>,
}

fn nanos(t: i64, timescale: u32) -> i128 {
    i128::from(t) * 1_000_000_000 / i128::from(timescale.max(1))
}

impl Passes {
    /// Tracks with these timescales; the pass length is measured during the first pass.
    pub fn new(timescales: Vec<u32>) -> Self {
        let n = timescales.len();
        Passes {
            timescales,
            first: vec![None; n],
            end: vec![None; n],
            pass: 0,
            pass_nanos: None,
        }
    }

    /// Tracks whose pass length is known before reading (from sample tables).
    pub fn with_length(timescales: Vec<u32>, pass_nanos: u128) -> Self {
        let mut p = Passes::new(timescales);
        p.pass_nanos = Some(pass_nanos.max(1));
        p
    }

    /// Records a sample of the first pass (later passes repeat it and are ignored).
    pub fn note(&mut self, track: usize, dts: i64, duration: i64) {
        if self.pass > 0 || self.pass_nanos.is_some() {
            return;
        }
        if let (Some(first), Some(end)) = (self.first.get_mut(track), self.end.get_mut(track)) {
            *first = Some(first.map_or(dts, |f| f.min(dts)));
            let e = dts.saturating_add(duration.max(0));
            *end = Some(end.map_or(e, |x| x.max(e)));
        }
    }

    /// True once the first pass has produced a sample (a file with none cannot loop).
    pub fn seen_media(&self) -> bool {
        self.pass_nanos.is_some() || self.first.iter().any(Option::is_some)
    }

    /// Starts the next pass; fails when the first one held no media.
    pub fn next_pass(&mut self) -> Result<(), &'static str> {
        if self.pass_nanos.is_none() {
            let ts = &self.timescales;
            let first = (self.first.iter().zip(ts))
                .filter_map(|(f, &t)| f.map(|f| nanos(f, t)))
                .min();
            let end = (self.end.iter().zip(ts))
                .filter_map(|(e, &t)| e.map(|e| nanos(e, t)))
                .max();
            let (Some(first), Some(end)) = (first, end) else {
                return Err("no media to loop");
            };
            self.pass_nanos = Some(u128::try_from(end - first).unwrap_or(0).max(1));
        }
        self.pass += 1;
        Ok(())
    }

    /// What to add to a track's timestamps in the current pass.
    pub fn offset(&self, track: usize) -> i64 {
        let (Some(p), Some(&ts)) = (self.pass_nanos, self.timescales.get(track)) else {
            return 0;
        };
        i64::try_from(u128::from(self.pass) * p * u128::from(ts) / 1_000_000_000)
            .unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::Passes;

    #[test]
    fn every_track_moves_by_the_same_time() {
        // 90 kHz video 0..2 s, 48 kHz audio 0.1..2.1 s: a pass is 2.1 s.
        let mut p = Passes::new(vec![90_000, 48_000]);
        p.note(0, 0, 3600);
        p.note(0, 176_400, 3600);
        p.note(1, 4800, 1024);
        p.note(1, 99_776, 1024);
        assert!(p.seen_media());
        assert_eq!(p.offset(0), 0);
        p.next_pass().unwrap();
        assert_eq!(p.offset(0), 189_000);
        assert_eq!(p.offset(1), 100_800);
        p.next_pass().unwrap();
        assert_eq!(p.offset(1), 201_600);
    }

    #[test]
    fn a_pass_without_media_cannot_loop() {
        let mut p = Passes::new(vec![90_000]);
        assert!(!p.seen_media());
        assert!(p.next_pass().is_err());
        let mut known = Passes::with_length(vec![1000], 2_000_000_000);
        known.next_pass().unwrap();
        assert_eq!(known.offset(0), 2000);
    }
}
