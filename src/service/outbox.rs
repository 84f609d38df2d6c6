//! Messages waiting to leave the machine (webhook deliveries), kept on disk until sent, so a
//! restart or a crash loses none: `<recordings>/.preroll/<name>.jsonl`, one JSON line per
//! change, synced before it counts. `{"id":N,"body":"..."}` adds a message (the exact bytes to
//! send, so a retry after a restart sends the same bytes and signature); `{"done":N}` marks
//! it sent (or given up). At open the lines are replayed; a last line torn by a crash is cut.
//! Once nothing is pending the file is emptied; when done lines pile up behind a message that
//! stays pending, the file is rewritten with the pending ones only (temporary file, synced,
//! renamed over it).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::recorder::Dir;

/// Done lines tolerated before the file is rewritten without them.
const REWRITE_AFTER: usize = 1000;

/// One message waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: u64,
    pub body: String,
}

#[derive(Serialize, Deserialize)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    done: Option<u64>,
}

#[derive(Debug)]
pub struct Outbox {
    dir: Dir,
    name: OsString,
    path: PathBuf,
    file: File,
    pending: VecDeque<Pending>,
    /// Done lines in the file.
    done_lines: usize,
    /// At most this many pending; past it the oldest is given up.
    limit: usize,
}

impl Outbox {
    /// Opens (or creates) the outbox `name` under `<recordings>/.preroll`, with the messages
    /// still pending from before.
    pub fn open(recordings: &Path, name: &str, limit: usize) -> io::Result<Outbox> {
        let file_name = OsString::from(format!("{name}.jsonl"));
        let dir = Dir::root(recordings)?.descend(Path::new(super::history::DIR), true)?;
        let path = recordings.join(super::history::DIR).join(&file_name);
        let _ = dir.remove(&temporary(&file_name));
        let mut file = dir.open_append(&file_name)?;
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut done_lines = 0;
        file.seek(SeekFrom::Start(0))?;
        let mut reader = BufReader::new(&file);
        let mut complete = 0u64;
        let mut buf = Vec::new();
        let mut torn = false;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            if buf.last() != Some(&b'\n') {
                torn = true;
                break;
            }
            complete += n as u64;
            match serde_json::from_slice::<Line>(&buf[..n - 1]) {
                Ok(Line {
                    id: Some(id),
                    body: Some(body),
                    ..
                }) => pending.push_back(Pending { id, body }),
                Ok(Line { done: Some(id), .. }) => {
                    pending.retain(|p| p.id != id);
                    done_lines += 1;
                }
                _ => {
                    tracing::warn!(outbox = %path.display(), "a line that is not a message, skipped")
                }
            }
        }
        drop(reader);
        if torn {
            tracing::warn!(outbox = %path.display(), "cut a last line left unfinished");
            file.set_len(complete)?;
        }
        let mut outbox = Outbox {
            dir,
            name: file_name,
            path,
            file,
            pending,
            done_lines,
            limit: limit.max(1),
        };
        outbox.tidy()?;
        Ok(outbox)
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Every message pending, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.iter()
    }

    /// The oldest message pending.
    pub fn front(&self) -> Option<&Pending> {
        self.pending.front()
    }

    /// Adds a message once it is on disk; returns the messages given up to stay within the
    /// limit (the oldest).
    pub fn push(&mut self, id: u64, body: String) -> io::Result<Vec<Pending>> {
        self.append(&Line {
            id: Some(id),
            body: Some(body.clone()),
            done: None,
        })?;
        self.pending.push_back(Pending { id, body });
        let mut given_up = Vec::new();
        while self.pending.len() > self.limit {
            if let Some(oldest) = self.pending.front().cloned() {
                self.done(oldest.id)?;
                given_up.push(oldest);
            }
        }
        Ok(given_up)
    }

    /// Marks message `id` sent (or given up).
    pub fn done(&mut self, id: u64) -> io::Result<()> {
        self.append(&Line {
            id: None,
            body: None,
            done: Some(id),
        })?;
        self.pending.retain(|p| p.id != id);
        self.done_lines += 1;
        self.tidy()
    }

    /// Drops message `id` from memory only (its done mark could not be written: a restart
    /// sends it again).
    pub fn forget(&mut self, id: u64) {
        self.pending.retain(|p| p.id != id);
    }

    fn append(&mut self, line: &Line) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let before = self.file.metadata()?.len();
        if let Err(e) = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
        {
            // A part-written line would run into the next one.
            let _ = self.file.set_len(before);
            return Err(e);
        }
        Ok(())
    }

    /// Empties the file when nothing is pending; rewrites it when done lines pile up.
    fn tidy(&mut self) -> io::Result<()> {
        if self.pending.is_empty() && self.done_lines > 0 {
            self.file.set_len(0)?;
            self.file.sync_data()?;
            self.done_lines = 0;
        } else if self.done_lines > REWRITE_AFTER {
            let tmp = temporary(&self.name);
            let written = (|| {
                let mut out = BufWriter::new(self.dir.create_truncate(&tmp)?);
                for p in &self.pending {
                    let line = Line {
                        id: Some(p.id),
                        body: Some(p.body.clone()),
                        done: None,
                    };
                    serde_json::to_writer(&mut out, &line).map_err(io::Error::other)?;
                    out.write_all(b"\n")?;
                }
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                self.dir.rename(&tmp, &self.name)?;
                self.dir.sync()
            })();
            match written {
                Ok(()) => {
                    self.file = self.dir.open_append(&self.name)?;
                    self.done_lines = 0;
                }
                Err(e) => {
                    let _ = self.dir.remove(&tmp);
                    // The file is still whole; the next change tries again.
                    tracing::warn!(outbox = %self.path.display(), "rewriting without the sent messages: {e}");
                }
            }
        }
        Ok(())
    }
}

