//! What went wrong with the bucket, said for the person who configured it.

use object_store::path::Path as Key;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The local file (gone, unreadable).
    #[error("{0}")]
    Local(#[source] std::io::Error),
    #[error("{doing} {key}: {}", describe(.source))]
    Store {
        doing: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    /// The copy in the bucket is not what was sent.
    #[error("{key}: the copy in the bucket does not match: {what}")]
    Mismatch { key: String, what: String },
}

impl RemoteError {
    pub fn store(doing: &'static str, key: &Key, source: object_store::Error) -> RemoteError {
        RemoteError::Store {
            doing,
            key: key.to_string(),
            source,
        }
    }

    /// Trying again cannot help (the local file is gone).
    pub fn is_permanent(&self) -> bool {
        matches!(self, RemoteError::Local(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The store's error in a sentence that names what to check. The store's own text ends it,
/// as it carries the status and the server's message; it holds no credential (requests are
/// signed in headers, never echoed).
pub fn describe(e: &object_store::Error) -> String {
    let text = e.to_string();
    let hint = match e {
        object_store::Error::Unauthenticated { .. } => {
            Some("the bucket refused the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
        }
        object_store::Error::PermissionDenied { .. } => Some(
            "access denied: check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the bucket's policy",
        ),
        _ if text.contains("NoSuchBucket") => Some("the bucket does not exist"),
        _ if text.contains("InvalidAccessKeyId") || text.contains("SignatureDoesNotMatch") => {
            Some("the bucket refused the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
        }
        _ if text.contains("error sending request") || text.contains("Connection refused") => {
            Some("cannot reach the endpoint")
        }
        _ => None,
    };
    // The server's message is text from outside: escaped and bounded like a camera's.
    let text = crate::source::camera_text(text.as_bytes(), 600);
    match hint {
        Some(h) => format!("{h} ({text})"),
        None => text,
    }
}
