//! Transport stream packets (ISO 13818-1 §2.4.3): the 4-byte header and the adaptation
//! field, which is skipped — only the payload and the flags the demuxer needs are kept.

/// Every TS packet is 188 bytes from its sync byte; M2TS puts a 4-byte timestamp before each.
pub const SIZE: usize = 188;
pub const SYNC: u8 = 0x47;

/// The PID of null (stuffing) packets.
const NULL_PID: u16 = 0x1fff;

#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub pid: u16,
    /// payload_unit_start_indicator: a PES or a section starts in this payload.
    pub unit_start: bool,
    pub continuity: u8,
    pub has_payload: bool,
    /// The adaptation field says the continuity counter may jump here (a splice).
    pub discontinuity: bool,
    pub payload: &'a [u8],
}

/// Splits a packet (starting at its sync byte). `Ok(None)` for packets carrying nothing to
/// demux: null packets and those the sender marked as damaged (transport_error_indicator).
pub fn parse(p: &[u8; SIZE]) -> Result<Option<Packet<'_>>, String> {
    let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    if p[1] & 0x80 != 0 || pid == NULL_PID {
        return Ok(None);
    }
    let control = (p[3] >> 4) & 0x03;
    if control == 0 {
        // Reserved: "the decoder shall discard" such packets.
        return Ok(None);
    }
    let mut at = 4;
    let mut discontinuity = false;
    if control & 0x02 != 0 {
        let len = usize::from(p[4]);
        if 5 + len > SIZE {
            return Err(format!(
                "adaptation field of {len} bytes runs past the packet (PID {pid:#x})"
            ));
        }
        discontinuity = len > 0 && p[5] & 0x80 != 0;
        at = 5 + len;
    }
    let has_payload = control & 0x01 != 0;
    Ok(Some(Packet {
        pid,
        unit_start: p[1] & 0x40 != 0,
        continuity: p[3] & 0x0f,
        has_payload,
        discontinuity,
        payload: if has_payload { &p[at..] } else { &[] },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_header_adaptation_field_and_payload() {
        let mut p = [0xffu8; SIZE];
        p[..4].copy_from_slice(&[SYNC, 0x41, 0x00, 0x37]); // PUSI, PID 0x100, AF + payload, CC 7
        p[4] = 7; // adaptation field length
        p[5] = 0x80; // discontinuity
        let k = parse(&p).unwrap().unwrap();
        assert_eq!((k.pid, k.unit_start, k.continuity), (0x100, true, 7));
        assert!(k.discontinuity && k.has_payload);
        assert_eq!(k.payload.len(), SIZE - 12);
    }

    #[test]
    fn refuses_an_adaptation_field_past_the_end_and_skips_damaged_packets() {
        let mut p = [0u8; SIZE];
        p[..5].copy_from_slice(&[SYNC, 0x01, 0x00, 0x30, 200]);
        assert!(parse(&p).is_err());
        p[1] = 0x81; // transport_error_indicator
        assert!(parse(&p).unwrap().is_none());
    }
}
