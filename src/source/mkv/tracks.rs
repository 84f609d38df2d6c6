//! The elements before the media: the EBML header (is this Matroska or WebM at all?), the
//! Segment's Info (the timestamp scale) and Tracks (what each track carries).

use super::ebml::{Element, Elements, id};
use super::error::MkvError;

/// The DocType of the EBML header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocType {
    Matroska,
    WebM,
}

impl DocType {
    /// How a message names the file: "a WebM file".
    pub fn describe(self) -> &'static str {
        match self {
            DocType::Matroska => "a Matroska file",
            DocType::WebM => "a WebM file",
        }
    }
}

/// Reads the EBML header's body; only the `matroska` and `webm` document types are taken.
pub fn doc_type(body: &[u8], body_at: u64) -> Result<DocType, MkvError> {
    let mut doc = None;
    for e in Elements::new(body, body_at) {
        let e = e?;
        if e.id == id::DOC_TYPE {
            doc = Some(e.string());
        }
    }
    match doc.as_deref() {
        Some("matroska") => Ok(DocType::Matroska),
        Some("webm") => Ok(DocType::WebM),
        Some(other) => Err(MkvError::Unsupported(format!(
            "an EBML file of type {other:?}, not Matroska or WebM"
        ))),
        // The default DocType (RFC 8794 §11.2.6) is "matroska".
        None => Ok(DocType::Matroska),
    }
}

/// Nanoseconds per Cluster and Block timestamp tick (Info/TimestampScale, default 1 ms).
pub fn timestamp_scale(body: &[u8], body_at: u64) -> Result<u64, MkvError> {
    for e in Elements::new(body, body_at) {
        let e = e?;
        if e.id == id::TIMESTAMP_SCALE {
            let scale = e.uint()?;
            if scale == 0 {
                return Err(MkvError::invalid(e.at, "a TimestampScale of 0"));
            }
            return Ok(scale);
        }
    }
    Ok(1_000_000)
}

/// How the frames of a track are stored when not as they are (ContentEncodings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    /// As they are.
    Plain,
    /// Header stripping: these bytes were removed from the start of every frame.
    Stripped(Vec<u8>),
    /// Something preroll does not undo (zlib, encryption…), described.
    Other(String),
}

/// One TrackEntry, as far as preroll uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEntry {
    pub number: u64,
    /// 1 video, 2 audio, others (subtitles, buttons, metadata…).
    pub kind: u64,
    pub enabled: bool,
    pub codec_id: String,
    pub codec_private: Vec<u8>,
    /// Nanoseconds per frame, when the track states it.
    pub default_duration: Option<u64>,
    /// Nanoseconds of decoder delay (Opus pre-skip) and of pre-roll after a seek.
    pub codec_delay: u64,
    pub seek_pre_roll: u64,
    pub width: u64,
    pub height: u64,
    pub sampling_frequency: f64,
    pub channels: u64,
    pub bit_depth: u64,
    pub encoding: Encoding,
}

/// Reads Tracks' body: every TrackEntry, in order.
pub fn tracks(body: &[u8], body_at: u64) -> Result<Vec<TrackEntry>, MkvError> {
    let mut out = Vec::new();
    for e in Elements::new(body, body_at) {
        let e = e?;
        if e.id == id::TRACK_ENTRY {
            out.push(entry(&e)?);
        }
    }
    Ok(out)
}

fn entry(e: &Element<'_>) -> Result<TrackEntry, MkvError> {
    let mut t = TrackEntry {
        number: 0,
        kind: 0,
        enabled: true,
        codec_id: String::new(),
        codec_private: Vec::new(),
        default_duration: None,
        codec_delay: 0,
        seek_pre_roll: 0,
        width: 0,
        height: 0,
        sampling_frequency: 8000.0,
        channels: 1,
        bit_depth: 0,
        encoding: Encoding::Plain,
    };
    for c in e.children() {
        let c = c?;
        match c.id {
            id::TRACK_NUMBER => t.number = c.uint()?,
            id::TRACK_TYPE => t.kind = c.uint()?,
            id::FLAG_ENABLED => t.enabled = c.uint()? != 0,
            id::CODEC_ID => t.codec_id = c.string(),
            id::CODEC_PRIVATE => t.codec_private = c.body.to_vec(),
            id::DEFAULT_DURATION => t.default_duration = Some(c.uint()?).filter(|&d| d > 0),
            id::CODEC_DELAY => t.codec_delay = c.uint()?,
            id::SEEK_PRE_ROLL => t.seek_pre_roll = c.uint()?,
            id::VIDEO => {
                for v in c.children() {
                    let v = v?;
                    match v.id {
                        id::PIXEL_WIDTH => t.width = v.uint()?,
                        id::PIXEL_HEIGHT => t.height = v.uint()?,
                        _ => {}
                    }
                }
            }
            id::AUDIO => {
                for a in c.children() {
                    let a = a?;
                    match a.id {
                        id::SAMPLING_FREQUENCY => t.sampling_frequency = a.float()?,
                        id::CHANNELS => t.channels = a.uint()?,
                        id::BIT_DEPTH => t.bit_depth = a.uint()?,
                        _ => {}
                    }
                }
            }
            id::CONTENT_ENCODINGS => t.encoding = encoding(&c)?,
            _ => {}
        }
    }
    if t.number == 0 {
        return Err(MkvError::invalid(
            e.at,
            "a TrackEntry without a TrackNumber",
        ));
    }
    Ok(t)
}

