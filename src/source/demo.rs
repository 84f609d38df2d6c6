//! The built-in demo camera: the sample in `assets/sample` (6 s of 640x360 H.264 + AAC),
//! embedded in the binary and looped forever in real time with continuous timestamps.

use bytes::Bytes;

use super::{FileSource, Pace, SourceError};

const INIT: &[u8] = include_bytes!("../../assets/sample/init.mp4");
const SEGMENTS: [&[u8]; 3] = [
    include_bytes!("../../assets/sample/seg0.m4s"),
    include_bytes!("../../assets/sample/seg1.m4s"),
    include_bytes!("../../assets/sample/seg2.m4s"),
];

/// A demo source; `pace` is real time for a camera-like stream, `Fast` for tests.
pub fn demo_source(pace: Pace) -> Result<FileSource, SourceError> {
    let media: Vec<u8> = SEGMENTS.concat();
    FileSource::from_memory(
        "demo",
        Bytes::from_static(INIT),
        Bytes::from(media),
        pace,
        true,
    )
}
