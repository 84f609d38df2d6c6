//! EBML (RFC 8794), the binary format under Matroska: every element is an ID, a size and a
//! body, the ID and size written as variable-length integers whose first byte's leading zeros
//! give their length. A size of all ones means "unknown": the element runs until something
//! that cannot be inside it (live recordings use it for the Segment and Clusters).
//!
//! Two readers share one integer decoder: [`Elements`] walks elements held in memory (the
//! EBML header, Info, Tracks, a BlockGroup), [`read_header`] reads one element header from
//! the file for the streaming walk of Segment and Clusters.

use std::io::{Read, Seek};

use super::error::MkvError;
use super::input::Input;

/// Element IDs this reader knows (RFC 9559 §5.1), with their marker bits as IDs are written.
pub mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_ENABLED: u32 = 0xB9;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const DEFAULT_DURATION: u32 = 0x23_E383;
    pub const CODEC_DELAY: u32 = 0x56AA;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const BIT_DEPTH: u32 = 0x6264;
    pub const CONTENT_ENCODINGS: u32 = 0x6D80;
    pub const CONTENT_ENCODING: u32 = 0x6240;
    pub const CONTENT_ENCODING_SCOPE: u32 = 0x5032;
    pub const CONTENT_ENCODING_TYPE: u32 = 0x5033;
    pub const CONTENT_COMPRESSION: u32 = 0x5034;
    pub const CONTENT_COMP_ALGO: u32 = 0x4254;
    pub const CONTENT_COMP_SETTINGS: u32 = 0x4255;
    pub const CUES: u32 = 0x1C53_BB6B;
    pub const TAGS: u32 = 0x1254_C367;
    pub const ATTACHMENTS: u32 = 0x1941_A469;
    pub const CHAPTERS: u32 = 0x1043_A770;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const BLOCK_GROUP: u32 = 0xA0;
    pub const BLOCK: u32 = 0xA1;
    pub const REFERENCE_BLOCK: u32 = 0xFB;
    pub const VOID: u32 = 0xEC;
    pub const CRC32: u32 = 0xBF;
}

/// Elements that stand directly in a Segment (or above it): one of them ends a Cluster of
/// unknown size.
pub fn is_segment_level(id: u32) -> bool {
    matches!(
        id,
        id::EBML
            | id::SEGMENT
            | id::SEEK_HEAD
            | id::INFO
            | id::TRACKS
            | id::CUES
            | id::TAGS
            | id::ATTACHMENTS
            | id::CHAPTERS
            | id::CLUSTER
    )
}

/// A variable-length integer at the start of `b`: its length in bytes and its value with
/// the length marker removed, or `None` when `b` is too short or the first byte is zero (a
/// length over 8 bytes, which EBML does not have).
pub fn vint(b: &[u8]) -> Option<(usize, u64)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return None;
    }
    let mut value = u64::from(first) & (0xff >> len);
    for &byte in &b[1..len] {
        value = (value << 8) | u64::from(byte);
    }
    Some((len, value))
}

/// The value of a size that means "unknown": all value bits set.
fn is_unknown(len: usize, value: u64) -> bool {
    value == (1u64 << (7 * len)) - 1
}

/// An element header read from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u32,
    /// `None`: unknown size.
    pub size: Option<u64>,
    /// Where the element (its ID) starts.
    pub at: u64,
    /// Where its body starts.
    pub body_at: u64,
}

impl Header {
    /// Where the body ends, when the size is known.
    pub fn end(&self) -> Option<u64> {
        self.size.and_then(|s| self.body_at.checked_add(s))
    }
}

/// Splits an element header off `b` (at file offset `at`): (ID, size, header length).
fn split_header(b: &[u8], at: u64) -> Result<Option<(u32, Option<u64>, usize)>, MkvError> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Err(MkvError::invalid(
            at,
            format!("{first:#04x} cannot start an element ID (IDs are 1 to 4 bytes)"),
        ));
    }
    let Some(id_bytes) = b.get(..id_len) else {
        return Ok(None);
    };
    // IDs keep their marker bits: 0x1A45DFA3 is the EBML header's, as the spec writes it.
    let id = id_bytes
        .iter()
        .fold(0u32, |v, &byte| (v << 8) | u32::from(byte));
    let rest = &b[id_len..];
    if rest.first() == Some(&0) {
        return Err(MkvError::invalid(
            at,
            format!("element {id:#x} has a size of more than 8 bytes"),
        ));
    }
    let Some((size_len, size)) = vint(rest) else {
        return Ok(None);
    };
    let size = (!is_unknown(size_len, size)).then_some(size);
    Ok(Some((id, size, id_len + size_len)))
}

/// Reads the element header at the input's position: `Ok(None)` at the end of the file,
/// also when the file ends inside the header (`truncated` is then set).
pub fn read_header<R: Read + Seek>(
    input: &mut Input<R>,
    truncated: &mut bool,
) -> Result<Option<Header>, MkvError> {
    let at = input.pos();
    // Room for the longest header read before it is checked: a first byte that cannot start
    // an ID still reads 5 bytes (`split_header` refuses it), and a size up to 8.
    let mut b = [0u8; 13];
    let Some(first) = input.byte(at)? else {
        return Ok(None);
    };
    b[0] = first;
    let id_len = (first.leading_zeros() as usize + 1).min(5);
    // The ID, and the first byte of the size, which tells the size's length.
    if !input.fill(&mut b[1..=id_len], at)? {
        *truncated = true;
        return Ok(None);
    }
    let size_len = (b[id_len].leading_zeros() as usize + 1).min(8);
    if !input.fill(&mut b[id_len + 1..id_len + size_len], at)? {
        *truncated = true;
        return Ok(None);
    }
    match split_header(&b[..id_len + size_len], at)? {
        Some((id, size, len)) => Ok(Some(Header {
            id,
            size,
            at,
            body_at: at + len as u64,
        })),
        None => {
            *truncated = true;
            Ok(None)
        }
    }
}

