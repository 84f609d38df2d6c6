//! What a clip presents, as an edit list: where presentation starts and how long it lasts.
//!
//! A clip starts decoding at a keyframe. Its edit list starts presentation at the requested
//! instant (`trigger - lookback`) when the clip reaches back that far: the frames decoded
//! before it are there for the decoder, not shown. Without a requested instant (recovered
//! and remuxed clips) it starts at the first picture, which with B-frames is presented one
//! or two frames after decoding starts. Presentation ends with the frame shown at the
//! requested end, hiding the frames decoded before the cut but shown after it (B-frames
//! reference them). Audio is lined up with the video and never runs past it.
//!
//! Players honour such edits in a progressive MP4, which is how clips are finished. Chromium
//! and ffmpeg ignore an edit that skips frames in a fragmented MP4 and show every frame, so
//! a clip that has to stay fragmented (no room left on the disk for the sample tables, see
//! `Recording::finish`) gets the edits players apply there: from the first picture to the
//! end of the last one written (`Exactness::Fragmented`).
//!
//! Times here are on the clip's timeline (output ticks of each track). The link to the
//! camera's clock is an anchor: the arrival instant of a part's first video frame and where
//! that frame is presented in the clip.

use std::time::{Duration, Instant};

use crate::mp4::moov::Edit;

use super::timeline::{Placed, rescale};

/// Ticks of `timescale` in `d`, rounded down.
pub fn duration_ticks(d: Duration, timescale: u32) -> i128 {
    (d.as_nanos() * u128::from(timescale) / 1_000_000_000) as i128
}

/// Where an instant of the camera's arrival clock lands in the clip, given one anchor.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    pub at: Instant,
    /// Presentation time of the frame that arrived `at`, in video output ticks.
    pub pts: i128,
}

impl Anchor {
    /// `instant` in video output ticks (instants before the anchor land before its frame).
    pub fn ticks(&self, instant: Instant, timescale: u32) -> i128 {
        match instant.checked_duration_since(self.at) {
            Some(after) => self.pts + duration_ticks(after, timescale),
            None => self.pts - duration_ticks(self.at - instant, timescale),
        }
    }

    /// The instant of a video output time.
    pub fn instant(&self, ticks: i128, timescale: u32) -> Instant {
        let nanos = |t: i128| {
            Duration::from_nanos(
                u64::try_from(t.unsigned_abs() * 1_000_000_000 / u128::from(timescale.max(1)))
                    .unwrap_or(u64::MAX),
            )
        };
        let delta = ticks - self.pts;
        if delta >= 0 {
            self.at + nanos(delta)
        } else {
            self.at.checked_sub(nanos(delta)).unwrap_or(self.at)
        }
    }
}

/// Which edits a clip gets: exact ones (progressive clips), or those fragmented-MP4 players
/// apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exactness {
    /// From the requested instant to the requested end, to the frame.
    Progressive,
    /// From the first picture to the end of the last frame written.
    Fragmented,
}

/// Frames kept as candidates for the requested start: those presented within this many
/// seconds of where the first anchor places it. The arrival clock's estimate of a part's start
/// settles over the first second after a connect (see `source::arrival`); later anchors place
/// the start again, among these.
const CANDIDATE_WINDOW_SECS: i128 = 2;

/// At most this many candidates are kept (a window holds 100 frames at 25 fps).
const MAX_CANDIDATES: usize = 10_000;

/// Follows the video and audio written into a clip, to say at the end what it presents.
#[derive(Debug, Clone, Default)]
pub struct Presentation {
    /// The newest anchor of the clip's first stream: the one the arrival clock had settled
    /// most on.
    anchor: Option<Anchor>,
    /// The stream the anchors come from.
    anchor_stream: Option<u64>,
    /// Video output timescale.
    timescale: u32,
    /// The earliest presentation time written: the clip's first picture.
    earliest: Option<i128>,
    /// End of the last frame written.
    video_end: i128,
    /// End of the last frame shown before the requested end (every frame when not cut).
    shown_end: i128,
    /// Decode time of the first audio sample.
    audio_first: Option<i128>,
    /// The instant presentation should start at, on the camera's arrival clock.
    wanted: Option<Instant>,
    /// `wanted` in video output ticks as the first anchor placed it.
    first_estimate: Option<i128>,
    /// Presentation times of the frames near `first_estimate`, among which the start is.
    candidates: Vec<i128>,
}

