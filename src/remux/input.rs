//! Reading remux inputs from disk: init segments into memory, media fragments as sample
//! tables whose payloads stay in the file (copied file-to-file when the clip is written).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::mp4::fragment::parse_moof;
use crate::mp4::kinds::{FREE, FTYP, MDAT, MFHD, MOOF, MOOV, MVEX, MVHD};
use crate::mp4::{BoxHeader, BoxRef, FileRange, FourCc, Fragment, InitSegment, MediaData};

use super::playlist::{self, Resource};

/// Largest `moov` or `moof` read into memory. Real ones are kilobytes; a larger size is
/// corruption and must not make us allocate it.
pub const MAX_HEADER_BOX: u64 = 64 << 20;

/// A problem with one input file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct InputError {
    pub path: PathBuf,
    pub problem: String,
}

impl InputError {
    pub fn new(path: &Path, problem: impl Into<String>) -> Self {
        InputError {
            path: path.to_owned(),
            problem: problem.into(),
        }
    }
}

/// One input stream: an init and the media that follows it, in order.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// The path the user named (for messages).
    pub source: PathBuf,
    pub parts: Vec<Part>,
}

/// A run of media under one init; a new part starts at an HLS discontinuity or a new init.
#[derive(Debug, Clone)]
pub struct Part {
    pub init: Resource,
    /// Each becomes one segment (an `.m4s` file, a byte range, or a whole fragmented file
    /// after its init).
    pub media: Vec<Resource>,
    /// Whether this part starts a new stream (reset timestamps) rather than continuing.
    pub new_stream: bool,
}

impl StreamPlan {
    /// Bytes of media the plan will read.
    pub fn media_bytes(&self) -> u64 {
        self.parts
            .iter()
            .flat_map(|p| &p.media)
            .map(|r| {
                r.len
                    .unwrap_or_else(|| file_len(&r.path).saturating_sub(r.offset))
            })
            .sum()
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Works out what an input path holds: an HLS playlist, a directory written by ffmpeg's HLS
/// fMP4 muxer (playlist order if it has one, else init + `.m4s` files in natural order), or a
/// single fragmented MP4.
pub fn plan(input: &Path) -> Result<StreamPlan, InputError> {
    let meta = std::fs::metadata(input).map_err(|e| InputError::new(input, e.to_string()))?;
    let parts = if meta.is_dir() {
        plan_dir(input)?
    } else if input.extension().is_some_and(|e| e == "m3u8") {
        plan_playlist(input)?
    } else {
        let whole = Resource {
            path: input.to_owned(),
            offset: 0,
            len: None,
        };
        vec![Part {
            init: whole.clone(),
            media: vec![whole],
            new_stream: true,
        }]
    };
    Ok(StreamPlan {
        source: input.to_owned(),
        parts,
    })
}

fn plan_playlist(path: &Path) -> Result<Vec<Part>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::new(path, e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let segments = playlist::parse(&text, base).map_err(|e| InputError::new(path, e))?;
    let mut parts: Vec<Part> = Vec::new();
    for (i, s) in segments.into_iter().enumerate() {
        match parts.last_mut() {
            Some(p) if p.init == s.init && !s.discontinuity => p.media.push(s.resource),
            _ => parts.push(Part {
                init: s.init,
                media: vec![s.resource],
                new_stream: i == 0 || s.discontinuity,
            }),
        }
    }
    if parts.is_empty() {
        return Err(InputError::new(path, "playlist lists no segments"));
    }
    Ok(parts)
}

fn plan_dir(dir: &Path) -> Result<Vec<Part>, InputError> {
    let mut playlists = Vec::new();
    let mut segments = Vec::new();
    let mut inits = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| InputError::new(dir, e.to_string()))?;
    for e in entries {
        let e = e.map_err(|e| InputError::new(dir, e.to_string()))?;
        let p = e.path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("m3u8") => playlists.push(p),
            Some("m4s") => segments.push(p),
            Some("mp4" | "m4v" | "m4a" | "cmfv" | "init") => inits.push(p),
            _ => {}
        }
    }
    match playlists.len() {
        1 => return plan_playlist(&playlists[0]),
        0 => {}
        _ => {
            return Err(InputError::new(
                dir,
                format!("holds {} playlists; name the one to remux", playlists.len()),
            ));
        }
    }
    if segments.is_empty() {
        return Err(InputError::new(
            dir,
            "holds no playlist and no .m4s segments",
        ));
    }
    let init = match inits.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(InputError::new(
                dir,
                "holds .m4s segments but no init segment (.mp4)",
            ));
        }
        many => {
            // Prefer the one named like an init.
            let named: Vec<_> = many
                .iter()
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains("init"))
                })
                .collect();
            match named.as_slice() {
                [one] => (*one).clone(),
                _ => {
                    return Err(InputError::new(
                        dir,
                        "holds several .mp4 files; cannot tell which is the init segment",
                    ));
                }
            }
        }
    };
    segments.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    Ok(vec![Part {
        init: Resource {
            path: init,
            offset: 0,
            len: None,
        },
        media: segments
            .into_iter()
            .map(|path| Resource {
                path,
                offset: 0,
                len: None,
            })
            .collect(),
        new_stream: true,
    }])
}

