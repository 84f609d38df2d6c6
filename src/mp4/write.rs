//! A growable buffer for writing boxes: open a box, write its fields, close it, and its size is
//! patched in. Only headers are built this way; media payloads never pass through here.

use super::FourCc;

#[derive(Debug, Default)]
pub struct BoxBuf {
    buf: Vec<u8>,
    /// Start positions of the boxes still open.
    open: Vec<usize>,
}

impl BoxBuf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
            open: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Opens a plain box.
    pub fn begin(&mut self, kind: FourCc) {
        self.open.push(self.buf.len());
        self.u32(0);
        self.bytes(&kind.0);
    }

    /// Opens a full box (version + flags).
    pub fn begin_full(&mut self, kind: FourCc, version: u8, flags: u32) {
        self.begin(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    /// Closes the innermost open box, writing its size.
    ///
    /// Boxes built here are headers (a few KiB at most), so a 32-bit size always fits.
    pub fn end(&mut self) {
        let start = self.open.pop().expect("BoxBuf::end without begin");
        let size = u32::try_from(self.buf.len() - start).expect("header box over 4 GiB");
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Overwrites 4 bytes written earlier (for offsets known only once the box is complete).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    pub fn into_vec(self) -> Vec<u8> {
        assert!(self.open.is_empty(), "BoxBuf finished with open boxes");
        self.buf
    }
}

/// The 8- or 16-byte header of an `mdat` whose payload is `payload_len` bytes.
pub fn mdat_header(payload_len: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    if payload_len + 8 <= u64::from(u32::MAX) {
        v.extend_from_slice(&((payload_len + 8) as u32).to_be_bytes());
        v.extend_from_slice(b"mdat");
    } else {
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(b"mdat");
        v.extend_from_slice(&(payload_len + 16).to_be_bytes());
    }
    v
}

/// A `free` box filling exactly `len` bytes (`len >= 8`), used to reserve room for the header
/// to grow in place.
pub fn free_box(len: usize) -> Vec<u8> {
    assert!(len >= 8, "a free box needs at least 8 bytes");
    let mut v = vec![0u8; len];
    v[..4].copy_from_slice(&(len as u32).to_be_bytes());
    v[4..8].copy_from_slice(b"free");
    v
}
