//! Serving a clip's file: opened through the allowed directory's handle without following
//! a symlink (see `paths::AllowedDirs::open_clip`), then sent whole or as one byte range
//! (`Range: bytes=a-b`, `a-`, `-n`), which is what players seeking in a video ask for.

use std::fs::File;
use std::io::SeekFrom;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// What the request asked of a file `len` bytes long.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    Whole,
    /// Bytes `start..=end`.
    Range {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

pub fn wanted(headers: &HeaderMap, len: u64) -> Wanted {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Wanted::Whole;
    };
    // Several ranges at once: answered with the whole file, as RFC 9110 allows.
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // The last n bytes.
        match last.parse::<u64>() {
            Ok(0) | Err(_) => None,
            Ok(n) => Some((len.saturating_sub(n), len.checked_sub(1))),
        }
    } else {
        match (first.parse::<u64>(), last) {
            (Ok(a), "") => Some((a, len.checked_sub(1))),
            (Ok(a), b) => match b.parse::<u64>() {
                Ok(b) if b >= a => Some((a, Some(b.min(len.saturating_sub(1))))),
                _ => return Wanted::Whole,
            },
            (Err(_), _) => return Wanted::Whole,
        }
    };
    match range {
        Some((start, Some(end))) if start <= end && start < len => Wanted::Range { start, end },
        _ => Wanted::Unsatisfiable,
    }
}

/// The response for `file` (already open), as `video/mp4`.
pub async fn serve_file(
    file: File,
    method: &Method,
    headers: &HeaderMap,
) -> std::io::Result<Response> {
    let len = file.metadata()?.len();
    let mut file = tokio::fs::File::from_std(file);
    let Some((start, count)) = span(headers, len) else {
        return Ok(unsatisfiable(len));
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        file.seek(SeekFrom::Start(start)).await?;
        Body::from_stream(ReaderStream::with_capacity(file.take(count), 64 * 1024))
    };
    Ok(media(body, headers, start, count, len))
}

/// The bytes to send of `len` (first, count); `None` when the range asked for is outside.
pub fn span(headers: &HeaderMap, len: u64) -> Option<(u64, u64)> {
    match wanted(headers, len) {
        Wanted::Whole => Some((0, len)),
        Wanted::Range { start, end } => Some((start, end - start + 1)),
        Wanted::Unsatisfiable => None,
    }
}

/// 416, as JSON, with the length in `Content-Range`.
pub fn unsatisfiable(len: u64) -> Response {
    let mut r = Response::new(Body::from(
        serde_json::json!({ "error": format!("the range asked for is outside the file's {len} bytes") })
            .to_string(),
    ));
    *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

/// `count` bytes from `start` of a `len`-byte MP4: 200 for the whole, 206 for a part.
pub fn media(body: Body, headers: &HeaderMap, start: u64, count: u64, len: u64) -> Response {
    let partial = !matches!(wanted(headers, len), Wanted::Whole);
    let mut r = Response::new(body);
    *r.status_mut() = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if partial
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(range: &str, len: u64) -> Wanted {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(range).expect("header"));
        wanted(&h, len)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(wanted(&HeaderMap::new(), 10), Wanted::Whole);
        assert_eq!(ask("bytes=0-3", 10), Wanted::Range { start: 0, end: 3 });
        assert_eq!(ask("bytes=4-", 10), Wanted::Range { start: 4, end: 9 });
        assert_eq!(ask("bytes=-3", 10), Wanted::Range { start: 7, end: 9 });
        assert_eq!(ask("bytes=-30", 10), Wanted::Range { start: 0, end: 9 });
        assert_eq!(ask("bytes=5-100", 10), Wanted::Range { start: 5, end: 9 });
        assert_eq!(ask("bytes=10-", 10), Wanted::Unsatisfiable);
        assert_eq!(ask("bytes=-0", 10), Wanted::Unsatisfiable);
        assert_eq!(ask("bytes=0-", 0), Wanted::Unsatisfiable);
        // Malformed or several ranges: the whole file.
        assert_eq!(ask("bytes=5-2", 10), Wanted::Whole);
        assert_eq!(ask("bytes=0-1,4-5", 10), Wanted::Whole);
        assert_eq!(ask("items=0-1", 10), Wanted::Whole);
        assert_eq!(ask("bytes=x-1", 10), Wanted::Whole);
    }
}
