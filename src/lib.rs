//! preroll: keeps the last seconds of camera streams in memory as fMP4 segments and writes
//! clips (lookback + live) without re-encoding.
//!
//! The pipeline flows one way: source → segmenter → ring → recorder → file. Each stage knows
//! the one before it only through its output type ([`segment::Segment`] between the segmenter
//! and everything after it).

pub mod audio;
pub mod camera;
pub mod cli;
pub mod config;
pub mod continuous;
pub mod live;
pub mod memory;
pub mod mp4;
pub mod recorder;
pub mod remux;
pub mod ring;
pub mod segment;
pub mod segmenter;
pub mod service;
pub mod signals;
pub mod source;
pub mod time;
