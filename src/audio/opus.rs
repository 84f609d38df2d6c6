//! Opus from RTP (RFC 7587: one Opus packet per RTP packet, 48 kHz timestamps) kept as it is
//! sent, in an `Opus` sample entry with `dOps` ("Encapsulation of Opus in ISO Base Media File
//! Format"). Nothing is decoded: a packet's length in samples comes from its TOC byte.

use crate::mp4::FourCc;
use crate::mp4::write::BoxBuf;

pub const OPUS: FourCc = FourCc(*b"Opus");
pub const DOPS: FourCc = FourCc(*b"dOps");

/// Opus timestamps and `dOps` input rate: RFC 7587 fixes the RTP clock at 48 kHz whatever the
/// encoder's internal rate.
pub const OPUS_RATE: u32 = 48_000;

/// RFC 6716 §3.2.5: a packet holds at most 120 ms of audio.
const MAX_SAMPLES: u32 = OPUS_RATE / 1000 * 120;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpusError {
    #[error("empty Opus packet (no TOC byte)")]
    Empty,
    #[error("Opus packet with frame count code 3 but no frame count byte")]
    NoFrameCount,
    #[error(
        "Opus packet claims {frames} frames of {frame_samples} samples ({total} samples; at most {MAX_SAMPLES} allowed)"
    )]
    TooLong {
        frames: u32,
        frame_samples: u32,
        total: u32,
    },
    #[error("Opus packet with a frame count of 0")]
    NoFrames,
}

/// Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1) and, for code 3,
/// the frame count byte.
pub fn packet_samples(packet: &[u8]) -> Result<u32, OpusError> {
    let toc = *packet.first().ok_or(OpusError::Empty)?;
    let config = toc >> 3;
    // Frame sizes in units of 2.5 ms (120 samples at 48 kHz): SILK-only 10/20/40/60 ms,
    // hybrid 10/20 ms, CELT-only 2.5/5/10/20 ms.
    let units: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frame_samples = units * 120;
    let frames = match toc & 0b11 {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let count = u32::from(packet.get(1).ok_or(OpusError::NoFrameCount)? & 0x3f);
            if count == 0 {
                return Err(OpusError::NoFrames);
            }
            count
        }
    };
    let total = frames * frame_samples;
    if total > MAX_SAMPLES {
        return Err(OpusError::TooLong {
            frames,
            frame_samples,
            total,
        });
    }
    Ok(total)
}

/// The whole `Opus` box for `channels` (1 or 2: channel mapping family 0).
///
/// Pre-skip is 0: a clip starts in the middle of the camera's stream, long after the
/// encoder's start-up samples that pre-skip exists to hide, so nothing at the clip's start is
/// to be thrown away and the audio stays on its RTP timestamps. (ffmpeg writes the same when it
/// copies Opus from RTSP into MP4; Chromium takes pre-skip as samples to drop at the start.)
pub fn opus_sample_entry(channels: u8) -> Vec<u8> {
    let mut b = BoxBuf::with_capacity(36 + 19);
    b.begin(OPUS);
    b.zeros(6); // SampleEntry reserved
    b.u16(1); // data_reference_index
    b.zeros(8); // AudioSampleEntry reserved
    b.u16(u16::from(channels));
    b.u16(16); // samplesize
    b.zeros(4); // pre_defined, reserved
    b.u32(OPUS_RATE << 16);
    b.begin(DOPS);
    b.u8(0); // Version
    b.u8(channels); // OutputChannelCount
    b.u16(0); // PreSkip
    b.u32(OPUS_RATE); // InputSampleRate
    b.u16(0); // OutputGain
    b.u8(0); // ChannelMappingFamily: mono or stereo, no table
    b.end();
    b.end();
    b.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_from_the_toc_byte() {
        // config 31 (CELT 20 ms), code 0: one 960-sample frame, as opusenc sends by default.
        assert_eq!(packet_samples(&[31 << 3]), Ok(960));
        // config 16 (CELT 2.5 ms), code 1: two frames.
        assert_eq!(packet_samples(&[16 << 3 | 1, 0]), Ok(240));
        // config 3 (SILK 60 ms), code 3 with 2 frames: 120 ms, the most allowed.
        assert_eq!(packet_samples(&[3 << 3 | 3, 2]), Ok(5760));
        assert_eq!(
            packet_samples(&[3 << 3 | 3, 3]),
            Err(OpusError::TooLong {
                frames: 3,
                frame_samples: 2880,
                total: 8640
            })
        );
        // config 13 (hybrid 20 ms), code 2.
        assert_eq!(packet_samples(&[13 << 3 | 2]), Ok(1920));
        assert_eq!(packet_samples(&[]), Err(OpusError::Empty));
        assert_eq!(packet_samples(&[3]), Err(OpusError::NoFrameCount));
        assert_eq!(packet_samples(&[3, 0x80]), Err(OpusError::NoFrames));
    }

    #[test]
    fn layout_as_ffmpeg_writes_it() {
        let e = opus_sample_entry(2);
        assert_eq!(e.len(), 36 + 19);
        assert_eq!(&e[4..8], b"Opus");
        assert_eq!(&e[24..28], &[0, 2, 0, 16]);
        assert_eq!(&e[32..36], &[0xbb, 0x80, 0, 0], "48000 in 16.16");
        // What ffmpeg wrote for a stereo Opus RTSP stream copied into MP4.
        assert_eq!(
            &e[36..],
            &[
                0, 0, 0, 19, b'd', b'O', b'p', b's', 0, 2, 0, 0, 0, 0, 0xbb, 0x80, 0, 0, 0
            ]
        );
    }
}
