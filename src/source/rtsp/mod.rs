//! RTSP cameras, through retina behind the camera link ([`link`]): TCP interleaved by default,
//! UDP on request; credentials from the URL (Basic and Digest, answered by the link); every
//! wait bounded by a timeout, every byte the camera sends bounded by the link.

mod audio;
mod auth;
mod framing;
#[doc(hidden)]
pub mod hidden;
mod link;
mod rtp_bounds;
mod sdp;
mod udp;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use retina::client::{
    Demuxed, InitialTimestampPolicy, PlayOptions, Session, SessionOptions, SetupOptions,
};
use retina::codec::{CodecItem, ParametersRef};

use crate::audio::{PcmCodec, PcmToFlac, describe};
use crate::mp4::{Codec, TrackKind};

use self::audio::AudioPath;
use self::link::Link;
use self::sdp::RealCodec;
use super::arrival::ArrivalClock;
use super::redact::camera_text;
use super::{
    Batching, Frame, Source, SourceError, SourceErrorKind, SourceEvent, TrackParams, redact_url,
};

/// How long packets may queue in the socket before they are read. Over TCP nothing can be
/// lost (flow control holds the sender back, and the kernel grows the buffer to megabytes);
/// a quarter second is invisible next to a GOP of pre-roll. Over UDP the default 208 KB socket
/// buffer is the limit: 50 ms of a 16 Mb/s stream is 100 KB.
const READ_BATCH_TCP: Duration = Duration::from_millis(250);
const READ_BATCH_UDP: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            other => Err(format!("transport {other:?} is not tcp or udp")),
        }
    }
}

/// Connection settings for one camera.
#[derive(Debug, Clone)]
pub struct RtspOptions {
    pub transport: Transport,
    /// Bound on TCP connect plus DESCRIBE, SETUP and PLAY.
    pub connect_timeout: Duration,
    /// A stream that delivers no video frame for this long (other packets do not count) is dropped (and reconnected).
    pub stall_timeout: Duration,
    /// How long reads wait to gather data (shortened while connecting or recording).
    pub batching: Batching,
}

impl Default for RtspOptions {
    fn default() -> Self {
        RtspOptions {
            transport: Transport::Tcp,
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            batching: Batching::default(),
        }
    }
}

/// One selected RTSP stream: its index in the session and in our params.
#[derive(Debug, Clone, Copy)]
struct Selected {
    session_index: usize,
    kind: TrackKind,
    /// A frame of this stream has been read on this connection.
    started: bool,
}

pub struct RtspSource {
    url_shown: String,
    demuxed: Demuxed,
    selected: Vec<Selected>,
    params: Vec<TrackParams>,
    /// Events decided together and handed out one per call (parameters, then their frame).
    pending: VecDeque<SourceEvent>,
    stall_timeout: Duration,
    /// When the stream stalls unless a video frame comes first: a frame, not any packet,
    /// since a camera whose encoder hung can go on answering with RTCP reports for ever.
    stall_at: tokio::time::Instant,
    read_batch: Duration,
    batching: Batching,
    /// Per selected stream, when its frames arrived (reads are batched; see `arrival`).
    clocks: Vec<ArrivalClock>,
    /// How the selected audio stream's packets become samples.
    audio: Option<AudioPath>,
    /// The relay retina reaches the camera through.
    link: Link,
    /// The camera's audio as sent ("PCMU 8000 Hz mono"), whether or not clips keep it.
    source_audio: Option<String>,
}

impl std::fmt::Debug for RtspSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspSource")
            .field("url", &self.url_shown)
            .finish()
    }
}

