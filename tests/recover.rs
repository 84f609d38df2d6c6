//! Salvaging unfinished clips (`recover`, `preroll check`) on real media made by ffmpeg:
//! `.partial` files left by a recording that never finished, cut at every point a crash can
//! leave them, checked with ffprobe, ffmpeg's decoder, mp4-atom, and against the clip a
//! finished recording of the same fragments makes.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mp4_atom::Any;
use preroll::recorder::{
    ClipOptions, Recording, RecoverError, SegmentOutcome, find_partials, inspect, recover,
};
use preroll::segment::Segment;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Loads an HLS directory as segments of one stream.
fn segments(hls: &Path) -> Vec<Segment> {
    hls_segments(hls, 1, 1)
}

/// Writes `segs` into a recording at `path` and drops it unfinished, as a crash would leave
/// it: returns the `.partial`'s bytes (the file stays too).
fn unfinished(path: &Path, segs: &[Segment]) -> Vec<u8> {
    let mut rec = Recording::create(path, ClipOptions::default()).unwrap();
    for s in segs {
        let out = rec.write_segment(s).unwrap();
        assert!(
            matches!(out, SegmentOutcome::Written { fragments: 1, .. }),
            "one fragment per segment: {out:?}"
        );
    }
    let partial = rec.partial_path().to_owned();
    drop(rec);
    fs::read(partial).unwrap()
}

/// The clip a recording of `segs` makes when it finishes normally.
fn finished(path: &Path, segs: &[Segment]) -> Vec<u8> {
    let mut rec = Recording::create(path, ClipOptions::default()).unwrap();
    for s in segs {
        rec.write_segment(s).unwrap();
    }
    rec.finish().unwrap();
    fs::read(path).unwrap()
}

/// One fragment of a partial, as mp4-atom reads it.
#[derive(Debug, Clone)]
struct Frag {
    moof: u64,
    mdat: u64,
    end: u64,
    /// Per track id: (samples, decode time at the end of the fragment).
    tracks: Vec<(u32, usize, u64)>,
    /// Per track id: decode time of its first sample in the fragment.
    starts: Vec<(u32, u64)>,
}

/// Where things are in a (whole) partial: the first moof and each fragment.
#[derive(Debug)]
struct Layout {
    header: u64,
    frags: Vec<Frag>,
    /// (track id, handler, timescale) per trak, in order.
    traks: Vec<(u32, String, u32)>,
}

fn layout(bytes: &[u8]) -> Layout {
    let atoms = top_level_atoms(bytes, "the partial");
    let Any::Moov(moov) = &atoms[1].1 else {
        panic!("moov second")
    };
    let traks = moov
        .trak
        .iter()
        .map(|t| {
            (
                t.tkhd.track_id,
                t.mdia.hdlr.handler.to_string(),
                t.mdia.mdhd.timescale,
            )
        })
        .collect();
    let mut frags = Vec::new();
    let mut header = None;
    for (i, (pos, a)) in atoms.iter().enumerate() {
        let Any::Moof(moof) = a else { continue };
        header.get_or_insert(*pos);
        let mdat = atoms[i + 1].0;
        let end = atoms.get(i + 2).map_or(bytes.len() as u64, |a| a.0);
        let tracks = moof
            .traf
            .iter()
            .map(|traf| {
                let base = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                let mut n = 0;
                let mut t = base;
                for trun in &traf.trun {
                    for e in trun.samples.iter() {
                        n += 1;
                        t += u64::from(e.duration.or(traf.tfhd.default_sample_duration).unwrap());
                    }
                }
                (traf.tfhd.track_id, n, t)
            })
            .collect();
        let starts = moof
            .traf
            .iter()
            .map(|traf| {
                let base = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                (traf.tfhd.track_id, base)
            })
            .collect();
        frags.push(Frag {
            moof: *pos,
            mdat,
            end,
            tracks,
            starts,
        });
    }
    Layout {
        header: header.expect("a fragment"),
        frags,
        traks,
    }
}

impl Layout {
    fn track_of(&self, handler: &str) -> Option<u32> {
        self.traks
            .iter()
            .find(|(_, h, _)| h == handler)
            .map(|(id, _, _)| *id)
    }

    /// Seconds of media in the first `k` fragments (longest track).
    /// Seconds of video in the first `k` fragments.
    fn video_seconds(&self, k: usize) -> f64 {
        self.traks
            .iter()
            .filter(|(_, kind, _)| kind == "vide")
            .map(|(id, _, ts)| self.end(k, *id) as f64 / f64::from(*ts))
            .fold(0.0, f64::max)
    }

