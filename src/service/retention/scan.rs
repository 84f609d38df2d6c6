//! Finding the clip files under the recordings directory: every regular `*.mp4` below it,
//! reached through directory handles that follow no symlink (as clips are written, see
//! `recorder::place`), with its size and the time it was last written.
//!
//! The files on disk are the truth, not the clip history: the history keeps only the newest
//! clips, and a file may outlive its entry (a history lost with a disk, clips from before an
//! upgrade). A clip belongs to a camera when it lies in the folder named after it, as the
//! default filenames put it (`<camera>/<camera>-<time>-<n>.mp4`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::AtFlags;

use crate::recorder::Dir;

/// Folders at the top of the recordings directory that hold no clips: the service's own
/// files, and the continuous recordings (which have their own retention).
pub const NOT_CLIPS: [&str; 2] = [super::super::history::DIR, "continuous"];

/// Deeper than any layout a filename template makes; a deeper tree is not walked further.
const MAX_DEPTH: usize = 32;

/// One clip file.
#[derive(Debug, Clone)]
pub struct ClipFile {
    /// Index into [`Scan::dirs`].
    pub dir: u32,
    pub name: Box<OsStr>,
    pub bytes: u64,
    /// When it was last written (Unix seconds, and nanoseconds past them): a finished clip
    /// is not written again.
    pub modified: i64,
    pub modified_ns: u32,
    /// Index into the camera names the scan was given, when in a camera's folder.
    pub camera: Option<u16>,
}

/// What a walk of the recordings directory found.
#[derive(Debug, Default)]
pub struct Scan {
    pub dirs: Vec<Dir>,
    pub files: Vec<ClipFile>,
    /// Directories that could not be read (named, with why), walked past.
    pub unreadable: Vec<String>,
}

impl Scan {
    pub fn path(&self, file: &ClipFile) -> PathBuf {
        self.dirs[file.dir as usize].path().join(&*file.name)
    }

    pub fn dir(&self, file: &ClipFile) -> &Dir {
        &self.dirs[file.dir as usize]
    }
}

fn is_clip_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.len() > 4 && b[b.len() - 4..].eq_ignore_ascii_case(b".mp4")
}

/// Walks `root` (the recordings directory); `cameras` are the configured camera names.
pub fn scan(root: &Dir, cameras: &[String]) -> io::Result<Scan> {
    let mut scan = Scan::default();
    scan.dirs.push(root.clone());
    // (directory index, depth, camera of the folder)
    let mut pending: Vec<(u32, usize, Option<u16>)> = vec![(0, 0, None)];
    while let Some((index, depth, camera)) = pending.pop() {
        let dir = scan.dirs[index as usize].clone();
        let entries = match dir.entries() {
            Ok(e) => e,
            Err(e) if index == 0 => return Err(e),
            Err(e) => {
                scan.unreadable
                    .push(format!("{}: {e}", dir.path().display()));
                continue;
            }
        };
        for (name, is_dir, is_file) in entries {
            if is_dir {
                if depth == 0 && NOT_CLIPS.iter().any(|n| name == OsStr::new(n)) {
                    continue;
                }
                if depth + 1 >= MAX_DEPTH {
                    continue;
                }
                let camera = match (depth, camera) {
                    (0, _) => cameras.iter().position(|c| name == OsStr::new(c)),
                    (_, c) => c.map(usize::from),
                };
                match dir.descend(Path::new(&name), false) {
                    Ok(sub) => {
                        scan.dirs.push(sub);
                        let sub_index = (scan.dirs.len() - 1) as u32;
                        pending.push((sub_index, depth + 1, camera.map(|c| c as u16)));
                    }
                    Err(e) => scan.unreadable.push(e.to_string()),
                }
            } else if is_file && is_clip_name(&name) {
                // Gone since the listing (deleted by the API meanwhile): not a clip any more.
                let Ok(st) = rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                else {
                    continue;
                };
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    != rustix::fs::FileType::RegularFile
                {
                    continue;
                }
                scan.files.push(ClipFile {
                    dir: index,
                    name: OsString::into_boxed_os_str(name),
                    bytes: st.st_size.max(0) as u64,
                    modified: st.st_mtime,
                    modified_ns: st.st_mtime_nsec as u32,
                    camera,
                });
            }
        }
    }
    // Oldest first; the path settles ties, so passes agree on the order.
    scan.files.sort_by(|a, b| {
        (a.modified, a.modified_ns)
            .cmp(&(b.modified, b.modified_ns))
            .then_with(|| {
                scan.dirs[a.dir as usize]
                    .path()
                    .cmp(scan.dirs[b.dir as usize].path())
            })
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(scan)
}
