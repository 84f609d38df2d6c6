//! The camera's SDP as retina is shown it. retina has no depacketizer for Opus or MP4A-LATM and
//! refuses a session in which a set-up stream lacks one, so those media are renamed to
//! encodings retina passes on untouched, chosen by what each payload format needs:
//!
//! - Opus (RFC 7587) is exactly one Opus packet per RTP packet: shown as `U8` audio, which
//!   retina's simple-audio path hands out one RTP payload per frame, with its timestamp.
//! - MP4A-LATM (RFC 3016) may split an AudioMuxElement across packets and marks its last one:
//!   shown as `application/vnd.onvif.metadata`, which retina joins up to the RTP marker.
//!
//! What each renamed media really is (its fmtp included) is recorded for the source.

use super::super::redact::camera_text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealCodec {
    /// `channels` from `sprop-stereo` (RFC 7587 §7.1: 1 when absent).
    Opus { channels: u16 },
    Latm {
        clock_rate: u32,
        channels: u16,
        fmtp: String,
    },
}

impl RealCodec {
    /// The encoding name retina is shown (and reports, lower-cased).
    pub fn shown_as(&self) -> &'static str {
        match self {
            RealCodec::Opus { .. } => "u8",
            RealCodec::Latm { .. } => "vnd.onvif.metadata",
        }
    }
}

/// A media section presented to retina under another name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealMedia {
    /// Its `a=control` value, which names the stream in retina's session too.
    pub control: Option<String>,
    pub codec: RealCodec,
}

/// Checks that every line of an SDP is `<letter>=<text>` with no control characters (RFC
/// 8866 §5) before retina parses it: the SDP parser retina uses panics on some malformed
/// lines (a line without `=` inside a media section), and camera text must not carry
/// escape sequences into logs. The error names the first bad line, escaped.
pub fn check(body: &[u8]) -> Result<(), String> {
    // Lines as the SDP parser cuts them: at `\n`, less one `\r` before it. A lone `\r` is
    // then a control character inside a line, and a line of only `\r` is not empty: that
    // parser fails on such a line in a way that later panics (rtsp_camera fuzz target).
    for (n, line) in body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let well_formed = line.len() >= 2
            && line[0].is_ascii_alphabetic()
            && line[1] == b'='
            && !line.iter().any(|&b| b.is_ascii_control() && b != b'\t');
        if !well_formed {
            return Err(format!(
                "line {} is not <letter>=<text>: {}",
                n + 1,
                camera_text(line, 80)
            ));
        }
    }
    Ok(())
}

/// The SDP to hand retina and what was renamed in it; `None` when nothing needed renaming
/// (the body then goes on byte for byte).
pub fn rewrite(body: &[u8]) -> Option<(Vec<u8>, Vec<RealMedia>)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    // Media sections: [start, end) line ranges from each `m=` line.
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("m="))
        .collect();
    let mut real = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(lines.len());
        let m_line = lines[start].trim_end_matches('\r').to_owned();
        let mut fields = m_line["m=".len()..].split_whitespace();
        let (Some(media), Some(pt)) = (fields.next(), fields.nth(2)) else {
            continue;
        };
        if media != "audio" {
            continue;
        }
        let attr = |lines: &[String], name: &str| -> Option<(usize, String)> {
            (start..end).find_map(|i| {
                let l = lines[i].trim_end_matches('\r');
                let v = l
                    .strip_prefix("a=")?
                    .strip_prefix(name)?
                    .strip_prefix(':')?;
                Some((i, v.to_owned()))
            })
        };
        let for_pt = |lines: &[String], name: &str| -> Option<(usize, String)> {
            (start..end).find_map(|i| {
                let l = lines[i].trim_end_matches('\r');
                let v = l
                    .strip_prefix("a=")?
                    .strip_prefix(name)?
                    .strip_prefix(':')?;
                let (p, rest) = v.split_once(' ')?;
                (p == pt).then(|| (i, rest.trim().to_owned()))
            })
        };
        let Some((rtpmap_at, rtpmap)) = for_pt(&lines, "rtpmap") else {
            continue;
        };
        let mut parts = rtpmap.split('/');
        let encoding = parts.next().unwrap_or_default().to_ascii_lowercase();
        let clock_rate: u32 = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
        let rtpmap_channels: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
        let fmtp = for_pt(&lines, "fmtp").map(|(_, f)| f).unwrap_or_default();
        let control = attr(&lines, "control").map(|(_, c)| c);
        let cr = if lines[rtpmap_at].ends_with('\r') {
            "\r"
        } else {
            ""
        };
        let codec = match encoding.as_str() {
            "opus" => {
                let stereo = fmtp_value(&fmtp, "sprop-stereo") == Some("1");
                let channels = if stereo { 2 } else { 1 };
                lines[rtpmap_at] = format!("a=rtpmap:{pt} U8/{clock_rate}/{channels}{cr}");
                RealCodec::Opus { channels }
            }
            "mp4a-latm" => {
                let m_cr = if lines[start].ends_with('\r') {
                    "\r"
                } else {
                    ""
                };
                // Renamed only when laid out as usual (`m=audio PORT…`): the line is rebuilt
                // from what follows the media name.
                let Some(rest) = m_line.strip_prefix("m=audio") else {
                    continue;
                };
                lines[start] = format!("m=application{rest}{m_cr}");
                lines[rtpmap_at] = format!("a=rtpmap:{pt} vnd.onvif.metadata/{clock_rate}{cr}");
                RealCodec::Latm {
                    clock_rate,
                    channels: rtpmap_channels,
                    fmtp,
                }
            }
            _ => continue,
        };
        tracing::debug!(
            "SDP media {k} ({}) shown to retina under another encoding",
            camera_text(rtpmap.as_bytes(), 80)
        );
        real.push(RealMedia { control, codec });
    }
    if real.is_empty() {
        return None;
    }
    Some((lines.join("\n").into_bytes(), real))
}

