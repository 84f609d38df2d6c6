//! MP4A-LATM (RFC 3016 §4: AAC in LATM AudioMuxElements over RTP) back to plain AAC. With the
//! configuration out of band (`cpresent=0`, the StreamMuxConfig in the SDP's `config=`), an
//! AudioMuxElement of one program, one layer and one subframe is a PayloadLengthInfo (bytes
//! of 255 summed until one is smaller) followed by exactly one raw AAC access unit, so
//! stripping the length gives what an `mp4a` track stores, and the StreamMuxConfig carries
//! the AudioSpecificConfig for its `esds`. Layouts beyond that (in-band configuration,
//! several subframes, programs or layers, variable frame length types) are refused with a
//! reason rather than half-handled.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LatmError {
    #[error("cpresent=1 (configuration sent in band, in every AudioMuxElement) is not handled")]
    InBandConfig,
    #[error("no config= in the fmtp (the StreamMuxConfig is needed with cpresent=0)")]
    NoConfig,
    #[error("config={0:?} is not hexadecimal")]
    BadHex(String),
    #[error("StreamMuxConfig ends after {0} bits, inside the AudioSpecificConfig")]
    Truncated(usize),
    #[error("StreamMuxConfig with audioMuxVersionA=1 (reserved)")]
    MuxVersionA,
    #[error("{0} subframes per AudioMuxElement are not handled (only 1)")]
    Subframes(u32),
    #[error("{programs} programs with {layers} layers are not handled (only 1 of each)")]
    Programs { programs: u32, layers: u32 },
    #[error("frameLengthType {0} is not handled (only 0: AAC frames of any length)")]
    FrameLengthType(u32),
    #[error("all streams not in the same time framing (allStreamsSameTimeFraming=0)")]
    TimeFraming,
    #[error("audio object type {0} is not handled (AAC main, LC, SSR, LTP, SBR, PS)")]
    ObjectType(u32),
    #[error("channelConfiguration 0 (a program_config_element) is not handled")]
    ProgramConfig,
    #[error(
        "AudioMuxElement claims a {claimed}-byte payload but holds {have} bytes after its length"
    )]
    PayloadLength { claimed: usize, have: usize },
}

/// What an `mp4a` track needs, taken from a StreamMuxConfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatmConfig {
    /// The AudioSpecificConfig exactly as the camera coded it, padded to whole bytes.
    pub audio_specific_config: Vec<u8>,
    pub object_type: u32,
    pub sample_rate: u32,
    pub channels: u16,
}

/// MSB-first bit reader over a byte slice that says how far it got when it runs out.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(v)
    }

    /// ISO/IEC 14496-3 LatmGetValue: 2 bits of byte count, then that many bytes plus one.
    fn latm_value(&mut self) -> Option<u32> {
        let bytes = self.read(2)?;
        let mut v = 0u32;
        for _ in 0..=bytes {
            v = (v << 8) | self.read(8)?;
        }
        Some(v)
    }
}

