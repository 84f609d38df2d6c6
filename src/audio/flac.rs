//! A lossless FLAC encoder for 16-bit PCM (RFC 9639), written for camera audio: one frame per
//! network packet, so every frame has a variable-blocksize header carrying the number of its
//! first sample. Subframes are CONSTANT, FIXED (order 0–4, chosen by residual magnitude) or
//! VERBATIM, whichever is smaller; channels are coded independently.

use super::bits::{BitWriter, crc8, crc16};
use super::rice;

/// Largest block a frame header can state (the field holds block size − 1 in 16 bits).
pub const MAX_BLOCK: usize = 65535;
/// Largest sample rate STREAMINFO can hold in its 20-bit field (in Hz) that frame headers
/// can also state (16 bits of tens of Hz).
pub const MAX_RATE: u32 = 655_350;
const BITS_PER_SAMPLE: u32 = 16;
/// Sample numbers wrap at 2^31 (after 3 days at 8 kHz, 12 hours at 48 kHz). The format allows
/// 36 bits, but ffmpeg's reader of the coded number (ffmpeg 5.1, and so Chromium) refuses its
/// 7-byte form, which numbers from 2^31 need: those frames would not decode at all. A
/// decoder of MP4 samples does not look at the numbers, so a wrap costs nothing.
const SAMPLE_NUMBER_MASK: u64 = (1 << 31) - 1;

/// What every frame of a stream shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub sample_rate: u32,
    pub channels: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlacError {
    #[error("{0} channels: the FLAC encoder takes 1 or 2")]
    Channels(u8),
    #[error("sample rate {0} Hz: FLAC frames state 1 to 655350 Hz")]
    SampleRate(u32),
    #[error("{samples} samples do not split into {channels} channels")]
    Interleave { samples: usize, channels: u8 },
    #[error("block of {0} samples per channel: a FLAC frame holds 1 to 65535")]
    BlockSize(usize),
}

impl Format {
    pub fn new(sample_rate: u32, channels: u8) -> Result<Format, FlacError> {
        if !(1..=2).contains(&channels) {
            return Err(FlacError::Channels(channels));
        }
        if sample_rate == 0 || sample_rate > MAX_RATE {
            return Err(FlacError::SampleRate(sample_rate));
        }
        Ok(Format {
            sample_rate,
            channels,
        })
    }
}

/// The 34-byte STREAMINFO block body (RFC 9639 §8.2).
///
/// Block sizes: frames follow the camera's packets, so the range is declared as wide as
/// frames allow, 16 (the smallest legal minimum) to 65535. Decoders size buffers from the
/// maximum (ffmpeg refuses frames above it), and a variable-blocksize stream is told apart by
/// its frame headers, not by min ≠ max. Frame sizes, total samples and the MD5 are 0:
/// unknown, since the stream is open-ended.
pub fn streaminfo(format: Format) -> [u8; 34] {
    let mut w = BitWriter::with_capacity(34);
    w.bits(16, 16);
    w.bits(MAX_BLOCK as u32, 16);
    w.bits(0, 24); // minimum frame size: unknown
    w.bits(0, 24); // maximum frame size: unknown
    w.bits(format.sample_rate, 20);
    w.bits(u32::from(format.channels) - 1, 3);
    w.bits(BITS_PER_SAMPLE - 1, 5);
    w.bits(0, 4); // total samples (36 bits): unknown
    w.bits(0, 32);
    for _ in 0..4 {
        w.bits(0, 32); // MD5 of the audio: unknown
    }
    let bytes = w.into_bytes();
    let mut out = [0u8; 34];
    out.copy_from_slice(&bytes);
    out
}

