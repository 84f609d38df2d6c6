//! Program-specific information: the PAT (which PID holds each program's map) and the PMT
//! (which PIDs carry which streams), ISO 13818-1 §2.4.4. Sections are gathered across
//! packets and checked by their CRC before use, since a damaged PMT would pick wrong PIDs.

/// Longest PAT/PMT section: section_length is at most 1021 (§2.4.4.3, §2.4.4.8).
const MAX_SECTION: usize = 3 + 1021;

/// Gathers one section from the packets of a PID.
#[derive(Debug, Default)]
pub struct Section {
    buf: Vec<u8>,
    active: bool,
}

impl Section {
    /// Adds a packet's payload; returns a whole section when one is complete and its CRC holds.
    pub fn push(&mut self, unit_start: bool, payload: &[u8]) -> Option<Vec<u8>> {
        if unit_start {
            // pointer_field: bytes that end the previous section come first; a new one
            // starts after them.
            let pointer = usize::from(*payload.first()?);
            self.buf.clear();
            self.buf.extend_from_slice(payload.get(1 + pointer..)?);
            self.active = true;
        } else if self.active {
            self.buf.extend_from_slice(payload);
        } else {
            return None;
        }
        if self.buf.len() < 3 {
            return None;
        }
        let need = 3 + ((usize::from(self.buf[1] & 0x0f) << 8) | usize::from(self.buf[2]));
        if !(3 + 4..=MAX_SECTION).contains(&need) {
            self.active = false;
            return None;
        }
        if self.buf.len() < need {
            return None;
        }
        self.active = false;
        let section = self.buf[..need].to_vec();
        (crc32(&section) == 0).then_some(section)
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, MSB first, no final xor): over a section including
/// its CRC field the result is 0.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The PMT PID of the first program in a PAT (program 0 is the network PID, not a program).
pub fn first_program(pat: &[u8]) -> Option<u16> {
    if pat.first() != Some(&0x00) {
        return None;
    }
    let end = pat.len().checked_sub(4)?;
    pat.get(8..end)?
        .chunks_exact(4)
        .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
        .map(|e| (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]))
}

/// One elementary stream of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    pub stream_type: u8,
    pub pid: u16,
}

/// The streams a PMT lists, in its order.
pub fn program_streams(pmt: &[u8]) -> Option<Vec<Stream>> {
    if pmt.first() != Some(&0x02) {
        return None;
    }
    let end = pmt.len().checked_sub(4)?;
    let info = (usize::from(pmt.get(10)? & 0x0f) << 8) | usize::from(*pmt.get(11)?);
    let mut at = 12 + info;
    let mut out = Vec::new();
    while at + 5 <= end {
        let e = &pmt[at..at + 5];
        out.push(Stream {
            stream_type: e[0],
            pid: (u16::from(e[1] & 0x1f) << 8) | u16::from(e[2]),
        });
        at += 5 + ((usize::from(e[3] & 0x0f) << 8) | usize::from(e[4]));
    }
    Some(out)
}

/// A stream type's name for messages.
pub fn type_name(stream_type: u8) -> &'static str {
    match stream_type {
        0x01 => "MPEG-1 video",
        0x02 => "MPEG-2 video",
        0x03 | 0x04 => "MPEG audio (MP2/MP3)",
        0x06 => "private data (AC-3, Opus, subtitles…)",
        0x0f => "AAC (ADTS)",
        0x10 => "MPEG-4 part 2 video",
        0x11 => "AAC (LATM)",
        0x15 => "metadata",
        0x1b => "H.264",
        0x24 => "H.265",
        0x33 => "H.266",
        0x81 => "AC-3",
        0x87 => "E-AC-3",
        0xd1 => "Dirac",
        0xea => "VC-1",
        _ => "unknown",
    }
}

#[cfg(test)]
pub fn with_crc(mut section: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&section);
    section.extend(crc.to_be_bytes());
    section
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat() -> Vec<u8> {
        // table 0, length 13, ts id 1, version, section 0/0, program 1 → PID 0x1000.
        with_crc(vec![0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0x00])
    }

    #[test]
    fn reads_a_pat_split_over_two_packets_and_checks_the_crc() {
        let section = pat();
        let mut s = Section::default();
        let mut first = vec![0u8]; // pointer_field
        first.extend_from_slice(&section[..5]);
        assert!(s.push(true, &first).is_none());
        let whole = s.push(false, &section[5..]).unwrap();
        assert_eq!(first_program(&whole), Some(0x1000));
        let mut bad = section.clone();
        bad[9] ^= 1;
        let mut p = vec![0u8];
        p.extend(bad);
        assert!(s.push(true, &p).is_none(), "CRC mismatch ignored");
    }

    #[test]
    fn lists_pmt_streams_past_descriptors() {
        let pmt = with_crc(vec![
            0x02, 0xb0, 27, 0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0, 2, 0xaa, 0xbb, // info
            0x1b, 0xe1, 0x00, 0xf0, 0x00, // H.264 on 0x100
            0x0f, 0xe1, 0x01, 0xf0, 0x02, 0x0a, 0x00, // AAC on 0x101, one descriptor
        ]);
        let streams = program_streams(&pmt).unwrap();
        assert_eq!(
            streams,
            vec![
                Stream {
                    stream_type: 0x1b,
                    pid: 0x100
                },
                Stream {
                    stream_type: 0x0f,
                    pid: 0x101
                }
            ]
        );
    }
}
