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
//! - with UDP transport, RTP and RTCP pass through the link too ([`udp`](super::udp)), so
//!   that frames are bounded the same way as interleaved ones.
//!
//! retina has no hook to change the SDP or to be handed a connection of our own (it always
//! connects to the URL's host), hence a socket, on 127.0.0.1, which takes one connection,
//! from this host, and closes.

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
use super::rtp_bounds::StreamBound;
use super::sdp::{self, RealMedia};
use super::udp::{self, CameraPorts, LegEnd, UdpLeg};
use crate::source::Hurry;
use crate::source::redact::camera_text;
use crate::source::{SourceError, SourceErrorKind};

/// How much is read at once from either side.
const READ_CHUNK: usize = 64 * 1024;
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
    /// The UDP relays of the streams set up so far, stopped when the link ends.
    udp_relays: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug)]
struct Pending {
    /// CSeq as sent to the camera, and as retina sent it.
    sent: u32,
    retina: u32,
    /// The request as sent, without Authorization (to sign again after a challenge).
    request: Message,
    retried: bool,
    /// A UDP SETUP's relay, bound for the ports the request names.
    udp: Option<UdpLeg>,
}

/// Fixed facts of one link.
#[derive(Debug)]
struct Ends {
    shown: String,
    /// `rtsp://127.0.0.1:PORT` (retina's view) and `rtsp://camera:554` (the camera's).
    link_prefix: String,
    camera_prefix: String,
    camera_ip: IpAddr,
    /// The address this host reaches the camera from, where it is to send RTP over UDP.
    camera_facing_ip: IpAddr,
    transport: Transport,
    /// Signalled by a UDP relay that gives up (its reason recorded first).
    udp_failed: tokio::sync::Notify,
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
        let camera_facing_ip = stream.local_addr().map_err(connect_err)?.ip();
        let listen_ip = IpAddr::from([127, 0, 0, 1]);
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
            camera_facing_ip,
            transport,
            udp_failed: tokio::sync::Notify::new(),
        };
        let shared = Arc::new(Mutex::new(Shared::default()));
        let relay = Relay {
            channels: [false; 256],
            pending: VecDeque::new(),
            cseq_offset: 0,
            signer: credentials.map(|(u, p)| Signer::new(u, p)),
            latm_channel: None,
            playing: false,
            udp_relays: Vec::new(),
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
    let relay_of_run = relay.clone();
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
        // The relay recorded its reason; retina's stream ends with the connection.
        _ = ends.udp_failed.notified() => Ok(()),
    };
    for relay in lock(&relay_of_run).udp_relays.drain(..) {
        relay.abort();
    }
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
    let udp = udp_leg_for(m, &method, ends)?;
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
        udp,
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

/// For a SETUP asking for UDP: the relay's ports bound, and the request's `client_port`
/// changed to the camera-facing pair.
fn udp_leg_for(m: &mut Message, method: &str, ends: &Ends) -> Result<Option<UdpLeg>, SourceError> {
    if method != "SETUP" || ends.transport != Transport::Udp {
        return Ok(None);
    }
    let Some(transport) = m.header("Transport").map(str::to_owned) else {
        return Ok(None);
    };
    let Some(retina_port) = udp::requested_client_port(&transport) else {
        return Ok(None);
    };
    let leg = UdpLeg::bind(ends.camera_facing_ip, retina_port).map_err(|e| {
        SourceError::new(
            SourceErrorKind::Io,
            format!(
                "{}: cannot bind UDP ports for RTP on {}: {e}",
                ends.shown, ends.camera_facing_ip
            ),
        )
    })?;
    m.set_header(
        "Transport",
        udp::with_ports(&transport, "client_port", leg.camera_facing_port(), &[]),
    );
    Ok(Some(leg))
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
    let mut bounds = Box::new([StreamBound::default(); 256]);
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
                    let channel = bytes[1];
                    let bound = &mut bounds[usize::from(channel)];
                    if latm_channel == Some(channel) {
                        bound.carries_latm();
                    }
                    bound.add(&bytes[4..]).map_err(|e| {
                        protocol(
                            &ends,
                            format!("the camera sent {e}, on interleaved channel {channel}"),
                        )
                    })?;
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
    ends: &Arc<Ends>,
    shared: &Arc<Mutex<Shared>>,
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
                        udp: pending.udp,
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
            match pending.udp {
                Some(leg) => {
                    let t = relay_udp(leg, &transport, latm, ends, shared, &mut r)?;
                    m.set_header("Transport", t);
                }
                None => {
                    mark_channels(&transport, &mut r.channels);
                    if latm {
                        r.latm_channel = interleaved_rtp_channel(&transport);
                    }
                }
            }
        }
    }
    Ok(Answer::Forward(m))
}

