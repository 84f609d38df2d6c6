//! Which clips have a verified copy in the bucket, and whether their local file is still
//! there, by path; and for each camera's continuous recording, the start of the newest file
//! uploaded (they are uploaded in order, so one number per camera is enough): in
//! `<recordings>/.preroll/remote.json`, replaced whole on each change. With the uploads in
//! progress (in memory), this is what a clip's `storage` says.

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
    saved: Saved,
    uploading: HashSet<PathBuf>,
}

/// What the file holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Saved {
    #[serde(default)]
    clips: BTreeMap<PathBuf, Copy>,
    /// By camera: the start (Unix ms) of the newest continuous file uploaded.
    #[serde(default)]
    continuous: BTreeMap<String, u64>,
}

impl Copies {
    /// Reads the copies recorded in `dir` (the `.preroll` directory).
    pub fn open(dir: Dir) -> io::Result<Copies> {
        let file = JsonFile::new(dir, FILE);
        let saved = file.read()?.unwrap_or_default();
        Ok(Copies {
            file: Some(file),
            inner: Mutex::new(Inner {
                saved,
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
        self.lock().saved.clips.get(path).cloned()
    }

    pub fn storage(&self, path: &Path) -> Storage {
        let inner = self.lock();
        if inner.uploading.contains(path) {
            return Storage::Uploading;
        }
        match inner.saved.clips.get(path) {
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
        self.change(|s| {
            s.clips.insert(path.to_owned(), copy);
        })
    }

    /// Forgets a clip's copy (the clip was deleted).
    pub fn forget(&self, path: &Path) -> io::Result<()> {
        if !self.lock().saved.clips.contains_key(path) {
            return Ok(());
        }
        self.change(|s| {
            s.clips.remove(path);
        })
    }

    /// The start of the newest continuous file of `camera` uploaded (Unix ms).
    pub fn continuous_done(&self, camera: &str) -> Option<u64> {
        self.lock().saved.continuous.get(camera).copied()
    }

    /// Records that `camera`'s continuous files up to the one starting at `start_ms` are in
    /// the bucket.
    pub fn set_continuous_done(&self, camera: &str, start_ms: u64) -> io::Result<()> {
        self.change(|s| {
            let done = s.continuous.entry(camera.to_owned()).or_insert(0);
            *done = (*done).max(start_ms);
        })
    }

    /// Applies a change durably; on failure the record is as before.
    fn change(&self, f: impl FnOnce(&mut Saved)) -> io::Result<()> {
        let mut inner = self.lock();
        let mut next = inner.saved.clone();
        f(&mut next);
        self.save(&next)?;
        inner.saved = next;
        Ok(())
    }

    fn save(&self, saved: &Saved) -> io::Result<()> {
        match &self.file {
            Some(f) => f.write(saved),
            None => Ok(()),
        }
    }
}
