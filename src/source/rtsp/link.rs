//! The camera link: a relay on the local host between retina and one camera, per connection
//! attempt. retina connects to it as if it were the camera; it connects to the camera and
//! passes bytes both ways while reading the RTSP framing, so that
//!
//! - every byte the camera sends is bounded before it is buffered (message heads and bodies,
//!   see [`framing`](super::framing)), and interleaved data on channels no SETUP assigned is
//!   dropped as it arrives and counted, instead of reaching retina;
//! - the DESCRIBE answer's SDP shows retina Opus and MP4A-LATM under encodings it passes on
//!   (see [`sdp`](super::sdp)), and the link records what they really are;
//! - request URIs are rewritten from the link's address to the camera's, and the link answers
//!   the camera's Basic or Digest challenge itself (Digest signs the URI the camera sees);
//! - when it gives up it says why ([`Link::failure`]), and the source reports that rather than
//!   the "connection closed" retina sees.
//!
//! retina has no hook to change the SDP or to be handed a connection of our own (it always
//! connects to the URL's host), hence a socket. Over TCP the link listens on 127.0.0.1. With
//! UDP transport the RTP does not pass through the link: retina binds its UDP ports on the
//! address it reached the link on, so the link listens on the address it reached the camera
//! from (the camera sends RTP there), and adds `source=` (the camera) to SETUP answers that
//! lack it, since retina would otherwise expect RTP from the link's address. Such a listener
//! is reachable from the network for the moment before retina connects: it takes one
//! connection, from this host only, and closes.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::Transport;
use super::auth::Signer;
use super::framing::{Framer, Message, Piece};
use super::sdp::{self, RealMedia};
use crate::source::Hurry;
use crate::source::redact::camera_text;
use crate::source::{SourceError, SourceErrorKind};

/// How much is read at once from either side.
const READ_CHUNK: usize = 64 * 1024;
/// Bound on one frame (the RTP packets of one timestamp on one channel): retina gathers a
/// frame's packets with no bound of its own, so a camera that never ends a frame would
/// grow it without end. A 4K camera's keyframes are a few MB; this leaves room for twice
/// that, and is what a hostile camera can make retina hold.
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// Bound on one MP4A-LATM AudioMuxElement: retina joins its packets up to the RTP marker
/// with no bound of its own. An AAC frame is at most 768 bytes per channel.
const MAX_LATM_ELEMENT: usize = 64 * 1024;
/// Requests awaiting an answer that are remembered (to map CSeq back and to re-send after a
/// challenge); retina has one or two outstanding at a time.
const MAX_PENDING: usize = 16;

/// One connection attempt's link. Dropping it leaves the relay running until either side
/// closes: retina closes when its session is dropped.
#[derive(Debug)]
pub struct Link {
    /// What retina is to connect to: the camera URL with the link's address, no credentials.
    pub url: url::Url,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    real: Vec<RealMedia>,
    failure: Option<SourceError>,
    dropped_bytes: u64,
}

/// What both directions of the relay share.
#[derive(Debug)]
struct Relay {
    /// Interleaved channels assigned by SETUP answers.
    channels: [bool; 256],
    pending: VecDeque<Pending>,
    /// Requests the link sent of its own (re-sends after a challenge): the camera's CSeq is
    /// retina's plus this.
    cseq_offset: u32,
    signer: Option<Signer>,
    /// The interleaved RTP channel of an MP4A-LATM stream, whose elements the link bounds.
    latm_channel: Option<u8>,
    /// PLAY has been answered: the connection is set up.
    playing: bool,
}

#[derive(Debug)]
struct Pending {
    /// CSeq as sent to the camera, and as retina sent it.
    sent: u32,
    retina: u32,
    /// The request as sent, without Authorization (to sign again after a challenge).
    request: Message,
    retried: bool,
}

