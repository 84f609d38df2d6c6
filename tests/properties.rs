//! Property tests over generated streams:
//!
//! - box round-trips: fragments written by preroll's `moof` writer read back through its
//!   parser with every sample field, run offset and decode time intact;
//! - rebasing: any run of streams (reconnects with unrelated timestamps, other timescales,
//!   A/V offsets) goes through a real `Recording` into a clip whose samples are the input's
//!   samples, bytes unchanged, placed on one timeline that starts at 0, never goes back,
//!   keeps each stream's spacing and A/V offset to within one tick, and joins streams
//!   without a gap.
//!
//! The sample entries are real ones (avc1 and mp4a from the bundled sample's init).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use preroll::mp4::moof::{TrafSpec, write_moof};
use preroll::mp4::moov::{MovieSpec, TrackSpec, write_init};
use preroll::mp4::write::mdat_header;
use preroll::mp4::{
    Boxes, FourCc, Fragment, InitSegment, Matrix, MediaData, Sample, SampleRun, TrackKind,
};
use preroll::recorder::{ClipOptions, Recording};
use preroll::segment::Segment;
use proptest::prelude::*;

const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;
const VIDEO_TIMESCALES: [u32; 4] = [90_000, 25_000, 1_000, 12_800];
const AUDIO_TIMESCALES: [u32; 4] = [48_000, 44_100, 16_000, 8_000];

/// One generated sample: its bytes are made from `id`, unique in the whole test case.
#[derive(Debug, Clone)]
struct GenSample {
    duration: u32,
    size: u32,
    cts: i32,
}

#[derive(Debug, Clone)]
struct GenSegment {
    video: Vec<GenSample>,
    audio: Vec<GenSample>,
}

#[derive(Debug, Clone)]
struct GenStream {
    video_ts: u32,
    audio_ts: u32,
    /// First video decode time, in video ticks: unrelated between streams, as after a
    /// reconnect.
    video_start: u64,
    /// Audio's first decode time minus video's, in audio ticks.
    audio_lead: i64,
    segments: Vec<GenSegment>,
}

fn samples(
    ts: u32,
    n: std::ops::Range<usize>,
    video: bool,
) -> impl Strategy<Value = Vec<GenSample>> {
    let (lo, hi) = if video {
        ((ts / 60).max(1), (ts / 10).max(2))
    } else {
        (512, 2048)
    };
    prop::collection::vec(
        (lo..=hi, 1u32..300, 0u32..3).prop_map(move |(duration, size, b)| GenSample {
            duration,
            size,
            cts: if video { (b * duration) as i32 } else { 0 },
        }),
        n,
    )
}

fn stream() -> impl Strategy<Value = GenStream> {
    (0..VIDEO_TIMESCALES.len(), 0..AUDIO_TIMESCALES.len())
        .prop_flat_map(|(v, a)| {
            let (vts, ats) = (VIDEO_TIMESCALES[v], AUDIO_TIMESCALES[a]);
            let segment = (samples(vts, 1..7, true), samples(ats, 1..7, false))
                .prop_map(|(video, audio)| GenSegment { video, audio });
            (
                Just(vts),
                Just(ats),
                (1u64 << 20)..(1u64 << 40),
                -i64::from(ats / 2)..i64::from(ats / 2),
                prop::collection::vec(segment, 1..5),
            )
        })
        .prop_map(
            |(video_ts, audio_ts, video_start, audio_lead, segments)| GenStream {
                video_ts,
                audio_ts,
                video_start,
                audio_lead,
                segments,
            },
        )
}

/// The bundled sample's sample entries (avc1, mp4a): real codec configurations.
fn real_entries() -> (Bytes, Bytes) {
    let raw = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample/init.mp4"))
        .expect("assets/sample/init.mp4");
    let init = InitSegment::parse(Bytes::from(raw), 0).expect("sample init");
    let v = init.video().expect("video").sample_entries[0].bytes.clone();
    let a = init.audio().expect("audio").sample_entries[0].bytes.clone();
    (v, a)
}