/// Classifies a retina error by what a user can do about it. When the camera link gave up
/// first, its reason is the error (retina saw only the connection close). retina's text can
/// quote the camera (reason phrases, headers): it is shown escaped and bounded.
fn classify(e: &retina::Error, shown_url: &str, link: &Link) -> SourceError {
    if let Some(failure) = link.failure() {
        return failure;
    }
    let text = redact_url(&e.to_string());
    let kind = kind_of(e.status_code(), &text);
    let shown = text
        .split("\n\n")
        .map(|p| camera_text(p.as_bytes(), 1000))
        .collect::<Vec<_>>()
        .join(" / ");
    SourceError::new(kind, format!("{shown_url}: {shown}"))
}

/// The kind of a retina error from its RTSP status and the first paragraph of its text.
/// What follows that paragraph is connection context (ports, nanosecond timestamps) whose
/// digits can spell anything: a dropped connection whose context held "401" was taken for
/// bad credentials, a persistent error, and the camera waited out the longest backoff.
fn kind_of(status: Option<u16>, text: &str) -> SourceErrorKind {
    let head = text.split("\n\n").next().unwrap_or(text);
    if status == Some(401) || head.contains("Unauthorized") || head.contains("authentication") {
        SourceErrorKind::Auth
    } else if head.contains("Connection refused")
        || head.contains("connect")
        || head.contains("resolve")
        || head.contains("unreachable")
    {
        SourceErrorKind::Connect
    } else {
        SourceErrorKind::Protocol
    }
}

fn params_of(
    p: ParametersRef<'_>,
    kind: TrackKind,
    clock_rate: u32,
    audio: Option<&AudioPath>,
) -> Result<TrackParams, String> {
    if let Some(audio) = audio {
        return audio.params(p, clock_rate);
    }
    match p {
        ParametersRef::Video(v) => {
            let codec = if v.rfc6381_codec().starts_with("avc") {
                Codec::H264
            } else {
                Codec::H265
            };
            let entry = v.mp4_sample_entry().build().map_err(|e| e.to_string())?;
            let (width, height) = v.pixel_dimensions();
            Ok(TrackParams {
                kind,
                codec,
                timescale: clock_rate,
                sample_entry: Bytes::from(entry),
                width,
                height,
            })
        }
        _ => Err("not a video stream".into()),
    }
}

