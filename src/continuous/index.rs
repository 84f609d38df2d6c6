//! What one camera's continuous recording holds, and when: an entry per finished file (its
//! UTC start and end, its name, its size), oldest first.
//!
//! The entries are appended to `index.jsonl` beside the files as each file is finished, so
//! the index survives a restart without reading every file. The files are the truth: at
//! start, entries whose file is gone are dropped, and a file without an entry (the index
//! lost, or a file recovered after a crash) gets one from its name (the start) and its
//! header's duration. Any change is written back whole (a file beside it, synced, renamed).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::recorder::Dir;

const FILE: &str = "index.jsonl";
const REWRITE: &str = "index.jsonl.tmp";
/// A `moov` larger than this is not a continuous recording's (60 s of 60 fps with audio
/// needs well under 1 MiB).
const MAX_MOOV: u64 = 64 << 20;

/// One finished file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `2026-11-30/081530.123Z.mp4`, below the camera's folder.
    pub file: String,
    /// Unix milliseconds of its first and past its last presented frame.
    pub start_ms: u64,
    pub end_ms: u64,
    pub bytes: u64,
}

impl Entry {
    pub fn start(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.start_ms)
    }

    pub fn end(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.end_ms)
    }
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug)]
pub struct Index {
    /// The camera's folder (`<recordings>/continuous/<camera>`).
    dir: Dir,
    entries: Mutex<Vec<Entry>>,
}

impl Index {
    /// Reads the index of the camera folder `dir`, reconciles it with the files there, and
    /// writes it back if they differed.
    pub fn open(dir: Dir) -> io::Result<Index> {
        let _ = dir.remove(OsStr::new(REWRITE));
        let (index, changed) = Index::read(dir)?;
        if changed {
            index.rewrite(&index.lock())?;
        }
        Ok(index)
    }

