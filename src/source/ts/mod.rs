//! MPEG transport stream files (ISO 13818-1) as sources: `.ts` recordings from cameras,
//! NVRs and ffmpeg, and 192-byte-packet M2TS. The file is read packet by packet on a thread
//! of its own ([`replay`](super::replay)).
//!
//! Small parts: [`packet`] (TS headers), [`psi`] (PAT/PMT), [`pes`] (PES gathering and
//! timestamps), [`audio`] (AAC in ADTS), [`demux`]; H.264/H.265 access units are
//! [`video`](super::video)'s.

mod audio;
mod demux;
mod packet;
mod pes;
mod psi;

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::replay::{self, Demux, Events};
use super::{SourceError, SourceErrorKind, SourceEvent, TrackParams};
use demux::Demuxer;

/// Read granularity.
const CHUNK: usize = 64 << 10;

/// TS packets from a file, found again after garbage or a lost sync.
struct Packets {
    path: PathBuf,
    file: File,
    /// 188, or 192 for M2TS; the sync byte sits at `sync_at` in each.
    size: usize,
    sync_at: usize,
    buf: Vec<u8>,
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// Bytes skipped to find the sync again, and how many times.
    pub skipped: u64,
    pub resyncs: u64,
}

impl Packets {
    fn open(path: &Path, size: usize, first_sync: usize) -> Result<Packets, SourceError> {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let sync_at = size - packet::SIZE;
        Ok(Packets {
            path: path.to_owned(),
            file,
            size,
            sync_at,
            buf: Vec::new(),
            pos: first_sync.saturating_sub(sync_at),
            base: 0,
            eof: false,
            skipped: 0,
            resyncs: 0,
        })
    }

    fn fill(&mut self) -> Result<(), SourceError> {
        if self.eof || self.buf.len() - self.pos >= 2 * self.size {
            return Ok(());
        }
        self.buf.drain(..self.pos);
        self.base += self.pos as u64;
        self.pos = 0;
        let have = self.buf.len();
        self.buf.resize(have + CHUNK, 0);
        let mut got = have;
        while got < self.buf.len() {
            match self.file.read(&mut self.buf[got..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(&self.path, e)),
            }
        }
        self.buf.truncate(got);
        Ok(())
    }

    /// The next packet (from its sync byte) and its file offset; `None` at the end (a
    /// trailing partial packet is ignored).
    fn next(&mut self) -> Result<Option<([u8; packet::SIZE], u64)>, SourceError> {
        loop {
            self.fill()?;
            let avail = self.buf.len() - self.pos;
            if avail < self.size {
                return Ok(None);
            }
            let sync = self.pos + self.sync_at;
            if self.buf[sync] == packet::SYNC {
                let mut p = [0u8; packet::SIZE];
                p.copy_from_slice(&self.buf[sync..sync + packet::SIZE]);
                self.pos += self.size;
                return Ok(Some((p, self.base + sync as u64)));
            }
            // Lost sync: the next place with a sync byte that the packet after it confirms
            // (or that the data ends before).
            let buf = &self.buf;
            let (size, start) = (self.size, self.pos);
            let found = (start + 1..buf.len().saturating_sub(self.sync_at)).find(|&k| {
                buf[k + self.sync_at] == packet::SYNC
                    && buf
                        .get(k + size + self.sync_at)
                        .is_none_or(|&b| b == packet::SYNC)
            });
            self.resyncs += 1;
            let to = found.unwrap_or(buf.len());
            self.skipped += (to - start) as u64;
            self.pos = to;
        }
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> SourceError {
    SourceError::new(SourceErrorKind::Io, format!("{}: {e}", path.display()))
}

/// A demuxer over a file.
struct Reader {
    packets: Packets,
    demux: Demuxer,
    said: HashSet<String>,
    ended: bool,
    /// Where the packets start, for the next pass.
    packet_size: usize,
    first_sync: usize,
}

impl Reader {
    fn open(path: &Path, size: usize, first_sync: usize) -> Result<Reader, SourceError> {
        Ok(Reader {
            packets: Packets::open(path, size, first_sync)?,
            demux: Demuxer::default(),
            said: HashSet::new(),
            ended: false,
            packet_size: size,
            first_sync,
        })
    }

    /// Reads until at least one event is out, or the end (`false`).
    fn read(&mut self, out: &mut Vec<SourceEvent>) -> Result<bool, SourceError> {
        let path = self.packets.path.display().to_string();
        while out.is_empty() {
            if self.ended {
                return Ok(false);
            }
            let step = match self.packets.next()? {
                Some((p, at)) => match packet::parse(&p) {
                    Ok(Some(k)) => self.demux.packet(k, at, out),
                    Ok(None) => Ok(()),
                    Err(e) => {
                        self.say(format!("{path}: packet at byte {at}: {e}; skipped"));
                        Ok(())
                    }
                },
                None => {
                    self.ended = true;
                    if self.packets.resyncs > 0 || self.demux.cc_errors > 0 {
                        tracing::warn!(
                            "{path}: {} bytes skipped to regain sync ({} times), {} continuity errors",
                            self.packets.skipped,
                            self.packets.resyncs,
                            self.demux.cc_errors
                        );
                    }
                    self.demux.finish(out)
                }
            };
            step.map_err(|e| SourceError::new(SourceErrorKind::Protocol, format!("{path}: {e}")))?;
            for w in self.demux.take_warnings() {
                self.say(format!("{path}: {w}"));
            }
        }
        Ok(true)
    }

    /// Logs a warning once per file (a looped file would repeat them every pass).
    fn say(&mut self, text: String) {
        if self.said.insert(text.clone()) {
            tracing::warn!("{text}");
        }
    }
}

impl Demux for Reader {
    fn read(&mut self, out: &mut Vec<SourceEvent>) -> Result<bool, SourceError> {
        Reader::read(self, out)
    }

    fn restart(&mut self) -> Result<(), SourceError> {
        self.packets = Packets::open(&self.packets.path, self.packet_size, self.first_sync)?;
        self.demux = Demuxer::default();
        self.ended = false;
        Ok(())
    }

    fn offset(&self) -> u64 {
        self.packets.base + self.packets.pos as u64
    }

    fn missing(&self) -> String {
        format!("an MPEG-TS file with {}", self.demux.missing())
    }
}

/// Opens a TS file: reads up to its first track parameters (refusing it when they do not
/// come) and starts the reader thread. Returns those params and the events after them.
pub fn open(
    path: &Path,
    packet_size: usize,
    first_sync: usize,
    looping: bool,
) -> Result<(Vec<TrackParams>, Events), SourceError> {
    replay::open(path, Reader::open(path, packet_size, first_sync)?, looping)
}
