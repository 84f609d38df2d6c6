//! Salvaging clips whose recording was interrupted (a crash, `kill -9`, a power cut).
//!
//! A clip being written is `<path>.partial`: its header region (`ftyp`, `moov`, a `free` box
//! padding it), then one `moof` + `mdat` per fragment. Whatever stopped the recorder, the file
//! holds its complete fragments, possibly followed by a torn one. [`recover`] keeps the
//! complete fragments, cuts the rest, and finalizes the file the way
//! [`Recording::finish`](super::Recording::finish) does, in place: the recording's state is
//! rebuilt from the file ([`Recording::resume`](super::Recording)) and finished through the
//! same code path as a recording that ran to its end.
//!
//! A `.partial` may also have been caught finishing: its progressive `moov` appended and
//! durable, and the fragmented header and some `moof`s already hidden as `free` boxes. Then
//! recovery completes the hiding (see `finishing`).
//!
//! A running recorder holds an exclusive `flock` on its `.partial` for as long as it writes;
//! recovery takes the same lock without waiting and passes over a file it cannot lock. The
//! lock dies with the process, so after a `kill -9` the file can be recovered at once.

use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::mp4::fragment::parse_moof;
use crate::mp4::kinds::{FREE, FTYP, MDAT, MFHD, MOOF, MOOV, MVEX, MVHD, TRAF, TRAK};
use crate::mp4::moov::ftyp;
use crate::mp4::{BoxHeader, BoxRef, Boxes, FourCc, InitSegment, Mp4Error, TrackFragment};

use super::file::{ClipFile, PARTIAL_SUFFIX};
use super::finishing::{self, Finishing};
use super::place::{ClipPlace, Dir};
use super::{ClipSummary, Recording, RecoverError};

/// The largest header (`ftyp` + `moov`) or `moof` read into memory. A clip's are a few KiB;
/// anything near this is not a clip's.
pub(super) const MAX_BOX: u64 = 64 << 20;

/// The largest `free` box padding a clip's header region (it is 8 KiB and a bit).
const MAX_FREE: u64 = 1 << 20;

/// A `.partial` salvaged by [`recover`].
#[derive(Debug, Clone)]
pub struct Recovered {
    pub partial: PathBuf,
    /// The finished clip; `summary.path` is its final name. `segments` is 0: a recovered file
    /// does not know how many segments its fragments came from.
    pub summary: ClipSummary,
    /// Bytes cut after the last complete fragment (a torn fragment, or anything else).
    pub cut_bytes: u64,
    /// Why reading stopped before the end of the file, when it did.
    pub damage: Option<String>,
}

/// What [`recover`] would do with a `.partial`, as found by [`inspect`] (a dry run).
#[derive(Debug, Clone)]
pub struct Plan {
    pub partial: PathBuf,
    /// The final name it would get.
    pub path: PathBuf,
    /// Length of the clip it would make (longest track).
    pub duration: Duration,
    pub fragments: usize,
    /// Bytes it would keep before appending the index.
    pub keep: u64,
    /// Bytes it would cut after the last complete fragment.
    pub cut_bytes: u64,
    pub damage: Option<String>,
}

/// Salvages `partial` (a `<path>.partial` left by an interrupted recording) in place: keeps
/// its complete fragments, cuts what follows them, and finalizes it as `<path>` exactly as a
/// finished recording is (true durations and `mehd` in the header, `mfra` index, fsync,
/// rename without replacing, directory fsync).
///
/// - No complete fragment (only a header, or less): no media is lost, so the file is
///   removed and the error is [`RecoverError::Empty`] (as [`Recording::finish`] removes a
///   clip that captured nothing).
/// - Locked by a running recorder ([`RecoverError::Locked`]), `<path>` already exists, a
///   header preroll did not write, or a header that does not describe the fragments: the
///   file is left untouched and the error says why.
pub fn recover(partial: &Path) -> Result<Recovered, RecoverError> {
    recover_at(place_of(partial)?)
}