fn temporary(name: &OsStr) -> OsString {
    let mut t = name.to_owned();
    t.push(".tmp");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(o: &Outbox) -> Vec<u64> {
        o.pending.iter().map(|p| p.id).collect()
    }

    #[test]
    fn pending_messages_survive_a_reopen_and_sent_ones_do_not() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(d.path(), "hook", 100).unwrap();
        for id in 1..=4 {
            o.push(id, format!("{{\"id\":{id}}}")).unwrap();
        }
        o.done(1).unwrap();
        o.done(3).unwrap();
        drop(o);
        let o = Outbox::open(d.path(), "hook", 100).unwrap();
        assert_eq!(ids(&o), [2, 4]);
        assert_eq!(o.front().unwrap().body, "{\"id\":2}");
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_rest_kept() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(d.path(), "hook", 100).unwrap();
        o.push(7, "{}".into()).unwrap();
        let path = o.path().to_owned();
        drop(o);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"id\":8,\"bo").unwrap();
        drop(f);
        let mut o = Outbox::open(d.path(), "hook", 100).unwrap();
        assert_eq!(ids(&o), [7]);
        o.push(9, "{}".into()).unwrap();
        drop(o);
        assert_eq!(ids(&Outbox::open(d.path(), "hook", 100).unwrap()), [7, 9]);
    }

    #[test]
    fn the_file_empties_when_all_is_sent_and_stays_small_behind_a_stuck_message() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(d.path(), "hook", 100_000).unwrap();
        o.push(1, "stuck".into()).unwrap();
        for id in 2..(REWRITE_AFTER as u64 + 10) {
            o.push(id, "x".repeat(100)).unwrap();
            o.done(id).unwrap();
        }
        let len = std::fs::metadata(o.path()).unwrap().len();
        assert!(len < 20_000, "{len} bytes behind one pending message");
        assert_eq!(ids(&o), [1]);
        o.done(1).unwrap();
        assert_eq!(std::fs::metadata(o.path()).unwrap().len(), 0);
        drop(o);
        assert!(Outbox::open(d.path(), "hook", 10).unwrap().is_empty());
    }

    #[test]
    fn past_its_limit_the_oldest_is_given_up() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(d.path(), "hook", 2).unwrap();
        o.push(1, "a".into()).unwrap();
        o.push(2, "b".into()).unwrap();
        let given_up = o.push(3, "c".into()).unwrap();
        assert_eq!(given_up.iter().map(|p| p.id).collect::<Vec<_>>(), [1]);
        drop(o);
        assert_eq!(ids(&Outbox::open(d.path(), "hook", 2).unwrap()), [2, 3]);
    }
}
