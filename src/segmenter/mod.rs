//! The segmenter stage: frames → parts ([`Segment`]s), cut at frame boundaries.
//!
//! Frames first pass [`Hygiene`]; then each becomes a sample once the next frame of its track
//! gives its duration. A video keyframe always starts a new part, and so a new segment (one
//! GOP); within a GOP a part closes before it would exceed the part duration (0.5 s by
//! default), so a part is out in the ring while the GOP is still being built. A recording can
//! then follow the camera part by part: a clip ends within a part of the asked instant without
//! waiting for the next keyframe, and a `kill -9` loses at most the part in progress. Each part
//! is one fragment: a video run and an audio run over one shared payload. The init is built
//! once per stream (and again when parameters change) and shared.

mod adts;
mod hygiene;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::mp4::fragment::SAMPLE_NON_SYNC;
use crate::mp4::moov::{MovieSpec, TrackSpec, write_init};
use crate::mp4::{
    Fragment, InitSegment, Matrix, MediaData, Mp4Error, Sample, SampleRun, TrackFragment, TrackKind,
};
use crate::segment::Segment;
use crate::source::{Frame, TrackParams};

pub use adts::strip_adts;
pub use hygiene::{Dropped, Hygiene, HygieneError, HygieneOptions};

/// `sample_depends_on = 2`: an independently decodable sample.
const SYNC_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1` + non-sync.
const NON_SYNC_FLAGS: u32 = 0x0100_0000 | SAMPLE_NON_SYNC;
/// Language code "und" packed as in `mdhd`.
const UNDETERMINED: u16 = 0x55c4;
/// Decode times are offset by this much so that samples slightly before a stream's first
/// timestamp (audio around the first keyframe) still have a non-negative `tfdt`.
const HEADROOM: Duration = Duration::from_secs(10);

/// Longest part by default: fine enough that a clip's end and a crash's loss are bounded by
/// half a second, coarse enough that the headers of a part (a `moof` of about 100 bytes plus
/// 8–16 bytes per sample) stay a small fraction of the media (see BENCHMARKS.md).
pub const DEFAULT_PART: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct SegmenterOptions {
    /// A part closes before its video would exceed this (at least one frame per part).
    pub part_duration: Duration,
    /// A camera that sends no keyframe for this long is warned about (once per GOP): no clip
    /// can start inside such a GOP (see `Ring::lookback`).
    pub max_gop: Duration,
}

impl Default for SegmenterOptions {
    fn default() -> Self {
        SegmenterOptions {
            part_duration: DEFAULT_PART,
            max_gop: Duration::from_secs(30),
        }
    }
}

/// Media of the segment being built.
#[derive(Debug, Default)]
struct Building {
    /// Per track: samples and their bytes, in decode order.
    samples: Vec<Vec<(Sample, Bytes)>>,
    first_dts: Vec<Option<i64>>,
    received: Option<Instant>,
    video_ticks: u64,
}

#[derive(Debug)]
pub struct Segmenter {
    stream_id: u64,
    next_sequence: u64,
    options: SegmenterOptions,
    hygiene: Hygiene,
    params: Vec<TrackParams>,
    init: Option<Arc<InitSegment>>,
    video: Option<usize>,
    /// Per track, the frame waiting for the next one to know its duration.
    pending: Vec<Option<Frame>>,
    /// Per track, the last known duration (used for the final frame).
    last_duration: Vec<u32>,
    /// Video since the last keyframe, in video ticks.
    gop_ticks: u64,
    current: Building,
}

impl Segmenter {
    /// A segmenter for one connection (`stream_id`); its segments are numbered from
    /// `next_sequence` on.
    pub fn new(
        stream_id: u64,
        next_sequence: u64,
        options: SegmenterOptions,
        hygiene: HygieneOptions,
    ) -> Self {
        Segmenter {
            stream_id,
            next_sequence,
            options,
            hygiene: Hygiene::new(hygiene),
            params: Vec::new(),
            init: None,
            video: None,
            pending: Vec::new(),
            last_duration: Vec::new(),
            gop_ticks: 0,
            current: Building::default(),
        }
    }

    /// The sequence number the next segment will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Media bytes held for the segment in progress (and frames awaiting their duration).
    pub fn pending_bytes(&self) -> u64 {
        let building: usize = self
            .current
            .samples
            .iter()
            .flatten()
            .map(|(_, d)| d.len())
            .sum();
        let waiting: usize = self.pending.iter().flatten().map(|f| f.data.len()).sum();
        (building + waiting) as u64
    }

    pub fn dropped(&self) -> Dropped {
        self.hygiene.dropped
    }

    pub fn params(&self) -> &[TrackParams] {
        &self.params
    }

    /// New track parameters. If they differ from the current ones, the segment in progress
    /// is closed (it belongs to the old init) and returned.
    pub fn set_params(&mut self, params: Vec<TrackParams>) -> Result<Option<Segment>, Mp4Error> {
        if params == self.params {
            return Ok(None);
        }
        let closed = if self.init.is_some() {
            self.close_all()
        } else {
            None
        };
        self.init = Some(Arc::new(build_init(&params)?));
        self.video = params.iter().position(|p| p.kind == TrackKind::Video);
        self.hygiene.set_params(&params);
        self.pending = vec![None; params.len()];
        self.last_duration = vec![0; params.len()];
        self.current = Building::new(params.len());
        self.params = params;
        Ok(closed)
    }

    /// Takes one frame; returns any segment it completed.
    pub fn push(&mut self, frame: Frame) -> Result<Vec<Segment>, HygieneError> {
        if self.init.is_none() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for f in self.hygiene.push(frame)? {
            if let Some(s) = self.take(f) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Ends the stream: everything held goes out, the remainder as the last segment.
    pub fn finish(&mut self) -> Vec<Segment> {
        let held = self.hygiene.flush();
        let mut out: Vec<Segment> = held.into_iter().filter_map(|f| self.take(f)).collect();
        out.extend(self.close_all());
        out
    }

    fn take(&mut self, frame: Frame) -> Option<Segment> {
        let track = frame.track;
        let dts = frame.dts.unwrap_or(0);
        if let Some(prev) = self.pending.get_mut(track).and_then(Option::take) {
            let fallback = prev.duration.unwrap_or(self.last_duration[track]);
            let derived = dts - prev.dts.unwrap_or(0);
            let d = u32::try_from(derived)
                .ok()
                .filter(|&d| d > 0)
                .unwrap_or(fallback.max(1));
            self.last_duration[track] = d;
            self.add(prev, d);
        }
        let mut closed = None;
        let is_video = Some(track) == self.video;
        if is_video && self.current.video_ticks > 0 {
            let timescale = self.params[track].timescale;
            let part = ticks(self.options.part_duration, timescale).max(1);
            // The frame just taken will be about as long as the one before it.
            let next = u64::from(self.last_duration[track]);
            if frame.keyframe || self.current.video_ticks + next > part {
                closed = self.close();
            }
        }
        if is_video {
            if frame.keyframe {
                self.gop_ticks = 0;
            } else {
                let max = ticks(self.options.max_gop, self.params[track].timescale).max(1);
                let before = self.gop_ticks;
                self.gop_ticks += u64::from(self.last_duration[track]);
                if before < max && self.gop_ticks >= max {
                    tracing::warn!(
                        stream_id = self.stream_id,
                        "no keyframe for {:?}: clips cannot start until the next one",
                        self.options.max_gop
                    );
                }
            }
        }
        if let Some(slot) = self.pending.get_mut(track) {
            *slot = Some(frame);
        }
        closed
    }

    fn add(&mut self, frame: Frame, duration: u32) {
        let t = frame.track;
        let is_video = Some(t) == self.video;
        let (Some(dts), Some(pts)) = (frame.dts, frame.pts) else {
            return;
        };
        let flags = if !is_video || frame.keyframe {
            SYNC_FLAGS
        } else {
            NON_SYNC_FLAGS
        };
        let Ok(composition_offset) = i32::try_from(pts - dts) else {
            return;
        };
        let Ok(size) = u32::try_from(frame.data.len()) else {
            return;
        };
        if is_video {
            if self.current.received.is_none() {
                self.current.received = Some(frame.received);
            }
            self.current.video_ticks += u64::from(duration);
        }
        self.current.first_dts[t].get_or_insert(dts);
        self.current.samples[t].push((
            Sample {
                duration,
                size,
                flags,
                composition_offset,
            },
            frame.data,
        ));
    }

    /// Closes the current segment, keeping pending frames for the next.
    fn close(&mut self) -> Option<Segment> {
        let building = std::mem::replace(&mut self.current, Building::new(self.params.len()));
        self.build(building)
    }

    /// Adds every pending frame (with its last known duration) and closes.
    fn close_all(&mut self) -> Option<Segment> {
        for t in 0..self.pending.len() {
            if let Some(f) = self.pending[t].take() {
                let d = f.duration.unwrap_or(self.last_duration[t]).max(1);
                self.add(f, d);
            }
        }
        self.close()
    }

    fn build(&mut self, b: Building) -> Option<Segment> {
        let init = self.init.clone()?;
        if b.samples.iter().all(Vec::is_empty) {
            return None;
        }
        // The segment keeps the frames' own buffers (retina sizes each exactly): no copy, and
        // no moment where a GOP is held twice.
        let mut pieces: Vec<Bytes> = Vec::with_capacity(b.samples.iter().map(Vec::len).sum());
        let mut payload_len = 0u64;
        let mut tracks = Vec::new();
        for (t, samples) in b.samples.into_iter().enumerate() {
            let Some(first) = b.first_dts[t] else {
                continue;
            };
            let headroom = i64::try_from(ticks(HEADROOM, self.params[t].timescale)).unwrap_or(0);
            let Ok(base) = u64::try_from(first + headroom) else {
                continue;
            };
            let data_offset = payload_len;
            let mut run = Vec::with_capacity(samples.len());
            for (s, data) in samples {
                payload_len += data.len() as u64;
                pieces.push(data);
                run.push(s);
            }
            tracks.push(TrackFragment {
                track_id: t as u32 + 1,
                sample_description_index: 1,
                base_decode_time: Some(base),
                runs: vec![SampleRun {
                    data_offset,
                    samples: run,
                }],
            });
        }
        let fragment = Fragment {
            sequence: self.next_sequence as u32,
            tracks,
            data: MediaData::Pieces(pieces.into()),
        };
        let mut segment = Segment::new(self.next_sequence, self.stream_id, init, vec![fragment]);
        segment.received = b.received;
        self.next_sequence += 1;
        Some(segment)
    }
}

impl Building {
    fn new(tracks: usize) -> Self {
        Building {
            samples: vec![Vec::new(); tracks],
            first_dts: vec![None; tracks],
            received: None,
            video_ticks: 0,
        }
    }
}

fn ticks(d: Duration, timescale: u32) -> u64 {
    (d.as_nanos() * u128::from(timescale) / 1_000_000_000) as u64
}

/// The init segment for a stream's tracks (track ids 1, 2, … in order).
pub fn build_init(params: &[TrackParams]) -> Result<InitSegment, Mp4Error> {
    let tracks: Vec<TrackSpec> = params
        .iter()
        .enumerate()
        .map(|(i, p)| TrackSpec {
            track_id: i as u32 + 1,
            kind: p.kind,
            timescale: p.timescale,
            language: UNDETERMINED,
            width: p.width,
            height: p.height,
            matrix: Matrix::IDENTITY,
            duration: 0,
            sample_entries: vec![p.sample_entry.clone()],
            edits: Vec::new(),
        })
        .collect();
    let timescale = params
        .iter()
        .find(|p| p.kind == TrackKind::Video)
        .map_or(1000, |p| p.timescale);
    let bytes = write_init(&MovieSpec {
        timescale,
        duration: 0,
        creation_time: 0,
        fragment_duration: None,
        tracks,
    });
    InitSegment::parse(Bytes::from(bytes), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::Codec;

    /// A minimal avc1 entry is enough: the segmenter only carries it into the init.
    fn params(audio: bool) -> Vec<TrackParams> {
        let mut avc1 = vec![0u8; 8 + 78];
        avc1[..4].copy_from_slice(&(86u32).to_be_bytes());
        avc1[4..8].copy_from_slice(b"avc1");
        let mut out = vec![TrackParams {
            kind: TrackKind::Video,
            codec: Codec::H264,
            timescale: 90_000,
            sample_entry: Bytes::from(avc1),
            width: 640,
            height: 360,
        }];
        if audio {
            let mut mp4a = vec![0u8; 8 + 28];
            mp4a[..4].copy_from_slice(&(36u32).to_be_bytes());
            mp4a[4..8].copy_from_slice(b"mp4a");
            out.push(TrackParams {
                kind: TrackKind::Audio,
                codec: Codec::Aac,
                timescale: 48_000,
                sample_entry: Bytes::from(mp4a),
                width: 0,
                height: 0,
            });
        }
        out
    }

    fn frame(track: usize, pts: i64, keyframe: bool) -> Frame {
        Frame {
            track,
            pts: Some(pts),
            dts: None,
            duration: None,
            keyframe,
            data: Bytes::from(vec![track as u8; 10]),
            received: Instant::now(),
        }
    }

    /// 25 fps video with a keyframe every `gop` frames, and 48 kHz audio in 1024-sample frames.
    fn stream(seconds: i64, gop: i64) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut audio = 0i64;
        for i in 0..seconds * 25 {
            let pts = i * 3600;
            frames.push(frame(0, pts, i % gop == 0));
            while audio * 90_000 / 48_000 <= pts {
                frames.push(frame(1, audio, true));
                audio += 1024;
            }
        }
        frames
    }

    fn segment_all(frames: Vec<Frame>, options: SegmenterOptions) -> Vec<Segment> {
        let mut s = Segmenter::new(1, 1, options, HygieneOptions::default());
        assert!(s.set_params(params(true)).unwrap().is_none());
        let mut out = Vec::new();
        for f in frames {
            out.extend(s.push(f).unwrap());
        }
        out.extend(s.finish());
        out
    }

    /// Options that cut only at keyframes (parts longer than any GOP here).
    fn whole_gops() -> SegmenterOptions {
        SegmenterOptions {
            part_duration: Duration::from_secs(60),
            ..SegmenterOptions::default()
        }
    }

    #[test]
    fn cuts_at_every_keyframe_with_all_media_kept() {
        let segs = segment_all(stream(4, 25), whole_gops());
        assert_eq!(segs.len(), 4);
        assert_eq!(
            segs.iter().map(|s| s.sequence).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        for s in &segs {
            let video = s.fragments[0].track(1).unwrap();
            assert_eq!(video.sample_count(), 25);
            assert!(video.starts_with_sync());
            assert_eq!(video.samples().filter(|x| x.is_sync()).count(), 1);
            assert_eq!(s.duration, 90_000, "1 s of video");
            assert!(s.received.is_some());
        }
        let audio: usize = segs
            .iter()
            .map(|s| s.fragments[0].track(2).map_or(0, |t| t.sample_count()))
            .sum();
        assert_eq!(audio, stream(4, 25).iter().filter(|f| f.track == 1).count());
        // Decode times continue exactly from segment to segment.
        for w in segs.windows(2) {
            assert_eq!(w[0].start + w[0].duration, w[1].start);
        }
    }

    #[test]
    fn parts_never_exceed_the_part_duration_and_keyframes_start_new_ones() {
        // 25 fps, a keyframe every 2 s, parts of at most 0.5 s: 12 + 12 + 12 + 12 + 2 frames
        // per GOP (0.48 s each, then the rest), every GOP's first part led by its keyframe.
        let segs = segment_all(stream(6, 50), SegmenterOptions::default());
        let frames: Vec<usize> = segs
            .iter()
            .map(|s| s.fragments[0].track(1).map_or(0, |t| t.sample_count()))
            .collect();
        assert_eq!(frames.iter().sum::<usize>(), 150);
        assert_eq!(&frames[..5], [12, 12, 12, 12, 2]);
        assert!(segs.iter().all(|s| s.duration <= 45_000));
        let heads: Vec<u64> = segs
            .iter()
            .filter(|s| s.starts_with_keyframe())
            .map(|s| s.start)
            .collect();
        assert_eq!(heads.len(), 3, "one part per GOP starts with its keyframe");
        assert_eq!(heads[1] - heads[0], 180_000);
        // Nothing lost or doubled, and every part continues where the last ended.
        for w in segs.windows(2) {
            assert_eq!(w[0].start + w[0].duration, w[1].start);
        }
        let audio: usize = segs
            .iter()
            .map(|s| s.fragments[0].track(2).map_or(0, |t| t.sample_count()))
            .sum();
        assert_eq!(audio, stream(6, 50).iter().filter(|f| f.track == 1).count());
    }

    #[test]
    fn a_stream_without_keyframes_is_still_cut_into_parts() {
        let mut frames = stream(5, 1000);
        frames.retain(|f| f.track == 0);
        let segs = segment_all(frames, SegmenterOptions::default());
        assert_eq!(segs.len(), 11, "125 frames in parts of 12");
        assert!(segs[0].starts_with_keyframe());
        assert!(segs[1..].iter().all(|s| !s.starts_with_keyframe()));
    }

    #[test]
    fn frames_before_the_first_keyframe_are_dropped() {
        let mut frames = stream(2, 25);
        // Start in the middle of a GOP: drop the first 10 video frames and their audio.
        let cut = frames
            .iter()
            .position(|f| f.track == 0 && f.pts == Some(10 * 3600))
            .unwrap();
        frames.drain(..cut);
        let mut s = Segmenter::new(1, 1, whole_gops(), HygieneOptions::default());
        s.set_params(params(true)).unwrap();
        let mut out = Vec::new();
        for f in frames {
            out.extend(s.push(f).unwrap());
        }
        out.extend(s.finish());
        assert_eq!(out.len(), 1);
        assert!(out[0].fragments[0].track(1).unwrap().starts_with_sync());
        assert!(s.dropped().before_keyframe > 10);
    }

    #[test]
    fn missing_timestamps_and_jumps_end_the_stream() {
        let mut s = Segmenter::new(1, 1, SegmenterOptions::default(), HygieneOptions::default());
        s.set_params(params(false)).unwrap();
        s.push(frame(0, 0, true)).unwrap();
        let mut untimed = frame(0, 0, false);
        untimed.pts = None;
        for _ in 0..6 {
            assert!(s.push(untimed.clone()).unwrap().is_empty());
        }
        assert_eq!(s.push(untimed).unwrap_err(), HygieneError::NoTimestamps(7));

        let mut s = Segmenter::new(1, 1, SegmenterOptions::default(), HygieneOptions::default());
        s.set_params(params(false)).unwrap();
        for i in 0..10 {
            s.push(frame(0, i * 3600, i == 0)).unwrap();
        }
        // Non-increasing: dropped quietly.
        s.push(frame(0, 3600, false)).unwrap();
        assert_eq!(s.dropped().non_increasing, 1);
        let err = s.push(frame(0, 31 * 90_000, false)).unwrap_err();
        assert!(err.to_string().contains("timestamp discontinuity"), "{err}");
    }

    #[test]
    fn changed_parameters_close_the_segment_and_bring_a_new_init() {
        let mut s = Segmenter::new(1, 1, whole_gops(), HygieneOptions::default());
        s.set_params(params(false)).unwrap();
        for i in 0..30 {
            s.push(frame(0, i * 3600, i % 25 == 0)).unwrap();
        }
        let first_init = s.init.clone().unwrap();
        let mut p = params(false);
        p[0].width = 1280;
        let closed = s
            .set_params(p)
            .unwrap()
            .expect("segment in progress closed");
        assert_eq!(closed.fragments[0].track(1).unwrap().sample_count(), 5);
        s.push(frame(0, 30 * 3600, true)).unwrap();
        let last = s.finish();
        assert_eq!(last.len(), 1);
        assert!(!Arc::ptr_eq(&first_init, &last[0].init));
        assert_eq!(last[0].init.video().unwrap().width, 1280);
    }
}