/// Orders "seg2" before "seg10".
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (trim_zeros(&a[..na]), trim_zeros(&b[..nb]));
                let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|&&c| c == b'0').count();
    &d[z.min(d.len().saturating_sub(1))..]
}

/// An open input file restricted to a byte range.
#[derive(Debug)]
pub struct BoxFile {
    path: PathBuf,
    file: Arc<File>,
    pos: u64,
    end: u64,
    /// A clip preroll finished in place: its fragmented header and `moof`s are hidden as
    /// `free` boxes (see `mp4::hidden`), and read as what they were.
    hidden: bool,
}

impl BoxFile {
    pub fn open(r: &Resource) -> Result<BoxFile, InputError> {
        let file = File::open(&r.path).map_err(|e| InputError::new(&r.path, e.to_string()))?;
        let size = file
            .metadata()
            .map_err(|e| InputError::new(&r.path, e.to_string()))?
            .len();
        let end = match r.len {
            Some(l) => r.offset.saturating_add(l).min(size),
            None => size,
        };
        Ok(BoxFile {
            path: r.path.clone(),
            file: Arc::new(file),
            pos: r.offset,
            end,
            hidden: false,
        })
    }

    fn err(&self, problem: impl Into<String>) -> InputError {
        InputError::new(&self.path, problem)
    }