impl RtspSource {
    /// Connects: DESCRIBE, SETUP of the first H.264/H.265 video stream and the first audio
    /// stream clips can keep (AAC as sent; G.711 A-law/µ-law and L16 as FLAC; Opus as sent;
    /// MP4A-LATM as plain AAC), PLAY. Other audio codecs are reported once and left out.
    pub async fn connect(
        url: &str,
        camera: &str,
        options: &RtspOptions,
    ) -> Result<RtspSource, SourceError> {
        let shown = redact_url(url);
        let mut parsed = url::Url::parse(url).map_err(|e| {
            SourceError::new(
                SourceErrorKind::Unsupported,
                format!("{shown}: not a URL: {e}"),
            )
        })?;
        let creds = if parsed.username().is_empty() {
            None
        } else {
            let c = (
                percent_decode(parsed.username()),
                percent_decode(parsed.password().unwrap_or("")),
            );
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            Some(c)
        };
        let timed_out = || {
            SourceError::new(
                SourceErrorKind::Timeout,
                format!(
                    "{shown}: no answer to connect/DESCRIBE/SETUP/PLAY within {:?}",
                    options.connect_timeout
                ),
            )
        };
        let link = tokio::time::timeout(
            options.connect_timeout,
            Link::open(
                &parsed,
                creds,
                options.transport,
                &shown,
                options.connect_timeout,
                options.batching.connecting(),
            ),
        )
        .await
        .map_err(|_| timed_out())??;
        let setup = async {
            let session_options = SessionOptions::default().user_agent("preroll".into());
            let mut session = Session::describe(link.url.clone(), session_options)
                .await
                .map_err(|e| classify(&e, &shown, &link))?;
            let real = link.real_media();
            let mut selected = Vec::new();
            let mut video = None;
            let mut audio = None;
            let mut path = None;
            let mut source_audio = None;
            for (i, s) in session.streams().iter().enumerate() {
                let enc = s.encoding_name().to_ascii_lowercase();
                let channels = s.channels().map_or(1, |c| c.get());
                // What the camera really sends, where the link renamed it for retina.
                let control = s.control().map(url::Url::as_str).unwrap_or_default();
                // A renamed stream carries the encoding it was renamed to, and its control
                // (or, when the SDP gave it none, no other renamed stream's).
                let renamed = real.iter().filter(|r| r.codec.shown_as() == enc).find(|r| {
                    r.control
                        .as_deref()
                        .is_none_or(|c| !c.is_empty() && control.ends_with(c))
                });
                match (s.media(), renamed) {
                    (_, Some(r)) if audio.is_none() => match &r.codec {
                        RealCodec::Opus { channels } => {
                            let shown = AudioPath::describe_opus(*channels);
                            tracing::info!(camera, "audio {shown} is kept as Opus");
                            audio = Some(i);
                            source_audio = Some(shown);
                            path = Some(AudioPath::opus(*channels));
                        }
                        RealCodec::Latm {
                            clock_rate,
                            channels,
                            fmtp,
                        } => match AudioPath::latm(fmtp, *clock_rate) {
                            Ok((p, config)) => {
                                let shown = AudioPath::describe_latm(&config);
                                tracing::info!(camera, "audio {shown} is kept as AAC");
                                audio = Some(i);
                                source_audio = Some(shown);
                                path = Some(p);
                            }
                            Err(e) => {
                                let shown = describe("MP4A-LATM", *clock_rate, *channels);
                                tracing::warn!(
                                    camera,
                                    "audio {shown} cannot be kept ({}); recording video only",
                                    camera_text(e.as_bytes(), 200)
                                );
                                source_audio.get_or_insert(format!("{shown} (not kept: {e})"));
                            }
                        },
                    },
                    (_, Some(_)) => {}
                    ("video", None) if video.is_none() && (enc == "h264" || enc == "h265") => {
                        video = Some(i)
                    }
                    ("audio", None) if audio.is_none() && enc == "mpeg4-generic" => {
                        audio = Some(i);
                        path = Some(AudioPath::Aac);
                        source_audio = Some(describe("AAC", s.clock_rate_hz(), channels));
                    }
                    ("audio", None) if audio.is_none() => {
                        let shown = describe(
                            &camera_text(s.encoding_name().to_ascii_uppercase().as_bytes(), 40),
                            s.clock_rate_hz(),
                            channels,
                        );
                        match PcmCodec::from_encoding(&enc)
                            .map(|c| PcmToFlac::new(c, s.clock_rate_hz(), channels))
                        {
                            Some(Ok(t)) => {
                                tracing::info!(camera, "audio {shown} is kept as FLAC");
                                audio = Some(i);
                                source_audio = Some(t.describe());
                                path = Some(AudioPath::Flac(t));
                            }
                            Some(Err(e)) => {
                                tracing::warn!(
                                    camera,
                                    "audio {shown} cannot be kept ({e}); recording video only"
                                );
                                source_audio.get_or_insert(shown);
                            }
                            None => {
                                tracing::warn!(
                                    camera,
                                    "audio codec {} cannot go into MP4 clips; recording video only",
                                    camera_text(enc.as_bytes(), 40)
                                );
                                source_audio.get_or_insert(shown);
                            }
                        }
                    }
                    _ => {}
                }
            }
            let Some(video) = video else {
                return Err(SourceError::new(
                    SourceErrorKind::Unsupported,
                    format!("{shown}: no H.264 or H.265 video stream"),
                ));
            };
            for (i, kind) in [(Some(video), TrackKind::Video), (audio, TrackKind::Audio)] {
                let Some(i) = i else { continue };
                let transport = match options.transport {
                    Transport::Tcp => retina::client::Transport::Tcp(Default::default()),
                    Transport::Udp => retina::client::Transport::Udp(Default::default()),
                };
                session
                    .setup(i, SetupOptions::default().transport(transport))
                    .await
                    .map_err(|e| classify(&e, &shown, &link))?;
                selected.push(Selected {
                    session_index: i,
                    kind,
                    started: false,
                });
            }
            let playing = session
                .play(PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive))
                .await
                .map_err(|e| classify(&e, &shown, &link))?;
            let demuxed = playing.demuxed().map_err(|e| classify(&e, &shown, &link))?;
            Ok::<_, SourceError>((demuxed, selected, path, source_audio))
        };
        let (demuxed, selected, path, source_audio) =
            match tokio::time::timeout(options.connect_timeout, setup).await {
                Ok(r) => r?,
                // The link's reason, when it gave up, says more than the time-out.
                Err(_) => return Err(link.failure().unwrap_or_else(timed_out)),
            };
        let mut source = RtspSource {
            url_shown: shown,
            demuxed,
            selected,
            params: Vec::new(),
            pending: VecDeque::new(),
            stall_timeout: options.stall_timeout,
            stall_at: tokio::time::Instant::now() + options.stall_timeout,
            read_batch: match options.transport {
                Transport::Tcp => READ_BATCH_TCP,
                Transport::Udp => READ_BATCH_UDP,
            },
            batching: options.batching.clone(),
            clocks: Vec::new(),
            audio: path,
            link,
            source_audio,
        };
        if source.refresh_params() {
            // Known from the SDP already: announce them before the first frame.
            source
                .pending
                .push_back(SourceEvent::Params(source.params.clone()));
        }
        Ok(source)
    }

    /// Re-reads the parameters of every selected stream; returns true if they changed.
    fn refresh_params(&mut self) -> bool {
        let streams = self.demuxed.streams();
        let mut params = Vec::new();
        for s in &self.selected {
            let stream = &streams[s.session_index];
            let audio = self.audio.as_ref().filter(|_| s.kind == TrackKind::Audio);
            match stream.parameters() {
                Some(p) => match params_of(p, s.kind, stream.clock_rate_hz(), audio) {
                    Ok(p) => params.push(p),
                    Err(e) => {
                        tracing::debug!(url = %self.url_shown, "stream {}: {e}", s.session_index);
                        return false;
                    }
                },
                // Parameters not known yet (they come with the first keyframe).
                None => return false,
            }
        }
        if params != self.params {
            self.params = params;
            return true;
        }
        false
    }
}

