//! Telling what a file is from its first bytes, before any parser sees it: a parser handed the
//! wrong format reads garbage as lengths ("box at byte 0 claims 1195381008 bytes") and, worse,
//! fails only after the recorder has waited for media. Sniffing names the format at once, so a
//! file that can never work is refused with a message that says what it is.

use std::io::Read;
use std::path::Path;

use super::{SourceError, SourceErrorKind};

/// How many bytes are read to decide: enough for several TS packets after a damaged start.
pub const HEAD: usize = 192 * 8 + 192;

/// TS packets that must line up (sync byte every packet) to call a file MPEG-TS.
const TS_PACKETS: usize = 4;

/// What a file looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// ISO base media (MP4, fMP4, MOV): a known box at byte 0.
    Mp4,
    /// MPEG transport stream: `packet` is 188, or 192 for M2TS (a 4-byte timestamp first);
    /// `start` is the first sync byte.
    MpegTs {
        packet: usize,
        start: usize,
    },
    Matroska,
    WebM,
    Flv,
    Avi,
    Wav,
    Riff,
    MpegPs,
    MpegVideo,
    Ogg,
    H264,
    H265,
    Adts,
    Mp3,
    Jpeg,
    Png,
    Gif,
    Pdf,
    Zip,
    Gzip,
    Text,
    Empty,
    Unknown,
}

impl FileKind {
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            FileKind::Mp4 | FileKind::MpegTs { .. } | FileKind::Matroska | FileKind::WebM
        )
    }

    /// What the file is, as said in a refusal ("a Matroska file").
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Mp4 => "an MP4 file",
            FileKind::MpegTs { packet: 192, .. } => "an MPEG-TS (M2TS) file",
            FileKind::MpegTs { .. } => "an MPEG-TS file",
            FileKind::Matroska => "a Matroska file",
            FileKind::WebM => "a WebM (Matroska) file",
            FileKind::Flv => "an FLV file",
            FileKind::Avi => "an AVI file",
            FileKind::Wav => "a WAV file",
            FileKind::Riff => "a RIFF file",
            FileKind::MpegPs => "an MPEG program stream (MPEG-PS/VOB) file",
            FileKind::MpegVideo => "a raw MPEG-1/2 video stream",
            FileKind::Ogg => "an Ogg file",
            FileKind::H264 => "a raw H.264 (Annex B) stream",
            FileKind::H265 => "a raw H.265 (Annex B) stream",
            FileKind::Adts => "a raw AAC (ADTS) stream",
            FileKind::Mp3 => "an MP3 file",
            FileKind::Jpeg => "a JPEG image",
            FileKind::Png => "a PNG image",
            FileKind::Gif => "a GIF image",
            FileKind::Pdf => "a PDF document",
            FileKind::Zip => "a ZIP archive",
            FileKind::Gzip => "a gzip file",
            FileKind::Text => "a text file",
            FileKind::Empty => "an empty file",
            FileKind::Unknown => "not a media file preroll knows",
        }
    }
}

/// Box types that may stand at byte 0 of an ISO base media file.
const MP4_FIRST_BOXES: [&[u8; 4]; 12] = [
    b"ftyp", b"styp", b"moov", b"moof", b"free", b"skip", b"mdat", b"wide", b"pdin", b"sidx",
    b"uuid", b"emsg",
];

