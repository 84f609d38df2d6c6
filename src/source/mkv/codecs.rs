//! From Matroska tracks to what preroll records (RFC 9559 codec mappings): the first enabled
//! H.264 (`V_MPEG4/ISO/AVC`, CodecPrivate an `avcC`) or H.265 (`V_MPEGH/ISO/HEVC`, an `hvcC`)
//! video track, and the first audio track that a clip can keep — AAC (`A_AAC` with its
//! AudioSpecificConfig, or the old `A_AAC/MPEG4/LC`-style ids that name the profile instead)
//! or 16-bit integer PCM (`A_PCM/INT/LIT`, `A_PCM/INT/BIG`), kept losslessly as FLAC as camera
//! PCM is. A file whose video is anything else is refused, naming its codec; other audio is
//! named and left out, and the video records.

use bytes::Bytes;

use crate::audio::{PcmCodec, PcmToFlac};
use crate::mp4::{Codec, TrackKind};
use crate::source::TrackParams;
use crate::source::aac::{self, Cadence, RATES};
use crate::source::video::Video;

use super::error::MkvError;
use super::tracks::{DocType, Encoding, TrackEntry};

const VIDEO: u64 = 1;
const AUDIO: u64 = 2;

/// The chosen video track.
#[derive(Debug)]
pub struct VideoTrack {
    pub number: u64,
    pub codec: Codec,
    /// Parameter sets (from CodecPrivate, then in band) and access units.
    pub video: Video,
    /// Bytes of each NAL unit's length prefix (1 to 4).
    pub nal_length: usize,
    /// Bytes removed from the start of every frame (header stripping), put back.
    pub strip: Vec<u8>,
    /// Nanoseconds per frame, for laced frames after the first.
    pub default_duration: Option<u64>,
}

/// How the chosen audio track's frames become samples.
#[derive(Debug)]
pub enum AudioCoding {
    /// Raw AAC access units, as they are; `frame_length` samples each.
    Aac { frame_length: u32 },
    /// 16-bit PCM, to FLAC frames; little-endian samples are turned around for the L16
    /// (big-endian) path that camera audio takes.
    Pcm {
        flac: Box<PcmToFlac>,
        little_endian: bool,
    },
}

#[derive(Debug)]
pub struct AudioTrack {
    pub number: u64,
    pub params: TrackParams,
    pub coding: AudioCoding,
    pub strip: Vec<u8>,
    pub cadence: Cadence,
}

/// The tracks chosen, and what was left out (said once by the caller).
#[derive(Debug)]
pub struct Selection {
    pub video: VideoTrack,
    pub audio: Option<AudioTrack>,
    pub warnings: Vec<String>,
}

/// Chooses the tracks to record, or refuses the file.
pub fn select(doc: DocType, entries: &[TrackEntry]) -> Result<Selection, MkvError> {
    let mut warnings = Vec::new();
    let videos: Vec<&TrackEntry> = entries
        .iter()
        .filter(|t| t.kind == VIDEO && t.enabled)
        .collect();
    let Some(v) = videos.iter().find(|t| video_codec(&t.codec_id).is_some()) else {
        return Err(match videos.first() {
            Some(t) => MkvError::Unsupported(format!(
                "{} whose video is {} ({}); preroll records H.264 and H.265 video",
                doc.describe(),
                codec_name(&t.codec_id),
                t.codec_id
            )),
            None => MkvError::Unsupported(format!(
                "{} with no video track (it holds {})",
                doc.describe(),
                listing(entries)
            )),
        });
    };
    let video = video_track(doc, v)?;
    for t in &videos {
        if t.number != v.number {
            warnings.push(format!(
                "track {}: {} video is left out (one video track is recorded)",
                t.number,
                codec_name(&t.codec_id)
            ));
        }
    }
    let mut audio = None;
    for t in entries.iter().filter(|t| t.kind == AUDIO && t.enabled) {
        if audio.is_some() {
            warnings.push(format!(
                "track {}: {} audio is left out (one audio track is recorded)",
                t.number,
                codec_name(&t.codec_id)
            ));
            continue;
        }
        match audio_track(t) {
            Ok(a) => audio = Some(a),
            Err(why) => warnings.push(format!(
                "track {}: {} audio is left out ({why})",
                t.number,
                codec_name(&t.codec_id)
            )),
        }
    }
    Ok(Selection {
        video,
        audio,
        warnings,
    })
}

