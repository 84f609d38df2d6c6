//! Placing input media on the clip's timeline.
//!
//! The clip starts at 0. Within one `stream_id` the source spacing is kept exactly. A new
//! `stream_id` starts where the media written so far ends: one shift, a time in seconds, is
//! chosen for the whole stream so that no track overlaps what it already holds, and applied to
//! every track in its own timescale — so the A/V offset inside the new stream survives (to
//! within one tick). All arithmetic is integer; nothing goes through floating point.

use crate::mp4::{Sample, SampleRun, TrackFragment};

use super::tracks::TrackMap;

/// A time in seconds as an exact fraction (`den > 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seconds {
    num: i128,
    den: i128,
}

impl Seconds {
    fn new(ticks: i128, timescale: u32) -> Self {
        Seconds {
            num: ticks,
            den: i128::from(timescale.max(1)),
        }
    }

    fn max(self, other: Seconds) -> Seconds {
        if self.num * other.den >= other.num * self.den {
            self
        } else {
            other
        }
    }

    /// In ticks of `timescale`, rounded up.
    fn ticks_ceil(self, timescale: u32) -> i128 {
        let n = self.num * i128::from(timescale);
        -((-n).div_euclid(self.den))
    }
}

/// Rounds `ticks` of `from` to the nearest tick of `to`.
pub(super) fn rescale(ticks: i128, from: u32, to: u32) -> i128 {
    if from == to {
        return ticks;
    }
    let (from, to) = (i128::from(from.max(1)), i128::from(to));
    (ticks * to * 2 + from).div_euclid(2 * from)
}

/// Where a new stream joined the clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discontinuity {
    pub stream_id: u64,
    /// End of the clip's video before the new stream, in video ticks.
    pub at: u64,
}

/// The placement of one stream: its shift, and where each track's input left off.
#[derive(Debug, Clone)]
struct StreamClock {
    stream_id: u64,
    shift: Seconds,
    /// Next expected input decode time (edit-adjusted, input ticks) per output track, for
    /// fragments without a `tfdt`.
    next_input: Vec<Option<i128>>,
}

/// A track fragment placed on the clip's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub output: usize,
    pub base_decode_time: u64,
    pub runs: Vec<SampleRun>,
    /// Samples dropped because they overlapped media already in the clip.
    pub dropped: usize,
}

#[derive(Debug, Clone)]
pub struct Timeline {
    timescales: Vec<u32>,
    /// End of the media written per output track, in its ticks.
    ends: Vec<u64>,
    stream: Option<StreamClock>,
    discontinuities: Vec<Discontinuity>,
    /// A stream that continues the media before it exactly (a lookback read from disk up
    /// to where the ring's media starts): its start is not a discontinuity.
    seamless: Option<u64>,
}

impl Timeline {
    pub fn new() -> Self {
        Timeline {
            timescales: Vec::new(),
            ends: Vec::new(),
            stream: None,
            discontinuities: Vec::new(),
            seamless: None,
        }
    }

    /// The stream `stream_id` will continue the media before it exactly.
    pub fn join_seamlessly(&mut self, stream_id: u64) {
        self.seamless = Some(stream_id);
    }

    /// A timeline continuing after media already written: `ends` per output track, in its
    /// ticks (a recording resumed from its `.partial`). The next stream starts after them.
    pub fn resumed(timescales: &[u32], ends: &[u64]) -> Self {
        let mut t = Timeline::new();
        t.set_timescales(timescales);
        for (e, &end) in t.ends.iter_mut().zip(ends) {
            *e = end;
        }
        t
    }

    /// Declares the output tracks' timescales (called again when a track is added).
    pub fn set_timescales(&mut self, timescales: &[u32]) {
        self.timescales = timescales.to_vec();
        self.ends.resize(timescales.len(), 0);
        if let Some(s) = &mut self.stream {
            s.next_input.resize(timescales.len(), None);
        }
    }

    pub fn ends(&self) -> &[u64] {
        &self.ends
    }

    pub fn discontinuities(&self) -> &[Discontinuity] {
        &self.discontinuities
    }

    pub fn current_stream(&self) -> Option<u64> {
        self.stream.as_ref().map(|s| s.stream_id)
    }

    /// Starts placing a new stream. `firsts` holds, per output track present, the first input
    /// decode time (input ticks, edit-adjusted) and the input timescale.
    pub fn start_stream(&mut self, stream_id: u64, firsts: &[(usize, i128, u32)]) {
        let had_media = self.ends.iter().any(|&e| e > 0);
        let mut shift: Option<Seconds> = None;
        for &(output, first, input_ts) in firsts {
            let ts = self.timescales[output];
            let first_out = rescale(first, input_ts, ts);
            let need = Seconds::new(i128::from(self.ends[output]) - first_out, ts);
            shift = Some(shift.map_or(need, |s| s.max(need)));
        }
        if had_media && self.seamless != Some(stream_id) {
            self.discontinuities.push(Discontinuity {
                stream_id,
                at: self.ends.first().copied().unwrap_or(0),
            });
        }
        self.stream = Some(StreamClock {
            stream_id,
            shift: shift.unwrap_or(Seconds { num: 0, den: 1 }),
            next_input: vec![None; self.timescales.len()],
        });
    }

