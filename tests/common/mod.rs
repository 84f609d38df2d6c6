//! Helpers shared by the integration tests: real media made by ffmpeg, checked by ffprobe,
//! ffmpeg's decoder and an MP4 parser written independently of ours (mp4-atom).
#![allow(dead_code)]
pub mod browser;
pub mod mosquitto;
pub mod receiver;
pub mod rtsp;
pub mod s3;
pub mod serve;
pub mod tmpfs;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Seconds since the epoch of an RFC 3339 time the service wrote.
#[track_caller]
pub fn unix_seconds(rfc3339: &str) -> f64 {
    preroll::time::parse_rfc3339(rfc3339)
        .unwrap_or_else(|| panic!("{rfc3339:?} is not an RFC 3339 time"))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Reads `current` every 100 ms until `done` holds for it, and returns it; after `limit`,
/// panics with `shown` of what was last read.
#[track_caller]
pub fn wait_for<T>(
    limit: std::time::Duration,
    mut current: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
    shown: impl Fn(&T) -> String,
) -> T {
    let start = std::time::Instant::now();
    loop {
        let got = current();
        if done(&got) {
            return got;
        }
        assert!(
            start.elapsed() < limit,
            "not within {limit:?}; got {}",
            shown(&got)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs a tool and panics with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (is ffmpeg installed? run scripts/deps.sh)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn ffmpeg(args: &[&str]) {
    let mut c = Command::new("ffmpeg");
    c.args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(args);
    run(&mut c);
}

/// What a fixture stream holds.
#[derive(Debug, Clone, Copy)]
pub struct Media {
    pub seconds: u32,
    pub video: Video,
    pub audio: bool,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Source pattern: different patterns give different pictures.
    pub pattern: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Video {
    /// libx264 with its default B-frames.
    H264,
    /// libx265 with B-frames, tagged hvc1.
    H265,
}

impl Video {
    /// ffmpeg's encoder options for this codec.
    pub fn encoder_args(self) -> &'static [&'static str] {
        match self {
            Video::H264 => &["-c:v", "libx264", "-preset", "veryfast"],
            Video::H265 => &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "bframes=3:log-level=error",
                "-tag:v",
                "hvc1",
            ],
        }
    }
}

impl Default for Media {
    fn default() -> Self {
        Media {
            seconds: 4,
            video: Video::H264,
            audio: true,
            width: 320,
            height: 240,
            fps: 25,
            pattern: "testsrc2",
        }
    }
}

impl Media {
    fn input_args(&self) -> Vec<String> {
        let mut a = vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!(
                "{}=size={}x{}:rate={}",
                self.pattern, self.width, self.height, self.fps
            ),
        ];
        if self.audio {
            a.extend(
                ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"].map(String::from),
            );
        }
        a.extend(["-t".into(), self.seconds.to_string()]);
        let gop = self.fps.to_string();
        a.extend(self.video.encoder_args().iter().map(|s| s.to_string()));
        a.extend(["-pix_fmt", "yuv420p", "-g", &gop].map(String::from));
        if self.audio {
            a.extend(["-c:a", "aac", "-b:a", "64k"].map(String::from));
        }
        a
    }

    /// An HLS fMP4 directory (init.mp4, seg*.m4s, index.m3u8) as ffmpeg's muxer writes it.
    pub fn hls(&self, dir: &Path) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let mut args = self.input_args();
        let seg = dir.join("seg%d.m4s");
        args.extend(
            [
                "-f",
                "hls",
                "-hls_segment_type",
                "fmp4",
                "-hls_time",
                "1",
                "-hls_playlist_type",
                "vod",
                "-hls_fmp4_init_filename",
                "init.mp4",
                "-hls_segment_filename",
                seg.to_str().unwrap(),
            ]
            .map(String::from),
        );
        args.push(dir.join("index.m3u8").to_str().unwrap().to_owned());
        ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
        dir.to_owned()
    }

    /// An ordinary (progressive) MP4, `moov` after `mdat` as ffmpeg writes it by default.
    pub fn progressive(&self, path: &Path) -> PathBuf {
        let mut args = self.input_args();
        args.push(path.to_str().unwrap().into());
        ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
        path.to_owned()
    }

    /// A single fragmented MP4 with the given movflags.
    pub fn fragmented(&self, path: &Path, movflags: &str) -> PathBuf {
        let mut args = self.input_args();
        args.extend([
            "-movflags".into(),
            movflags.into(),
            path.to_str().unwrap().into(),
        ]);
        ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
        path.to_owned()
    }
}

/// init.mp4 + the segments in playlist order, as one fragmented file: the reference the
/// same demuxer reads to compare against the clip.
pub fn concat_hls(dir: &Path, out: &Path) -> PathBuf {
    let playlist = fs::read_to_string(dir.join("index.m3u8")).unwrap();
    let mut bytes = fs::read(dir.join("init.mp4")).unwrap();
    for line in playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        bytes.extend(fs::read(dir.join(line)).unwrap());
    }
    fs::write(out, bytes).unwrap();
    out.to_owned()
}

