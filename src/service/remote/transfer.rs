//! Copying a local file into the bucket and checking the copy: one `PUT` up to [`PART`]
//! bytes, a multipart upload of [`PART`]-byte parts beyond, a few at a time. The MD5 of each part is taken
//! as it is read; the object's ETag must then be the MD5 of the file (one `PUT`) or the MD5
//! of the parts' MD5s with their count (multipart), and its size the file's. A store whose
//! ETags are not MD5s (some encryption modes) gets its copy read back and compared instead.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::copies::Copy;
use super::error::RemoteError;

/// Bytes per part of a multipart upload (S3 wants at least 5 MiB for all but the last), and
/// the most a single `PUT` sends.
pub const PART: u64 = 8 << 20;
/// Parts of one upload sent at once.
const IN_FLIGHT: usize = 4;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads `len` bytes at `offset` on the blocking pool.
async fn read_at(file: &Arc<File>, offset: u64, len: u64) -> Result<Bytes, RemoteError> {
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len as usize];
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file became shorter while it was read",
                    ));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(|e| RemoteError::Local(std::io::Error::other(e)))?
    .map_err(RemoteError::Local)
}

/// Uploads the first `len` bytes of `file` to `key` and verifies the copy.
pub async fn upload(
    store: &dyn ObjectStore,
    file: Arc<File>,
    len: u64,
    key: &Key,
) -> Result<Copy, RemoteError> {
    let mut whole = Md5::new();
    let expected = if len <= PART {
        let data = read_at(&file, 0, len).await?;
        whole.update(&data);
        store
            .put(key, PutPayload::from_bytes(data))
            .await
            .map_err(|e| RemoteError::store("uploading", key, e))?;
        hex(&whole.clone().finalize())
    } else {
        let mut upload = store
            .put_multipart(key)
            .await
            .map_err(|e| RemoteError::store("starting the upload of", key, e))?;
        let mut parts = Md5::new();
        let mut count = 0u64;
        let mut offset = 0;
        let sent: Result<(), RemoteError> = async {
            // Parts go IN_FLIGHT at a time: one at a time waits on each round trip and on
            // the store's handling of the last part before the next is read.
            let mut in_flight = futures::stream::FuturesUnordered::new();
            while offset < len {
                let n = PART.min(len - offset);
                let data = read_at(&file, offset, n).await?;
                whole.update(&data);
                parts.update(Md5::digest(&data));
                in_flight.push(upload.put_part(PutPayload::from_bytes(data)));
                offset += n;
                count += 1;
                while in_flight.len() >= IN_FLIGHT || (offset >= len && !in_flight.is_empty()) {
                    if let Some(done) = in_flight.next().await {
                        done.map_err(|e| RemoteError::store("uploading a part of", key, e))?;
                    }
                }
            }
            upload
                .complete()
                .await
                .map_err(|e| RemoteError::store("completing the upload of", key, e))?;
            Ok(())
        }
        .await;
        if let Err(e) = sent {
            // The parts sent so far would otherwise be kept (and billed) by the store.
            let _ = upload.abort().await;
            return Err(e);
        }
        format!("{}-{count}", hex(&parts.finalize()))
    };
    let md5 = hex(&whole.finalize());
    verify(store, key, len, &expected, &md5).await?;
    Ok(Copy {
        key: key.to_string(),
        bytes: len,
        md5,
        local: true,
    })
}

/// Checks that `key` holds `len` bytes whose MD5 is `md5` (the ETag must read `etag`).
async fn verify(
    store: &dyn ObjectStore,
    key: &Key,
    len: u64,
    etag: &str,
    md5: &str,
) -> Result<(), RemoteError> {
    let meta = store
        .head(key)
        .await
        .map_err(|e| RemoteError::store("checking", key, e))?;
    if meta.size != len {
        return Err(RemoteError::Mismatch {
            key: key.to_string(),
            what: format!("{} bytes in the bucket, {len} here", meta.size),
        });
    }
    let found = meta.e_tag.as_deref().unwrap_or("").trim_matches('"');
    if found == etag {
        return Ok(());
    }
    if is_md5_etag(found) {
        return Err(RemoteError::Mismatch {
            key: key.to_string(),
            what: format!("ETag {found}, expected {etag}"),
        });
    }
    // Not an MD5: read the copy back.
    let mut stream = store
        .get(key)
        .await
        .map_err(|e| RemoteError::store("reading back", key, e))?
        .into_stream();
    let mut hash = Md5::new();
    while let Some(chunk) = stream.next().await {
        hash.update(&chunk.map_err(|e| RemoteError::store("reading back", key, e))?);
    }
    let read = hex(&hash.finalize());
    if read != md5 {
        return Err(RemoteError::Mismatch {
            key: key.to_string(),
            what: format!("MD5 {read} read back, {md5} sent"),
        });
    }
    Ok(())
}

/// `<32 hex>` or `<32 hex>-<parts>`.
fn is_md5_etag(s: &str) -> bool {
    let (digest, parts) = match s.split_once('-') {
        Some((d, p)) => (d, Some(p)),
        None => (s, None),
    };
    digest.len() == 32
        && digest.bytes().all(|c| c.is_ascii_hexdigit())
        && parts.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Uploads bytes held in memory (a sidecar, a piece of a clip in progress).
pub async fn put(store: &dyn ObjectStore, key: &Key, data: Bytes) -> Result<(), RemoteError> {
    store
        .put(key, PutPayload::from_bytes(data))
        .await
        .map(|_| ())
        .map_err(|e| RemoteError::store("uploading", key, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_etags_are_told_apart() {
        assert!(is_md5_etag("22c975c45009b1960e9718617ceeb456"));
        assert!(is_md5_etag("22c975c45009b1960e9718617ceeb456-3"));
        assert!(!is_md5_etag("22c975c45009b1960e9718617ceeb456-"));
        assert!(!is_md5_etag("abc"));
        assert!(!is_md5_etag(""));
    }
}
