//! H.264/H.265 access units from files (MPEG-TS PES payloads in Annex B, Matroska blocks with
//! length prefixes of any size): NAL units become the 4-byte lengths MP4 samples use,
//! parameter sets are kept to build the sample entry (through retina, which writes
//! `avcC`/`hvcC` for RTSP cameras too), and keyframes are recognized.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;

use crate::mp4::{Codec, TrackKind};
use crate::source::TrackParams;

/// Video timestamps from files are 90 kHz ticks (a TS's own clock; Matroska times convert to
/// it exactly at its usual millisecond scale).
pub const TIMESCALE: u32 = 90_000;

/// NAL units of an Annex B byte stream, without start codes or trailing zero bytes.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = memchr::memmem::find_iter(data, &[0, 0, 1]).map(|p| p + 3);
    let mut current = starts.next();
    std::iter::from_fn(move || {
        loop {
            let begin = current?;
            let next = starts.next();
            current = next;
            let end = next.map_or(data.len(), |n| n - 3);
            // Zero bytes before a start code belong to it (4-byte start codes) or are
            // trailing_zero_8bits: neither is part of the NAL unit.
            let mut nal = data.get(begin..end).unwrap_or_default();
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    })
}

/// One access unit, ready to be a frame.
#[derive(Debug)]
pub struct AccessUnit {
    pub data: Bytes,
    pub keyframe: bool,
}

#[derive(Debug)]
pub struct Video {
    codec: Codec,
    /// The latest VPS (H.265 only), SPS and PPS seen.
    vps: Option<Vec<u8>>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    /// A parameter set changed since the params were last built.
    changed: bool,
}

impl Video {
    pub fn new(codec: Codec) -> Self {
        Video {
            codec,
            vps: None,
            sps: None,
            pps: None,
            changed: false,
        }
    }

