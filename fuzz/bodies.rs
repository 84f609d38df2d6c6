//! What each fuzz target does with its input. Shared by the `cargo fuzz` binaries
//! (`fuzz/fuzz_targets/`) and by `tests/fuzz_regressions.rs`, which replays the seed corpus
//! and every input a fuzzer ever failed on, in the normal test suite.
//!
//! Errors are the expected answer to most inputs. A body panics only when preroll breaks a
//! promise: a panic inside the parser or writer, a parsed run pointing outside its payload, a
//! clip that preroll wrote but cannot read back, or one whose decode times go backwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use preroll::mp4::hidden::{AsWritten, as_written};
use preroll::mp4::samples::SampleTable;
use preroll::mp4::{BoxRef, Boxes, FourCc, Fragment, InitSegment};
use preroll::recorder::{ClipOptions, RecordError, Recording, SegmentOutcome, inspect, recover};
use preroll::segment::Segment;
use preroll::source::{SourceEvent, matroska_events, rtsp_hidden};

/// Boxes whose body is a sequence of boxes (ISO/IEC 14496-12), walked into by [`boxes`].
const CONTAINERS: [&[u8; 4]; 14] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts", b"dinf",
    b"udta", b"mfra", b"meta", b"sinf",
];

/// Events taken from one Matroska input at most (a tiny file can lace thousands of frames).
const MAX_EVENTS: usize = 20_000;

/// A sample table can claim billions of samples in a few bytes; iterate this many at most.
const MAX_SAMPLES: usize = 100_000;

/// The box reader on any bytes: every box of the tree, then the init and sample tables.
/// Returns how many boxes were read.
pub fn boxes(data: &[u8]) -> usize {
    let count = walk(Boxes::new(data, 0), data.len() as u64, 0);
    let Ok(init) = InitSegment::parse(Bytes::copy_from_slice(data), 0) else {
        return count;
    };
    for_each_trak(&init.raw, |trak| {
        if let Ok(table) = SampleTable::parse(trak) {
            let mut dts = 0;
            for s in table.iter().take(MAX_SAMPLES) {
                assert!(
                    s.dts >= dts,
                    "sample table decode times go back: {} after {dts}",
                    s.dts
                );
                dts = s.dts;
            }
        }
    });
    count
}

fn walk(boxes: Boxes<'_>, end: u64, depth: usize) -> usize {
    let mut count = 0;
    for b in boxes {
        let Ok(b) = b else { break };
        count += 1;
        let body_end = b.body_offset() + b.body.len() as u64;
        assert!(
            b.offset + b.size() == body_end && body_end <= end,
            "{} box at {} (size {}) reaches past its container's end {end}",
            b.kind,
            b.offset,
            b.size()
        );
        if depth < 16 && CONTAINERS.iter().any(|k| b.kind == FourCc(**k)) {
            count += walk(b.children(), body_end, depth + 1);
        }
    }
    count
}