    /// Samples of a track in the first `k` fragments.
    fn samples(&self, k: usize, track: u32) -> usize {
        self.frags[..k]
            .iter()
            .flat_map(|f| &f.tracks)
            .filter(|t| t.0 == track)
            .map(|t| t.1)
            .sum()
    }

    /// End decode time of a track after the first `k` fragments.
    fn end(&self, k: usize, track: u32) -> u64 {
        self.frags[..k]
            .iter()
            .flat_map(|f| &f.tracks)
            .filter(|t| t.0 == track)
            .map(|t| t.2)
            .max()
            .unwrap_or(0)
    }

    /// Decode time of a track's first sample.
    fn start(&self, track: u32) -> u64 {
        self.frags
            .iter()
            .flat_map(|f| &f.starts)
            .find(|t| t.0 == track)
            .map_or(0, |t| t.1)
    }

    /// How many fragments lie entirely in the first `len` bytes.
    fn complete(&self, len: u64) -> usize {
        self.frags.iter().filter(|f| f.end <= len).count()
    }
}

/// The moov with its creation and modification times zeroed (they are the only header
/// fields that differ between two recordings of the same media).
fn timeless_moov(path: &Path) -> mp4_atom::Moov {
    let mut moov = check_structure(path);
    moov.mvhd.creation_time = 0;
    moov.mvhd.modification_time = 0;
    for t in &mut moov.trak {
        t.tkhd.creation_time = 0;
        t.tkhd.modification_time = 0;
        t.mdia.mdhd.creation_time = 0;
        t.mdia.mdhd.modification_time = 0;
    }
    moov
}

/// Checks a recovered clip of the first `k` fragments against everything we know.
#[track_caller]
fn assert_recovered_clip(clip: &Path, layout: &Layout, k: usize, reference: &Path) {
    assert_decodes_cleanly(clip);
    let moov = check_structure(clip);
    let probe = Probe::of(clip);
    let video = layout.track_of("vide").unwrap();
    let v = probe.stream_of("video").unwrap();
    assert_eq!(
        probe.packets_of(v).len(),
        layout.samples(k, video),
        "video packets"
    );
    if let Some(audio) = layout.track_of("soun") {
        let a = probe.stream_of("audio").unwrap();
        assert_eq!(
            probe.packets_of(a).len(),
            layout.samples(k, audio),
            "audio packets"
        );
    }
    // Header durations: each track's is where its last fragment ends.
    let mut movie_end = 0u64;
    for trak in &moov.trak {
        let end = layout.end(k, trak.tkhd.track_id);
        // A progressive track's media time starts at its first sample.
        assert_eq!(
            trak.mdia.mdhd.duration,
            end - layout.start(trak.tkhd.track_id),
            "track {} duration",
            trak.tkhd.track_id
        );
        let ts = u64::from(trak.mdia.mdhd.timescale);
        movie_end = movie_end.max((end * u64::from(moov.mvhd.timescale)).div_ceil(ts));
    }
    // The movie lasts as long as the video's edit: from its first picture to the end of its
    // last, never longer than the media, and short of it by at most an audio frame's worth.
    let video_trak = moov
        .trak
        .iter()
        .find(|t| t.mdia.minf.vmhd.is_some())
        .expect("video track");
    let edit: u64 = video_trak
        .edts
        .as_ref()
        .and_then(|e| e.elst.as_ref())
        .expect("video edit list")
        .entries
        .iter()
        .map(|e| e.segment_duration)
        .sum();
    assert_eq!(moov.mvhd.duration, edit, "movie duration");
    assert!(
        edit <= movie_end && movie_end - edit <= u64::from(moov.mvhd.timescale) / 10,
        "movie duration {edit} vs media {movie_end}"
    );
    assert!(
        (probe.duration - probe.extent()).abs() <= 0.05,
        "header {} s vs media {} s",
        probe.duration,
        probe.extent()
    );
    // The very clip a recording of those fragments makes when it finishes: the same
    // fragments byte for byte, the same moov bar its timestamps.
    let got = fs::read(clip).unwrap();
    let want = fs::read(reference).unwrap();
    assert_eq!(got.len(), want.len(), "size of the finished clip");
    let h = layout.header as usize;
    let moov_at = top_level_atoms(&got, "the recovered clip")
        .last()
        .unwrap()
        .0 as usize;
    assert!(
        got[h..moov_at] == want[h..moov_at],
        "fragments as a finished clip's"
    );
    assert_eq!(timeless_moov(clip), timeless_moov(reference), "header");
}

