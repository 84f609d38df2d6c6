//! The recorder stage: writes an ordered run of segments (lookback + live) into one clip at
//! box level — only headers are rewritten, sample bytes are copied as they are.

mod error;
pub mod file;
mod finishing;
pub mod live;
pub mod place;
mod presentation;
mod recording;
pub mod recover;
mod salvage;
mod timeline;
mod tracks;

pub use error::{RecordError, RecoverError};
pub use file::{PARTIAL_SUFFIX, partial_path};
pub use place::{ClipPlace, Dir};
pub use recording::{ClipOptions, ClipSummary, Recording, SegmentOutcome};
pub use recover::{
    Plan, Recovered, find_partials, find_partials_beneath, inspect, recover, recover_at,
};
pub use salvage::Kept;
pub use timeline::Discontinuity;
