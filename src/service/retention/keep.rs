//! The clips marked `keep` (`PATCH /api/clips/{id}`, MQTT `<prefix>/clips/<id>/keep`):
//! retention never deletes them. Kept by path in `<recordings>/.preroll/keep.json`, apart
//! from the clip history, which forgets old clips: a mark must outlive the entry.
//!
//! The file is replaced whole (written beside it, synced, renamed over it), so a crash leaves
//! the old set or the new one. Marking needs a little disk space; retention does not.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::recorder::Dir;
use crate::service::json_file::JsonFile;

const FILE: &str = "keep.json";

#[derive(Debug)]
pub struct KeepSet {
    /// `keep.json` in `.preroll` (reached without following a symlink); `None` without one
    /// (in memory only).
    file: Option<JsonFile>,
    paths: Mutex<BTreeSet<PathBuf>>,
}

impl KeepSet {
    /// A set held in memory only (no recordings directory to keep it in).
    pub fn in_memory() -> KeepSet {
        KeepSet {
            file: None,
            paths: Mutex::new(BTreeSet::new()),
        }
    }

    /// Reads the set kept in `dir` (the `.preroll` directory); a missing file is an empty set.
    pub fn open(dir: Dir) -> io::Result<KeepSet> {
        let file = JsonFile::new(dir, FILE);
        let paths = file.read()?.unwrap_or_default();
        Ok(KeepSet {
            file: Some(file),
            paths: Mutex::new(paths),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeSet<PathBuf>> {
        self.paths.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.lock().contains(path)
    }

    /// A copy of the set, for a retention pass.
    pub fn snapshot(&self) -> BTreeSet<PathBuf> {
        self.lock().clone()
    }

    /// Marks or unmarks a clip, durably; on failure (a full disk) the set is as before.
    pub fn set(&self, path: &Path, keep: bool) -> io::Result<()> {
        let mut paths = self.lock();
        if paths.contains(path) == keep {
            return Ok(());
        }
        let mut next = paths.clone();
        if keep {
            next.insert(path.to_owned());
        } else {
            next.remove(path);
        }
        self.save(&next)?;
        *paths = next;
        Ok(())
    }

    /// Forgets paths whose files are gone (deleted by the API); best effort.
    pub fn forget(&self, gone: &[PathBuf]) {
        let mut paths = self.lock();
        if !gone.iter().any(|p| paths.contains(p)) {
            return;
        }
        let mut next = paths.clone();
        for p in gone {
            next.remove(p);
        }
        match self.save(&next) {
            Ok(()) => *paths = next,
            Err(e) => tracing::warn!("forgetting deleted clips' keep marks: {e}"),
        }
    }

    fn save(&self, paths: &BTreeSet<PathBuf>) -> io::Result<()> {
        match &self.file {
            Some(file) => file.write(paths),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_a_reopen_and_unmarking_removes_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dir::root(tmp.path()).expect("dir");
        let keep = KeepSet::open(dir.clone()).expect("open");
        let (a, b) = (Path::new("/r/cam/a.mp4"), Path::new("/r/cam/b.mp4"));
        keep.set(a, true).expect("mark a");
        keep.set(b, true).expect("mark b");
        keep.set(b, false).expect("unmark b");
        let again = KeepSet::open(dir.clone()).expect("reopen");
        assert!(again.contains(a));
        assert!(!again.contains(b));
        again.forget(&[a.to_owned()]);
        assert!(!KeepSet::open(dir.clone()).expect("reopen").contains(a));
        // A file that is not a list is named, not taken as empty.
        std::fs::write(tmp.path().join(FILE), b"{not json").expect("write");
        let e = KeepSet::open(dir).expect_err("garbage");
        assert!(e.to_string().contains("keep.json"), "{e}");
    }
}
