//! Progressive MP4 sample tables read by `SampleTable`, checked sample by sample against ffprobe
//! on real files made by ffmpeg, and against the bytes of the files' `mdat`s.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use preroll::mp4::samples::{SampleTable, TableSample};
use preroll::mp4::{BoxRef, Boxes, Codec, FourCc, InitSegment, kinds};
use serde_json::Value;

use common::{ffmpeg, run};

/// One packet as ffprobe reports it (timestamps with the edit list applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packet {
    stream: usize,
    pts: i64,
    dts: i64,
    size: u64,
    pos: u64,
    key: bool,
}

fn probe(path: &Path) -> Vec<Packet> {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,pts,dts,size,pos,flags",
            "-of",
            "json",
        ])
        .arg(path));
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    // ffprobe writes size and pos as strings, timestamps as numbers.
    let int = |v: &Value| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(|| panic!("not an integer: {v}"))
    };
    v["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| Packet {
            stream: int(&p["stream_index"]) as usize,
            pts: int(&p["pts"]),
            dts: int(&p["dts"]),
            size: int(&p["size"]) as u64,
            pos: int(&p["pos"]) as u64,
            key: p["flags"].as_str().unwrap_or("").starts_with('K'),
        })
        .collect()
}

/// What a checked file held, for the per-file assertions.
#[derive(Debug)]
struct Checked {
    /// Per track, in `moov` order: its table and its `ctts` version, if it has one.
    tracks: Vec<(SampleTable, Option<u8>)>,
    codecs: Vec<Codec>,
    moov_before_mdat: bool,
}

fn ctts_version(trak: BoxRef<'_>) -> Option<u8> {
    let stbl = trak
        .child(kinds::MDIA)
        .and_then(|b| b.child(kinds::MINF))
        .and_then(|b| b.child(kinds::STBL))
        .unwrap();
    stbl.find(FourCc(*b"ctts")).unwrap().map(|b| b.body[0])
}

/// Parses every track's sample table and checks it against ffprobe and the file's bytes:
/// the same number of samples per stream; for each sample the same size, file position and
/// key flag; decode and presentation times each equal up to one constant per stream (ffprobe
/// applies the edit list, we do not), the constants being the ones ffmpeg derives; and the
/// samples of all tracks together tile the `mdat` payloads exactly, video samples each being
/// a whole sequence of length-prefixed NAL units with a random-access picture exactly when
/// the table says sync.
fn check(path: &Path) -> Checked {
    let bytes = fs::read(path).unwrap();
    let top: Vec<BoxRef<'_>> = Boxes::new(&bytes, 0).collect::<Result<_, _>>().unwrap();
    assert!(
        top.iter().all(|b| b.kind != kinds::MOOF),
        "{}: not a progressive file",
        path.display()
    );
    let moov_at = top.iter().position(|b| b.kind == kinds::MOOV).unwrap();
    let moov = top[moov_at];
    let mdats: Vec<_> = top.iter().filter(|b| b.kind == kinds::MDAT).collect();
    let moov_before_mdat = top.iter().position(|b| b.kind == kinds::MDAT).unwrap() > moov_at;

    let moov_bytes =
        Bytes::copy_from_slice(&bytes[moov.offset as usize..(moov.offset + moov.size()) as usize]);
    let init = InitSegment::parse(moov_bytes, moov.offset).unwrap();
    let traks: Vec<_> = moov
        .children()
        .map(Result::unwrap)
        .filter(|b| b.kind == kinds::TRAK)
        .collect();
    assert_eq!(traks.len(), init.tracks.len());

    let packets = probe(path);
    let mut all: Vec<(u64, u32)> = Vec::new();
    let mut tracks = Vec::new();
    let mut codecs = Vec::new();
    for (stream, (trak, info)) in traks.iter().zip(&init.tracks).enumerate() {
        let table = SampleTable::parse(*trak).unwrap();
        let ours: Vec<TableSample> = table.iter().collect();
        let theirs: Vec<Packet> = packets
            .iter()
            .filter(|p| p.stream == stream)
            .copied()
            .collect();
        let codec = info.sample_entries[0].codec;
        let what = format!("{} stream {stream} ({codec})", path.display());
        assert_eq!(ours.len(), table.len(), "{what}");
        assert_eq!(ours.len(), theirs.len(), "{what}: sample count");
        assert!(!ours.is_empty(), "{what}");

        // ffprobe's times are ours plus a constant: presentation starts at the edit's media
        // time, and when composition offsets go negative ffmpeg moves decode times back by
        // the most negative one, so that no pts precedes its dts.
        let pts = |s: &TableSample| s.dts as i64 + i64::from(s.composition_offset);
        let pts_shift = theirs[0].pts - pts(&ours[0]);
        let dts_shift = theirs[0].dts - ours[0].dts as i64;
        let least_offset = ours.iter().map(|s| s.composition_offset).min().unwrap();
        assert_eq!(
            dts_shift - pts_shift,
            i64::from(least_offset.min(0)),
            "{what}: dts shift {dts_shift} vs pts shift {pts_shift}"
        );
        if info.edit.delay == 0 {
            assert_eq!(pts_shift, -info.edit.media_time, "{what}: edit list shift");
        }
        for (k, (s, p)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(
                (s.offset, u64::from(s.size), s.sync),
                (p.pos, p.size, p.key),
                "{what} sample {k}: position, size, key"
            );
            assert_eq!(
                (s.dts as i64 + dts_shift, pts(s) + pts_shift),
                (p.dts, p.pts),
                "{what} sample {k}: dts, pts (shifts {dts_shift}, {pts_shift})"
            );
            assert_eq!(s.description_index, 1, "{what} sample {k}");
        }
        let last = ours.last().unwrap();
        assert_eq!(table.duration(), last.dts + u64::from(last.duration));
        assert!(table.data_end() <= bytes.len() as u64, "{what}");

        if matches!(codec, Codec::H264 | Codec::H265) {
            for (k, s) in ours.iter().enumerate() {
                let data = &bytes[s.offset as usize..(s.offset + u64::from(s.size)) as usize];
                let random_access =
                    nal_types(data, codec, &what)
                        .into_iter()
                        .any(|t| match codec {
                            Codec::H264 => t == 5,
                            _ => (16..=21).contains(&t),
                        });
                assert_eq!(random_access, s.sync, "{what} sample {k}: IRAP vs sync");
            }
        }
        all.extend(ours.iter().map(|s| (s.offset, s.size)));
        tracks.push((table, ctts_version(*trak)));
        codecs.push(codec);
    }
    assert_eq!(
        all.len(),
        packets.len(),
        "{}: total samples",
        path.display()
    );

    // The samples tile the mdat payloads: each lies inside one, none overlaps the next, and
    // together they are every payload byte.
    all.sort_unstable();
    let payloads: Vec<(u64, u64)> = mdats
        .iter()
        .map(|b| (b.body_offset(), b.body_offset() + b.body.len() as u64))
        .collect();
    let mut previous_end = 0;
    for &(offset, size) in &all {
        let end = offset + u64::from(size);
        assert!(
            payloads.iter().any(|&(s, e)| s <= offset && end <= e),
            "{}: sample {offset}..{end} outside every mdat payload",
            path.display()
        );
        assert!(
            offset >= previous_end,
            "{}: samples overlap at {offset}",
            path.display()
        );
        previous_end = end;
    }
    assert_eq!(
        all.iter().map(|s| u64::from(s.1)).sum::<u64>(),
        payloads.iter().map(|p| p.1 - p.0).sum::<u64>(),
        "{}: sample bytes vs mdat payload bytes",
        path.display()
    );

    Checked {
        tracks,
        codecs,
        moov_before_mdat,
    }
}

