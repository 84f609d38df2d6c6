//! The encoder checked by a real decoder: streams of varied content and block sizes are
//! written as native `.flac` files and decoded by ffmpeg, which must give back every sample.

use std::process::Command;

use super::flac::{Format, encode_frame, streaminfo};
use super::g711;
use super::pcm::{PcmCodec, PcmToFlac};

/// A native FLAC file: marker, STREAMINFO as the last metadata block, frames.
fn flac_file(format: Format, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut f = b"fLaC".to_vec();
    f.extend([0x80, 0, 0, 34]);
    f.extend(streaminfo(format));
    for fr in frames {
        f.extend(fr);
    }
    f
}

/// Encodes `samples` (interleaved) in blocks of the given sizes (cycled) and returns what
/// ffmpeg decodes from the file.
fn round_trip(format: Format, samples: &[i16], blocks: &[usize]) -> Vec<i16> {
    let ch = usize::from(format.channels);
    let mut frames = Vec::new();
    let mut at = 0;
    let mut sizes = blocks.iter().cycle();
    while at < samples.len() / ch {
        let n = (*sizes.next().unwrap()).min(samples.len() / ch - at);
        frames.push(encode_frame(format, at as u64, &samples[at * ch..(at + n) * ch]).unwrap());
        at += n;
    }
    decode(&flac_file(format, &frames))
}

fn decode(file: &[u8]) -> Vec<i16> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.flac");
    std::fs::write(&path, file).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "s16le", "-"])
        .output()
        .expect("run ffmpeg (scripts/deps.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg: {stderr}"
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Deterministic noise (a 32-bit LCG), so failures reproduce.
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> i32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 16) as i32 - 32768
    }
}

fn sine_plus_noise(n: usize, channels: usize, noise: i32) -> Vec<i16> {
    let mut rng = Noise(7);
    (0..n * channels)
        .map(|i| {
            let t = (i / channels) as f64;
            let f = if i % channels == 0 { 440.0 } else { 1000.0 };
            let v = 12000.0 * (t * f * std::f64::consts::TAU / 8000.0).sin();
            (v as i32 + rng.next() % noise.max(1)).clamp(-32768, 32767) as i16
        })
        .collect()
}

#[track_caller]
fn assert_same(decoded: &[i16], original: &[i16]) {
    assert_eq!(decoded.len(), original.len(), "sample count");
    if let Some(i) = decoded.iter().zip(original).position(|(a, b)| a != b) {
        panic!(
            "first difference at sample {i}: decoded {}, sent {}",
            decoded[i], original[i]
        );
    }
}

#[test]
fn mono_sine_with_noise_in_odd_block_sizes() {
    let f = Format::new(8000, 1).unwrap();
    let pcm = sine_plus_noise(20_000, 1, 300);
    // Camera packet sizes and the awkward ones: a single sample, a prime, a power of two.
    let blocks = [160, 1, 17, 320, 4096, 160, 240, 1000, 33];
    assert_same(&round_trip(f, &pcm, &blocks), &pcm);
}

#[test]
fn stereo_at_48_khz() {
    let f = Format::new(48_000, 2).unwrap();
    let pcm = sine_plus_noise(12_000, 2, 2000);
    assert_same(&round_trip(f, &pcm, &[1024, 17, 1, 4096, 960]), &pcm);
}

#[test]
fn silence_extremes_and_white_noise() {
    let f = Format::new(16_000, 1).unwrap();
    let mut pcm = vec![0i16; 3000];
    // Full-scale square wave: the largest residuals fixed predictors can make.
    pcm.extend((0..3000).map(|i| if (i / 3) % 2 == 0 { i16::MAX } else { i16::MIN }));
    pcm.extend((0..3000).map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN }));
    pcm.extend([i16::MIN; 500]);
    pcm.extend([i16::MAX; 500]);
    let mut rng = Noise(99);
    pcm.extend((0..4000).map(|_| rng.next() as i16));
    // Quiet noise in a loud tone: Rice parameters vary by partition.
    pcm.extend(sine_plus_noise(4000, 1, 3));
    assert_same(&round_trip(f, &pcm, &[160, 320, 4096, 17, 1]), &pcm);
}

