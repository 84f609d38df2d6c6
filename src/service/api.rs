//! The HTTP API (JSON), `/metrics`, `/healthz` and the OpenAPI document.
//!
//! Every `/api` route needs `Authorization: Bearer <token>`; the three others are open so
//! monitoring and load balancers need no secret.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::clips::{ClipView, ExtendRefused, MAX_CLIP_SECONDS, NotRecording};
use super::history::HistoryError;
use super::listing::ClipQuery;
use super::observe::{camera_view, metrics_page};
use super::order::{self, ClipOrder};
use super::sessions::{self, Verdict};
use super::{ClipRefused, PathRefused, Service};

/// The OpenAPI description of this API, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

pub fn router(service: Arc<Service>) -> Router {
    let api = Router::new()
        .route("/api/cameras", get(list_cameras))
        .route("/api/cameras/{camera}/clips", post(create_clip))
        .route(
            "/api/cameras/{camera}/exports",
            post(super::exports::create),
        )
        .route("/api/cameras/{camera}/live", get(super::live::socket))
        .route("/api/cameras/{camera}/live.mp4", get(super::live::mp4))
        .route(
            "/api/cameras/{camera}/recordings",
            get(super::recordings::list),
        )
        .route("/api/clips", get(list_clips))
        .route(
            "/api/clips/{id}",
            get(get_clip).patch(patch_clip).delete(delete_clip),
        )
        .route("/api/clips/{id}/stop", post(stop_clip))
        .route("/api/clips/{id}/extend", post(extend_clip))
        .route("/api/clips/{id}/file", get(clip_file))
        .route("/api/events", get(super::events::sse::events))
        .route("/api/integrations", get(integrations))
        .route_layer(middleware::from_fn_with_state(
            service.clone(),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route(
            "/api/session",
            get(session_state).post(login).delete(logout),
        )
        .route("/", get(super::ui::page))
        .route("/ui/{file}", get(super::ui::part))
        .merge(api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(service.config.api.max_body_bytes))
        .layer(middleware::map_response(json_errors))
        .with_state(service)
}

/// An error as every route returns it: a status and `{"error": "..."}`.
pub struct ApiError(StatusCode, String);

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        error(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 });
        (self.0, axum::Json(body)).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

/// Errors made outside our handlers (a body over the limit, a wrong method, a malformed
/// path) come as plain text; every error this API answers is `{"error": ...}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Our own framework's messages are short; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let json = error(status, message).into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

impl From<ClipRefused> for ApiError {
    fn from(e: ClipRefused) -> Self {
        let status = match &e {
            ClipRefused::UnknownCamera(_) => StatusCode::NOT_FOUND,
            ClipRefused::CameraDisabled(_) | ClipRefused::Conflict(_) => StatusCode::CONFLICT,
            ClipRefused::BadRequest(_) | ClipRefused::Path(PathRefused::Invalid(_)) => {
                StatusCode::BAD_REQUEST
            }
            ClipRefused::Path(PathRefused::Forbidden { .. }) => StatusCode::FORBIDDEN,
            ClipRefused::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ClipRefused::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ClipRefused::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, e.to_string())
    }
}

async fn require_token(
    State(service): State<Arc<Service>>,
    peer: Option<axum::Extension<super::http::Peer>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let from = client(peer);
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| url_token(&request));
    if let Some(t) = presented.as_deref() {
        return match service
            .sessions
            .check_token(from, t, &service.config.api.token)
        {
            Verdict::Accepted => next.run(request).await,
            Verdict::Wrong => unauthorized("wrong token"),
            Verdict::Slowed(left) => slowed(left),
        };
    }
    let cookie = session_of(&headers);
    match cookie {
        Some(id) if service.sessions.valid(id) => {
            let reads = matches!(*request.method(), Method::GET | Method::HEAD);
            let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
            let own = sessions::same_origin(
                text(header::ORIGIN),
                headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
                text(header::HOST),
            );
            if reads || own {
                next.run(request).await
            } else {
                error(
                    StatusCode::FORBIDDEN,
                    "a request with the session cookie that changes something must come from \
                     preroll's own pages (Origin or Sec-Fetch-Site)",
                )
                .into_response()
            }
        }
        Some(_) => unauthorized("the session has expired or was closed; log in again"),
        None => unauthorized(
            "missing bearer token (send Authorization: Bearer <token>, or log in for a session)",
        ),
    }
}

/// `?token=` on `GET /api/cameras/{camera}/live.mp4` only: players that take a URL and no
/// headers (Home Assistant's generic camera, many NVR viewers) have no other way to send it.
/// A URL is easier to leak than a header (shell history, a proxy's log); the README says so.
fn url_token(request: &Request) -> Option<String> {
    if request.method() != Method::GET || !request.uri().path().ends_with("/live.mp4") {
        return None;
    }
    let Query(query) =
        Query::<std::collections::HashMap<String, String>>::try_from_uri(request.uri()).ok()?;
    query.get("token").cloned()
}

fn client(peer: Option<axum::Extension<super::http::Peer>>) -> std::net::IpAddr {
    peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0.0)
}