fn init_for(s: &GenStream) -> Arc<InitSegment> {
    let (v, a) = real_entries();
    let track = |track_id, kind, timescale, entry: Bytes| TrackSpec {
        track_id,
        kind,
        timescale,
        language: 0x55c4,
        width: if kind == TrackKind::Video { 640 } else { 0 },
        height: if kind == TrackKind::Video { 360 } else { 0 },
        matrix: Matrix::IDENTITY,
        duration: 0,
        sample_entries: vec![entry],
        edits: Vec::new(),
    };
    let movie = MovieSpec {
        timescale: 1000,
        duration: 0,
        creation_time: 0,
        fragment_duration: None,
        tracks: vec![
            track(1, TrackKind::Video, s.video_ts, v),
            track(2, TrackKind::Audio, s.audio_ts, a),
        ],
    };
    Arc::new(InitSegment::parse(Bytes::from(write_init(&movie)), 0).expect("our init parses"))
}

/// What one input sample must become in the clip.
#[derive(Debug, Clone)]
struct Expected {
    stream: usize,
    dts: u64,
    timescale: u32,
    sample: Sample,
    bytes: Vec<u8>,
}

fn payload(id: u64, size: u32) -> Vec<u8> {
    id.to_le_bytes()
        .iter()
        .copied()
        .cycle()
        .take(size as usize)
        .collect()
}

/// A sample as written, with its bytes.
type Written = (Sample, Vec<u8>);

/// One fragment (`moof` + `mdat`) holding a video and an audio run; returns its bytes and the
/// samples as written.
fn fragment(
    sequence: u32,
    segment: &GenSegment,
    bases: (u64, u64),
    next_id: &mut u64,
) -> (Vec<u8>, Vec<Written>, Vec<Written>) {
    let mut data = Vec::new();
    let mut make = |specs: &[GenSample], video: bool| {
        specs
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let flags = if !video || i == 0 { SYNC } else { NON_SYNC };
                let bytes = payload(*next_id, g.size);
                *next_id += 1;
                data.extend_from_slice(&bytes);
                let s = Sample {
                    duration: g.duration,
                    size: g.size,
                    flags,
                    composition_offset: g.cts,
                };
                (s, bytes)
            })
            .collect::<Vec<_>>()
    };
    let video = make(&segment.video, true);
    let audio = make(&segment.audio, false);
    let video_len: u64 = video.iter().map(|(s, _)| u64::from(s.size)).sum();
    let runs_v = [SampleRun {
        data_offset: 0,
        samples: video.iter().map(|(s, _)| *s).collect(),
    }];
    let runs_a = [SampleRun {
        data_offset: video_len,
        samples: audio.iter().map(|(s, _)| *s).collect(),
    }];
    let header = mdat_header(data.len() as u64);
    let trafs = [
        TrafSpec {
            track_id: 1,
            sample_description_index: 1,
            base_decode_time: bases.0,
            runs: &runs_v,
        },
        TrafSpec {
            track_id: 2,
            sample_description_index: 1,
            base_decode_time: bases.1,
            runs: &runs_a,
        },
    ];
    let mut out = write_moof(sequence, &trafs, header.len() as u64).expect("small offsets");
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    (out, video, audio)
}

/// The stream's first audio decode time, in audio ticks.
fn audio_first(s: &GenStream) -> u64 {
    let t = i128::from(s.video_start) * i128::from(s.audio_ts) / i128::from(s.video_ts)
        + i128::from(s.audio_lead);
    u64::try_from(t).expect("positive")
}

