//! Bounds-checked reading of the fixed fields inside a box body.

use super::FourCc;
use super::error::{Mp4Error, Result};

/// A cursor over one box body. Every read is bounds-checked; running short yields an error that
/// names the box, its offset and the field position.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    kind: FourCc,
    offset: u64,
    header_len: u8,
    body: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub fn new(kind: FourCc, offset: u64, header_len: u8, body: &'a [u8]) -> Self {
        Self {
            kind,
            offset,
            header_len,
            body,
            pos: 0,
        }
    }

    pub fn error(&self, problem: impl Into<String>) -> Mp4Error {
        Mp4Error::new(self.kind, self.offset, problem)
    }

    /// Bytes of the body not read yet.
    pub fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    /// Position in the body (0 = first byte after the header).
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.error(format!(
                "truncated: needs {n} more bytes at body byte {} (absolute {}), has {}",
                self.pos,
                self.offset + u64::from(self.header_len) + self.pos as u64,
                self.remaining()
            )));
        }
        let s = &self.body[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u24(&mut self) -> Result<u32> {
        let b = self.bytes(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    pub fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }

    pub fn u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }

    /// A full box's version and 24-bit flags.
    pub fn version_flags(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// A field that is 32 bits in version 0 and 64 bits in version 1.
    pub fn u32_or_u64(&mut self, version: u8) -> Result<u64> {
        if version == 1 {
            self.u64()
        } else {
            Ok(u64::from(self.u32()?))
        }
    }

    pub fn fourcc(&mut self) -> Result<FourCc> {
        let b = self.bytes(4)?;
        Ok(FourCc([b[0], b[1], b[2], b[3]]))
    }
}
