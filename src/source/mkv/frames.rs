//! From blocks to the source's events, for the tracks [`codecs`](super::codecs) chose.
//!
//! Timing. Matroska blocks carry presentation times (RFC 9559 §10.1); the rest of the
//! pipeline wants decode times, as an MPEG-TS file has them. Blocks are stored in decode
//! order, so video decode times are derived the way they are for RTSP cameras
//! ([`Reorder`]): the n-th decode time is the n-th smallest presentation time, less the
//! reorder delay. Audio frames are placed on their sample clock ([`Cadence`]). Cluster
//! timestamps plus the signed block offsets may go below zero; they are kept as they are.
//!
//! [`Cadence`]: crate::source::aac::Cadence

use std::time::Instant;

use bytes::Bytes;

use crate::source::reorder::Reorder;
use crate::source::{Frame, SourceEvent, TrackParams};

use super::block::Block;
use super::codecs::{AudioCoding, AudioTrack, Selection, VideoTrack};
use super::error::MkvError;
use super::tracks::DocType;

/// Block times beyond ±100 years (in ns) are damage.
const MAX_NANOS: i128 = 100 * 366 * 86_400 * 1_000_000_000;

/// Audio frames held at most while the first video frames wait for their decode times (the
/// reorder window is 8 frames, a third of a second).
const MAX_EARLY_AUDIO: usize = 256;

/// PCM blocks are cut into FLAC frames of at most this many samples per channel (a FLAC
/// frame holds up to 65535; a camera packet is a few hundred).
const PCM_FRAME: usize = 4096;

#[derive(Debug)]
pub struct Frames {
    doc: DocType,
    selection: Selection,
    /// The video params last built (from CodecPrivate or in band).
    video_params: Option<TrackParams>,
    /// The params last sent; frames wait for the first.
    announced: Option<Vec<TrackParams>>,
    reorder: Reorder,
    /// Audio frames read while the first video frames wait in `reorder` for their decode
    /// times: sent on ahead, they would reach the segmenter before any picture, which drops
    /// them, and the audio of the stream's first seconds would be lost.
    early_audio: Vec<Frame>,
    /// A video frame has left `reorder`.
    video_out: bool,
    /// Frames dropped because their time went back past one already placed, and because
    /// their data (or time) was broken.
    pub out_of_order: u64,
    pub broken: u64,
    /// Said once each by the caller: warnings, and damage at one place (which the caller
    /// counts and stops naming past a few).
    pub warnings: Vec<String>,
    pub damage: Vec<String>,
}

impl Frames {
    /// Frames of the chosen tracks; the params go out at once when the video's parameter
    /// sets are in its CodecPrivate (otherwise with the first in band).
    pub fn new(
        doc: DocType,
        mut selection: Selection,
        out: &mut Vec<SourceEvent>,
    ) -> Result<Frames, MkvError> {
        let warnings = std::mem::take(&mut selection.warnings);
        let mut f = Frames {
            doc,
            selection,
            video_params: None,
            announced: None,
            reorder: Reorder::default(),
            early_audio: Vec::new(),
            video_out: false,
            out_of_order: 0,
            broken: 0,
            warnings,
            damage: Vec::new(),
        };
        f.new_video_params(out)?;
        Ok(f)
    }

    /// True once the first params went out.
    pub fn started(&self) -> bool {
        self.announced.is_some()
    }

    pub fn video(&self) -> &VideoTrack {
        &self.selection.video
    }

    /// Sends the params when they changed (a new SPS in band), after the video frames made
    /// under the old ones.
    fn new_video_params(&mut self, out: &mut Vec<SourceEvent>) -> Result<(), MkvError> {
        let s = &mut self.selection;
        match s.video.video.take_params() {
            None => return Ok(()),
            Some(Ok(p)) => self.video_params = Some(p),
            Some(Err(e)) if self.video_params.is_none() => {
                return Err(MkvError::Unsupported(format!(
                    "{} whose {} video (track {}) cannot be read: {e}",
                    self.doc.describe(),
                    s.video.codec,
                    s.video.number
                )));
            }
            Some(Err(e)) => {
                self.warnings.push(format!(
                    "new parameter sets not understood ({e}); kept the old"
                ));
                return Ok(());
            }
        }
        let Some(video) = self.video_params.clone() else {
            return Ok(());
        };
        let mut params = vec![video];
        params.extend(s.audio.as_ref().map(|a| a.params.clone()));
        if self.announced.as_ref() != Some(&params) {
            if self.announced.is_some() {
                let held = self.reorder.flush();
                self.send_video(held, out);
            }
            self.announced = Some(params.clone());
            out.push(SourceEvent::Params(params));
        }
        Ok(())
    }

