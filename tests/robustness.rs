//! Damaged input never panics: real init and media bytes, truncated and bit-flipped, go
//! through the parsers and, where they still parse, through the clip writer.

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use preroll::mp4::{Boxes, Fragment, InitSegment};
use preroll::recorder::{ClipOptions, Recording};
use preroll::segment::Segment;

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn walk_all(bytes: &[u8]) {
    fn walk(b: Boxes<'_>, depth: usize) {
        for x in b {
            let Ok(x) = x else { return };
            if depth < 8 {
                walk(x.children(), depth + 1);
            }
        }
    }
    walk(Boxes::new(bytes, 0), 0);
}

/// Parses `init` and `media`, and writes a clip from them if they parse. Must not panic.
fn exercise(dir: &std::path::Path, n: usize, init: &[u8], media: &[u8]) {
    walk_all(init);
    walk_all(media);
    let Ok(init) = InitSegment::parse(init.to_vec().into(), 0) else {
        return;
    };
    let Ok(fragments) = Fragment::parse_all(&media.to_vec().into(), 0, &init) else {
        return;
    };
    let init = Arc::new(init);
    let path = dir.join(format!("c{n}.mp4"));
    let mut rec = Recording::create(&path, ClipOptions::default()).unwrap();
    let seg = Segment::new(1, 1, init.clone(), fragments);
    let _ = rec.write_segment(&seg);
    // The same again as a new stream: exercises the join.
    let mut again = seg.clone();
    again.sequence = 2;
    again.stream_id = 2;
    let _ = rec.write_segment(&again);
    if let Ok(summary) = rec.finish() {
        fs::remove_file(summary.path).unwrap();
    }
}

#[test]
fn truncated_and_bit_flipped_inputs_never_panic() {
    let d = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for video in [Video::H264, Video::H265] {
        let hls = Media {
            seconds: 2,
            video,
            ..Media::default()
        }
        .hls(&d.path().join(format!("{video:?}")));
        cases.push((
            fs::read(hls.join("init.mp4")).unwrap(),
            fs::read(hls.join("seg0.m4s")).unwrap(),
        ));
    }
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let mut n = 0;
    for (init, media) in &cases {
        exercise(d.path(), n, init, media);
        // Every truncation of the init, and a spread of truncations of the media.
        for cut in 0..init.len() {
            n += 1;
            exercise(d.path(), n, &init[..cut], media);
        }
        for cut in (0..media.len()).step_by(97) {
            n += 1;
            exercise(d.path(), n, init, &media[..cut]);
        }
        // Random bytes flipped, in headers (where damage matters) and anywhere.
        for _ in 0..1500 {
            n += 1;
            let (mut i, mut m) = (init.clone(), media.clone());
            for _ in 0..1 + rng.below(4) {
                match rng.below(3) {
                    0 => {
                        let at = rng.below(i.len());
                        i[at] ^= 1 << rng.below(8);
                    }
                    1 => {
                        let at = rng.below(m.len().min(2048));
                        m[at] = rng.next() as u8;
                    }
                    _ => {
                        let at = rng.below(m.len());
                        m[at] ^= 0xff;
                    }
                }
            }
            exercise(d.path(), n, &i, &m);
        }
    }
    assert!(n > 3000);
}
