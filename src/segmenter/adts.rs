//! ADTS → raw AAC: some sources (MPEG-TS, a few cameras) wrap each AAC access unit in an ADTS
//! header, which an MP4 sample must not carry (Home Assistant's `aac_adtstoasc` step).

/// If `data` starts with an ADTS header, returns the raw access unit after it.
/// `Err` when it is ADTS but not something one MP4 sample can hold.
pub fn strip_adts(data: &[u8]) -> Result<Option<&[u8]>, String> {
    if data.len() < 7 || data[0] != 0xff || data[1] & 0xf6 != 0xf0 {
        return Ok(None);
    }
    let protection_absent = data[1] & 1 == 1;
    let frame_len = (usize::from(data[3] & 0x03) << 11)
        | (usize::from(data[4]) << 3)
        | usize::from(data[5] >> 5);
    let blocks = usize::from(data[6] & 0x03) + 1;
    let header = if protection_absent { 7 } else { 9 };
    if blocks != 1 {
        return Err(format!("ADTS frame with {blocks} raw data blocks"));
    }
    if frame_len < header || frame_len > data.len() {
        return Err(format!(
            "ADTS frame length {frame_len} does not fit the {}-byte frame",
            data.len()
        ));
    }
    Ok(Some(&data[header..frame_len]))
}

#[cfg(test)]
mod tests {
    use super::strip_adts;

    fn adts(payload: &[u8], crc: bool) -> Vec<u8> {
        let len = payload.len() + if crc { 9 } else { 7 };
        let mut h = vec![
            0xff,
            0xf0 | u8::from(!crc),
            0x50, // AAC LC, 48 kHz
            0x80 | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            ((len as u8 & 0x07) << 5) | 0x1f,
            0xfc,
        ];
        if crc {
            h.extend([0, 0]);
        }
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn strips_headers_with_and_without_crc() {
        assert_eq!(
            strip_adts(&adts(b"hello", false)).unwrap(),
            Some(&b"hello"[..])
        );
        assert_eq!(
            strip_adts(&adts(b"hello", true)).unwrap(),
            Some(&b"hello"[..])
        );
    }

    #[test]
    fn leaves_raw_aac_alone_and_refuses_bad_lengths() {
        assert_eq!(strip_adts(b"\x21\x10\x05raw").unwrap(), None);
        let mut bad = adts(b"hello", false);
        bad.truncate(9);
        assert!(strip_adts(&bad).is_err());
    }
}
