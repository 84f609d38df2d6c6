//! Final clips, on disk: one JSON line per clip (its API view) in
//! `<recordings>/.preroll/clips.jsonl`. With them there, the service's memory holds only the
//! clips in progress, so it does not grow with the number of clips recorded (a service runs
//! for months), and the list of clips survives a restart.
//!
//! Lines are appended as clips become final, and synced. Once the file holds [`KEEP`] +
//! [`SLACK`] lines it is rewritten with the newest [`KEEP`]: into a temporary file that is
//! synced and renamed over it, so a crash leaves either the old file or the new one. A last
//! line torn by a crash is cut at the next start; a line that is not a clip is skipped.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::recorder::Dir;

use super::clips::{ClipState, ClipView};

/// The newest final clips kept at least.
pub const KEEP: usize = 1000;
/// Lines appended beyond [`KEEP`] before the file is rewritten. A rewrite reads and writes
/// about half a megabyte, so it is done once per this many clips, not on every one.
const SLACK: usize = 100;

/// The directory, inside the recordings directory, that holds the history.
pub const DIR: &str = ".preroll";
const FILE: &str = "clips.jsonl";
/// A rewrite in progress, renamed over [`FILE`] when complete.
const REWRITE: &str = "clips.jsonl.tmp";

/// The clip history of one recordings directory.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    journal: Mutex<Journal>,
}

#[derive(Debug)]
struct Journal {
    /// The history's directory, reached without following a symlink (see `recorder::place`):
    /// a link planted at `.preroll` or at the file cannot lead its writes elsewhere.
    dir: Dir,
    /// Opened for reading and appending.
    file: File,
    counts: Counts,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Complete lines in the file, clips or not.
    lines: usize,
    done: usize,
    failed: usize,
}

/// What reading the history found wrong.
#[derive(Debug, thiserror::Error)]
#[error("clip history {path}: {error}")]
pub struct HistoryError {
    path: String,
    error: io::Error,
}

