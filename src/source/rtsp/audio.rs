//! The camera's audio as clips keep it: AAC (RFC 3640) as retina hands it out, G.711 and L16
//! as FLAC, Opus as it is sent, AAC from MP4A-LATM unwrapped to plain AAC.

use bytes::Bytes;
use retina::codec::ParametersRef;

use crate::audio::latm::{self, LatmConfig};
use crate::audio::opus::{self, OPUS_RATE};
use crate::audio::{PcmToFlac, describe};
use crate::mp4::{Codec, TrackKind};
use crate::source::TrackParams;
use crate::source::aac::aac_params;

pub enum AudioPath {
    Aac,
    Flac(PcmToFlac),
    Opus {
        channels: u16,
    },
    /// The track's parameters are known from the SDP's StreamMuxConfig.
    Latm(TrackParams),
}

impl AudioPath {
    pub fn opus(channels: u16) -> AudioPath {
        AudioPath::Opus { channels }
    }

    /// From an MP4A-LATM stream's fmtp, or why it cannot be kept.
    pub fn latm(fmtp: &str, clock_rate: u32) -> Result<(AudioPath, LatmConfig), String> {
        let config = latm::config_from_fmtp(fmtp).map_err(|e| e.to_string())?;
        let params = aac_params(&config.audio_specific_config, clock_rate, config.channels)?;
        Ok((AudioPath::Latm(params), config))
    }

    pub fn describe_latm(config: &LatmConfig) -> String {
        describe("MP4A-LATM AAC", config.sample_rate, config.channels)
    }

    pub fn describe_opus(channels: u16) -> String {
        describe("Opus", OPUS_RATE, channels)
    }

    /// The track as clips store it, from what retina knows of the stream.
    pub fn params(&self, p: ParametersRef<'_>, clock_rate: u32) -> Result<TrackParams, String> {
        let audio = |codec, timescale, entry: Vec<u8>| TrackParams {
            kind: TrackKind::Audio,
            codec,
            timescale,
            sample_entry: Bytes::from(entry),
            width: 0,
            height: 0,
        };
        match (self, p) {
            (AudioPath::Latm(params), _) => Ok(params.clone()),
            // One FLAC frame per packet, at the RTP clock rate (which RFC 3551 makes the
            // sample rate).
            (AudioPath::Flac(flac), ParametersRef::Audio(a)) => {
                Ok(audio(Codec::Flac, a.clock_rate(), flac.sample_entry()))
            }
            (AudioPath::Opus { channels }, ParametersRef::Audio(_)) => {
                let channels = u8::try_from(*channels).unwrap_or(2);
                Ok(audio(
                    Codec::Opus,
                    clock_rate,
                    opus::opus_sample_entry(channels),
                ))
            }
            (AudioPath::Aac, ParametersRef::Audio(a)) => {
                let entry = a.mp4_sample_entry().build().map_err(|e| e.to_string())?;
                Ok(audio(Codec::Aac, a.clock_rate(), entry))
            }
            _ => Err("not an audio stream".into()),
        }
    }

    /// One payload as retina hands it → (sample, its length in ticks when known).
    pub fn frame(&mut self, data: &[u8]) -> Result<(Bytes, Option<u32>), String> {
        match self {
            AudioPath::Aac => Ok((Bytes::copy_from_slice(data), None)),
            // Its duration is known: as many ticks as samples.
            AudioPath::Flac(t) => t
                .frame(data)
                .map(|f| (Bytes::from(f.data), Some(f.samples)))
                .map_err(|e| e.to_string()),
            AudioPath::Opus { .. } => {
                let samples = opus::packet_samples(data).map_err(|e| e.to_string())?;
                Ok((Bytes::copy_from_slice(data), Some(samples)))
            }
            AudioPath::Latm(_) => latm::access_unit(data)
                .map(|au| (Bytes::copy_from_slice(au), None))
                .map_err(|e| e.to_string()),
        }
    }
}