/// [`recover`] for the clip at `place` (its `.partial` beside it), as the service does for
/// what [`find_partials_beneath`] found: nothing is reached through a path again.
pub fn recover_at(place: ClipPlace) -> Result<Recovered, RecoverError> {
    let partial = &super::file::partial_path(&place.path());
    let (mut file, layout) = open_and_scan(place, false)?;
    let scan = match layout {
        Layout::Fragmented(scan) => scan,
        Layout::Finishing(f) => {
            // Its progressive moov is durable: hide what is left of the fragmented layout.
            file.hide_boxes(f.moofs.iter().copied())?;
            let path = file.path().to_owned();
            let (bytes, sync_time) = file.finish()?;
            return Ok(Recovered {
                partial: partial.to_owned(),
                summary: ClipSummary {
                    path,
                    duration: f.duration,
                    presented_from: None,
                    bytes,
                    segments: 0,
                    fragments: f.fragments,
                    dropped_samples: 0,
                    discontinuities: Vec::new(),
                    ignored_tracks: Vec::new(),
                    sync_time,
                    progressive: true,
                },
                cut_bytes: 0,
                damage: None,
            });
        }
    };
    if let Some(why) = scan.nothing_to_keep(partial)? {
        let bytes = scan.file_len;
        file.remove()?;
        return Err(RecoverError::Empty {
            partial: partial.to_owned(),
            bytes,
            why,
            removed: true,
        });
    }
    let cut_bytes = scan.file_len - scan.end;
    let damage = scan.damage.as_ref().map(|d| d.problem.clone());
    let recording = Recording::resume(file, &scan)?;
    let summary = recording.finish()?;
    tracing::debug!(
        partial = %partial.display(),
        clip = %summary.path.display(),
        cut_bytes,
        "recovered"
    );
    Ok(Recovered {
        partial: partial.to_owned(),
        summary,
        cut_bytes,
        damage,
    })
}

/// What [`recover`] would do with `partial`, without changing anything: the same checks and
/// the same errors ([`RecoverError::Empty`] with `removed: false` for a file it would
/// remove). It takes the lock for a moment, read-only, to see whether a recorder holds it.
pub fn inspect(partial: &Path) -> Result<Plan, RecoverError> {
    let (file, layout) = open_and_scan(place_of(partial)?, true)?;
    let scan = match layout {
        Layout::Fragmented(scan) => scan,
        Layout::Finishing(f) => {
            return Ok(Plan {
                partial: partial.to_owned(),
                path: file.path().to_owned(),
                duration: f.duration,
                fragments: f.fragments,
                keep: file.len(),
                cut_bytes: 0,
                damage: None,
            });
        }
    };
    if let Some(why) = scan.nothing_to_keep(partial)? {
        return Err(RecoverError::Empty {
            partial: partial.to_owned(),
            bytes: scan.file_len,
            why,
            removed: false,
        });
    }
    let duration = Recording::resumed_duration(&scan, partial)?;
    Ok(Plan {
        partial: partial.to_owned(),
        path: file.path().to_owned(),
        duration,
        fragments: scan.fragments.len(),
        keep: scan.end,
        cut_bytes: scan.file_len - scan.end,
        damage: scan.damage.map(|d| d.problem),
    })
}

/// Every `*.partial` regular file under `dir`, recursively, without following symlinks,
/// sorted.
pub fn find_partials(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let places = find_partials_beneath(&Dir::root(dir)?)?;
    Ok(places
        .iter()
        .map(|p| super::file::partial_path(&p.path()))
        .collect())
}

/// The clips under `root` that have a `*.partial` regular file, recursively, each reached
/// through directory handles opened without following a symlink (see `place`), sorted by
/// path.
pub fn find_partials_beneath(root: &Dir) -> io::Result<Vec<ClipPlace>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for (name, is_dir, is_file) in d.entries()? {
            if is_dir {
                // A directory replaced by a symlink since it was listed is refused here.
                match d.descend(Path::new(&name), false) {
                    Ok(sub) => dirs.push(sub),
                    Err(e) => tracing::debug!("{e}"),
                }
            } else if is_file && let Some(stem) = final_stem(&name) {
                out.push(ClipPlace {
                    dir: d.clone(),
                    name: stem,
                });
            }
        }
    }
    out.sort_by_key(|p| p.path());
    Ok(out)
}

/// `a.mp4` for `a.mp4.partial`; `None` when the name is not a partial clip's.
fn final_stem(name: &std::ffi::OsStr) -> Option<std::ffi::OsString> {
    let stem = name.as_bytes().strip_suffix(PARTIAL_SUFFIX.as_bytes())?;
    (!stem.is_empty()).then(|| std::ffi::OsStr::from_bytes(stem).to_owned())
}