    /// The input decode time a track fragment starts at (edit-adjusted, input ticks).
    pub fn input_start(&self, t: &TrackFragment, map: &TrackMap) -> i128 {
        let next = self
            .stream
            .as_ref()
            .and_then(|s| s.next_input.get(map.output).copied().flatten());
        match t.base_decode_time {
            Some(d) => i128::from(d) + i128::from(map.edit_adjust),
            None => next.unwrap_or(i128::from(map.edit_adjust)),
        }
    }

    /// Where an input time (edit-adjusted, input ticks) of the current stream lands on the
    /// clip's timeline, in the output track's ticks.
    pub fn output_time(&self, input: i128, map: &TrackMap) -> Option<i128> {
        let stream = self.stream.as_ref()?;
        let ts = *self.timescales.get(map.output)?;
        Some(rescale(input, map.input_timescale, ts) + stream.shift.ticks_ceil(ts))
    }

    /// Places one track fragment of the current stream. Samples that would start before the
    /// media the track already holds are dropped (for video, up to the next sync sample, so
    /// nothing is left that depends on a dropped frame). With `until` (output ticks), the
    /// clip ends there: audio samples from it on are dropped, and video samples after the
    /// last one presented before it (in decode order, so every kept frame keeps what it
    /// references). With `from` (output ticks; audio only), samples that end by then are
    /// dropped: audio from before the clip's first picture. Returns `None` when nothing is
    /// left.
    pub fn place(
        &mut self,
        t: &TrackFragment,
        map: &TrackMap,
        from: Option<i128>,
        until: Option<i128>,
    ) -> Option<Placed> {
        let output = map.output;
        let ts = self.timescales[output];
        let input_ts = map.input_timescale;
        let start_in = self.input_start(t, map);
        let stream = self.stream.as_mut()?;
        let shift = stream.shift.ticks_ceil(ts);
        let end = i128::from(self.ends[output]);
        let video = output == super::tracks::VIDEO;
        // How many samples (in decode order) the cut keeps.
        let keep = until.map(|until| {
            let mut dts = start_in;
            let mut keep = 0usize;
            for (i, s) in t.runs.iter().flat_map(|r| &r.samples).enumerate() {
                let out = rescale(dts, input_ts, ts) + shift;
                let shown = if video {
                    rescale(dts + i128::from(s.composition_offset), input_ts, ts) + shift
                } else {
                    out
                };
                if shown < until {
                    keep = i + 1;
                } else if !video {
                    break;
                }
                dts += i128::from(s.duration);
            }
            keep
        });
        let mut index = 0usize;

        let mut runs = Vec::with_capacity(t.runs.len());
        let mut dropped = 0usize;
        let mut waiting_for_sync = false;
        let mut base: Option<i128> = None;
        let mut in_dts = start_in;
        let mut last_end = end;
        for run in &t.runs {
            let mut data_offset = run.data_offset;
            let mut kept: Vec<Sample> = Vec::with_capacity(run.samples.len());
            for s in &run.samples {
                let next_in = in_dts + i128::from(s.duration);
                let out = rescale(in_dts, input_ts, ts) + shift;
                let out_next = rescale(next_in, input_ts, ts) + shift;
                in_dts = next_in;
                let early = !video && from.is_some_and(|f| out_next <= f);
                let overlaps = out < end || early;
                // A sample ending past u64 ticks cannot be written (`tfdt` and the tables
                // count in u64); those after it end later still (found by the clip_writer
                // fuzz target: the decode time wrapped to 0).
                let cut = keep.is_some_and(|k| index >= k) || out_next > i128::from(u64::MAX);
                index += 1;
                if cut {
                    // Past the end: nothing after it is kept either.
                    dropped += 1;
                    continue;
                }
                if overlaps || (waiting_for_sync && !s.is_sync()) {
                    if kept.is_empty() {
                        data_offset += u64::from(s.size);
                    } else {
                        // A hole in the middle of a run: close it and start a new one.
                        let len: u64 = kept.iter().map(|k| u64::from(k.size)).sum();
                        let next_offset = data_offset + len + u64::from(s.size);
                        runs.push(SampleRun {
                            data_offset,
                            samples: std::mem::take(&mut kept),
                        });
                        data_offset = next_offset;
                    }
                    dropped += 1;
                    waiting_for_sync = video;
                    continue;
                }
                waiting_for_sync = false;
                if base.is_none() {
                    base = Some(out);
                }
                let mut placed = *s;
                if input_ts != ts {
                    // On the output timeline, like `out`: the shift applies to both.
                    let pts = rescale(
                        next_in - i128::from(s.duration) + i128::from(s.composition_offset),
                        input_ts,
                        ts,
                    ) + shift;
                    placed.duration = u32::try_from(out_next - out).unwrap_or(0);
                    placed.composition_offset = i32::try_from(pts - out).unwrap_or(0);
                }
                last_end = out + i128::from(placed.duration);
                kept.push(placed);
            }
            if !kept.is_empty() {
                runs.push(SampleRun {
                    data_offset,
                    samples: kept,
                });
            }
        }
        stream.next_input[output] = Some(in_dts);
        let base = base?;
        self.ends[output] = self.ends[output].max(u64::try_from(last_end).unwrap_or(0));
        Some(Placed {
            output,
            base_decode_time: u64::try_from(base).ok()?,
            runs,
            dropped,
        })
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Timeline {
        fn place_all(&mut self, t: &TrackFragment, map: &TrackMap) -> Option<Placed> {
            self.place(t, map, None, None)
        }
    }

    fn frag(base: Option<u64>, durations: &[u32], sync_every: usize) -> TrackFragment {
        TrackFragment {
            track_id: 1,
            sample_description_index: 1,
            base_decode_time: base,
            runs: vec![SampleRun {
                data_offset: 0,
                samples: durations
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| Sample {
                        duration: d,
                        size: 10,
                        flags: if i % sync_every == 0 {
                            0
                        } else {
                            crate::mp4::fragment::SAMPLE_NON_SYNC
                        },
                        composition_offset: 0,
                    })
                    .collect(),
            }],
        }
    }

