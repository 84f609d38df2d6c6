//! The MP4 sample entry of a FLAC track: `fLaC` (an AudioSampleEntry) holding `dfLa`, as the
//! "Encapsulation of FLAC in ISO Base Media File Format" specification lays them out.

use crate::mp4::FourCc;
use crate::mp4::write::BoxBuf;

use super::flac::{Format, streaminfo};

pub const FLAC: FourCc = FourCc(*b"fLaC");
pub const DFLA: FourCc = FourCc(*b"dfLa");

/// The whole `fLaC` box for a 16-bit stream of `format`.
pub fn flac_sample_entry(format: Format) -> Vec<u8> {
    let mut b = BoxBuf::with_capacity(8 + 28 + 12 + 4 + 34);
    b.begin(FLAC);
    b.zeros(6); // SampleEntry reserved
    b.u16(1); // data_reference_index
    b.zeros(8); // AudioSampleEntry reserved (version, revision, vendor in QuickTime terms)
    b.u16(u16::from(format.channels));
    b.u16(16); // samplesize
    b.zeros(4); // pre_defined, reserved
    // 16.16 fixed point; rates that do not fit 16 bits are written as 0 (the spec's rule:
    // the STREAMINFO rate is authoritative).
    let rate = u16::try_from(format.sample_rate).map_or(0, |r| u32::from(r) << 16);
    b.u32(rate);
    b.begin_full(DFLA, 0, 0);
    // METADATA_BLOCK_HEADER: last-metadata-block flag set, type 0 (STREAMINFO), length 34.
    b.u32(0x8000_0000 | 34);
    b.bytes(&streaminfo(format));
    b.end();
    b.end();
    b.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let e = flac_sample_entry(Format::new(8000, 1).unwrap());
        assert_eq!(e.len(), 36 + 12 + 4 + 34);
        assert_eq!(&e[..8], &[0, 0, 0, 86, b'f', b'L', b'a', b'C']);
        assert_eq!(&e[14..16], &[0, 1], "data_reference_index");
        assert_eq!(&e[24..28], &[0, 1, 0, 16], "mono, 16 bits");
        assert_eq!(&e[32..36], &[0x1f, 0x40, 0, 0], "8000 Hz in 16.16");
        assert_eq!(
            &e[36..48],
            &[0, 0, 0, 50, b'd', b'f', b'L', b'a', 0, 0, 0, 0]
        );
        assert_eq!(&e[48..52], &[0x80, 0, 0, 34]);
        let wide = flac_sample_entry(Format::new(96_000, 2).unwrap());
        assert_eq!(&wide[32..36], &[0, 0, 0, 0], "96 kHz does not fit 16.16");
    }
}