    /// Takes one block, `ns` its time in nanoseconds; blocks of other tracks are passed
    /// over.
    pub fn block(
        &mut self,
        data: &Bytes,
        b: &Block,
        keyframe: bool,
        ns: i128,
        at: u64,
        out: &mut Vec<SourceEvent>,
    ) -> Result<(), MkvError> {
        let s = &self.selection;
        let is_video = b.track == s.video.number;
        let is_audio = s.audio.as_ref().is_some_and(|a| a.number == b.track);
        if !is_video && !is_audio {
            return Ok(());
        }
        // Times past what any recording reaches are damage, kept away from the arithmetic
        // of decode-time derivation and pacing.
        if ns.abs() > MAX_NANOS {
            self.broken += 1;
            self.damage.push(format!(
                "block at byte {at}: a timestamp of {ns} ns; dropped"
            ));
            return Ok(());
        }
        if is_video {
            self.video_block(data, b, ns, keyframe, at, out)
        } else {
            self.audio_block(data, b, ns, at, out);
            Ok(())
        }
    }

    fn video_block(
        &mut self,
        data: &Bytes,
        b: &Block,
        ns: i128,
        keyframe: bool,
        at: u64,
        out: &mut Vec<SourceEvent>,
    ) -> Result<(), MkvError> {
        for (i, range) in b.frames.iter().enumerate() {
            let v: &mut VideoTrack = &mut self.selection.video;
            // Laced frames after the first have no timestamp of their own.
            let ns = match (i, v.default_duration) {
                (0, _) => ns,
                (_, Some(d)) => ns.saturating_add(i128::from(d).saturating_mul(i as i128)),
                (_, None) => {
                    self.broken += 1;
                    self.damage.push(format!(
                        "block at byte {at}: laced video frames without a DefaultDuration; all but the first dropped"
                    ));
                    break;
                }
            };
            let frame = unstrip(&v.strip, &data[range.clone()]);
            let Some(nals) = length_prefixed(&frame, v.nal_length) else {
                self.broken += 1;
                self.damage.push(format!(
                    "video block at byte {at}: a NAL unit runs past the frame; dropped"
                ));
                continue;
            };
            let Some(au) = v.video.access_unit(nals.into_iter(), frame.len()) else {
                continue;
            };
            self.new_video_params(out)?;
            if self.announced.is_none() {
                continue; // nothing decodable before the first SPS/PPS
            }
            let pts = ticks(ns, crate::source::video::TIMESCALE);
            if !self.reorder.accepts(pts) {
                self.out_of_order += 1;
                continue;
            }
            let frame = Frame {
                track: 0,
                pts: Some(pts),
                dts: None,
                duration: None,
                keyframe,
                data: au.data,
                received: Instant::now(),
            };
            let ready = self.reorder.push(frame);
            self.send_video(ready, out);
        }
        Ok(())
    }

    /// Video frames whose decode times are known, then the audio held for them.
    fn send_video(&mut self, frames: Vec<Frame>, out: &mut Vec<SourceEvent>) {
        if frames.is_empty() {
            return;
        }
        self.video_out = true;
        out.extend(frames.into_iter().map(SourceEvent::Frame));
        out.extend(self.early_audio.drain(..).map(SourceEvent::Frame));
    }

    /// Audio frames, held until the first video frame goes (see `early_audio`) — a few
    /// frames' worth, unless the video never comes.
    fn send_audio(&mut self, frames: Vec<Frame>, out: &mut Vec<SourceEvent>) {
        if self.video_out || self.early_audio.len() > MAX_EARLY_AUDIO {
            out.extend(self.early_audio.drain(..).map(SourceEvent::Frame));
            out.extend(frames.into_iter().map(SourceEvent::Frame));
        } else {
            self.early_audio.extend(frames);
        }
    }

    fn audio_block(
        &mut self,
        data: &Bytes,
        b: &Block,
        ns: i128,
        at: u64,
        out: &mut Vec<SourceEvent>,
    ) {
        let with_audio = self.announced.as_ref().is_some_and(|p| p.len() > 1);
        let Some(a) = self.selection.audio.as_mut() else {
            return;
        };
        if !with_audio {
            return;
        }
        let rate = a.params.timescale;
        // The block's time anchors its first frame; laced frames follow on the sample clock.
        let mut anchor = Some(ticks(ns, rate));
        let mut frames = Vec::new();
        for range in &b.frames {
            let frame = unstrip(&a.strip, &data[range.clone()]);
            match audio_frames(a, &frame, &mut anchor) {
                Ok(f) => frames.extend(f),
                Err(e) => {
                    self.broken += 1;
                    self.damage
                        .push(format!("audio block at byte {at}: {e}; dropped"));
                }
            }
        }
        self.send_audio(frames, out);
    }

