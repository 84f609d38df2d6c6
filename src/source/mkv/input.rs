//! The file under the reader: buffered reads that know their position and the file's length,
//! so a size read from the file is checked against what is really there before anything is
//! allocated for it.

use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};

use super::error::MkvError;

/// Read granularity.
const BUFFER: usize = 64 << 10;

#[derive(Debug)]
pub struct Input<R> {
    inner: BufReader<R>,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Input<R> {
    pub fn new(mut inner: R) -> Result<Self, MkvError> {
        let io = |source| MkvError::Io { at: 0, source };
        let len = inner.seek(SeekFrom::End(0)).map_err(io)?;
        inner.seek(SeekFrom::Start(0)).map_err(io)?;
        Ok(Input {
            inner: BufReader::with_capacity(BUFFER, inner),
            pos: 0,
            len,
        })
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Bytes from the position to the end of the file.
    pub fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// One byte, or `None` at the end of the file.
    pub fn byte(&mut self, at: u64) -> Result<Option<u8>, MkvError> {
        let mut b = [0u8];
        Ok(self.fill(&mut b, at)?.then_some(b[0]))
    }

    /// Fills `buf`; `false` when the file ends first. `at` names the element being read in
    /// an error.
    pub fn fill(&mut self, buf: &mut [u8], at: u64) -> Result<bool, MkvError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => {
                    self.pos += got as u64;
                    return Ok(false);
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => return Err(MkvError::Io { at, source }),
            }
        }
        self.pos += got as u64;
        Ok(true)
    }

    /// The next `len` bytes, or `None` when the file ends before them. The caller bounds
    /// `len`; it is also checked against the file's length before anything is allocated.
    pub fn take(&mut self, len: u64, at: u64) -> Result<Option<Vec<u8>>, MkvError> {
        if len > self.remaining() {
            return Ok(None);
        }
        let Ok(n) = usize::try_from(len) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; n];
        Ok(self.fill(&mut buf, at)?.then_some(buf))
    }

    /// Moves to byte `to` of the file (past its end is allowed: the next read ends).
    pub fn seek_to(&mut self, to: u64) -> Result<(), MkvError> {
        let io = |source| MkvError::Io { at: to, source };
        match i64::try_from(i128::from(to) - i128::from(self.pos)) {
            // Within the buffer, a relative seek keeps what was read.
            Ok(delta) => self.inner.seek_relative(delta).map_err(io)?,
            Err(_) => {
                self.inner.seek(SeekFrom::Start(to)).map_err(io)?;
            }
        }
        self.pos = to;
        Ok(())
    }

    /// Looks for `pattern` from the position on, over at most `limit` bytes; leaves the
    /// position at its start when found.
    pub fn find(&mut self, pattern: &[u8], limit: u64) -> Result<Option<u64>, MkvError> {
        let start = self.pos;
        let mut window: Vec<u8> = Vec::with_capacity(BUFFER + pattern.len());
        // File offset of window[0].
        let mut base = start;
        while self.pos - start < limit {
            let want =
                usize::try_from((limit - (self.pos - start)).min(BUFFER as u64)).unwrap_or(BUFFER);
            let have = window.len();
            window.resize(have + want, 0);
            let mut got = have;
            while got < window.len() {
                match self.inner.read(&mut window[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(MkvError::Io {
                            at: self.pos,
                            source,
                        });
                    }
                }
            }
            window.truncate(got);
            self.pos += (got - have) as u64;
            if let Some(i) = memchr::memmem::find(&window, pattern) {
                self.seek_to(base + i as u64)?;
                return Ok(Some(base + i as u64));
            }
            if got == have {
                return Ok(None); // end of file
            }
            // Keep the tail: the pattern may straddle two reads.
            let keep = window.len().min(pattern.len().saturating_sub(1));
            let drop = window.len() - keep;
            window.drain(..drop);
            base += drop as u64;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn takes_only_what_the_file_holds() {
        let mut i = Input::new(Cursor::new(vec![1u8, 2, 3, 4])).unwrap();
        assert_eq!(i.take(2, 0).unwrap(), Some(vec![1, 2]));
        assert_eq!(
            i.take(u64::MAX, 2).unwrap(),
            None,
            "no allocation for a huge size"
        );
        assert_eq!(i.take(3, 2).unwrap(), None);
        assert_eq!(i.byte(2).unwrap(), Some(3));
        i.seek_to(100).unwrap();
        assert_eq!(i.byte(100).unwrap(), None);
    }

    #[test]
    fn finds_a_pattern_across_reads() {
        let mut data = vec![0u8; BUFFER * 2 + 10];
        let at = BUFFER - 2;
        data[at..at + 4].copy_from_slice(&[0x1f, 0x43, 0xb6, 0x75]);
        let mut i = Input::new(Cursor::new(data)).unwrap();
        i.seek_to(1).unwrap();
        assert_eq!(
            i.find(&[0x1f, 0x43, 0xb6, 0x75], 1 << 20).unwrap(),
            Some(at as u64)
        );
        assert_eq!(i.pos(), at as u64);
        i.seek_to(at as u64 + 1).unwrap();
        assert_eq!(i.find(&[0x1f, 0x43, 0xb6, 0x75], 1 << 20).unwrap(), None);
    }
}
