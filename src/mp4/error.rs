//! The one error type of the box layer.
//!
//! Every problem names the box it was found in and the absolute byte offset of that box in the
//! input, so a bad file can be opened in a hex editor at the right place.

use super::FourCc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} box at byte {offset}: {problem}")]
pub struct Mp4Error {
    /// The box being read when the problem was found.
    pub kind: FourCc,
    /// Absolute offset of that box's first byte in the input.
    pub offset: u64,
    pub problem: String,
}

impl Mp4Error {
    pub fn new(kind: FourCc, offset: u64, problem: impl Into<String>) -> Self {
        Self {
            kind,
            offset,
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = Mp4Error> = std::result::Result<T, E>;
