//! Camera audio in clips, against a real RTSP server: AAC at several rates and layouts passes
//! through; G.711 (A-law, µ-law) and L16 are kept as FLAC, and must decode to exactly what
//! ffmpeg's own decoder makes of the same RTP stream captured beside preroll.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::rtsp::{Auth, RtspServer};
use common::*;

/// Records 4 s (no lookback) and checks what every clip must be; returns the probe.
fn record(url: &str, out: &Path) -> Probe {
    preroll_ok(&[
        "record",
        url,
        "-o",
        s(out),
        "--lookback",
        "0",
        "--duration",
        "4",
    ]);
    assert_decodes_cleanly(out);
    check_structure(out);
    let probe = Probe::of(out);
    assert_eq!(probe.count("video"), 1);
    assert_eq!(probe.count("audio"), 1, "the clip keeps the audio");
    probe
}

/// ffprobe's view of the audio stream: (codec, sample rate, channels).
fn audio_format(path: &Path) -> (String, u32, u32) {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries"])
        .args(["stream=codec_name,sample_rate,channels", "-of", "csv=p=0"])
        .arg(path));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let f: Vec<&str> = text.split(',').collect();
    assert_eq!(f.len(), 3, "{text}");
    (
        f[0].to_owned(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
    )
}

/// The decoded audio frames: (pts in track ticks, samples per channel).
fn audio_frames(path: &Path) -> Vec<(i64, i64)> {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries"])
        .args(["frame=pts,nb_samples", "-of", "csv=p=0"])
        .arg(path));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (pts, n) = l.trim().split_once(',').expect("pts,nb_samples");
            (pts.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
}

fn s16le(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The clip's audio, decoded by ffmpeg (interleaved).
fn decoded_audio(path: &Path) -> Vec<i16> {
    let out = run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-f", "s16le", "-"]));
    s16le(&out.stdout)
}

/// ffmpeg capturing the mount's audio, decoded by its own G.711/L16 decoder, to `out`.
fn start_capture(url: &str, out: &Path, seconds: u32) -> Child {
    Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
        ])
        .args([
            "-vn",
            "-t",
            &seconds.to_string(),
            "-c:a",
            "pcm_s16le",
            "-f",
            "s16le",
        ])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ffmpeg")
}

/// Where `clip` (a run of interleaved samples) lies inside `capture`, found by a window of
/// `window` time steps from a quarter into the clip: the offset to add to clip indices.
fn locate(clip: &[i16], capture: &[i16], channels: usize, window: usize) -> Option<isize> {
    let at = (clip.len() / channels / 4) * channels;
    let needle = &clip[at..at + window * channels];
    let mut found = None;
    for start in (0..capture.len().saturating_sub(needle.len())).step_by(channels) {
        if capture[start..start + needle.len()] == *needle {
            assert!(found.is_none(), "the window occurs twice in the capture");
            found = Some(start as isize - at as isize);
        }
    }
    found
}

