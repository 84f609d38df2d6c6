//! The bytes of an RTSP connection cut into what they carry: messages (a head of lines ending
//! in a blank line, then a `Content-Length` body) and interleaved `$` frames (RFC 2326
//! §10.12). Every piece is bounded before it is buffered: a head by [`MAX_HEAD`], a body by
//! [`MAX_BODY`] (checked as soon as its `Content-Length` is read, before any of it arrives),
//! a frame by its 16-bit length. Frames on channels the caller does not keep are dropped as
//! they arrive, never buffered whole, and counted.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use crate::source::redact::camera_text;

/// Bound on a message head (start line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Bound on a message body; an SDP is a few kilobytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Bound on a message's start line (a request line's URI included), as HTTP servers bound
/// theirs. It also bounds the work of checking a start line that arrives a byte at a time.
pub const MAX_START_LINE: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("an RTSP message head of more than {limit} bytes (no blank line within the bound)")]
    HeadTooLong { limit: usize },
    #[error("an RTSP start line of more than {limit} bytes")]
    StartLineTooLong { limit: usize },
    #[error("an RTSP message body of {length} bytes (Content-Length), over the {limit}-byte bound")]
    BodyTooLong { length: u64, limit: usize },
    #[error("an RTSP message with Content-Length {0:?}, not a number")]
    BadContentLength(String),
    #[error("bytes that are neither an RTSP message nor an interleaved frame: \"{0}\"")]
    NotRtsp(String),
}

/// One RTSP message. Header names and values are kept as sent (trimmed), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The first line without its line end: `RTSP/1.0 200 OK` or `SETUP rtsp://… RTSP/1.0`.
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces the first header called `name` (dropping any others), or adds it.
    pub fn set_header(&mut self, name: &str, value: String) {
        let mut value = Some(value);
        self.headers.retain_mut(|(n, v)| {
            if !n.eq_ignore_ascii_case(name) {
                return true;
            }
            match value.take() {
                Some(new) => {
                    *v = new;
                    true
                }
                None => false,
            }
        });
        if let Some(v) = value {
            self.headers.push((name.to_owned(), v));
        }
    }

    pub fn cseq(&self) -> Option<u32> {
        self.header("CSeq")?.trim().parse().ok()
    }

    /// `(method, URI)` of a request; `None` for a response.
    pub fn request(&self) -> Option<(&str, &str)> {
        if self.start.starts_with("RTSP/") {
            return None;
        }
        let mut parts = self.start.split(' ');
        Some((parts.next()?, parts.next()?))
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        if !self.start.starts_with("RTSP/") {
            return None;
        }
        self.start.split(' ').nth(1)?.parse().ok()
    }

    /// Appends the message as it goes on the wire, its Content-Length matching its body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.start.as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut length_written = false;
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case("Content-Length") {
                if length_written {
                    continue;
                }
                length_written = true;
                out.extend_from_slice(format!("{n}: {}\r\n", self.body.len()).as_bytes());
                continue;
            }
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !length_written && !self.body.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }
}

/// The head's text, each byte that is not part of valid UTF-8 becoming `?`, one for one:
/// U+FFFD would take three bytes, and a head passed on must stay within the bound it was read
/// under (`from_utf8_lossy` also puts one U+FFFD for a run of up to three bad bytes).
fn text_of(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        text.extend(std::iter::repeat_n('?', chunk.invalid().len()));
    }
    text
}

#[derive(Debug)]
pub enum Piece {
    Message(Message),
    /// A whole interleaved frame, its 4-byte header included.
    Frame {
        bytes: Bytes,
    },
}

/// Reassembles pieces from what is read, one connection direction each.
#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
    /// Bytes still to come of a frame being dropped.
    skip: usize,
    /// Bytes of frames dropped so far (headers included), and how many frames.
    pub dropped_bytes: u64,
    pub dropped_frames: u64,
    /// Of the message arriving at the front of `buf`: how many bytes were searched for its
    /// head's end without finding it, and how far its start line was checked. A head that
    /// arrives a byte at a time is then read in linear time, not quadratic.
    searched: usize,
    start: StartCheck,
    /// Its head, once read, while its body arrives.
    head: Option<Head>,
}