/// Encodes one frame from interleaved samples (`channels` per time step); `first_sample` is
/// the stream position of its first sample (per channel).
pub fn encode_frame(
    format: Format,
    first_sample: u64,
    interleaved: &[i16],
) -> Result<Vec<u8>, FlacError> {
    let channels = usize::from(format.channels);
    if !interleaved.len().is_multiple_of(channels) {
        return Err(FlacError::Interleave {
            samples: interleaved.len(),
            channels: format.channels,
        });
    }
    let block = interleaved.len() / channels;
    if block == 0 || block > MAX_BLOCK {
        return Err(FlacError::BlockSize(block));
    }
    // Worst case is VERBATIM: 2 bytes per sample, plus headers.
    let mut w = BitWriter::with_capacity(interleaved.len() * 2 + 32);
    header(&mut w, format, first_sample, block);
    let mut samples = Vec::with_capacity(block);
    let mut scratch = Scratch::default();
    for c in 0..channels {
        samples.clear();
        samples.extend(
            interleaved
                .iter()
                .skip(c)
                .step_by(channels)
                .map(|&s| i32::from(s)),
        );
        subframe(&mut w, &samples, &mut scratch);
    }
    w.align();
    let crc = crc16(w.bytes());
    w.bits(u32::from(crc), 16);
    Ok(w.into_bytes())
}

/// The frame header (RFC 9639 §9.1), CRC-8 included.
fn header(w: &mut BitWriter, format: Format, first_sample: u64, block: usize) {
    // Sync code 0b11111111_111110, reserved 0, blocking strategy 1 (variable).
    w.bits(0xfff9, 16);
    let (block_code, block_tail) = block_size_code(block);
    let (rate_code, rate_tail) = sample_rate_code(format.sample_rate);
    w.bits(block_code, 4);
    w.bits(rate_code, 4);
    // Channels: 0 mono, 1 left/right independent (the code is channels − 1).
    w.bits(u32::from(format.channels) - 1, 4);
    w.bits(0b100, 3); // 16 bits per sample
    w.bits(0, 1); // reserved
    coded_number(w, first_sample & SAMPLE_NUMBER_MASK);
    if let Some((value, bits)) = block_tail {
        w.bits(value, bits);
    }
    if let Some((value, bits)) = rate_tail {
        w.bits(value, bits);
    }
    let crc = crc8(w.bytes());
    w.byte(crc);
}

/// The 4-bit block size code and, for sizes without their own code, the value that follows
/// the coded number (block size − 1, in 8 or 16 bits).
fn block_size_code(block: usize) -> (u32, Option<(u32, u32)>) {
    let b = block as u32;
    match b {
        192 => (1, None),
        576 | 1152 | 2304 | 4608 => (2 + (b / 576).trailing_zeros(), None),
        256 | 512 | 1024 | 2048 | 4096 | 8192 | 16384 | 32768 => {
            (8 + (b / 256).trailing_zeros(), None)
        }
        1..=256 => (6, Some((b - 1, 8))),
        _ => (7, Some((b - 1, 16))),
    }
}

/// The 4-bit sample rate code and, for rates without their own code, the value that follows
/// the block size (kHz in 8 bits, Hz in 16 bits, or tens of Hz in 16 bits). Stating the rate
/// in every frame keeps each frame decodable on its own.
fn sample_rate_code(rate: u32) -> (u32, Option<(u32, u32)>) {
    match rate {
        88_200 => (1, None),
        176_400 => (2, None),
        192_000 => (3, None),
        8_000 => (4, None),
        16_000 => (5, None),
        22_050 => (6, None),
        24_000 => (7, None),
        32_000 => (8, None),
        44_100 => (9, None),
        48_000 => (10, None),
        96_000 => (11, None),
        r if r % 1000 == 0 && r / 1000 <= 255 => (12, Some((r / 1000, 8))),
        r if r <= 65_535 => (13, Some((r, 16))),
        r if r % 10 == 0 && r / 10 <= 65_535 => (14, Some((r / 10, 16))),
        // Not statable per frame: taken from STREAMINFO.
        _ => (0, None),
    }
}

