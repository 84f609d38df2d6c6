//! The parts of an HLS media playlist (RFC 8216) that locate fMP4 segments.

use std::path::{Path, PathBuf};

/// A byte range of a file; `None` length means "to the end".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub path: PathBuf,
    pub offset: u64,
    pub len: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistSegment {
    pub resource: Resource,
    /// The init (`EXT-X-MAP`) in force for this segment.
    pub init: Resource,
    /// Set on the first segment after `EXT-X-DISCONTINUITY` (timestamps may restart).
    pub discontinuity: bool,
}

/// Parses a media playlist; relative URIs resolve against `base_dir`.
pub fn parse(text: &str, base_dir: &Path) -> Result<Vec<PlaylistSegment>, String> {
    if text.contains("#EXT-X-STREAM-INF") {
        return Err(
            "this is a multivariant (master) playlist; pass the media playlist it names".into(),
        );
    }
    let mut out = Vec::new();
    let mut init: Option<Resource> = None;
    let mut discontinuity = false;
    let mut pending_range: Option<(u64, Option<u64>)> = None;
    // Where the previous sub-range of each file ended, for BYTERANGE without an offset.
    let mut last_end: Option<(PathBuf, u64)> = None;
    let mut saw_header = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = n + 1;
        if line.is_empty() {
            continue;
        }
        if line == "#EXTM3U" {
            saw_header = true;
            continue;
        }
        if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            let uri = attribute(attrs, "URI")
                .ok_or_else(|| format!("line {lineno}: EXT-X-MAP without URI"))?;
            let path = resolve(base_dir, &uri)?;
            let (offset, len) = match attribute(attrs, "BYTERANGE") {
                Some(r) => {
                    let (len, off) = byterange(&r).map_err(|e| format!("line {lineno}: {e}"))?;
                    (off.unwrap_or(0), Some(len))
                }
                None => (0, None),
            };
            init = Some(Resource { path, offset, len });
        } else if let Some(r) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let (len, off) = byterange(r).map_err(|e| format!("line {lineno}: {e}"))?;
            pending_range = Some((len, off));
        } else if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if line.starts_with("#EXT-X-KEY") && !line.contains("METHOD=NONE") {
            return Err(format!(
                "line {lineno}: encrypted segments are not supported"
            ));
        } else if line.starts_with('#') {
            continue;
        } else {
            let path = resolve(base_dir, line)?;
            let init = init.clone().ok_or_else(|| {
                format!("line {lineno}: segment {line} before any EXT-X-MAP (not an fMP4 playlist)")
            })?;
            let (offset, len) = match pending_range.take() {
                Some((len, Some(off))) => (off, Some(len)),
                Some((len, None)) => match &last_end {
                    Some((p, end)) if *p == path => (*end, Some(len)),
                    _ => {
                        return Err(format!(
                            "line {lineno}: BYTERANGE without offset has no previous range of {line}"
                        ));
                    }
                },
                None => (0, None),
            };
            if let Some(len) = len {
                last_end = Some((path.clone(), offset + len));
            }
            out.push(PlaylistSegment {
                resource: Resource { path, offset, len },
                init,
                discontinuity: std::mem::take(&mut discontinuity),
            });
        }
    }
    if !saw_header {
        return Err("missing #EXTM3U header: not an HLS playlist".into());
    }
    Ok(out)
}

fn resolve(base_dir: &Path, uri: &str) -> Result<PathBuf, String> {
    if uri.contains("://") {
        return Err(format!("{uri}: only local files can be remuxed"));
    }
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    Ok(base_dir.join(uri))
}

/// `<n>[@<o>]`
fn byterange(s: &str) -> Result<(u64, Option<u64>), String> {
    let s = s.trim();
    let (len, off) = match s.split_once('@') {
        Some((l, o)) => (l, Some(o)),
        None => (s, None),
    };
    let len = len.parse().map_err(|_| format!("bad BYTERANGE {s:?}"))?;
    let off = off
        .map(|o| o.parse().map_err(|_| format!("bad BYTERANGE {s:?}")))
        .transpose()?;
    Ok((len, off))
}

/// Value of `NAME=` in an attribute list (quoted or not).
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value.to_owned());
        }
        rest = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ffmpeg_fmp4_playlists() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\nindex0.m4s\n#EXT-X-DISCONTINUITY\n#EXTINF:2.0,\nindex1.m4s?x=1\n#EXT-X-ENDLIST\n";
        let segs = parse(text, Path::new("/d")).unwrap();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].resource.path, Path::new("/d/index0.m4s"));
        assert_eq!(segs[1].resource.path, Path::new("/d/index1.m4s"));
        assert_eq!(segs[0].init.path, Path::new("/d/init.mp4"));
        assert!(!segs[0].discontinuity && segs[1].discontinuity);
    }

    #[test]
    fn reads_byte_ranges() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"a.mp4\",BYTERANGE=\"800@0\"\n#EXT-X-BYTERANGE:1000@800\na.mp4\n#EXT-X-BYTERANGE:500\na.mp4\n";
        let segs = parse(text, Path::new(".")).unwrap();
        assert_eq!(segs[0].init.len, Some(800));
        assert_eq!(
            (segs[0].resource.offset, segs[0].resource.len),
            (800, Some(1000))
        );
        assert_eq!(
            (segs[1].resource.offset, segs[1].resource.len),
            (1800, Some(500))
        );
    }

    #[test]
    fn refuses_what_it_cannot_remux() {
        assert!(parse("index0.m4s\n", Path::new(".")).is_err());
        assert!(
            parse("#EXTM3U\nseg.ts\n", Path::new("."))
                .unwrap_err()
                .contains("EXT-X-MAP")
        );
        assert!(
            parse(
                "#EXTM3U\n#EXT-X-MAP:URI=\"http://x/i.mp4\"\n",
                Path::new(".")
            )
            .is_err()
        );
        assert!(
            parse(
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n",
                Path::new(".")
            )
            .is_err()
        );
    }
}
