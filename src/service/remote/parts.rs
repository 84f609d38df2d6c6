//! A clip in progress, copied to the bucket as it grows. Its `.partial` is a valid
//! fragmented MP4 after every fragment (`ftyp moov [free] (moof mdat)…`); every
//! `progress_interval` the bytes from the last piece sent to the end of the last complete
//! fragment are put as the next piece, `parts/<node>/<name>/<offset>`. In key order the
//! pieces are a playable file, so a machine lost mid-clip leaves what it had recorded in
//! the bucket; the finished clip's upload replaces them.
//!
//! Only the file is read: the recorder does not know about the bucket. Finishing hides the
//! header and the `moof`s as `free` boxes and appends a `moov`; reading stops at the first
//! box that is not a fragment, so nothing of that is sent as a piece.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::keys::Keys;
use super::{Remote, queue, transfer};
use crate::service::{ClipView, Service};

/// The most sent as one piece (a burst after the bucket was unreachable for a while).
const MAX_PIECE: u64 = 8 << 20;

/// Where the scan of the file stands.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    /// The next box starts here.
    at: u64,
    /// The header's `moov` was seen.
    header: bool,
    /// A `moof` was seen, its `mdat` not yet.
    in_fragment: bool,
    /// The end of the last complete fragment: what may be sent.
    good: u64,
    /// A box that is not a fragment was met: the file is being finished.
    stopped: bool,
}

/// Reads box headers from `scan.at` up to `len`, moving `good` to the end of each complete
/// fragment.
fn scan(file: &File, len: u64, mut s: Scan) -> std::io::Result<Scan> {
    while !s.stopped && s.at + 8 <= len {
        let mut head = [0u8; 16];
        let n = if s.at + 16 <= len { 16 } else { 8 };
        file.read_exact_at(&mut head[..n], s.at)?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let kind = [head[4], head[5], head[6], head[7]];
        let size = match size32 {
            // To the end of the file: not a box of a fragmented recording.
            0 => {
                s.stopped = true;
                break;
            }
            1 if n == 16 => u64::from_be_bytes([
                head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
            ]),
            1 => break,
            s => s,
        };
        if size < 8 || s.at.checked_add(size).is_none_or(|end| end > len) {
            // Not complete yet (or not a box: the scan stops there).
            if size < 8 {
                s.stopped = true;
            }
            break;
        }
        let end = s.at + size;
        match (&kind, s.header, s.in_fragment) {
            (b"ftyp" | b"free" | b"skip" | b"uuid", false, _) => {}
            (b"moov", false, _) => s.header = true,
            (b"free" | b"skip", true, false) if s.good == 0 => {}
            (b"moof", true, false) => s.in_fragment = true,
            (b"mdat", true, true) => {
                s.in_fragment = false;
                s.good = end;
            }
            _ => {
                s.stopped = true;
                break;
            }
        }
        s.at = end;
    }
    Ok(s)
}

/// Follows one clip from `clip.created` until it is final, putting its pieces.
pub async fn follow(service: Weak<Service>, remote: Arc<Remote>, view: ClipView) {
    let Some(s) = service.upgrade() else { return };
    let name = Keys::name(&s.dirs.recordings, &view.path);
    let partial = crate::recorder::partial_path(&view.path);
    let dirs = s.dirs.clone();
    drop(s);
    let parts = remote.keys.parts(&name).to_string();
    if let Err(e) = queue::put_sidecar(&remote, &name, &view, None, Some(parts)).await {
        tracing::warn!(clip = %view.id, "the sidecar of a clip in progress: {e}");
    }
    let mut file: Option<Arc<File>> = None;
    let mut state = Scan::default();
    let mut sent = 0u64;
    loop {
        tokio::time::sleep(remote.config.progress_interval).await;
        let finished = match service.upgrade() {
            Some(s) => s
                .clips
                .get(&view.id)
                .ok()
                .flatten()
                .is_none_or(|c| c.state().is_final()),
            None => true,
        };
        if file.is_none() {
            let (dirs, partial) = (dirs.clone(), partial.clone());
            match tokio::task::spawn_blocking(move || dirs.open_clip(&partial)).await {
                Ok(Ok(f)) => file = Some(Arc::new(f)),
                _ if finished => return,
                _ => continue,
            }
        }
        let Some(f) = file.clone() else { continue };
        let scanned = tokio::task::spawn_blocking(move || {
            let len = f.metadata()?.len();
            scan(&f, len, state)
        })
        .await;
        match scanned {
            Ok(Ok(next)) => state = next,
            Ok(Err(e)) => {
                tracing::warn!(clip = %view.id, "reading the clip in progress: {e}");
                return;
            }
            Err(_) => return,
        }
        while sent < state.good {
            let n = (state.good - sent).min(MAX_PIECE);
            let Some(f) = file.clone() else { break };
            let at = sent;
            let data = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n as usize];
                f.read_exact_at(&mut buf, at).map(|()| Bytes::from(buf))
            })
            .await;
            let Ok(Ok(data)) = data else { break };
            let key = remote.keys.part(&name, sent);
            match transfer::put(remote.store.as_ref(), &key, data).await {
                Ok(()) => {
                    sent += n;
                    remote.note(|st| st.parts += 1);
                }
                Err(e) => {
                    // Tried again at the next tick; the finished clip's upload is queued
                    // on disk whatever happens here.
                    tracing::debug!(clip = %view.id, "a piece of a clip in progress: {e}");
                    remote.note(|st| {
                        st.failures += 1;
                        st.last_error = Some(e.to_string());
                    });
                    break;
                }
            }
        }
        if finished || state.stopped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn boxed(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((body + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend(std::iter::repeat_n(0u8, body));
        b
    }

    #[test]
    fn only_complete_fragments_are_sent_and_finishing_stops_the_scan() {
        let tmp = tempfile::tempfile().expect("tempfile");
        let mut f = tmp;
        let header = [boxed(b"ftyp", 8), boxed(b"moov", 100), boxed(b"free", 20)].concat();
        let fragment = [boxed(b"moof", 50), boxed(b"mdat", 1000)].concat();
        f.write_all(&header).expect("write");
        f.write_all(&fragment).expect("write");
        // The next fragment, torn.
        f.write_all(&fragment[..70]).expect("write");
        let len = f.metadata().expect("len").len();
        let s = scan(&f, len, Scan::default()).expect("scan");
        assert_eq!(s.good, (header.len() + fragment.len()) as u64);
        assert!(!s.stopped);
        // Completed, then the finishing moov.
        f.write_all(&fragment[70..]).expect("write");
        f.write_all(&boxed(b"moov", 40)).expect("write");
        let len = f.metadata().expect("len").len();
        let s = scan(&f, len, s).expect("scan");
        assert_eq!(s.good, (header.len() + 2 * fragment.len()) as u64);
        assert!(s.stopped);
        // A file whose header was already hidden sends nothing.
        let mut g = tempfile::tempfile().expect("tempfile");
        g.write_all(
            &[
                boxed(b"ftyp", 8),
                boxed(b"free", 100),
                boxed(b"free", 50),
                boxed(b"mdat", 10),
            ]
            .concat(),
        )
        .expect("write");
        let len = g.metadata().expect("len").len();
        let s = scan(&g, len, Scan::default()).expect("scan");
        assert_eq!(s.good, 0);
        assert!(s.stopped);
    }
}
