//! What goes wrong reading a Matroska file, with the byte it went wrong at, so a bad file can
//! be opened in a hex editor.

/// An error of the Matroska reader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MkvError {
    #[error("reading at byte {at}: {source}")]
    Io {
        at: u64,
        #[source]
        source: std::io::Error,
    },
    /// The bytes break the format.
    #[error("byte {at}: {problem}")]
    Invalid { at: u64, problem: String },
    /// The file ends inside an element: a recording cut short (the media before it is good).
    #[error("the file ends inside {what} at byte {at} (cut short?)")]
    Truncated { at: u64, what: String },
    /// A well-formed file preroll cannot record (a VP9 video track, a file with no video).
    #[error("{0}")]
    Unsupported(String),
}

impl MkvError {
    pub fn invalid(at: u64, problem: impl Into<String>) -> Self {
        MkvError::Invalid {
            at,
            problem: problem.into(),
        }
    }
}