/// ffmpeg's decoder complaints about a file (empty when it decodes cleanly). ffmpeg exits 0
/// even when it reports decode errors, so its stderr is what counts.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
        .arg(path)
        // Each decoded picture as it is: the null muxer otherwise retimes them to the
        // stream's nominal rate, and two pictures of a camera whose clock jitters can land
        // on the same tick there (a complaint about the muxer, not about the file).
        .args(["-fps_mode", "passthrough", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        s.push_str(&format!("\n(exit {})", out.status));
    }
    s
}

#[track_caller]
pub fn assert_decodes_cleanly(path: &Path) {
    let errors = decode_errors(path);
    assert!(
        errors.trim().is_empty(),
        "{} does not decode cleanly:\n{errors}",
        path.display()
    );
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub codec: String,
    pub codec_tag: String,
    pub kind: String,
    pub time_base: (i64, i64),
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub rotation: Option<i64>,
    /// ffprobe's `start_time` (seconds): where presentation starts after the edit list.
    pub start_time: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub stream: usize,
    pub pts: i64,
    pub dts: i64,
    pub duration: i64,
    pub key: bool,
    /// Decoded but not presented: before the start of the edit list (ffprobe's `D` flag).
    pub discard: bool,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub streams: Vec<Stream>,
    pub packets: Vec<Packet>,
    pub duration: f64,
}

impl Probe {
    pub fn of(path: &Path) -> Probe {
        let out = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_streams",
                "-show_packets",
                "-show_format",
                "-of",
                "json",
            ])
            .arg(path));
        let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
        let streams = v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let tb = s["time_base"].as_str().unwrap();
                let (n, d) = tb.split_once('/').unwrap();
                let rotation = s["side_data_list"]
                    .as_array()
                    .and_then(|l| l.iter().find_map(|d| d["rotation"].as_i64()));
                Stream {
                    codec: s["codec_name"].as_str().unwrap_or("").to_owned(),
                    codec_tag: s["codec_tag_string"].as_str().unwrap_or("").to_owned(),
                    kind: s["codec_type"].as_str().unwrap_or("").to_owned(),
                    time_base: (n.parse().unwrap(), d.parse().unwrap()),
                    width: s["width"].as_i64(),
                    height: s["height"].as_i64(),
                    rotation,
                    start_time: s["start_time"].as_str().and_then(|t| t.parse().ok()),
                }
            })
            .collect();
        let packets = v["packets"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|p| Packet {
                stream: p["stream_index"].as_u64().unwrap() as usize,
                pts: p["pts"].as_i64().unwrap_or(i64::MIN),
                dts: p["dts"].as_i64().unwrap_or(i64::MIN),
                duration: p["duration"].as_i64().unwrap_or(0),
                key: p["flags"].as_str().unwrap_or("").starts_with('K'),
                discard: p["flags"].as_str().unwrap_or("").contains('D'),
            })
            .collect();
        let duration = v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0);
        Probe {
            streams,
            packets,
            duration,
        }
    }

    pub fn stream_of(&self, kind: &str) -> Option<usize> {
        self.streams.iter().position(|s| s.kind == kind)
    }

    pub fn count(&self, kind: &str) -> usize {
        self.streams.iter().filter(|s| s.kind == kind).count()
    }

    pub fn packets_of(&self, stream: usize) -> Vec<Packet> {
        self.packets
            .iter()
            .filter(|p| p.stream == stream)
            .copied()
            .collect()
    }

    /// Seconds from the earliest presentation time of any stream to the end of the last
    /// packet presented: the length the header should state. Packets the edit lists hide are
    /// left out.
    pub fn extent(&self) -> f64 {
        let secs = |p: &Packet, t: i64| {
            let (n, d) = self.streams[p.stream].time_base;
            t as f64 * n as f64 / d as f64
        };
        let shown = || self.packets.iter().filter(|p| !p.discard);
        let start = shown().map(|p| secs(p, p.pts)).fold(f64::MAX, f64::min);
        let end = shown()
            .map(|p| secs(p, p.pts + p.duration))
            .fold(f64::MIN, f64::max);
        end - start
    }

    /// Seconds from the first decode time to the end of the last packet of a stream.
    pub fn span(&self, stream: usize) -> f64 {
        let p = self.packets_of(stream);
        let (n, d) = self.streams[stream].time_base;
        let first = p.iter().map(|p| p.dts).min().unwrap();
        let end = p.iter().map(|p| p.dts + p.duration).max().unwrap();
        (end - first) as f64 * n as f64 / d as f64
    }
}

