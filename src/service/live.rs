//! The live view's two ways out of the ring (see [`crate::live`]):
//!
//! - `GET /api/cameras/{camera}/live`, a WebSocket for the UI: a text message
//!   `{"type": "init", "mime", "width", "height"}` then the init as a binary message, then one
//!   binary message per part; `{"type": "status", "camera": {…}}` every few seconds (the
//!   camera's API view, so a tile's figures stay current without polling); `{"type":
//!   "ended", "reason"}` before the server closes.
//! - `GET /api/cameras/{camera}/live.mp4`, one fragmented MP4 over HTTP for other players
//!   (ffplay, VLC, Home Assistant's generic camera): it ends where the camera's tracks change,
//!   and the player reconnects.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::json;

use super::Service;
use super::api::ApiError;
use super::observe::camera_view;
use super::sessions::same_origin;
use crate::camera::Camera;
use crate::live::{LiveChunk, LiveStream};

/// How often a socket carries the camera's status.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// A viewer that takes no data for this long is let go.
const SEND_LIMIT: Duration = Duration::from_secs(10);

fn feed(service: &Service, name: &str) -> Result<Arc<Camera>, ApiError> {
    Ok(service.running_camera(name)?.1)
}

/// `GET /api/cameras/{camera}/live`: the WebSocket.
pub async fn socket(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // A browser always sends Origin with a WebSocket; another site's page may not watch.
    let text = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(origin) = text(header::ORIGIN)
        && !same_origin(Some(origin), None, text(header::HOST))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("live view from another site ({origin}) refused"),
        ));
    }
    let camera = feed(&service, &name)?;
    Ok(upgrade
        .max_message_size(4096)
        .on_upgrade(move |ws| watch(ws, service, name, camera)))
}

async fn watch(ws: WebSocket, service: Arc<Service>, name: String, camera: Arc<Camera>) {
    let (mut tx, mut rx) = ws.split();
    let mut live = LiveStream::new(camera);
    let mut status = tokio::time::interval(STATUS_EVERY);
    let reason = loop {
        let out: Vec<Message> = tokio::select! {
            chunk = live.next() => match chunk {
                Ok(LiveChunk::Init(init)) => vec![
                    Message::text(json!({
                        "type": "init",
                        "mime": init.mime,
                        "width": init.width,
                        "height": init.height,
                    }).to_string()),
                    Message::Binary(init.bytes),
                ],
                Ok(LiveChunk::Media(bytes)) => vec![Message::Binary(bytes)],
                Err(e) => break e.to_string(),
            },
            _ = status.tick() => {
                let view = service.camera(&name).map(camera_view);
                vec![Message::text(json!({"type": "status", "camera": view}).to_string())]
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            _ = service.stopping() => break "the service is stopping".to_owned(),
        };
        for message in out {
            match tokio::time::timeout(SEND_LIMIT, tx.send(message)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::info!(
                        camera = name,
                        "live view: a viewer took nothing for {SEND_LIMIT:?}; closed"
                    );
                    return;
                }
            }
        }
    };
    let ended = json!({"type": "ended", "reason": reason}).to_string();
    let _ = tokio::time::timeout(SEND_LIMIT, async {
        let _ = tx.send(Message::text(ended)).await;
        let _ = tx.send(Message::Close(None)).await;
    })
    .await;
}

/// `GET /api/cameras/{camera}/live.mp4`: one fMP4 stream.
pub async fn mp4(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let camera = feed(&service, &name)?;
    let live = LiveStream::new(camera);
    let stream = futures::stream::unfold(
        (live, service, false),
        |(mut live, service, started)| async move {
            let chunk = tokio::select! {
                chunk = live.next() => chunk.ok()?,
                _ = service.stopping() => return None,
            };
            let bytes: Bytes = match chunk {
                // A second init would be a second `moov` mid-file: end here instead.
                LiveChunk::Init(_) if started => return None,
                LiveChunk::Init(init) => init.bytes,
                LiveChunk::Media(bytes) => bytes,
            };
            Some((Ok::<Bytes, std::io::Error>(bytes), (live, service, true)))
        },
    );
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