impl History {
    /// Opens (or creates) the history of `recordings`, cutting a last line a crash left
    /// unfinished.
    pub fn open(recordings: &Path) -> Result<History, HistoryError> {
        let dir = recordings.join(DIR);
        let path = dir.join(FILE);
        let fail = |error| HistoryError {
            path: path.display().to_string(),
            error,
        };
        let dir = Dir::root(recordings)
            .and_then(|root| root.descend(Path::new(DIR), true))
            .map_err(fail)?;
        // A rewrite interrupted before its rename leaves this behind; the history is whole.
        let _ = dir.remove(OsStr::new(REWRITE));
        let file = dir.open_append(OsStr::new(FILE)).map_err(fail)?;
        let mut journal = Journal {
            dir,
            file,
            counts: Counts::default(),
        };
        let mut line_number = 0;
        let (complete, tail) = read_lines(&journal.file, |line| {
            line_number += 1;
            journal.counts.lines += 1;
            match serde_json::from_slice::<ClipView>(line) {
                Ok(view) => journal.counts.count(view.state),
                Err(e) => tracing::warn!(
                    history = %path.display(),
                    "line {line_number} is not a clip, skipped: {e}"
                ),
            }
            Ok(())
        })
        .map_err(fail)?;
        if !tail.is_empty() {
            match serde_json::from_slice::<ClipView>(&tail) {
                // Only the newline is missing.
                Ok(view) => {
                    journal.file.write_all(b"\n").map_err(fail)?;
                    journal.counts.lines += 1;
                    journal.counts.count(view.state);
                }
                Err(_) => {
                    tracing::warn!(
                        history = %path.display(),
                        "cut {} bytes of a last line left unfinished", tail.len()
                    );
                    journal.file.set_len(complete).map_err(fail)?;
                }
            }
        }
        Ok(History {
            path,
            journal: Mutex::new(journal),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, error: io::Error) -> HistoryError {
        HistoryError {
            path: self.path.display().to_string(),
            error,
        }
    }

    /// Appends a final clip and syncs it. On failure (a full disk) the file is as before.
    pub fn append(&self, view: &ClipView) -> Result<(), HistoryError> {
        let mut line = serde_json::to_vec(view).map_err(|e| self.error(io::Error::other(e)))?;
        line.push(b'\n');
        let mut journal = self.lock();
        let file = &mut journal.file;
        let before = file.metadata().map_err(|e| self.error(e))?.len();
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // A part-written line would run into the next one.
            let _ = file.set_len(before);
            return Err(self.error(e));
        }
        journal.counts.lines += 1;
        journal.counts.count(view.state);
        if journal.counts.lines >= KEEP + SLACK
            && let Err(e) = journal.rewrite()
        {
            // The file is still whole; the next append tries again.
            tracing::warn!(history = %self.path.display(), "rewriting with the newest {KEEP} clips: {e}");
        }
        Ok(())
    }

    /// The newest clip with this id.
    pub fn get(&self, id: &str) -> Result<Option<ClipView>, HistoryError> {
        // Serialized as the line has it, so most lines are passed over without parsing.
        let needle = format!(
            "\"id\":{}",
            serde_json::to_string(id).map_err(|e| self.error(io::Error::other(e)))?
        );
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let mut found = None;
        let journal = self.lock();
        read_lines(&journal.file, |line| {
            if finder.find(line).is_some()
                && let Ok(view) = serde_json::from_slice::<ClipView>(line)
                && view.id == id
            {
                found = Some(view);
            }
            Ok(())
        })
        .map_err(|e| self.error(e))?;
        Ok(found)
    }

    /// Every clip in the history, oldest first.
    pub fn all(&self) -> Result<Vec<ClipView>, HistoryError> {
        let mut views = Vec::new();
        let journal = self.lock();
        read_lines(&journal.file, |line| {
            if let Ok(view) = serde_json::from_slice::<ClipView>(line) {
                views.push(view);
            }
            Ok(())
        })
        .map_err(|e| self.error(e))?;
        Ok(views)
    }

    /// Takes the clip with this id out of the history (the file is rewritten without it);
    /// `false` when it was not there.
    pub fn remove(&self, id: &str) -> Result<bool, HistoryError> {
        if self.get(id)?.is_none() {
            return Ok(false);
        }
        self.lock()
            .rewrite_keeping(|v| v.id != id)
            .map_err(|e| self.error(e))?;
        Ok(true)
    }

    /// Takes the clips at these paths out of the history in one rewrite (the caller has seen
    /// that some are there).
    pub fn remove_paths(
        &self,
        paths: &std::collections::HashSet<PathBuf>,
    ) -> Result<(), HistoryError> {
        self.lock()
            .rewrite_keeping(|v| !paths.contains(&v.path))
            .map_err(|e| self.error(e))
    }

    /// Clips in the history that are done, and that failed.
    pub fn counts(&self) -> (usize, usize) {
        let counts = self.lock().counts;
        (counts.done, counts.failed)
    }
}

impl Counts {
    fn count(&mut self, state: ClipState) {
        match state {
            ClipState::Done => self.done += 1,
            ClipState::Failed => self.failed += 1,
            // Only final clips are written; a line saying otherwise is listed, not counted.
            ClipState::Recording | ClipState::Finalizing => {}
        }
    }
}

impl Journal {
    /// Replaces the file with one holding its newest [`KEEP`] clips.
    fn rewrite(&mut self) -> io::Result<()> {
        self.rewrite_keeping(|_| true)
    }