/// Asserts the clip holds exactly the reference's packets, each stream shifted by one
/// constant, and the shifts agree across streams in seconds (A/V sync kept).
#[track_caller]
pub fn assert_same_packets_shifted(reference: &Probe, clip: &Probe) {
    assert_eq!(reference.streams.len(), clip.streams.len(), "stream count");
    let mut shifts_secs = Vec::new();
    for (i, s) in reference.streams.iter().enumerate() {
        let r = reference.packets_of(i);
        let c = clip.packets_of(i);
        assert_eq!(r.len(), c.len(), "stream {i} ({}) packet count", s.codec);
        assert_eq!(
            s.time_base, clip.streams[i].time_base,
            "stream {i} time base"
        );
        let shift = c[0].pts - r[0].pts;
        for (k, (a, b)) in r.iter().zip(&c).enumerate() {
            assert_eq!(
                b.pts - a.pts,
                shift,
                "stream {i} packet {k}: pts not shifted by {shift}"
            );
            assert_eq!(
                b.dts - a.dts,
                shift,
                "stream {i} packet {k}: dts not shifted by {shift}"
            );
            // ffmpeg leaves the duration of a fragmented file's first packet unknown (0); the
            // clip's audio edit ends with the video, which can shorten its last packet.
            if a.duration > 0 && k + 1 < r.len() {
                assert_eq!(a.duration, b.duration, "stream {i} packet {k}: duration");
            } else {
                assert!(
                    b.duration <= a.duration || a.duration == 0,
                    "stream {i} packet {k}: duration"
                );
            }
            assert_eq!(a.key, b.key, "stream {i} packet {k}: key");
        }
        shifts_secs.push(shift as f64 * s.time_base.0 as f64 / s.time_base.1 as f64);
    }
    for w in shifts_secs.windows(2) {
        assert!(
            (w[0] - w[1]).abs() < 1e-3,
            "A/V shifts differ: {shifts_secs:?}"
        );
    }
}

/// `record SRC -o OUT --lookback 1 --duration 2`, which must succeed: its warnings (stderr).
#[track_caller]
pub fn record_warnings(src: &str, out: &Path) -> String {
    let run = preroll(&[
        "record",
        src,
        "-o",
        s(out),
        "--lookback",
        "1",
        "--duration",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "record {src}: {stderr}");
    stderr
}

/// Runs the preroll binary.
pub fn preroll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_preroll"))
        .args(args)
        .env("PREROLL_LOG", "warn")
        .output()
        .expect("run preroll")
}