/// The clip a `.partial` path belongs to, its directory opened.
fn place_of(partial: &Path) -> Result<ClipPlace, RecoverError> {
    let path = final_name(partial).ok_or_else(|| RecoverError::NotPartial {
        path: partial.to_owned(),
    })?;
    let place = ClipPlace::existing(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => RecoverError::Gone {
            partial: partial.to_owned(),
        },
        _ => RecoverError::Io {
            op: "opening the directory of",
            path: partial.to_owned(),
            source: e,
        },
    })?;
    Ok(place)
}

/// `<path>` for `<path>.partial`; `None` when the name is not a partial clip's.
pub fn final_name(partial: &Path) -> Option<PathBuf> {
    let name = partial.file_name()?.as_bytes();
    let stem = name.strip_suffix(PARTIAL_SUFFIX.as_bytes())?;
    if stem.is_empty() {
        return None;
    }
    Some(partial.with_file_name(std::ffi::OsStr::from_bytes(stem)))
}

/// What a `.partial` was left as.
enum Layout {
    /// Being recorded: a fragmented MP4, possibly with a torn tail.
    Fragmented(Scan),
    /// Being finished as a progressive MP4, past the point of no return.
    Finishing(Finishing),
}

/// Opens and locks the partial, refuses when the final name is taken, and reads its layout.
fn open_and_scan(place: ClipPlace, read_only: bool) -> Result<(ClipFile, Layout), RecoverError> {
    let file = ClipFile::open_partial(place, read_only)?;
    let partial = &file.partial_path().to_owned();
    if file.final_name_taken() {
        return Err(RecoverError::FinalExists {
            partial: partial.clone(),
            path: file.path().to_owned(),
        });
    }
    let io_err = |e| RecoverError::Io {
        op: "reading",
        path: partial.to_owned(),
        source: e,
    };
    let ftyp_len = ftyp().len() as u64;
    if file.len() > ftyp_len
        && read_at(file.file(), 0, ftyp_len).map_err(io_err)? == ftyp()
        && let Some(f) = finishing::read(file.file(), ftyp_len, file.len())
            .map_err(io_err)?
            .map_err(|source| RecoverError::NotOurs {
                partial: partial.to_owned(),
                source,
            })?
    {
        return Ok((file, Layout::Finishing(f)));
    }
    let scan = Scan::read(file.file(), file.len(), partial)?;
    Ok((file, Layout::Fragmented(scan)))
}

/// What a `.partial` holds.
#[derive(Debug)]
pub(crate) struct Scan {
    pub file_len: u64,
    /// `None` when the file ends before its `moov` does.
    pub header: Option<ScannedHeader>,
    /// The complete fragments, in file order.
    pub fragments: Vec<ScannedFragment>,
    /// End of the last complete fragment (of the header region when there is none).
    pub end: u64,
    /// Why reading stopped before the end of the file.
    pub damage: Option<Damage>,
}

#[derive(Debug)]
pub(crate) struct ScannedHeader {
    pub init: InitSegment,
    /// From `mvhd`, kept in the finished header.
    pub creation_time: u64,
    /// Size of the header region: where the first `moof` starts.
    pub region: u64,
}

