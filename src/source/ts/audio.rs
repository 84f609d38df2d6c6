//! AAC in ADTS (stream type 0x0F): each PES holds one or more ADTS frames. Headers are
//! removed (an MP4 sample is the raw access unit), the AudioSpecificConfig for `esds` is
//! derived from them, and each frame is timed in samples: 1024 per frame at the ADTS rate,
//! anchored on the PES PTS (90 kHz) converted exactly, so no rounding drift builds up.

use bytes::Bytes;

use crate::source::TrackParams;

/// Samples per AAC frame (AAC LC, the profile ADTS carries in practice).
pub const FRAME: i64 = 1024;

/// sampling_frequency_index → Hz (ISO 14496-3 table 1.18).
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// What the ADTS header says about the stream: enough for an AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// audioObjectType (ADTS profile + 1).
    pub object_type: u8,
    pub rate_index: u8,
    pub channels: u8,
}

impl Config {
    pub fn rate(self) -> u32 {
        RATES
            .get(usize::from(self.rate_index))
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Header {
    config: Config,
    header_len: usize,
    frame_len: usize,
}

/// Reads an ADTS header at the start of `b`; `Ok(None)` when there is no sync word there.
fn header(b: &[u8]) -> Result<Option<Header>, String> {
    if b.len() < 7 || b[0] != 0xff || b[1] & 0xf6 != 0xf0 {
        return Ok(None);
    }
    let config = Config {
        object_type: (b[2] >> 6) + 1,
        rate_index: (b[2] >> 2) & 0x0f,
        channels: ((b[2] & 0x01) << 2) | (b[3] >> 6),
    };
    let header_len = if b[1] & 0x01 == 1 { 7 } else { 9 };
    let frame_len =
        (usize::from(b[3] & 0x03) << 11) | (usize::from(b[4]) << 3) | usize::from(b[5] >> 5);
    if config.rate() == 0 {
        return Err(format!(
            "ADTS sampling frequency index {}",
            config.rate_index
        ));
    }
    if config.channels == 0 {
        return Err("ADTS channel configuration 0 (channels set in the stream)".into());
    }
    if b[6] & 0x03 != 0 {
        return Err(format!(
            "an ADTS frame with {} raw data blocks",
            (b[6] & 0x03) + 1
        ));
    }
    if frame_len <= header_len {
        return Err(format!("an ADTS frame length of {frame_len}"));
    }
    Ok(Some(Header {
        config,
        header_len,
        frame_len,
    }))
}

/// One raw AAC access unit in sample ticks.
#[derive(Debug)]
pub struct AudioFrame {
    pub ts: i64,
    pub data: Bytes,
}

#[derive(Debug, Default)]
pub struct Audio {
    config: Option<Config>,
    /// The config changed since the params were last built.
    changed: bool,
    /// Where the next frame is expected, in samples: frames follow each other exactly unless
    /// a PES timestamp says there is a gap.
    next: Option<i64>,
    /// Bytes of a frame that continues in the next PES.
    carry: Vec<u8>,
    /// The PTS of the PES the carried frame started in.
    carry_pts: Option<i64>,
    pub skipped: u64,
}

impl Audio {
    /// Splits a PES payload into frames. `pts` is the PES PTS (90 kHz, unwrapped), which
    /// belongs to the first frame that starts in this PES.
    pub fn pes(
        &mut self,
        payload: &[u8],
        pts: Option<i64>,
        out: &mut Vec<AudioFrame>,
    ) -> Result<(), String> {
        let carried = self.carry.len();
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(payload);
        let mut at = 0usize;
        // Each PTS belongs to the first frame that starts in its PES: the carried frame
        // started in the previous one.
        let mut carry_pts = self.carry_pts.take();
        let mut pes_pts = pts;
        let mut problem = None;
        while at < data.len() {
            let h = match header(&data[at..]) {
                Ok(Some(h)) => h,
                Ok(None) | Err(_) if at + 7 > data.len() => {
                    // A header cut by the PES end: it continues in the next one.
                    break;
                }
                Ok(None) => {
                    // Lost sync: skip to the next sync word.
                    let skip = data[at + 1..]
                        .iter()
                        .position(|&b| b == 0xff)
                        .map_or(data.len() - at, |p| p + 1);
                    self.skipped += skip as u64;
                    at += skip;
                    continue;
                }
                Err(e) => {
                    problem.get_or_insert(e);
                    self.skipped += 1;
                    at += 1;
                    continue;
                }
            };
            if at + h.frame_len > data.len() {
                break;
            }
            let rate = i64::from(h.config.rate());
            if self.config != Some(h.config) {
                self.config = Some(h.config);
                self.changed = true;
                self.next = None;
            }
            let anchor = if at < carried {
                carry_pts.take()
            } else {
                pes_pts.take()
            };
            {
                if let Some(p) = anchor {
                    // 90 kHz → samples, rounded to nearest, in integers.
                    let t = i64::try_from((i128::from(p) * i128::from(rate) + 45_000) / 90_000)
                        .unwrap_or(i64::MAX);
                    // Keep the exact 1024-sample cadence unless the PTS is off by half a
                    // frame or more: then there is a gap (or overlap) to honour.
                    if self.next.is_none_or(|n| (t - n).abs() >= FRAME / 2) {
                        self.next = Some(t);
                    }
                }
            }
            if let Some(ts) = self.next {
                out.push(AudioFrame {
                    ts,
                    data: Bytes::copy_from_slice(&data[at + h.header_len..at + h.frame_len]),
                });
                self.next = Some(ts + FRAME);
            }
            at += h.frame_len;
        }
        // An unfinished frame waits for the next PES, within reason (an ADTS frame is under
        // 8 KiB).
        if at < data.len() && data.len() - at < 8192 {
            self.carry = data[at..].to_vec();
            self.carry_pts = if at < carried { carry_pts } else { pes_pts };
        }
        problem.map_or(Ok(()), Err)
    }

    /// New track parameters when the stream's config changed.
    pub fn take_params(&mut self) -> Option<Result<TrackParams, String>> {
        let c = self.config.filter(|_| self.changed)?;
        self.changed = false;
        Some(build(c))
    }
}

fn build(c: Config) -> Result<TrackParams, String> {
    // AudioSpecificConfig: audioObjectType(5) samplingFrequencyIndex(4) channelConfiguration(4)
    // and three zero bits (GASpecificConfig of a plain AAC stream).
    let asc = (u16::from(c.object_type) << 11)
        | (u16::from(c.rate_index) << 7)
        | (u16::from(c.channels) << 3);
    crate::source::aac::aac_params(&asc.to_be_bytes(), c.rate(), u16::from(c.channels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::Codec;

    /// An ADTS frame (AAC LC, 48 kHz, stereo) around `payload`.
    pub fn adts(payload: &[u8]) -> Vec<u8> {
        let len = payload.len() + 7;
        let mut h = vec![
            0xff,
            0xf1,
            0x4c, // LC, index 3 (48 kHz), channels high bit 0
            0x80 | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            ((len as u8 & 0x07) << 5) | 0x1f,
            0xfc,
        ];
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn frames_follow_each_other_by_1024_samples() {
        let mut a = Audio::default();
        let mut out = Vec::new();
        let pes = [adts(b"one"), adts(b"two")].concat();
        // 1.4 s at 90 kHz = 67200 samples at 48 kHz.
        a.pes(&pes, Some(126_000), &mut out).unwrap();
        // The next PES's PTS is rounded (1024 samples = 1920 ticks exactly here; at 44.1 kHz
        // it would not be): a PTS off by a tick keeps the cadence.
        a.pes(&adts(b"three"), Some(126_000 + 2 * 1920 + 1), &mut out)
            .unwrap();
        let ts: Vec<i64> = out.iter().map(|f| f.ts).collect();
        assert_eq!(ts, vec![67_200, 68_224, 69_248]);
        assert_eq!(&out[1].data[..], b"two");
        let p = a.take_params().unwrap().unwrap();
        assert_eq!((p.timescale, p.codec), (48_000, Codec::Aac));
        assert!(a.take_params().is_none());
        // A gap of a second is kept.
        a.pes(&adts(b"four"), Some(126_000 + 90_000), &mut out)
            .unwrap();
        assert_eq!(out[3].ts, 67_200 + 48_000);
    }

    #[test]
    fn a_frame_split_across_pes_is_joined_and_garbage_skipped() {
        let mut a = Audio::default();
        let mut out = Vec::new();
        let f = adts(b"split frame");
        let mut first = b"junk".to_vec();
        first.extend_from_slice(&f[..9]);
        a.pes(&first, Some(0), &mut out).unwrap();
        assert!(out.is_empty());
        a.pes(
            &[&f[9..], &adts(b"next")[..]].concat(),
            Some(1920),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].data[..], b"split frame");
        assert_eq!((out[0].ts, out[1].ts), (0, 1024));
        assert_eq!(a.skipped, 4);
    }
}
