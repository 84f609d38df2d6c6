//! G.711 (ITU-T) A-law and µ-law expansion to 16-bit linear PCM, computed from the code
//! words' segment/mantissa structure rather than looked up. The values are the standard
//! decoder outputs (µ-law: 14-bit magnitudes, A-law: 13-bit, both shifted to 16-bit scale),
//! which are also what ffmpeg's `pcm_mulaw`/`pcm_alaw` decoders produce.

/// One µ-law code word → linear sample. Code words are sent inverted; after inverting,
/// bit 7 is the sign (set: negative), bits 6–4 the segment, bits 3–0 the mantissa.
pub fn ulaw(code: u8) -> i16 {
    let u = !code;
    let segment = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    // The biased magnitude: (mantissa·2 + 33)·2^segment in 14-bit units, here ×4 (16-bit
    // scale) as ((mantissa << 3) + 132) << segment, minus the bias 132.
    let magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84;
    // Largest magnitude is (120 + 132)·128 − 132 = 32124: fits i16 either sign.
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// One A-law code word → linear sample. Even bits are sent inverted (XOR 0x55); after that,
/// bit 7 is the sign (set: positive), bits 6–4 the segment, bits 3–0 the mantissa.
pub fn alaw(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0f);
    // Each value decodes to the middle of its quantization interval: the +8 (+0x108 with the
    // segment's implicit leading one) is half a step at 16-bit scale.
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    // Largest magnitude is (240 + 264)·64 = 32256.
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw(0xff), 0);
        assert_eq!(ulaw(0x7f), 0);
        assert_eq!(ulaw(0x00), -32124);
        assert_eq!(ulaw(0x80), 32124);
        assert_eq!(ulaw(0xfe), 8);
        assert_eq!(ulaw(0x7e), -8);
        // Segment 1, mantissa 0: 132·2 − 132.
        assert_eq!(ulaw(0xef), 132);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw(0xd5), 8);
        assert_eq!(alaw(0x55), -8);
        assert_eq!(alaw(0xaa), 32256);
        assert_eq!(alaw(0x2a), -32256);
        // Segment 1 starts where segment 0 ends: 16 steps of 16.
        assert_eq!(alaw(0x10 ^ 0x55 ^ 0x80), 264);
    }

    #[test]
    fn both_laws_are_odd_and_monotonic() {
        // Sorted by the value each code word stands for, outputs never go down: this is
        // what a wrong segment or mantissa shift breaks.
        let mut u: Vec<i16> = (0..=255u8).map(ulaw).collect();
        let mut a: Vec<i16> = (0..=255u8).map(alaw).collect();
        for v in [&mut u, &mut a] {
            v.sort_unstable();
            v.dedup();
        }
        assert_eq!(a.len(), 256, "A-law has no zero: all 256 values differ");
        assert_eq!(u.len(), 255, "µ-law has +0 and −0");
        for c in 0..=255u8 {
            assert_eq!(ulaw(c), -ulaw(c ^ 0x80), "{c:#x}");
            assert_eq!(alaw(c), -alaw(c ^ 0x80), "{c:#x}");
        }
    }
}
