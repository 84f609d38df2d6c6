//! The walk through a Matroska file, element by element, in file order: the EBML header, the
//! Segment (of known or unknown size), its Info and Tracks, then Clusters and their blocks,
//! handed to [`Frames`]. SeekHead, Cues, Tags, Attachments, Chapters and anything unknown
//! are skipped by their size, never read.

use std::io::{Read, Seek};

use bytes::Bytes;

use crate::source::SourceEvent;

use super::block::{self, Block};
use super::codecs;
use super::ebml::{self, Elements, Header, id, is_segment_level};
use super::error::MkvError;
use super::frames::Frames;
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

/// Damage warnings per file before they are only counted.
const DAMAGE_WARNINGS: u64 = 8;

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
    /// Once Tracks are read.
    frames: Option<Frames>,
    warnings: Vec<String>,
    ended: bool,
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
            frames: None,
            warnings: Vec::new(),
            ended: false,
            damage: 0,
        })
    }

    /// True once the first params went out: damage after that is the media's, not the
    /// file's.
    pub fn started(&self) -> bool {
        self.frames.as_ref().is_some_and(Frames::started)
    }

    pub fn offset(&self) -> u64 {
        self.input.pos()
    }

    /// Warnings gathered since the last call (each said once by the caller).
    pub fn take_warnings(&mut self) -> Vec<String> {
        self.gather();
        std::mem::take(&mut self.warnings)
    }

    /// Moves what the frames said to the warnings, damage counted (see `damage`).
    fn gather(&mut self) {
        let Some(f) = self.frames.as_mut() else {
            return;
        };
        let (warnings, damage) = (
            std::mem::take(&mut f.warnings),
            std::mem::take(&mut f.damage),
        );
        self.warnings.extend(warnings);
        for d in damage {
            self.damaged(|| d);
        }
    }

    /// Why no params came yet, for a file that ends (or runs too long) before them.
    pub fn missing(&self) -> String {
        let doc = self.doc.describe();
        match (&self.level, self.frames.as_ref().map(Frames::video)) {
            (Level::Start, _) => "not a Matroska file (no EBML header)".into(),
            (Level::Header, _) => format!("{doc} with no Segment"),
            (_, None) => format!("{doc} with no Tracks before its media"),
            (_, Some(v)) => format!(
                "{doc} whose {} video (track {}) has no parameter sets (SPS/PPS)",
                v.codec, v.number
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
                Err(MkvError::Invalid { at: bad, problem }) if self.started() => {
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
                if self.frames.is_some() {
                    // Tracks again (some muxers repeat it): the first one stands.
                    self.skip(&h)?;
                    return Ok(true);
                }
                let body = self.body(&h, MAX_HEAD_ELEMENT, "Tracks")?;
                let entries = tracks::tracks(&body, h.body_at)?;
                let selection = codecs::select(self.doc, &entries)?;
                self.frames = Some(Frames::new(self.doc, selection, out)?);
            }
            id::CLUSTER => {
                if self.frames.is_none() {
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
                self.block(&Bytes::from(body), &b, keyframe, h.at, out)?;
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
                self.block(&data, &b, !referenced, at, out)?;
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

    /// A block, with its Cluster's time, to the frames.
    fn block(
        &mut self,
        data: &Bytes,
        b: &Block,
        keyframe: bool,
        at: u64,
        out: &mut Vec<SourceEvent>,
    ) -> Result<(), MkvError> {
        let Some(frames) = self.frames.as_mut() else {
            return Ok(());
        };
        let Some(cluster) = self.cluster_time else {
            return Err(MkvError::invalid(
                at,
                "a block before its Cluster's Timestamp",
            ));
        };
        // Nanoseconds, in 128 bits: a hostile scale times a hostile timestamp cannot wrap.
        let ns =
            (i128::from(cluster) + i128::from(b.timestamp)).saturating_mul(i128::from(self.scale));
        frames.block(data, b, keyframe, ns, at, out)
    }

    /// The end of the media: what the frames hold goes out.
    fn finish(&mut self, out: &mut Vec<SourceEvent>) {
        if let Some(f) = self.frames.as_mut() {
            f.finish(out);
        }
        self.gather();
        if self.damage > DAMAGE_WARNINGS {
            self.warnings.push(format!(
                "damage at {} places in all (the first {DAMAGE_WARNINGS} were named)",
                self.damage
            ));
        }
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
}