fn for_each_trak(raw: &[u8], mut f: impl FnMut(BoxRef<'_>)) {
    for b in Boxes::new(raw, 0).map_while(Result::ok) {
        if b.kind == FourCc(*b"moov") {
            for t in b.children().map_while(Result::ok) {
                if t.kind == FourCc(*b"trak") {
                    f(t);
                }
            }
        }
    }
}

/// Init and fragment parsing: `[u16 LE n][n bytes of init][fragments]`. Returns the number
/// of fragments parsed, if both parts parsed.
pub fn init_fragments(data: &[u8]) -> Option<usize> {
    let (init, rest, rest_at) = split_init(data);
    let init = InitSegment::parse(init, 0).ok()?;
    let fragments = Fragment::parse_all(&rest, rest_at, &init).ok()?;
    for f in &fragments {
        assert_runs_inside(f);
    }
    Some(fragments.len())
}

fn split_init(data: &[u8]) -> (Bytes, Bytes, u64) {
    let all = Bytes::copy_from_slice(data);
    if all.len() < 2 {
        return (all, Bytes::new(), 0);
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(all.len() - 2);
    (all.slice(2..2 + n), all.slice(2 + n..), 2 + n as u64)
}

/// Every sample a parsed fragment describes lies inside its `mdat` payload, so the writer can
/// slice it without checking again.
fn assert_runs_inside(f: &Fragment) {
    let payload = f.data.len();
    for t in &f.tracks {
        for r in &t.runs {
            assert!(
                r.data_offset.saturating_add(r.data_len()) <= payload,
                "track {} run at {} of {} bytes lies outside the {payload}-byte payload",
                t.track_id,
                r.data_offset,
                r.data_len()
            );
        }
    }
}

/// The clip writer fed arbitrary segments:
/// `[u16 LE n][n bytes of init]` then chunks `[flags u8][u16 LE len][len bytes]`.
/// Flags: bit 0 starts a new stream (a reconnect), bit 1 makes the chunk a new init (a codec
/// change); other chunks are a segment's `moof`+`mdat` pairs. Whatever the clip takes, the
/// finished file must read back with every sample written and decode times that never go
/// backwards. Returns the number of samples in the finished clip (0: no clip).
pub fn clip_writer(data: &[u8]) -> usize {
    let (init, mut rest, _) = split_init(data);
    let Ok(init) = InitSegment::parse(init, 0) else {
        return 0;
    };
    let mut init = Arc::new(init);
    let path = scratch_path("mp4");
    let mut recording = match Recording::create(&path, ClipOptions::default()) {
        Ok(r) => r,
        Err(e) => panic!("cannot create the scratch clip {}: {e}", path.display()),
    };
    let (mut sequence, mut stream_id, mut written) = (0u64, 0u64, 0usize);
    while rest.len() >= 3 {
        let flags = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let chunk = rest.slice(3..3 + len);
        rest = rest.slice(3 + len..);
        if flags & 1 != 0 {
            stream_id += 1;
        }
        if flags & 2 != 0 {
            if let Ok(i) = InitSegment::parse(chunk, 0) {
                init = Arc::new(i);
            }
            continue;
        }
        let Ok(fragments) = Fragment::parse_all(&chunk, 0, &init) else {
            continue;
        };
        sequence += 1;
        let segment = Segment::new(sequence, stream_id, init.clone(), fragments);
        match recording.write_segment(&segment) {
            Ok(SegmentOutcome::Written { samples, .. }) => written += samples,
            Ok(_) => {}
            Err(e) if e.is_fatal() => panic!("writing to a healthy scratch file failed: {e}"),
            Err(_) => {}
        }
    }
    match recording.finish() {
        Ok(summary) => {
            let (samples, _) = check_clip(&path);
            assert_eq!(samples, written, "samples in the clip vs samples written");
            assert_eq!(summary.bytes, file_len(&path));
            remove(&path);
            samples
        }
        Err(RecordError::NothingCaptured) => {
            assert_eq!(
                written, 0,
                "samples were written but the clip captured nothing"
            );
            assert!(!path.exists());
            0
        }
        Err(e) => panic!("finishing a clip on a healthy scratch file failed: {e}"),
    }
}

/// Recovery of an arbitrary `.partial`: a dry run and the real thing agree, and whatever is
/// recovered is a clip that reads back. Returns the number of fragments recovered (0: none).
pub fn recover_partial(data: &[u8]) -> usize {
    let path = scratch_path("mp4");
    let partial = PathBuf::from(format!("{}.partial", path.display()));
    if let Err(e) = std::fs::write(&partial, data) {
        panic!("cannot write {}: {e}", partial.display());
    }
    let plan = inspect(&partial);
    match recover(&partial) {
        Ok(r) => {
            let plan = match plan {
                Ok(p) => p,
                Err(e) => panic!("recover succeeded where inspect said: {e}"),
            };
            assert_eq!(plan.path, r.summary.path);
            assert_eq!(plan.fragments, r.summary.fragments);
            assert_eq!(plan.cut_bytes, r.cut_bytes);
            assert!(!partial.exists(), "the partial is renamed");
            check_clip(&r.summary.path);
            assert_eq!(r.summary.bytes, file_len(&r.summary.path));
            remove(&r.summary.path);
            r.summary.fragments
        }
        Err(e) => {
            assert!(plan.is_err(), "inspect planned a recovery that failed: {e}");
            remove(&partial);
            remove(&path);
            0
        }
    }
}

/// Reads a clip preroll finished with preroll's own parser: its header, then every fragment
/// (a progressive clip's as they were written, see `preroll::mp4::hidden`), and a progressive
/// clip's sample tables, which must describe exactly those samples. Returns the number of
/// samples and fragments; asserts each track's fragments follow each other in decode time
/// without overlap.
pub fn check_clip(path: &Path) -> (usize, usize) {
    let file = match std::fs::read(path) {
        Ok(b) => Bytes::from(b),
        Err(e) => panic!("cannot read the clip {}: {e}", path.display()),
    };
    let progressive = match as_written(&file) {
        Ok(p) => p,
        Err(e) => panic!("preroll's own clip has a bad top-level box: {e}"),
    };
    let bytes = progressive
        .as_ref()
        .map_or_else(|| file.clone(), |p| p.fragmented.clone());
    let init = match InitSegment::parse(bytes.clone(), 0) {
        Ok(i) => i,
        Err(e) => panic!("preroll cannot read the header of its own clip: {e}"),
    };
    let mut media_at = None;
    for b in Boxes::new(&bytes, 0) {
        match b {
            Ok(b) if b.kind == FourCc(*b"moov") => media_at = Some(b.offset + b.size()),
            Ok(_) => {}
            Err(e) => panic!("preroll's own clip has a bad top-level box: {e}"),
        }
    }
    let Some(at) = media_at else {
        panic!("preroll's own clip has no moov")
    };
    let fragments = match Fragment::parse_all(&bytes.slice(at as usize..), at, &init) {
        Ok(f) => f,
        Err(e) => panic!("preroll cannot read the fragments of its own clip: {e}"),
    };
    let mut ends: Vec<(u32, u64)> = Vec::new();
    let mut samples = 0;
    for f in &fragments {
        assert_runs_inside(f);
        for t in &f.tracks {
            let Some(start) = t.base_decode_time else {
                panic!("a clip fragment without tfdt (track {})", t.track_id)
            };
            match ends.iter_mut().find(|(id, _)| *id == t.track_id) {
                Some((_, end)) => {
                    assert!(
                        start >= *end,
                        "track {}: fragment {} starts at {start}, before the previous one ends at {end}",
                        t.track_id,
                        f.sequence
                    );
                    *end = start + t.duration();
                }
                None => ends.push((t.track_id, start + t.duration())),
            }
            samples += t.sample_count();
        }
    }
    if let Some(p) = &progressive {
        check_tables(p, &bytes, &fragments);
    }
    (samples, fragments.len())
}

/// A progressive clip's sample tables against its fragments: per track, the same samples in
/// the same order, at the same file offsets, with the same sizes, sync flags, composition
/// offsets, sample entries and decode times (the tables count from the first sample).
fn check_tables(p: &AsWritten, fragmented: &Bytes, fragments: &[Fragment]) {
    // Where each fragment's mdat payload starts.
    let payloads: Vec<u64> = Boxes::new(fragmented, 0)
        .filter_map(Result::ok)
        .filter(|b| b.kind == FourCc(*b"mdat"))
        .map(|b| b.body_offset())
        .collect();
    assert_eq!(payloads.len(), fragments.len(), "an mdat per fragment");
    let moov = match Boxes::new(&p.moov, p.moov_at).next() {
        Some(Ok(m)) => m,
        other => panic!("the progressive moov does not parse: {other:?}"),
    };
    let init = match InitSegment::parse(p.moov.clone(), p.moov_at) {
        Ok(i) => i,
        Err(e) => panic!("preroll cannot read its own progressive moov: {e}"),
    };
    let traks: Vec<BoxRef<'_>> = moov
        .children()
        .filter_map(Result::ok)
        .filter(|b| b.kind == FourCc(*b"trak"))
        .collect();
    assert_eq!(traks.len(), init.tracks.len());
    for (trak, track) in traks.into_iter().zip(&init.tracks) {
        let table = match SampleTable::parse(trak) {
            Ok(t) => t,
            Err(e) => panic!(
                "track {}: its sample table does not parse: {e}",
                track.track_id
            ),
        };
        let mut want = Vec::new();
        for (f, &payload) in fragments.iter().zip(&payloads) {
            let Some(t) = f.track(track.track_id) else {
                continue;
            };
            let mut dts = t.base_decode_time.unwrap_or(0);
            for r in &t.runs {
                let mut at = payload + r.data_offset;
                for s in &r.samples {
                    want.push((at, *s, dts, t.sample_description_index));
                    at += u64::from(s.size);
                    dts += u64::from(s.duration);
                }
            }
        }
        assert_eq!(table.len(), want.len(), "track {}: samples", track.track_id);
        let first = want.first().map_or(0, |w| w.2);
        for (k, (got, (at, s, dts, sdi))) in table.iter().zip(want).enumerate() {
            let id = track.track_id;
            assert_eq!(got.offset, at, "track {id} sample {k}: offset");
            assert_eq!(got.size, s.size, "track {id} sample {k}: size");
            assert_eq!(got.sync, s.is_sync(), "track {id} sample {k}: sync");
            assert_eq!(
                got.composition_offset, s.composition_offset,
                "track {id} sample {k}: cts"
            );
            assert_eq!(got.description_index, sdi, "track {id} sample {k}: entry");
            assert_eq!(got.dts + first, dts, "track {id} sample {k}: decode time");
        }
    }
}

/// A fresh path on tmpfs (where fsync is free), unique per call. Straight in `/dev/shm`, not
/// in a directory of its own, so nothing is left behind once the files are removed.
fn scratch_path(ext: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    Path::new("/dev/shm").join(format!(
        "preroll-fuzz-{}-{}.{ext}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// The Matroska reader on any bytes: params come before any frame, every frame belongs to a
/// track they declare and carries both times, and video decode times strictly increase (the
/// pipeline after the reader relies on it). Returns how many frames came out.
pub fn matroska(data: &[u8]) -> usize {
    let (events, _error) = matroska_events(data, MAX_EVENTS);
    let mut tracks = None;
    let mut last_video_dts = None;
    let mut frames = 0;
    for e in &events {
        match e {
            SourceEvent::Params(p) => tracks = Some(p.len()),
            SourceEvent::Frame(f) => {
                frames += 1;
                let n = tracks.expect("a frame before any params");
                assert!(f.track < n, "frame of track {} with {n} tracks", f.track);
                let (Some(dts), Some(_)) = (f.dts, f.pts) else {
                    panic!("a frame without both times: {f:?}");
                };
                if f.track == 0 {
                    if let Some(last) = last_video_dts {
                        assert!(dts > last, "video dts {dts} after {last}");
                    }
                    last_video_dts = Some(dts);
                }
            }
            SourceEvent::Lost(_) => {}
        }
    }
    frames
}

/// The progressive-MP4 readers on any bytes: the sample tables a progressive file (or a clip
/// preroll finished) lists, walked as the file source walks them, and a finished clip split
/// back into what was written ([`as_written`]). Decode times never go back, every sample lies
/// where its chunk says, and a split clip's parts lie inside the file. Returns how many
/// samples were walked.
pub fn progressive(data: &[u8]) -> usize {
    let bytes = Bytes::copy_from_slice(data);
    let mut walked = 0;
    if let Ok(Some(w)) = as_written(&bytes) {
        let end = w.moov_at + w.moov.len() as u64;
        assert!(
            end <= data.len() as u64 && w.fragmented.len() as u64 <= w.moov_at,
            "as_written: moov at {} ({} bytes) and {} fragmented bytes in a {}-byte file",
            w.moov_at,
            w.moov.len(),
            w.fragmented.len(),
            data.len()
        );
        if let Ok(init) = InitSegment::parse(w.fragmented.clone(), 0) {
            let _ = Fragment::parse_all(&w.fragmented, 0, &init);
        }
        walked += walk_tables(&w.moov);
    }
    // The moov wherever it is (first, last, or after hidden boxes).
    for b in Boxes::new(data, 0).map_while(Result::ok) {
        if b.kind == FourCc(*b"moov") {
            let start = b.offset as usize;
            let end = start + b.size() as usize;
            walked += walk_tables(&data[start..end]);
        }
    }
    walked
}

/// Every sample of every trak in `moov` (a whole box), up to [`MAX_SAMPLES`] each.
fn walk_tables(moov: &[u8]) -> usize {
    let mut walked = 0;
    for_each_trak(moov, |trak| {
        let Ok(table) = SampleTable::parse(trak) else {
            return;
        };
        let mut dts = 0;
        for s in table.iter().take(MAX_SAMPLES) {
            assert!(s.dts >= dts, "decode times go back: {} after {dts}", s.dts);
            assert!(
                s.offset.checked_add(u64::from(s.size)).is_some(),
                "sample at {} of {} bytes overflows",
                s.offset,
                s.size
            );
            dts = s.dts;
            walked += 1;
        }
        let _ = (table.duration(), table.data_end());
    });
    walked
}

/// `rtsp_camera`: the first byte sets the size of each read, the rest is what a camera sends.
/// Framing is the same whatever the reads (pieces, dropped bytes, the kind of refusal); every
/// message the link passes on frames back as itself; an SDP that passes the link's check (and
/// renaming) is one retina's SDP parser takes without panicking.
pub fn rtsp_camera(data: &[u8]) -> usize {
    let Some((&first, camera)) = data.split_first() else {
        return 0;
    };
    let whole = rtsp_hidden::read_camera_bytes(camera, camera.len());
    let reads = 1 + usize::from(first);
    let chunked = rtsp_hidden::read_camera_bytes(camera, reads);
    let kind = |r: &Option<String>| {
        r.as_deref()
            .map(|e| e.split(": \"").next().map(str::to_owned))
    };
    assert_eq!(
        (&whole.pieces, whole.dropped_bytes, kind(&whole.refusal)),
        (
            &chunked.pieces,
            chunked.dropped_bytes,
            kind(&chunked.refusal)
        ),
        "{reads}-byte reads framed differently from one read"
    );
    assert!(
        whole.not_round_trip.is_empty(),
        "re-encoded messages that frame differently: {:?}",
        whole.not_round_trip
    );
    for body in &whole.checked_sdp {
        let _ = sdp_types::Session::parse(body);
    }
    whole.pieces.len()
}