    /// The next top-level box header, or `None` at the end of the range.
    fn next_header(&mut self) -> Result<Option<(BoxHeader, u64)>, InputError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let mut buf = [0u8; BoxHeader::MAX_LEN];
        let n = (self.end - self.pos).min(buf.len() as u64) as usize;
        self.file
            .read_exact_at(&mut buf[..n], self.pos)
            .map_err(|e| self.err(format!("reading at byte {}: {e}", self.pos)))?;
        let header = BoxHeader::parse(&buf[..n], self.pos)
            .map_err(|e| self.err(e.to_string()))?
            .ok_or_else(|| {
                self.err(format!(
                    "{n} trailing bytes at byte {} are too few for a box",
                    self.pos
                ))
            })?;
        let size = match header.size {
            Some(s) => s,
            None => self.end - self.pos,
        };
        if self.pos + size > self.end {
            return Err(self.err(format!(
                "{} box at byte {} claims {size} bytes but only {} remain (truncated file?)",
                header.kind,
                self.pos,
                self.end - self.pos
            )));
        }
        Ok(Some((header, size)))
    }

    /// The kind of the first box inside `header`'s box, when it is not empty.
    fn first_child(&self, header: &BoxHeader, size: u64) -> Result<Option<[u8; 4]>, InputError> {
        let at = header.offset + u64::from(header.header_len);
        if size < u64::from(header.header_len) + 8 {
            return Ok(None);
        }
        let mut kind = [0u8; 4];
        self.file
            .read_exact_at(&mut kind, at + 4)
            .map_err(|e| self.err(format!("reading at byte {}: {e}", at + 4)))?;
        Ok(Some(kind))
    }

    /// Whether `header` is a `free` box hiding a box whose first child is `child`.
    fn hides(&self, header: &BoxHeader, size: u64, child: FourCc) -> Result<bool, InputError> {
        Ok(header.kind == FREE && self.first_child(header, size)? == Some(child.0))
    }

    /// Whether a `moov` announces fragments (has an `mvex`). One too large to read is a
    /// progressive file's: a fragmented file's moov is kilobytes.
    fn fragmented(&self, header: &BoxHeader, size: u64) -> Result<bool, InputError> {
        if size > MAX_HEADER_BOX {
            return Ok(false);
        }
        let raw = self.read_box(header, size)?;
        let moov = BoxRef {
            kind: MOOV,
            offset: header.offset,
            header_len: header.header_len,
            body: raw
                .get(usize::from(header.header_len)..)
                .unwrap_or_default(),
        };
        moov.find(MVEX)
            .map(|b| b.is_some())
            .map_err(|e| self.err(e.to_string()))
    }

    /// Reads a whole box into memory (bounded by [`MAX_HEADER_BOX`]).
    fn read_box(&self, header: &BoxHeader, size: u64) -> Result<Bytes, InputError> {
        if size > MAX_HEADER_BOX {
            return Err(self.err(format!(
                "{} box at byte {} is {size} bytes; refusing to read more than {MAX_HEADER_BOX}",
                header.kind, header.offset
            )));
        }
        let mut buf = vec![0u8; size as usize];
        self.file
            .read_exact_at(&mut buf, header.offset)
            .map_err(|e| {
                self.err(format!(
                    "reading {} box at byte {}: {e}",
                    header.kind, header.offset
                ))
            })?;
        Ok(Bytes::from(buf))
    }

    /// [`read_init`](Self::read_init) for a fragmented input: a progressive MP4 (one
    /// `moov` listing every sample; not one preroll finished, whose fragments are hidden)
    /// is refused, saying so.
    pub fn read_fragmented_init(&mut self) -> Result<InitSegment, InputError> {
        let start = self.pos;
        let init = self.read_init()?;
        if self.hidden {
            return Ok(init);
        }
        let mut probe = BoxFile {
            path: self.path.clone(),
            file: self.file.clone(),
            pos: start,
            end: self.end,
            hidden: false,
        };
        while let Some((h, size)) = probe.next_header()? {
            if h.kind == MOOV {
                if !probe.fragmented(&h, size)? {
                    return Err(self.err(
                        "is a progressive MP4 (its samples are listed in one moov, not in \
                         fragments): remux joins fragmented MP4 (HLS fMP4 directories and \
                         playlists, fragmented files) and clips preroll wrote",
                    ));
                }
                break;
            }
            probe.pos = h.offset + size;
        }
        Ok(init)
    }

    /// Reads the init segment (everything up to and including `moov`) and leaves the
    /// position after it.
    pub fn read_init(&mut self) -> Result<InitSegment, InputError> {
        let start = self.pos;
        let mut mdat_before_moov = false;
        while let Some((h, size)) = self.next_header()? {
            if h.kind == MOOF {
                break;
            }
            if !mdat_before_moov && size <= MAX_HEADER_BOX && self.hides(&h, size, MVHD)? {
                // A finished preroll clip: its fragmented header, hidden. Read as a moov,
                // it describes the fragments that follow (also hidden).
                let raw =
                    self.read_box(&BoxHeader { offset: start, ..h }, h.offset + size - start)?;
                let mut raw = raw.to_vec();
                let at = (h.offset - start) as usize + 4;
                raw[at..at + 4].copy_from_slice(&MOOV.0);
                self.pos = h.offset + size;
                self.hidden = true;
                return InitSegment::parse(Bytes::from(raw), start)
                    .map_err(|e| self.err(e.to_string()));
            }
            if h.kind == MOOV {
                // Usually ftyp and moov are adjacent and small: read them together. A
                // progressive file may put its mdat first; then the moov is read alone.
                let raw_start = if mdat_before_moov { h.offset } else { start };
                let whole = BoxHeader {
                    offset: raw_start,
                    ..h
                };
                let raw = self.read_box(&whole, h.offset + size - raw_start)?;
                self.pos = h.offset + size;
                return InitSegment::parse(raw, raw_start).map_err(|e| self.err(e.to_string()));
            }
            if h.kind == MDAT {
                mdat_before_moov = true;
            } else if h.kind != FTYP && size > MAX_HEADER_BOX {
                return Err(self.err(format!(
                    "{} box at byte {} before the moov is {size} bytes",
                    h.kind, h.offset
                )));
            }
            self.pos = h.offset + size;
        }
        Err(self.err("no moov box: not an MP4 init segment"))
    }

    /// Skips an init if the range starts with one (a whole fragmented file, or a clip
    /// preroll finished with its header hidden).
    pub fn skip_init(&mut self) -> Result<(), InputError> {
        let start = self.pos;
        while let Some((h, size)) = self.next_header()? {
            if h.kind == MOOF {
                self.pos = h.offset;
                return Ok(());
            }
            if self.hides(&h, size, MVHD)? {
                self.hidden = true;
            } else if self.hidden && self.hides(&h, size, MFHD)? {
                self.pos = h.offset;
                return Ok(());
            }
            self.pos = h.offset + size;
        }
        self.pos = start;
        Ok(())
    }

    /// The next `moof` + `mdat` as a fragment whose payload stays in the file. Boxes in
    /// between (`styp`, `sidx`, `free`, …) are skipped.
    pub fn next_fragment(&mut self, init: &InitSegment) -> Result<Option<Fragment>, InputError> {
        let mut moof: Option<(BoxHeader, Bytes)> = None;
        while let Some((h, size)) = self.next_header()? {
            self.pos = h.offset + size;
            if h.kind == MOOF || (self.hidden && self.hides(&h, size, MFHD)?) {
                if moof.is_some() {
                    return Err(self.err(format!(
                        "moof at byte {} follows a moof with no mdat",
                        h.offset
                    )));
                }
                moof = Some((h, self.read_box(&h, size)?));
            } else if h.kind == MDAT {
                let Some((mh, raw)) = moof.take() else {
                    continue; // data no fragment refers to
                };
                let payload_offset = h.offset + u64::from(h.header_len);
                let payload_len = size - u64::from(h.header_len);
                let hl = usize::from(mh.header_len);
                let moof_ref = BoxRef {
                    kind: MOOF,
                    offset: mh.offset,
                    header_len: mh.header_len,
                    body: &raw[hl..],
                };
                let (sequence, tracks) = parse_moof(moof_ref, payload_offset, payload_len, init)
                    .map_err(|e| self.err(e.to_string()))?;
                return Ok(Some(Fragment {
                    sequence,
                    tracks,
                    data: MediaData::File(FileRange {
                        file: self.file.clone(),
                        offset: payload_offset,
                        len: payload_len,
                    }),
                }));
            } else if h.kind == MOOV && self.hidden {
                // The index finishing added: it lists the same samples as the fragments.
                continue;
            } else if h.kind == MOOV {
                return Err(self.err(format!(
                    "a second moov at byte {} among the fragments",
                    h.offset
                )));
            }
        }
        match moof {
            Some((h, _)) => Err(self.err(format!(
                "moof at byte {} has no mdat after it (truncated file?)",
                h.offset
            ))),
            None => Ok(None),
        }
    }

    /// Current read position (absolute in the file).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// End of the range (absolute in the file).
    pub fn end(&self) -> u64 {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn natural_order() {
        let mut v = vec!["s10.m4s", "s2.m4s", "s1.m4s", "s02b.m4s"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["s1.m4s", "s2.m4s", "s02b.m4s", "s10.m4s"]);
    }
}