/// A sample number in the UTF-8-like variable-length code (RFC 9639 §9.1.5): up to 36 bits
/// in 1 to 7 bytes.
fn coded_number(w: &mut BitWriter, n: u64) {
    if n < 0x80 {
        w.byte(n as u8);
        return;
    }
    // Continuation bytes carry 6 bits each; the lead byte has (7 − bytes) payload bits
    // (none for the 7-byte form, whose lead byte is 0xFE).
    let bytes = match n {
        0..0x800 => 2,
        0x800..0x1_0000 => 3,
        0x1_0000..0x20_0000 => 4,
        0x20_0000..0x400_0000 => 5,
        0x400_0000..0x8000_0000 => 6,
        _ => 7,
    };
    let continuation = bytes - 1;
    let lead_mark: u32 = (0xff00u32 >> bytes) & 0xff;
    let lead = lead_mark | (n >> (6 * continuation)) as u32;
    w.byte(lead as u8);
    for i in (0..continuation).rev() {
        w.byte(0x80 | ((n >> (6 * i)) & 0x3f) as u8);
    }
}

/// Per-frame buffers reused across channels.
#[derive(Debug, Default)]
struct Scratch {
    residuals: [Vec<i32>; 5],
}

/// Encodes one channel's subframe: CONSTANT if it is, else FIXED of the order
/// [`fixed_order`] picks, or VERBATIM if that would be smaller.
fn subframe(w: &mut BitWriter, samples: &[i32], scratch: &mut Scratch) {
    let n = samples.len();
    let first = samples[0];
    // Subframe header: zero bit, 6-bit type, no wasted bits.
    if samples.iter().all(|&s| s == first) {
        w.bits(0b000000 << 1, 8);
        w.signed(first, BITS_PER_SAMPLE);
        return;
    }
    let verbatim_bits = n as u64 * u64::from(BITS_PER_SAMPLE);
    fixed_residuals(samples, &mut scratch.residuals);
    let order = fixed_order(&scratch.residuals, n);
    let plan = rice::plan(&scratch.residuals[order], n, order);
    if (order as u64 * u64::from(BITS_PER_SAMPLE)).saturating_add(plan.bits) < verbatim_bits {
        w.bits(((0b001000 | order) << 1) as u32, 8);
        for &s in &samples[..order] {
            w.signed(s, BITS_PER_SAMPLE);
        }
        rice::write(w, &scratch.residuals[order], &plan);
    } else {
        w.bits(0b000001 << 1, 8);
        for &s in samples {
            w.signed(s, BITS_PER_SAMPLE);
        }
    }
}

/// The fixed predictor order (0–4, below `n`) whose residuals are smallest in magnitude,
/// compared over the samples every candidate predicts; the lowest order on a tie. Rice codes
/// grow with the magnitude of what they code, so this is nearly always the order whose coding
/// is smallest, and libFLAC chooses fixed predictors the same way. Planning the Rice
/// partitions of that order alone, rather than of all five, is most of the encoder's work
/// saved (BENCHMARKS.md, "G.711 ingest").
fn fixed_order(residuals: &[Vec<i32>; 5], n: usize) -> usize {
    let max = (n - 1).min(4);
    (0..=max)
        .min_by_key(|&o| {
            residuals[o][max - o..]
                .iter()
                .map(|&r| u64::from(r.unsigned_abs()))
                .sum::<u64>()
        })
        .unwrap_or(0)
}