/// Records a mount whose audio is G.711 or L16 while ffmpeg captures it, and compares the
/// clip's FLAC track with ffmpeg's decode sample for sample.
fn lossless_against_ffmpeg(spec: &str, rate: u32, channels: u32) {
    let srv = RtspServer::start(&[("cam", spec)], Auth::None).unwrap();
    let url = srv.url("cam");
    let d = tempfile::tempdir().unwrap();
    let cap_path = d.path().join("cap.raw");
    let clip_path = d.path().join("clip.mp4");
    // ffmpeg probes the streams for seconds before it writes anything; it is stopped (with
    // SIGINT, which makes it finish its output) once the clip is done.
    let mut capture = start_capture(&url, &cap_path, 60);
    // Recording starts once the capture receives audio, so the capture covers the clip.
    let started = Instant::now();
    while std::fs::metadata(&cap_path).map_or(0, |m| m.len()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "ffmpeg captured nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let probe = record(&url, &clip_path);
    // ffmpeg's output lags by its buffers: give it a moment to write the clip's end.
    std::thread::sleep(Duration::from_secs(3));
    run(Command::new("kill").args(["-INT", &capture.id().to_string()]));
    let status = capture.wait().unwrap();
    let mut cap_err = String::new();
    std::io::Read::read_to_string(capture.stderr.as_mut().unwrap(), &mut cap_err).unwrap();
    // ffmpeg exits with 255 when a signal stopped it, having finished its output.
    assert!(
        status.success() || status.code() == Some(255),
        "capture: {status}: {cap_err}"
    );

    assert_eq!(
        audio_format(&clip_path),
        ("flac".to_owned(), rate, channels)
    );
    let a = probe.stream_of("audio").unwrap();
    assert_eq!(probe.streams[a].time_base, (1, i64::from(rate)));
    let clip = decoded_audio(&clip_path);
    let capture = s16le(&std::fs::read(&cap_path).unwrap());
    let ch = channels as usize;
    let seconds = clip.len() as f64 / ch as f64 / f64::from(rate);
    assert!(seconds > 3.5, "{seconds} s of audio in a 4 s clip");
    // Each FLAC frame starts where the one before ends: its timestamp advances by exactly
    // the samples it decodes to (the track's timescale being the sample rate).
    let frames = audio_frames(&clip_path);
    assert!(
        frames.windows(2).all(|w| w[1].0 - w[0].0 == w[0].1),
        "{spec}: frame times do not follow their sample counts: {frames:?}"
    );
    let total: i64 = frames.iter().map(|f| f.1).sum();
    assert_eq!(total as usize, clip.len() / ch);

    let offset = locate(&clip, &capture, ch, 800)
        .unwrap_or_else(|| panic!("{spec}: the clip's audio is nowhere in the capture"));
    let mut compared = 0;
    for (i, &v) in clip.iter().enumerate() {
        let Some(&c) = capture.get((i as isize + offset) as usize) else {
            continue;
        };
        assert_eq!(
            v, c,
            "{spec}: sample {i} of the clip differs from ffmpeg's decode"
        );
        compared += 1;
    }
    println!(
        "{spec}: {} of {} samples compared equal ({seconds:.2} s), offset {offset}",
        compared,
        clip.len()
    );
    assert_eq!(compared, clip.len(), "the capture covers the whole clip");
}

#[test]
fn pcmu_is_kept_losslessly_as_flac() {
    lossless_against_ffmpeg("live:h264+pcmu", 8000, 1);
}

#[test]
fn pcma_is_kept_losslessly_as_flac() {
    lossless_against_ffmpeg("live:h264+pcma", 8000, 1);
}

#[test]
fn l16_mono_is_kept_losslessly_as_flac() {
    lossless_against_ffmpeg("live:h264+l16", 16000, 1);
}

#[test]
fn l16_stereo_is_kept_losslessly_as_flac() {
    lossless_against_ffmpeg("live:h264+l16/16000/2", 16000, 2);
}

#[test]
fn aac_passes_through_at_every_rate_and_layout() {
    let specs = [
        ("live:h264+aac/8000/1", 8000, 1),
        ("live:h264+aac/16000/1", 16000, 1),
        ("live:h264+aac/16000/2", 16000, 2),
        ("live:h264+aac/48000/1", 48000, 1),
        ("live:h264+aac/48000/2", 48000, 2),
    ];
    let mounts: Vec<(String, &str)> = specs
        .iter()
        .enumerate()
        .map(|(i, (spec, _, _))| (format!("cam{i}"), *spec))
        .collect();
    let mounts: Vec<(&str, &str)> = mounts.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let srv = RtspServer::start(&mounts, Auth::None).unwrap();
    for (i, (spec, rate, channels)) in specs.iter().enumerate() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("clip.mp4");
        record(&srv.url(&format!("cam{i}")), &out);
        assert_eq!(
            audio_format(&out),
            ("aac".to_owned(), *rate, *channels),
            "{spec}"
        );
    }
}

/// Chromium decodes the audio of clips from `preroll serve`: FLAC (from G.711) and AAC. The
/// element plays muted (headless autoplay needs it); Chromium decodes the audio all the same,
/// and counts the bytes it decoded in webkitAudioDecodedByteCount.
#[test]
fn chromium_decodes_flac_and_aac_audio() {
    chromium_decodes(
        &[
            Cam {
                name: "flac",
                spec: "live:h264+pcmu",
                codec: "flac",
                api: None,
            },
            Cam {
                name: "aac",
                spec: "live:h264+aac",
                codec: "aac",
                api: None,
            },
        ],
        &[
            "audio/mp4; codecs=\"flac\"",
            "audio/mp4; codecs=\"mp4a.40.2\"",
        ],
    );
}

/// The same for Opus (kept as Opus) and MP4A-LATM (kept as plain AAC); `/api/cameras` names
/// what each camera sends and what its clips store.
#[test]
fn chromium_decodes_opus_and_latm_audio() {
    chromium_decodes(
        &[
            Cam {
                name: "opus",
                spec: "live:h264+opus/48000/2",
                codec: "opus",
                api: Some(("Opus 48000 Hz stereo", "Opus")),
            },
            Cam {
                name: "latm",
                spec: "live:h264+latm/44100/2",
                codec: "aac",
                api: Some(("MP4A-LATM AAC 44100 Hz stereo", "AAC")),
            },
        ],
        &[
            "audio/mp4; codecs=\"opus\"",
            "audio/mp4; codecs=\"mp4a.40.2\"",
        ],
    );
}