/// ContentEncodings: header stripping (the only compression still written, by older
/// mkvmerge) is undone; anything else is named.
fn encoding(e: &Element<'_>) -> Result<Encoding, MkvError> {
    let mut result = Encoding::Plain;
    for enc in e.children() {
        let enc = enc?;
        if enc.id != id::CONTENT_ENCODING {
            continue;
        }
        let (mut scope, mut kind, mut algo, mut settings) = (1u64, 0u64, 0u64, Vec::new());
        for c in enc.children() {
            let c = c?;
            match c.id {
                id::CONTENT_ENCODING_SCOPE => scope = c.uint()?,
                id::CONTENT_ENCODING_TYPE => kind = c.uint()?,
                id::CONTENT_COMPRESSION => {
                    for k in c.children() {
                        let k = k?;
                        match k.id {
                            id::CONTENT_COMP_ALGO => algo = k.uint()?,
                            id::CONTENT_COMP_SETTINGS => settings = k.body.to_vec(),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        // Scope bit 1: the frames. An encoding of the private data only (2) or of the next
        // encoding's settings (4) does not touch the frames.
        if scope & 1 == 0 {
            continue;
        }
        result = match (kind, algo, result) {
            (0, 3, Encoding::Plain) => Encoding::Stripped(settings),
            (0, 0, _) => Encoding::Other("zlib-compressed frames".into()),
            (0, 1, _) => Encoding::Other("bzlib-compressed frames".into()),
            (0, 2, _) => Encoding::Other("lzo-compressed frames".into()),
            (1, _, _) => Encoding::Other("encrypted frames".into()),
            _ => Encoding::Other("frames in several content encodings".into()),
        };
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_doc_type_and_scale() {
        assert_eq!(doc_type(b"\x42\x82\x84webm", 0).unwrap(), DocType::WebM);
        assert_eq!(
            doc_type(b"\x42\x82\x88matroska", 0).unwrap(),
            DocType::Matroska
        );
        let err = doc_type(b"\x42\x82\x83abc", 0).unwrap_err().to_string();
        assert!(err.contains("\"abc\""), "{err}");
        assert_eq!(timestamp_scale(b"", 0).unwrap(), 1_000_000);
        assert_eq!(
            timestamp_scale(b"\x2a\xd7\xb1\x82\x03\xe8", 0).unwrap(),
            1000
        );
        assert!(timestamp_scale(b"\x2a\xd7\xb1\x81\x00", 0).is_err());
    }

    #[test]
    fn reads_a_track_entry_with_header_stripping() {
        let entry: &[u8] = &[
            0xd7, 0x81, 0x02, // TrackNumber 2
            0x83, 0x81, 0x02, // TrackType audio
            0x86, 0x85, b'A', b'_', b'A', b'A', b'C', // CodecID
            0xe1, 0x83, 0x9f, 0x81, 0x02, // Audio { Channels 2 }
            // ContentEncodings { ContentEncoding { ContentCompression { algo 3, settings ff f1 } } }
            0x6d, 0x80, 0x8f, 0x62, 0x40, 0x8c, 0x50, 0x34, 0x89, 0x42, 0x54, 0x81, 0x03, 0x42,
            0x55, 0x82, 0xff, 0xf1,
        ];
        let mut tracks_body = vec![0xae, 0x80 | entry.len() as u8];
        tracks_body.extend_from_slice(entry);
        let t = tracks(&tracks_body, 0).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].number, t[0].kind, t[0].codec_id.as_str()),
            (2, 2, "A_AAC")
        );
        assert_eq!(t[0].channels, 2);
        assert_eq!(t[0].encoding, Encoding::Stripped(vec![0xff, 0xf1]));
    }
}