    /// Replaces the file with one holding its newest [`KEEP`] clips for which `keep` holds.
    fn rewrite_keeping(&mut self, keep: impl Fn(&ClipView) -> bool) -> io::Result<()> {
        let (file, rewrite) = (OsStr::new(FILE), OsStr::new(REWRITE));
        let result = self.write_newest(keep).and_then(|kept| {
            self.dir.rename(rewrite, file)?;
            self.dir.sync()?;
            Ok(kept)
        });
        match result {
            Ok(kept) => {
                // The old handle would go on reading and appending to the replaced file.
                self.file = self.dir.open_append(file)?;
                self.counts = kept;
                Ok(())
            }
            Err(e) => {
                let _ = self.dir.remove(rewrite);
                Err(e)
            }
        }
    }

    /// Writes the newest [`KEEP`] clips for which `keep` holds to the rewrite file and syncs
    /// it.
    fn write_newest(&self, keep: impl Fn(&ClipView) -> bool) -> io::Result<Counts> {
        let to = self.dir.create_truncate(OsStr::new(REWRITE))?;
        let mut out = BufWriter::new(to);
        let skip = self.counts.lines.saturating_sub(KEEP);
        let mut kept = Counts::default();
        let mut n = 0;
        read_lines(&self.file, |line| {
            n += 1;
            if n <= skip {
                return Ok(());
            }
            // Lines that are not clips go with the rewrite.
            if let Ok(view) = serde_json::from_slice::<ClipView>(line)
                && keep(&view)
            {
                out.write_all(line)?;
                out.write_all(b"\n")?;
                kept.lines += 1;
                kept.count(view.state);
            }
            Ok(())
        })?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(kept)
    }
}

#[cfg(test)]
fn temporary(path: &Path) -> PathBuf {
    path.with_file_name(REWRITE)
}

/// Calls `each` with every complete line of `file` (without its newline), from the start;
/// returns the length of those lines and what follows the last newline.
fn read_lines(
    mut file: &File,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(u64, Vec<u8>)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut complete = 0;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok((complete, Vec::new()));
        }
        if line.last() != Some(&b'\n') {
            return Ok((complete, line));
        }
        complete += n as u64;
        each(&line[..n - 1])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn view(n: usize, state: ClipState) -> ClipView {
        ClipView {
            id: format!("test-{n}"),
            camera: Some("cam".into()),
            state,
            path: PathBuf::from(format!("/clips/{n}.mp4")),
            trigger_time: None,
            requested_lookback: 1.0,
            requested_duration: 2.0,
            preroll: 1.0,
            duration: 3.0,
            bytes: 1000,
            discontinuities: 0,
            discontinuity_times: Vec::new(),
            ended_early: None,
            error: (state == ClipState::Failed).then(|| "no media".into()),
            recovered: false,
            request_id: None,
            keep: false,
            export: None,
            storage: Default::default(),
            node: None,
        }
    }

    fn ids(history: &History) -> Vec<String> {
        let all = history.all().expect("readable");
        all.into_iter().map(|v| v.id).collect()
    }