#[test]
fn cut_at_every_interesting_point_keeps_the_complete_fragments() {
    let d = tmp();
    let segs = segments(
        &Media {
            seconds: 5,
            ..Media::default()
        }
        .hls(&d.path().join("hls")),
    );
    let whole = unfinished(&d.path().join("src/clip.mp4"), &segs);
    let l = layout(&whole);
    let n = l.frags.len();
    assert_eq!(n, segs.len());
    assert!(n >= 4, "{n} fragments");
    assert_eq!(l.header % 4096, 0, "header region");

    // Finished clips of the first k segments, to compare with.
    let reference = |k: usize| {
        let p = d.path().join(format!("ref{k}/clip.mp4"));
        if !p.exists() {
            finished(&p, &segs[..k]);
        }
        p
    };

    let f = &l.frags;
    let total = whole.len() as u64;
    let mut cases: Vec<(&str, Vec<u8>)> = [
        ("empty", 0),
        ("inside the ftyp", 10),
        ("inside the moov", 200),
        ("inside the free padding", l.header - 100),
        ("right after the header", l.header),
        ("inside the first moof's header", f[0].moof + 5),
        ("mid first moof", (f[0].moof + f[0].mdat) / 2),
        ("mid first mdat", (f[0].mdat + f[0].end) / 2),
        ("mid moof", (f[2].moof + f[2].mdat) / 2),
        ("inside an mdat header", f[2].mdat + 4),
        ("mid mdat", (f[2].mdat + f[2].end) / 2),
        ("one byte short of a boundary", f[2].end - 1),
        ("exactly at a fragment boundary", f[2].end),
        ("one byte past a boundary", f[2].end + 1),
        ("the whole file", total),
    ]
    .into_iter()
    .map(|(name, cut)| (name, whole[..cut as usize].to_vec()))
    .collect();
    let mut noise = Vec::new();
    let mut x = 0x2545_f491_u32;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let mut huge_moof = 0x0100_0000u32.to_be_bytes().to_vec();
    huge_moof.extend_from_slice(b"moof");
    huge_moof.extend_from_slice(&[7; 100]);
    // A complete fragment, but not the next one of this recording.
    let mut stray = whole[f[0].moof as usize..f[0].end as usize].to_vec();
    stray[20..24].copy_from_slice(&99u32.to_be_bytes()); // mfhd sequence number
    for (name, tail) in [
        ("garbage appended", noise),
        ("zeros appended", vec![0; 4096]),
        ("a moof larger than the rest appended", huge_moof),
        ("an mdat without a moof appended", {
            let mut m = 16u32.to_be_bytes().to_vec();
            m.extend_from_slice(b"mdat12345678");
            m
        }),
        ("a stray fragment appended", stray),
        ("a moof without its mdat appended", {
            let mut m = whole[f[1].moof as usize..f[1].mdat as usize].to_vec();
            m[20..24].copy_from_slice(&(n as u32 + 1).to_be_bytes());
            m
        }),
    ] {
        cases.push((name, [&whole[..], &tail[..]].concat()));
    }

    for (i, (name, bytes)) in cases.iter().enumerate() {
        let dir = d.path().join(format!("case{i}"));
        fs::create_dir_all(&dir).unwrap();
        let partial = dir.join("clip.mp4.partial");
        let clip = dir.join("clip.mp4");
        fs::write(&partial, bytes).unwrap();
        let len = bytes.len() as u64;
        let k = l.complete(len.min(total));
        let result = recover(&partial);
        if k == 0 {
            match result {
                Err(RecoverError::Empty {
                    bytes: b,
                    removed: true,
                    ..
                }) => assert_eq!(b, len, "{name}"),
                other => panic!("{name}: expected removal, got {other:?}"),
            }
            assert!(!partial.exists(), "{name}: partial removed");
            assert!(!clip.exists(), "{name}: no clip");
            continue;
        }
        let r = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let kept = f[k - 1].end;
        assert_eq!(r.summary.path, clip, "{name}");
        assert_eq!(r.summary.fragments, k, "{name}: fragments");
        assert_eq!(r.cut_bytes, len - kept, "{name}: bytes cut");
        assert_eq!(r.damage.is_some(), len > kept, "{name}: {:?}", r.damage);
        assert_eq!(
            r.summary.bytes,
            fs::metadata(&clip).unwrap().len(),
            "{name}"
        );
        assert!(!partial.exists(), "{name}: partial renamed");
        // What the clip presents: its video, from the first picture to the end of the last.
        let want = Duration::from_secs_f64(l.video_seconds(k));
        assert!(
            r.summary.duration.abs_diff(want) < Duration::from_millis(30),
            "{name}: {:?} vs {want:?}",
            r.summary.duration
        );
        assert_recovered_clip(&clip, &l, k, &reference(k));
        eprintln!(
            "{name}: {k} fragments, {} bytes cut ({})",
            r.cut_bytes,
            r.damage.as_deref().unwrap_or("-")
        );
    }
}

