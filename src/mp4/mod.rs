//! The box layer: reading and writing ISO-BMFF (MP4) boxes.
//!
//! Pure functions over bytes. Nothing here knows about sources, clocks or files beyond the
//! byte ranges it is handed; malformed input yields an [`Mp4Error`] naming the box and its
//! offset, never a panic.

pub mod codecs;
mod error;
mod fields;
mod fourcc;
pub mod fragment;
pub mod hidden;
pub mod init;
pub mod mfra;
pub mod moof;
pub mod moov;
mod orientation;
pub mod params;
pub mod reader;
pub mod samples;
pub mod tables;
pub mod write;

pub use error::{Mp4Error, Result};
pub use fields::Fields;
pub use fourcc::{FourCc, kinds};
pub use fragment::{FileRange, Fragment, MediaData, Sample, SampleRun, TrackFragment};
pub use init::{Codec, EditShift, InitSegment, SampleEntry, TrackDefaults, TrackInfo, TrackKind};
pub use orientation::{BadOrientation, Matrix, Orientation};
pub use reader::{BoxHeader, BoxRef, Boxes};