    /// The end of the media: frames held for their decode times go out.
    pub fn finish(&mut self, out: &mut Vec<SourceEvent>) {
        let held = self.reorder.flush();
        self.send_video(held, out);
        out.extend(self.early_audio.drain(..).map(SourceEvent::Frame));
        if self.out_of_order + self.broken > 0 {
            self.warnings.push(format!(
                "{} frames dropped out of order, {} broken",
                self.out_of_order, self.broken
            ));
        }
    }
}

/// A frame with the bytes header stripping removed put back (no copy when there are none).
fn unstrip(strip: &[u8], frame: &[u8]) -> Bytes {
    if strip.is_empty() {
        return Bytes::copy_from_slice(frame);
    }
    let mut v = Vec::with_capacity(strip.len() + frame.len());
    v.extend_from_slice(strip);
    v.extend_from_slice(frame);
    Bytes::from(v)
}

/// The NAL units of a frame whose units are each preceded by a `len`-byte big-endian length;
/// `None` when one runs past the end.
fn length_prefixed(frame: &[u8], len: usize) -> Option<Vec<&[u8]>> {
    let mut nals = Vec::new();
    let mut pos = 0;
    while pos < frame.len() {
        let size = frame
            .get(pos..pos + len)?
            .iter()
            .fold(0usize, |v, &b| (v << 8) | usize::from(b));
        pos += len;
        nals.push(frame.get(pos..pos.checked_add(size)?)?);
        pos += size;
    }
    Some(nals)
}

/// Nanoseconds to ticks of a `timescale` clock, rounded to nearest.
fn ticks(ns: i128, timescale: u32) -> i64 {
    let t = ns
        .saturating_mul(i128::from(timescale))
        .saturating_add(500_000_000)
        .div_euclid(1_000_000_000);
    i64::try_from(t).unwrap_or(if t < 0 { i64::MIN } else { i64::MAX })
}

/// The frames one audio frame of the file makes: an AAC access unit as it is, PCM as FLAC.
fn audio_frames(
    a: &mut AudioTrack,
    data: &Bytes,
    anchor: &mut Option<i64>,
) -> Result<Vec<Frame>, String> {
    let frame = |ts: i64, len: u32, data: Bytes| Frame {
        track: 1,
        pts: Some(ts),
        dts: Some(ts),
        duration: Some(len),
        keyframe: true,
        data,
        received: Instant::now(),
    };
    let mut out = Vec::new();
    match &mut a.coding {
        AudioCoding::Aac { frame_length } => {
            let len = *frame_length;
            if let Some(ts) = a.cadence.place(anchor.take(), i64::from(len)) {
                out.push(frame(ts, len, data.clone()));
            }
        }
        AudioCoding::Pcm {
            flac,
            little_endian,
        } => {
            let unit = 2 * usize::from(flac.format().channels);
            if !data.len().is_multiple_of(unit) {
                return Err(format!(
                    "{} bytes of PCM are not whole samples for {} channel(s)",
                    data.len(),
                    flac.format().channels
                ));
            }
            for chunk in data.chunks(PCM_FRAME * unit) {
                let be: Vec<u8> = if *little_endian {
                    chunk.chunks_exact(2).flat_map(|s| [s[1], s[0]]).collect()
                } else {
                    chunk.to_vec()
                };
                let f = flac.frame(&be).map_err(|e| e.to_string())?;
                if let Some(ts) = a.cadence.place(anchor.take(), i64::from(f.samples)) {
                    out.push(frame(ts, f.samples, Bytes::from(f.data)));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_length_prefixed_nal_units() {
        assert_eq!(
            length_prefixed(b"\0\0\0\x02ab\0\0\0\x01c", 4),
            Some(vec![&b"ab"[..], b"c"])
        );
        assert_eq!(
            length_prefixed(b"\x02ab\x01c", 1),
            Some(vec![&b"ab"[..], b"c"])
        );
        assert_eq!(length_prefixed(b"\0\0\0\x09ab", 4), None);
        assert_eq!(length_prefixed(b"\0\0", 4), None);
    }

    #[test]
    fn converts_nanoseconds_to_ticks() {
        assert_eq!(ticks(40_000_000, 90_000), 3600);
        assert_eq!(ticks(-40_000_000, 90_000), -3600);
        assert_eq!(ticks(21_000_000, 44_100), 926); // 926.1
        assert_eq!(ticks(i128::MAX / 2, 90_000), i64::MAX);
    }
}