impl Framer {
    /// Where to read into; never holds more than one incomplete piece plus one read.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next whole piece, `None` when more bytes are needed. Frames on channels for which
    /// `keep` is false are dropped.
    pub fn next(&mut self, keep: impl Fn(u8) -> bool) -> Result<Option<Piece>, FrameError> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.buf.len());
                self.buf.advance(n);
                self.skip -= n;
                self.dropped_bytes += n as u64;
                if self.skip > 0 {
                    return Ok(None);
                }
            }
            let Some(&first) = self.buf.first() else {
                return Ok(None);
            };
            if first == b'$' {
                if self.buf.len() < 4 {
                    return Ok(None);
                }
                let channel = self.buf[1];
                let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if !keep(channel) {
                    self.buf.advance(4);
                    self.dropped_bytes += 4;
                    self.dropped_frames += 1;
                    self.skip = len;
                    continue;
                }
                if self.buf.len() < 4 + len {
                    return Ok(None);
                }
                let bytes = self.buf.split_to(4 + len).freeze();
                return Ok(Some(Piece::Frame { bytes }));
            }
            // Line ends between pieces (some servers send them after a frame) carry nothing.
            if first == b'\r' || first == b'\n' {
                self.buf.advance(1);
                continue;
            }
            return self.message();
        }
    }

    fn message(&mut self) -> Result<Option<Piece>, FrameError> {
        let head = match self.head.take() {
            Some(head) => head,
            None => match self.head()? {
                Some(head) => head,
                None => return Ok(None),
            },
        };
        let whole = head.len + head.body_len;
        if self.buf.len() < whole {
            // The body is still arriving; the head is not read again.
            self.head = Some(head);
            return Ok(None);
        }
        let message = Message {
            start: head.start,
            headers: head.headers,
            body: self.buf[head.len..whole].to_vec(),
        };
        self.buf.advance(whole);
        (self.searched, self.start) = (0, StartCheck::default());
        Ok(Some(Piece::Message(message)))
    }

    /// The head of the message at the front of the buffer, once it is all there.
    fn head(&mut self) -> Result<Option<Head>, FrameError> {
        let window = &self.buf[..self.buf.len().min(MAX_HEAD)];
        // A head's end spans up to three bytes, so the search resumes two bytes back.
        let Some(head_len) = head_end(window, self.searched.saturating_sub(2)) else {
            // Refuse at once what can never become a message, rather than at the head bound.
            if !self.start.whole {
                self.start.check(window)?;
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(FrameError::HeadTooLong { limit: MAX_HEAD });
            }
            self.searched = window.len();
            return Ok(None);
        };
        // The same tests as for a head still arriving, so that where reads end changes nothing.
        StartCheck::default().check(&self.buf[..head_len])?;
        let text = text_of(&self.buf[..head_len]);
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        let start = lines.next().unwrap_or_default().to_owned();
        let is_response = start.starts_with("RTSP/");
        let is_request = start.split(' ').count() == 3 && start.ends_with("RTSP/1.0");
        if !is_response && !is_request {
            return Err(FrameError::NotRtsp(camera_text(start.as_bytes(), 80)));
        }
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut body_len = 0usize;
        if let Some((_, v)) = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        {
            let length: u64 = v
                .parse()
                .map_err(|_| FrameError::BadContentLength(camera_text(v.as_bytes(), 40)))?;
            if length > MAX_BODY as u64 {
                return Err(FrameError::BodyTooLong {
                    length,
                    limit: MAX_BODY,
                });
            }
            body_len = length as usize;
        }
        Ok(Some(Head {
            len: head_len,
            start,
            headers,
            body_len,
        }))
    }
}

/// A message head read while its body arrives.
#[derive(Debug)]
struct Head {
    len: usize,
    start: String,
    headers: Vec<(String, String)>,
    body_len: usize,
}

/// The check of a message's start line as its bytes arrive, each byte looked at once.
#[derive(Debug, Default, Clone, Copy)]
struct StartCheck {
    /// Bytes at the front found printable, with no line end among them (a `\r` that may
    /// yet end the line is not counted: it is looked at again with the byte after it).
    scanned: usize,
    /// The line is whole and may start a message.
    whole: bool,
}

impl StartCheck {
    /// Checks the start line at the front of `b` (which begins with the bytes checked
    /// before): an error when it can never start a message. Looks at no more than
    /// [`MAX_START_LINE`] + 1 bytes, whatever the length of `b`.
    fn check(&mut self, b: &[u8]) -> Result<(), FrameError> {
        let probe = &b[..b.len().min(MAX_START_LINE + 1)];
        let from = self.scanned.min(probe.len());
        let end = memchr::memchr(b'\n', &probe[from..]).map(|i| from + i);
        let line = &probe[..end.unwrap_or(probe.len())];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let printable = |c: &u8| (b' '..=b'~').contains(c) || *c == b'\t';
        if !plausible_shape(line, end.is_some())
            || !line[from.min(line.len())..].iter().all(printable)
        {
            return Err(FrameError::NotRtsp(camera_text(&b[..b.len().min(40)], 80)));
        }
        self.scanned = line.len();
        self.whole = end.is_some();
        if !self.whole && probe.len() > MAX_START_LINE {
            return Err(FrameError::StartLineTooLong {
                limit: MAX_START_LINE,
            });
        }
        Ok(())
    }
}