#[derive(Debug)]
pub(crate) struct ScannedFragment {
    /// Absolute offset of its `moof`.
    pub offset: u64,
    /// Its `mfhd` sequence number.
    pub sequence: u32,
    pub tracks: Vec<TrackFragment>,
    /// Absolute offset of its `mdat`'s payload (where the runs' `data_offset`s count from).
    pub payload: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Damage {
    /// The file just ends (or holds zeros never written): a write cut short. Otherwise the
    /// bytes are there but do not parse.
    pub torn: bool,
    pub problem: String,
}

/// One box header read from the file.
pub(super) enum Probe {
    /// A box with its size, wholly in the file.
    Box(BoxHeader, u64),
    /// A box whose size runs past the end of the file.
    Cut(BoxHeader, u64),
    /// No box header: the file ends inside it, zeros, or a size that cannot be.
    Damaged(Damage),
}

impl Scan {
    fn read(file: &File, len: u64, partial: &Path) -> Result<Scan, RecoverError> {
        let io_err = |e| RecoverError::Io {
            op: "reading",
            path: partial.to_owned(),
            source: e,
        };
        let not_ours = |e| RecoverError::NotOurs {
            partial: partial.to_owned(),
            source: e,
        };
        let mut scan = Scan {
            file_len: len,
            header: None,
            fragments: Vec::new(),
            end: 0,
            damage: None,
        };

        // The ftyp: exactly the one preroll writes, or a prefix of it if the file ends there.
        let ours = ftyp();
        let head = read_at(file, 0, len.min(ours.len() as u64)).map_err(io_err)?;
        if head[..] != ours[..head.len()] {
            let kind = head
                .get(4..8)
                .map_or(FTYP, |k| FourCc([k[0], k[1], k[2], k[3]]));
            return Err(not_ours(Mp4Error::new(
                kind,
                0,
                "the file does not start with the ftyp preroll writes (isom: isom, iso6, mp41)",
            )));
        }
        if head.len() < ours.len() {
            scan.damage = Some(torn(format!("the file ends inside its ftyp ({len} bytes)")));
            return Ok(scan);
        }

        // The moov.
        let at = ours.len() as u64;
        let size = match probe(file, at, len).map_err(io_err)? {
            Probe::Damaged(d) if d.torn => {
                scan.damage = Some(torn(format!(
                    "the file ends inside its moov: {}",
                    d.problem
                )));
                return Ok(scan);
            }
            Probe::Damaged(d) => {
                return Err(not_ours(Mp4Error::new(MOOV, at, d.problem)));
            }
            Probe::Box(h, _) | Probe::Cut(h, _) if h.kind != MOOV => {
                return Err(not_ours(Mp4Error::new(
                    h.kind,
                    at,
                    "a moov should follow the ftyp here",
                )));
            }
            Probe::Cut(h, size) => {
                // Cut short by the end of the file, or a size that is wrong?
                if size <= MAX_BOX
                    && cut_short_plausibly(file, &h, len, &[MVHD, TRAK, MVEX]).map_err(io_err)?
                {
                    scan.damage = Some(torn(format!(
                        "the file ends inside its moov ({len} of {} bytes)",
                        at + size
                    )));
                    return Ok(scan);
                }
                return Err(not_ours(Mp4Error::new(
                    MOOV,
                    at,
                    format!(
                        "claims {size} bytes, more than the file holds, but its contents do not end with the file"
                    ),
                )));
            }
            Probe::Box(_, size) => size,
        };
        if at + size > MAX_BOX {
            return Err(not_ours(Mp4Error::new(
                MOOV,
                at,
                format!("{size} bytes is far more than a clip header takes"),
            )));
        }
        let raw = Bytes::from(read_at(file, 0, at + size).map_err(io_err)?);
        let creation_time = creation_time(&raw).map_err(not_ours)?;
        let init = InitSegment::parse(raw, 0).map_err(not_ours)?;
        if init.video().is_none() {
            return Err(not_ours(Mp4Error::new(MOOV, at, "no video track")));
        }

        // The free box(es) padding the header region.
        let mut pos = at + size;
        while pos < len {
            match probe(file, pos, len).map_err(io_err)? {
                Probe::Box(h, size) if h.kind == FREE => pos += size,
                // The padding is zeros: a free box cut short by the end of the file holds
                // nothing else.
                Probe::Cut(h, size) if h.kind == FREE => {
                    if size <= MAX_FREE
                        && zeros_from(file, pos + u64::from(h.header_len), len).map_err(io_err)?
                    {
                        scan.damage = Some(torn(format!(
                            "the file ends inside the header's free box at byte {pos} ({} of its {size} bytes)",
                            len - pos
                        )));
                        return Ok(scan);
                    }
                    break;
                }
                _ => break,
            }
        }
        let region = pos;
        let init = scan.header.insert(ScannedHeader {
            init,
            creation_time,
            region,
        });
        scan.end = region;

        // The fragments, up to the first incomplete or unparsable box, or the first that
        // does not follow the ones before it in time.
        let mut ends = TrackEnds::default();
        while pos < len {
            match read_fragment(file, pos, len, &init.init).map_err(io_err)? {
                // A recording numbers its fragments 1, 2, …: another number is not the
                // continuation of this file.
                Ok((f, _)) if f.sequence as usize != scan.fragments.len() + 1 => {
                    scan.damage = Some(bad(format!(
                        "moof box at byte {}: fragment number {} where {} should follow",
                        f.offset,
                        f.sequence,
                        scan.fragments.len() + 1
                    )));
                    break;
                }
                Ok((f, end)) => {
                    if let Err(problem) = ends.follow(&f) {
                        scan.damage = Some(bad(problem));
                        break;
                    }
                    pos = end;
                    scan.fragments.push(f);
                    scan.end = pos;
                }
                Err(d) => {
                    scan.damage = Some(d);
                    break;
                }
            }
        }
        Ok(scan)
    }

