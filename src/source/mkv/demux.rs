//! The walk through a Matroska file, element by element, in file order: the EBML header, the
//! Segment (of known or unknown size), its Info and Tracks, then Clusters and their blocks,
//! turned into the source's events. SeekHead, Cues, Tags, Attachments, Chapters and anything
//! unknown are skipped by their size, never read.
//!
//! Timing. Matroska blocks carry presentation times (RFC 9559 §10.1); the rest of the
//! pipeline wants decode times, as an MPEG-TS file has them. Blocks are stored in decode
//! order, so video decode times are derived the way they are for RTSP cameras
//! ([`Reorder`]): the n-th decode time is the n-th smallest presentation time, less the
//! reorder delay. Audio frames are placed on their sample clock ([`Cadence`]). Cluster
//! timestamps plus the signed block offsets may go below zero; they are kept as they are.

use std::io::{Read, Seek};
use std::time::Instant;

use bytes::Bytes;

use crate::source::reorder::Reorder;
use crate::source::{Frame, SourceEvent, TrackParams};

use super::block::{self, Block};
use super::codecs::{self, AudioCoding, AudioTrack, Selection, VideoTrack};
use super::ebml::{self, Elements, Header, id, is_segment_level};
use super::error::MkvError;
use super::input::Input;
use super::tracks::{self, DocType};

/// The largest EBML header, Info or Tracks element read: far above real ones (a few KiB with
/// the codec configurations).
const MAX_HEAD_ELEMENT: u64 = 8 << 20;

/// The largest block (or BlockGroup) read, as a TS PES is capped: a camera's keyframe is a
/// few hundred KiB.
const MAX_BLOCK: u64 = 16 << 20;

/// How far a damaged cluster is searched past for the next Cluster.
const RESYNC_SCAN: u64 = 16 << 20;

/// The Cluster ID as it is written, to find the next one after damage.
const CLUSTER_ID: [u8; 4] = id::CLUSTER.to_be_bytes();

/// Block times beyond ±100 years (in ns) are damage.
const MAX_NANOS: i128 = 100 * 366 * 86_400 * 1_000_000_000;

/// Damage warnings per file before they are only counted.
const DAMAGE_WARNINGS: u64 = 8;

/// Audio frames held at most while the first video frames wait for their decode times (the
/// reorder window is 8 frames, a third of a second).
const MAX_EARLY_AUDIO: usize = 256;

/// PCM blocks are cut into FLAC frames of at most this many samples per channel (a FLAC
/// frame holds up to 65535; a camera packet is a few hundred).
const PCM_FRAME: usize = 4096;

/// Where the walk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Before the EBML header.
    Start,
    /// After it, before the Segment.
    Header,
    /// In the Segment, between its top-level elements.
    Segment,
    /// In a Cluster.
    Cluster,
}

#[derive(Debug)]
pub struct Demuxer<R> {
    input: Input<R>,
    level: Level,
    doc: DocType,
    segment_end: Option<u64>,
    cluster_end: Option<u64>,
    cluster_time: Option<i64>,
    /// Nanoseconds per timestamp tick.
    scale: u64,
    selection: Option<Selection>,
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
    warnings: Vec<String>,
    ended: bool,
    /// Frames dropped because their time went back past one already placed, and because
    /// their data (or time) was broken.
    pub out_of_order: u64,
    pub broken: u64,
    /// Places where damage was found: each is warned about up to [`DAMAGE_WARNINGS`], then
    /// only counted, so a file of garbage cannot flood the log (or the said-once set).
    damage: u64,
}

impl<R: Read + Seek> Demuxer<R> {
    pub fn new(input: R) -> Result<Self, MkvError> {
        Ok(Demuxer {
            input: Input::new(input)?,
            level: Level::Start,
            doc: DocType::Matroska,
            segment_end: None,
            cluster_end: None,
            cluster_time: None,
            scale: 1_000_000,
            selection: None,
            video_params: None,
            announced: None,
            reorder: Reorder::default(),
            early_audio: Vec::new(),
            video_out: false,
            warnings: Vec::new(),
            ended: false,
            out_of_order: 0,
            broken: 0,
            damage: 0,
        })
    }

    /// True once the first params went out: damage after that is the media's, not the
    /// file's.
    pub fn started(&self) -> bool {
        self.announced.is_some()
    }

    pub fn offset(&self) -> u64 {
        self.input.pos()
    }