/// The RTP channel (the first) of a Transport header's `interleaved=a-b`.
pub(super) fn interleaved_rtp_channel(t: &str) -> Option<u8> {
    t.split(';')
        .find_map(|p| p.trim().strip_prefix("interleaved="))
        .and_then(|r| r.split('-').next())
        .and_then(|c| c.trim().parse().ok())
}

/// Marks the interleaved channels a SETUP answer assigns.
pub(super) fn mark_channels(t: &str, channels: &mut [bool; 256]) {
    for part in t.split(';') {
        if let Some(range) = part.trim().strip_prefix("interleaved=") {
            let mut ends_of = range.split('-').filter_map(|c| c.trim().parse::<u8>().ok());
            if let Some(a) = ends_of.next() {
                let b = ends_of.next().unwrap_or(a);
                for c in a.min(b)..=a.max(b) {
                    channels[usize::from(c)] = true;
                }
            }
        }
    }
}

/// Starts the UDP relay of a stream the camera set up, and returns the Transport retina is
/// to see: its own ports as `client_port`, the relay's loopback pair as the camera's.
fn relay_udp(
    leg: UdpLeg,
    transport: &str,
    latm: bool,
    ends: &Arc<Ends>,
    shared: &Arc<Mutex<Shared>>,
    r: &mut Relay,
) -> Result<String, SourceError> {
    let (Some(rtp_port), source) = udp::answered_ports(transport) else {
        // retina refuses it, naming what is missing.
        return Ok(transport.to_owned());
    };
    let camera = CameraPorts {
        ip: source.unwrap_or(ends.camera_ip),
        rtp_port,
    };
    let shown = udp::with_ports(
        transport,
        "server_port",
        leg.retina_facing_port(),
        &["source"],
    );
    let shown = udp::with_ports(&shown, "client_port", leg.retina_port(), &[]);
    let mut bound = StreamBound::default();
    if latm {
        bound.carries_latm();
    }
    let (ends, shared) = (ends.clone(), shared.clone());
    let port = leg.camera_facing_port();
    r.udp_relays.push(tokio::spawn(async move {
        let why = match leg.run(camera, bound).await {
            LegEnd::Bound(e) => format!("the camera sent {e}, over UDP to port {port}"),
            LegEnd::Io(e) => format!("relaying RTP over UDP on port {port} failed: {e}"),
        };
        let e = protocol(&ends, why);
        tracing::debug!("{e}");
        shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failure
            .get_or_insert(e);
        ends.udp_failed.notify_one();
    }));
    Ok(format!("{shown};source=127.0.0.1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_answers_assign_channels() {
        let mut ch = [false; 256];
        mark_channels("RTP/AVP/TCP;unicast;interleaved=2-3", &mut ch);
        assert_eq!((ch[1], ch[2], ch[3], ch[4]), (false, true, true, false));
        mark_channels("RTP/AVP/TCP;unicast;interleaved=9", &mut ch);
        assert!(ch[9] && !ch[10]);
        assert_eq!(
            interleaved_rtp_channel("RTP/AVP/TCP;unicast;interleaved=2-3"),
            Some(2)
        );
    }

    #[test]
    fn prefixes_leave_out_credentials_and_path() {
        let u = url::Url::parse("rtsp://u:p@cam.local:8554/a/b?x=1").unwrap();
        assert_eq!(prefix_of(&u), "rtsp://cam.local:8554");
        let u = url::Url::parse("rtsp://[::1]/s").unwrap();
        assert_eq!(prefix_of(&u), "rtsp://[::1]");
    }
}