fn video_codec(codec_id: &str) -> Option<Codec> {
    match codec_id {
        "V_MPEG4/ISO/AVC" => Some(Codec::H264),
        "V_MPEGH/ISO/HEVC" => Some(Codec::H265),
        _ => None,
    }
}

/// A codec's common name, for messages.
fn codec_name(codec_id: &str) -> &str {
    match codec_id {
        "V_MPEG4/ISO/AVC" => "H.264",
        "V_MPEGH/ISO/HEVC" => "H.265",
        "V_MPEGI/ISO/VVC" => "H.266 (VVC)",
        "V_VP8" => "VP8",
        "V_VP9" => "VP9",
        "V_AV1" => "AV1",
        "V_MPEG1" => "MPEG-1 video",
        "V_MPEG2" => "MPEG-2 video",
        "V_MPEG4/ISO/SP" | "V_MPEG4/ISO/ASP" | "V_MPEG4/ISO/AP" => "MPEG-4 Part 2",
        "V_MPEG4/MS/V3" => "MS MPEG-4 v3",
        "V_THEORA" => "Theora",
        "V_MJPEG" => "Motion JPEG",
        "V_PRORES" => "ProRes",
        "V_FFV1" => "FFV1",
        "V_UNCOMPRESSED" => "uncompressed video",
        "V_MS/VFW/FOURCC" => "a Video for Windows codec",
        "A_AAC" => "AAC",
        "A_OPUS" => "Opus",
        "A_VORBIS" => "Vorbis",
        "A_FLAC" => "FLAC",
        "A_ALAC" => "ALAC",
        "A_MPEG/L3" => "MP3",
        "A_MPEG/L2" => "MP2",
        "A_AC3" => "AC-3",
        "A_EAC3" => "E-AC-3",
        "A_DTS" => "DTS",
        "A_TRUEHD" => "TrueHD",
        "A_PCM/INT/LIT" | "A_PCM/INT/BIG" => "PCM",
        "A_PCM/FLOAT/IEEE" => "float PCM",
        "A_MS/ACM" => "an ACM codec",
        id if id.starts_with("A_AAC/") => "AAC",
        id if id.starts_with("V_REAL/") => "RealVideo",
        id => id,
    }
}

/// "H.264 video (track 1), Opus audio (track 2)".
fn listing(entries: &[TrackEntry]) -> String {
    let kinds: Vec<String> = entries
        .iter()
        .map(|t| {
            let kind = match t.kind {
                VIDEO => "video",
                AUDIO => "audio",
                17 => "subtitles",
                _ => "data",
            };
            format!("{} {kind} (track {})", codec_name(&t.codec_id), t.number)
        })
        .collect();
    if kinds.is_empty() {
        "no tracks".into()
    } else {
        kinds.join(", ")
    }
}

fn strip_bytes(t: &TrackEntry) -> Result<Vec<u8>, String> {
    match &t.encoding {
        Encoding::Plain => Ok(Vec::new()),
        Encoding::Stripped(bytes) => Ok(bytes.clone()),
        Encoding::Other(what) => Err(format!("{what}, which preroll does not undo")),
    }
}

fn video_track(doc: DocType, t: &TrackEntry) -> Result<VideoTrack, MkvError> {
    let codec = video_codec(&t.codec_id).unwrap_or(Codec::H264);
    let refuse = |why: String| {
        MkvError::Unsupported(format!(
            "{} whose {codec} video (track {}) {why}",
            doc.describe(),
            t.number
        ))
    };
    let strip = strip_bytes(t).map_err(|w| refuse(format!("has {w}")))?;
    let config = match codec {
        Codec::H265 => hvcc(&t.codec_private),
        _ => avcc(&t.codec_private),
    };
    let Some((nal_length, sets)) = config else {
        let name = if codec == Codec::H265 { "hvcC" } else { "avcC" };
        return Err(refuse(format!(
            "has no readable {name} in its CodecPrivate ({} bytes)",
            t.codec_private.len()
        )));
    };
    let mut video = Video::new(codec);
    for nal in sets {
        video.parameter_set(nal);
    }
    Ok(VideoTrack {
        number: t.number,
        codec,
        video,
        nal_length,
        strip,
        default_duration: t.default_duration,
    })
}