impl Presentation {
    /// Asks presentation to start at `instant` of the camera's arrival clock (the clip's
    /// `trigger - lookback`), when the clip's media reaches back that far.
    pub fn start_at(&mut self, instant: Instant) {
        self.wanted = Some(instant);
    }

    /// Takes note of a placed video track fragment; `received` is when its part's first
    /// frame arrived (live media) and the part's stream, `timescale` the video output
    /// timescale, `cut` the requested end in video output ticks when this part holds it.
    pub fn video(
        &mut self,
        placed: &Placed,
        received: Option<(Instant, u64)>,
        timescale: u32,
        cut: Option<i128>,
    ) {
        self.timescale = timescale;
        let window = CANDIDATE_WINDOW_SECS * i128::from(timescale);
        let mut dts = i128::from(placed.base_decode_time);
        for (i, s) in placed.runs.iter().flat_map(|r| &r.samples).enumerate() {
            let pts = dts + i128::from(s.composition_offset);
            // Each part of the first stream anchors the clip anew: a newer estimate of when
            // its first frame arrived is a better one. (After a reconnect the clip's timeline
            // runs on without the gap, so another stream's anchors would misplace it.)
            if i == 0
                && let Some((at, stream)) = received
                && self.anchor_stream.is_none_or(|first| first == stream)
            {
                let anchor = Anchor { at, pts };
                self.anchor = Some(anchor);
                self.anchor_stream = Some(stream);
                if self.first_estimate.is_none() {
                    self.first_estimate = self.wanted.map(|w| anchor.ticks(w, timescale));
                }
            }
            if self
                .first_estimate
                .is_some_and(|e| (pts - e).abs() <= window)
                && self.candidates.len() < MAX_CANDIDATES
            {
                self.candidates.push(pts);
            }
            self.earliest = Some(self.earliest.map_or(pts, |e| e.min(pts)));
            let end = pts + i128::from(s.duration);
            self.video_end = self.video_end.max(end);
            if cut.is_none_or(|c| pts < c) {
                self.shown_end = self.shown_end.max(end);
            }
            dts += i128::from(s.duration);
        }
    }

    /// Takes note of a placed audio track fragment.
    pub fn audio(&mut self, placed: &Placed) {
        let first = i128::from(placed.base_decode_time);
        self.audio_first = Some(self.audio_first.map_or(first, |a| a.min(first)));
    }

    /// The clip's first picture, in video output ticks: where audio written with it starts.
    pub fn first_picture(&self) -> Option<i128> {
        self.earliest
    }

    /// The frame shown at the requested start, as the newest anchor places it: the latest
    /// presentation time at or before it.
    fn wanted_pts(&self) -> Option<i128> {
        let wanted = self.anchor?.ticks(self.wanted?, self.timescale);
        self.candidates
            .iter()
            .copied()
            .filter(|&p| p <= wanted)
            .max()
    }

    /// Where presentation starts, in video output ticks.
    pub fn start(&self, exactness: Exactness) -> Option<i128> {
        match exactness {
            Exactness::Progressive => self.wanted_pts().or(self.earliest),
            Exactness::Fragmented => self.earliest,
        }
    }

    /// The instant of the clip's first presented picture on the camera's clock (live clips).
    pub fn started_at(&self, exactness: Exactness) -> Option<Instant> {
        let anchor = self.anchor?;
        Some(anchor.instant(self.start(exactness)?, self.timescale))
    }

    /// Video presented, in video output ticks.
    pub fn video_duration(&self, exactness: Exactness) -> Option<u64> {
        let start = self.start(exactness)?;
        let end = match exactness {
            Exactness::Progressive => self.shown_end,
            Exactness::Fragmented => self.video_end,
        };
        u64::try_from(end - start).ok()
    }