/// The value of `key` in an fmtp parameter list (`a=1;b=2`).
pub fn fmtp_value<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GST_OPUS: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=control:*\r\n\
        m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n\
        m=audio 0 RTP/AVP 97\r\na=rtpmap:97 OPUS/48000/2\r\n\
        a=fmtp:97 sprop-stereo=1;sprop-maxcapturerate=48000\r\na=control:stream=1\r\n";

    #[test]
    fn opus_is_shown_as_u8() {
        let (sdp, real) = rewrite(GST_OPUS.as_bytes()).unwrap();
        let sdp = String::from_utf8(sdp).unwrap();
        assert_eq!(sdp, GST_OPUS.replace("OPUS/48000/2", "U8/48000/2"));
        assert_eq!(
            real,
            vec![RealMedia {
                control: Some("stream=1".into()),
                codec: RealCodec::Opus { channels: 2 }
            }]
        );
    }

    #[test]
    fn latm_is_shown_as_onvif_metadata() {
        let sdp = "v=0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n\
                   m=audio 0 RTP/AVP 96\na=rtpmap:96 MP4A-LATM/16000/1\n\
                   a=fmtp:96 cpresent=0;config=40002810\n";
        let (out, real) = rewrite(sdp.as_bytes()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("\nm=application 0 RTP/AVP 96\na=rtpmap:96 vnd.onvif.metadata/16000\n"),
            "{out}"
        );
        assert_eq!(
            real[0].codec,
            RealCodec::Latm {
                clock_rate: 16000,
                channels: 1,
                fmtp: "cpresent=0;config=40002810".into()
            }
        );
        assert_eq!(real[0].control, None);
    }

    #[test]
    fn malformed_lines_are_refused_and_shown_escaped() {
        let good = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nm=video 0 RTP/AVP 96\r\n\
                     a=rtpmap:96 H264/90000\ta=b\n";
        assert_eq!(check(good), Ok(()));
        for (bad, line) in [
            (
                &b"v=0\r\nm=video 0 RTP/AVP 96\r\na=fmtp:96 x\nERROR forged\r\n"[..],
                4,
            ),
            (b"v=0\r\ns=\x1b[31mred\r\n", 2),
            (b"v=0\r\n=novalue\r\n", 2),
            (b"v=0\r\nab=two letters\r\n", 2),
            (b"v=0\r\nx\r\n", 2),
            // Lines as the SDP parser cuts them: one of only `\r`, and a `\r` inside a line.
            (b"v=0\r\nm=video 0 RTP/AVP 96\r\n\r\r\nt=0 0\r\n", 3),
            (b"v=0\r\ns=a\rb\r\n", 2),
        ] {
            let e = check(bad).expect_err("malformed");
            assert!(e.starts_with(&format!("line {line} ")), "{e}");
            assert!(!e.chars().any(|c| c.is_control()), "{e:?}");
        }
    }

    /// What passes the check, the SDP parser retina uses takes without panicking: a line of
    /// only `\r` once made it fail on that line and then panic on the next (found by the
    /// `rtsp_camera` fuzz target).
    #[test]
    fn what_passes_the_check_does_not_panic_the_parser() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n\r\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n";
        assert!(check(sdp).is_err());
        let fine = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n";
        assert_eq!(check(fine), Ok(()));
        assert!(sdp_types::Session::parse(fine).is_ok());
    }

    #[test]
    fn odd_whitespace_does_not_panic() {
        let sdp = "v=0\nm=\u{3000}\u{3000}audio 0 RTP/AVP 96\na=rtpmap:96 MP4A-LATM/16000\n";
        assert!(rewrite(sdp.as_bytes()).is_none());
    }

    #[test]
    fn other_sdps_pass_untouched() {
        assert!(rewrite(GST_OPUS.replace("OPUS", "PCMU").as_bytes()).is_none());
        assert!(rewrite(&[0xff, 0xfe]).is_none());
    }
}