/// Names the format of a file from its first bytes (`head`, up to [`HEAD`] of them).
pub fn sniff(head: &[u8]) -> FileKind {
    let starts = |m: &[u8]| head.starts_with(m);
    if head.is_empty() {
        return FileKind::Empty;
    }
    if let Some(kind) = mp4(head) {
        return kind;
    }
    if let Some(kind) = mpeg_ts(head) {
        return kind;
    }
    if starts(&[0x1a, 0x45, 0xdf, 0xa3]) {
        // The EBML header's DocType says which; it sits within the first few dozen bytes.
        let doc = &head[..head.len().min(64)];
        return if doc.windows(4).any(|w| w == b"webm") {
            FileKind::WebM
        } else {
            FileKind::Matroska
        };
    }
    if starts(b"FLV\x01") {
        return FileKind::Flv;
    }
    if starts(b"RIFF") && head.len() >= 12 {
        return match &head[8..12] {
            b"AVI " => FileKind::Avi,
            b"WAVE" => FileKind::Wav,
            _ => FileKind::Riff,
        };
    }
    if starts(&[0, 0, 1, 0xba]) {
        return FileKind::MpegPs;
    }
    if starts(&[0, 0, 1, 0xb3]) {
        return FileKind::MpegVideo;
    }
    if starts(b"OggS") {
        return FileKind::Ogg;
    }
    if let Some(kind) = annex_b(head) {
        return kind;
    }
    if starts(&[0xff, 0xd8, 0xff]) {
        return FileKind::Jpeg;
    }
    if starts(b"\x89PNG") {
        return FileKind::Png;
    }
    if starts(b"GIF8") {
        return FileKind::Gif;
    }
    if starts(b"%PDF") {
        return FileKind::Pdf;
    }
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        return FileKind::Zip;
    }
    if starts(&[0x1f, 0x8b]) {
        return FileKind::Gzip;
    }
    if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xff && head[1] & 0xe6 == 0xe2) {
        // ID3 tag, or an MPEG audio layer III frame sync (layer bits 01).
        return FileKind::Mp3;
    }
    if head.len() >= 2 && head[0] == 0xff && head[1] & 0xf6 == 0xf0 {
        return FileKind::Adts;
    }
    if is_text(head) {
        return FileKind::Text;
    }
    FileKind::Unknown
}

fn mp4(head: &[u8]) -> Option<FileKind> {
    let size = u32::from_be_bytes(head.get(..4)?.try_into().ok()?);
    let kind: &[u8; 4] = head.get(4..8)?.try_into().ok()?;
    // 0 means "to the end of the file" and 1 "a 64-bit size follows"; otherwise a box holds
    // at least its 8-byte header.
    let sane = size == 0 || size == 1 || size >= 8;
    (sane && MP4_FIRST_BOXES.contains(&kind)).then_some(FileKind::Mp4)
}

/// A sync byte every 188 (or 192) bytes from some offset within the first packet. Short files
/// need every whole packet they hold to line up, and at least one.
fn mpeg_ts(head: &[u8]) -> Option<FileKind> {
    for (packet, sync_at) in [(188usize, 0usize), (192, 4)] {
        for start in 0..packet {
            let first = start + sync_at;
            let whole = head.len().saturating_sub(first) / packet;
            let needed = whole.min(TS_PACKETS);
            if needed == 0 {
                break;
            }
            if (0..needed).all(|k| head.get(first + k * packet) == Some(&0x47)) {
                // A lone packet is accepted only at byte 0 (a tiny file), never found by
                // searching, where one 0x47 byte in anything would match.
                if needed > 1 || start == 0 {
                    return Some(FileKind::MpegTs {
                        packet,
                        start: first,
                    });
                }
            }
        }
    }
    None
}

/// Raw H.264/H.265: a start code, then a NAL header typical of a stream's beginning (access
/// unit delimiter or parameter set).
fn annex_b(head: &[u8]) -> Option<FileKind> {
    let rest = if head.starts_with(&[0, 0, 0, 1]) {
        &head[4..]
    } else if head.starts_with(&[0, 0, 1]) {
        &head[3..]
    } else {
        return None;
    };
    let (&b0, b1) = (rest.first()?, rest.get(1).copied().unwrap_or(0));
    // H.265 headers are two bytes with nuh_layer_id 0 and a temporal id of 1 in the second
    // (0x01); types 32..35 are VPS, SPS, PPS and AUD. H.264 reads those bytes as types that
    // never open a stream, so H.265 is tried first.
    let h265_type = (b0 >> 1) & 0x3f;
    if b0 & 0x81 == 0 && b1 == 0x01 && (32..=35).contains(&h265_type) {
        return Some(FileKind::H265);
    }
    // H.264: forbidden bit clear, type 9 (AUD), 7 (SPS), 6 (SEI) or 5 (IDR).
    if b0 & 0x80 == 0 && matches!(b0 & 0x1f, 5 | 6 | 7 | 9) {
        return Some(FileKind::H264);
    }
    None
}

/// Printable ASCII or UTF-8, with ordinary whitespace: a log, a playlist, a config file.
fn is_text(head: &[u8]) -> bool {
    // The head may end inside a multi-byte character.
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\x0c'))
}