    /// `Some(why)` when the file holds no complete fragment and can go: it ends in its header,
    /// or the header is followed only by a fragment cut short. Header followed by data that
    /// does not parse is kept for a human to look at (an error).
    fn nothing_to_keep(&self, partial: &Path) -> Result<Option<String>, RecoverError> {
        if !self.fragments.is_empty() {
            return Ok(None);
        }
        match &self.damage {
            None => Ok(Some("only a header".to_owned())),
            Some(d) if d.torn => Ok(Some(d.problem.clone())),
            Some(d) => Err(RecoverError::Mismatch {
                partial: partial.to_owned(),
                problem: format!(
                    "no complete fragment, and the data after the header does not parse: {}",
                    d.problem
                ),
            }),
        }
    }
}

/// Where each track's fragments so far end, in its ticks. A recording writes every fragment
/// with a decode time (`tfdt`) at or after the end of the track's previous one; a fragment
/// that breaks this was not written so (damage), and keeping it would make the clip's
/// timestamps go back.
#[derive(Default)]
struct TrackEnds(Vec<(u32, u64)>);

impl TrackEnds {
    /// Checks `f` against the fragments before it; records its ends when it follows them.
    fn follow(&mut self, f: &ScannedFragment) -> Result<(), String> {
        let mut next = self.0.clone();
        for t in &f.tracks {
            let Some(start) = t.base_decode_time else {
                return Err(format!(
                    "moof box at byte {}: track {} has no decode time (tfdt)",
                    f.offset, t.track_id
                ));
            };
            let end = start.checked_add(t.duration()).ok_or_else(|| {
                format!(
                    "moof box at byte {}: track {} ends past the largest decode time",
                    f.offset, t.track_id
                )
            })?;
            match next.iter_mut().find(|(id, _)| *id == t.track_id) {
                Some((_, prev)) if start < *prev => {
                    return Err(format!(
                        "moof box at byte {}: track {} starts at {start}, before its previous fragment ends at {prev}",
                        f.offset, t.track_id
                    ));
                }
                Some((_, prev)) => *prev = end,
                None => next.push((t.track_id, end)),
            }
        }
        self.0 = next;
        Ok(())
    }
}

fn torn(problem: String) -> Damage {
    Damage {
        torn: true,
        problem,
    }
}

fn bad(problem: String) -> Damage {
    Damage {
        torn: false,
        problem,
    }
}

/// Reads the `moof` + `mdat` at `pos`: the fragment and where it ends, or why it is not
/// complete.
fn read_fragment(
    file: &File,
    pos: u64,
    len: u64,
    init: &InitSegment,
) -> io::Result<Result<(ScannedFragment, u64), Damage>> {
    let (h, size) = match probe(file, pos, len)? {
        Probe::Damaged(d) => return Ok(Err(d)),
        Probe::Box(h, _) | Probe::Cut(h, _) if h.kind != MOOF => {
            return Ok(Err(bad(format!(
                "{} box at byte {pos} where a moof should start",
                h.kind
            ))));
        }
        Probe::Cut(h, size) => {
            // Cut short by the end of the file, or a size that is wrong?
            let torn_moof = size <= MAX_BOX && cut_short_plausibly(file, &h, len, &[MFHD, TRAF])?;
            let problem = format!(
                "moof box at byte {pos} is cut short: {} of its {size} bytes are in the file",
                len - pos
            );
            return Ok(Err(if torn_moof {
                torn(problem)
            } else {
                bad(format!("{problem}, and what is there is not a moof's"))
            }));
        }
        Probe::Box(h, size) => (h, size),
    };
    if size > MAX_BOX {
        return Ok(Err(bad(format!(
            "moof box at byte {pos}: {size} bytes is far more than a fragment header takes"
        ))));
    }
    let mdat_at = pos + size;
    if mdat_at >= len {
        return Ok(Err(torn(format!(
            "the file ends after the moof at byte {pos}, before its mdat"
        ))));
    }
    let (m, msize, complete) = match probe(file, mdat_at, len)? {
        Probe::Box(m, msize) if m.kind == MDAT => (m, msize, true),
        Probe::Cut(m, msize) if m.kind == MDAT => (m, msize, false),
        Probe::Box(m, _) | Probe::Cut(m, _) => {
            return Ok(Err(bad(format!(
                "{} box at byte {mdat_at} where the mdat of the moof at byte {pos} should be",
                m.kind
            ))));
        }
        Probe::Damaged(d) => return Ok(Err(d)),
    };
    let raw = read_at(file, pos, size)?;
    let moof = BoxRef {
        kind: MOOF,
        offset: pos,
        header_len: h.header_len,
        body: &raw[usize::from(h.header_len)..],
    };
    let payload = mdat_at + u64::from(m.header_len);
    let payload_len = msize - u64::from(m.header_len);
    let (sequence, tracks) = match parse_moof(moof, payload, payload_len, init) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Err(bad(e.to_string()))),
    };
    if !complete {
        // Torn if the moof describes that mdat: its samples fill it (a recording's payload
        // holds its samples, and at most a little more: samples of tracks it leaves out or
        // drops as overlapping). Else the mdat's size is wrong.
        let used = tracks
            .iter()
            .flat_map(|t| &t.runs)
            .map(|r| r.data_offset + r.data_len())
            .max()
            .unwrap_or(0);
        let problem = format!(
            "mdat box at byte {mdat_at} is cut short: {} of its {msize} bytes are in the file",
            len - mdat_at
        );
        let plausible = payload_len <= used.saturating_mul(2).saturating_add(1 << 20);
        return Ok(Err(if plausible {
            torn(problem)
        } else {
            bad(format!(
                "{problem}, but its moof describes only {used} bytes of samples"
            ))
        }));
    }
    Ok(Ok((
        ScannedFragment {
            offset: pos,
            sequence,
            tracks,
            payload,
        },
        mdat_at + msize,
    )))
}

