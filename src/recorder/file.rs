//! The clip's file on disk: reserve the name, write the header region and fragments to
//! `<path>.partial`, and on finish make it durable and give it its final name atomically.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::mp4::kinds::FREE;
use crate::mp4::write::free_box;
use crate::mp4::{FileRange, MediaData};

use super::place::ClipPlace;
use super::{RecordError, RecoverError};

/// Room kept after the first header for it to grow in place (new sample entries or tracks
/// when a reconnect brings other codec parameters, and the `mehd` written at the end).
pub const HEADER_RESERVE: usize = 8 * 1024;

/// Writeback of the clip is started every this many bytes, so the disk works while the next
/// fragments are copied and the final fsync has little left to do; it also keeps the dirty
/// memory a long clip leaves behind bounded. (4 MiB was fastest of 1, 4, 16 and 64 MiB in
/// scripts/bench-remux.sh here.)
pub const WRITE_BEHIND: u64 = 4 << 20;

/// The suffix of a clip still being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

pub fn partial_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

#[derive(Debug)]
pub struct ClipFile {
    /// Its directory (every operation on the names goes through it) and final name.
    place: ClipPlace,
    partial_name: OsString,
    path: PathBuf,
    partial: PathBuf,
    file: File,
    /// Bytes written so far (= the append position).
    len: u64,
    /// Size of the header region (ftyp + moov + free) once written; 0 before.
    header_region: u64,
    /// End of the range handed to writeback so far.
    written_back: u64,
    /// Set once the file holds media: it is then kept if dropped unfinished, for recovery.
    keep_on_drop: bool,
    finished: bool,
}