/// One element held in memory.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    pub id: u32,
    pub body: &'a [u8],
    /// File offset of the element's ID.
    pub at: u64,
}

impl<'a> Element<'a> {
    pub fn children(&self) -> Elements<'a> {
        Elements::new(self.body, self.at)
    }

    /// An unsigned integer (0 to 8 bytes, big-endian; empty is 0).
    pub fn uint(&self) -> Result<u64, MkvError> {
        if self.body.len() > 8 {
            return Err(MkvError::invalid(
                self.at,
                format!(
                    "element {:#x} holds a {}-byte integer",
                    self.id,
                    self.body.len()
                ),
            ));
        }
        Ok(self.body.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
    }

    /// A float (4 or 8 bytes; empty is 0).
    pub fn float(&self) -> Result<f64, MkvError> {
        match self.body.len() {
            0 => Ok(0.0),
            4 => Ok(f64::from(f32::from_be_bytes(
                self.body.try_into().unwrap_or_default(),
            ))),
            8 => Ok(f64::from_be_bytes(self.body.try_into().unwrap_or_default())),
            n => Err(MkvError::invalid(
                self.at,
                format!("element {:#x} holds a {n}-byte float", self.id),
            )),
        }
    }

    /// A string, without the zero bytes that may pad it.
    pub fn string(&self) -> String {
        let end = self
            .body
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.body.len());
        String::from_utf8_lossy(&self.body[..end]).into_owned()
    }
}

/// The elements of a body held in memory, in order. Each must lie inside the body; an
/// unknown size is refused (only Segment and Cluster may have one, and those are streamed).
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    data: &'a [u8],
    pos: usize,
    /// File offset of `data[0]`.
    base: u64,
    failed: bool,
}

impl<'a> Elements<'a> {
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Elements {
            data,
            pos: 0,
            base,
            failed: false,
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>, MkvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let at = self.base + self.pos as u64;
        let rest = &self.data[self.pos..];
        let result = match split_header(rest, at) {
            Ok(Some((id, Some(size), len))) => match usize::try_from(size)
                .ok()
                .and_then(|s| len.checked_add(s))
                .filter(|&end| end <= rest.len())
            {
                Some(end) => {
                    self.pos += end;
                    return Some(Ok(Element {
                        id,
                        body: &rest[len..end],
                        at,
                    }));
                }
                None => Err(MkvError::invalid(
                    at,
                    format!(
                        "element {id:#x} claims {size} bytes, past the end of its parent ({} bytes left)",
                        rest.len() - len
                    ),
                )),
            },
            Ok(Some((id, None, _))) => Err(MkvError::invalid(
                at,
                format!("element {id:#x} has an unknown size where it cannot"),
            )),
            Ok(None) => Err(MkvError::invalid(
                at,
                "an element header cut off by the end of its parent",
            )),
            Err(e) => Err(e),
        };
        self.failed = true;
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_variable_length_integers() {
        assert_eq!(vint(&[0x81]), Some((1, 1)));
        assert_eq!(vint(&[0x40, 0x02]), Some((2, 2)));
        assert_eq!(vint(&[0x01, 0, 0, 0, 0, 0, 0, 0x05]), Some((8, 5)));
        assert_eq!(vint(&[0x00, 1]), None, "longer than 8 bytes");
        assert_eq!(vint(&[0x40]), None, "cut short");
        assert!(is_unknown(1, 0x7f) && is_unknown(8, (1 << 56) - 1));
        assert!(!is_unknown(2, 0x7f));
    }

    #[test]
    fn walks_elements_and_refuses_ones_past_their_parent() {
        // DocType "webm", then a Void of 2 bytes.
        let data = b"\x42\x82\x84webm\xec\x82\0\0";
        let e: Vec<Element> = Elements::new(data, 100).map(Result::unwrap).collect();
        assert_eq!(
            (e[0].id, e[0].string().as_str(), e[0].at),
            (0x4282, "webm", 100)
        );
        assert_eq!((e[1].id, e[1].at), (0xec, 107));
        let bad: Vec<_> = Elements::new(b"\x42\x82\x88webm", 0).collect();
        assert_eq!(bad.len(), 1);
        let err = bad[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("claims 8 bytes"), "{err}");
        let unknown: Vec<_> = Elements::new(b"\xa0\xff\x81", 0).collect();
        assert!(unknown[0].is_err());
        let long_id: Vec<_> = Elements::new(b"\x08\x01\x02\x03\x04\x81\x00", 0).collect();
        assert!(long_id[0].is_err());
    }

    #[test]
    fn reads_integers_floats_and_strings() {
        fn e(body: &[u8]) -> Element<'_> {
            Element { id: 1, body, at: 0 }
        }
        assert_eq!(e(b"\x0f\x42\x40").uint().unwrap(), 1_000_000);
        assert_eq!(e(b"").uint().unwrap(), 0);
        assert!(e(&[1; 9]).uint().is_err());
        assert_eq!(e(&48000f32.to_be_bytes()).float().unwrap(), 48000.0);
        assert_eq!(e(&44100f64.to_be_bytes()).float().unwrap(), 44100.0);
        assert!(e(b"\0\0").float().is_err());
        assert_eq!(e(b"V_VP9\0\0").string(), "V_VP9");
    }
}