#[test]
fn largest_block_and_unusual_rates() {
    let pcm = sine_plus_noise(65_535 + 100, 1, 50);
    for rate in [8000, 11_025, 44_100, 22_000, 96_000, 384_000] {
        let f = Format::new(rate, 1).unwrap();
        assert_same(&round_trip(f, &pcm, &[65_535, 100]), &pcm);
    }
}

#[test]
fn sample_numbers_past_the_one_byte_form() {
    // Frames whose first sample lies far into a stream (multi-byte coded numbers) decode
    // too: ffmpeg does not need them to start at 0. Numbers wrap at 2^31 (ffmpeg refuses the
    // 7-byte form): a stream crossing that point, and one past 2^33, still decode.
    let f = Format::new(8000, 1).unwrap();
    let pcm = sine_plus_noise(160, 1, 100);
    for start in [
        200,
        70_000,
        3_000_000,
        (1 << 31) - 640,
        (1 << 31) - 320,
        1 << 33,
    ] {
        let frames: Vec<Vec<u8>> = (0..4)
            .map(|i| encode_frame(f, start + i * 160, &pcm).unwrap())
            .collect();
        assert_same(&decode(&flac_file(f, &frames)), &pcm.repeat(4));
    }
}

#[test]
fn every_g711_code_word_survives() {
    for codec in [PcmCodec::Pcma, PcmCodec::Pcmu] {
        let mut t = PcmToFlac::new(codec, 8000, 1).unwrap();
        // Each code word several times over, in packets of 160 and 80.
        let codes: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).chain(0..=127).collect();
        let frames: Vec<Vec<u8>> = codes
            .chunks(160)
            .flat_map(|c| {
                c.chunks(80)
                    .map(|p| t.frame(p).unwrap().data)
                    .collect::<Vec<_>>()
            })
            .collect();
        let law = match codec {
            PcmCodec::Pcma => g711::alaw,
            _ => g711::ulaw,
        };
        let expected: Vec<i16> = codes.iter().map(|&c| law(c)).collect();
        assert_same(&decode(&flac_file(t.format(), &frames)), &expected);
    }
}

#[test]
fn g711_matches_ffmpeg_own_decoder() {
    // Our expansion tables against ffmpeg's pcm_alaw/pcm_mulaw, for all 256 code words.
    let codes: Vec<u8> = (0..=255).collect();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("codes.raw");
    std::fs::write(&raw, &codes).unwrap();
    for (fmt, law) in [("alaw", g711::alaw as fn(u8) -> i16), ("mulaw", g711::ulaw)] {
        let out = Command::new("ffmpeg")
            .args([
                "-nostdin", "-v", "error", "-f", fmt, "-ar", "8000", "-ac", "1", "-i",
            ])
            .arg(&raw)
            .args(["-f", "s16le", "-"])
            .output()
            .expect("run ffmpeg");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<i16> = out
            .stdout
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let ours: Vec<i16> = codes.iter().map(|&c| law(c)).collect();
        assert_eq!(ours, theirs, "{fmt}");
    }
}

#[test]
fn l16_stereo_packets() {
    let mut t = PcmToFlac::new(PcmCodec::L16, 16_000, 2).unwrap();
    let pcm = sine_plus_noise(5000, 2, 500);
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_be_bytes()).collect();
    // Packets of 1400 bytes (350 stereo samples) and a short tail.
    let frames: Vec<Vec<u8>> = bytes
        .chunks(1400)
        .map(|p| t.frame(p).unwrap().data)
        .collect();
    assert_same(&decode(&flac_file(t.format(), &frames)), &pcm);
}

#[test]
fn compresses_what_it_can() {
    // Not a format requirement, but the point of choosing subframes: a tone with little
    // noise takes well under the 2 bytes per sample of VERBATIM. (Fixed predictors follow
    // a 440 Hz tone at 8 kHz only roughly: about 10 bits a sample here; LPC would do
    // better.)
    let f = Format::new(8000, 1).unwrap();
    let pcm = sine_plus_noise(4096, 1, 30);
    let frame = encode_frame(f, 0, &pcm).unwrap();
    assert!(
        frame.len() * 10 < pcm.len() * 2 * 7,
        "{} bytes for {} samples",
        frame.len(),
        pcm.len()
    );
    let silence = encode_frame(f, 0, &[0; 4096]).unwrap();
    assert!(silence.len() < 16);
}