impl ClipFile {
    /// Reserves the clip's place: creates `<name>.partial` exclusively in its directory,
    /// and holds an exclusive `flock` on it for the file's life, so `recover` never salvages
    /// a clip that is still being written (the lock dies with the process).
    /// Fails if the name exists or another recording holds the `.partial`.
    pub fn create(place: ClipPlace) -> Result<ClipFile, RecordError> {
        let path = place.path();
        let partial = partial_path(&path);
        let partial_name = place.name_with(PARTIAL_SUFFIX);
        if place.dir.has(&place.name) {
            return Err(RecordError::Exists { path });
        }
        let in_progress = || RecordError::InProgress {
            path: path.clone(),
            partial: partial.clone(),
        };
        // Creating the file and locking it are two steps: in between, `recover` may take the
        // lock on the new (empty) file and remove it. Then the file we hold is no longer at
        // the name, and we start again.
        let mut attempts = 0;
        let file = loop {
            let file = place.dir.create_new(&partial_name).map_err(|source| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    in_progress()
                } else {
                    RecordError::Io {
                        op: "creating",
                        path: partial.clone(),
                        source,
                    }
                }
            })?;
            // Blocking: nobody but a `recover` looking at this brand-new file can hold it.
            match lock(&file, true) {
                Ok(_) => {}
                // A filesystem without locks still records; it just cannot be guarded.
                Err(e) => tracing::warn!(
                    partial = %partial.display(),
                    "cannot lock the clip file ({e}); recovery cannot tell it is in use"
                ),
            }
            if place.dir.names(&partial_name, &file) {
                break file;
            }
            attempts += 1;
            if attempts == 3 {
                return Err(in_progress());
            }
        };
        Ok(ClipFile {
            place,
            partial_name,
            path,
            partial,
            file,
            len: 0,
            header_region: 0,
            written_back: 0,
            keep_on_drop: false,
            finished: false,
        })
    }

    /// Opens the existing `.partial` of the clip at `place` to salvage it, taking its lock
    /// without waiting. Writable unless `read_only` (for a dry run). The file is never
    /// removed on drop.
    pub(crate) fn open_partial(
        place: ClipPlace,
        read_only: bool,
    ) -> Result<ClipFile, RecoverError> {
        let path = place.path();
        let partial = partial_path(&path);
        let partial_name = place.name_with(PARTIAL_SUFFIX);
        let io_err = |op, source| RecoverError::Io {
            op,
            path: partial.clone(),
            source,
        };
        // Only regular files: a symlink is not followed, a FIFO is not opened (it would block).
        let file = place
            .dir
            .open_file(&partial_name, !read_only)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => RecoverError::Gone {
                    partial: partial.clone(),
                },
                io::ErrorKind::InvalidInput => RecoverError::NotAFile {
                    partial: partial.clone(),
                },
                _ => io_err("opening", e),
            })?;
        if !lock(&file, false).map_err(|e| io_err("locking", e))? {
            return Err(RecoverError::Locked { partial });
        }
        // It may have been finished (renamed) or removed between opening and locking.
        if !place.dir.names(&partial_name, &file) {
            return Err(RecoverError::Gone { partial });
        }
        let len = file
            .metadata()
            .map_err(|e| io_err("reading metadata of", e))?
            .len();
        Ok(ClipFile {
            place,
            partial_name,
            path,
            partial,
            file,
            len,
            header_region: 0,
            written_back: len,
            keep_on_drop: true,
            finished: false,
        })
    }

    /// Whether something already has the clip's final name.
    pub(crate) fn final_name_taken(&self) -> bool {
        self.place.dir.has(&self.place.name)
    }

    /// The open file, for reading what an interrupted recording left.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Continues a salvaged file: cuts everything after `len` (the end of its last complete
    /// fragment) and appends from there; `header_region` is where its first `moof` starts.
    pub(crate) fn resume_at(&mut self, len: u64, header_region: u64) -> Result<(), RecordError> {
        self.file
            .set_len(len)
            .map_err(|e| self.io("cutting the torn tail of", e))?;
        self.file
            .seek(SeekFrom::Start(len))
            .map_err(|e| self.io("seeking in", e))?;
        self.len = len;
        self.header_region = header_region;
        self.written_back = len;
        Ok(())
    }

    /// Removes the `.partial` (still holding its lock) and syncs its directory.
    pub(crate) fn remove(mut self) -> Result<(), RecordError> {
        self.place
            .dir
            .remove(&self.partial_name)
            .map_err(|e| self.io("removing", e))?;
        self.finished = true;
        self.place
            .dir
            .sync()
            .map_err(|e| self.io("syncing directory of", e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn io(&self, op: &'static str, source: io::Error) -> RecordError {
        RecordError::Io {
            op,
            path: self.partial.clone(),
            source,
        }
    }

    /// Writes the header (ftyp + moov) at the start of the file, padded with a `free` box to
    /// the reserved region. The first call sets the region's size; later calls rewrite it in
    /// place with one positioned write and fail with `None` if the header no longer fits.
    /// Returns the room left, or `None` when `header` does not fit.
    pub fn write_header(&mut self, header: &[u8]) -> Result<Option<usize>, RecordError> {
        if self.header_region == 0 {
            let region = (header.len() + HEADER_RESERVE).next_multiple_of(4096);
            let mut buf = Vec::with_capacity(region);
            buf.extend_from_slice(header);
            buf.extend_from_slice(&free_box(region - header.len()));
            self.file
                .write_all(&buf)
                .map_err(|e| self.io("writing", e))?;
            self.header_region = region as u64;
            self.len = region as u64;
            return Ok(Some(region - header.len()));
        }
        let region = self.header_region as usize;
        let room = region.checked_sub(header.len());
        let Some(room) = room.filter(|&r| r == 0 || r >= 8) else {
            return Ok(None);
        };
        let mut buf = Vec::with_capacity(region);
        buf.extend_from_slice(header);
        if room > 0 {
            buf.extend_from_slice(&free_box(room));
        }
        self.file
            .write_all_at(&buf, 0)
            .map_err(|e| self.io("rewriting header of", e))?;
        Ok(Some(room))
    }

    /// Size of the header region, 0 before the first header.
    pub fn header_region(&self) -> usize {
        self.header_region as usize
    }

    /// Appends a box header (moof + mdat header) and the payload pieces after it. Returns
    /// the offset at which `head` starts. If writing fails part-way, the file is cut back to
    /// where this fragment began, so it stays a valid fragmented MP4.
    pub fn append(&mut self, head: &[u8], pieces: &[MediaData]) -> Result<u64, RecordError> {
        let at = self.len;
        if let Err(e) = self.write_pieces(head, pieces) {
            let _ = self.file.set_len(at);
            let _ = self.file.seek(SeekFrom::Start(at));
            return Err(e);
        }
        self.len += head.len() as u64 + pieces.iter().map(MediaData::len).sum::<u64>();
        self.keep_on_drop = true;
        if self.len - self.written_back >= WRITE_BEHIND {
            start_writeback(&self.file, self.written_back, self.len - self.written_back);
            self.written_back = self.len;
        }
        Ok(at)
    }

    fn write_pieces(&mut self, head: &[u8], pieces: &[MediaData]) -> Result<(), RecordError> {
        self.file
            .write_all(head)
            .map_err(|e| self.io("writing", e))?;
        for piece in pieces {
            match piece {
                MediaData::Memory(b) => {
                    self.file.write_all(b).map_err(|e| self.io("writing", e))?
                }
                MediaData::Pieces(parts) => {
                    write_all_vectored(&mut self.file, parts).map_err(|e| self.io("writing", e))?
                }
                MediaData::File(r) => self.copy_range(r)?,
            }
        }
        Ok(())
    }

    /// Appends trailing bytes (the index).
    pub fn append_bytes(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        self.file
            .write_all(bytes)
            .map_err(|e| self.io("writing", e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Appends bytes the clip can do without (its random access index): when the disk is
    /// full, cuts them off again and returns false instead of failing the clip.
    pub fn append_optional(&mut self, bytes: &[u8]) -> Result<bool, RecordError> {
        let len = self.len;
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                self.resume_at(len, self.header_region)?;
                Ok(false)
            }
            Err(e) => Err(self.io("writing", e)),
        }
    }

    /// Copies a file range into the clip in the kernel (`copy_file_range`), falling back to a
    /// buffered copy where the filesystems cannot.
    fn copy_range(&mut self, r: &FileRange) -> Result<(), RecordError> {
        let mut off = r.offset;
        let end = r.offset + r.len;
        while off < end {
            let want = usize::try_from(end - off)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            match rustix::fs::copy_file_range(&*r.file, Some(&mut off), &self.file, None, want) {
                Ok(0) => {
                    return Err(self.io(
                        "copying media into",
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "source file is shorter than its boxes say",
                        ),
                    ));
                }
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(
                    rustix::io::Errno::XDEV
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::NOSYS
                    | rustix::io::Errno::OPNOTSUPP,
                ) => return self.copy_range_buffered(&r.file, off, end),
                Err(e) => return Err(self.io("copying media into", e.into())),
            }
        }
        Ok(())
    }

    fn copy_range_buffered(
        &mut self,
        src: &File,
        mut off: u64,
        end: u64,
    ) -> Result<(), RecordError> {
        let mut buf = vec![0u8; 1 << 20];
        while off < end {
            let n = usize::try_from(end - off)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            src.read_exact_at(&mut buf[..n], off)
                .map_err(|e| self.io("reading media for", e))?;
            self.file
                .write_all(&buf[..n])
                .map_err(|e| self.io("writing", e))?;
            off += n as u64;
        }
        Ok(())
    }

    /// Makes everything written so far durable; returns how long the fsync took.
    pub fn sync(&mut self) -> Result<std::time::Duration, RecordError> {
        let syncing = std::time::Instant::now();
        self.file.sync_all().map_err(|e| self.io("syncing", e))?;
        Ok(syncing.elapsed())
    }

    /// Turns the boxes starting at `offsets` into `free` boxes of the same size by rewriting
    /// their type (a fragmented header and `moof`s, once a progressive `moov` describes the
    /// media). Each must be a box with a 32-bit size that this file holds.
    pub fn hide_boxes(&mut self, offsets: impl Iterator<Item = u64>) -> Result<(), RecordError> {
        for at in offsets {
            self.file
                .write_all_at(&FREE.0, at + 4)
                .map_err(|e| self.io("hiding a box in", e))?;
        }
        Ok(())
    }

    /// Makes the clip durable and gives it its final name: fsync the file, rename
    /// `<path>.partial` to `<path>` without replacing anything, fsync the directory.
    /// Returns the file's length and how long the fsync of its data took.
    pub fn finish(mut self) -> Result<(u64, std::time::Duration), RecordError> {
        let syncing = std::time::Instant::now();
        self.file.sync_all().map_err(|e| self.io("syncing", e))?;
        let sync_time = syncing.elapsed();
        let renamed = self
            .place
            .dir
            .rename_no_replace(&self.partial_name, &self.place.name);
        renamed.map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                RecordError::Exists {
                    path: self.path.clone(),
                }
            } else {
                RecordError::Io {
                    op: "renaming",
                    path: self.partial.clone(),
                    source,
                }
            }
        })?;
        self.finished = true;
        self.place.dir.sync().map_err(|source| RecordError::Io {
            op: "syncing directory of",
            path: self.path.clone(),
            source,
        })?;
        Ok((self.len, sync_time))
    }

    /// Removes the `.partial` (nothing was captured, or the caller gives up on it).
    pub fn discard(mut self) {
        self.keep_on_drop = false;
        // Drop removes it.
    }
}