    fn map(output: usize, ts: u32) -> TrackMap {
        TrackMap {
            input_track_id: 1,
            output,
            input_timescale: ts,
            edit_adjust: 0,
            entries: vec![1],
        }
    }

    #[test]
    fn first_stream_starts_at_zero_and_keeps_spacing() {
        let mut tl = Timeline::new();
        tl.set_timescales(&[90_000, 48_000]);
        tl.start_stream(1, &[(0, 900_000, 90_000), (1, 480_000 + 4_800, 48_000)]);
        let v = tl
            .place_all(&frag(Some(900_000), &[3000; 10], 10), &map(0, 90_000))
            .unwrap();
        let a = tl
            .place_all(&frag(Some(484_800), &[1024; 5], 1), &map(1, 48_000))
            .unwrap();
        assert_eq!(v.base_decode_time, 0);
        // Audio started 0.1 s after video in the source, and still does.
        assert_eq!(a.base_decode_time, 4_800);
        assert_eq!(tl.ends(), &[30_000, 4_800 + 5 * 1024]);
    }

    #[test]
    fn new_stream_continues_after_the_longest_track_with_offset_kept() {
        let mut tl = Timeline::new();
        tl.set_timescales(&[90_000, 48_000]);
        tl.start_stream(1, &[(0, 0, 90_000), (1, 0, 48_000)]);
        tl.place_all(&frag(Some(0), &[3000; 30], 30), &map(0, 90_000))
            .unwrap(); // 1.0 s
        tl.place_all(&frag(Some(0), &[1024; 48], 1), &map(1, 48_000))
            .unwrap(); // 1.024 s
        // Second stream (at 50 s in its own clock): audio starts 0.05 s after video.
        tl.start_stream(2, &[(0, 4_500_000, 90_000), (1, 2_402_400, 48_000)]);
        let v = tl
            .place_all(&frag(Some(4_500_000), &[3000; 3], 3), &map(0, 90_000))
            .unwrap();
        let a = tl
            .place_all(&frag(Some(2_402_400), &[1024; 3], 1), &map(1, 48_000))
            .unwrap();
        // Video's end (1.0 s) decides; audio keeps its 0.05 s offset and lands after its own
        // end (1.024 s).
        assert_eq!(v.base_decode_time, 90_000);
        assert_eq!(a.base_decode_time, 50_400);
        assert_eq!(
            tl.discontinuities(),
            &[Discontinuity {
                stream_id: 2,
                at: 90_000
            }]
        );
    }

    #[test]
    fn overlapping_video_is_dropped_up_to_the_next_sync_sample() {
        let mut tl = Timeline::new();
        tl.set_timescales(&[90_000]);
        tl.start_stream(1, &[(0, 0, 90_000)]);
        tl.place_all(&frag(Some(0), &[3000; 10], 5), &map(0, 90_000))
            .unwrap();
        // Same stream repeats the last 3 frames, then a keyframe at 10 (index 3 of this one).
        let mut f = frag(Some(21_000), &[3000; 6], 100);
        f.runs[0].samples[3].flags = 0;
        let p = tl.place_all(&f, &map(0, 90_000)).unwrap();
        assert_eq!(p.dropped, 3);
        assert_eq!(p.base_decode_time, 30_000);
        assert_eq!(p.runs[0].data_offset, 30);
        assert_eq!(p.runs[0].samples.len(), 3);
    }