/// Fixed facts of one link.
#[derive(Debug)]
struct Ends {
    shown: String,
    /// `rtsp://127.0.0.1:PORT` (retina's view) and `rtsp://camera:554` (the camera's).
    link_prefix: String,
    camera_prefix: String,
    camera_ip: IpAddr,
    transport: Transport,
}

impl Link {
    /// Connects to the camera and starts listening for retina. `camera` holds no credentials.
    pub async fn open(
        camera: &url::Url,
        credentials: Option<(String, String)>,
        transport: Transport,
        shown: &str,
        accept_within: Duration,
        connecting: Hurry,
    ) -> Result<Link, SourceError> {
        let port = camera.port().unwrap_or(554);
        let connect_err = |e: std::io::Error| {
            SourceError::new(
                SourceErrorKind::Connect,
                format!("{shown}: cannot connect to the camera: {e}"),
            )
        };
        let stream = match camera.host() {
            Some(url::Host::Domain(d)) => TcpStream::connect((d, port)).await,
            Some(url::Host::Ipv4(ip)) => TcpStream::connect((ip, port)).await,
            Some(url::Host::Ipv6(ip)) => TcpStream::connect((ip, port)).await,
            None => {
                return Err(SourceError::new(
                    SourceErrorKind::Unsupported,
                    format!("{shown}: the URL has no host"),
                ));
            }
        }
        .map_err(connect_err)?;
        let _ = stream.set_nodelay(true);
        let camera_ip = stream.peer_addr().map_err(connect_err)?.ip();
        let listen_ip = match transport {
            Transport::Tcp => IpAddr::from([127, 0, 0, 1]),
            Transport::Udp => stream.local_addr().map_err(connect_err)?.ip(),
        };
        let listener = TcpListener::bind(SocketAddr::new(listen_ip, 0))
            .await
            .map_err(|e| {
                SourceError::new(
                    SourceErrorKind::Io,
                    format!("{shown}: cannot listen for the camera link on {listen_ip}: {e}"),
                )
            })?;
        let local = listener.local_addr().map_err(|e| {
            SourceError::new(SourceErrorKind::Io, format!("{shown}: camera link: {e}"))
        })?;
        let mut url = camera.clone();
        let placed = url
            .set_ip_host(local.ip())
            .ok()
            .and_then(|_| url.set_port(Some(local.port())).ok());
        if placed.is_none() {
            return Err(SourceError::new(
                SourceErrorKind::Unsupported,
                format!("{shown}: not a URL the camera link can take"),
            ));
        }
        let ends = Ends {
            shown: shown.to_owned(),
            link_prefix: prefix_of(&url),
            camera_prefix: prefix_of(camera),
            camera_ip,
            transport,
        };
        let shared = Arc::new(Mutex::new(Shared::default()));
        let relay = Relay {
            channels: [false; 256],
            pending: VecDeque::new(),
            cseq_offset: 0,
            signer: credentials.map(|(u, p)| Signer::new(u, p)),
            latm_channel: None,
            playing: false,
        };
        tokio::spawn(run(
            connecting,
            listener,
            stream,
            ends,
            relay,
            shared.clone(),
            accept_within,
        ));
        Ok(Link { url, shared })
    }

    /// What the SDP's renamed media really are.
    pub fn real_media(&self) -> Vec<RealMedia> {
        self.lock().real.clone()
    }

    /// Why the link gave up, if it did.
    pub fn failure(&self) -> Option<SourceError> {
        self.lock().failure.clone()
    }

