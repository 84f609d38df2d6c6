//! The project's load-test camera (`rtsp-replay`, src/bin/rtsp-replay): an ffmpeg-made
//! H.264 file served to several clients at once. Each `preroll record` from it gets a clip
//! that decodes cleanly with the file's frame rate and size, its frames spaced as the file's
//! (the pacing and the timestamps across a loop are right), from two clients at once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[test]
fn replayed_streams_record_cleanly_from_several_clients() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("camera.mp4");
    // 2 s a loop: the 6 s clips cross loops.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25:duration=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-bf",
        "0",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
        s(&file),
    ]);
    let mut server = Command::new(env!("CARGO_BIN_EXE_rtsp-replay"))
        .args(["--listen", "127.0.0.1:0", "--file"])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rtsp-replay");
    let mut first = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a line");
    let addr = first
        .split("rtsp://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    let clips: Vec<_> = (0..2)
        .map(|i| {
            let out = tmp.path().join(format!("clip{i}.mp4"));
            let url = format!("rtsp://{addr}/cam{i}");
            let child = Command::new(env!("CARGO_BIN_EXE_preroll"))
                .args([
                    "record",
                    &url,
                    "-o",
                    s(&out),
                    "--lookback",
                    "0",
                    "--duration",
                    "6",
                ])
                .stderr(Stdio::piped())
                .spawn()
                .expect("start preroll record");
            (out, child)
        })
        .collect();
    let clips: Vec<_> = clips
        .into_iter()
        .map(|(out, child)| (out, child.wait_with_output()))
        .collect();
    let _ = server.kill();
    let _ = server.wait();
    for (out, result) in clips {
        let result = result.expect("run preroll record");
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        assert_decodes_cleanly(&out);
        let probe = Probe::of(&out);
        let v = probe.stream_of("video").expect("video");
        let packets = probe.packets_of(v);
        assert!(packets.len() >= 140, "{} frames in 6 s", packets.len());
        // Evenly spaced, across the loops too.
        let step = packets[1].pts - packets[0].pts;
        for pair in packets.windows(2) {
            assert_eq!(pair[1].pts - pair[0].pts, step, "uneven spacing");
        }
        let info = String::from_utf8_lossy(
            &Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
                .args(["stream=width,height", "-of", "csv=p=0"])
                .arg(&out)
                .output()
                .expect("ffprobe")
                .stdout,
        )
        .trim()
        .to_owned();
        assert_eq!(info, "640,360");
    }
}