fn unauthorized(refusal: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, refusal).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"preroll\""),
    );
    response
}

fn slowed(left: std::time::Duration) -> Response {
    let secs = left.as_secs().max(1);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "{} wrong tokens from this address within a minute; try again in {secs} s",
            sessions::MAX_FAILURES
        ),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    token: String,
}

/// `POST /api/session {token}`: the token exchanged for a session cookie.
async fn login(
    State(service): State<Arc<Service>>,
    peer: Option<axum::Extension<super::http::Peer>>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let body: LoginBody = order::object(&bytes).map_err(ApiError::bad_request)?;
    match service
        .sessions
        .check_token(client(peer), &body.token, &service.config.api.token)
    {
        Verdict::Accepted => {}
        Verdict::Wrong => return Ok(unauthorized("wrong token")),
        Verdict::Slowed(left) => return Ok(slowed(left)),
    }
    let id = service
        .sessions
        .open()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let lifetime = service.sessions.lifetime().as_secs();
    let cookie = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={lifetime}",
        sessions::COOKIE
    );
    let mut response = axum::Json(serde_json::json!({ "expires_in": lifetime })).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// `GET /api/session`: whether the request carries a live session cookie (the UI asks before
/// it shows the login, so a page load causes no refused request).
/// The session id the request's cookie names, if any.
fn session_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(sessions::session_cookie)
}

async fn session_state(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let live = session_of(&headers).is_some_and(|id| service.sessions.valid(id));
    axum::Json(serde_json::json!({ "session": live })).into_response()
}