    /// Bytes dropped from interleaved channels no stream was set up on.
    pub fn dropped_bytes(&self) -> u64 {
        self.lock().dropped_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `scheme://host[:port]` of a URL (no credentials, path or query).
fn prefix_of(u: &url::Url) -> String {
    let mut p = u.clone();
    let _ = p.set_username("");
    let _ = p.set_password(None);
    p.set_path("");
    p.set_query(None);
    p.set_fragment(None);
    p.as_str().trim_end_matches('/').to_owned()
}

async fn run(
    connecting: Hurry,
    listener: TcpListener,
    camera: TcpStream,
    ends: Ends,
    relay: Relay,
    shared: Arc<Mutex<Shared>>,
    accept_within: Duration,
) {
    let own_ip = listener.local_addr().map(|a| a.ip()).ok();
    let accept = async {
        loop {
            match listener.accept().await {
                // Only this host's processes; retina connects from the listening address.
                Ok((s, peer)) if Some(peer.ip()) == own_ip => return Some(s),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    };
    let Ok(Some(client)) = tokio::time::timeout(accept_within, accept).await else {
        return;
    };
    drop(listener);
    let _ = client.set_nodelay(true);
    let (from_retina, mut to_retina) = client.into_split();
    let (from_camera, to_camera) = camera.into_split();
    let to_camera = Arc::new(tokio::sync::Mutex::new(to_camera));
    let relay = Arc::new(Mutex::new(relay));
    let ends = Arc::new(ends);
    let up = upstream(from_retina, to_camera.clone(), relay.clone(), ends.clone());
    let down = downstream(
        connecting,
        from_camera,
        &mut to_retina,
        to_camera,
        relay,
        ends.clone(),
        shared.clone(),
    );
    // Either side ending ends both: the halves are dropped and the sockets closed, so retina
    // sees the end at once — but only once the reason is recorded, so that the source finds
    // it when retina reports the closed connection (hence `to_retina` is only lent out).
    let result = tokio::select! {
        r = up => r,
        r = down => r,
    };
    if let Err(e) = result {
        // The source reports it (as the reason the session ended), once.
        tracing::debug!("{e}");
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        s.failure.get_or_insert(e);
    }
    drop(to_retina);
}

fn lock(relay: &Mutex<Relay>) -> std::sync::MutexGuard<'_, Relay> {
    relay.lock().unwrap_or_else(|p| p.into_inner())
}

fn protocol(ends: &Ends, what: impl std::fmt::Display) -> SourceError {
    SourceError::new(
        SourceErrorKind::Protocol,
        format!("{}: camera link: {what}", ends.shown),
    )
}

/// retina → camera: requests get the camera's URI, the link's CSeq and, once challenged, an
/// Authorization of the link's making; everything else passes.
async fn upstream(
    mut from: OwnedReadHalf,
    to: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    relay: Arc<Mutex<Relay>>,
    ends: Arc<Ends>,
) -> Result<(), SourceError> {
    let mut framer = Framer::default();
    let mut out = Vec::with_capacity(READ_CHUNK);
    loop {
        framer.buffer().reserve(READ_CHUNK);
        match from.read_buf(framer.buffer()).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
        out.clear();
        while let Some(piece) = framer.next(|_| true).map_err(|e| protocol(&ends, e))? {
            match piece {
                Piece::Frame { bytes, .. } => out.extend_from_slice(&bytes),
                Piece::Message(mut m) => {
                    if m.request().is_some() {
                        prepare_request(&mut m, &relay, &ends)?;
                    }
                    m.encode(&mut out);
                }
            }
        }
        if !out.is_empty() && to.lock().await.write_all(&out).await.is_err() {
            return Ok(());
        }
    }
}

/// Rewrites a request of retina's for the camera and remembers it.
fn prepare_request(m: &mut Message, relay: &Mutex<Relay>, ends: &Ends) -> Result<(), SourceError> {
    let Some((method, uri)) = m.request() else {
        return Ok(());
    };
    let method = method.to_owned();
    let uri = match uri.strip_prefix(ends.link_prefix.as_str()) {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
            format!("{}{rest}", ends.camera_prefix)
        }
        _ => uri.to_owned(),
    };
    m.start = format!("{method} {uri} RTSP/1.0");
    let Some(retina_cseq) = m.cseq() else {
        return Ok(());
    };
    let mut r = lock(relay);
    let sent = retina_cseq.wrapping_add(r.cseq_offset);
    m.set_header("CSeq", sent.to_string());
    if r.pending.len() >= MAX_PENDING {
        r.pending.pop_front();
    }
    r.pending.push_back(Pending {
        sent,
        retina: retina_cseq,
        request: m.clone(),
        retried: false,
    });
    if let Some(signed) = r.signer.as_mut().and_then(|s| s.sign(&method, &uri)) {
        let value = signed.map_err(|e| {
            SourceError::new(
                SourceErrorKind::Auth,
                format!("{}: cannot answer the camera's challenge: {e}", ends.shown),
            )
        })?;
        m.set_header("Authorization", value);
    }
    Ok(())
}

/// What to do with a camera's answer.
enum Answer {
    /// Hand it to retina (already rewritten).
    Forward(Message),
    /// Not for retina: the request went again, signed; these bytes go to the camera.
    Resend(Vec<u8>),
}

/// camera → retina: bounded framing, interleaved frames of assigned channels only, answers
/// rewritten (CSeq back to retina's, SDP, SETUP transport), challenges answered here.
async fn downstream(
    connecting: Hurry,
    mut from: OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    to_camera: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    relay: Arc<Mutex<Relay>>,
    ends: Arc<Ends>,
    shared: Arc<Mutex<Shared>>,
) -> Result<(), SourceError> {
    let mut framer = Framer::default();
    // What goes on to retina: frames as the slices of the read buffer they already are
    // (written with one writev, never copied here), messages as rewritten.
    let mut out: Vec<Bytes> = Vec::new();
    let (mut channels, mut latm_channel) = {
        let r = lock(&relay);
        (r.channels, r.latm_channel)
    };
    let mut warned = false;
    let mut connecting = Some(connecting);
    // Payload bytes of the LATM element in progress (since the last RTP marker).
    let mut latm_element = 0usize;
    let mut frames = FrameSizes::default();
    loop {
        framer.buffer().reserve(READ_CHUNK);
        match from.read_buf(framer.buffer()).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
        out.clear();
        loop {
            let piece = framer
                .next(|c| channels[usize::from(c)])
                .map_err(|e| protocol(&ends, format!("the camera sent {e}")))?;
            let Some(piece) = piece else { break };
            match piece {
                Piece::Frame { bytes } => {
                    frames.add(bytes[1], &bytes[4..]).map_err(|size| {
                        protocol(
                            &ends,
                            format!(
                                "the camera sent a frame of more than {MAX_FRAME_BYTES} bytes \
                                 (RTP packets of one timestamp on channel {}, {size} bytes so far)",
                                bytes[1]
                            ),
                        )
                    })?;
                    if latm_channel.is_some() && latm_channel == bytes.get(1).copied() {
                        latm_element = latm_bound(&bytes[4..], latm_element).ok_or_else(|| {
                            protocol(
                                &ends,
                                format!(
                                    "the camera sent an MP4A-LATM AudioMuxElement of more \
                                         than {MAX_LATM_ELEMENT} bytes (no RTP marker)"
                                ),
                            )
                        })?;
                    }
                    out.push(bytes)
                }
                Piece::Message(m) if m.request().is_some() => out.push(encoded(&m)),
                Piece::Message(m) => match answer(m, &relay, &ends, &shared)? {
                    Answer::Forward(m) => {
                        out.push(encoded(&m));
                        let r = lock(&relay);
                        (channels, latm_channel) = (r.channels, r.latm_channel);
                        if r.playing {
                            // Set up: the ingest runtime may go back to its slow tick.
                            drop(connecting.take());
                        }
                    }
                    Answer::Resend(bytes) => {
                        if to_camera.lock().await.write_all(&bytes).await.is_err() {
                            return Ok(());
                        }
                    }
                },
            }
        }
        if framer.dropped_frames > 0 {
            if !warned {
                warned = true;
                tracing::warn!(
                    "{}: the camera sends interleaved data on channels no stream was set up on; \
                     dropping it",
                    ends.shown
                );
            }
            shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .dropped_bytes = framer.dropped_bytes;
        }
        if write_pieces(to, &mut out).await.is_err() {
            return Ok(());
        }
    }
}

fn encoded(m: &Message) -> Bytes {
    let mut v = Vec::new();
    m.encode(&mut v);
    Bytes::from(v)
}

/// Writes every piece, in as few `writev` calls as the socket takes, and empties `pieces`.
async fn write_pieces(to: &mut OwnedWriteHalf, pieces: &mut Vec<Bytes>) -> std::io::Result<()> {
    // The kernel takes at most IOV_MAX (1024) buffers per call.
    const MAX_IOV: usize = 1024;
    let mut first = 0;
    while first < pieces.len() {
        let slices: Vec<std::io::IoSlice<'_>> = pieces[first..]
            .iter()
            .take(MAX_IOV)
            .map(|b| std::io::IoSlice::new(b))
            .collect();
        let mut n = to.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && first < pieces.len() {
            let len = pieces[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                bytes::Buf::advance(&mut pieces[first], n);
                n = 0;
            }
        }
    }
    pieces.clear();
    Ok(())
}

fn answer(
    mut m: Message,
    relay: &Mutex<Relay>,
    ends: &Ends,
    shared: &Mutex<Shared>,
) -> Result<Answer, SourceError> {
    let status = m.status().unwrap_or(0);
    let mut r = lock(relay);
    let Some(at) = m
        .cseq()
        .and_then(|c| r.pending.iter().position(|p| p.sent == c))
    else {
        // Not an answer to anything we sent: retina judges it.
        return Ok(Answer::Forward(m));
    };
    let Some(pending) = r.pending.remove(at) else {
        return Ok(Answer::Forward(m));
    };
    let (method, uri) = pending
        .request
        .request()
        .map(|(m, u)| (m.to_owned(), u.to_owned()))
        .unwrap_or_default();
    let fail = |kind, text: String| {
        let e = SourceError::new(kind, format!("{}: {text}", ends.shown));
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        s.failure.get_or_insert(e);
    };
    if status == 401 {
        match r.signer.as_mut() {
            None => fail(
                SourceErrorKind::Auth,
                format!("the camera wants credentials for {method} (401) and the URL has none"),
            ),
            Some(_) if pending.retried => fail(
                SourceErrorKind::Auth,
                format!("the camera refused the credentials (401 to {method})"),
            ),
            Some(signer) => match signer.challenge(&m) {
                Err(e) => fail(
                    SourceErrorKind::Auth,
                    format!(
                        "cannot answer the camera's challenge ({}): {}",
                        camera_text(
                            m.header("WWW-Authenticate").unwrap_or_default().as_bytes(),
                            120
                        ),
                        camera_text(e.as_bytes(), 120)
                    ),
                ),
                Ok(()) => {
                    r.cseq_offset = r.cseq_offset.wrapping_add(1);
                    let sent = pending.retina.wrapping_add(r.cseq_offset);
                    let mut request = pending.request;
                    request.set_header("CSeq", sent.to_string());
                    let mut signed = request.clone();
                    if let Some(value) = r.signer.as_mut().and_then(|s| s.sign(&method, &uri)) {
                        let value = value.map_err(|e| {
                            SourceError::new(
                                SourceErrorKind::Auth,
                                format!(
                                    "{}: cannot answer the camera's challenge: {e}",
                                    ends.shown
                                ),
                            )
                        })?;
                        signed.set_header("Authorization", value);
                    }
                    let mut bytes = Vec::new();
                    signed.encode(&mut bytes);
                    r.pending.push_back(Pending {
                        sent,
                        retina: pending.retina,
                        request,
                        retried: true,
                    });
                    return Ok(Answer::Resend(bytes));
                }
            },
        }
    }
    m.set_header("CSeq", pending.retina.to_string());
    r.playing |= method == "PLAY";
    if (200..300).contains(&status) {
        if method == "DESCRIBE" {
            sdp::check(&m.body).map_err(|e| {
                SourceError::new(
                    SourceErrorKind::Unsupported,
                    format!("{}: the camera sent a malformed SDP: {e}", ends.shown),
                )
            })?;
        }
        if method == "DESCRIBE"
            && let Some((body, real)) = sdp::rewrite(&m.body)
        {
            m.body = body;
            shared.lock().unwrap_or_else(|p| p.into_inner()).real = real;
        }
        if method == "SETUP"
            && let Some(transport) = m.header("Transport").map(str::to_owned)
        {
            let t = setup_transport(&transport, ends, &mut r.channels);
            m.set_header("Transport", t);
            let latm = shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .real
                .iter()
                .any(|real| {
                    // Without a control of its own (a one-media SDP) nothing tells which
                    // SETUP is the LATM stream's: its elements are then left to retina.
                    matches!(real.codec, sdp::RealCodec::Latm { .. })
                        && real
                            .control
                            .as_deref()
                            .is_some_and(|c| !c.is_empty() && uri.ends_with(c))
                });
            if latm {
                r.latm_channel = interleaved_rtp_channel(&transport);
            }
        }
    }
    Ok(Answer::Forward(m))
}

/// The RTP channel (the first) of a Transport header's `interleaved=a-b`.
fn interleaved_rtp_channel(t: &str) -> Option<u8> {
    t.split(';')
        .find_map(|p| p.trim().strip_prefix("interleaved="))
        .and_then(|r| r.split('-').next())
        .and_then(|c| c.trim().parse().ok())
}

/// Per interleaved channel: the RTP timestamp of the frame in progress and its payload bytes
/// so far. A frame ends with its marker bit, or when a packet brings another timestamp.
struct FrameSizes {
    runs: Box<[(u32, usize); 256]>,
}

impl Default for FrameSizes {
    fn default() -> Self {
        FrameSizes {
            runs: Box::new([(0, 0); 256]),
        }
    }
}

impl FrameSizes {
    /// Counts one packet; `Err(size)` when its frame passes [`MAX_FRAME_BYTES`]. Packets too
    /// short for an RTP header (and RTCP, whose second byte reads as a marker) end a run.
    fn add(&mut self, channel: u8, rtp: &[u8]) -> Result<(), usize> {
        let run = &mut self.runs[usize::from(channel)];
        if rtp.len() < 12 {
            *run = (0, 0);
            return Ok(());
        }
        let timestamp = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
        let payload = rtp.len() - 12;
        let so_far = if run.0 == timestamp { run.1 } else { 0 };
        let size = so_far + payload;
        if size > MAX_FRAME_BYTES {
            return Err(size);
        }
        let marker = rtp[1] & 0x80 != 0;
        *run = (timestamp, if marker { 0 } else { size });
        Ok(())
    }
}

/// Adds one RTP packet of an MP4A-LATM stream to the element in progress: its new size (0
/// after a packet with the marker), or `None` past [`MAX_LATM_ELEMENT`].
fn latm_bound(rtp: &[u8], so_far: usize) -> Option<usize> {
    let (Some(&b0), Some(&b1)) = (rtp.first(), rtp.get(1)) else {
        return Some(so_far);
    };
    let header = 12 + 4 * usize::from(b0 & 0x0f);
    let total = so_far + rtp.len().saturating_sub(header);
    if total > MAX_LATM_ELEMENT {
        return None;
    }
    Some(if b1 & 0x80 != 0 { 0 } else { total })
}

/// Marks the interleaved channels a SETUP answer assigns and, for UDP, names the camera as the
/// RTP source if the answer does not (retina would take the link's address).
fn setup_transport(t: &str, ends: &Ends, channels: &mut [bool; 256]) -> String {
    let mut has_source = false;
    for part in t.split(';') {
        let part = part.trim();
        if let Some(range) = part.strip_prefix("interleaved=") {
            let mut ends_of = range.split('-').filter_map(|c| c.trim().parse::<u8>().ok());
            if let Some(a) = ends_of.next() {
                let b = ends_of.next().unwrap_or(a);
                for c in a.min(b)..=a.max(b) {
                    channels[usize::from(c)] = true;
                }
            }
        }
        has_source |= part.starts_with("source=");
    }
    if ends.transport == Transport::Udp && !has_source && !t.contains("interleaved=") {
        return format!("{t};source={}", ends.camera_ip);
    }
    t.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_answers_assign_channels_and_name_the_source() {
        let ends = Ends {
            shown: "cam".into(),
            link_prefix: "rtsp://127.0.0.1:1".into(),
            camera_prefix: "rtsp://10.0.0.5".into(),
            camera_ip: IpAddr::from([10, 0, 0, 5]),
            transport: Transport::Udp,
        };
        let mut ch = [false; 256];
        let t = setup_transport("RTP/AVP/TCP;unicast;interleaved=2-3", &ends, &mut ch);
        assert_eq!(t, "RTP/AVP/TCP;unicast;interleaved=2-3");
        assert_eq!((ch[1], ch[2], ch[3], ch[4]), (false, true, true, false));
        let t = setup_transport(
            "RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001",
            &ends,
            &mut ch,
        );
        assert!(t.ends_with(";source=10.0.0.5"), "{t}");
    }

    #[test]
    fn latm_elements_are_bounded_up_to_the_marker() {
        let packet = |marker: bool, payload: usize| {
            let mut p = vec![0x80, if marker { 0xe1 } else { 0x61 }];
            p.extend([0u8; 10]);
            p.extend(vec![0u8; payload]);
            p
        };
        assert_eq!(latm_bound(&packet(false, 1000), 0), Some(1000));
        assert_eq!(latm_bound(&packet(true, 1000), 1000), Some(0));
        assert_eq!(
            latm_bound(&packet(false, 1000), MAX_LATM_ELEMENT - 999),
            None
        );
        assert_eq!(
            interleaved_rtp_channel("RTP/AVP/TCP;unicast;interleaved=2-3"),
            Some(2)
        );
    }

    #[test]
    fn frames_are_bounded_per_channel_and_timestamp() {
        let packet = |ts: u32, marker: bool, payload: usize| {
            let mut p = vec![0x80, if marker { 0xe0 } else { 0x60 }, 0, 1];
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&[0; 4]);
            p.resize(12 + payload, 0);
            p
        };
        let mut f = FrameSizes::default();
        let chunk = 60_000;
        let per_frame = MAX_FRAME_BYTES / chunk;
        // A frame just under the bound, then one that ends with its marker, then another
        // timestamp: each starts again from nothing.
        for _ in 0..per_frame {
            assert!(f.add(0, &packet(7, false, chunk)).is_ok());
        }
        assert!(f.add(0, &packet(7, true, 10)).is_ok());
        for _ in 0..per_frame {
            assert!(f.add(0, &packet(7, false, chunk)).is_ok());
        }
        for _ in 0..per_frame {
            assert!(f.add(0, &packet(8, false, chunk)).is_ok());
        }
        // Another channel counts on its own.
        assert!(f.add(2, &packet(8, false, chunk)).is_ok());
        // Past the bound on one timestamp with no marker: refused.
        let over = (0..2)
            .map(|_| f.add(0, &packet(8, false, chunk)))
            .find(Result::is_err);
        assert_eq!(over, Some(Err((per_frame + 1) * chunk)));
    }

    #[test]
    fn prefixes_leave_out_credentials_and_path() {
        let u = url::Url::parse("rtsp://u:p@cam.local:8554/a/b?x=1").unwrap();
        assert_eq!(prefix_of(&u), "rtsp://cam.local:8554");
        let u = url::Url::parse("rtsp://[::1]/s").unwrap();
        assert_eq!(prefix_of(&u), "rtsp://[::1]");
    }
}
