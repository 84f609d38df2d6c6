//! MPEG transport stream files (ISO 13818-1) as sources: `.ts` recordings from cameras,
//! NVRs and ffmpeg, and 192-byte-packet M2TS. The file is read packet by packet on a thread
//! of its own; its frames and parameter changes go through a bounded channel to the
//! [`FileSource`](super::FileSource), which paces them like every other file.
//!
//! Small parts: [`packet`] (TS headers), [`psi`] (PAT/PMT), [`pes`] (PES gathering and
//! timestamps), [`video`] (H.264/H.265 access units), [`audio`] (AAC in ADTS), [`demux`].

mod audio;
mod demux;
mod interleave;
mod packet;
mod pes;
mod psi;
mod video;

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::passes::Passes;
use super::{SourceError, SourceErrorKind, SourceEvent, TrackParams};
use demux::Demuxer;
use interleave::Interleave;

/// How much of a file is read looking for the first parameters before it is refused: a
/// camera repeats its SPS/PPS at every keyframe, seconds apart.
const OPEN_SCAN: u64 = 32 << 20;

/// What the reader thread sends, in file order.
pub type Events = mpsc::Receiver<Result<SourceEvent, SourceError>>;

/// Events the reader may run ahead of the consumer.
const AHEAD: usize = 64;

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
}

impl Reader {
    fn open(path: &Path, size: usize, first_sync: usize) -> Result<Reader, SourceError> {
        Ok(Reader {
            packets: Packets::open(path, size, first_sync)?,
            demux: Demuxer::default(),
            said: HashSet::new(),
            ended: false,
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

    /// Back to the start of the file for the next pass, with a fresh demuxer.
    fn restart(&mut self, start: &Start) -> Result<(), SourceError> {
        self.packets = Packets::open(&start.path, start.packet_size, start.first_sync)?;
        self.demux = Demuxer::default();
        self.ended = false;
        Ok(())
    }

    fn offset(&self) -> u64 {
        self.packets.base + self.packets.pos as u64
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
    let mut reader = Reader::open(path, packet_size, first_sync)?;
    let mut events = Vec::new();
    let params = loop {
        let more = reader.read(&mut events)?;
        if let Some(SourceEvent::Params(p)) = events.first() {
            let p = p.clone();
            events.remove(0);
            break p;
        }
        // Frames never come before the first params; anything else is not expected either.
        events.clear();
        if !more || reader.offset() > OPEN_SCAN {
            let within = if more {
                format!(" in its first {} MiB", OPEN_SCAN >> 20)
            } else {
                String::new()
            };
            return Err(SourceError::new(
                SourceErrorKind::Unsupported,
                format!(
                    "{}: an MPEG-TS file with {}{within}",
                    path.display(),
                    reader.demux.missing()
                ),
            ));
        }
    };
    let (tx, rx) = mpsc::channel(AHEAD);
    let first = params.clone();
    let start = Start {
        path: path.to_owned(),
        packet_size,
        first_sync,
        looping,
    };
    std::thread::spawn(move || replay(start, reader, events, first, tx));
    Ok((params, rx))
}

struct Start {
    path: PathBuf,
    packet_size: usize,
    first_sync: usize,
    looping: bool,
}

/// The reader thread: events in file order, passes of a looped file shifted to keep time
/// going, params sent again only when they differ from the last sent.
fn replay(
    start: Start,
    mut reader: Reader,
    mut events: Vec<SourceEvent>,
    mut last_params: Vec<TrackParams>,
    tx: mpsc::Sender<Result<SourceEvent, SourceError>>,
) {
    let mut passes = Passes::new(last_params.iter().map(|p| p.timescale).collect());
    // Per track, the last decode time of this pass: the last frame's length is taken to be
    // the one before it, for the length of a pass.
    let mut last_dts: Vec<Option<i64>> = vec![None; last_params.len()];
    let mut last_len: Vec<i64> = vec![0; last_params.len()];
    let mut order = Interleave::new(last_params.iter().map(|p| p.timescale).collect());
    let mut ready = Vec::new();
    loop {
        let mut out = Vec::new();
        for event in events.drain(..) {
            match event {
                SourceEvent::Params(p) if p == last_params => {}
                SourceEvent::Params(p) => {
                    // Frames before new params were made under the old ones.
                    order.flush(&mut ready);
                    out.extend(ready.drain(..).map(SourceEvent::Frame));
                    last_params = p.clone();
                    out.push(SourceEvent::Params(p));
                }
                SourceEvent::Frame(mut f) => {
                    if let Some(dts) = f.dts {
                        let t = f.track;
                        if let (Some(last), Some(prev)) = (last_dts.get_mut(t), last_len.get_mut(t))
                        {
                            if let Some(l) = *last
                                && dts > l
                            {
                                *prev = dts - l;
                            }
                            *last = Some(dts);
                            passes.note(t, dts, f.duration.map_or(*prev, i64::from));
                        }
                        let offset = passes.offset(t);
                        f.dts = Some(dts.saturating_add(offset));
                        f.pts = f.pts.map(|p| p.saturating_add(offset));
                    }
                    order.push(f, &mut ready);
                    out.extend(ready.drain(..).map(SourceEvent::Frame));
                }
                other => out.push(other),
            }
        }
        for event in out {
            if tx.blocking_send(Ok(event)).is_err() {
                return; // the source was dropped
            }
        }
        let result = match reader.read(&mut events) {
            Ok(true) => Ok(()),
            Ok(false) if !start.looping => {
                order.flush(&mut ready);
                for f in ready.drain(..) {
                    if tx.blocking_send(Ok(SourceEvent::Frame(f))).is_err() {
                        return;
                    }
                }
                return;
            }
            Ok(false) => passes
                .next_pass()
                .map_err(|e| {
                    SourceError::new(
                        SourceErrorKind::Unsupported,
                        format!("{}: {e}", start.path.display()),
                    )
                })
                .and_then(|()| {
                    last_dts.iter_mut().for_each(|d| *d = None);
                    reader.restart(&start)
                }),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    }
}
