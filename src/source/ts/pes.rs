//! PES packets (ISO 13818-1 §2.4.3.6): gathered from the payloads of one PID, with their
//! 33-bit PTS/DTS extended past the wrap (every 26.5 hours) into a timeline that keeps going.

/// The largest PES (one access unit, usually) accepted: untrusted input must not make the
/// demuxer grow a buffer without end when a PES never ends.
pub const MAX_PES: usize = 16 << 20;

/// A PES being gathered: its bytes and where in the file it started (for messages).
#[derive(Debug, Default)]
pub struct Gather {
    pub buf: Vec<u8>,
    pub at: u64,
    active: bool,
}

impl Gather {
    /// Adds a payload. A unit start ends the PES in progress, handed to `out` whole, and
    /// starts the next; a PES whose header states its length is handed over as soon as it is
    /// complete.
    pub fn push(
        &mut self,
        unit_start: bool,
        payload: &[u8],
        at: u64,
        out: &mut Vec<(Vec<u8>, u64)>,
    ) -> Result<(), String> {
        if unit_start {
            if let Some(done) = self.finish() {
                out.push(done);
            }
            self.buf.clear();
            self.active = true;
            self.at = at;
        } else if !self.active {
            // The middle of a PES whose start we never saw (the file begins mid-stream).
            return Ok(());
        }
        if self.buf.len() + payload.len() > MAX_PES {
            self.active = false;
            self.buf = Vec::new();
            return Err(format!(
                "the PES starting at byte {} grows past {} MiB",
                self.at,
                MAX_PES >> 20
            ));
        }
        self.buf.extend_from_slice(payload);
        if let Some(len) = stated_len(&self.buf)
            && self.buf.len() >= len
        {
            self.buf.truncate(len);
            if let Some(done) = self.finish() {
                out.push(done);
            }
        }
        Ok(())
    }

    /// The PES in progress at the end of the stream.
    pub fn finish(&mut self) -> Option<(Vec<u8>, u64)> {
        let active = std::mem::replace(&mut self.active, false);
        (active && !self.buf.is_empty()).then(|| (std::mem::take(&mut self.buf), self.at))
    }
}

/// The PES length the header states (0 = unbounded, used by video), including the 6 bytes
/// before it.
fn stated_len(buf: &[u8]) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes([*buf.get(4)?, *buf.get(5)?]));
    (len > 0).then_some(6 + len)
}

/// A parsed PES: raw 33-bit timestamps and where the payload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub payload_at: usize,
}

