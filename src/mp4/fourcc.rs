use std::fmt;

/// A four-character box or codec code such as `moov` or `avc1`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// Stands in for the type of a box whose header could not even be read.
    pub const UNKNOWN: FourCc = FourCc(*b"????");

    pub const fn new(code: &[u8; 4]) -> Self {
        FourCc(*code)
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc({self})")
    }
}

/// The box types this crate reads or writes by name.
pub mod kinds {
    use super::FourCc;
    pub const FTYP: FourCc = FourCc(*b"ftyp");
    pub const STYP: FourCc = FourCc(*b"styp");
    pub const MOOV: FourCc = FourCc(*b"moov");
    pub const MVHD: FourCc = FourCc(*b"mvhd");
    pub const TRAK: FourCc = FourCc(*b"trak");
    pub const TKHD: FourCc = FourCc(*b"tkhd");
    pub const EDTS: FourCc = FourCc(*b"edts");
    pub const ELST: FourCc = FourCc(*b"elst");
    pub const MDIA: FourCc = FourCc(*b"mdia");
    pub const MDHD: FourCc = FourCc(*b"mdhd");
    pub const HDLR: FourCc = FourCc(*b"hdlr");
    pub const MINF: FourCc = FourCc(*b"minf");
    pub const VMHD: FourCc = FourCc(*b"vmhd");
    pub const SMHD: FourCc = FourCc(*b"smhd");
    pub const DINF: FourCc = FourCc(*b"dinf");
    pub const DREF: FourCc = FourCc(*b"dref");
    pub const URL: FourCc = FourCc(*b"url ");
    pub const STBL: FourCc = FourCc(*b"stbl");
    pub const STSD: FourCc = FourCc(*b"stsd");
    pub const STTS: FourCc = FourCc(*b"stts");
    pub const STSC: FourCc = FourCc(*b"stsc");
    pub const STSZ: FourCc = FourCc(*b"stsz");
    pub const STCO: FourCc = FourCc(*b"stco");
    pub const CO64: FourCc = FourCc(*b"co64");
    pub const CTTS: FourCc = FourCc(*b"ctts");
    pub const STSS: FourCc = FourCc(*b"stss");
    pub const STZ2: FourCc = FourCc(*b"stz2");
    pub const MVEX: FourCc = FourCc(*b"mvex");
    pub const MEHD: FourCc = FourCc(*b"mehd");
    pub const TREX: FourCc = FourCc(*b"trex");
    pub const MOOF: FourCc = FourCc(*b"moof");
    pub const MFHD: FourCc = FourCc(*b"mfhd");
    pub const TRAF: FourCc = FourCc(*b"traf");
    pub const TFHD: FourCc = FourCc(*b"tfhd");
    pub const TFDT: FourCc = FourCc(*b"tfdt");
    pub const TRUN: FourCc = FourCc(*b"trun");
    pub const MDAT: FourCc = FourCc(*b"mdat");
    pub const MFRA: FourCc = FourCc(*b"mfra");
    pub const TFRA: FourCc = FourCc(*b"tfra");
    pub const MFRO: FourCc = FourCc(*b"mfro");
    pub const FREE: FourCc = FourCc(*b"free");
    pub const SIDX: FourCc = FourCc(*b"sidx");
    pub const ESDS: FourCc = FourCc(*b"esds");

    pub const VIDE: FourCc = FourCc(*b"vide");
    pub const SOUN: FourCc = FourCc(*b"soun");
    pub const AVC1: FourCc = FourCc(*b"avc1");
    pub const AVC3: FourCc = FourCc(*b"avc3");
    pub const HVC1: FourCc = FourCc(*b"hvc1");
    pub const HEV1: FourCc = FourCc(*b"hev1");
    pub const MP4A: FourCc = FourCc(*b"mp4a");
    pub const FLAC: FourCc = FourCc(*b"fLaC");
    pub const OPUS: FourCc = FourCc(*b"Opus");
}
