//! Replays the fuzz targets' inputs in the normal suite: the seed corpus (real media, made by
//! fuzz/make-seeds.py) and every input a fuzzer once failed on (fuzz/regressions/<target>/,
//! kept after the fix). The bodies are the fuzz targets' own (fuzz/bodies.rs), so a
//! regression fails here exactly as it failed under the fuzzer.

#[allow(dead_code)] // the fuzz targets use the bodies' return values differently
#[path = "../fuzz/bodies.rs"]
mod bodies;

use std::fs;
use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(d) => d.map(|e| e.expect("dir entry").path()).collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != ".gitkeep"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).expect("read input"))
        })
        .collect()
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let s = inputs("seeds", target);
    assert!(
        !s.is_empty(),
        "no seeds for {target}: run fuzz/make-seeds.py"
    );
    s
}

const TARGETS: [&str; 7] = [
    "boxes",
    "init_fragments",
    "clip_writer",
    "recover",
    "matroska",
    "progressive",
    "rtsp_camera",
];

/// Runs `data` through the body of fuzz target `target`.
fn replay(target: &str, data: &[u8]) {
    match target {
        "boxes" => drop(bodies::boxes(data)),
        "init_fragments" => drop(bodies::init_fragments(data)),
        "clip_writer" => drop(bodies::clip_writer(data)),
        "recover" => drop(bodies::recover_partial(data)),
        "matroska" => drop(bodies::matroska(data)),
        "progressive" => drop(bodies::progressive(data)),
        "rtsp_camera" => drop(bodies::rtsp_camera(data)),
        _ => panic!("no fuzz target {target}"),
    }
}

/// Every regression input, whatever its target, through its body: none may panic.
#[test]
fn every_input_a_fuzzer_failed_on_passes() {
    let mut replayed = 0;
    for target in TARGETS {
        for (name, data) in inputs("regressions", target) {
            eprintln!("{target}/{name}");
            replay(target, &data);
            replayed += 1;
        }
    }
    eprintln!("{replayed} regression inputs replayed");
}

/// The seeds are real media, so each body must get all the way through them: a seed that
/// stopped parsing would leave its target fuzzing nothing but the error paths.
#[test]
fn seeds_parse_and_make_clips() {
    for (name, data) in seeds("boxes") {
        assert!(
            bodies::boxes(&data) >= 2,
            "boxes/{name}: too few boxes read"
        );
    }
    for (name, data) in seeds("init_fragments") {
        let n = bodies::init_fragments(&data);
        assert!(n.is_some_and(|n| n >= 2), "init_fragments/{name}: {n:?}");
    }
    for (name, data) in seeds("clip_writer") {
        let samples = bodies::clip_writer(&data);
        assert!(samples >= 10, "clip_writer/{name}: {samples} samples");
    }
    for (name, data) in seeds("matroska") {
        let frames = bodies::matroska(&data);
        assert!(frames >= 10, "matroska/{name}: {frames} frames");
    }
    for (name, data) in seeds("recover") {
        let fragments = bodies::recover_partial(&data);
        match name.as_str() {
            "header-only" => assert_eq!(fragments, 0, "recover/{name}"),
            _ => assert!(fragments >= 1, "recover/{name}: nothing recovered"),
        }
    }
}

/// Damage the seeds the way a fuzzer's first mutations do (truncations, flipped bytes) and
/// replay them: a cheap sweep that runs on every CI build, unlike the fuzzers.
#[test]
fn truncated_and_flipped_seeds_never_panic() {
    for target in TARGETS {
        for (_, data) in seeds(target) {
            let step = (data.len() / 24).max(1);
            for cut in (0..data.len()).step_by(step) {
                let mut flipped = data.clone();
                flipped[cut] ^= 0x5a;
                replay(target, &data[..cut]);
                replay(target, &flipped);
            }
        }
    }
}
