//! A Block or SimpleBlock body (RFC 9559 §10): the track number, a 16-bit timestamp relative
//! to the Cluster's, flags, and one frame or several laced together. Lacing packs frames of
//! one track in one block with their sizes up front, written one of three ways: Xiph (runs
//! of 255), EBML (a size, then signed differences) or fixed (equal sizes).

use std::ops::Range;

use super::ebml::vint;
use super::error::MkvError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub track: u64,
    /// Relative to the Cluster's timestamp, in TimestampScale ticks; may be negative.
    pub timestamp: i16,
    /// SimpleBlock's keyframe flag (a Block's is decided by its BlockGroup).
    pub keyframe: bool,
    /// Each frame's bytes within the block body, in order.
    pub frames: Vec<Range<usize>>,
}

/// Reads a block body found at byte `at` of the file.
pub fn parse(b: &[u8], at: u64) -> Result<Block, MkvError> {
    let bad = |problem: &str| MkvError::invalid(at, format!("block: {problem}"));
    let (n, track) = vint(b).ok_or_else(|| bad("no track number"))?;
    let head = b
        .get(n..n + 3)
        .ok_or_else(|| bad("cut off in its header"))?;
    let timestamp = i16::from_be_bytes([head[0], head[1]]);
    let flags = head[2];
    let mut pos = n + 3;
    let frames = match (flags >> 1) & 0x03 {
        0 => std::iter::once(pos..b.len()).collect(),
        lacing => {
            let count = usize::from(*b.get(pos).ok_or_else(|| bad("no lace count"))?) + 1;
            pos += 1;
            let mut sizes = Vec::with_capacity(count);
            match lacing {
                // Xiph: each size but the last as 255s and a final byte below 255.
                1 => {
                    for _ in 1..count {
                        let mut size = 0usize;
                        loop {
                            let byte = *b.get(pos).ok_or_else(|| bad("lace sizes cut off"))?;
                            pos += 1;
                            size += usize::from(byte);
                            if byte != 255 {
                                break;
                            }
                        }
                        sizes.push(size);
                    }
                }
                // EBML: the first size, then each next as a signed difference.
                3 => {
                    let (len, first) = vint(b.get(pos..).unwrap_or_default())
                        .ok_or_else(|| bad("lace sizes cut off"))?;
                    pos += len;
                    let mut size = i128::from(first);
                    if count > 1 {
                        sizes.push(to_size(size).ok_or_else(|| bad("a lace size out of range"))?);
                    }
                    for _ in 2..count {
                        let (len, raw) = vint(b.get(pos..).unwrap_or_default())
                            .ok_or_else(|| bad("lace sizes cut off"))?;
                        pos += len;
                        // Signed: the unsigned value less half the range (RFC 9559 §10.4.4).
                        let bias = (1i128 << (7 * len - 1)) - 1;
                        size += i128::from(raw) - bias;
                        sizes.push(to_size(size).ok_or_else(|| bad("a lace size out of range"))?);
                    }
                }
                // Fixed: the rest split evenly.
                _ => {
                    let rest = b.len().saturating_sub(pos);
                    if !rest.is_multiple_of(count) {
                        return Err(bad(&format!(
                            "{rest} bytes do not split into {count} equal frames"
                        )));
                    }
                    sizes.extend(std::iter::repeat_n(rest / count, count - 1));
                }
            }
            let mut frames = Vec::with_capacity(count);
            for size in sizes {
                let end = pos
                    .checked_add(size)
                    .filter(|&e| e <= b.len())
                    .ok_or_else(|| bad("laced frames run past the block"))?;
                frames.push(pos..end);
                pos = end;
            }
            if pos > b.len() {
                return Err(bad("laced frames run past the block"));
            }
            frames.push(pos..b.len());
            frames
        }
    };
    Ok(Block {
        track,
        timestamp,
        keyframe: flags & 0x80 != 0,
        frames,
    })
}

fn to_size(v: i128) -> Option<usize> {
    usize::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames<'a>(b: &'a [u8], block: &Block) -> Vec<&'a [u8]> {
        block.frames.iter().map(|r| &b[r.clone()]).collect()
    }

    #[test]
    fn reads_a_plain_block() {
        let b = b"\x81\xff\xfe\x80data";
        let k = parse(b, 0).unwrap();
        assert_eq!((k.track, k.timestamp, k.keyframe), (1, -2, true));
        assert_eq!(frames(b, &k), vec![&b"data"[..]]);
    }

    #[test]
    fn reads_the_three_lacings() {
        // Xiph: 3 frames of 2, 256 and 1 bytes.
        let mut x = vec![0x82, 0, 0, 0x02, 2, 2, 255, 1];
        x.extend([b'a'; 2]);
        x.extend([b'b'; 256]);
        x.push(b'c');
        let k = parse(&x, 0).unwrap();
        let f = frames(&x, &k);
        assert_eq!(
            (f.len(), f[0].len(), f[1].len(), f[2]),
            (3, 2, 256, &b"c"[..])
        );
        // EBML: sizes 3, then 3 - 1 = 2, last the rest (1).
        let e = b"\x81\0\0\x06\x02\x83\x5f\xfeaaabbc";
        let k = parse(e, 0).unwrap();
        assert_eq!(frames(e, &k), vec![&b"aaa"[..], b"bb", b"c"]);
        // Fixed: 2 frames of 2.
        let f = b"\x81\0\0\x04\x01aabb";
        assert_eq!(frames(f, &parse(f, 0).unwrap()), vec![&b"aa"[..], b"bb"]);
    }

    #[test]
    fn refuses_laces_that_do_not_fit() {
        assert!(
            parse(b"\x81\0\0\x02\x01\xff\xff\xff", 0).is_err(),
            "Xiph sizes cut off"
        );
        assert!(
            parse(b"\x81\0\0\x02\x01\x10abc", 0).is_err(),
            "Xiph size past the end"
        );
        assert!(parse(b"\x81\0\0\x04\x01abc", 0).is_err(), "fixed, uneven");
        assert!(
            parse(b"\x81\0\0\x06\x02\x83\x80abc", 0).is_err(),
            "EBML size below 0"
        );
        assert!(parse(b"\x81\0", 0).is_err(), "header cut off");
        assert!(parse(b"", 0).is_err());
    }
}
