//! Decode times for video that arrives with presentation times only (RTSP cameras, and
//! Matroska files, whose blocks carry presentation times).
//!
//! Frames arrive in decode order. Without B-frames, presentation order is decode order and
//! dts = pts. With B-frames, the n-th decode time is the n-th smallest presentation time, less
//! a constant delay so that no frame is decoded after it is shown. The first frames of a stream
//! reveal the reorder depth (how many later frames can precede one in presentation order) and
//! the delay; after that each frame waits for `depth` successors before its dts is known.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::source::Frame;

/// Frames looked at before deciding the reorder depth.
const PROBE: usize = 8;

#[derive(Debug, Default)]
pub struct Reorder {
    window: VecDeque<Frame>,
    /// Presentation times not yet used as a decode time.
    pts: BinaryHeap<Reverse<i64>>,
    /// (depth, delay) once learned.
    learned: Option<(usize, i64)>,
    last_dts: Option<i64>,
    /// The last presentation time used as a decode time: every frame after it must present
    /// later, or it is out of order beyond repair.
    last_used: Option<i64>,
}

impl Reorder {
    /// Whether a frame with this presentation time can still be placed: its time must be
    /// later than every one already turned into a decode time.
    pub fn accepts(&self, pts: i64) -> bool {
        self.last_used.is_none_or(|l| pts > l)
    }

    /// Takes a frame (with `pts` set); returns the frames whose decode time is now known.
    pub fn push(&mut self, frame: Frame) -> Vec<Frame> {
        self.pts.push(Reverse(frame.pts.unwrap_or(0)));
        self.window.push_back(frame);
        if self.learned.is_none() && self.window.len() >= PROBE {
            self.learn();
        }
        self.release(false)
    }

    /// Releases every held frame (end of stream).
    pub fn flush(&mut self) -> Vec<Frame> {
        if self.learned.is_none() {
            self.learn();
        }
        self.release(true)
    }

    fn learn(&mut self) {
        let p: Vec<i64> = self.window.iter().map(|f| f.pts.unwrap_or(0)).collect();
        let mut s = p.clone();
        s.sort_unstable();
        let depth = (0..p.len())
            .map(|i| p[i + 1..].iter().filter(|&&q| q < p[i]).count())
            .max()
            .unwrap_or(0);
        let delay = s
            .iter()
            .zip(&p)
            .map(|(s, p)| s - p)
            .max()
            .unwrap_or(0)
            .max(0);
        self.learned = Some((depth, delay));
    }

    fn release(&mut self, all: bool) -> Vec<Frame> {
        let Some((depth, delay)) = self.learned else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while self.window.len() > if all { 0 } else { depth } {
            let (Some(mut f), Some(Reverse(smallest))) = (self.window.pop_front(), self.pts.pop())
            else {
                break;
            };
            self.last_used = Some(smallest);
            let mut dts = smallest - delay;
            if let Some(last) = self.last_dts
                && dts <= last
            {
                dts = last + 1;
            }
            self.last_dts = Some(dts);
            f.dts = Some(dts);
            out.push(f);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Instant;

    fn frames(pts: &[i64]) -> Vec<Frame> {
        pts.iter()
            .map(|&p| Frame {
                track: 0,
                pts: Some(p),
                dts: None,
                duration: None,
                keyframe: false,
                data: Bytes::new(),
                received: Instant::now(),
            })
            .collect()
    }

    fn run(pts: &[i64]) -> Vec<(i64, i64)> {
        let mut r = Reorder::default();
        let mut out = Vec::new();
        for f in frames(pts) {
            out.extend(r.push(f));
        }
        out.extend(r.flush());
        out.iter()
            .map(|f| (f.dts.unwrap(), f.pts.unwrap()))
            .collect()
    }

    #[test]
    fn without_b_frames_dts_is_pts() {
        let pts: Vec<i64> = (0..20).map(|i| i * 3000).collect();
        let out = run(&pts);
        assert!(out.iter().all(|(d, p)| d == p));
    }

    #[test]
    fn with_b_frames_dts_increases_and_never_passes_pts() {
        // I0 P3 B1 B2 P6 B4 B5 ... in 3000-tick frames.
        let mut pts = vec![0];
        for g in 0..6 {
            let b = g * 3;
            pts.extend([b + 3, b + 1, b + 2]);
        }
        let pts: Vec<i64> = pts.iter().map(|p| p * 3000).collect();
        let out = run(&pts);
        assert_eq!(out.len(), pts.len());
        assert!(out.windows(2).all(|w| w[1].0 > w[0].0), "{out:?}");
        assert!(out.iter().all(|(d, p)| d <= p), "{out:?}");
        // Presentation times are untouched, in decode order.
        assert_eq!(out.iter().map(|o| o.1).collect::<Vec<_>>(), pts);
    }
}