    #[test]
    fn rescales_a_stream_with_another_timescale_without_drift() {
        let mut tl = Timeline::new();
        tl.set_timescales(&[90_000]);
        tl.start_stream(1, &[(0, 0, 90_000)]);
        tl.place_all(&frag(Some(0), &[3000; 3], 3), &map(0, 90_000))
            .unwrap();
        tl.start_stream(2, &[(0, 0, 30)]);
        let p = tl
            .place_all(&frag(Some(0), &[1; 30], 30), &map(0, 30))
            .unwrap();
        assert_eq!(p.base_decode_time, 9_000);
        // Composition offsets stay offsets: the stream's shift moves pts and dts alike
        // (found by tests/properties.rs: they came out as minus the shift).
        assert!(
            p.runs[0]
                .samples
                .iter()
                .all(|s| s.duration == 3000 && s.composition_offset == 0)
        );
        assert_eq!(tl.ends(), &[9_000 + 90_000]);
    }

    #[test]
    fn a_cut_keeps_what_is_shown_before_it_and_what_that_references() {
        let mut tl = Timeline::new();
        tl.set_timescales(&[90_000, 48_000]);
        tl.start_stream(1, &[(0, 0, 90_000), (1, 0, 48_000)]);
        // Decode order I P B B P B B with 2 B-frames: presentation 0 3 1 2 6 4 5 (frames).
        let mut v = frag(Some(0), &[3000; 7], 100);
        for (i, (s, pts)) in v.runs[0]
            .samples
            .iter_mut()
            .zip([0i32, 3, 1, 2, 6, 4, 5])
            .enumerate()
        {
            s.composition_offset = (pts - i as i32) * 3000;
        }
        // Cut at frame 3 (9000 ticks): frames 0, 1, 2 are shown before it. The last of them
        // in decode order is the second B (index 3), so I P B B are kept.
        let p = tl.place(&v, &map(0, 90_000), None, Some(9000)).unwrap();
        assert_eq!(p.runs[0].samples.len(), 4);
        assert_eq!(p.dropped, 3);
        assert_eq!(tl.ends()[0], 12_000);
        // Audio cut at 9000 ticks of 48 kHz: frames of 1024 start at 0, 1024, … 8192 before it.
        let a = tl
            .place(
                &frag(Some(0), &[1024; 20], 1),
                &map(1, 48_000),
                None,
                Some(9000),
            )
            .unwrap();
        assert_eq!(a.runs[0].samples.len(), 9);
        assert_eq!(tl.ends()[1], 9 * 1024);
    }

    #[test]
    fn samples_that_would_end_past_u64_ticks_are_dropped() {
        let mut tl = Timeline::new();
        tl.set_timescales(&[90_000, 48_000]);
        tl.start_stream(1, &[(1, 0, 48_000)]);
        // A fragment of the stream claims a decode time 2,500 ticks short of u64::MAX: two
        // samples of 1024 end before it, the other two would not.
        let near = u64::MAX - 2_500;
        let p = tl
            .place_all(&frag(Some(near), &[1024; 4], 1), &map(1, 48_000))
            .unwrap();
        assert_eq!(p.base_decode_time, near);
        assert_eq!(p.runs[0].samples.len(), 2);
        assert_eq!(p.dropped, 2);
        assert_eq!(tl.ends()[1], near + 2048);
        // Nothing more fits, and the track's end does not move back.
        assert!(
            tl.place_all(&frag(Some(u64::MAX - 10), &[1024; 2], 1), &map(1, 48_000))
                .is_none()
        );
        assert_eq!(tl.ends()[1], near + 2048);
    }

    #[test]
    fn audio_before_the_first_picture_is_dropped() {
        let mut tl = Timeline::new();
        tl.set_timescales(&[90_000, 48_000]);
        tl.start_stream(1, &[(1, 0, 48_000)]);
        // The first picture at 2500 audio ticks: the frames ending at 1024 and 2048 go, the
        // one across it stays.
        let a = tl
            .place(
                &frag(Some(0), &[1024; 5], 1),
                &map(1, 48_000),
                Some(2500),
                None,
            )
            .unwrap();
        assert_eq!(a.dropped, 2);
        assert_eq!(a.base_decode_time, 2048);
        assert_eq!(a.runs[0].data_offset, 20);
        assert_eq!(a.runs[0].samples.len(), 3);
    }
}
