//! The camera link's readers of what a camera sends, run over arbitrary bytes for the fuzz
//! target `rtsp_camera` (fuzz/bodies.rs). Not part of the API.

use super::auth::Signer;
use super::framing::{Framer, Message, Piece};
use super::rtp_bounds::StreamBound;
use super::{link, sdp, udp};

/// What the readers made of one input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CameraBytes {
    /// Each message as the link re-encodes it, and each frame, in order.
    pub pieces: Vec<Vec<u8>>,
    /// Bodies that passed the SDP check, as the link hands them to retina.
    pub checked_sdp: Vec<Vec<u8>>,
    /// Where the framer stopped: the error, or `None` when it wanted more bytes.
    pub refusal: Option<String>,
    pub dropped_bytes: u64,
    /// Messages whose re-encoding does not frame back into the same message.
    pub not_round_trip: Vec<String>,
}

/// Frames `data` as the link frames a camera's bytes, `chunk` bytes per read, keeping the
/// interleaved channels below 4; and runs every reader the link applies to what it gets
/// (SDP check and renaming, Transport parameters, challenges, frame bounds).
pub fn read_camera_bytes(data: &[u8], chunk: usize) -> CameraBytes {
    let mut framer = Framer::default();
    let mut got = CameraBytes::default();
    let mut bounds = [StreamBound::default(); 4];
    'reads: for piece_of_input in data.chunks(chunk.max(1)) {
        framer.buffer().extend_from_slice(piece_of_input);
        loop {
            match framer.next(|c| c < 4) {
                Ok(None) => break,
                Ok(Some(Piece::Frame { bytes })) => {
                    if let Some(b) = bounds.get_mut(usize::from(bytes[1])) {
                        b.carries_latm();
                        let _ = b.add(&bytes[4..]);
                    }
                    got.pieces.push(bytes.to_vec());
                }
                Ok(Some(Piece::Message(m))) => {
                    read_message(&m, &mut got);
                    let mut encoded = Vec::new();
                    m.encode(&mut encoded);
                    if reframe(&encoded).as_ref().map(without_length) != Some(without_length(&m)) {
                        got.not_round_trip.push(format!("{m:?}"));
                    }
                    got.pieces.push(encoded);
                }
                Err(e) => {
                    got.refusal = Some(e.to_string());
                    break 'reads;
                }
            }
        }
    }
    got.dropped_bytes = framer.dropped_bytes;
    got
}

fn read_message(m: &Message, got: &mut CameraBytes) {
    let _ = (m.status(), m.cseq(), m.request());
    if sdp::check(&m.body).is_ok() {
        let body = match sdp::rewrite(&m.body) {
            Some((body, _real)) => body,
            None => m.body.clone(),
        };
        got.checked_sdp.push(body);
    }
    for t in m.headers_named("Transport") {
        let _ = udp::answered_ports(t);
        let _ = udp::requested_client_port(t);
        let _ = udp::with_ports(t, "server_port", 41_000, &["source"]);
        let mut channels = [false; 256];
        link::mark_channels(t, &mut channels);
        let _ = link::interleaved_rtp_channel(t);
    }
    if m.header("WWW-Authenticate").is_some() {
        let mut signer = Signer::new("user".into(), "pass".into());
        if signer.challenge(m).is_ok() {
            let _ = signer.sign("DESCRIBE", "rtsp://camera/stream");
        }
    }
}

/// Frames an encoded message again: what the link sends on must read back as itself.
fn reframe(encoded: &[u8]) -> Option<Message> {
    let mut framer = Framer::default();
    framer.buffer().extend_from_slice(encoded);
    match framer.next(|_| true) {
        Ok(Some(Piece::Message(m))) => Some(m),
        _ => None,
    }
}

/// A message's parts, Content-Length left out (encoding makes it the body's true length).
fn without_length(m: &Message) -> (&str, Vec<&(String, String)>, &[u8]) {
    let headers = m
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("Content-Length"))
        .collect();
    (&m.start, headers, &m.body)
}
