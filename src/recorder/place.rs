//! Where a clip's files are: an open handle on the directory that holds them, and the clip's
//! file name in it.
//!
//! Every file operation on a clip (create the `.partial`, look for the final name, rename,
//! remove, sync the directory) goes through that handle with a plain name, so nothing can
//! redirect it once the handle is open. The handle itself is reached from a root directory
//! (the recordings directory, or another allowed one) one component at a time, each opened
//! with `O_NOFOLLOW | O_DIRECTORY`: no symbolic link below the root is ever followed, and a
//! component is never `..` (names with it are refused before this). That is
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` done by hand, which also works on kernels without
//! `openat2`. A symlink swapped in after a component was opened changes nothing: the handle
//! still names the directory that was there.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// A directory opened without following symlinks below its root, shared by every file a
/// clip has in it.
#[derive(Debug, Clone)]
pub struct Dir {
    fd: Arc<OwnedFd>,
    /// Where it is, for messages (not used to reach it again).
    path: PathBuf,
}

/// A clip's place: its directory and its file name.
#[derive(Debug, Clone)]
pub struct ClipPlace {
    pub dir: Dir,
    pub name: OsString,
}

/// Flags for a directory reached on the way to a clip.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Dir {
    /// Opens a root directory as configured (symlinks in its own path are the
    /// administrator's choice and are followed).
    pub fn root(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd: Arc::new(fd),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory `relative` below this one, each component opened without following a
    /// symlink; missing ones are created when `create` is set. A symlink on the way is an
    /// error of kind `InvalidInput` naming it.
    pub fn descend(&self, relative: &Path, create: bool) -> io::Result<Dir> {
        let mut dir = self.clone();
        for part in relative.components() {
            let name = match part {
                Component::Normal(n) => n,
                Component::CurDir => continue,
                // Relative names only; `..` is refused before a path gets here.
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{}: not a plain relative path", relative.display()),
                    ));
                }
            };
            if create {
                match rustix::fs::mkdirat(&*dir.fd, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(dir.error(name, "creating directory", e)),
                }
            }
            let fd = rustix::fs::openat(&*dir.fd, name, dir_flags(), Mode::empty())
                .map_err(|e| dir.error(name, "opening directory", e))?;
            dir = Dir {
                fd: Arc::new(fd),
                path: dir.path.join(name),
            };
        }
        Ok(dir)
    }

    /// Explains a failed step: a symlink where a directory or file was expected is named as
    /// such (the kernel says ELOOP or ENOTDIR).
    fn error(&self, name: &OsStr, op: &str, e: Errno) -> io::Error {
        let path = self.path.join(name);
        if matches!(e, Errno::LOOP | Errno::NOTDIR) {
            // What stands there now (it may have changed since the kernel looked; looked at
            // once, so the answer is one state of it).
            let now = rustix::fs::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode));
            let (kind, what) = match now {
                Ok(rustix::fs::FileType::Symlink) => (
                    io::ErrorKind::InvalidInput,
                    "is a symbolic link; preroll follows none below its storage directories",
                ),
                Ok(rustix::fs::FileType::Directory) | Err(_) => (
                    io::ErrorKind::InvalidInput,
                    "changed while it was opened (a symbolic link swapped in?)",
                ),
                Ok(_) if e == Errno::NOTDIR => {
                    (io::ErrorKind::NotADirectory, "is a file, not a directory")
                }
                Ok(_) => (io::ErrorKind::InvalidInput, "is not what it should be"),
            };
            return io::Error::new(kind, format!("{} {what}", path.display()));
        }
        let e = io::Error::from(e);
        io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
    }

    /// Creates `name` exclusively (never through a symlink), for reading and writing.
    pub fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat(&*self.fd, name, flags, Mode::from_raw_mode(0o644))
            .map(File::from)
            .map_err(io::Error::from)
    }

    /// Opens `name` for reading and appending, creating it if missing (never through a
    /// symlink); it must be a regular file.
    pub fn open_append(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::RDWR
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&*self.fd, name, flags, Mode::from_raw_mode(0o644))
            .map_err(|e| self.error(name, "opening", e))?;
        regular_and_blocking(File::from(fd), &self.path.join(name))
    }

    /// Creates `name` empty, replacing a regular file there (never through a symlink).
    pub fn create_truncate(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::TRUNC
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&*self.fd, name, flags, Mode::from_raw_mode(0o644))
            .map_err(|e| self.error(name, "creating", e))?;
        regular_and_blocking(File::from(fd), &self.path.join(name))
    }

    /// Renames `from` to `to` in this directory, replacing `to`.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        rustix::fs::renameat(&*self.fd, from, &*self.fd, to).map_err(io::Error::from)
    }

    /// Opens an existing regular file `name` (a symlink is refused, a FIFO never blocks).
    pub fn open_file(&self, name: &OsStr, write: bool) -> io::Result<File> {
        let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
        let flags = access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&*self.fd, name, flags, Mode::empty())
            .map_err(|e| self.error(name, "opening", e))?;
        regular_and_blocking(File::from(fd), &self.path.join(name))
    }

    /// Whether anything (a file, a directory, a symlink) is at `name`.
    pub fn has(&self, name: &OsStr) -> bool {
        rustix::fs::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Whether `name` is the open `file` (same device and inode), not followed if a link.
    pub fn names(&self, name: &OsStr, file: &File) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (
            file.metadata(),
            rustix::fs::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW),
        ) {
            (Ok(a), Ok(b)) => a.dev() == b.st_dev && a.ino() == b.st_ino,
            _ => false,
        }
    }

    /// Renames `from` to `to` in this directory, failing with `AlreadyExists` rather than
    /// replacing `to`.
    pub fn rename_no_replace(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        match rustix::fs::renameat_with(&*self.fd, from, &*self.fd, to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            // Filesystems without RENAME_NOREPLACE: a hard link fails on an existing target.
            Err(Errno::INVAL | Errno::NOSYS) => {
                rustix::fs::linkat(&*self.fd, from, &*self.fd, to, AtFlags::empty())?;
                rustix::fs::unlinkat(&*self.fd, from, AtFlags::empty()).map_err(io::Error::from)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        rustix::fs::unlinkat(&*self.fd, name, AtFlags::empty()).map_err(io::Error::from)
    }

    /// Makes the directory's entries (a new or renamed file) durable.
    pub fn sync(&self) -> io::Result<()> {
        rustix::fs::fsync(&*self.fd).map_err(io::Error::from)
    }

    /// The entries of this directory: (name, is a directory, is a regular file), symlinks
    /// reported as neither.
    pub fn entries(&self) -> io::Result<Vec<(OsString, bool, bool)>> {
        let fd = rustix::fs::openat(&*self.fd, ".", dir_flags(), Mode::empty())?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                rustix::fs::FileType::Unknown => {
                    rustix::fs::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode))
                        .unwrap_or(rustix::fs::FileType::Unknown)
                }
                k => k,
            };
            out.push((
                name.to_owned(),
                kind == rustix::fs::FileType::Directory,
                kind == rustix::fs::FileType::RegularFile,
            ));
        }
        Ok(out)
    }
}

/// A path's directory (`.` for a bare name) and file name.
fn split(path: &Path) -> io::Result<(&Path, OsString)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name.to_owned()))
}

/// `file` if it is a regular file, back in blocking mode (`O_NONBLOCK` was only there so that
/// opening a FIFO planted at the name does not block).
fn regular_and_blocking(file: File, path: &Path) -> io::Result<File> {
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    Ok(file)
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl ClipPlace {
    /// The place of a clip at `path` as given (the CLI's own output: the user's shell
    /// resolved it, symlinks included); its directory is created if missing.
    pub fn at(path: &Path) -> io::Result<ClipPlace> {
        let (parent, name) = split(path)?;
        std::fs::create_dir_all(parent).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("creating directory {}: {e}", parent.display()),
            )
        })?;
        Ok(ClipPlace {
            dir: Dir::root(parent)?,
            name,
        })
    }

    /// The place of an existing clip path (its directory must exist; nothing is created).
    pub fn existing(path: &Path) -> io::Result<ClipPlace> {
        let (parent, name) = split(path)?;
        Ok(ClipPlace {
            dir: Dir::root(parent)?,
            name,
        })
    }

    /// The place of `relative` below `root`, confined to it (see the module's notes); the
    /// directories on the way are created.
    pub fn beneath(root: &Dir, relative: &Path) -> io::Result<ClipPlace> {
        // `.` for a bare name is a component `descend` skips.
        let (parent, name) = split(relative)?;
        Ok(ClipPlace {
            dir: root.descend(parent, true)?,
            name,
        })
    }

    /// The clip's full path, for messages and the API.
    pub fn path(&self) -> PathBuf {
        self.dir.path.join(&self.name)
    }

    /// Its name with `suffix` added (`a.mp4` → `a.mp4.partial`).
    pub fn name_with(&self, suffix: &str) -> OsString {
        let mut n = self.name.clone();
        n.push(suffix);
        n
    }
}