/// Residuals of the fixed predictors of order 0–4: `out[k]` holds the k-th differences,
/// starting at sample k (each order's warm-up samples are not predicted). From 16-bit input
/// the 4th difference stays within ±2^19, far inside i32.
fn fixed_residuals(samples: &[i32], out: &mut [Vec<i32>; 5]) {
    out[0].clear();
    out[0].extend_from_slice(samples);
    for k in 1..5 {
        let (done, rest) = out.split_at_mut(k);
        let prev = &done[k - 1];
        let next = &mut rest[0];
        next.clear();
        next.extend(prev.windows(2).map(|p| p[1] - p[0]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(n: u64) -> Vec<u8> {
        let mut w = BitWriter::default();
        coded_number(&mut w, n);
        w.into_bytes()
    }

    #[test]
    fn coded_numbers_follow_the_utf8_pattern() {
        assert_eq!(coded(0), [0x00]);
        assert_eq!(coded(0x7f), [0x7f]);
        assert_eq!(coded(0x80), [0xc2, 0x80]);
        assert_eq!(coded(0x7ff), [0xdf, 0xbf]);
        assert_eq!(coded(0x800), [0xe0, 0xa0, 0x80]);
        assert_eq!(coded(0xffff), [0xef, 0xbf, 0xbf]);
        assert_eq!(coded(0x10000), [0xf0, 0x90, 0x80, 0x80]);
        assert_eq!(coded(0x7fff_ffff), [0xfd, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf]);
        assert_eq!(
            coded(0x8000_0000),
            [0xfe, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80]
        );
        assert_eq!(
            coded((1 << 36) - 1),
            [0xfe, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf]
        );
        // Same as Rust's own UTF-8 where the ranges overlap.
        for c in ['é', '€', '😀'] {
            let mut b = [0; 4];
            assert_eq!(coded(u64::from(c)), c.encode_utf8(&mut b).as_bytes());
        }
    }

    #[test]
    fn codes_for_sizes_and_rates() {
        assert_eq!(block_size_code(192), (1, None));
        assert_eq!(block_size_code(576), (2, None));
        assert_eq!(block_size_code(4608), (5, None));
        assert_eq!(block_size_code(256), (8, None));
        assert_eq!(block_size_code(32768), (15, None));
        assert_eq!(block_size_code(160), (6, Some((159, 8))));
        assert_eq!(block_size_code(1), (6, Some((0, 8))));
        assert_eq!(block_size_code(320), (7, Some((319, 16))));
        assert_eq!(block_size_code(65535), (7, Some((65534, 16))));
        assert_eq!(sample_rate_code(8000), (4, None));
        assert_eq!(sample_rate_code(48000), (10, None));
        assert_eq!(sample_rate_code(11000), (12, Some((11, 8))));
        assert_eq!(sample_rate_code(11025), (13, Some((11025, 16))));
        assert_eq!(sample_rate_code(384_000), (14, Some((38400, 16))));
        assert_eq!(sample_rate_code(655_351), (0, None));
    }

    #[test]
    fn streaminfo_fields() {
        let s = streaminfo(Format::new(8000, 1).unwrap());
        assert_eq!(&s[..4], &[0, 16, 0xff, 0xff]);
        // 8000 = 0x01F40 in 20 bits, then channels − 1 = 0, bits − 1 = 15.
        assert_eq!(&s[10..14], &[0x01, 0xf4, 0x00, 0xf0]);
        assert!(s[14..].iter().all(|&b| b == 0));
        let s = streaminfo(Format::new(44100, 2).unwrap());
        assert_eq!(&s[10..13], &[0x0a, 0xc4, 0x42]);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let f = Format::new(8000, 2).unwrap();
        assert!(encode_frame(f, 0, &[]).is_err());
        assert!(encode_frame(f, 0, &[1, 2, 3]).is_err());
        let mono = Format::new(8000, 1).unwrap();
        assert!(encode_frame(mono, 0, &vec![0; MAX_BLOCK + 1]).is_err());
        assert!(encode_frame(mono, u64::MAX, &[5]).is_ok());
        assert!(Format::new(0, 1).is_err());
        assert!(Format::new(8000, 3).is_err());
        assert!(Format::new(MAX_RATE + 1, 1).is_err());
    }

    #[test]
    fn silence_is_a_constant_subframe() {
        let frame = encode_frame(Format::new(8000, 1).unwrap(), 0, &[0; 160]).unwrap();
        // Header: sync (2), codes (2), number (1), size (1), CRC-8 (1); subframe: 1 + 2
        // bytes; CRC-16 (2).
        assert_eq!(frame.len(), 12);
        assert_eq!(crc16(&frame), 0, "the footer makes the frame's CRC-16 zero");
        assert_eq!(crc8(&frame[..7]), 0, "so does the header's CRC-8");
    }
}