impl RtspSource {
    /// One audio payload as the clip keeps it; `None` (and the packet dropped, as a lost one
    /// would be) when it is broken.
    fn audio_frame(&mut self, data: &[u8]) -> Option<(Bytes, Option<u32>)> {
        let path = self.audio.as_mut()?;
        match path.frame(data) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::debug!(url = %self.url_shown, "audio packet dropped: {e}");
                None
            }
        }
    }

    fn stalled(&self) -> SourceError {
        let dropped = self.link.dropped_bytes();
        let also = if dropped > 0 {
            format!(
                " ({dropped} bytes on interleaved channels no stream was set up on were dropped)"
            )
        } else {
            String::new()
        };
        SourceError::new(
            SourceErrorKind::Stalled,
            format!(
                "{}: no video frame for {:?}{also}",
                self.url_shown, self.stall_timeout
            ),
        )
    }
}

/// Whether an H.265 access unit (4-byte length-prefixed NAL units) holds an IRAP picture.
/// retina flags only IDR pictures; CRA and BLA pictures are random access points too (a
/// decoder starting there skips their RASL leading pictures), and encoders with open GOPs —
/// x265 by default, some cameras — send nothing else after the first IDR.
fn h265_irap(data: &[u8]) -> bool {
    let mut at = 0usize;
    while at + 5 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let nal_type = (data[at + 4] >> 1) & 0x3f;
        if (16..=21).contains(&nal_type) {
            return true;
        }
        at = at.saturating_add(4).saturating_add(len);
    }
    false
}

