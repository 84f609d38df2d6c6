//! One loop of an H.264 MP4 cut into RTP packets once, before any client connects
//! (RFC 6184: a NAL unit per packet up to [`MTU`] bytes, FU-A fragments beyond; the marker
//! bit on an access unit's last packet). Sessions then only copy them out with their own
//! sequence numbers, timestamps and SSRC.

use std::path::Path;

use base64::Engine;
use bytes::Bytes;
use preroll::mp4::{Codec, TrackKind};
use preroll::source::{FileSource, Pace, Source, SourceEvent};

/// RTP payload bytes per packet at most.
pub const MTU: usize = 1400;

/// One RTP packet without its 12-byte header.
#[derive(Debug, Clone)]
pub struct Packet {
    /// 90 kHz ticks from the loop's start.
    pub time: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// The stream every session plays.
#[derive(Debug)]
pub struct Stream {
    pub packets: Vec<Packet>,
    /// 90 kHz ticks of one loop.
    pub loop_ticks: u32,
    /// Indexes of the packets that start a keyframe (where a session may begin).
    pub keyframes: Vec<usize>,
    /// `a=fmtp` of the SDP.
    pub fmtp: String,
    pub width: u32,
    pub height: u32,
}

/// The NAL units of a sample (4-byte lengths), `None` past a malformed one.
fn nals(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let Some(nal) = data.get(at + 4..at + 4 + len) else {
            break;
        };
        if !nal.is_empty() {
            out.push(nal);
        }
        at += 4 + len;
    }
    out
}

/// Cuts one NAL unit into payloads (FU-A beyond [`MTU`]).
fn payloads(nal: &[u8]) -> Vec<Bytes> {
    if nal.len() <= MTU {
        return vec![Bytes::copy_from_slice(nal)];
    }
    let indicator = (nal[0] & 0xe0) | 28;
    let kind = nal[0] & 0x1f;
    let body = &nal[1..];
    let chunks: Vec<&[u8]> = body.chunks(MTU - 2).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Vec::with_capacity(chunk.len() + 2);
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i == last { 0x40 } else { 0 };
            p.push(indicator);
            p.push(start | end | kind);
            p.extend_from_slice(chunk);
            Bytes::from(p)
        })
        .collect()
}

/// Reads the file once (flat out) and packetizes its video track.
pub async fn load(path: &Path) -> anyhow::Result<Stream> {
    let mut source = FileSource::open(path, Pace::Fast, false)?;
    let mut video: Option<usize> = None;
    let mut parameter_sets: Vec<Vec<u8>> = Vec::new();
    let (mut width, mut height, mut timescale) = (0, 0, 90_000u32);
    let mut packets = Vec::new();
    let mut keyframes = Vec::new();
    let mut first_pts: Option<i64> = None;
    let mut last_time = 0u32;
    let mut frame_ticks = 3600u32;
    while let Some(event) = source.next().await? {
        match event {
            SourceEvent::Params(tracks) => {
                let Some((i, t)) = tracks
                    .iter()
                    .enumerate()
                    .find(|(_, t)| t.kind == TrackKind::Video)
                else {
                    continue;
                };
                anyhow::ensure!(
                    t.codec == Codec::H264,
                    "{}: the video is not H.264",
                    path.display()
                );
                video = Some(i);
                width = t.width;
                height = t.height;
                timescale = t.timescale;
                if parameter_sets.is_empty()
                    && let Some(sets) =
                        preroll::mp4::params::inband_parameter_sets(&t.sample_entry, t.codec)?
                {
                    parameter_sets = nals(&sets).into_iter().map(<[u8]>::to_vec).collect();
                }
            }
            SourceEvent::Frame(f) if Some(f.track) == video => {
                let pts = f.pts.or(f.dts).unwrap_or(0);
                let base = *first_pts.get_or_insert(pts);
                let time = ((pts - base).max(0) as u64 * 90_000 / u64::from(timescale)) as u32;
                if time > last_time {
                    frame_ticks = time - last_time;
                }
                last_time = last_time.max(time);
                let mut units: Vec<&[u8]> = Vec::new();
                let carried = nals(&f.data);
                if f.keyframe {
                    keyframes.push(packets.len());
                    // As cameras do: the parameter sets before every keyframe.
                    if !carried.iter().any(|n| n[0] & 0x1f == 7) {
                        units.extend(parameter_sets.iter().map(Vec::as_slice));
                    }
                }
                units.extend(carried);
                let mut cut: Vec<Bytes> = units.into_iter().flat_map(payloads).collect();
                let n = cut.len();
                for (i, payload) in cut.drain(..).enumerate() {
                    packets.push(Packet {
                        time,
                        marker: i + 1 == n,
                        payload,
                    });
                }
            }
            _ => {}
        }
    }
    anyhow::ensure!(
        !keyframes.is_empty() && parameter_sets.len() >= 2,
        "{}: no H.264 keyframe with its SPS and PPS",
        path.display()
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let sps = &parameter_sets[0];
    let profile = sps
        .get(1..4)
        .map(|p| format!("{:02X}{:02X}{:02X}", p[0], p[1], p[2]))
        .unwrap_or_default();
    let fmtp = format!(
        "packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={},{}",
        b64.encode(sps),
        b64.encode(&parameter_sets[1])
    );
    Ok(Stream {
        packets,
        loop_ticks: last_time + frame_ticks,
        keyframes,
        fmtp,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_nal_units_become_fu_a_fragments_that_rejoin() {
        let mut nal = vec![0x65u8];
        nal.extend((0..5000u32).map(|i| i as u8));
        let parts = payloads(&nal);
        assert!(parts.len() > 3 && parts.iter().all(|p| p.len() <= MTU));
        assert_eq!(parts[0][1] & 0x80, 0x80);
        assert_eq!(parts.last().expect("last")[1] & 0x40, 0x40);
        let mut joined = vec![(parts[0][0] & 0xe0) | (parts[0][1] & 0x1f)];
        for p in &parts {
            joined.extend_from_slice(&p[2..]);
        }
        assert_eq!(joined, nal);
        assert_eq!(payloads(&[0x41, 1, 2]).len(), 1);
    }
}
