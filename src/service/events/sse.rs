//! `GET /api/events`: the event stream as Server-Sent Events. Each event's SSE `id` is its
//! id, so a client that reconnects with `Last-Event-ID` (browsers' `EventSource` does so
//! itself) gets exactly the events it missed, as far as the bus still keeps them. The
//! stream ends after `service.stopping`, so a shutdown does not wait for idle clients.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;

use super::{EventKind, Subscription};
use crate::service::Service;
use crate::service::api::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only these kinds, comma-separated (`clip.done,clip.failed`).
    kinds: Option<String>,
    /// As `Last-Event-ID`, for clients that cannot set headers.
    after: Option<u64>,
}

pub async fn events(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let header = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be an event id"))
        })
        .transpose()?;
    let after = header.or(q.after);
    let kinds = match q.kinds.as_deref() {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|k| {
                    EventKind::from_name(k.trim()).ok_or_else(|| {
                        ApiError::bad_request(format!("kinds: no event kind {:?}", k.trim()))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let subscription = service.events.subscribe("sse", after);
    let stream = sse_stream(subscription, kinds);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(service.config.api.events_heartbeat))
        .into_response())
}

fn sse_stream(
    subscription: Subscription,
    kinds: Option<Vec<EventKind>>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures::stream::unfold(
        (subscription, kinds, false),
        |(mut sub, kinds, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let event = sub.recv().await?;
                let kind = event.body.kind;
                let stopping = kind == EventKind::ServiceStopping;
                if kinds.as_ref().is_some_and(|k| !k.contains(&kind)) {
                    if stopping {
                        return None;
                    }
                    continue;
                }
                let data = match serde_json::to_string(&*event) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(id = event.id, "an event that does not serialize: {e}");
                        continue;
                    }
                };
                // No SSE event name: every event arrives as a plain message (`onmessage`),
                // its kind inside.
                let sse = SseEvent::default().id(event.id.to_string()).data(data);
                return Some((Ok(sse), (sub, kinds, stopping)));
            }
        },
    )
}