#[track_caller]
pub fn preroll_ok(args: &[&str]) -> String {
    let out = preroll(args);
    assert!(
        out.status.success(),
        "preroll {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Structural checks with mp4-atom, a parser independent of ours. A clip is finished as a
/// progressive MP4 (see `check_progressive`); one finished on a full disk stays fragmented
/// (see `check_fragmented`). Returns the moov.
pub fn check_structure(path: &Path) -> mp4_atom::Moov {
    let bytes = fs::read(path).unwrap();
    let atoms = top_level_atoms(&bytes, &path.display().to_string());
    assert!(matches!(atoms[0].1, mp4_atom::Any::Ftyp(_)), "ftyp first");
    let moov = if matches!(atoms[1].1, mp4_atom::Any::Moov(_)) {
        check_fragmented(&bytes, &atoms)
    } else {
        check_progressive(&bytes, &atoms)
    };
    assert!(moov.mvhd.duration > 0);
    for trak in &moov.trak {
        assert!(
            trak.tkhd.duration > 0,
            "track {} duration",
            trak.tkhd.track_id
        );
    }
    moov
}

/// Whether a finished clip is a progressive MP4 (its media described by one moov at the end).
pub fn is_progressive(path: &Path) -> bool {
    let bytes = fs::read(path).unwrap();
    let atoms = top_level_atoms(&bytes, &path.display().to_string());
    matches!(atoms.last().map(|a| &a.1), Some(mp4_atom::Any::Moov(_)))
        && !matches!(atoms[1].1, mp4_atom::Any::Moov(_))
}

/// A progressive clip: `ftyp`, the hidden fragmented header (`free`), the media (`mdat`s,
/// each after the `free` box its `moof` became), and the `moov` last, without `mvex`. Every
/// sample its tables describe lies inside an `mdat` payload, and the tables agree on the
/// sample count.
fn check_progressive(bytes: &[u8], atoms: &[(u64, mp4_atom::Any)]) -> mp4_atom::Moov {
    use mp4_atom::Any;
    assert!(matches!(atoms[1].1, Any::Free(_)), "hidden header second");
    let (moov_at, Any::Moov(moov)) = atoms.last().unwrap() else {
        panic!("moov last")
    };
    assert!(moov.mvex.is_none(), "a progressive moov has no mvex");
    // Payload ranges of the mdats.
    let mut payloads = Vec::new();
    for (i, (at, a)) in atoms.iter().enumerate().skip(2) {
        match a {
            Any::Free(_) => {}
            Any::Mdat(m) => {
                let end = atoms.get(i + 1).map_or(bytes.len() as u64, |n| n.0);
                payloads.push((end - m.data.len() as u64, end));
            }
            Any::Moov(_) => assert_eq!(*at, *moov_at, "one moov, last"),
            other => panic!("unexpected top-level box {:?}", other.kind()),
        }
    }
    assert!(!payloads.is_empty(), "at least one mdat");
    for trak in &moov.trak {
        let stbl = &trak.mdia.minf.stbl;
        let sizes: Vec<u32> = match &stbl.stsz.samples {
            mp4_atom::StszSamples::Identical { count, size } => vec![*size; *count as usize],
            mp4_atom::StszSamples::Different { sizes } => sizes.clone(),
        };
        let stts: u64 = stbl
            .stts
            .entries
            .iter()
            .map(|e| u64::from(e.sample_count))
            .sum();
        assert_eq!(stts, sizes.len() as u64, "stts and stsz agree");
        let offsets: Vec<u64> = match (&stbl.stco, &stbl.co64) {
            (Some(s), _) => s.entries.iter().map(|&o| u64::from(o)).collect(),
            (None, Some(c)) => c.entries.clone(),
            _ => panic!("no chunk offsets"),
        };
        let runs = &stbl.stsc.entries;
        let mut sample = 0usize;
        for (c, &off) in offsets.iter().enumerate() {
            let chunk = c as u32 + 1;
            let run = runs
                .iter()
                .rev()
                .find(|r| r.first_chunk <= chunk)
                .expect("stsc covers every chunk");
            let len: u64 = sizes[sample..sample + run.samples_per_chunk as usize]
                .iter()
                .map(|&s| u64::from(s))
                .sum();
            sample += run.samples_per_chunk as usize;
            assert!(
                payloads.iter().any(|&(a, b)| off >= a && off + len <= b),
                "track {} chunk {chunk} ({off}+{len}) lies outside every mdat payload",
                trak.tkhd.track_id
            );
        }
        assert_eq!(sample, sizes.len(), "the chunks hold every sample");
    }
    moov.clone()
}

/// A clip finished fragmented (no room for the sample tables): the box sequence, `mehd`,
/// fragment numbering, data offsets inside their mdat, and the random access index.
fn check_fragmented(bytes: &[u8], atoms: &[(u64, mp4_atom::Any)]) -> mp4_atom::Moov {
    use mp4_atom::Any;
    let Any::Moov(moov) = &atoms[1].1 else {
        panic!("moov second")
    };
    let mvex = moov.mvex.as_ref().expect("mvex");
    let mehd = mvex.mehd.as_ref().expect("finished clip has mehd");
    assert_eq!(
        mehd.fragment_duration, moov.mvhd.duration,
        "mehd = mvhd duration"
    );
    let mut expected_seq = 1;
    let mut moof_offsets = Vec::new();
    let mut i = 2;
    while i < atoms.len() {
        match &atoms[i].1 {
            Any::Free(_) => {}
            Any::Moof(moof) => {
                assert_eq!(moof.mfhd.sequence_number, expected_seq, "moof sequence");
                expected_seq += 1;
                moof_offsets.push(atoms[i].0);
                let moof_size = (atoms[i + 1].0 - atoms[i].0) as i64;
                let Any::Mdat(mdat) = &atoms[i + 1].1 else {
                    panic!("mdat after moof")
                };
                let mdat_end = atoms.get(i + 2).map_or(bytes.len() as u64, |a| a.0);
                let mdat_hdr = (mdat_end - atoms[i + 1].0) as i64 - mdat.data.len() as i64;
                for traf in &moof.traf {
                    assert!(traf.tfhd.default_base_is_moof);
                    assert!(traf.tfdt.is_some(), "tfdt in every traf");
                    for trun in &traf.trun {
                        let off = trun.data_offset.expect("data offset") as i64;
                        let size: i64 = (0..trun.samples.len())
                            .map(|k| {
                                trun.samples
                                    .get(k)
                                    .and_then(|e| e.size)
                                    .or(traf.tfhd.default_sample_size)
                                    .unwrap() as i64
                            })
                            .sum();
                        assert!(
                            off >= moof_size + mdat_hdr,
                            "data offset before mdat payload"
                        );
                        assert!(
                            off - moof_size - mdat_hdr + size <= mdat.data.len() as i64,
                            "run data past the end of its mdat"
                        );
                    }
                }
                i += 1;
            }
            Any::Mfra(mfra) => {
                let tfra = &mfra.tfra[0];
                assert!(!tfra.entries.is_empty(), "index has entries");
                for e in &tfra.entries {
                    assert!(
                        moof_offsets.contains(&e.moof_offset),
                        "tfra points at a moof"
                    );
                }
                assert_eq!(i, atoms.len() - 1, "mfra is last");
            }
            other => panic!("unexpected top-level box {:?}", other.kind()),
        }
        i += 1;
    }
    assert!(expected_seq > 1, "at least one fragment");
    moov.clone()
}

/// The 36 matrix bytes of the first trak's tkhd, read straight from the file (they end 8
/// bytes before the box end).
pub fn first_tkhd_matrix(path: &Path) -> Vec<u8> {
    let bytes = fs::read(path).unwrap();
    let at = bytes.windows(4).position(|w| w == b"tkhd").unwrap() - 4;
    let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let end = at + size;
    bytes[end - 44..end - 8].to_vec()
}

/// The number just before `marker` in a summary line, e.g. `number_before(s, " s of pre-roll")`
/// for "… with 2.004 s of pre-roll …".
#[track_caller]
pub fn number_before<T: std::str::FromStr>(summary: &str, marker: &str) -> T {
    let at = summary
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {summary:?}"));
    let head = &summary[..at];
    let word = &head[head.rfind(' ').map_or(0, |i| i + 1)..];
    word.parse()
        .unwrap_or_else(|_| panic!("{word:?} before {marker:?} is not a number"))
}

/// `preroll record SRC --lookback 2 --duration 3` into `out` (paced in real time), with the
/// checks every such clip must pass: it decodes cleanly, its structure holds, and it holds the
/// pre-roll reported plus 3 s. Sources have a keyframe every second. Returns the summary line,
/// the clip's probe and the pre-roll.
#[track_caller]
pub fn record_2_plus_3(src: &Path, out: &Path) -> (String, Probe, f64) {
    let summary = preroll_ok(&[
        "record",
        s(src),
        "-o",
        s(out),
        "--lookback",
        "2",
        "--duration",
        "3",
    ]);
    assert_decodes_cleanly(out);
    check_structure(out);
    let pre = preroll_of(&summary);
    // The clip starts at the newest keyframe at or before trigger − lookback: within one
    // GOP (1 s) before that point.
    assert!((2.0..=3.05).contains(&pre), "pre-roll {pre}: {summary}");
    let clip = Probe::of(out);
    let v = clip.stream_of("video").expect("a video stream");
    let span = clip.span(v);
    assert!(
        span >= pre + 3.0 - 0.05 && span <= pre + 3.0 + 1.05,
        "video {span} s for {pre} s pre-roll + 3 s: {summary}"
    );
    (summary, clip, pre)
}

/// The pre-roll a `record` summary line reports, in seconds.
pub fn preroll_of(summary: &str) -> f64 {
    number_before(summary, " s of pre-roll")
}

/// The discontinuities a summary line counts.
pub fn discontinuities_of(summary: &str) -> usize {
    number_before(summary, " discontinuities")
}

/// Loads an HLS directory as segments (one per .m4s), the way the live path hands them over.
pub fn hls_segments(
    hls: &Path,
    stream_id: u64,
    first_sequence: u64,
) -> Vec<preroll::segment::Segment> {
    let init = std::sync::Arc::new(
        preroll::mp4::InitSegment::parse(fs::read(hls.join("init.mp4")).unwrap().into(), 0)
            .unwrap(),
    );
    let mut files: Vec<_> = fs::read_dir(hls)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "m4s"))
        .collect();
    files.sort_by(|a, b| preroll::remux::natural_cmp(a.to_str().unwrap(), b.to_str().unwrap()));
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let bytes = fs::read(f).unwrap().into();
            let fragments = preroll::mp4::Fragment::parse_all(&bytes, 0, &init).unwrap();
            preroll::segment::Segment::new(
                first_sequence + i as u64,
                stream_id,
                init.clone(),
                fragments,
            )
        })
        .collect()
}