    /// Reads the index of the camera folder `dir` and reconciles it with the files there,
    /// writing nothing (a running service may own the folder); true if they differed.
    pub fn read(dir: Dir) -> io::Result<(Index, bool)> {
        let mut listed: Vec<Entry> = Vec::new();
        match dir.open_file(OsStr::new(FILE), false) {
            Ok(f) => {
                for line in BufReader::new(f).split(b'\n') {
                    // A line cut by a crash, or not an entry: the files say what it was.
                    if let Ok(e) = serde_json::from_slice::<Entry>(&line?) {
                        listed.push(e);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let on_disk = files(&dir)?;
        let mut entries: Vec<Entry> = Vec::new();
        let mut changed = false;
        for (date, name) in &on_disk {
            let file = format!("{}/{}", date.to_string_lossy(), name.to_string_lossy());
            if let Some(e) = listed.iter().find(|e| e.file == file) {
                entries.push(e.clone());
                continue;
            }
            changed = true;
            match entry_from_file(&dir, date, name, &file) {
                Ok(e) => entries.push(e),
                Err(e) => tracing::warn!(
                    dir = %dir.path().display(),
                    "continuous recording {file} is not readable, left out of the index: {e}"
                ),
            }
        }
        changed |= entries.len() != listed.len();
        entries.sort_by_key(|e| e.start_ms);
        let index = Index {
            dir,
            entries: Mutex::new(entries),
        };
        Ok((index, changed))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    /// Records a finished file (appended and synced).
    pub fn add(&self, entry: Entry) -> io::Result<()> {
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut entries = self.lock();
        let mut f = self.dir.open_append(OsStr::new(FILE))?;
        f.write_all(&line)?;
        f.sync_data()?;
        let at = entries.partition_point(|e| e.start_ms <= entry.start_ms);
        entries.insert(at, entry);
        Ok(())
    }

    /// Forgets files that were deleted.
    pub fn remove(&self, files: &[String]) -> io::Result<()> {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|e| !files.contains(&e.file));
        if entries.len() != before {
            self.rewrite(&entries)?;
        }
        Ok(())
    }

    fn rewrite(&self, entries: &[Entry]) -> io::Result<()> {
        let mut text = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut text, e).map_err(io::Error::other)?;
            text.push(b'\n');
        }
        let mut f = self.dir.create_truncate(OsStr::new(REWRITE))?;
        if let Err(e) = f.write_all(&text).and_then(|()| f.sync_data()) {
            let _ = self.dir.remove(OsStr::new(REWRITE));
            return Err(e);
        }
        self.dir.rename(OsStr::new(REWRITE), OsStr::new(FILE))?;
        self.dir.sync()
    }
}

/// The finished files below a camera folder: `<date>/<time>.mp4`, sorted.
fn files(dir: &Dir) -> io::Result<Vec<(OsString, OsString)>> {
    let mut out = Vec::new();
    for (date, is_dir, _) in dir.entries()? {
        if !is_dir {
            continue;
        }
        let day = match dir.descend(Path::new(&date), false) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("{e}");
                continue;
            }
        };
        for (name, _, is_file) in day.entries()? {
            if is_file && name.to_string_lossy().ends_with(".mp4") {
                out.push((date.clone(), name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// An entry for a file the index lacks: its start from its name, its end from its header.
fn entry_from_file(dir: &Dir, date: &OsStr, name: &OsStr, file: &str) -> io::Result<Entry> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let (date_text, name_text) = (date.to_string_lossy(), name.to_string_lossy());
    let time_text = name_text
        .strip_suffix(".mp4")
        .ok_or_else(|| bad("not an .mp4"))?;
    let start = crate::time::from_date_and_time_of_day(&date_text, time_text)
        .ok_or_else(|| bad("its name is not <UTC date>/<UTC time>.mp4"))?;
    let mut f = dir
        .descend(Path::new(date), false)?
        .open_file(name, false)?;
    let bytes = f.metadata()?.len();
    let duration = movie_duration(&mut f)?;
    let start_ms = unix_ms(start);
    Ok(Entry {
        file: file.to_owned(),
        start_ms,
        end_ms: start_ms + duration.as_millis() as u64,
        bytes,
    })
}

/// The presented duration a finished MP4's `mvhd` gives.
pub fn movie_duration(f: &mut File) -> io::Result<Duration> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let len = f.metadata()?.len();
    let mut at = 0u64;
    while at + 8 <= len {
        f.seek(SeekFrom::Start(at))?;
        let mut head = [0u8; 16];
        f.read_exact(&mut head[..8])?;
        let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = [head[4], head[5], head[6], head[7]];
        let mut header = 8;
        if size == 1 {
            f.read_exact(&mut head[8..16])?;
            size = u64::from_be_bytes([
                head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
            ]);
            header = 16;
        } else if size == 0 {
            size = len - at;
        }
        if size < header || at + size > len {
            return Err(bad(format!("box at byte {at} claims {size} bytes")));
        }
        if &kind == b"moov" {
            if size > MAX_MOOV {
                return Err(bad(format!("moov of {size} bytes")));
            }
            let mut moov = vec![0u8; (size - header) as usize];
            f.read_exact(&mut moov)?;
            return mvhd_duration(&moov).ok_or_else(|| bad("no readable mvhd in the moov".into()));
        }
        at += size;
    }
    Err(bad("no moov box (not a finished file)".into()))
}

fn mvhd_duration(moov: &[u8]) -> Option<Duration> {
    let mut at = 0usize;
    while at + 8 <= moov.len() {
        let size = u32::from_be_bytes(moov.get(at..at + 4)?.try_into().ok()?) as usize;
        if size < 8 || at + size > moov.len() {
            return None;
        }
        if &moov[at + 4..at + 8] == b"mvhd" {
            let b = &moov[at + 8..at + size];
            let version = *b.first()?;
            let (timescale, duration) = if version == 1 {
                (
                    u32::from_be_bytes(b.get(20..24)?.try_into().ok()?),
                    u64::from_be_bytes(b.get(24..32)?.try_into().ok()?),
                )
            } else {
                (
                    u32::from_be_bytes(b.get(12..16)?.try_into().ok()?),
                    u64::from(u32::from_be_bytes(b.get(16..20)?.try_into().ok()?)),
                )
            };
            if timescale == 0 {
                return None;
            }
            return Some(Duration::from_secs_f64(
                duration as f64 / f64::from(timescale),
            ));
        }
        at += size;
    }
    None
}