    /// The edit lists: `[video, audio?]`, durations in movie ticks (the video timescale).
    /// `audio` is the audio track's timescale and where its media ends (its decode end), when
    /// the clip has one. `None` when no video was written.
    pub fn edits(
        &self,
        video_ts: u32,
        audio: Option<(u32, u64)>,
        exactness: Exactness,
    ) -> Option<Vec<Vec<Edit>>> {
        let start = self.start(exactness)?;
        let video_len = self.video_duration(exactness)?;
        let mut out = vec![vec![Edit {
            duration: video_len,
            media_time: Some(edit_media_time(start)?),
        }]];
        if let Some((audio_ts, audio_end)) = audio {
            let mut edits = Vec::new();
            // Audio starts with the video's first picture, or after a silence when it began
            // later; it never runs past the video.
            let begin = rescale(start, video_ts, audio_ts);
            let first = self.audio_first.unwrap_or(begin);
            let shown_from = begin.max(first);
            let end = i128::from(audio_end).min(rescale(
                start + i128::from(video_len),
                video_ts,
                audio_ts,
            ));
            let silence = rescale(shown_from - begin, audio_ts, video_ts);
            if silence > 0 {
                edits.push(Edit {
                    duration: u64::try_from(silence).ok()?,
                    media_time: None,
                });
            }
            if end > shown_from {
                edits.push(Edit {
                    duration: u64::try_from(rescale(end - shown_from, audio_ts, video_ts)).ok()?,
                    media_time: Some(edit_media_time(shown_from)?),
                });
            }
            out.push(edits);
        }
        Some(out)
    }
}