/// Every top-level box of a file as mp4-atom reads it, with its offset; panics naming `what`
/// and the offset where mp4-atom cannot read one.
pub fn top_level_atoms(bytes: &[u8], what: &str) -> Vec<(u64, mp4_atom::Any)> {
    use mp4_atom::{Any, ReadFrom};
    let mut cur = std::io::Cursor::new(bytes);
    let mut atoms = Vec::new();
    loop {
        let pos = cur.position();
        match <Option<Any> as ReadFrom>::read_from(&mut cur) {
            Ok(Some(a)) => atoms.push((pos, a)),
            Ok(None) => break,
            Err(e) => panic!("{what}: mp4-atom cannot parse box at {pos}: {e}"),
        }
    }
    atoms
}

/// One complete `moof` + `mdat` pair found by [`fragments_on_disk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentOnDisk {
    /// Offset of its `moof`; `end` is where its `mdat` ends.
    pub offset: u64,
    pub end: u64,
    pub sequence: u32,
    /// Per traf, in order: (track id, samples, sample bytes).
    pub tracks: Vec<(u32, usize, u64)>,
}

/// What a clip file — finished, or a `.partial` cut anywhere — holds, read with mp4-atom
/// box by box so that a box cut short ends the walk instead of failing it.
#[derive(Debug, Clone)]
pub struct FragmentsOnDisk {
    pub len: u64,
    /// The complete fragments, in file order.
    pub fragments: Vec<FragmentOnDisk>,
    /// End of the last complete fragment (of the boxes before the first `moof` when there
    /// is none): everything after it is a torn tail.
    pub complete_end: u64,
    /// Why the walk stopped before the end of the file, if it did.
    pub stop: Option<String>,
    /// An `mfra` index was found (only clips finished fragmented have one).
    pub mfra: bool,
    /// A `moov` follows the fragments: a clip finished progressive, whose fragmented header
    /// and `moof`s are hidden as `free` boxes (read here as what they were).
    pub moov_last: bool,
}

