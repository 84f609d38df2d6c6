//! Bounds on what retina gathers from one RTP stream before it hands anything on. retina
//! joins a frame's packets, and an MP4A-LATM element's, with no bound of its own: a camera
//! that never ends one would grow it without end. The link counts each stream's packets as
//! they pass (interleaved or over UDP) and gives up past these bounds.

use thiserror::Error;

/// Bound on one frame (the RTP packets of one timestamp). A 4K camera's keyframes are a few
/// MB; this leaves room for twice that, and is what a hostile camera can make retina hold.
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// Bound on one MP4A-LATM AudioMuxElement. An AAC frame is at most 768 bytes per channel.
pub const MAX_LATM_ELEMENT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BoundError {
    #[error(
        "a frame of more than {MAX_FRAME_BYTES} bytes (RTP packets of one timestamp, {size} bytes \
         so far)"
    )]
    Frame { size: usize },
    #[error("an MP4A-LATM AudioMuxElement of more than {MAX_LATM_ELEMENT} bytes (no RTP marker)")]
    LatmElement,
}

/// What one stream has in progress: the RTP timestamp of its frame and the payload bytes so
/// far (a frame ends with its marker bit, or when a packet brings another timestamp), and for
/// an MP4A-LATM stream the bytes of its element since the last marker.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamBound {
    frame: (u32, usize),
    latm: Option<usize>,
}

impl StreamBound {
    /// Also bound the stream's MP4A-LATM elements (kept if already so).
    pub fn carries_latm(&mut self) {
        self.latm.get_or_insert(0);
    }

    /// Counts one packet. Packets too short for an RTP header (and RTCP, whose second byte
    /// reads as a marker) end a frame.
    pub fn add(&mut self, rtp: &[u8]) -> Result<(), BoundError> {
        if let Some(so_far) = self.latm {
            self.latm = Some(latm_bound(rtp, so_far).ok_or(BoundError::LatmElement)?);
        }
        if rtp.len() < 12 {
            self.frame = (0, 0);
            return Ok(());
        }
        let timestamp = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
        let payload = rtp.len() - 12;
        let so_far = if self.frame.0 == timestamp {
            self.frame.1
        } else {
            0
        };
        let size = so_far + payload;
        if size > MAX_FRAME_BYTES {
            return Err(BoundError::Frame { size });
        }
        let marker = rtp[1] & 0x80 != 0;
        self.frame = (timestamp, if marker { 0 } else { size });
        Ok(())
    }
}

/// Adds one RTP packet of an MP4A-LATM stream to the element in progress: its new size (0
/// after a packet with the marker), or `None` past [`MAX_LATM_ELEMENT`].
fn latm_bound(rtp: &[u8], so_far: usize) -> Option<usize> {
    let (Some(&b0), Some(&b1)) = (rtp.first(), rtp.get(1)) else {
        return Some(so_far);
    };
    let header = 12 + 4 * usize::from(b0 & 0x0f);
    let total = so_far + rtp.len().saturating_sub(header);
    if total > MAX_LATM_ELEMENT {
        return None;
    }
    Some(if b1 & 0x80 != 0 { 0 } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ts: u32, marker: bool, payload: usize) -> Vec<u8> {
        let mut p = vec![0x80, if marker { 0xe0 } else { 0x60 }, 0, 1];
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
        p.resize(12 + payload, 0);
        p
    }

    #[test]
    fn latm_elements_are_bounded_up_to_the_marker() {
        assert_eq!(latm_bound(&packet(0, false, 1000), 0), Some(1000));
        assert_eq!(latm_bound(&packet(0, true, 1000), 1000), Some(0));
        assert_eq!(
            latm_bound(&packet(0, false, 1000), MAX_LATM_ELEMENT - 999),
            None
        );
        let mut s = StreamBound::default();
        s.carries_latm();
        let n = MAX_LATM_ELEMENT / 1000;
        for i in 0..n {
            assert_eq!(s.add(&packet(i as u32, false, 1000)), Ok(()));
        }
        assert_eq!(s.add(&packet(0, false, 1000)), Err(BoundError::LatmElement));
    }

    #[test]
    fn frames_are_bounded_per_timestamp() {
        let mut f = StreamBound::default();
        let chunk = 60_000;
        let per_frame = MAX_FRAME_BYTES / chunk;
        // A frame just under the bound, then one that ends with its marker, then another
        // timestamp: each starts again from nothing.
        for _ in 0..per_frame {
            assert!(f.add(&packet(7, false, chunk)).is_ok());
        }
        assert!(f.add(&packet(7, true, 10)).is_ok());
        for _ in 0..per_frame {
            assert!(f.add(&packet(7, false, chunk)).is_ok());
        }
        for _ in 0..per_frame {
            assert!(f.add(&packet(8, false, chunk)).is_ok());
        }
        // Another stream counts on its own.
        assert!(StreamBound::default().add(&packet(8, false, chunk)).is_ok());
        // Past the bound on one timestamp with no marker: refused.
        let over = (0..2)
            .map(|_| f.add(&packet(8, false, chunk)))
            .find(Result::is_err);
        assert_eq!(
            over,
            Some(Err(BoundError::Frame {
                size: (per_frame + 1) * chunk
            }))
        );
    }
}