/// `%40` → `@` in URL user info.
pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Source for RtspSource {
    fn source_audio(&self) -> Option<String> {
        self.source_audio.clone()
    }

    async fn next(&mut self) -> Result<Option<SourceEvent>, SourceError> {
        if let Some(e) = self.pending.pop_front() {
            return Ok(Some(e));
        }
        loop {
            // Take what is already buffered without waiting. When nothing is, let packets
            // queue in the kernel for a moment and then drain them in one go: one pass per
            // batch instead of one per RTP packet is most of the CPU a camera costs (see
            // scripts/bench-ingest.sh).
            let item = match self.demuxed.next().now_or_never() {
                Some(item) => item,
                None => {
                    let next = self.batching.next_read(self.read_batch, Instant::now());
                    tokio::time::sleep_until(next.into()).await;
                    tokio::time::timeout_at(self.stall_at, self.demuxed.next())
                        .await
                        .map_err(|_| self.stalled())?
                }
            };
            if tokio::time::Instant::now() >= self.stall_at {
                return Err(self.stalled());
            }
            let item = match item {
                // The connection closed: by the camera, or by the link refusing what the
                // camera sent (then that is the reason).
                None => return self.link.failure().map_or(Ok(None), Err),
                Some(Err(e)) => return Err(classify(&e, &self.url_shown, &self.link)),
                Some(Ok(item)) => item,
            };
            let read = Instant::now();
            let (stream_id, timestamp, keyframe, new_params, loss, data, duration) = match item {
                CodecItem::VideoFrame(f) => {
                    let h265 = self.params.first().is_some_and(|p| p.codec == Codec::H265);
                    let irap = h265 && !f.is_random_access_point() && h265_irap(f.data());
                    let head = (
                        f.stream_id(),
                        f.timestamp(),
                        f.is_random_access_point() || irap,
                        f.has_new_parameters(),
                        f.loss(),
                    );
                    let data = Bytes::from(f.into_data());
                    (head.0, head.1, head.2, head.3, head.4, data, None)
                }
                CodecItem::AudioFrame(f) => {
                    let Some((data, duration)) = self.audio_frame(f.data()) else {
                        continue;
                    };
                    (
                        f.stream_id(),
                        f.timestamp(),
                        true,
                        false,
                        f.loss(),
                        data,
                        duration,
                    )
                }
                // MP4A-LATM, shown to retina as metadata so that it joins an AudioMuxElement's
                // packets up to the RTP marker.
                CodecItem::MessageFrame(f) if matches!(self.audio, Some(AudioPath::Latm(_))) => {
                    let Some((data, duration)) = self.audio_frame(f.data()) else {
                        continue;
                    };
                    (
                        f.stream_id(),
                        f.timestamp(),
                        true,
                        false,
                        f.loss(),
                        data,
                        duration,
                    )
                }
                _ => continue,
            };
            tracing::trace!(stream_id, keyframe, len = data.len(), "frame");
            let Some(track) = self
                .selected
                .iter()
                .position(|s| s.session_index == stream_id)
            else {
                continue;
            };
            if self.clocks.len() != self.selected.len() {
                let streams = self.demuxed.streams();
                self.clocks = self
                    .selected
                    .iter()
                    .map(|s| ArrivalClock::new(streams[s.session_index].clock_rate_hz()))
                    .collect();
            }
            let received = self.clocks[track].place(timestamp.elapsed(), read);
            let frame = Frame {
                track,
                pts: Some(timestamp.elapsed()),
                dts: None,
                duration,
                keyframe,
                data,
                received,
            };
            if (new_params || self.params.is_empty()) && self.refresh_params() {
                self.pending
                    .push_back(SourceEvent::Params(self.params.clone()));
            } else if self.params.is_empty() {
                // Nothing can be segmented before the parameters are known.
                continue;
            }
            // A gap before a stream's first packet is between the sequence number PLAY
            // announced and what the server sent first (gst-rtsp-server numbers a frame it
            // then does not send when a file's first audio frame lies before its edit list):
            // nothing after it is missing, and frames that early come before the first
            // keyframe, which no clip holds.
            if self.selected[track].kind == TrackKind::Video {
                self.stall_at = tokio::time::Instant::now() + self.stall_timeout;
            }
            let first = !std::mem::replace(&mut self.selected[track].started, true);
            if loss > 0 {
                tracing::debug!(track, loss, first, "RTP packets lost");
                if !first {
                    self.pending.push_front(SourceEvent::Lost(u32::from(loss)));
                }
            }
            self.pending.push_back(SourceEvent::Frame(frame));
            return Ok(self.pending.pop_front());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{h265_irap, kind_of, percent_decode};
    use crate::source::SourceErrorKind;

    #[test]
    fn digits_in_the_connection_context_are_not_a_status() {
        // Verbatim from the fault soak: the server dropped the connection during DESCRIBE,
        // and "401" is inside the message timestamp (…05.940164128Z).
        let eof = "Error reading from RTSP peer: EOF while expecting response to DESCRIBE CSeq 1\n\n\
                   conn: 127.0.0.1:34176(me)->127.0.0.1:36543@2026-11-24T12:08:05.689927559Z\n\
                   msg: 0@2026-11-24T12:08:05.940164128Z";
        assert_eq!(kind_of(None, eof), SourceErrorKind::Protocol);
        let unauthorized = "401 Unauthorized response to DESCRIBE CSeq=2: Received Unauthorized \
                            after trying digest auth\n\nconn: 127.0.0.1:1(me)->127.0.0.1:2@x";
        assert_eq!(kind_of(Some(401), unauthorized), SourceErrorKind::Auth);
        let refused = "Unable to connect to RTSP server: Connection refused (os error 111)";
        assert_eq!(kind_of(None, refused), SourceErrorKind::Connect);
    }

    /// The same through retina: servers that accept and hang up at once, so every error
    /// carries real connection context (ports and timestamps with 9-digit fractions). Any
    /// of it spelling "401" made the old classification call it bad credentials.
    #[tokio::test]
    async fn dropped_connections_are_never_taken_for_bad_credentials() {
        use super::{RtspOptions, RtspSource};
        let mut spelled = 0;
        for _ in 0..200 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let hang_up = tokio::spawn(async move {
                let _ = listener.accept().await;
            });
            let url = format!("rtsp://127.0.0.1:{port}/cam");
            let e = RtspSource::connect(&url, "cam", &RtspOptions::default())
                .await
                .expect_err("a server that hangs up cannot be connected");
            let _ = hang_up.await;
            assert_ne!(e.kind, SourceErrorKind::Auth, "{}", e.message);
            spelled += usize::from(e.message.contains("401"));
        }
        // How often the old rule would have misfired in this run.
        println!("{spelled} of 200 errors had \"401\" in their text");
    }

    #[test]
    fn finds_cra_pictures_among_nal_units() {
        let nal = |t: u8, len: usize| {
            let mut v = (len as u32 + 2).to_be_bytes().to_vec();
            v.extend([t << 1, 1]);
            v.extend(std::iter::repeat_n(0u8, len));
            v
        };
        let cra = [nal(39, 3), nal(21, 10)].concat(); // SEI, CRA
        let trail = [nal(1, 10), nal(1, 4)].concat();
        assert!(h265_irap(&cra));
        assert!(!h265_irap(&trail));
        assert!(!h265_irap(&[0, 0, 0, 9, 2])); // truncated: no panic
    }

    #[test]
    fn decodes_percent_escapes_in_credentials() {
        assert_eq!(percent_decode("p%40ss%3a1"), "p@ss:1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