/// Longest method name accepted in a request line (the registered ones are at most 13).
const MAX_METHOD: usize = 32;

/// Whether the front of a start line (`whole`: it ended) can begin a message: `RTSP/`, or a
/// method name (letters, digits, `_`, `-`) then a space. Decided by at most its first
/// [`MAX_METHOD`] + 1 bytes; the rest of the line need only be printable ASCII. Random bytes
/// fail within a few bytes; a first byte that merely happens to be a letter is not enough.
fn plausible_shape(line: &[u8], whole: bool) -> bool {
    const RESPONSE: &[u8] = b"RTSP/";
    let n = line.len().min(RESPONSE.len());
    if line[..n] == RESPONSE[..n] {
        return true;
    }
    let method_len = line
        .iter()
        .take(MAX_METHOD + 1)
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b'-'))
        .unwrap_or(line.len());
    if method_len == 0 || method_len > MAX_METHOD {
        return false;
    }
    match line.get(method_len) {
        None => !whole,
        Some(b' ') => true,
        Some(_) => false,
    }
}

/// Length of the head (its blank line included) if it is all in `b`: a line end followed by
/// an empty line, `\r\n` or bare `\n` alike. The search starts at `from`.
fn head_end(b: &[u8], from: usize) -> Option<usize> {
    let mut from = from.min(b.len());
    while let Some(i) = memchr::memchr(b'\n', &b[from..]).map(|i| from + i) {
        match b.get(i + 1..i + 3) {
            Some([b'\n', _]) => return Some(i + 2),
            Some([b'\r', b'\n']) => return Some(i + 3),
            None if b.get(i + 1) == Some(&b'\n') => return Some(i + 2),
            _ => from = i + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut Framer, b: &[u8]) {
        f.buffer().extend_from_slice(b);
    }

    #[test]
    fn messages_and_frames_in_pieces() {
        let mut f = Framer::default();
        let wire = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nabc$\x00\x00\x02hi$\x05\x00\x03xyzRTSP/1.0 200 OK\nCSeq: 3\n\n";
        let mut got = Vec::new();
        // Byte by byte: nothing is taken before it is whole.
        for b in wire {
            feed(&mut f, &[*b]);
            while let Some(p) = f.next(|c| c == 0).unwrap() {
                got.push(p);
            }
        }
        assert_eq!(got.len(), 3, "{got:?}");
        let Piece::Message(m) = &got[0] else { panic!() };
        assert_eq!(
            (m.status(), m.cseq(), &m.body[..]),
            (Some(200), Some(2), &b"abc"[..])
        );
        let Piece::Frame { bytes } = &got[1] else {
            panic!()
        };
        assert_eq!(&bytes[..], &b"$\x00\x00\x02hi"[..]);
        let Piece::Message(m) = &got[2] else { panic!() };
        assert_eq!(m.cseq(), Some(3));
        assert_eq!((f.dropped_frames, f.dropped_bytes), (1, 7));
    }

    #[test]
    fn bounds_are_checked_before_buffering() {
        let mut f = Framer::default();
        feed(
            &mut f,
            b"RTSP/1.0 200 OK\r\nContent-Length: 200000000\r\n\r\n",
        );
        assert_eq!(
            f.next(|_| true).unwrap_err(),
            FrameError::BodyTooLong {
                length: 200_000_000,
                limit: MAX_BODY
            }
        );
        let mut f = Framer::default();
        feed(&mut f, b"RTSP/1.0 200 OK\r\n");
        feed(&mut f, &vec![b'x'; MAX_HEAD]);
        assert_eq!(
            f.next(|_| true).unwrap_err(),
            FrameError::HeadTooLong { limit: MAX_HEAD }
        );
        let mut f = Framer::default();
        feed(&mut f, b"\x16\x03\x01garbage\r\n\r\n");
        assert!(matches!(f.next(|_| true), Err(FrameError::NotRtsp(t)) if t.starts_with("\\x16")));
    }

    /// Garbage that starts with a letter is refused within a few bytes, not at the head bound.
    #[test]
    fn garbage_is_refused_before_the_head_bound() {
        for (wire, plausible) in [
            (&b"RTSP/1.0 200 O"[..], true),
            (b"RTS", true),
            (b"GET_PARAMETER rtsp://cam/ RTSP/1.0", true),
            (b"OPTIONS", true),
            (b"OPTIONS\r", true),
            (b"OPTIONS\r\n", false),
            (b"Qx\x8f\x02", false),
            (b"RTSP/1.0 2\x0000", false),
            (b"OPTIONS rtsp://cam/\x1b[31m", false),
            (b"PLAY\trtsp://", false),
            (&[b'A'; MAX_METHOD + 1][..], false),
        ] {
            assert_eq!(
                StartCheck::default().check(wire).is_ok(),
                plausible,
                "{wire:?}"
            );
            // Arriving a byte at a time changes nothing.
            let mut check = StartCheck::default();
            let bytewise = (1..=wire.len()).all(|n| check.check(&wire[..n]).is_ok());
            assert_eq!(bytewise, plausible, "{wire:?} a byte at a time");
        }
        // A whole head is held to the same test, so where reads end changes nothing.
        let mut f = Framer::default();
        feed(&mut f, b"RTSP/1.0 200 \x01OK\r\nCSeq: 1\r\n\r\n");
        assert!(matches!(f.next(|_| true), Err(FrameError::NotRtsp(_))));
        // Random bytes, each first byte a letter, are all refused long before 64 KiB.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..300 {
            let mut f = Framer::default();
            let mut garbage = vec![b'k'];
            garbage.extend((0..MAX_HEAD).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }));
            feed(&mut f, &garbage);
            let got = f.next(|_| false);
            assert!(
                matches!(got, Err(FrameError::NotRtsp(_))),
                "{got:?} {:?}",
                &garbage[..8]
            );
        }
    }

    /// A long head read a byte at a time comes out whole; a start line past its bound is
    /// refused the same whether it arrives at once or a byte at a time.
    #[test]
    fn heads_read_a_byte_at_a_time() {
        let mut wire = b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nX-Long: ".to_vec();
        wire.extend(std::iter::repeat_n(b'a', 40_000));
        wire.extend_from_slice(b"\r\n\r\n");
        let mut f = Framer::default();
        let mut got = Vec::new();
        for b in &wire {
            feed(&mut f, &[*b]);
            while let Some(p) = f.next(|_| true).unwrap() {
                got.push(p);
            }
        }
        assert!(matches!(&got[..], [Piece::Message(m)] if m.cseq() == Some(4)));
        let mut long = b"OPTIONS rtsp://camera/".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_START_LINE));
        let too_long = FrameError::StartLineTooLong {
            limit: MAX_START_LINE,
        };
        let mut f = Framer::default();
        feed(&mut f, &long);
        assert_eq!(f.next(|_| true).unwrap_err(), too_long);
        let mut f = Framer::default();
        let refused = long.iter().find_map(|b| {
            feed(&mut f, &[*b]);
            f.next(|_| true).err()
        });
        assert_eq!(refused, Some(too_long));
    }

    /// Found by the `rtsp_camera` fuzz target: a 50 KB head of bytes that are not UTF-8 grew
    /// past the 64 KiB bound when passed on, each bad byte becoming a three-byte U+FFFD.
    #[test]
    fn a_head_that_is_not_utf8_does_not_grow() {
        let mut wire = b"RTSP/1.0 200 OK\r\nX-Junk: ".to_vec();
        wire.extend(std::iter::repeat_n(0xff_u8, MAX_HEAD - 100));
        wire.extend_from_slice(b"\r\n\r\n");
        let mut f = Framer::default();
        feed(&mut f, &wire);
        let Some(Piece::Message(m)) = f.next(|_| true).unwrap() else {
            panic!("a message")
        };
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out.len(), wire.len());
        let mut again = Framer::default();
        feed(&mut again, &out);
        assert!(matches!(again.next(|_| true), Ok(Some(Piece::Message(n))) if n == m));
    }

    /// A truncated sequence (two bytes of a three-byte character) is two `?`, and a U+FFFD the
    /// camera sent is kept as it is.
    #[test]
    fn bad_bytes_become_one_question_mark_each() {
        let mut wire = b"RTSP/1.0 200 OK\r\nServer: a".to_vec();
        wire.extend_from_slice(&[0xe2, 0x82]);
        wire.extend_from_slice("b\u{FFFD}c\r\nCSeq: 3\r\n\r\n".as_bytes());
        let mut f = Framer::default();
        feed(&mut f, &wire);
        let Some(Piece::Message(m)) = f.next(|_| true).unwrap() else {
            panic!("a message")
        };
        assert_eq!(m.header("Server"), Some("a??b\u{FFFD}c"));
        assert_eq!(m.cseq(), Some(3));
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out.len(), wire.len());
    }

    #[test]
    fn encode_keeps_the_length_true() {
        let mut m = Message {
            start: "RTSP/1.0 200 OK".into(),
            headers: vec![
                ("CSeq".into(), "1".into()),
                ("Content-Length".into(), "2".into()),
            ],
            body: b"four".to_vec(),
        };
        m.set_header("cseq", "7".into());
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(
            out,
            b"RTSP/1.0 200 OK\r\nCSeq: 7\r\nContent-Length: 4\r\n\r\nfour".to_vec()
        );
    }
}