/// A camera of the Chromium tests: its mount, the codec ffprobe finds in its clips, and
/// what `/api/cameras` says (`source_audio`, `audio_codec`) when checked.
struct Cam {
    name: &'static str,
    spec: &'static str,
    codec: &'static str,
    api: Option<(&'static str, &'static str)>,
}

fn chromium_decodes(cams: &[Cam], types: &[&str]) {
    use common::browser::{CHROMIUM, check_tools, mime_of, play};
    use common::serve::{Service, TOKEN, config};
    use serde_json::{Value, json};

    check_tools();
    let mounts: Vec<(&str, &str)> = cams.iter().map(|c| (c.name, c.spec)).collect();
    let srv = RtspServer::start(&mounts, Auth::None).unwrap();
    let d = tempfile::tempdir().unwrap();
    let cameras: String = cams
        .iter()
        .map(|c| {
            format!(
                "[[cameras]]\nname = \"{}\"\nsource = \"{}\"\n\n",
                c.name,
                srv.url(c.name)
            )
        })
        .collect();
    let svc = Service::start(d.path(), &config(d.path(), &cameras));
    let names: Vec<&str> = cams.iter().map(|c| c.name).collect();
    svc.wait_cameras(&names, 1.5, Duration::from_secs(60));
    let listed = svc.get("/api/cameras").json();
    for c in cams {
        let Some((source_audio, stored)) = c.api else {
            continue;
        };
        let view = listed
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == c.name)
            .expect("camera listed");
        assert_eq!(view["source_audio"], source_audio, "{view}");
        assert_eq!(view["audio_codec"], stored, "{view}");
    }
    let started: Vec<Value> = cams
        .iter()
        .map(|c| svc.clip(c.name, r#"{"lookback": 1, "duration": 3}"#))
        .collect();
    let mut jobs = Vec::new();
    for (clip, cam) in started.iter().zip(cams) {
        let id = clip["id"].as_str().expect("id");
        let api = svc.wait_final(id, Duration::from_secs(30));
        assert_eq!(api["state"], "done", "{api}\nlog:\n{}", svc.log());
        let path = Path::new(api["path"].as_str().expect("path"));
        assert_decodes_cleanly(path);
        let moov = check_structure(path);
        assert_eq!(audio_format(path).0, cam.codec, "{api}");
        // Track 2 is the audio: its sample bytes, what Chromium should feed its decoder.
        let audio_bytes = fragments_on_disk(&std::fs::read(path).unwrap()).per_track()[&2].1;
        jobs.push(json!({
            "audio_bytes": audio_bytes,
            "name": cam.name,
            "path": format!("/api/clips/{id}/file"),
            "mime": mime_of(&moov),
            "types": types,
            "seeks": [],
            "bits": 10,
        }));
    }
    let job = json!({"base": svc.base, "token": TOKEN, "chromium": CHROMIUM, "clips": jobs});
    let (report, context) = play(&job);
    for (r, j) in report["clips"].as_array().expect("clips").iter().zip(&jobs) {
        let name = &j["name"];
        println!(
            "{name}: {} canPlayType {:?} = {:?}, {:?}; {} audio bytes (of {} in the track) and \
             {} video bytes decoded, ended {}",
            report["browser"],
            j["mime"],
            r["can_play_type"],
            r["can_play_types"],
            r["audio_decoded_bytes"],
            j["audio_bytes"],
            r["video_decoded_bytes"],
            r["ended"]
        );
        assert!(
            r["error"].is_null(),
            "{name}: MediaError {}\n{context}",
            r["error"]
        );
        assert_ne!(r["can_play_type"], "", "{name}: {}\n{context}", j["mime"]);
        for t in types {
            assert_ne!(
                r["can_play_types"][t], "",
                "{name}: canPlayType({t})\n{context}"
            );
        }
        assert_eq!(
            r["ended"], true,
            "{name}: did not play to the end\n{context}"
        );
        let audio = r["audio_decoded_bytes"].as_u64().unwrap_or(0);
        // webkitAudioDecodedByteCount counts the coded bytes handed to the decoder: the
        // whole track, once played to the end (a little more where the seek back to 0
        // decoded some again).
        let track = j["audio_bytes"].as_u64().unwrap_or(u64::MAX);
        assert!(
            audio >= track * 9 / 10,
            "{name}: {audio} audio bytes decoded of the track's {track}\n{context}"
        );
    }
}

/// First presentation time and end (seconds) of the clip's first stream of `kind`.
fn presented(probe: &Probe, kind: &str) -> (f64, f64) {
    let stream = probe.stream_of(kind).expect("stream");
    let (n, d) = probe.streams[stream].time_base;
    let secs = |t: i64| t as f64 * n as f64 / d as f64;
    let packets = probe.packets_of(stream);
    let start = packets.iter().map(|p| p.pts).min().expect("packets");
    let end = packets
        .iter()
        .map(|p| p.pts + p.duration)
        .max()
        .expect("packets");
    (secs(start), secs(end))
}

/// Audio starts within one audio frame of the video (the A/V offset a clip keeps) and ends
/// within one frame of it (a video frame at 25 fps, or an audio frame where that is longer),
/// so both last as long.
#[track_caller]
fn assert_in_step(probe: &Probe, audio_frame: f64, what: &str) {
    let (vs, ve) = presented(probe, "video");
    let (a_s, ae) = presented(probe, "audio");
    println!("{what}: video {vs:.4}..{ve:.4} s, audio {a_s:.4}..{ae:.4} s");
    // One audio frame, plus the few milliseconds by which the two tracks' RTP clocks, each
    // mapped to the wall clock from its own packets' arrival, can disagree (CI once saw
    // 20.6 ms with 20 ms Opus frames).
    assert!(
        (a_s - vs).abs() <= audio_frame + 0.003,
        "{what}: audio starts at {a_s}, video at {vs}"
    );
    assert!(
        (ae - ve).abs() <= audio_frame.max(0.04) + 1e-6,
        "{what}: audio ends at {ae} s, video at {ve} s"
    );
}

/// Opus (RFC 7587) is kept as sent, in an `Opus` sample entry: ffmpeg decodes it with no
/// error, at 48 kHz with the camera's channel count, in step with the video.
#[test]
fn opus_passes_through_mono_and_stereo() {
    let srv = RtspServer::start(
        &[
            ("mono", "live:h264+opus/48000/1"),
            ("stereo", "live:h264+opus/48000/2"),
        ],
        Auth::None,
    )
    .unwrap();
    for (cam, channels) in [("mono", 1), ("stereo", 2)] {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("clip.mp4");
        let probe = record(&srv.url(cam), &out);
        assert_eq!(
            audio_format(&out),
            ("opus".to_owned(), 48000, channels),
            "{cam}"
        );
        // opusenc sends 20 ms packets: 960 samples each.
        let frames = audio_frames(&out);
        assert!(frames.len() > 150, "{cam}: {} audio frames", frames.len());
        assert_in_step(&probe, 0.02, cam);
    }
    // Over UDP the RTP passes through the camera link's UDP relay; the SDP renaming applies.
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("clip.mp4");
    preroll_ok(&[
        "record",
        &srv.url("stereo"),
        "-o",
        s(&out),
        "--lookback",
        "0",
        "--duration",
        "3",
        "--transport",
        "udp",
    ]);
    assert_decodes_cleanly(&out);
    assert_eq!(audio_format(&out), ("opus".to_owned(), 48000, 2), "udp");
}

/// AAC sent as MP4A-LATM (RFC 3016, GStreamer's rtpmp4apay) is kept as plain AAC: the
/// PayloadLengthInfo is stripped and the StreamMuxConfig's AudioSpecificConfig goes into
/// `esds`.
#[test]
fn mp4a_latm_is_kept_as_aac_at_two_rates() {
    let specs = [
        ("live:h264+latm/16000/1", 16000, 1),
        ("live:h264+latm/44100/2", 44100, 2),
    ];
    let srv = RtspServer::start(&[("a", specs[0].0), ("b", specs[1].0)], Auth::None).unwrap();
    for ((spec, rate, channels), cam) in specs.iter().zip(["a", "b"]) {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("clip.mp4");
        let probe = record(&srv.url(cam), &out);
        assert_eq!(
            audio_format(&out),
            ("aac".to_owned(), *rate, *channels),
            "{spec}"
        );
        assert_in_step(&probe, 1024.0 / f64::from(*rate), spec);
    }
}

/// Cameras that ask for credentials, with Opus audio: the camera link answers the Basic and
/// the Digest challenge itself (Digest signs the URI the camera sees, not retina's).
#[test]
fn credentials_and_opus_through_the_camera_link() {
    for auth in [Auth::basic("cam", "s3cr:t"), Auth::digest("cam", "s3cr:t")] {
        let srv = RtspServer::start(&[("cam", "live:h264+opus")], auth).unwrap();
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("clip.mp4");
        record(&srv.url("cam"), &out);
        assert_eq!(audio_format(&out), ("opus".to_owned(), 48000, 1));
    }
}