/// The segments of every stream, and the samples expected per track kind (video, audio).
fn build(streams: &[GenStream]) -> (Vec<Segment>, [Vec<Expected>; 2]) {
    let mut segments = Vec::new();
    let mut expected: [Vec<Expected>; 2] = [Vec::new(), Vec::new()];
    let (mut sequence, mut next_id) = (0u64, 0u64);
    for (k, s) in streams.iter().enumerate() {
        let init = init_for(s);
        let mut v_dts = s.video_start;
        let mut a_dts = audio_first(s);
        for seg in &s.segments {
            sequence += 1;
            let (bytes, video, audio) =
                fragment(sequence as u32, seg, (v_dts, a_dts), &mut next_id);
            let fragments = Fragment::parse_all(&Bytes::from(bytes), 0, &init).expect("parses");
            segments.push(Segment::new(sequence, k as u64, init.clone(), fragments));
            for (track, list, dts, ts) in [
                (0, video, &mut v_dts, s.video_ts),
                (1, audio, &mut a_dts, s.audio_ts),
            ] {
                for (sample, bytes) in list {
                    expected[track].push(Expected {
                        stream: k,
                        dts: *dts,
                        timescale: ts,
                        sample,
                        bytes,
                    });
                    *dts += u64::from(sample.duration);
                }
            }
        }
    }
    (segments, expected)
}

/// A sample as the clip holds it.
#[derive(Debug, Clone)]
struct Got {
    dts: u64,
    sample: Sample,
    bytes: Vec<u8>,
}

/// Reads a clip back with preroll's parser: per track kind (video, audio), the samples with
/// their decode times and bytes, and the track's timescale.
fn read_clip(path: &Path) -> [(u32, Vec<Got>); 2] {
    let file = Bytes::from(std::fs::read(path).expect("read clip"));
    // The fragments as written (finishing hid them; fuzz/bodies.rs checks the progressive
    // tables against them).
    let raw = preroll::mp4::hidden::as_written(&file)
        .expect("top-level boxes")
        .map_or(file, |p| p.fragmented);
    let init = InitSegment::parse(raw.clone(), 0).expect("clip header");
    let moov_end = Boxes::new(&raw, 0)
        .map(|b| b.expect("top-level box"))
        .find(|b| b.kind == FourCc(*b"moov"))
        .map(|b| b.offset + b.size())
        .expect("moov");
    let fragments =
        Fragment::parse_all(&raw.slice(moov_end as usize..), moov_end, &init).expect("fragments");
    let mut out = [(0, Vec::new()), (0, Vec::new())];
    for (slot, kind) in [(0, TrackKind::Video), (1, TrackKind::Audio)] {
        let Some(track) = init.tracks.iter().find(|t| t.kind == kind) else {
            continue;
        };
        out[slot].0 = track.timescale;
        for f in &fragments {
            let MediaData::Memory(data) = &f.data else {
                panic!("in-memory fragment")
            };
            let Some(t) = f.track(track.track_id) else {
                continue;
            };
            let mut dts = t.base_decode_time.expect("tfdt");
            for r in &t.runs {
                let mut at = r.data_offset as usize;
                for s in &r.samples {
                    out[slot].1.push(Got {
                        dts,
                        sample: *s,
                        bytes: data[at..at + s.size as usize].to_vec(),
                    });
                    at += s.size as usize;
                    dts += u64::from(s.duration);
                }
            }
        }
    }
    out
}