/// The box header at `pos`, with the box's size, when the whole box lies inside the file.
pub(super) fn probe(file: &File, pos: u64, len: u64) -> io::Result<Probe> {
    let left = len - pos;
    let buf = read_at(file, pos, left.min(BoxHeader::MAX_LEN as u64))?;
    if buf.len() >= 8 && buf[..8].iter().all(|&b| b == 0) {
        // Data never written (a power cut can leave the file's new length without its
        // bytes): torn if nothing but zeros follows.
        return Ok(Probe::Damaged(if zeros_from(file, pos, len)? {
            torn(format!(
                "zeros from byte {pos} to the end of the file (data never written)"
            ))
        } else {
            bad(format!("zeros at byte {pos} where a box should start"))
        }));
    }
    let h = match BoxHeader::parse(&buf, pos) {
        Ok(Some(h)) => h,
        Ok(None) => {
            return Ok(Probe::Damaged(torn(format!(
                "the file ends inside the box header at byte {pos}: {left} of at least 8 bytes"
            ))));
        }
        Err(e) => return Ok(Probe::Damaged(bad(e.to_string()))),
    };
    let Some(size) = h.size else {
        return Ok(Probe::Damaged(bad(format!(
            "{} box at byte {pos} has size 0 (to the end of the file), which preroll never writes",
            h.kind
        ))));
    };
    if size > left {
        return Ok(Probe::Cut(h, size));
    }
    Ok(Probe::Box(h, size))
}