    #[test]
    fn links_planted_at_the_history_are_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let recordings = dir.path().join("rec");
        std::fs::create_dir_all(&recordings).expect("mkdir");
        // The directory a link to elsewhere.
        std::os::unix::fs::symlink(outside.path(), recordings.join(DIR)).expect("symlink");
        let e = History::open(&recordings).expect_err("a link at .preroll");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        std::fs::remove_file(recordings.join(DIR)).expect("rm");
        // The file a link to a file elsewhere.
        std::fs::create_dir(recordings.join(DIR)).expect("mkdir");
        let target = outside.path().join("victim");
        std::fs::write(&target, b"keep me").expect("write");
        std::os::unix::fs::symlink(&target, recordings.join(DIR).join(FILE)).expect("symlink");
        assert!(History::open(&recordings).is_err());
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");
        let names: Vec<_> = std::fs::read_dir(outside.path()).expect("ls").collect();
        assert_eq!(names.len(), 1, "nothing written outside");
    }

    #[test]
    fn clips_outlive_a_reopen_and_are_found_by_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let history = History::open(dir.path()).expect("open");
        for (n, state) in [ClipState::Done, ClipState::Failed, ClipState::Done]
            .into_iter()
            .enumerate()
        {
            history.append(&view(n, state)).expect("append");
        }
        drop(history);

        let history = History::open(dir.path()).expect("reopen");
        assert_eq!(ids(&history), ["test-0", "test-1", "test-2"]);
        assert_eq!(history.counts(), (2, 1));
        let found = history.get("test-1").expect("readable").expect("found");
        assert_eq!(found.state, ClipState::Failed);
        assert_eq!(found.error.as_deref(), Some("no media"));
        // A prefix of an id is not the id.
        assert!(history.get("test-").expect("readable").is_none());
        assert!(history.get("x\"y\\").expect("readable").is_none());
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_line_that_is_not_a_clip_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = |n| serde_json::to_string(&view(n, ClipState::Done)).expect("json");
        fs::create_dir_all(dir.path().join(DIR)).expect("dir");
        let path = dir.path().join(DIR).join(FILE);
        let torn = line(2);
        fs::write(
            &path,
            format!(
                "{}\nnot a clip\n{}\n{}",
                line(0),
                line(1),
                &torn[..torn.len() / 2]
            ),
        )
        .expect("write");

        let history = History::open(dir.path()).expect("open");
        assert_eq!(ids(&history), ["test-0", "test-1"]);
        // The next line starts on a line of its own.
        history.append(&view(3, ClipState::Done)).expect("append");
        assert_eq!(ids(&history), ["test-0", "test-1", "test-3"]);
        assert_eq!(history.counts(), (3, 0));

        // A whole clip short of its newline is kept.
        let text = fs::read_to_string(&path).expect("read");
        fs::write(&path, format!("{text}{}", line(4))).expect("write");
        let history = History::open(dir.path()).expect("reopen");
        assert_eq!(ids(&history), ["test-0", "test-1", "test-3", "test-4"]);
        history.append(&view(5, ClipState::Failed)).expect("append");
        assert_eq!(history.counts(), (4, 1));
        assert_eq!(ids(&history).len(), 5);
    }

    #[test]
    fn a_removed_clip_is_gone_after_a_reopen_and_the_others_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = History::open(dir.path()).expect("history");
        for n in 0..3 {
            h.append(&view(n, ClipState::Done)).expect("append");
        }
        assert!(h.remove("test-1").expect("removed"));
        assert!(!h.remove("test-1").expect("already gone"));
        assert_eq!(ids(&h), ["test-0", "test-2"]);
        assert_eq!(h.counts(), (2, 0));
        h.append(&view(3, ClipState::Failed)).expect("append after");
        drop(h);
        let h = History::open(dir.path()).expect("reopen");
        assert_eq!(ids(&h), ["test-0", "test-2", "test-3"]);
    }

    #[test]
    fn keeps_the_newest_clips_when_it_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let history = History::open(dir.path()).expect("open");
        for n in 0..KEEP + SLACK - 1 {
            history.append(&view(n, ClipState::Done)).expect("append");
        }
        assert_eq!(ids(&history).len(), KEEP + SLACK - 1);
        // This one makes it rewrite.
        history
            .append(&view(KEEP + SLACK - 1, ClipState::Failed))
            .expect("append");
        let kept = ids(&history);
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0], format!("test-{SLACK}"));
        assert_eq!(history.counts(), (KEEP - 1, 1));
        assert!(!temporary(history.path()).exists());
        assert!(history.get("test-0").expect("readable").is_none());
        // Appends go to the new file, which a restart reads back the same.
        history
            .append(&view(KEEP + SLACK, ClipState::Done))
            .expect("append");
        drop(history);
        let history = History::open(dir.path()).expect("reopen");
        let after = ids(&history);
        assert_eq!(after.len(), KEEP + 1);
        assert_eq!(after[KEEP], format!("test-{}", KEEP + SLACK));
        assert_eq!(history.counts(), (KEEP, 1));
    }
}