fn rescale(ticks: i128, from: u32, to: u32) -> i128 {
    (ticks * i128::from(to) * 2 + i128::from(from)).div_euclid(2 * i128::from(from))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `moof` writer → parser: every sample field, the runs' offsets and the decode time.
    #[test]
    fn fragments_round_trip(
        seg in (samples(90_000, 1..40, true), samples(48_000, 0..40, false))
            .prop_map(|(video, audio)| GenSegment { video, audio }),
        sequence in 1u32..u32::MAX,
        bases in (0u64..u64::MAX / 2, 0u64..u64::MAX / 2),
    ) {
        let s = GenStream { video_ts: 90_000, audio_ts: 48_000, video_start: 0, audio_lead: 0, segments: vec![] };
        let init = init_for(&s);
        let (bytes, video, audio) = fragment(sequence, &seg, bases, &mut 0);
        let fragments = Fragment::parse_all(&Bytes::from(bytes), 0, &init).expect("parses");
        prop_assert_eq!(fragments.len(), 1);
        let f = &fragments[0];
        prop_assert_eq!(f.sequence, sequence);
        let MediaData::Memory(data) = &f.data else { panic!("memory") };
        for (track_id, written, base) in [(1, &video, bases.0), (2, &audio, bases.1)] {
            let t = f.track(track_id).expect("traf");
            prop_assert_eq!(t.base_decode_time, Some(base));
            let got: Vec<Written> = t.runs.iter().flat_map(|r| {
                let mut at = r.data_offset as usize;
                r.samples.iter().map(move |s| {
                    let b = data[at..at + s.size as usize].to_vec();
                    at += s.size as usize;
                    (*s, b)
                }).collect::<Vec<_>>()
            }).collect();
            prop_assert_eq!(&got, written);
        }
    }

    /// Streams → `Recording` → clip: see the module comment for what must hold.
    #[test]
    fn rebasing_keeps_every_sample_on_one_gapless_timeline(
        streams in prop::collection::vec(stream(), 1..4),
    ) {
        let (segments, expected) = build(&streams);
        let dir = tempfile::Builder::new().prefix("preroll-prop").tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir()).expect("tempdir");
        let path = dir.path().join("clip.mp4");
        let mut rec = Recording::create(&path, ClipOptions::default()).expect("create");
        for s in &segments {
            rec.write_segment(s).expect("segment written");
        }
        let summary = rec.finish().expect("finish");
        prop_assert_eq!(summary.dropped_samples, 0);
        prop_assert_eq!(summary.discontinuities.len(), streams.len() - 1);
        let got = read_clip(&path);

        // Per stream and track kind: first output time, and end of its last sample.
        let mut firsts = vec![[None::<(u64, u32)>; 2]; streams.len()];
        let mut ends = vec![[0u64; 2]; streams.len()];
        for kind in 0..2 {
            let (ts, got) = (&got[kind].0, &got[kind].1);
            let want = &expected[kind];
            prop_assert_eq!(got.len(), want.len(), "kind {} sample count", kind);
            let mut stream_first: Option<(usize, u64, u64)> = None; // (stream, in dts, out dts)
            let mut prev_end = 0u64;
            for (g, w) in got.iter().zip(want) {
                prop_assert_eq!(&g.bytes, &w.bytes, "sample bytes copied as they are");
                prop_assert_eq!(g.sample.size, w.sample.size);
                prop_assert_eq!(g.sample.is_sync(), w.sample.is_sync());
                prop_assert!(g.dts >= prev_end, "kind {}: dts {} before the previous end {}", kind, g.dts, prev_end);
                prev_end = g.dts + u64::from(g.sample.duration);
                match stream_first {
                    Some((k, in0, out0)) if k == w.stream => {
                        // Spacing within a stream, to within a tick of the exact rescale.
                        let want_out = rescale(i128::from(w.dts - in0), w.timescale, *ts);
                        let off = i128::from(g.dts - out0) - want_out;
                        prop_assert!(off.abs() <= 1, "kind {}: drift {} ticks", kind, off);
                    }
                    _ => {
                        stream_first = Some((w.stream, w.dts, g.dts));
                        firsts[w.stream][kind] = Some((g.dts, *ts));
                    }
                }
                let want_cts = rescale(i128::from(w.dts) + i128::from(w.sample.composition_offset), w.timescale, *ts)
                    - rescale(i128::from(w.dts), w.timescale, *ts);
                prop_assert!((i128::from(g.sample.composition_offset) - want_cts).abs() <= 1);
                ends[w.stream][kind] = prev_end;
            }
        }
        let secs = |(t, ts): (u64, u32)| t as f64 / f64::from(ts);
        for (k, s) in streams.iter().enumerate() {
            let [Some(v), Some(a)] = firsts[k] else { panic!("stream {k} lost a track") };
            // A/V offset inside the stream survives.
            let want = audio_first(s) as f64 / f64::from(s.audio_ts)
                - s.video_start as f64 / f64::from(s.video_ts);
            let have = secs(a) - secs(v);
            let tick = 1.0 / f64::from(v.1.min(a.1)) + 1e-9;
            prop_assert!((have - want).abs() <= 2.0 * tick, "stream {}: A/V {} s, input {} s", k, have, want);
            // The first stream starts the clip at 0; each later one starts where the media
            // before it ends, on the track that constrains it (no gap).
            let gap = if k == 0 {
                secs(v).min(secs(a))
            } else {
                let gv = secs(v) - ends[k - 1][0] as f64 / f64::from(v.1);
                let ga = secs(a) - ends[k - 1][1] as f64 / f64::from(a.1);
                prop_assert!(gv >= -1e-9 && ga >= -1e-9, "stream {} overlaps: {} {}", k, gv, ga);
                gv.min(ga)
            };
            prop_assert!(gap.abs() <= 2.0 * tick, "stream {} starts {} s after the media before it", k, gap);
        }
    }
}

