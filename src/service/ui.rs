//! The web UI: plain HTML, CSS and JavaScript modules, compiled into the binary (no build
//! step, no third-party code). `/` is the page; `/ui/<file>` its parts.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::ApiError;

/// Name, content type and bytes of each file.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "cameras.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/cameras.js"),
    ),
    (
        "clips.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/clips.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/live.js"),
    ),
    (
        "http.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/http.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("ui/style.css"),
    ),
    ("icon.svg", "image/svg+xml", include_str!("ui/icon.svg")),
];

/// The page's own scripts and styles only; media from this server and the `blob:` URLs of
/// Media Source; fetches and WebSockets to this server.
const POLICY: &str = "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; \
                      connect-src 'self'; object-src 'none'; base-uri 'none'; \
                      frame-ancestors 'none'; form-action 'self'";

pub async fn page() -> Response {
    file("index.html")
}

pub async fn part(Path(name): Path<String>) -> Response {
    file(&name)
}

fn file(name: &str) -> Response {
    let Some((_, kind, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::new(StatusCode::NOT_FOUND, format!("no UI file {name:?}"))
            .into_response();
    };
    let mut response = (*body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Small files that change with the binary: always checked, never stale.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