#[test]
fn a_partial_locked_by_a_live_recording_is_skipped() {
    let d = tmp();
    let segs = segments(&Media::default().hls(&d.path().join("hls")));
    let path = d.path().join("live/clip.mp4");
    let mut rec = Recording::create(&path, ClipOptions::default()).unwrap();
    let partial = rec.partial_path().to_owned();
    // Locked from the start, even before any media.
    let e = recover(&partial).unwrap_err();
    assert!(matches!(e, RecoverError::Locked { .. }), "{e}");
    for s in &segs[..2] {
        rec.write_segment(s).unwrap();
    }
    let before = fs::read(&partial).unwrap();
    for e in [
        recover(&partial).unwrap_err(),
        inspect(&partial).unwrap_err(),
    ] {
        assert!(matches!(e, RecoverError::Locked { .. }), "{e}");
        assert!(e.is_skip());
        assert_eq!(
            e.to_string(),
            format!(
                "{}: in progress (locked by a running recorder)",
                partial.display()
            )
        );
    }
    assert_eq!(fs::read(&partial).unwrap(), before, "untouched");
    // The recording goes on unharmed; once it is gone (a crash), recovery proceeds.
    rec.write_segment(&segs[2]).unwrap();
    drop(rec);
    let r = recover(&partial).unwrap();
    assert_eq!(r.summary.fragments, 3);
    assert_eq!(r.cut_bytes, 0);
    assert_decodes_cleanly(&path);
    check_structure(&path);
}