/// `DELETE /api/session`: closes the cookie's session, if any, and clears the cookie.
async fn logout(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_of(&headers) {
        service.sessions.close(id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let clear = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        sessions::COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn create_clip(
    State(service): State<Arc<Service>>,
    Path(camera): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let order = ClipOrder::from_json(&bytes).map_err(ApiError::bad_request)?;
    let clip = service.start_clip(&camera, order).await?;
    Ok(created(&clip))
}

/// 201 with a new clip (or export) and `Location: /api/clips/{id}`.
pub fn created(clip: &super::Clip) -> Response {
    let view = clip.view();
    let location = format!("/api/clips/{}", view.id);
    let mut response = (StatusCode::CREATED, axum::Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn find(service: &Service, id: &str) -> Result<Arc<super::Clip>, ApiError> {
    service
        .clips
        .get(id)
        .map_err(history_unreadable)?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no clip with id {id:?}")))
}

fn history_unreadable(e: HistoryError) -> ApiError {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn not_recording(id: &str, NotRecording(state): NotRecording) -> ApiError {
    error(
        StatusCode::CONFLICT,
        format!("clip {id} is {}, not recording", state.name()),
    )
}

async fn get_clip(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<axum::Json<ClipView>, ApiError> {
    match find(&service, &id) {
        Ok(clip) => Ok(axum::Json(clip.view())),
        Err(e) => match in_bucket(&service, &id).await {
            Some(sidecar) => Ok(axum::Json(sidecar.into_view())),
            None => Err(e),
        },
    }
}

/// A clip this node does not hold, from the bucket (another node's, or one it forgot).
async fn in_bucket(service: &Service, id: &str) -> Option<super::remote::Sidecar> {
    service.remote.as_ref()?.find(id).await
}

/// `{"keep": bool}`: marks the clip so retention never deletes it, or unmarks it.
async fn patch_clip(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<axum::Json<ClipView>, ApiError> {
    let keep = order::keep_of(&bytes, false).map_err(ApiError::bad_request)?;
    match service.set_keep(&id, keep).await {
        Ok(Some(view)) => Ok(axum::Json(view)),
        Ok(None) => Err(error(
            StatusCode::NOT_FOUND,
            format!("no clip with id {id:?}"),
        )),
        Err(super::clips::KeepError::History(e)) => Err(history_unreadable(e)),
        Err(super::clips::KeepError::Storage { message, full }) => Err(error(
            if full {
                StatusCode::INSUFFICIENT_STORAGE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            },
            message,
        )),
    }
}

async fn delete_clip(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<axum::Json<ClipView>, ApiError> {
    service.delete_clip(&id).await.map(axum::Json).map_err(|e| {
        let status = match e {
            super::DeleteRefused::NotFound(_) => StatusCode::NOT_FOUND,
            super::DeleteRefused::InProgress(_) => StatusCode::CONFLICT,
            super::DeleteRefused::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, e.to_string())
    })
}

async fn list_clips(
    State(service): State<Arc<Service>>,
    query: Result<Query<ClipQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut all = service.clips.all().map_err(history_unreadable)?;
    if let Some(remote) = &service.remote {
        // Other nodes' clips as the bucket has them now (listed at most once a second).
        remote.catalog.list_if_stale(remote.store.as_ref()).await;
        all = remote.merge(all);
    }
    let page = query.apply(all).map_err(ApiError::bad_request)?;
    let mut response = axum::Json(page.clips).into_response();
    response
        .headers_mut()
        .insert("x-total-count", HeaderValue::from(page.total));
    Ok(response)
}

async fn stop_clip(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<axum::Json<ClipView>, ApiError> {
    let clip = find(&service, &id)?;
    clip.stop()
        .map(axum::Json)
        .map_err(|e| not_recording(&id, e))
}

async fn extend_clip(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<axum::Json<ClipView>, ApiError> {
    let clip = find(&service, &id)?;
    let (asked, more) = order::extend_seconds(&bytes).map_err(ApiError::bad_request)?;
    clip.extend(more).map(axum::Json).map_err(|e| match e {
        ExtendRefused::NotRecording(e) => not_recording(&id, e),
        // The body is well formed; what it asks conflicts with what the clip asked so far.
        ExtendRefused::TooLong { total } => error(
            StatusCode::CONFLICT,
            format!(
                "extending clip {id} by {asked} s would make it record {total} s after its \
                 trigger; the limit is {MAX_CLIP_SECONDS} s"
            ),
        ),
    })
}

async fn clip_file(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    // Taken out of the request: its body is not `Sync`, so it may not be borrowed across an
    // await.
    let asked = (request.method().clone(), request.headers().clone());
    let clip = match find(&service, &id) {
        Ok(clip) => clip,
        Err(e) => {
            let Some(remote) = &service.remote else {
                return Err(e);
            };
            let media = in_bucket(&service, &id)
                .await
                .as_ref()
                .and_then(super::remote::serve::Media::of)
                .ok_or(e)?;
            return from_bucket(remote, &media, asked).await;
        }
    };
    let view = clip.view();
    if view.state != super::ClipState::Done {
        return Err(error(
            StatusCode::CONFLICT,
            format!(
                "clip {id} is {}; its file is served once it is done",
                view.state.name()
            ),
        ));
    }
    let file = {
        let (dirs, path) = (service.dirs.clone(), view.path.clone());
        tokio::task::spawn_blocking(move || dirs.open_clip(&path))
            .await
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    };
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            // Removed here after its upload (or lost): served from the bucket.
            if e.kind() == std::io::ErrorKind::NotFound
                && let Some(remote) = &service.remote
                && let Some(media) = remote.copies.get(&view.path).and_then(|c| {
                    object_store::path::Path::parse(&c.key).ok().map(|key| {
                        super::remote::serve::Media::Object {
                            key,
                            bytes: c.bytes,
                        }
                    })
                })
            {
                return from_bucket(remote, &media, asked).await;
            }
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound => error(
                    StatusCode::GONE,
                    format!("the file of clip {id} is no longer there"),
                ),
                // A symlink (or something other than a file) now stands at its name.
                std::io::ErrorKind::InvalidInput => error(
                    StatusCode::GONE,
                    format!("the file of clip {id} was replaced ({e}); it is not served"),
                ),
                _ => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("opening {}: {e}", view.path.display()),
                ),
            });
        }
    };
    super::download::serve_file(file, request.method(), request.headers())
        .await
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading {}: {e}", view.path.display()),
            )
        })
}

/// A clip's bytes from the bucket (or a redirect to them).
async fn from_bucket(
    remote: &super::remote::Remote,
    media: &super::remote::serve::Media,
    (method, headers): (Method, HeaderMap),
) -> Result<Response, ApiError> {
    super::remote::serve::respond(remote, media, &method, &headers)
        .await
        .map_err(|e| error(StatusCode::BAD_GATEWAY, e.to_string()))
}

async fn list_cameras(
    State(service): State<Arc<Service>>,
) -> axum::Json<Vec<super::observe::CameraView>> {
    axum::Json(service.cameras.iter().map(camera_view).collect())
}

/// Where the ways out stand: the MQTT link and each webhook.
async fn integrations(State(service): State<Arc<Service>>) -> axum::Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let mqtt = service
        .mqtt_status()
        .and_then(|s| serde_json::to_value(s).ok());
    let webhooks: Vec<serde_json::Value> = service
        .webhooks
        .iter()
        .map(|w| {
            serde_json::json!({
                "name": w.name,
                "pending": w.pending.load(Relaxed),
                "delivered": w.delivered.load(Relaxed),
                "failed_attempts": w.failed_attempts.load(Relaxed),
                "given_up": w.given_up.load(Relaxed),
            })
        })
        .collect();
    let remote = service.remote.as_ref().map(|r| r.status());
    axum::Json(serde_json::json!({ "mqtt": mqtt, "webhooks": webhooks, "remote": remote }))
}

async fn healthz(State(service): State<Arc<Service>>) -> Response {
    let connected = service
        .cameras
        .iter()
        .filter_map(|c| c.camera.as_ref())
        .filter(|c| c.status().connected)
        .count();
    let enabled = service
        .cameras
        .iter()
        .filter(|c| c.camera.is_some())
        .count();
    let status = if service.is_shutting_down() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "shutting down" },
        "cameras": enabled,
        "cameras_connected": connected,
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        metrics_page(&service),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "no such route (see /openapi.json)")
}
