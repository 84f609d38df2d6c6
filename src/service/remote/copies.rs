//! Which clips have a verified copy in the bucket, and whether their local file is still
//! there: `<recordings>/.preroll/remote.json`, by path, replaced whole on each change. With
//! the uploads in progress (in memory), this is what a clip's `storage` says.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::recorder::Dir;
use crate::service::json_file::JsonFile;

const FILE: &str = "remote.json";

/// Where a clip is, as its view and events say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Storage {
    /// Only on this machine (no bucket configured, or not copied yet).
    #[default]
    #[serde(rename = "local")]
    Local,
    /// Being copied to the bucket (while it records, or queued after).
    #[serde(rename = "uploading")]
    Uploading,
    /// Only in the bucket (the local file was removed after a verified upload).
    #[serde(rename = "remote")]
    Remote,
    #[serde(rename = "local+remote")]
    LocalAndRemote,
}

impl Storage {
    pub fn name(self) -> &'static str {
        match self {
            Storage::Local => "local",
            Storage::Uploading => "uploading",
            Storage::Remote => "remote",
            Storage::LocalAndRemote => "local+remote",
        }
    }
}

/// A verified copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copy {
    /// The object's key in the bucket.
    pub key: String,
    pub bytes: u64,
    /// The MD5 of the whole file, hex.
    pub md5: String,
    /// The local file is still there.
    pub local: bool,
}

#[derive(Debug)]
pub struct Copies {
    file: Option<JsonFile>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    copies: BTreeMap<PathBuf, Copy>,
    uploading: HashSet<PathBuf>,
}

impl Copies {
    /// Reads the copies recorded in `dir` (the `.preroll` directory).
    pub fn open(dir: Dir) -> io::Result<Copies> {
        let file = JsonFile::new(dir, FILE);
        let copies = file.read()?.unwrap_or_default();
        Ok(Copies {
            file: Some(file),
            inner: Mutex::new(Inner {
                copies,
                uploading: HashSet::new(),
            }),
        })
    }

    /// Copies kept in memory only.
    pub fn in_memory() -> Copies {
        Copies {
            file: None,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, path: &Path) -> Option<Copy> {
        self.lock().copies.get(path).cloned()
    }

    pub fn storage(&self, path: &Path) -> Storage {
        let inner = self.lock();
        if inner.uploading.contains(path) {
            return Storage::Uploading;
        }
        match inner.copies.get(path) {
            Some(c) if c.local => Storage::LocalAndRemote,
            Some(_) => Storage::Remote,
            None => Storage::Local,
        }
    }

    /// Marks a clip as being uploaded (or not any more).
    pub fn uploading(&self, path: &Path, yes: bool) {
        let mut inner = self.lock();
        if yes {
            inner.uploading.insert(path.to_owned());
        } else {
            inner.uploading.remove(path);
        }
    }

    /// Records a verified copy, durably; on failure the record is as before.
    pub fn set(&self, path: &Path, copy: Copy) -> io::Result<()> {
        let mut inner = self.lock();
        let mut next = inner.copies.clone();
        next.insert(path.to_owned(), copy);
        self.save(&next)?;
        inner.copies = next;
        Ok(())
    }

    /// Forgets a clip's copy (the clip was deleted).
    pub fn forget(&self, path: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        if !inner.copies.contains_key(path) {
            return Ok(());
        }
        let mut next = inner.copies.clone();
        next.remove(path);
        self.save(&next)?;
        inner.copies = next;
        Ok(())
    }

    fn save(&self, copies: &BTreeMap<PathBuf, Copy>) -> io::Result<()> {
        match &self.file {
            Some(f) => f.write(copies),
            None => Ok(()),
        }
    }
}