#[test]
fn flac_entries_survive_an_init_round_trip() {
    // What recovery and clip writing see: an init holding our `fLaC` entry parses back as
    // FLAC with the entry byte for byte, and an independent parser (mp4-atom) reads its
    // STREAMINFO.
    use crate::mp4::{Codec, TrackKind};
    let t = PcmToFlac::new(PcmCodec::Pcmu, 8000, 1).unwrap();
    let entry = bytes::Bytes::from(t.sample_entry());
    let init = crate::segmenter::build_init(&[crate::source::TrackParams {
        kind: TrackKind::Audio,
        codec: Codec::Flac,
        timescale: 8000,
        sample_entry: entry.clone(),
        width: 0,
        height: 0,
    }])
    .unwrap();
    let audio = init.audio().unwrap();
    assert_eq!(audio.sample_entries[0].codec, Codec::Flac);
    assert_eq!(audio.sample_entries[0].codec.to_string(), "FLAC");
    assert_eq!(audio.sample_entries[0].bytes, entry);
    let mut buf = &entry[..];
    let parsed = <mp4_atom::Flac as mp4_atom::Decode>::decode(&mut buf).unwrap();
    assert_eq!(parsed.audio.channel_count, 1);
    assert_eq!(parsed.audio.sample_size, 16);
    match &parsed.dfla.blocks[0] {
        mp4_atom::FlacMetadataBlock::StreamInfo {
            sample_rate,
            num_channels_minus_one,
            bits_per_sample_minus_one,
            minimum_block_size,
            maximum_block_size,
            ..
        } => {
            assert_eq!(
                (
                    *sample_rate,
                    *num_channels_minus_one,
                    *bits_per_sample_minus_one
                ),
                (8000, 0, 15)
            );
            assert_eq!((*minimum_block_size, *maximum_block_size), (16, 65535));
        }
        other => panic!("{other:?}"),
    }
}

/// The predictor order is picked from residual magnitudes (`flac::fixed_order`) instead of
/// planning all five: the frames of camera-sized packets may come out a little larger than
/// with the best order, but not by more than 1 % here.
#[test]
fn picking_the_order_costs_little_against_trying_every_order() {
    /// Bits of the smallest of FIXED 0–4 and VERBATIM for one channel (its 8-bit header aside).
    fn best_subframe_bits(s: &[i32]) -> u64 {
        let n = s.len();
        let mut r = s.to_vec();
        let mut best = n as u64 * 16;
        for order in 0..=(n - 1).min(4) {
            if order > 0 {
                r = r.windows(2).map(|p| p[1] - p[0]).collect();
            }
            best = best.min(order as u64 * 16 + super::rice::plan(&r, n, order).bits);
        }
        best
    }
    let f = Format::new(8000, 1).unwrap();
    let mut rng = Noise(11);
    let mut walk = 0i32;
    let brown: Vec<i16> = (0..160 * 200)
        .map(|_| {
            walk = (walk + rng.next() / 64).clamp(-20000, 20000);
            walk as i16
        })
        .collect();
    for (name, pcm) in [
        ("tone + little noise", sine_plus_noise(160 * 200, 1, 30)),
        ("tone + loud noise", sine_plus_noise(160 * 200, 1, 3000)),
        ("random walk", brown),
    ] {
        let (mut ours, mut best) = (0usize, 0usize);
        for (i, packet) in pcm.chunks_exact(160).enumerate() {
            let first = (i * 160) as u64;
            let frame = encode_frame(f, first, packet).unwrap();
            // Header bytes: a silent frame is header + 3 (CONSTANT subframe) + 2 (CRC-16).
            let header = encode_frame(f, first, &[0; 160]).unwrap().len() - 5;
            let samples: Vec<i32> = packet.iter().map(|&s| i32::from(s)).collect();
            let optimal = header + (8 + best_subframe_bits(&samples)).div_ceil(8) as usize + 2;
            assert!(
                frame.len() >= optimal,
                "{name}: packet {i} beat the optimum"
            );
            ours += frame.len();
            best += optimal;
        }
        assert!(
            ours * 100 <= best * 101,
            "{name}: {ours} bytes against {best} with the best order"
        );
    }
}