/// Reads the first bytes of `path` and names its format; unsupported formats are an
/// [`SourceErrorKind::Unsupported`] error (which never heals by retrying) naming what it is.
pub fn sniff_file(path: &Path) -> Result<FileKind, SourceError> {
    let shown = path.display();
    let io = |e: std::io::Error| SourceError::new(SourceErrorKind::Io, format!("{shown}: {e}"));
    let file = std::fs::File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(HEAD);
    file.take(HEAD as u64).read_to_end(&mut head).map_err(io)?;
    let kind = sniff(&head);
    if kind.is_supported() {
        return Ok(kind);
    }
    let detail = if kind == FileKind::Unknown {
        let bytes: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!(" (it starts with {})", bytes.join(" "))
    } else {
        String::new()
    };
    Err(SourceError::new(
        SourceErrorKind::Unsupported,
        format!(
            "{shown}: {}{detail}; preroll reads MP4, MPEG-TS and Matroska/WebM files",
            kind.describe()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(packet: usize, count: usize, lead: usize) -> Vec<u8> {
        let mut v = vec![0u8; lead];
        for _ in 0..count {
            let mut p = vec![0xffu8; packet];
            p[packet - 188] = 0x47;
            v.extend(p);
        }
        v
    }

    #[test]
    fn names_supported_formats() {
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\0\0"), FileKind::Mp4);
        let mkv = sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska");
        assert_eq!(mkv, FileKind::Matroska);
        let webm = sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm");
        assert_eq!(webm, FileKind::WebM);
        assert!(mkv.is_supported() && webm.is_supported());
        assert_eq!(sniff(b"\0\0\0\0moov"), FileKind::Mp4);
        assert_eq!(
            sniff(&ts(188, 8, 0)),
            FileKind::MpegTs {
                packet: 188,
                start: 0
            }
        );
        assert_eq!(
            sniff(&ts(192, 8, 0)),
            FileKind::MpegTs {
                packet: 192,
                start: 4
            }
        );
        // A damaged first packet: the sync is found further on.
        assert_eq!(
            sniff(&ts(188, 8, 100)),
            FileKind::MpegTs {
                packet: 188,
                start: 100
            }
        );
        assert_eq!(
            sniff(&ts(188, 1, 0)),
            FileKind::MpegTs {
                packet: 188,
                start: 0
            }
        );
    }

    #[test]
    fn names_what_it_refuses() {
        let cases: [(&[u8], FileKind); 18] = [
            (b"", FileKind::Empty),
            (b"FLV\x01\x05", FileKind::Flv),
            (b"RIFF\0\0\0\0AVI LIST", FileKind::Avi),
            (b"RIFF\0\0\0\0WAVEfmt ", FileKind::Wav),
            (b"\0\0\x01\xba\x44", FileKind::MpegPs),
            (b"OggS\0\x02", FileKind::Ogg),
            (b"\0\0\0\x01\x09\x10\0\0\0\x01\x67\x64", FileKind::H264),
            (b"\0\0\0\x01\x67\x64\0\x1f", FileKind::H264),
            (b"\0\0\0\x01\x40\x01\x0c\x01", FileKind::H265),
            (b"\0\0\0\x01\x46\x01\x50", FileKind::H265),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", FileKind::Jpeg),
            (b"\x89PNG\r\n\x1a\n", FileKind::Png),
            (b"GIF89a", FileKind::Gif),
            (b"%PDF-1.7", FileKind::Pdf),
            (b"PK\x03\x04\x14\0", FileKind::Zip),
            (b"\x1f\x8b\x08\0", FileKind::Gzip),
            (b"#EXTM3U\n#EXT-X-VERSION:7\n", FileKind::Text),
            (b"\x93\x11\xfe\x00\x42\x99", FileKind::Unknown),
        ];
        for (bytes, kind) in cases {
            assert_eq!(sniff(bytes), kind, "{bytes:02x?}");
            assert!(!kind.is_supported());
        }
    }

    #[test]
    fn an_absurd_box_size_or_type_is_not_mp4() {
        assert_ne!(sniff(b"\0\0\0\x04ftyp"), FileKind::Mp4);
        assert_ne!(sniff(b"\0\0\0\x20abcd"), FileKind::Mp4);
    }
}
