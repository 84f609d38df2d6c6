//! From camera PCM audio to FLAC frames: G.711 (A-law, µ-law) and L16 packets, one FLAC frame
//! each, numbered by a running sample count. Lossless: the FLAC frame decodes to exactly the
//! samples a G.711 decoder (or the L16 payload) gives.

use super::flac::{self, FlacError, Format};
use super::{entry, g711};

/// A PCM payload format cameras send over RTP (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcmCodec {
    /// G.711 A-law, one byte per sample.
    Pcma,
    /// G.711 µ-law, one byte per sample.
    Pcmu,
    /// 16-bit big-endian linear samples.
    L16,
}

impl PcmCodec {
    /// By RTP encoding name (case-insensitive).
    pub fn from_encoding(name: &str) -> Option<PcmCodec> {
        match name.to_ascii_lowercase().as_str() {
            "pcma" => Some(PcmCodec::Pcma),
            "pcmu" => Some(PcmCodec::Pcmu),
            "l16" => Some(PcmCodec::L16),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PcmCodec::Pcma => "PCMA",
            PcmCodec::Pcmu => "PCMU",
            PcmCodec::L16 => "L16",
        }
    }

    fn bytes_per_sample(self) -> usize {
        match self {
            PcmCodec::Pcma | PcmCodec::Pcmu => 1,
            PcmCodec::L16 => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcmError {
    #[error("{codec} payload of {len} bytes is not whole samples for {channels} channel(s)")]
    Partial {
        codec: &'static str,
        len: usize,
        channels: u8,
    },
    #[error("{codec}: {source}")]
    Flac {
        codec: &'static str,
        source: FlacError,
    },
}

/// One FLAC frame and the samples (per channel) it holds: its duration in track ticks, the
/// track's timescale being the sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlacFrame {
    pub data: Vec<u8>,
    pub samples: u32,
}

/// Turns one stream's PCM packets into FLAC frames.
#[derive(Debug)]
pub struct PcmToFlac {
    codec: PcmCodec,
    format: Format,
    /// The stream position of the next frame's first sample.
    next_sample: u64,
    /// Decoded samples of the current packet (reused).
    samples: Vec<i16>,
}

impl PcmToFlac {
    pub fn new(codec: PcmCodec, sample_rate: u32, channels: u16) -> Result<PcmToFlac, PcmError> {
        let flac_error = |source| PcmError::Flac {
            codec: codec.name(),
            source,
        };
        let channels =
            u8::try_from(channels).map_err(|_| flac_error(FlacError::Channels(u8::MAX)))?;
        let format = Format::new(sample_rate, channels).map_err(flac_error)?;
        Ok(PcmToFlac {
            codec,
            format,
            next_sample: 0,
            samples: Vec::new(),
        })
    }

    pub fn codec(&self) -> PcmCodec {
        self.codec
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The `fLaC` sample entry for the track.
    pub fn sample_entry(&self) -> Vec<u8> {
        entry::flac_sample_entry(self.format)
    }

    /// What the camera sends, e.g. "PCMU 8000 Hz mono".
    pub fn describe(&self) -> String {
        describe(
            self.codec.name(),
            self.format.sample_rate,
            self.format.channels.into(),
        )
    }

    /// Decodes one RTP payload into samples (interleaved as sent).
    pub fn decode(&mut self, payload: &[u8]) -> Result<&[i16], PcmError> {
        let channels = usize::from(self.format.channels);
        let unit = self.codec.bytes_per_sample() * channels;
        if payload.is_empty() || !payload.len().is_multiple_of(unit) {
            return Err(PcmError::Partial {
                codec: self.codec.name(),
                len: payload.len(),
                channels: self.format.channels,
            });
        }
        self.samples.clear();
        match self.codec {
            PcmCodec::Pcma => self.samples.extend(payload.iter().map(|&b| g711::alaw(b))),
            PcmCodec::Pcmu => self.samples.extend(payload.iter().map(|&b| g711::ulaw(b))),
            PcmCodec::L16 => self.samples.extend(
                payload
                    .chunks_exact(2)
                    .map(|p| i16::from_be_bytes([p[0], p[1]])),
            ),
        }
        Ok(&self.samples)
    }

    /// One RTP payload → one FLAC frame. A payload that is not whole samples is an error and
    /// leaves the sample count where it was.
    pub fn frame(&mut self, payload: &[u8]) -> Result<FlacFrame, PcmError> {
        self.decode(payload)?;
        let data =
            flac::encode_frame(self.format, self.next_sample, &self.samples).map_err(|source| {
                PcmError::Flac {
                    codec: self.codec.name(),
                    source,
                }
            })?;
        // encode_frame checked the block: 1..=65535 samples per channel.
        let samples = (self.samples.len() / usize::from(self.format.channels)) as u32;
        self.next_sample = self.next_sample.wrapping_add(u64::from(samples));
        Ok(FlacFrame { data, samples })
    }
}

/// "NAME RATE Hz mono|stereo|N ch".
pub fn describe(codec: &str, sample_rate: u32, channels: u16) -> String {
    let layout = match channels {
        1 => "mono".to_owned(),
        2 => "stereo".to_owned(),
        n => format!("{n} ch"),
    };
    format!("{codec} {sample_rate} Hz {layout}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_become_numbered_frames() {
        let mut t = PcmToFlac::new(PcmCodec::Pcmu, 8000, 1).unwrap();
        assert_eq!(t.describe(), "PCMU 8000 Hz mono");
        let a = t.frame(&[0xff; 160]).unwrap();
        assert_eq!(a.samples, 160);
        let b = t.frame(&[0x12; 200]).unwrap();
        assert_eq!(b.samples, 200);
        // Frame headers: sync, codes, then the coded first-sample number (0, then 160 as
        // the two-byte form 0xC2 0xA0).
        assert_eq!(a.data[4], 0);
        assert_eq!(&b.data[4..6], &[0xc2, 0xa0]);
    }

    #[test]
    fn partial_samples_are_refused() {
        let mut l16 = PcmToFlac::new(PcmCodec::L16, 16000, 2).unwrap();
        assert!(l16.frame(&[0; 6]).is_err());
        assert!(l16.frame(&[]).is_err());
        let f = l16.frame(&[0; 8]).unwrap();
        assert_eq!(f.samples, 2);
        assert!(PcmToFlac::new(PcmCodec::Pcma, 8000, 3).is_err());
        assert!(PcmToFlac::new(PcmCodec::Pcma, 0, 1).is_err());
        assert!(PcmToFlac::new(PcmCodec::Pcma, 8000, 300).is_err());
    }

    #[test]
    fn l16_is_big_endian() {
        let mut t = PcmToFlac::new(PcmCodec::L16, 8000, 1).unwrap();
        assert_eq!(t.decode(&[0x80, 0x00, 0x00, 0x01]).unwrap(), &[-32768, 1]);
    }
}