/// Whether a box the end of the file cuts short holds, as far as it goes, child boxes of the
/// kinds a clip puts in it, a last one possibly cut short too. A wrong size (a bit flip,
/// foreign data) makes the children run into what follows the box, which is not one.
fn cut_short_plausibly(file: &File, h: &BoxHeader, len: u64, kinds: &[FourCc]) -> io::Result<bool> {
    let body = h.offset + u64::from(h.header_len);
    let buf = read_at(file, body, len.saturating_sub(body).min(MAX_BOX))?;
    let mut pos = 0usize;
    while pos < buf.len() {
        match BoxHeader::parse(&buf[pos..], 0) {
            Ok(Some(c)) if kinds.contains(&c.kind) => match c.size.map(usize::try_from) {
                Some(Ok(s)) => pos = pos.saturating_add(s),
                _ => return Ok(false),
            },
            Ok(None) => break, // a child header cut short
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Whether the file holds only zeros from `pos` to its end.
fn zeros_from(file: &File, mut pos: u64, len: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; 1 << 20];
    while pos < len {
        let n = usize::try_from(len - pos).map_or(buf.len(), |n| n.min(buf.len()));
        file.read_exact_at(&mut buf[..n], pos)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        pos += n as u64;
    }
    Ok(true)
}

pub(super) fn read_at(file: &File, pos: u64, n: u64) -> io::Result<Vec<u8>> {
    let n = usize::try_from(n).map_err(io::Error::other)?;
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, pos)?;
    Ok(buf)
}

/// The `mvhd` creation time of the header in `raw` (ftyp + moov).
fn creation_time(raw: &[u8]) -> Result<u64, Mp4Error> {
    for b in Boxes::new(raw, 0) {
        let b = b?;
        if b.kind == MOOV {
            let mut f = b.child(MVHD)?.fields();
            let (version, _) = f.version_flags()?;
            return f.u32_or_u64(version);
        }
    }
    Err(Mp4Error::new(MOOV, 0, "no moov box"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn final_names() {
        assert_eq!(
            final_name(Path::new("a/b/clip.mp4.partial")),
            Some(PathBuf::from("a/b/clip.mp4"))
        );
        assert_eq!(final_name(Path::new("a/.partial")), None);
        assert_eq!(final_name(Path::new("a/clip.mp4")), None);
        assert_eq!(final_name(Path::new("clip.partial/x")), None);
    }

    #[test]
    fn finds_partials_recursively_without_following_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("cam/2024")).unwrap();
        for f in [
            "b.mp4.partial",
            "a.mp4",
            "cam/2024/c.mp4.partial",
            "cam/x.partial",
        ] {
            fs::write(root.join(f), b"").unwrap();
        }
        fs::create_dir(root.join("dir.partial")).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("z.mp4.partial"), b"").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("b.mp4.partial"), root.join("l.mp4.partial")).unwrap();
        let found = find_partials(root).unwrap();
        assert_eq!(
            found,
            vec![
                root.join("b.mp4.partial"),
                root.join("cam/2024/c.mp4.partial"),
                root.join("cam/x.partial"),
            ]
        );
        assert!(find_partials(&root.join("missing")).is_err());
    }

    #[test]
    fn a_file_that_is_not_ours_is_left_untouched() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.mp4.partial");
        let garbage = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom and more".to_vec();
        fs::write(&p, &garbage).unwrap();
        let e = recover(&p).unwrap_err();
        assert!(matches!(e, RecoverError::NotOurs { .. }), "{e}");
        assert!(e.to_string().contains("ftyp box at byte 0"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), garbage);
    }

    #[test]
    fn an_empty_or_header_less_file_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let ours = ftyp();
        for (i, bytes) in [
            &[][..],
            &ours[..5],
            &ours[..],
            &[&ours[..], &[0, 0, 1]].concat(),
        ]
        .iter()
        .enumerate()
        {
            let p = d.path().join(format!("{i}.mp4.partial"));
            fs::write(&p, bytes).unwrap();
            let e = recover(&p).unwrap_err();
            assert!(
                matches!(e, RecoverError::Empty { removed: true, .. }),
                "{i}: {e}"
            );
            assert!(!p.exists());
        }
    }

    #[test]
    fn not_a_partial_name() {
        let e = recover(Path::new("/nonexistent/clip.mp4")).unwrap_err();
        assert!(matches!(e, RecoverError::NotPartial { .. }), "{e}");
        let e = recover(Path::new("/nonexistent/clip.mp4.partial")).unwrap_err();
        assert!(matches!(e, RecoverError::Gone { .. }), "{e}");
    }
}