const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The configuration of an MP4A-LATM stream from its fmtp parameters.
pub fn config_from_fmtp(fmtp: &str) -> Result<LatmConfig, LatmError> {
    let mut config = None;
    let mut cpresent = true; // RFC 3016 §5.3: cpresent defaults to 1.
    for p in fmtp.split(';') {
        let (k, v) = p.trim().split_once('=').unwrap_or((p.trim(), ""));
        if k.eq_ignore_ascii_case("cpresent") {
            cpresent = v.trim() != "0";
        } else if k.eq_ignore_ascii_case("config") {
            config = Some(v.trim());
        }
    }
    if cpresent {
        return Err(LatmError::InBandConfig);
    }
    let hex = config.ok_or(LatmError::NoConfig)?;
    let bytes = decode_hex(hex).ok_or_else(|| LatmError::BadHex(hex.chars().take(64).collect()))?;
    stream_mux_config(&bytes)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses a StreamMuxConfig (ISO/IEC 14496-3 §1.7.3). What follows the AudioSpecificConfig
/// is read when present: some payloaders (GStreamer's rtpmp4apay) end `config=` right after
/// it, which can only mean the defaults (frameLengthType 0, no other data, no CRC).
pub fn stream_mux_config(bytes: &[u8]) -> Result<LatmConfig, LatmError> {
    let mut b = Bits { data: bytes, at: 0 };
    let short = |b: &Bits<'_>| LatmError::Truncated(b.at);
    let version = b.read(1).ok_or_else(|| short(&b))?;
    if version == 1 {
        if b.read(1).ok_or_else(|| short(&b))? == 1 {
            return Err(LatmError::MuxVersionA);
        }
        b.latm_value().ok_or_else(|| short(&b))?; // taraBufferFullness
    }
    if b.read(1).ok_or_else(|| short(&b))? == 0 {
        return Err(LatmError::TimeFraming);
    }
    let subframes = b.read(6).ok_or_else(|| short(&b))? + 1;
    if subframes != 1 {
        return Err(LatmError::Subframes(subframes));
    }
    let programs = b.read(4).ok_or_else(|| short(&b))? + 1;
    let layers = b.read(3).ok_or_else(|| short(&b))? + 1;
    if (programs, layers) != (1, 1) {
        return Err(LatmError::Programs { programs, layers });
    }
    if version == 1 {
        b.latm_value().ok_or_else(|| short(&b))?; // ascLen: we find the end by parsing
    }
    let start = b.at;
    let (object_type, sample_rate, channels) =
        audio_specific_config(&mut b).ok_or_else(|| short(&b))??;
    let end = b.at;
    // frameLengthType, when the config goes on.
    if let Some(t) = b.read(3)
        && t != 0
    {
        return Err(LatmError::FrameLengthType(t));
    }
    let mut copy = Bits {
        data: bytes,
        at: start,
    };
    let mut asc = Vec::with_capacity((end - start).div_ceil(8));
    while copy.at < end {
        let n = (end - copy.at).min(8) as u32;
        let v = copy.read(n).ok_or(LatmError::Truncated(copy.at))?;
        asc.push((v << (8 - n)) as u8);
    }
    Ok(LatmConfig {
        audio_specific_config: asc,
        object_type,
        sample_rate,
        channels,
    })
}

/// Reads an AudioSpecificConfig far enough to know where it ends; `None` when the bits run
/// out, `Some(Err)` for a layout not handled.
fn audio_specific_config(b: &mut Bits<'_>) -> Option<Result<(u32, u32, u16), LatmError>> {
    let object_type = |b: &mut Bits<'_>| -> Option<u32> {
        let t = b.read(5)?;
        if t == 31 {
            Some(32 + b.read(6)?)
        } else {
            Some(t)
        }
    };
    let rate = |b: &mut Bits<'_>| -> Option<u32> {
        let i = b.read(4)?;
        if i == 15 {
            b.read(24)
        } else {
            Some(RATES.get(i as usize).copied().unwrap_or(0))
        }
    };
    let mut aot = object_type(b)?;
    let mut sample_rate = rate(b)?;
    let channel_config = b.read(4)?;
    if aot == 5 || aot == 29 {
        // Explicit SBR/PS: the output rate follows, then the core's object type.
        sample_rate = rate(b)?;
        aot = object_type(b)?;
    }
    if !matches!(aot, 1..=4) {
        return Some(Err(LatmError::ObjectType(aot)));
    }
    if channel_config == 0 {
        return Some(Err(LatmError::ProgramConfig));
    }
    // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder (+ coreCoderDelay), extensionFlag.
    b.read(1)?;
    if b.read(1)? == 1 {
        b.read(14)?;
    }
    b.read(1)?; // extensionFlag: no extension fields for object types 1-4
    let channels = match channel_config {
        7 => 8,
        c => c as u16,
    };
    Some(Ok((aot, sample_rate, channels)))
}

/// The raw AAC access unit inside one AudioMuxElement (cpresent=0, one subframe).
pub fn access_unit(element: &[u8]) -> Result<&[u8], LatmError> {
    let mut len = 0usize;
    let mut at = 0usize;
    loop {
        let Some(&b) = element.get(at) else {
            return Err(LatmError::PayloadLength {
                claimed: len,
                have: 0,
            });
        };
        at += 1;
        len += usize::from(b);
        if b != 255 {
            break;
        }
    }
    let rest = &element[at..];
    rest.get(..len).ok_or(LatmError::PayloadLength {
        claimed: len,
        have: rest.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gstreamer_config_without_the_tail() {
        // rtpmp4apay's config for AAC-LC 16 kHz mono.
        let c = config_from_fmtp("cpresent=0;config=40002810").unwrap();
        assert_eq!(c.audio_specific_config, vec![0x14, 0x08]);
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 16000, 1));
    }

    #[test]
    fn full_config_with_tail() {
        // 48 kHz stereo LC, frameLengthType 0, latmBufferFullness 0xff, no other data, no CRC.
        let c = config_from_fmtp("profile-level-id=30;cpresent=0;config=400023203fc0").unwrap();
        assert_eq!(c.audio_specific_config, vec![0x11, 0x90]);
        assert_eq!((c.sample_rate, c.channels), (48000, 2));
    }

    #[test]
    fn refusals_name_the_reason() {
        assert_eq!(
            config_from_fmtp("config=40002810"),
            Err(LatmError::InBandConfig)
        );
        assert_eq!(config_from_fmtp("cpresent=0"), Err(LatmError::NoConfig));
        assert!(matches!(
            config_from_fmtp("cpresent=0;config=4x"),
            Err(LatmError::BadHex(_))
        ));
        // numSubFrames = 1 (two subframes).
        assert_eq!(
            config_from_fmtp("cpresent=0;config=41002810"),
            Err(LatmError::Subframes(2))
        );
        assert_eq!(
            config_from_fmtp("cpresent=0;config=40"),
            Err(LatmError::Truncated(8))
        );
    }

    #[test]
    fn payload_length_info_is_stripped() {
        assert_eq!(access_unit(&[3, 1, 2, 3, 0xee]), Ok(&[1u8, 2, 3][..]));
        let mut long = vec![255, 1];
        long.extend(vec![7u8; 256]);
        assert_eq!(access_unit(&long).map(<[u8]>::len), Ok(256));
        assert_eq!(
            access_unit(&[9, 1]),
            Err(LatmError::PayloadLength {
                claimed: 9,
                have: 1
            })
        );
        assert!(access_unit(&[255, 255]).is_err());
    }
}