pub fn header(pes: &[u8]) -> Result<Header, String> {
    if pes.len() < 9 || pes[..3] != [0, 0, 1] {
        return Err("a PES without its start code".into());
    }
    let stream_id = pes[3];
    // Streams without the optional header (padding, private_stream_2, ECM/EMM, directory…).
    if matches!(
        stream_id,
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff
    ) {
        return Ok(Header {
            pts: None,
            dts: None,
            payload_at: 6,
        });
    }
    let flags = pes[7] >> 6;
    let payload_at = 9 + usize::from(pes[8]);
    if payload_at > pes.len() {
        return Err(format!(
            "PES header of {payload_at} bytes in a {}-byte PES",
            pes.len()
        ));
    }
    let ts = |at: usize| -> Result<u64, String> {
        let b = pes
            .get(at..at + 5)
            .filter(|_| at + 5 <= payload_at)
            .ok_or("PES timestamps past its header")?;
        Ok((u64::from(b[0] >> 1 & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1))
    };
    let (pts, dts) = match flags {
        0b10 => (Some(ts(9)?), None),
        0b11 => (Some(ts(9)?), Some(ts(14)?)),
        _ => (None, None),
    };
    Ok(Header {
        pts,
        dts,
        payload_at,
    })
}

/// 33-bit timestamps made continuous: each is placed within ±2^32 ticks of the one before,
/// so a wrap (or a B-frame's PTS on the other side of one) keeps counting up.
#[derive(Debug, Default, Clone)]
pub struct Unwrap {
    last: Option<i64>,
}

const WRAP: i64 = 1 << 33;

impl Unwrap {
    pub fn unwrap(&mut self, raw: u64) -> i64 {
        let raw = (raw & (WRAP as u64 - 1)) as i64;
        let v = match self.last {
            None => raw,
            Some(last) => {
                let d = (raw - last).rem_euclid(WRAP);
                last + if d >= WRAP / 2 { d - WRAP } else { d }
            }
        };
        self.last = Some(v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts_bytes(prefix: u8, t: u64) -> [u8; 5] {
        [
            (prefix << 4) | ((t >> 29) as u8 & 0x0e) | 1,
            (t >> 22) as u8,
            ((t >> 14) as u8 & 0xfe) | 1,
            (t >> 7) as u8,
            ((t << 1) as u8) | 1,
        ]
    }

    #[test]
    fn reads_pts_and_dts() {
        let mut pes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
        pes.extend(ts_bytes(3, (1 << 33) - 5));
        pes.extend(ts_bytes(1, 126_000));
        pes.extend(b"data");
        let h = header(&pes).unwrap();
        assert_eq!(h.pts, Some((1 << 33) - 5));
        assert_eq!(h.dts, Some(126_000));
        assert_eq!(&pes[h.payload_at..], b"data");
        pes[8] = 200;
        assert!(header(&pes).is_err());
    }

    #[test]
    fn unwraps_across_the_33_bit_wrap_both_ways() {
        let mut u = Unwrap::default();
        assert_eq!(u.unwrap((1 << 33) - 3000), (1 << 33) - 3000);
        assert_eq!(u.unwrap(600), (1 << 33) + 600);
        // A B-frame's timestamp just before the wrap stays before it.
        assert_eq!(u.unwrap((1 << 33) - 100), (1 << 33) - 100);
        assert_eq!(u.unwrap(4200), (1 << 33) + 4200);
    }

    #[test]
    fn gathers_bounded_and_unbounded_pes() {
        let mut g = Gather::default();
        let mut out = Vec::new();
        // Unbounded (length 0): ends at the next unit start.
        g.push(true, &[0, 0, 1, 0xe0, 0, 0, 1, 2], 0, &mut out)
            .unwrap();
        g.push(false, &[3, 4], 188, &mut out).unwrap();
        assert!(out.is_empty());
        g.push(true, &[0, 0, 1, 0xc0, 0, 3, 7, 8], 376, &mut out)
            .unwrap();
        assert_eq!((out[0].0.len(), out[0].1), (10, 0));
        // Bounded: complete after one more byte.
        g.push(false, &[9, 99], 564, &mut out).unwrap();
        assert_eq!(out[1], (vec![0, 0, 1, 0xc0, 0, 3, 7, 8, 9], 376));
        // A bounded PES complete in its first packet, right after an unbounded one ended.
        g.push(true, &[0, 0, 1, 0xe0, 0, 0, 5], 752, &mut out)
            .unwrap();
        g.push(true, &[0, 0, 1, 0xc0, 0, 1, 6], 940, &mut out)
            .unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[3], (vec![0, 0, 1, 0xc0, 0, 1, 6], 940));
        assert!(g.finish().is_none());
    }

    #[test]
    fn a_pes_that_never_ends_is_refused() {
        let mut g = Gather::default();
        let mut out = Vec::new();
        g.push(true, &[0, 0, 1, 0xe0, 0, 0], 0, &mut out).unwrap();
        let chunk = vec![0u8; 184];
        let mut failed = None;
        for k in 0..(MAX_PES / 184 + 2) {
            if let Err(e) = g.push(false, &chunk, k as u64 * 188, &mut out) {
                failed = Some(e);
                break;
            }
        }
        assert!(failed.unwrap().contains("16 MiB"));
    }
}