/// A Matroska file of the fuzz seeds (real media from ffmpeg and GStreamer).
fn matroska_seed(which: usize) -> Vec<u8> {
    let names = [
        "h264-aac.mkv",
        "h264-bframes-pcm.mkv",
        "h265.mkv",
        "live.mkv",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/matroska");
    std::fs::read(dir.join(names[which % names.len()])).expect("matroska seed")
}

/// Per track, each frame's presentation time and bytes, as the Matroska reader gives them;
/// checks on the way that params come first and video decode times strictly increase.
fn matroska_frames(data: &[u8]) -> Result<Vec<Vec<(i64, Bytes)>>, TestCaseError> {
    use preroll::source::{SourceEvent, matroska_events};
    let (events, _error) = matroska_events(data, 20_000);
    let mut tracks: Vec<Vec<(i64, Bytes)>> = Vec::new();
    let mut announced = false;
    let mut last_video = None;
    for e in events {
        match e {
            SourceEvent::Params(p) => {
                prop_assert!(!p.is_empty());
                announced = true;
                tracks.resize(tracks.len().max(p.len()), Vec::new());
            }
            SourceEvent::Frame(f) => {
                prop_assert!(announced, "a frame before the params");
                prop_assert!(f.track < tracks.len());
                let (Some(dts), Some(pts)) = (f.dts, f.pts) else {
                    return Err(TestCaseError::fail("a frame without both times"));
                };
                if f.track == 0 {
                    prop_assert!(
                        last_video.is_none_or(|l| dts > l),
                        "video dts {dts} after {last_video:?}"
                    );
                    last_video = Some(dts);
                }
                tracks[f.track].push((pts, f.data));
            }
            SourceEvent::Lost(_) => {}
        }
    }
    Ok(tracks)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Real Matroska files with bytes overwritten anywhere (sizes, IDs, lacing, timestamps):
    /// the reader never panics, and what it gives is in order.
    #[test]
    fn damaged_matroska_is_read_in_order_or_refused(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut data = matroska_seed(which);
        for (i, b) in edits {
            let at = i.index(data.len());
            data[at] = b;
        }
        matroska_frames(&data)?;
    }

    /// A file cut anywhere (a recording that stopped mid-write) gives, per track, the
    /// frames of the whole file up to the cut, then ends.
    #[test]
    fn a_cut_matroska_file_gives_a_prefix_of_its_frames(which in 0usize..4, cut in any::<prop::sample::Index>()) {
        let data = matroska_seed(which);
        let whole = matroska_frames(&data)?;
        let part = matroska_frames(&data[..cut.index(data.len())])?;
        for (t, frames) in part.iter().enumerate() {
            prop_assert!(whole.get(t).is_some_and(|w| w.starts_with(frames)), "track {t}");
        }
    }
}