    /// Converts one access unit, given as its NAL units (`size` bytes in all, a capacity
    /// hint). Access unit delimiters and filler data are dropped (MP4 samples are delimited
    /// by the container); parameter sets stay in band as well, so a decoder joining anywhere
    /// has them.
    pub fn access_unit<'a>(
        &mut self,
        nals: impl Iterator<Item = &'a [u8]>,
        size: usize,
    ) -> Option<AccessUnit> {
        let mut data = Vec::with_capacity(size + 16);
        let mut keyframe = false;
        for nal in nals {
            if nal.is_empty() {
                continue;
            }
            let slot = match self.codec {
                Codec::H265 => {
                    let t = (nal[0] >> 1) & 0x3f;
                    keyframe |= (16..=21).contains(&t); // IRAP: BLA, IDR, CRA
                    match t {
                        32 => Some(&mut self.vps),
                        33 => Some(&mut self.sps),
                        34 => Some(&mut self.pps),
                        35 | 38 => continue, // AUD, filler
                        _ => None,
                    }
                }
                _ => {
                    let t = nal[0] & 0x1f;
                    keyframe |= t == 5; // IDR
                    match t {
                        7 => Some(&mut self.sps),
                        8 => Some(&mut self.pps),
                        9 | 12 => continue, // AUD, filler
                        _ => None,
                    }
                }
            };
            if let Some(slot) = slot {
                Self::keep(slot, nal, &mut self.changed);
            }
            // The length always fits: a PES or block is capped far below 4 GiB.
            data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            data.extend_from_slice(nal);
        }
        (!data.is_empty()).then(|| AccessUnit {
            data: Bytes::from(data),
            keyframe,
        })
    }

    /// Takes parameter sets from outside the stream (a Matroska track's `avcC`/`hvcC`), by
    /// NAL unit type, as if they had come in band.
    pub fn parameter_set(&mut self, nal: &[u8]) {
        let Some(&b0) = nal.first() else { return };
        let slot = match self.codec {
            Codec::H265 => match (b0 >> 1) & 0x3f {
                32 => &mut self.vps,
                33 => &mut self.sps,
                34 => &mut self.pps,
                _ => return,
            },
            _ => match b0 & 0x1f {
                7 => &mut self.sps,
                8 => &mut self.pps,
                _ => return,
            },
        };
        Self::keep(slot, nal, &mut self.changed);
    }

    fn keep(slot: &mut Option<Vec<u8>>, nal: &[u8], changed: &mut bool) {
        if slot.as_deref() != Some(nal) {
            *slot = Some(nal.to_vec());
            *changed = true;
        }
    }

    /// New track parameters when a parameter set changed and all of them are known.
    pub fn take_params(&mut self) -> Option<Result<TrackParams, String>> {
        let complete = self.sps.is_some()
            && self.pps.is_some()
            && (self.codec != Codec::H265 || self.vps.is_some());
        if !self.changed || !complete {
            return None;
        }
        self.changed = false;
        Some(self.build())
    }

    fn build(&self) -> Result<TrackParams, String> {
        let b64 = |s: &Option<Vec<u8>>| BASE64.encode(s.as_deref().unwrap_or_default());
        let (encoding, fmtp) = match self.codec {
            Codec::H265 => (
                "h265",
                format!(
                    "sprop-vps={};sprop-sps={};sprop-pps={}",
                    b64(&self.vps),
                    b64(&self.sps),
                    b64(&self.pps)
                ),
            ),
            _ => (
                "h264",
                format!(
                    "packetization-mode=1;sprop-parameter-sets={},{}",
                    b64(&self.sps),
                    b64(&self.pps)
                ),
            ),
        };
        let d = retina::codec::Depacketizer::new("video", encoding, TIMESCALE, None, Some(&fmtp))
            .map_err(|e| format!("{} parameter sets: {e}", self.codec))?;
        let Some(retina::codec::ParametersRef::Video(v)) = d.parameters() else {
            return Err(format!("{} parameter sets not understood", self.codec));
        };
        let entry = v
            .mp4_sample_entry()
            .build()
            .map_err(|e| format!("{} sample entry: {e}", self.codec))?;
        let (width, height) = v.pixel_dimensions();
        Ok(TrackParams {
            kind: TrackKind::Video,
            codec: self.codec,
            timescale: TIMESCALE,
            sample_entry: Bytes::from(entry),
            width,
            height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_annex_b_with_3_and_4_byte_start_codes() {
        let data = b"\0\0\0\x01\x09\xf0\0\0\x01\x67\x42\0\0\0\x01\x65\x88\x84\0\0";
        let nals: Vec<&[u8]> = nal_units(data).collect();
        assert_eq!(nals, vec![&b"\x09\xf0"[..], b"\x67\x42", b"\x65\x88\x84"]);
        assert_eq!(nal_units(b"no start code").count(), 0);
    }

    #[test]
    fn length_prefixes_drops_delimiters_and_finds_idr() {
        let mut v = Video::new(Codec::H264);
        let au = v
            .access_unit(nal_units(b"\0\0\0\x01\x09\xf0\0\0\x01\x65\x88\x84"), 0)
            .unwrap();
        assert!(au.keyframe);
        assert_eq!(&au.data[..], b"\0\0\0\x03\x65\x88\x84");
        let p = v.access_unit(nal_units(b"\0\0\x01\x41\x9a"), 0).unwrap();
        assert!(!p.keyframe);
        assert!(v.take_params().is_none(), "no parameter sets yet");
    }

    #[test]
    fn h265_cra_is_a_keyframe() {
        let mut v = Video::new(Codec::H265);
        let cra = v.access_unit(nal_units(b"\0\0\x01\x2a\x01\xaf"), 0);
        assert!(cra.unwrap().keyframe); // CRA (21)
        let trail = v.access_unit(nal_units(b"\0\0\x01\x02\x01\xd0"), 0);
        assert!(!trail.unwrap().keyframe); // TRAIL_R (1)
    }
}