impl Drop for ClipFile {
    fn drop(&mut self) {
        if !self.finished && !self.keep_on_drop {
            let _ = self.place.dir.remove(&self.partial_name);
        }
    }
}

/// Writes every buffer, as few `writev` calls as the kernel allows.
fn write_all_vectored(file: &mut File, parts: &[bytes::Bytes]) -> io::Result<()> {
    // The kernel takes at most IOV_MAX (1024) buffers per call.
    const MAX_IOV: usize = 1024;
    let mut first = 0usize; // first buffer not fully written
    let mut skip = 0usize; // bytes of it already written
    while first < parts.len() {
        let end = (first + MAX_IOV).min(parts.len());
        let mut iov: Vec<io::IoSlice<'_>> = Vec::with_capacity(end - first);
        iov.push(io::IoSlice::new(&parts[first][skip..]));
        iov.extend(parts[first + 1..end].iter().map(|b| io::IoSlice::new(b)));
        let mut n = match file.write_vectored(&iov) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while first < parts.len() && n >= parts[first].len() - skip {
            n -= parts[first].len() - skip;
            first += 1;
            skip = 0;
        }
        skip += n;
    }
    Ok(())
}

/// Asks the kernel to start writing a range of the file to disk, without waiting for it.
/// Only a hint: the final fsync is what guarantees durability, so failure is ignored.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the fd is open for as long
    // as `file` is borrowed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Takes the exclusive `flock` on a clip file. Returns false when `wait` is off and another
/// open file (a running recorder) holds it.
fn lock(file: &File, wait: bool) -> io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    let op = if wait {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    loop {
        match flock(file, op) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}