/// Reads a big-endian u16 length and that many bytes at `*pos`.
fn sized<'a>(p: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::from(u16::from_be_bytes([*p.get(*pos)?, *p.get(*pos + 1)?]));
    let nal = p.get(*pos + 2..*pos + 2 + len)?;
    *pos += 2 + len;
    Some(nal)
}

/// AVCDecoderConfigurationRecord (ISO 14496-15 §5.3.3): the NAL length size and the SPS and
/// PPS it holds.
fn avcc(p: &[u8]) -> Option<(usize, Vec<&[u8]>)> {
    if *p.first()? != 1 {
        return None;
    }
    let nal_length = usize::from(*p.get(4)? & 0x03) + 1;
    let mut sets = Vec::new();
    let mut pos = 6;
    for _ in 0..(*p.get(5)? & 0x1f) {
        sets.push(sized(p, &mut pos)?);
    }
    let pps = *p.get(pos)?;
    pos += 1;
    for _ in 0..pps {
        sets.push(sized(p, &mut pos)?);
    }
    Some((nal_length, sets))
}

/// HEVCDecoderConfigurationRecord (ISO 14496-15 §8.3.3): the NAL length size and the NAL
/// units of its arrays (VPS, SPS, PPS, SEI…).
fn hvcc(p: &[u8]) -> Option<(usize, Vec<&[u8]>)> {
    if *p.first()? != 1 {
        return None;
    }
    let nal_length = usize::from(*p.get(21)? & 0x03) + 1;
    let mut sets = Vec::new();
    let mut pos = 23;
    for _ in 0..*p.get(22)? {
        let count = u16::from_be_bytes([*p.get(pos + 1)?, *p.get(pos + 2)?]);
        pos += 3;
        for _ in 0..count {
            sets.push(sized(p, &mut pos)?);
        }
    }
    Some((nal_length, sets))
}

fn audio_track(t: &TrackEntry) -> Result<AudioTrack, String> {
    let strip = strip_bytes(t)?;
    let id = t.codec_id.as_str();
    let (params, coding) = if id == "A_AAC" || id.starts_with("A_AAC/") {
        let asc = if id == "A_AAC" && !t.codec_private.is_empty() {
            t.codec_private.clone()
        } else {
            old_style_config(t)?.to_vec()
        };
        let track = aac::track(&asc)?;
        (
            track.params,
            AudioCoding::Aac {
                frame_length: track.frame_length,
            },
        )
    } else if id == "A_PCM/INT/LIT" || id == "A_PCM/INT/BIG" {
        if t.bit_depth != 16 {
            return Err(format!(
                "{}-bit PCM: 16-bit PCM is kept (as FLAC)",
                t.bit_depth
            ));
        }
        let rate = rate_of(t)?;
        let channels = u16::try_from(t.channels).unwrap_or(u16::MAX);
        let flac = PcmToFlac::new(PcmCodec::L16, rate, channels).map_err(|e| e.to_string())?;
        let params = TrackParams {
            kind: TrackKind::Audio,
            codec: Codec::Flac,
            timescale: rate,
            sample_entry: Bytes::from(flac.sample_entry()),
            width: 0,
            height: 0,
        };
        let coding = AudioCoding::Pcm {
            flac: Box::new(flac),
            little_endian: id == "A_PCM/INT/LIT",
        };
        (params, coding)
    } else if id == "A_OPUS" {
        // The clip writer has no `dOps` (Opus in MP4) entry yet; with it, Opus would pass
        // through as RTSP Opus does, its CodecDelay becoming the pre-skip.
        return Err("Opus from files is not written into clips yet".into());
    } else {
        return Err("AAC and 16-bit PCM are kept from Matroska files".into());
    };
    Ok(AudioTrack {
        number: t.number,
        params,
        coding,
        strip,
        cadence: Cadence::default(),
    })
}