#[test]
fn an_existing_final_file_is_refused_and_both_are_left_alone() {
    let d = tmp();
    let segs = segments(&Media::default().hls(&d.path().join("hls")));
    let path = d.path().join("clip.mp4");
    let bytes = unfinished(&path, &segs[..2]);
    let partial = d.path().join("clip.mp4.partial");
    fs::write(&path, b"precious").unwrap();
    for e in [
        inspect(&partial).unwrap_err(),
        recover(&partial).unwrap_err(),
    ] {
        assert!(matches!(e, RecoverError::FinalExists { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&partial.display().to_string())
                && msg.contains(&format!("final name {} already exists", path.display())),
            "{msg}"
        );
    }
    assert_eq!(fs::read(&path).unwrap(), b"precious");
    assert_eq!(fs::read(&partial).unwrap(), bytes);
}

#[test]
fn files_preroll_did_not_write_or_cannot_finalize_are_left_untouched() {
    let d = tmp();
    let media = Media {
        seconds: 2,
        ..Media::default()
    };
    let segs = segments(&media.hls(&d.path().join("hls")));
    let ours = unfinished(&d.path().join("src/clip.mp4"), &segs);

    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // Another muxer's fragmented MP4.
    let foreign =
        fs::read(media.fragmented(&d.path().join("ffmpeg.mp4"), "frag_keyframe+empty_moov"))
            .unwrap();
    cases.push(("ffmpeg's fragmented mp4", foreign, "ftyp box at byte 0"));
    // Text.
    cases.push((
        "text",
        b"hello, this is not a clip at all\n".to_vec(),
        "box at byte 0",
    ));
    // Our header with its stsd entry count broken.
    let mut broken = ours.clone();
    let stsd = broken.windows(4).position(|w| w == b"stsd").unwrap() - 4;
    broken[stsd + 12..stsd + 16].copy_from_slice(&5u32.to_be_bytes());
    let stsd_at = format!("stsd box at byte {stsd}: says 5 sample entries but holds 1");
    cases.push(("a broken stsd", broken, &stsd_at));
    // Our header, with the audio track's handler turned into one preroll never writes.
    let mut subtitles = ours.clone();
    let soun = subtitles.windows(4).position(|w| w == b"soun").unwrap();
    subtitles[soun..soun + 4].copy_from_slice(b"subt");
    cases.push((
        "a track preroll never writes",
        subtitles,
        "cannot be finalized safely, left untouched: the header holds track 2: subt track",
    ));
    // A header followed by data that is not a fragment at all.
    let header = layout(&ours).header as usize;
    let mut junk = ours[..header].to_vec();
    junk.extend_from_slice(&[0, 0, 0, 12]);
    junk.extend_from_slice(b"junk\x01\x02\x03\x04");
    junk.extend_from_slice(&ours[header..]);
    cases.push((
        "unparsable data where the first fragment should be",
        junk,
        "no complete fragment, and the data after the header does not parse: junk box at byte",
    ));

    // A power cut can leave zeros where data was never written: with media after them, the
    // file is not just cut short.
    let l = layout(&ours);
    let mut zero_moov = ours.clone();
    zero_moov[28..l.header as usize].fill(0);
    cases.push((
        "a zeroed header with fragments after it",
        zero_moov,
        "moov box at byte 28: zeros at byte 28 where a box should start",
    ));
    let mut zero_frag = ours.clone();
    zero_frag[l.header as usize..l.frags[0].end as usize].fill(0);
    cases.push((
        "a zeroed first fragment with more after it",
        zero_frag,
        "no complete fragment, and the data after the header does not parse: zeros at byte",
    ));

    for (i, (name, bytes, needle)) in cases.iter().enumerate() {
        let partial = d.path().join(format!("x{i}.mp4.partial"));
        fs::write(&partial, bytes).unwrap();
        for e in [
            inspect(&partial).unwrap_err(),
            recover(&partial).unwrap_err(),
        ] {
            let msg = e.to_string();
            assert!(!e.is_skip(), "{name}: {msg}");
            assert!(
                msg.starts_with(&partial.display().to_string()),
                "{name}: names the file: {msg}"
            );
            assert!(msg.contains(needle), "{name}: {msg}");
        }
        assert_eq!(&fs::read(&partial).unwrap(), bytes, "{name}: untouched");
        assert!(!d.path().join(format!("x{i}.mp4")).exists(), "{name}");
    }
}

#[test]
fn dry_run_reports_what_recovery_would_do_and_changes_nothing() {
    let d = tmp();
    let segs = segments(&Media::default().hls(&d.path().join("hls")));
    let whole = unfinished(&d.path().join("clip.mp4"), &segs);
    let l = layout(&whole);
    let partial = d.path().join("clip.mp4.partial");
    let cut = (l.frags[1].mdat + l.frags[1].end) / 2;
    fs::write(&partial, &whole[..cut as usize]).unwrap();
    let plan = inspect(&partial).unwrap();
    assert_eq!(plan.path, d.path().join("clip.mp4"));
    assert_eq!(plan.fragments, 1);
    assert_eq!(plan.keep, l.frags[0].end);
    assert_eq!(plan.cut_bytes, cut - l.frags[0].end);
    assert!(plan.damage.unwrap().contains("mdat box at byte"));
    assert_eq!(fs::read(&partial).unwrap(), &whole[..cut as usize]);
    let r = recover(&partial).unwrap();
    assert_eq!(r.summary.duration, plan.duration);
    assert_eq!(r.cut_bytes, plan.cut_bytes);
}

#[test]
fn a_recording_resumes_after_a_partial_is_found_in_a_tree() {
    // Partials in nested directories are all found, and each becomes its own clip.
    let d = tmp();
    let segs = segments(
        &Media {
            seconds: 2,
            audio: false,
            ..Media::default()
        }
        .hls(&d.path().join("hls")),
    );
    let root = d.path().join("clips");
    for p in ["cam1/a.mp4", "cam1/2024/b.mp4", "cam2/c.mp4"] {
        unfinished(&root.join(p), &segs);
    }
    let found = find_partials(&root).unwrap();
    assert_eq!(found.len(), 3);
    for p in &found {
        let r = recover(p).unwrap();
        assert_eq!(r.summary.fragments, segs.len());
        assert_decodes_cleanly(&r.summary.path);
    }
    assert!(find_partials(&root).unwrap().is_empty());
}

/// Runs `preroll check` with the given arguments: (exit code, stdout lines).
fn check(args: &[&str]) -> (i32, Vec<String>) {
    let mut all = vec!["check"];
    all.extend(args);
    let out = preroll(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code().unwrap_or(-1),
        stdout.lines().map(str::to_owned).collect(),
    )
}

#[track_caller]
fn line_starting<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in {lines:#?}"))
}

#[test]
fn preroll_check_recovers_removes_skips_and_fails_with_one_line_each() {
    let d = tmp();
    let segs = segments(&Media::default().hls(&d.path().join("hls")));
    let root = d.path().join("clips");
    // a: cut mid-mdat of its third fragment → 2 fragments.
    let whole = unfinished(&root.join("a.mp4"), &segs);
    let l = layout(&whole);
    let cut = (l.frags[2].mdat + l.frags[2].end) / 2;
    let a = root.join("a.mp4.partial");
    fs::write(&a, &whole[..cut as usize]).unwrap();
    // b: only a header.
    let b = root.join("sub/b.mp4.partial");
    fs::create_dir_all(b.parent().unwrap()).unwrap();
    fs::write(&b, &whole[..l.header as usize]).unwrap();
    // c: not a clip.
    let c = root.join("sub/c.mp4.partial");
    fs::write(&c, b"not a clip").unwrap();
    // d: a recording in progress in this process (its lock is held).
    let mut live = Recording::create(root.join("d.mp4"), ClipOptions::default()).unwrap();
    live.write_segment(&segs[0]).unwrap();
    let dp = root.join("d.mp4.partial");
    let r = s(&root);

    let snapshot =
        |paths: &[&Path]| -> Vec<Vec<u8>> { paths.iter().map(|p| fs::read(p).unwrap()).collect() };
    let before = snapshot(&[&a, &b, &c, &dp]);
    let (code, lines) = check(&["--dry-run", r]);
    assert_eq!(code, 1, "{lines:#?}");
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let would = line_starting(&lines, "would recover");
    assert!(
        would.starts_with(&format!(
            "would recover {} as {}: ",
            a.display(),
            root.join("a.mp4").display()
        )) && would.contains(&format!(
            ", 2 fragments, {} bytes kept, {} bytes cut (",
            l.frags[1].end,
            cut - l.frags[1].end
        )),
        "{would}"
    );
    assert!(line_starting(&lines, "would remove").starts_with(&format!(
        "would remove {}: no complete fragment, {} bytes",
        b.display(),
        l.header
    )));
    assert_eq!(
        line_starting(&lines, "skipped"),
        format!(
            "skipped {}: in progress (locked by a running recorder)",
            dp.display()
        )
    );
    assert!(line_starting(&lines, "failed").starts_with(&format!("failed {}: ", c.display())));
    assert_eq!(
        lines[4],
        "4 partial files (dry run): 1 to recover, 1 to remove, 1 skipped, 1 failed"
    );
    assert_eq!(
        snapshot(&[&a, &b, &c, &dp]),
        before,
        "dry run changes nothing"
    );

    let (code, lines) = check(&[r]);
    assert_eq!(code, 1, "{lines:#?}");
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let rec = line_starting(&lines, "recovered");
    let clip = root.join("a.mp4");
    let size = fs::metadata(&clip).unwrap().len();
    assert!(
        rec.starts_with(&format!("recovered {}: ", clip.display()))
            && rec.contains(&format!(
                " s, {}, 2 fragments, {} bytes cut (",
                preroll::cli::human_bytes(size),
                cut - l.frags[1].end
            )),
        "{rec}"
    );
    let secs: f64 = number_before(rec, " s,");
    assert!((secs - l.video_seconds(2)).abs() < 0.03, "{rec}");
    assert!(line_starting(&lines, "removed").starts_with(&format!("removed {}: ", b.display())));
    assert!(line_starting(&lines, "skipped").contains("in progress"));
    assert!(line_starting(&lines, "failed").contains("not a preroll clip"));
    assert_eq!(
        lines[4],
        "4 partial files: 1 recovered, 1 removed, 1 skipped, 1 failed"
    );
    assert!(!a.exists() && !b.exists());
    assert_eq!(fs::read(&c).unwrap(), b"not a clip");
    assert_recovered_clip(&clip, &l, 2, &{
        let p = d.path().join("ref/a.mp4");
        finished(&p, &segs[..2]);
        p
    });

    // The live recording ends without finishing (a crash); the stranger goes away.
    live.write_segment(&segs[1]).unwrap();
    drop(live);
    fs::remove_file(&c).unwrap();
    let (code, lines) = check(&[r]);
    assert_eq!(code, 0, "{lines:#?}");
    assert!(line_starting(&lines, "recovered").contains(", 2 fragments, 0 bytes cut"));
    assert_eq!(
        lines.last().unwrap(),
        "1 partial files: 1 recovered, 0 removed, 0 skipped, 0 failed"
    );
    assert_decodes_cleanly(&root.join("d.mp4"));

    // Nothing left: a clean run. A missing directory fails.
    let (code, lines) = check(&[r]);
    assert_eq!(
        (code, lines.last().unwrap().as_str()),
        (
            0,
            "0 partial files: 0 recovered, 0 removed, 0 skipped, 0 failed"
        )
    );
    let missing = d.path().join("missing");
    let (code, lines) = check(&[s(&missing)]);
    assert_eq!(code, 1);
    assert!(
        lines[0].starts_with(&format!("failed {}: ", missing.display())),
        "{lines:?}"
    );
}

#[test]
fn kill_9_during_preroll_record_leaves_a_partial_that_check_recovers() {
    let d = tmp();
    let clip = d.path().join("live.mp4");
    let partial = d.path().join("live.mp4.partial");
    let mut child = Command::new(env!("CARGO_BIN_EXE_preroll"))
        .args([
            "record",
            "demo",
            "-o",
            s(&clip),
            "--lookback",
            "0",
            "--duration",
            "120",
        ])
        .env("PREROLL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until at least two fragments are in the file.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fragments = || {
        fs::read(&partial)
            .ok()
            .map_or(0, |b| b.windows(4).filter(|w| *w == b"moof").count())
    };
    while fragments() < 3 {
        assert!(Instant::now() < deadline, "no fragments written");
        assert!(child.try_wait().unwrap().is_none(), "record exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Running: its partial is skipped.
    let (code, lines) = check(&[s(d.path())]);
    assert_eq!(code, 0, "{lines:#?}");
    assert!(
        lines[0].starts_with("skipped ") && lines[0].contains("locked"),
        "{lines:#?}"
    );
    assert!(partial.exists() && !clip.exists());

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (code, lines) = check(&[s(d.path())]);
    assert_eq!(code, 0, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!("recovered {}: ", clip.display())),
        "{lines:#?}"
    );
    assert_eq!(
        lines[1],
        "1 partial files: 1 recovered, 0 removed, 0 skipped, 0 failed"
    );
    assert!(!partial.exists());
    assert_decodes_cleanly(&clip);
    check_structure(&clip);
    let p = Probe::of(&clip);
    assert!(p.duration >= 1.0, "{}", p.duration);
    assert!(p.packets_of(p.stream_of("video").unwrap())[0].key);
}

#[test]
fn damaged_bytes_never_panic_and_never_leave_a_half_finished_file() {
    let d = tmp();
    let segs = segments(
        &Media {
            seconds: 2,
            ..Media::default()
        }
        .hls(&d.path().join("hls")),
    );
    let whole = unfinished(&d.path().join("src/clip.mp4"), &segs);
    let l = layout(&whole);
    let moov_end = 28 + u32::from_be_bytes(whole[28..32].try_into().unwrap()) as usize;
    // Bytes that matter: the header, and every moof and mdat header.
    let mut spots: Vec<usize> = (0..moov_end).step_by(3).collect();
    for f in &l.frags {
        spots.extend((f.moof as usize..f.mdat as usize + 8).step_by(2));
    }
    let mut x = 0x9e37_79b9_u32;
    let (mut ok, mut removed, mut refused) = (0, 0, 0);
    for (i, &at) in spots.iter().enumerate() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let mut bytes = whole.clone();
        bytes[at] ^= 1 << (x % 8);
        let dir = d.path().join(format!("flip{i}"));
        fs::create_dir_all(&dir).unwrap();
        let partial = dir.join("clip.mp4.partial");
        let clip = dir.join("clip.mp4");
        fs::write(&partial, &bytes).unwrap();
        match recover(&partial) {
            Ok(r) => {
                assert!(clip.exists() && !partial.exists(), "byte {at}");
                assert_eq!(r.summary.bytes, fs::metadata(&clip).unwrap().len());
                // What was kept is a prefix of the damaged file, fragments unchanged (as
                // written: finishing hides their moofs).
                let got = fs::read(&clip).unwrap();
                let got: bytes::Bytes = got.into();
                let got = preroll::mp4::hidden::as_written(&got)
                    .unwrap()
                    .map_or(got, |p| p.fragmented);
                let h = l.header as usize;
                let kept = bytes.len() - r.cut_bytes as usize;
                assert_eq!(got[h..kept], bytes[h..kept], "byte {at}");
                ok += 1;
            }
            Err(RecoverError::Empty { why, .. }) => {
                eprintln!("byte {at}: removed: {why}");
                assert!(!clip.exists() && !partial.exists(), "byte {at}");
                removed += 1;
            }
            Err(e) => {
                assert!(!e.is_skip(), "byte {at}: {e}");
                assert!(!clip.exists(), "byte {at}: {e}");
                assert_eq!(
                    fs::read(&partial).unwrap(),
                    bytes,
                    "byte {at}: {e} untouched"
                );
                refused += 1;
            }
        }
    }
    eprintln!(
        "{} flips: {ok} recovered, {removed} removed, {refused} refused",
        spots.len()
    );
    // Every fragment is in the file, so whatever a flip did to the sizes, it must not pass
    // for a file cut short and be removed.
    assert_eq!(removed, 0, "a file holding media was removed");
    assert!(ok > 0 && refused > 0);
}

/// A progressive finish cut short by a crash at any point is completed by recovery into the
/// very clip the finish makes: before its moov is durable the partial is still a fragmented
/// MP4 (recovered as one, the half-written moov cut); after it, with the header and any
/// number of moofs hidden, the hiding is completed.
#[test]
fn a_progressive_finish_cut_short_anywhere_is_completed() {
    let d = tmp();
    let segs = segments(&Media::default().hls(&d.path().join("hls")));
    let reference = d.path().join("reference.mp4");
    let finished = finished(&reference, &segs[..4]);
    assert!(is_progressive(&reference));
    let atoms = top_level_atoms(&finished, "the finished clip");
    let moov_at = atoms.last().unwrap().0 as usize;
    // Hidden boxes: the header (a free box holding an mvhd) and the moofs (holding an mfhd).
    let hidden: Vec<(usize, &[u8; 4])> = atoms
        .iter()
        .map(|(at, _)| *at as usize)
        .filter(|&at| &finished[at + 4..at + 8] == b"free" && finished.len() >= at + 16)
        .filter_map(|at| match &finished[at + 12..at + 16] {
            b"mvhd" => Some((at, b"moov")),
            b"mfhd" => Some((at, b"moof")),
            _ => None,
        })
        .collect();
    assert_eq!(hidden.len(), 5, "the header and 4 moofs hidden: {hidden:?}");
    let unhide = |bytes: &mut Vec<u8>, boxes: &[(usize, &[u8; 4])]| {
        for (at, kind) in boxes {
            bytes[at + 4..at + 8].copy_from_slice(*kind);
        }
    };

    let cases: Vec<(String, Vec<u8>)> = {
        let mut all = Vec::new();
        // The moov appended, nothing hidden yet; and the moov cut short at two points.
        let mut whole = finished.clone();
        unhide(&mut whole, &hidden);
        all.push(("moov appended, nothing hidden".to_owned(), whole.clone()));
        for cut in [moov_at + 3, (moov_at + finished.len()) / 2] {
            all.push((format!("moov cut at byte {cut}"), whole[..cut].to_vec()));
        }
        // The header hidden and then 0..=4 of the moofs.
        for k in 0..=4 {
            let mut b = finished.clone();
            unhide(&mut b, &hidden[1 + k..]);
            all.push((format!("header and {k} moofs hidden"), b));
        }
        all
    };
    for (name, bytes) in cases {
        let clip = d.path().join("clip.mp4");
        let partial = d.path().join("clip.mp4.partial");
        let _ = fs::remove_file(&clip);
        fs::write(&partial, &bytes).unwrap();
        let plan = inspect(&partial).unwrap_or_else(|e| panic!("{name}: inspect: {e}"));
        assert_eq!(plan.fragments, 4, "{name}: {plan:?}");
        let r = recover(&partial).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!partial.exists(), "{name}");
        let got = fs::read(&clip).unwrap();
        assert_eq!(got.len(), finished.len(), "{name}: size");
        assert!(is_progressive(&clip), "{name}");
        let h = atoms[2].0 as usize;
        assert!(
            got[h..moov_at] == finished[h..moov_at],
            "{name}: media and hidden moofs"
        );
        assert_eq!(
            timeless_moov(&clip),
            timeless_moov(&reference),
            "{name}: moov"
        );
        assert_decodes_cleanly(&clip);
        assert!(
            (r.summary.duration.as_secs_f64() - Probe::of(&clip).duration).abs() < 0.05,
            "{name}: {:?}",
            r.summary
        );
    }

    // A hidden header without the moov that replaces it is not a clip preroll finished:
    // left untouched.
    let partial = d.path().join("broken.mp4.partial");
    let mut b = finished[..moov_at].to_vec();
    unhide(&mut b, &hidden[1..]);
    fs::write(&partial, &b).unwrap();
    let e = recover(&partial).expect_err("no moov");
    assert!(matches!(e, RecoverError::NotOurs { .. }), "{e}");
    assert_eq!(fs::read(&partial).unwrap(), b, "left untouched");
}
