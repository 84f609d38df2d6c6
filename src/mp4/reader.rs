//! Zero-copy iteration over ISO-BMFF boxes.
//!
//! A box is `size:u32 type:[u8;4] [largesize:u64] body`. `size == 1` means the 64-bit size
//! follows the type, `size == 0` means the box runs to the end of its container (only legal for
//! the last box, typically a top-level `mdat`). Nothing here copies the body: a [`BoxRef`] borrows
//! it from the caller's buffer.

use super::FourCc;
use super::error::{Mp4Error, Result};

/// A parsed box header, independent of any buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: FourCc,
    /// Absolute offset of the box's first byte.
    pub offset: u64,
    /// 8, or 16 for a 64-bit size.
    pub header_len: u8,
    /// Whole box size including the header; `None` for a size-0 ("to end of file") box.
    pub size: Option<u64>,
}

impl BoxHeader {
    /// Longest header we ever need to see to parse one (8 + 8 for largesize).
    pub const MAX_LEN: usize = 16;

    /// Parses a header from the start of `buf`. `offset` is where `buf` starts in the input.
    /// Returns `Ok(None)` when `buf` is too short to hold a complete header.
    pub fn parse(buf: &[u8], offset: u64) -> Result<Option<BoxHeader>> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let kind = FourCc([buf[4], buf[5], buf[6], buf[7]]);
        let (header_len, size) = match size32 {
            0 => (8u8, None),
            1 => {
                if buf.len() < 16 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[8..16]);
                let large = u64::from_be_bytes(b);
                if large < 16 {
                    return Err(Mp4Error::new(
                        kind,
                        offset,
                        format!("64-bit box size {large} is smaller than its 16-byte header"),
                    ));
                }
                (16u8, Some(large))
            }
            s if s < 8 => {
                return Err(Mp4Error::new(
                    kind,
                    offset,
                    format!("box size {s} is smaller than its 8-byte header"),
                ));
            }
            s => (8u8, Some(u64::from(s))),
        };
        Ok(Some(BoxHeader {
            kind,
            offset,
            header_len,
            size,
        }))
    }
}

/// A box borrowed from a buffer.
#[derive(Debug, Clone, Copy)]
pub struct BoxRef<'a> {
    pub kind: FourCc,
    /// Absolute offset of the box's first byte.
    pub offset: u64,
    pub header_len: u8,
    /// The box body (everything after the header).
    pub body: &'a [u8],
}

impl<'a> BoxRef<'a> {
    /// Absolute offset of the first body byte.
    pub fn body_offset(&self) -> u64 {
        self.offset + u64::from(self.header_len)
    }

    /// Whole size of the box including its header.
    pub fn size(&self) -> u64 {
        u64::from(self.header_len) + self.body.len() as u64
    }

    /// The child boxes of a container box.
    pub fn children(&self) -> Boxes<'a> {
        Boxes::new(self.body, self.body_offset())
    }

    /// The child boxes that follow `skip` bytes of fields (e.g. `stsd`'s entry count).
    pub fn children_after(&self, skip: usize) -> Result<Boxes<'a>> {
        if self.body.len() < skip {
            return Err(self.error(format!(
                "body of {} bytes is too short for its {skip}-byte header fields",
                self.body.len()
            )));
        }
        Ok(Boxes::new(
            &self.body[skip..],
            self.body_offset() + skip as u64,
        ))
    }

    /// A field reader over the body.
    pub fn fields(&self) -> super::Fields<'a> {
        super::Fields::new(self.kind, self.offset, self.header_len, self.body)
    }

    pub fn error(&self, problem: impl Into<String>) -> Mp4Error {
        Mp4Error::new(self.kind, self.offset, problem)
    }

    /// The first child of the given type, or an error naming what is missing.
    pub fn child(&self, kind: FourCc) -> Result<BoxRef<'a>> {
        self.find(kind)?
            .ok_or_else(|| self.error(format!("has no {kind} box")))
    }

    /// The first child of the given type, if any.
    pub fn find(&self, kind: FourCc) -> Result<Option<BoxRef<'a>>> {
        for b in self.children() {
            let b = b?;
            if b.kind == kind {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }
}

