//! A small JSON file under `.preroll` that is replaced whole: written beside it, synced,
//! renamed over it, so a crash leaves the old contents or the new ones.

use std::ffi::OsStr;
use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::recorder::Dir;

/// `name` in `dir`, and the temporary file it is rewritten through (`<name>.tmp`).
#[derive(Debug)]
pub struct JsonFile {
    dir: Dir,
    name: String,
    temporary: String,
}

impl JsonFile {
    /// Drops a rewrite a crash left unfinished.
    pub fn new(dir: Dir, name: &str) -> JsonFile {
        let file = JsonFile {
            temporary: format!("{name}.tmp"),
            name: name.to_owned(),
            dir,
        };
        let _ = file.dir.remove(OsStr::new(&file.temporary));
        file
    }

    /// The contents; `None` when the file is missing or empty. A file that does not parse is
    /// an error naming it.
    pub fn read<T: DeserializeOwned>(&self) -> io::Result<Option<T>> {
        let mut text = Vec::new();
        match self.dir.open_file(OsStr::new(&self.name), false) {
            Ok(mut f) => {
                f.read_to_end(&mut text)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", self.dir.path().join(&self.name).display()),
            )
        })
    }

    /// Replaces the contents durably; on failure (a full disk) the file is as before.
    pub fn write<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
        let temporary = OsStr::new(&self.temporary);
        let mut file = self.dir.create_truncate(temporary)?;
        let written = file.write_all(&text).and_then(|()| file.sync_data());
        if let Err(e) = written {
            let _ = self.dir.remove(temporary);
            return Err(e);
        }
        self.dir.rename(temporary, OsStr::new(&self.name))?;
        self.dir.sync()
    }
}
