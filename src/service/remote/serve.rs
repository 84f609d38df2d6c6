//! Serving a clip held in the bucket: its object, or — for a clip whose node died while it
//! recorded — its pieces one after the other, as one file. Range requests are answered
//! from the objects' own ranges, so a player seeks without the service holding the clip.
//! With `presign_seconds`, a finished clip is a redirect to a presigned URL instead.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{GetOptions, ObjectStore};

use super::error::RemoteError;
use super::{Remote, Sidecar};
use crate::service::download;

/// Where a clip's bytes are, in order.
#[derive(Debug, Clone)]
pub enum Media {
    /// The finished clip.
    Object { key: Key, bytes: u64 },
    /// The pieces of a clip in progress (or whose node died recording it).
    Parts { prefix: Key },
}

impl Media {
    pub fn of(sidecar: &Sidecar) -> Option<Media> {
        if let Some(o) = &sidecar.object {
            return Key::parse(&o.key).ok().map(|key| Media::Object {
                key,
                bytes: o.bytes,
            });
        }
        let prefix = Key::parse(sidecar.parts.as_deref()?).ok()?;
        Some(Media::Parts { prefix })
    }
}

/// The objects holding the clip, with their sizes, in order.
async fn objects(store: &dyn ObjectStore, media: &Media) -> Result<Vec<(Key, u64)>, RemoteError> {
    match media {
        Media::Object { key, bytes } => Ok(vec![(key.clone(), *bytes)]),
        Media::Parts { prefix } => {
            let mut metas: Vec<_> = store
                .list(Some(prefix))
                .try_collect()
                .await
                .map_err(|e| RemoteError::store("listing", prefix, e))?;
            metas.sort_by(|a, b| a.location.cmp(&b.location));
            Ok(metas.into_iter().map(|m| (m.location, m.size)).collect())
        }
    }
}

/// The response for a clip held in the bucket.
pub async fn respond(
    remote: &Remote,
    media: &Media,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, RemoteError> {
    if let (Some(expires), Media::Object { key, .. }) = (remote.config.presign, media) {
        let url = remote
            .store
            .signed_url(Method::GET, key, expires)
            .await
            .map_err(|e| RemoteError::store("signing a URL for", key, e))?;
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        if let Ok(v) = HeaderValue::from_str(url.as_str()) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(r);
    }
    let objects = objects(remote.store.as_ref(), media).await?;
    let len: u64 = objects.iter().map(|(_, n)| n).sum();
    let Some((start, count)) = download::span(headers, len) else {
        return Ok(download::unsatisfiable(len));
    };
    if method == Method::HEAD || count == 0 {
        return Ok(download::media(Body::empty(), headers, start, count, len));
    }
    // The range of each object that falls in [start, start + count).
    let end = start + count;
    let mut pieces = Vec::new();
    let mut at = 0u64;
    for (key, n) in objects {
        let (a, b) = (start.max(at), end.min(at + n));
        if a < b {
            pieces.push((key, a - at..b - at));
        }
        at += n;
    }
    let store = remote.store.clone();
    let stream = futures::stream::iter(pieces)
        .then(move |(key, range)| {
            let store = store.clone();
            async move {
                let got = store
                    .get_opts(&key, GetOptions::default().with_range(Some(range)))
                    .await?;
                Ok::<_, object_store::Error>(got.into_stream())
            }
        })
        .try_flatten()
        .map_err(std::io::Error::other);
    Ok(download::media(
        Body::from_stream(stream),
        headers,
        start,
        count,
        len,
    ))
}
