//! AAC sources find the configuration of: the MP4 sample entry built from an
//! AudioSpecificConfig (through retina, as for RTSP cameras), shared by the MPEG-TS and Matroska
//! readers and MP4A-LATM from cameras; and the timing of access units in samples.

use bytes::Bytes;

use crate::mp4::{Codec, TrackKind};
use crate::source::TrackParams;

/// sampling_frequency_index → Hz (ISO 14496-3 table 1.18).
pub const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// A two-byte AudioSpecificConfig: audioObjectType(5) samplingFrequencyIndex(4)
/// channelConfiguration(4) and three zero bits (the GASpecificConfig of a plain AAC stream).
pub fn config(object_type: u8, rate_index: u8, channels: u8) -> [u8; 2] {
    let asc = (u16::from(object_type & 0x1f) << 11)
        | (u16::from(rate_index & 0x0f) << 7)
        | (u16::from(channels & 0x0f) << 3);
    asc.to_be_bytes()
}

/// The sampling rate an AudioSpecificConfig states (its core rate for HE-AAC: the clock of
/// its access units).
fn rate(asc: &[u8]) -> Option<u32> {
    if asc.len() < 2 {
        return None;
    }
    let mut b = [0u8; 8];
    let n = asc.len().min(8);
    b[..n].copy_from_slice(&asc[..n]);
    let bits = u64::from_be_bytes(b);
    // audioObjectType takes 5 bits, or 11 when escaped (31, then 6 more).
    let at = if bits >> 59 == 31 { 11 } else { 5 };
    match (bits >> (55 + 5 - at)) & 0x0f {
        // An explicit 24-bit rate follows the index.
        0x0f => u32::try_from((bits >> (31 + 5 - at)) & 0x00ff_ffff).ok(),
        i => RATES.get(usize::try_from(i).ok()?).copied(),
    }
}

/// An AAC track: its params and the samples in each access unit.
#[derive(Debug, Clone)]
pub struct AacTrack {
    pub params: TrackParams,
    pub frame_length: u32,
}

/// The track an AudioSpecificConfig describes, timed at its sampling rate.
pub fn track(asc: &[u8]) -> Result<AacTrack, String> {
    let hex: String = asc.iter().map(|b| format!("{b:02x}")).collect();
    let rate = rate(asc)
        .filter(|&r| r > 0)
        .ok_or_else(|| format!("AAC config {hex}: no sampling rate"))?;
    described(asc, rate, None)
}

/// Track parameters of AAC coded per `asc`, timed in `clock_rate` ticks with `channels`
/// (an RTP stream's clock and channels, MP4A-LATM).
pub fn aac_params(asc: &[u8], clock_rate: u32, channels: u16) -> Result<TrackParams, String> {
    described(asc, clock_rate, std::num::NonZeroU16::new(channels)).map(|t| t.params)
}

/// retina writes the `mp4a` entry (`esds` and all) for an RFC 3640 stream: such a stream is
/// described to it with the configuration as its `config=`.
fn described(
    asc: &[u8],
    clock_rate: u32,
    channels: Option<std::num::NonZeroU16>,
) -> Result<AacTrack, String> {
    let hex: String = asc.iter().map(|b| format!("{b:02x}")).collect();
    let fmtp = format!(
        "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={hex}"
    );
    let d = retina::codec::Depacketizer::new(
        "audio",
        "mpeg4-generic",
        clock_rate,
        channels,
        Some(&fmtp),
    )
    .map_err(|e| format!("AAC config {hex}: {e}"))?;
    let Some(retina::codec::ParametersRef::Audio(a)) = d.parameters() else {
        return Err(format!("AAC config {hex} not understood"));
    };
    let entry = a
        .mp4_sample_entry()
        .build()
        .map_err(|e| format!("AAC sample entry: {e}"))?;
    Ok(AacTrack {
        params: TrackParams {
            kind: TrackKind::Audio,
            codec: Codec::Aac,
            timescale: a.clock_rate(),
            sample_entry: Bytes::from(entry),
            width: 0,
            height: 0,
        },
        frame_length: a.frame_length().map_or(1024, |l| l.get()),
    })
}

/// Audio frames placed on a sample clock: they follow each other exactly, frame length after
/// frame length, and a container timestamp moves the clock only when it is off by half a
/// frame or more (a gap or overlap to honour). Container times are rounded (a TS's 90 kHz, a
/// Matroska file's milliseconds) and would otherwise make every frame's length wobble.
#[derive(Debug, Default, Clone)]
pub struct Cadence {
    next: Option<i64>,
}

impl Cadence {
    /// The time of a frame of `len` samples; `anchor` is the container's time for it (in
    /// samples), when it has one. `None` until a first anchor is known.
    pub fn place(&mut self, anchor: Option<i64>, len: i64) -> Option<i64> {
        if let Some(t) = anchor
            && self
                .next
                .is_none_or(|n| t.abs_diff(n) >= len.unsigned_abs() / 2)
        {
            self.next = Some(t);
        }
        let ts = self.next?;
        self.next = Some(ts.saturating_add(len));
        Some(ts)
    }

    /// Forgets the clock (the stream's format changed).
    pub fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rate_of_plain_explicit_and_extended_configs() {
        assert_eq!(rate(&config(2, 3, 2)), Some(48_000));
        assert_eq!(rate(&config(2, 11, 1)), Some(8_000));
        let bytes = |bits: u64| bits.to_be_bytes()[..6].to_vec();
        // Explicit 24-bit rate (index 15) after object type 2, then 2 channels.
        let explicit = (2 << 59) | (15 << 55) | (48_000 << 31) | (2 << 27);
        assert_eq!(rate(&bytes(explicit)), Some(48_000));
        // Escaped object type (31, then 1: type 33), then index 4.
        assert_eq!(
            rate(&bytes((31 << 59) | (1 << 53) | (4 << 49))),
            Some(44_100)
        );
        assert_eq!(rate(&[0x12]), None);
    }

    #[test]
    fn builds_an_aac_track_from_its_config() {
        let t = track(&config(2, 4, 2)).unwrap();
        assert_eq!((t.params.timescale, t.frame_length), (44_100, 1024));
        assert!(track(&[0x00]).is_err(), "object type 0 is no AAC");
    }

    #[test]
    fn cadence_keeps_frames_exact_and_honours_gaps() {
        let mut c = Cadence::default();
        assert_eq!(c.place(None, 1024), None);
        assert_eq!(c.place(Some(100), 1024), Some(100));
        assert_eq!(c.place(Some(1125), 1024), Some(1124), "rounding is ignored");
        assert_eq!(c.place(None, 1024), Some(2148));
        assert_eq!(c.place(Some(10_000), 1024), Some(10_000), "a gap is kept");
    }
}