/// The NAL unit types of a sample of 4-byte length-prefixed NAL units, checking the lengths add
/// up to the sample exactly.
fn nal_types(data: &[u8], codec: Codec, what: &str) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i < data.len() {
        assert!(i + 5 <= data.len(), "{what}: NAL length cut short");
        let len = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as usize;
        let header = data[i + 4];
        types.push(match codec {
            Codec::H264 => header & 0x1f,
            _ => (header >> 1) & 0x3f,
        });
        i += 4 + len;
    }
    assert_eq!(i, data.len(), "{what}: NAL lengths overrun the sample");
    types
}

fn make(path: &Path, extra: &[&str]) {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        "3",
    ];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}

/// A keyframe every 12 frames, so that `stss` has several entries.
const H264: &[&str] = &["-c:v", "libx264", "-g", "12", "-c:a", "aac"];

fn video_and_audio(c: &Checked) -> (&SampleTable, &SampleTable) {
    assert_eq!(c.codecs, [Codec::H264, Codec::Aac]);
    (&c.tracks[0].0, &c.tracks[1].0)
}

#[test]
fn h264_with_b_frames_and_aac() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h264.mp4");
    make(&path, H264);
    let c = check(&path);
    let (video, audio) = video_and_audio(&c);
    assert!(!c.moov_before_mdat);
    assert_eq!(video.len(), 75);
    assert!(video.iter().any(|s| s.composition_offset != 0), "B-frames");
    assert!(
        video.iter().filter(|s| s.sync).count() >= 7,
        "keyframes every 12 frames"
    );
    assert!(video.iter().any(|s| !s.sync));
    assert!(audio.iter().all(|s| s.sync));
    assert_eq!(c.tracks[0].1, Some(0), "ctts version");
}

#[test]
fn h265_with_b_frames_and_aac() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h265.mp4");
    make(
        &path,
        &[
            "-c:v",
            "libx265",
            "-tag:v",
            "hvc1",
            "-g",
            "12",
            "-x265-params",
            "log-level=error",
            "-c:a",
            "aac",
        ],
    );
    let c = check(&path);
    assert_eq!(c.codecs, [Codec::H265, Codec::Aac]);
    let video = &c.tracks[0].0;
    assert_eq!(video.len(), 75);
    assert!(video.iter().any(|s| s.composition_offset != 0), "B-frames");
    assert!(
        video.iter().filter(|s| s.sync).count() > 1,
        "several keyframes"
    );
}

#[test]
fn faststart_moves_the_moov_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faststart.mp4");
    let mut args = H264.to_vec();
    args.extend(["-movflags", "+faststart"]);
    make(&path, &args);
    let c = check(&path);
    video_and_audio(&c);
    assert!(c.moov_before_mdat);
}

#[test]
fn negative_composition_offsets_in_ctts_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("negative-cts.mp4");
    let mut args = H264.to_vec();
    args.extend(["-movflags", "+negative_cts_offsets"]);
    make(&path, &args);
    let c = check(&path);
    let (video, _) = video_and_audio(&c);
    assert_eq!(c.tracks[0].1, Some(1), "ctts version");
    assert!(video.iter().any(|s| s.composition_offset < 0));
}