/// A whole-number sampling rate from the track's SamplingFrequency.
fn rate_of(t: &TrackEntry) -> Result<u32, String> {
    let f = t.sampling_frequency;
    if !(f >= 1.0 && f <= f64::from(u32::MAX) && f.fract() == 0.0) {
        return Err(format!("a sampling frequency of {f} Hz"));
    }
    Ok(f as u32)
}

/// The AudioSpecificConfig that an old-style id (`A_AAC/MPEG4/LC`, `A_AAC/MPEG2/MAIN`…)
/// and the track's rate and channels describe.
fn old_style_config(t: &TrackEntry) -> Result<[u8; 2], String> {
    let profile = t.codec_id.rsplit('/').next().unwrap_or_default();
    let object_type = match profile {
        "MAIN" => 1,
        "LC" | "A_AAC" => 2,
        "SSR" => 3,
        "LTP" => 4,
        _ => {
            return Err(format!(
                "AAC profile {profile} without an AudioSpecificConfig"
            ));
        }
    };
    let rate = rate_of(t)?;
    let index = RATES
        .iter()
        .position(|&r| r == rate)
        .ok_or_else(|| format!("AAC at {rate} Hz without an AudioSpecificConfig"))?;
    let channels = u8::try_from(t.channels)
        .ok()
        .filter(|c| (1..=7).contains(c))
        .ok_or_else(|| format!("AAC with {} channels", t.channels))?;
    Ok(aac::config(object_type, index as u8, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(number: u64, kind: u64, codec_id: &str) -> TrackEntry {
        TrackEntry {
            number,
            kind,
            enabled: true,
            codec_id: codec_id.into(),
            codec_private: Vec::new(),
            default_duration: None,
            codec_delay: 0,
            seek_pre_roll: 0,
            width: 0,
            height: 0,
            sampling_frequency: 48000.0,
            channels: 2,
            bit_depth: 16,
            encoding: Encoding::Plain,
        }
    }

    #[test]
    fn refuses_video_it_does_not_record_naming_the_codec() {
        let e = select(DocType::WebM, &[entry(1, VIDEO, "V_VP9")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a WebM file whose video is VP9 (V_VP9); preroll records H.264 and H.265 video"
        );
        let e = select(DocType::Matroska, &[entry(1, AUDIO, "A_OPUS")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("no video track (it holds Opus audio (track 1))")
        );
    }

    #[test]
    fn names_audio_it_leaves_out_and_keeps_aac_and_pcm() {
        // An avcC with no parameter sets: the sets may still come in band.
        let mut v = entry(1, VIDEO, "V_MPEG4/ISO/AVC");
        v.codec_private = vec![1, 0x64, 0, 0x1f, 0xff, 0xe0, 0];
        let s = select(DocType::Matroska, &[v.clone(), entry(2, AUDIO, "A_OPUS")]).unwrap();
        assert_eq!(s.video.nal_length, 4);
        assert!(s.audio.is_none());
        assert!(
            s.warnings[0].contains("Opus audio is left out"),
            "{:?}",
            s.warnings
        );
        let s = select(
            DocType::Matroska,
            &[v.clone(), entry(2, AUDIO, "A_AAC/MPEG4/LC")],
        )
        .unwrap();
        let a = s.audio.unwrap();
        assert_eq!((a.params.codec, a.params.timescale), (Codec::Aac, 48_000));
        let s = select(DocType::Matroska, &[v, entry(3, AUDIO, "A_PCM/INT/LIT")]).unwrap();
        assert_eq!(s.audio.unwrap().params.codec, Codec::Flac);
    }

    #[test]
    fn refuses_a_cut_configuration_record() {
        let mut v = entry(1, VIDEO, "V_MPEGH/ISO/HEVC");
        v.codec_private = vec![1; 30];
        let e = select(DocType::Matroska, &[v]).unwrap_err().to_string();
        assert!(e.contains("hvcC"), "{e}");
        assert_eq!(avcc(&[1, 0, 0, 0, 0xff, 0xe1, 0, 9, 1]), None);
    }
}