/// Iterator over consecutive boxes in a buffer. Stops at the first malformed box, yielding its
/// error once.
#[derive(Debug, Clone)]
pub struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
    base_offset: u64,
    failed: bool,
}

impl<'a> Boxes<'a> {
    /// Boxes in `data`, which starts at absolute offset `base_offset` of the input.
    pub fn new(data: &'a [u8], base_offset: u64) -> Self {
        Self {
            data,
            pos: 0,
            base_offset,
            failed: false,
        }
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<BoxRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let offset = self.base_offset + self.pos as u64;
        let result = match BoxHeader::parse(rest, offset) {
            Ok(Some(h)) => {
                let hl = usize::from(h.header_len);
                let end = match h.size {
                    None => Some(rest.len()),
                    Some(s) => usize::try_from(s).ok().filter(|&s| s <= rest.len()),
                };
                match end {
                    Some(end) => {
                        self.pos += end;
                        Ok(BoxRef {
                            kind: h.kind,
                            offset,
                            header_len: h.header_len,
                            body: &rest[hl..end],
                        })
                    }
                    None => Err(Mp4Error::new(
                        h.kind,
                        offset,
                        format!(
                            "box size {} runs past the end of its container ({} bytes left)",
                            h.size.unwrap_or(0),
                            rest.len()
                        ),
                    )),
                }
            }
            Ok(None) => Err(Mp4Error::new(
                FourCc::UNKNOWN,
                offset,
                format!("{} trailing bytes are too few for a box header", rest.len()),
            )),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes(data: &[u8]) -> Vec<Result<(FourCc, u64, usize)>> {
        Boxes::new(data, 100)
            .map(|b| b.map(|b| (b.kind, b.offset, b.body.len())))
            .collect()
    }

    #[test]
    fn reads_32_bit_64_bit_and_to_end_sizes() {
        let mut data = Vec::new();
        data.extend_from_slice(&[0, 0, 0, 10, b'f', b'r', b'e', b'e', 1, 2]);
        data.extend_from_slice(&[
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 19, 7, 7, 7,
        ]);
        data.extend_from_slice(&[0, 0, 0, 0, b'm', b'd', b'a', b't', 9, 9, 9, 9]);
        let got = boxes(&data);
        assert_eq!(
            got,
            vec![
                Ok((FourCc(*b"free"), 100, 2)),
                Ok((FourCc(*b"mdat"), 110, 3)),
                Ok((FourCc(*b"mdat"), 129, 4)),
            ]
        );
    }

    #[test]
    fn bad_sizes_are_errors_naming_box_and_offset() {
        let too_small = [0, 0, 0, 4, b'm', b'o', b'o', b'v'];
        let e = boxes(&too_small).remove(0).unwrap_err();
        assert_eq!((e.kind, e.offset), (FourCc(*b"moov"), 100));
        assert!(e.to_string().starts_with("moov box at byte 100: "), "{e}");

        let past_end = [0, 0, 0, 50, b'm', b'o', b'o', b'f', 0, 0];
        assert!(
            boxes(&past_end)[0]
                .as_ref()
                .unwrap_err()
                .problem
                .contains("past the end")
        );

        let large_too_small = [0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 8];
        assert!(boxes(&large_too_small)[0].is_err());

        // A 64-bit size beyond usize or the buffer must not be trusted.
        let huge = [
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert!(boxes(&huge)[0].is_err());

        let stub = [0, 0, 0];
        let r = boxes(&stub);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].as_ref()
                .unwrap_err()
                .problem
                .contains("trailing bytes")
        );
    }

    #[test]
    fn iteration_stops_after_the_first_error() {
        let data = [
            0, 0, 0, 2, b'b', b'a', b'd', b'!', 0, 0, 0, 8, b'f', b'r', b'e', b'e',
        ];
        assert_eq!(boxes(&data).len(), 1);
    }
}
