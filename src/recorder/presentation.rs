//! What a clip presents, as an edit list: where presentation starts and how long it lasts.
//!
//! A clip starts decoding at a keyframe, and with B-frames that keyframe is presented one or
//! two frames after decoding starts: the edit list starts presentation at the first picture,
//! so players show it at time 0. It also ends presentation where the clip was cut (frames
//! decoded before the cut but shown after it stay in the file for the frames that reference
//! them), and lines audio up with the first picture.
//!
//! (A start inside the GOP, at `trigger - lookback` exactly, is an edit too; but Chromium and
//! ffmpeg honour an edit that skips frames only in progressive MP4, not in the fragmented
//! clips written here, so clips start at the keyframe until they are finished progressive.)
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

/// Follows the video and audio written into a clip, to say at the end what it presents.
#[derive(Debug, Clone, Default)]
pub struct Presentation {
    /// The first video part's anchor.
    first: Option<Anchor>,
    /// The earliest presentation time written: the clip's first picture.
    earliest: Option<i128>,
    /// End of the last frame presented.
    video_end: i128,
    /// Decode time of the first audio sample.
    audio_first: Option<i128>,
    /// Where the clip was cut (video output ticks): frames decoded before the cut but shown
    /// after it (B-frames reference them) are in the file, not in the presentation.
    cut: Option<i128>,
}

impl Presentation {
    /// Takes note of a placed video track fragment; `received` is when its part's first
    /// frame arrived (live media), `timescale` the video output timescale.
    pub fn video(&mut self, placed: &Placed, received: Option<Instant>) {
        let mut dts = i128::from(placed.base_decode_time);
        for s in placed.runs.iter().flat_map(|r| &r.samples) {
            let pts = dts + i128::from(s.composition_offset);
            if self.first.is_none()
                && let Some(at) = received
            {
                self.first = Some(Anchor { at, pts });
            }
            self.earliest = Some(self.earliest.map_or(pts, |e| e.min(pts)));
            self.video_end = self.video_end.max(pts + i128::from(s.duration));
            dts += i128::from(s.duration);
        }
    }

    /// The clip ends at `ticks` (video output ticks).
    pub fn end_at(&mut self, ticks: i128) {
        self.cut = Some(self.cut.map_or(ticks, |c| c.min(ticks)));
    }

    /// Takes note of a placed audio track fragment.
    pub fn audio(&mut self, placed: &Placed) {
        let first = i128::from(placed.base_decode_time);
        self.audio_first = Some(self.audio_first.map_or(first, |a| a.min(first)));
    }

    /// Where presentation starts, in video output ticks: the first picture.
    pub fn start(&self) -> Option<i128> {
        self.earliest
    }

    /// The instant of the clip's first picture on the camera's clock (live clips only).
    pub fn started_at(&self, timescale: u32) -> Option<Instant> {
        let anchor = self.first?;
        Some(anchor.instant(self.start()?, timescale))
    }

    /// Video presented, in video output ticks.
    pub fn video_duration(&self) -> Option<u64> {
        let start = self.start()?;
        let end = self.cut.map_or(self.video_end, |c| c.min(self.video_end));
        u64::try_from(end - start).ok()
    }

    /// The edit lists: `[video, audio?]`, durations in movie ticks (the video timescale).
    /// `audio` is the audio track's timescale and where its media ends (its decode end), when
    /// the clip has one. `None` when no video was written.
    pub fn edits(&self, video_ts: u32, audio: Option<(u32, u64)>) -> Option<Vec<Vec<Edit>>> {
        let start = self.start()?;
        let video_len = self.video_duration()?;
        let mut out = vec![vec![Edit {
            duration: video_len,
            media_time: Some(u64::try_from(start).ok()?),
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
                    media_time: Some(u64::try_from(shown_from).ok()?),
                });
            }
            out.push(edits);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::{Sample, SampleRun};

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
            Some(Instant::now()),
        );
        assert_eq!(p.start(), Some(7200));
        assert_eq!(p.video_duration(), Some(4 * 3600));
        let edits = p.edits(90_000, None).unwrap();
        assert_eq!(
            edits[0],
            [Edit {
                duration: 14_400,
                media_time: Some(7200)
            }]
        );
        // Cut after the second picture: the P-frame decoded before it is not presented.
        p.end_at(7200 + 2 * 3600);
        assert_eq!(p.video_duration(), Some(2 * 3600));
    }

    #[test]
    fn audio_is_shown_from_the_first_picture_to_the_video_end() {
        let t0 = Instant::now();
        // 10 frames from 3 frames (120 ms) on; the part's first frame arrived at t0.
        let mut p = Presentation::default();
        p.video(&placed(3 * 3600, &[0; 10]), Some(t0));
        assert_eq!(p.start(), Some(3 * 3600));
        assert_eq!(p.video_duration(), Some(10 * 3600));
        assert_eq!(p.started_at(90_000), Some(t0));
        // Audio from 0 to 1 s at 48 kHz: shown from 120 ms, cut at the video's end (520 ms).
        p.audio(&Placed {
            output: 1,
            base_decode_time: 0,
            runs: Vec::new(),
            dropped: 0,
        });
        let edits = p.edits(90_000, Some((48_000, 48_000))).unwrap();
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
        p.video(&placed(0, &[0; 25]), Some(Instant::now()));
        p.audio(&Placed {
            output: 1,
            base_decode_time: 4800,
            runs: Vec::new(),
            dropped: 0,
        });
        let edits = p.edits(90_000, Some((48_000, 48_000))).unwrap();
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
}