impl FragmentsOnDisk {
    /// Bytes after the last complete fragment.
    pub fn torn_tail(&self) -> u64 {
        self.len - self.complete_end
    }

    /// Per track id: (samples, sample bytes) over every complete fragment.
    pub fn per_track(&self) -> std::collections::BTreeMap<u32, (usize, u64)> {
        let mut m = std::collections::BTreeMap::new();
        for f in &self.fragments {
            for &(id, n, b) in &f.tracks {
                let e = m.entry(id).or_insert((0, 0));
                e.0 += n;
                e.1 += b;
            }
        }
        m
    }

    /// Sample bytes over every complete fragment.
    pub fn media_bytes(&self) -> u64 {
        self.per_track().values().map(|v| v.1).sum()
    }
}

/// Walks `bytes` as top-level boxes: the sizes are read here (a box whose size runs past
/// the end, or a size of 0, which preroll never writes and zeros never written look like,
/// ends the walk), each whole box is decoded by mp4-atom. A `moof` followed by a whole
/// `mdat` is a complete fragment; sample sizes come from the `trun`, else the `tfhd`, else
/// the `trex` of the file's `moov`.
pub fn fragments_on_disk(bytes: &[u8]) -> FragmentsOnDisk {
    use mp4_atom::{Any, ReadFrom};
    let len = bytes.len() as u64;
    let mut out = FragmentsOnDisk {
        len,
        fragments: Vec::new(),
        complete_end: 0,
        stop: None,
        mfra: false,
        moov_last: false,
    };
    let mut trex = std::collections::HashMap::new();
    let mut pending: Option<(u64, mp4_atom::Moof)> = None;
    let mut pos = 0u64;
    while pos < len {
        let rest = &bytes[pos as usize..];
        if rest.len() < 8 {
            out.stop = Some(format!(
                "{} bytes at {pos}: a box header cut short",
                rest.len()
            ));
            break;
        }
        let small = u32::from_be_bytes(rest[..4].try_into().unwrap()) as u64;
        let size = match small {
            1 if rest.len() >= 16 => u64::from_be_bytes(rest[8..16].try_into().unwrap()),
            1 => {
                out.stop = Some(format!("64-bit box header at {pos} cut short"));
                break;
            }
            s => s,
        };
        if size < 8 || size > len - pos {
            out.stop = Some(format!(
                "box at {pos} of size {size}: {} bytes left",
                len - pos
            ));
            break;
        }
        // A progressive finish hides the fragmented header and the moofs as free boxes of
        // the same size: read them as what they were.
        let mut boxed = rest[..size as usize].to_vec();
        if &boxed[4..8] == b"free" && boxed.len() >= 16 {
            match &boxed[12..16] {
                b"mvhd" => boxed[4..8].copy_from_slice(b"moov"),
                b"mfhd" => boxed[4..8].copy_from_slice(b"moof"),
                _ => {}
            }
        }
        let mut cur = std::io::Cursor::new(&boxed[..]);
        let atom = match <Option<Any> as ReadFrom>::read_from(&mut cur) {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => {
                out.stop = Some(format!("mp4-atom cannot parse the box at {pos}: {e}"));
                break;
            }
        };
        let end = pos + size;
        match atom {
            Any::Moov(_) if !out.fragments.is_empty() => out.moov_last = true,
            Any::Moov(moov) => {
                for t in moov.mvex.iter().flat_map(|m| &m.trex) {
                    trex.insert(t.track_id, t.default_sample_size);
                }
                out.complete_end = end;
            }
            Any::Ftyp(_) | Any::Free(_) if out.fragments.is_empty() && pending.is_none() => {
                out.complete_end = end;
            }
            Any::Moof(moof) => pending = Some((pos, moof)),
            Any::Mdat(_) => {
                let (offset, moof) = pending.take().expect("mdat without a moof before it");
                let tracks = moof
                    .traf
                    .iter()
                    .map(|traf| {
                        let (mut n, mut b) = (0usize, 0u64);
                        for trun in &traf.trun {
                            for e in trun.samples.iter() {
                                let size = e
                                    .size
                                    .or(traf.tfhd.default_sample_size)
                                    .or_else(|| trex.get(&traf.tfhd.track_id).copied())
                                    .expect("a sample size");
                                n += 1;
                                b += u64::from(size);
                            }
                        }
                        (traf.tfhd.track_id, n, b)
                    })
                    .collect();
                out.fragments.push(FragmentOnDisk {
                    offset,
                    end,
                    sequence: moof.mfhd.sequence_number,
                    tracks,
                });
                out.complete_end = end;
            }
            Any::Mfra(_) => out.mfra = true,
            _ => {}
        }
        pos = end;
    }
    out
}