/// An edit's media time: `elst` stores it signed (−1 marks an empty edit), so one past
/// `i64::MAX` would read back negative. Such a time (only absurd stream timestamps reach it)
/// gets no edit list: the clip then plays from its first sample.
fn edit_media_time(t: i128) -> Option<u64> {
    u64::try_from(i64::try_from(t).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::{Sample, SampleRun};

    const P: Exactness = Exactness::Progressive;
    const F: Exactness = Exactness::Fragmented;

    fn placed(base: u64, offsets: &[i32]) -> Placed {
        Placed {
            output: 0,
            base_decode_time: base,
            runs: vec![SampleRun {
                data_offset: 0,
                samples: offsets
                    .iter()
                    .map(|&o| Sample {
                        duration: 3600,
                        size: 1,
                        flags: 0,
                        composition_offset: o,
                    })
                    .collect(),
            }],
            dropped: 0,
        }
    }

    #[test]
    fn b_frames_start_at_the_first_picture() {
        // I P B B at 25 fps with 2 B-frames: presented 2, 5, 3, 4 frames after decode 0.
        let mut p = Presentation::default();
        p.video(
            &placed(0, &[7200, 14_400, 3600, 3600]),
            Some((Instant::now(), 1)),
            90_000,
            None,
        );
        assert_eq!(p.start(P), Some(7200));
        assert_eq!(p.video_duration(P), Some(4 * 3600));
        let edits = p.edits(90_000, None, P).unwrap();
        assert_eq!(
            edits[0],
            [Edit {
                duration: 14_400,
                media_time: Some(7200)
            }]
        );
    }

    /// Found by the `clip_writer` fuzz target: a start past `i64::MAX` was written into the
    /// signed `elst` media time and read back negative. Such a clip gets no edit list.
    #[test]
    fn a_start_an_edit_list_cannot_hold_gets_none() {
        let mut p = Presentation::default();
        p.video(
            &placed(i64::MAX as u64 + 1, &[0; 4]),
            Some((Instant::now(), 1)),
            90_000,
            None,
        );
        assert!(p.video_duration(P).is_some());
        assert_eq!(p.edits(90_000, None, P), None);
        let mut p = Presentation::default();
        p.video(
            &placed(i64::MAX as u64 - 4 * 3600, &[0; 4]),
            Some((Instant::now(), 1)),
            90_000,
            None,
        );
        assert!(p.edits(90_000, None, P).is_some());
    }

    #[test]
    fn audio_is_shown_from_the_first_picture_to_the_video_end() {
        let t0 = Instant::now();
        // 10 frames from 3 frames (120 ms) on; the part's first frame arrived at t0.
        let mut p = Presentation::default();
        p.video(&placed(3 * 3600, &[0; 10]), Some((t0, 1)), 90_000, None);
        assert_eq!(p.start(P), Some(3 * 3600));
        assert_eq!(p.video_duration(P), Some(10 * 3600));
        assert_eq!(p.started_at(P), Some(t0));
        // Audio from 0 to 1 s at 48 kHz: shown from 120 ms, cut at the video's end (520 ms).
        p.audio(&Placed {
            output: 1,
            base_decode_time: 0,
            runs: Vec::new(),
            dropped: 0,
        });
        let edits = p.edits(90_000, Some((48_000, 48_000)), P).unwrap();
        assert_eq!(
            edits[1],
            [Edit {
                duration: 10 * 3600,
                media_time: Some(5760)
            }]
        );
    }

    #[test]
    fn late_audio_gets_a_silence_first() {
        let mut p = Presentation::default();
        p.video(
            &placed(0, &[0; 25]),
            Some((Instant::now(), 1)),
            90_000,
            None,
        );
        p.audio(&Placed {
            output: 1,
            base_decode_time: 4800,
            runs: Vec::new(),
            dropped: 0,
        });
        let edits = p.edits(90_000, Some((48_000, 48_000)), P).unwrap();
        assert_eq!(
            edits[1],
            [
                Edit {
                    duration: 9000,
                    media_time: None
                },
                Edit {
                    duration: 81_000,
                    media_time: Some(4800)
                }
            ]
        );
    }

    #[test]
    fn a_requested_start_inside_the_gop_is_the_frame_shown_then() {
        // A 1 s GOP at 25 fps arriving from t0; presentation asked from 0.5 s + 10 ms.
        let t0 = Instant::now();
        let mut p = Presentation::default();
        p.start_at(t0 + Duration::from_millis(510));
        p.video(&placed(0, &[0; 25]), Some((t0, 1)), 90_000, None);
        assert_eq!(
            p.start(P),
            Some(12 * 3600),
            "frame 12 is shown at 0.48..0.52 s"
        );
        assert_eq!(p.video_duration(P), Some(13 * 3600));
        assert_eq!(p.started_at(P), Some(t0 + Duration::from_millis(480)));
        // Fragmented players show the keyframe: the edits say so.
        assert_eq!(p.start(F), Some(0));
        assert_eq!(p.video_duration(F), Some(25 * 3600));
        // Asked from before the clip's first frame: it starts at the first picture.
        let mut early = Presentation::default();
        early.start_at(t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0));
        early.video(&placed(0, &[0; 25]), Some((t0, 1)), 90_000, None);
        assert_eq!(early.start(P), Some(0));
    }

    #[test]
    fn the_end_hides_frames_shown_after_the_cut() {
        // I P B B in decode order, shown I B B P from one frame on; cut after the second.
        let mut p = Presentation::default();
        p.video(
            &placed(0, &[3600, 10_800, 0, 0]),
            Some((Instant::now(), 1)),
            90_000,
            Some(3 * 3600),
        );
        // Shown: I at 1, B at 2, B at 3 (the cut), P at 4 frames.
        assert_eq!(p.start(P), Some(3600));
        assert_eq!(p.video_duration(P), Some(2 * 3600), "I and the first B");
        assert_eq!(p.video_duration(F), Some(4 * 3600), "every frame written");
    }

    #[test]
    fn later_anchors_of_the_first_stream_place_the_start_again() {
        // The first part's arrival was estimated 0.4 s late; the next part's is right.
        let t0 = Instant::now();
        let mut p = Presentation::default();
        p.start_at(t0 + Duration::from_millis(500));
        p.video(
            &placed(0, &[0; 25]),
            Some((t0 + Duration::from_millis(400), 1)),
            90_000,
            None,
        );
        assert_eq!(
            p.start(P),
            Some(2 * 3600),
            "0.1 s into the first anchor's clock"
        );
        p.video(
            &placed(25 * 3600, &[0; 25]),
            Some((t0 + Duration::from_secs(1), 1)),
            90_000,
            None,
        );
        assert_eq!(p.start(P), Some(12 * 3600), "0.5 s on the settled clock");
        assert_eq!(p.started_at(P), Some(t0 + Duration::from_millis(480)));
        // A part of another stream (after a reconnect) does not move it.
        p.video(
            &placed(50 * 3600, &[0; 25]),
            Some((t0 + Duration::from_secs(9), 2)),
            90_000,
            None,
        );
        assert_eq!(p.start(P), Some(12 * 3600));
    }
}