    /// Warnings gathered since the last call (each said once by the caller).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Why no params came yet, for a file that ends (or runs too long) before them.
    pub fn missing(&self) -> String {
        let doc = self.doc.describe();
        match (&self.level, &self.selection) {
            (Level::Start, _) => "not a Matroska file (no EBML header)".into(),
            (Level::Header, _) => format!("{doc} with no Segment"),
            (_, None) => format!("{doc} with no Tracks before its media"),
            (_, Some(s)) => format!(
                "{doc} whose {} video (track {}) has no parameter sets (SPS/PPS)",
                s.video.codec, s.video.number
            ),
        }
    }

    /// Reads until at least one event is out, or the end (`false`). Damage inside a
    /// Cluster is skipped to the next Cluster, with a warning; damage before the media, and
    /// a file preroll cannot record, are errors.
    pub fn read(&mut self, out: &mut Vec<SourceEvent>) -> Result<bool, MkvError> {
        while out.is_empty() {
            if self.ended {
                return Ok(false);
            }
            let at = self.input.pos();
            match self.step(out) {
                Ok(true) => {}
                Ok(false) => {
                    self.ended = true;
                    self.finish(out);
                }
                Err(MkvError::Invalid { at: bad, problem }) if self.announced.is_some() => {
                    self.resync(at, bad, &problem)?;
                }
                Err(e @ MkvError::Truncated { .. }) => {
                    self.warnings.push(e.to_string());
                    self.ended = true;
                    self.finish(out);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// A warning about damage at one place (see `damage`).
    fn damaged(&mut self, text: impl FnOnce() -> String) {
        self.damage += 1;
        if self.damage <= DAMAGE_WARNINGS {
            self.warnings.push(text());
        }
    }

    /// Skips from damage at `bad` to the next Cluster, or ends the file when there is none
    /// near.
    fn resync(&mut self, at: u64, bad: u64, problem: &str) -> Result<(), MkvError> {
        let from = at.max(bad).saturating_add(1);
        self.input.seek_to(from)?;
        let found = self.input.find(&CLUSTER_ID, RESYNC_SCAN)?;
        self.damaged(|| match found {
            Some(to) => format!(
                "byte {bad}: {problem}; skipped {} bytes to the next Cluster",
                to.saturating_sub(at)
            ),
            None => format!(
                "byte {bad}: {problem}; no Cluster follows within {} MiB, so the file ends there",
                RESYNC_SCAN >> 20
            ),
        });
        if found.is_none() {
            self.ended = true;
        }
        self.level = Level::Segment;
        self.cluster_end = None;
        self.cluster_time = None;
        Ok(())
    }

    /// Reads one element; `false` at the end of the media.
    fn step(&mut self, out: &mut Vec<SourceEvent>) -> Result<bool, MkvError> {
        let at = self.input.pos();
        if self.level == Level::Cluster && self.cluster_end.is_some_and(|e| at >= e) {
            self.level = Level::Segment;
        }
        if self.segment_end.is_some_and(|e| at >= e) {
            return Ok(false);
        }
        let mut truncated = false;
        let Some(h) = ebml::read_header(&mut self.input, &mut truncated)? else {
            if truncated {
                self.warnings.push(format!(
                    "the file ends inside an element header at byte {at} (cut short?)"
                ));
            }
            return Ok(false);
        };
        match self.level {
            Level::Start => {
                if h.id != id::EBML {
                    return Err(MkvError::Unsupported(format!(
                        "no EBML header (element {:#x} at byte {at})",
                        h.id
                    )));
                }
                let body = self.body(&h, MAX_HEAD_ELEMENT, "the EBML header")?;
                self.doc = tracks::doc_type(&body, h.body_at)?;
                self.level = Level::Header;
            }
            Level::Header => match h.id {
                id::SEGMENT => {
                    self.segment_end = h.end();
                    self.level = Level::Segment;
                }
                id::VOID | id::CRC32 => self.skip(&h)?,
                other => {
                    return Err(MkvError::invalid(
                        at,
                        format!("element {other:#x} where the Segment should start"),
                    ));
                }
            },
            Level::Cluster if self.cluster_end.is_none() && is_segment_level(h.id) => {
                // A Cluster of unknown size ends where the next top-level element starts.
                self.level = Level::Segment;
                return self.segment_child(h, out);
            }
            Level::Cluster => {
                self.within(&h, self.cluster_end.or(self.segment_end))?;
                return self.cluster_child(h, out);
            }
            Level::Segment => return self.segment_child(h, out),
        }
        Ok(true)
    }

    /// An element must end inside its parent.
    fn within(&self, h: &Header, parent_end: Option<u64>) -> Result<(), MkvError> {
        match (h.size, h.end(), parent_end) {
            (Some(size), end, Some(limit)) if end.is_none_or(|e| e > limit) => {
                Err(MkvError::invalid(
                    h.at,
                    format!(
                        "element {:#x} claims {size} bytes, past its parent's end at byte {limit}",
                        h.id
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn segment_child(&mut self, h: Header, out: &mut Vec<SourceEvent>) -> Result<bool, MkvError> {
        match h.id {
            // A second EBML header or Segment: a chained file. Its first part is read.
            id::EBML | id::SEGMENT => {
                self.warnings.push(format!(
                    "a second Segment starts at byte {}; only the first is read",
                    h.at
                ));
                return Ok(false);
            }
            id::CLUSTER if h.size.is_none() => {}
            _ => self.within(&h, self.segment_end)?,
        }
        match h.id {
            id::INFO => {
                let body = self.body(&h, MAX_HEAD_ELEMENT, "Info")?;
                self.scale = tracks::timestamp_scale(&body, h.body_at)?;
            }
            id::TRACKS => {
                if self.selection.is_some() {
                    // Tracks again (some muxers repeat it): the first one stands.
                    self.skip(&h)?;
                    return Ok(true);
                }
                let body = self.body(&h, MAX_HEAD_ELEMENT, "Tracks")?;
                let entries = tracks::tracks(&body, h.body_at)?;
                let mut selection = codecs::select(self.doc, &entries)?;
                self.warnings.append(&mut selection.warnings);
                self.selection = Some(selection);
                self.new_video_params(out)?;
            }
            id::CLUSTER => {
                if self.selection.is_none() {
                    return Err(MkvError::Unsupported(format!(
                        "{} whose first Cluster (byte {}) comes before its Tracks",
                        self.doc.describe(),
                        h.at
                    )));
                }
                self.level = Level::Cluster;
                self.cluster_end = h.end();
                self.cluster_time = None;
            }
            _ => self.skip(&h)?,
        }
        Ok(true)
    }

    fn cluster_child(&mut self, h: Header, out: &mut Vec<SourceEvent>) -> Result<bool, MkvError> {
        match h.id {
            id::TIMESTAMP => {
                let body = self.body(&h, 8, "a Cluster Timestamp")?;
                let e = ebml::Element {
                    id: h.id,
                    body: &body,
                    at: h.at,
                };
                self.cluster_time = Some(
                    i64::try_from(e.uint()?)
                        .map_err(|_| MkvError::invalid(h.at, "a Cluster Timestamp beyond 2^63"))?,
                );
            }
            id::SIMPLE_BLOCK => {
                let body = self.body(&h, MAX_BLOCK, "a SimpleBlock")?;
                let b = block::parse(&body, h.at)?;
                let keyframe = b.keyframe;
                self.block(Bytes::from(body), b, keyframe, h.at, out)?;
            }
            id::BLOCK_GROUP => {
                let body = self.body(&h, MAX_BLOCK, "a BlockGroup")?;
                let mut block = None;
                let mut referenced = false;
                for e in Elements::new(&body, h.body_at) {
                    let e = e?;
                    match e.id {
                        id::BLOCK => block = Some((Bytes::copy_from_slice(e.body), e.at)),
                        // A Block that refers to another is not a keyframe (RFC 9559 §10.3).
                        id::REFERENCE_BLOCK => referenced = true,
                        _ => {}
                    }
                }
                let Some((data, at)) = block else {
                    return Err(MkvError::invalid(h.at, "a BlockGroup without a Block"));
                };
                let b = block::parse(&data, at)?;
                self.block(data, b, !referenced, at, out)?;
            }
            _ if h.size.is_none() => {
                return Err(MkvError::invalid(
                    h.at,
                    format!("element {:#x} in a Cluster has an unknown size", h.id),
                ));
            }
            _ => self.skip(&h)?,
        }
        Ok(true)
    }

    /// The body of `h`, read into memory: at most `cap` bytes, and never more than the file
    /// holds. A body the file ends inside of ends the media (a file cut short).
    fn body(&mut self, h: &Header, cap: u64, what: &str) -> Result<Vec<u8>, MkvError> {
        let Some(size) = h.size else {
            return Err(MkvError::invalid(h.at, format!("{what} of unknown size")));
        };
        if size > cap {
            return Err(MkvError::invalid(
                h.at,
                format!("{what} claims {size} bytes, more than the {cap} allowed"),
            ));
        }
        self.input
            .take(size, h.at)?
            .ok_or_else(|| MkvError::Truncated {
                at: h.at,
                what: what.to_owned(),
            })
    }

    fn skip(&mut self, h: &Header) -> Result<(), MkvError> {
        let Some(end) = h.end() else {
            return Err(MkvError::invalid(
                h.at,
                format!("element {:#x} has an unknown size where it cannot", h.id),
            ));
        };
        self.input.seek_to(end)
    }

    /// Sends the params when they changed (a new SPS in band), after the video frames made
    /// under the old ones.
    fn new_video_params(&mut self, out: &mut Vec<SourceEvent>) -> Result<(), MkvError> {
        let Some(s) = self.selection.as_mut() else {
            return Ok(());
        };
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

    fn block(
        &mut self,
        data: Bytes,
        b: Block,
        keyframe: bool,
        at: u64,
        out: &mut Vec<SourceEvent>,
    ) -> Result<(), MkvError> {
        let Some(s) = self.selection.as_ref() else {
            return Ok(());
        };
        let is_video = b.track == s.video.number;
        let is_audio = s.audio.as_ref().is_some_and(|a| a.number == b.track);
        if !is_video && !is_audio {
            return Ok(());
        }
        let Some(cluster) = self.cluster_time else {
            return Err(MkvError::invalid(
                at,
                "a block before its Cluster's Timestamp",
            ));
        };
        // Nanoseconds, in 128 bits: a hostile scale times a hostile timestamp cannot wrap.
        // Times past what any recording reaches are damage, kept away from the arithmetic
        // of decode-time derivation and pacing.
        let ns =
            (i128::from(cluster) + i128::from(b.timestamp)).saturating_mul(i128::from(self.scale));
        if ns.abs() > MAX_NANOS {
            self.broken += 1;
            self.damaged(|| format!("block at byte {at}: a timestamp of {ns} ns; dropped"));
            return Ok(());
        }
        if is_video {
            self.video_block(&data, &b, ns, keyframe, at, out)
        } else {
            self.audio_block(&data, &b, ns, at, out);
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
            let Some(s) = self.selection.as_mut() else {
                return Ok(());
            };
            let v: &mut VideoTrack = &mut s.video;
            // Laced frames after the first have no timestamp of their own.
            let ns = match (i, v.default_duration) {
                (0, _) => ns,
                (_, Some(d)) => ns.saturating_add(i128::from(d).saturating_mul(i as i128)),
                (_, None) => {
                    self.broken += 1;
                    self.damaged(|| format!(
                        "block at byte {at}: laced video frames without a DefaultDuration; all but the first dropped"
                    ));
                    break;
                }
            };
            let frame = unstrip(&v.strip, &data[range.clone()]);
            let Some(nals) = length_prefixed(&frame, v.nal_length) else {
                self.broken += 1;
                self.damaged(|| {
                    format!("video block at byte {at}: a NAL unit runs past the frame; dropped")
                });
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
        let Some(a) = self.selection.as_mut().and_then(|s| s.audio.as_mut()) else {
            return;
        };
        if !with_audio {
            return;
        }
        let rate = a.params.timescale;
        // The block's time anchors its first frame; laced frames follow on the sample clock.
        let mut anchor = Some(ticks(ns, rate));
        let mut frames = Vec::new();
        let mut problems = Vec::new();
        for range in &b.frames {
            let frame = unstrip(&a.strip, &data[range.clone()]);
            match audio_frames(a, &frame, &mut anchor) {
                Ok(f) => frames.extend(f),
                Err(e) => problems.push(e),
            }
        }
        for e in problems {
            self.broken += 1;
            self.damaged(|| format!("audio block at byte {at}: {e}; dropped"));
        }
        self.send_audio(frames, out);
    }

    /// The end of the media: frames held for their decode times go out.
    fn finish(&mut self, out: &mut Vec<SourceEvent>) {
        let held = self.reorder.flush();
        self.send_video(held, out);
        out.extend(self.early_audio.drain(..).map(SourceEvent::Frame));
        if self.out_of_order + self.broken > 0 {
            self.warnings.push(format!(
                "{} frames dropped out of order, {} broken",
                self.out_of_order, self.broken
            ));
        }
        if self.damage > DAMAGE_WARNINGS {
            self.warnings.push(format!(
                "damage at {} places in all (the first {DAMAGE_WARNINGS} were named)",
                self.damage
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
    use std::io::Cursor;

    /// An element: ID bytes, a one-byte size (or unknown), the body.
    fn el(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.push(0x80 | u8::try_from(body.len()).unwrap());
        v.extend_from_slice(body);
        v
    }

    fn header(doc: &str) -> Vec<u8> {
        el(
            &[0x1a, 0x45, 0xdf, 0xa3],
            &el(&[0x42, 0x82], doc.as_bytes()),
        )
    }

    const UNKNOWN: [u8; 8] = [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

    /// What a run of the reader ended with: events, the error if any, the reader.
    type Run<'a> = (usize, Result<(), MkvError>, Demuxer<Cursor<&'a [u8]>>);

    /// Runs the reader over `data` to its end.
    fn run(data: &[u8]) -> Run<'_> {
        let mut d = Demuxer::new(Cursor::new(data)).unwrap();
        let mut n = 0;
        loop {
            let mut out = Vec::new();
            match d.read(&mut out) {
                Ok(true) => n += out.len(),
                Ok(false) => return (n, Ok(()), d),
                Err(e) => return (n, Err(e), d),
            }
        }
    }

    #[test]
    fn hostile_sizes_are_errors_not_allocations() {
        // An EBML header claiming 2^55 bytes.
        let mut data = vec![0x1a, 0x45, 0xdf, 0xa3, 0x01, 0x80, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(b"webm");
        let (_, r, _) = run(&data);
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("claims 36028797018963968 bytes, more than the"),
            "{e}"
        );
        // Tracks claiming 64 bytes with 2 left: a file cut short, which ends the media.
        let mut data = header("matroska");
        data.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
        data.extend_from_slice(&UNKNOWN);
        data.extend_from_slice(&[0x16, 0x54, 0xae, 0x6b, 0x40, 0x40, 0x00, 0x00]);
        let (n, r, d) = run(&data);
        assert!(n == 0 && r.is_ok());
        assert_eq!(
            d.missing(),
            "a Matroska file with no Tracks before its media"
        );
        assert!(
            d.warnings.iter().any(|w| w.contains("cut short")),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn refuses_what_is_not_matroska_media() {
        let (_, r, _) = run(&header("notmkv"));
        assert!(matches!(r, Err(MkvError::Unsupported(_))));
        // A Cluster before any Tracks.
        let mut data = header("webm");
        data.extend(el(
            &[0x18, 0x53, 0x80, 0x67],
            &el(&[0x1f, 0x43, 0xb6, 0x75], &[0xe7, 0x81, 0]),
        ));
        let (_, r, _) = run(&data);
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("a WebM file whose first Cluster") && e.contains("before its Tracks"),
            "{e}"
        );
        // A five-byte element ID where the Segment should be.
        let mut data = header("matroska");
        data.extend_from_slice(&[0x08, 1, 2, 3, 4, 0x80]);
        assert!(matches!(run(&data).1, Err(MkvError::Invalid { .. })));
        // A child past its parent's end.
        let mut data = header("matroska");
        data.extend(el(
            &[0x18, 0x53, 0x80, 0x67],
            &[0x15, 0x49, 0xa9, 0x66, 0x90],
        ));
        let e = run(&data).1.unwrap_err().to_string();
        assert!(e.contains("past its parent's end"), "{e}");
        // Nothing at all after the header.
        let bare = header("matroska");
        let (n, r, d) = run(&bare);
        assert!(n == 0 && r.is_ok());
        assert_eq!(d.missing(), "a Matroska file with no Segment");
    }

    #[test]
    fn walks_an_unknown_size_segment_over_what_it_does_not_read() {
        // A VP9 track makes Tracks refuse the file; before that, an unknown-size Segment and
        // a SeekHead/Void/Cues are walked over.
        let mut data = header("webm");
        data.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
        data.extend_from_slice(&UNKNOWN);
        data.extend(el(&[0x11, 0x4d, 0x9b, 0x74], &[0xec, 0x81, 0]));
        data.extend(el(&[0xec], &[0; 5]));
        data.extend(el(&[0x1c, 0x53, 0xbb, 0x6b], &[]));
        let entry = [el(&[0xd7], &[1]), el(&[0x83], &[1]), el(&[0x86], b"V_VP9")].concat();
        data.extend(el(&[0x16, 0x54, 0xae, 0x6b], &el(&[0xae], &entry)));
        let e = run(&data).1.unwrap_err().to_string();
        assert!(e.contains("a WebM file whose video is VP9 (V_VP9)"), "{e}");
    }

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
