use std::fmt;

/// Why a source could not connect or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub kind: SourceErrorKind,
    /// Human-readable detail, with credentials already redacted.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// TCP connect refused, host unreachable, DNS.
    Connect,
    /// The server refused the credentials.
    Auth,
    /// Connect or DESCRIBE/SETUP/PLAY took too long.
    Timeout,
    /// Connected, but no frame arrived for too long.
    Stalled,
    /// The stream broke the protocol or its timestamps went wrong.
    Protocol,
    /// Nothing in it we can record (no H.264/H.265 video).
    Unsupported,
    /// Reading a file failed.
    Io,
}

impl SourceError {
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
        }
    }

    /// Errors a reconnect cannot fix (the next attempt would fail the same way at once) are
    /// still retried, but with the longest backoff: cameras get fixed and passwords changed.
    pub fn is_persistent(&self) -> bool {
        matches!(
            self.kind,
            SourceErrorKind::Auth | SourceErrorKind::Unsupported
        )
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            SourceErrorKind::Connect => "cannot connect",
            SourceErrorKind::Auth => "authentication failed",
            SourceErrorKind::Timeout => "timed out",
            SourceErrorKind::Stalled => "stream stalled",
            SourceErrorKind::Protocol => "stream error",
            SourceErrorKind::Unsupported => "unsupported stream",
            SourceErrorKind::Io => "read error",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for SourceError {}
