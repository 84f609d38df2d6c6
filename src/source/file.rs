//! Replaying an MP4 file as if a camera sent it: paced in real time, or flat out for tests
//! and benchmarks, once or looped forever with continuous timestamps.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::mp4::{Codec, Fragment, InitSegment, TrackInfo, TrackKind};
use crate::remux::BoxFile;
use crate::remux::playlist::Resource;

use super::{Frame, Source, SourceError, SourceErrorKind, SourceEvent, TrackParams};

/// How fast a file is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Each frame is released when a camera would have sent it.
    RealTime,
    /// As fast as the consumer takes them; `received` times are what they would have been.
    Fast,
}

/// Where the frames come from.
#[derive(Debug)]
enum Media {
    /// Parsed fragments held in memory (the demo), replayed from `next` on.
    Memory { all: Vec<Fragment>, next: usize },
    /// A fragmented file read one fragment at a time.
    File { path: PathBuf, file: BoxFile },
    /// A progressive MP4: a reader thread walks its sample tables (see [`progressive`]).
    Progressive {
        frames: tokio::sync::mpsc::Receiver<Result<Frame, SourceError>>,
    },
}

/// A selected input track: its id in the file and its index in our params.
#[derive(Debug, Clone)]
struct Selected {
    track_id: u32,
    /// Added to the file's decode times to apply its edit list (as the recorder does).
    edit_adjust: i64,
    timescale: u32,
    /// Decode time of the next sample when a fragment has no tfdt.
    next_dts: Option<i64>,
    /// Highest decode end seen in this pass (for the loop period).
    end: i64,
    first: Option<i64>,
}

#[derive(Debug)]
pub struct FileSource {
    name: String,
    init: InitSegment,
    params: Vec<TrackParams>,
    selected: Vec<Selected>,
    media: Media,
    pace: Pace,
    looping: bool,
    /// Loop count and the length of one pass in nanoseconds (set after the first pass).
    pass: u64,
    pass_nanos: Option<u128>,
    /// Frames of the current fragment, in time order.
    queue: VecDeque<Frame>,
    sent_params: bool,
    /// Wall-clock start and the media time (ns) that maps to it.
    start: Instant,
    first_media_ns: Option<i128>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> SourceError {
    let text = e.to_string();
    let shown = path.display().to_string();
    // Errors from the box reader already start with the path.
    let message = if text.starts_with(&shown) {
        text
    } else {
        format!("{shown}: {text}")
    };
    SourceError::new(SourceErrorKind::Io, message)
}

impl FileSource {
    /// Opens a fragmented MP4 file.
    pub fn open(path: &Path, pace: Pace, looping: bool) -> Result<FileSource, SourceError> {
        let whole = Resource {
            path: path.to_owned(),
            offset: 0,
            len: None,
        };
        let mut file = BoxFile::open(&whole).map_err(|e| io_err(path, e))?;
        let init = file.read_init().map_err(|e| io_err(path, e))?;
        let tables = progressive::tables(&init).map_err(|e| io_err(path, e))?;
        if tables.iter().any(|t| !t.is_empty()) {
            // Placeholder; the reader starts once the tracks are selected.
            let (_, frames) = tokio::sync::mpsc::channel(1);
            let mut source = Self::new(
                path.display().to_string(),
                init,
                Media::Progressive { frames },
                pace,
                looping,
            )?;
            let selected: Vec<progressive::TrackPlan> = source
                .selected
                .iter()
                .enumerate()
                .filter_map(|(index, s)| {
                    let pos = source
                        .init
                        .tracks
                        .iter()
                        .position(|t| t.track_id == s.track_id)?;
                    Some(progressive::TrackPlan {
                        index,
                        table: tables.get(pos)?.clone(),
                        edit_adjust: s.edit_adjust,
                        timescale: s.timescale,
                    })
                })
                .collect();
            let std_file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
            source.media = Media::Progressive {
                frames: progressive::spawn(path.to_owned(), std_file, selected, looping),
            };
            return Ok(source);
        }
        let media = Media::File {
            path: path.to_owned(),
            file,
        };
        Self::new(path.display().to_string(), init, media, pace, looping)
    }

    /// Replays an init segment and fragments held in memory.
    pub fn from_memory(
        name: &str,
        init: Bytes,
        media: Bytes,
        pace: Pace,
        looping: bool,
    ) -> Result<FileSource, SourceError> {
        let bad = |e: crate::mp4::Mp4Error| {
            SourceError::new(SourceErrorKind::Unsupported, format!("{name}: {e}"))
        };
        let init = InitSegment::parse(init, 0).map_err(bad)?;
        let all = Fragment::parse_all(&media, 0, &init).map_err(bad)?;
        Self::new(
            name.to_owned(),
            init,
            Media::Memory { all, next: 0 },
            pace,
            looping,
        )
    }

    fn new(
        name: String,
        init: InitSegment,
        media: Media,
        pace: Pace,
        looping: bool,
    ) -> Result<Self, SourceError> {
        let mut params = Vec::new();
        let mut selected = Vec::new();
        let video = init
            .tracks
            .iter()
            .find(|t| {
                t.kind == TrackKind::Video && matches!(codec(t), Some(Codec::H264 | Codec::H265))
            })
            .ok_or_else(|| {
                SourceError::new(
                    SourceErrorKind::Unsupported,
                    format!("{name}: no H.264 or H.265 video track"),
                )
            })?;
        let audio = init
            .tracks
            .iter()
            .find(|t| t.kind == TrackKind::Audio && codec(t) == Some(Codec::Aac));
        for t in std::iter::once(video).chain(audio) {
            let entry = &t.sample_entries[0];
            params.push(TrackParams {
                kind: t.kind,
                codec: entry.codec,
                timescale: t.timescale,
                sample_entry: entry.bytes.clone(),
                width: t.width,
                height: t.height,
            });
            let delay = (u128::from(t.edit.delay) * u128::from(t.timescale)
                / u128::from(init.movie_timescale.max(1))) as i64;
            selected.push(Selected {
                track_id: t.track_id,
                edit_adjust: delay - t.edit.media_time,
                timescale: t.timescale,
                next_dts: None,
                end: i64::MIN,
                first: None,
            });
        }
        for t in &init.tracks {
            if t.kind == TrackKind::Audio && audio.is_none_or(|a| a.track_id != t.track_id) {
                tracing::warn!(source = %name, "track {}: {} audio is left out (only AAC goes into MP4 clips)", t.track_id, codec(t).map_or("unknown".into(), |c| c.to_string()));
            }
        }
        Ok(FileSource {
            name,
            init,
            params,
            selected,
            media,
            pace,
            looping,
            pass: 0,
            pass_nanos: None,
            queue: VecDeque::new(),
            sent_params: false,
            start: Instant::now(),
            first_media_ns: None,
        })
    }

    /// The next fragment of the file, or `None` at its end.
    fn next_fragment(&mut self) -> Result<Option<Fragment>, SourceError> {
        match &mut self.media {
            Media::Memory { all, next } => {
                let f = all.get(*next).cloned();
                *next += 1;
                Ok(f)
            }
            Media::File { path, file } => {
                file.next_fragment(&self.init).map_err(|e| io_err(path, e))
            }
            Media::Progressive { .. } => Ok(None),
        }
    }

    /// Starts the next pass of a looped file, with timestamps continuing after the last.
    fn rewind(&mut self) -> Result<(), SourceError> {
        if self.pass_nanos.is_none() {
            // One pass lasts from the earliest first sample to the latest end, over all tracks,
            // so every track advances by the same time and stays in sync.
            let ns = |t: i64, ts: u32| i128::from(t) * 1_000_000_000 / i128::from(ts.max(1));
            let first = self
                .selected
                .iter()
                .filter_map(|s| s.first.map(|f| ns(f, s.timescale)))
                .min();
            let end = self
                .selected
                .iter()
                .filter(|s| s.end > i64::MIN)
                .map(|s| ns(s.end, s.timescale))
                .max();
            let (Some(first), Some(end)) = (first, end) else {
                return Err(SourceError::new(
                    SourceErrorKind::Unsupported,
                    format!("{}: no media to loop", self.name),
                ));
            };
            self.pass_nanos = Some(u128::try_from(end - first).unwrap_or(0).max(1));
        }
        self.pass += 1;
        for s in &mut self.selected {
            s.next_dts = None;
        }
        match &mut self.media {
            Media::Memory { next, .. } => *next = 0,
            Media::File { path, file } => {
                let whole = Resource {
                    path: path.clone(),
                    offset: 0,
                    len: None,
                };
                let mut f = BoxFile::open(&whole).map_err(|e| io_err(path, e))?;
                f.read_init().map_err(|e| io_err(path, e))?;
                *file = f;
            }
            // The reader thread loops by itself.
            Media::Progressive { .. } => {}
        }
        Ok(())
    }

    /// Turns a fragment into frames of the selected tracks, in decode-time order.
    fn load(&mut self, fragment: Fragment) -> Result<(), SourceError> {
        let payload = fragment
            .data
            .to_bytes()
            .map_err(|e| SourceError::new(SourceErrorKind::Io, format!("{}: {e}", self.name)))?;
        let mut frames = Vec::new();
        for t in &fragment.tracks {
            let Some(index) = self.selected.iter().position(|s| s.track_id == t.track_id) else {
                continue;
            };
            let sel = &mut self.selected[index];
            let loop_offset = match self.pass_nanos {
                Some(p) => i64::try_from(
                    u128::from(self.pass) * p * u128::from(sel.timescale) / 1_000_000_000,
                )
                .unwrap_or(i64::MAX),
                None => 0,
            };
            let mut dts = match t.base_decode_time {
                Some(d) => i64::try_from(d)
                    .unwrap_or(i64::MAX)
                    .saturating_add(sel.edit_adjust),
                None => sel.next_dts.unwrap_or(sel.edit_adjust),
            };
            for run in &t.runs {
                let mut at = run.data_offset as usize;
                for s in &run.samples {
                    let end = at + s.size as usize;
                    let Some(data) = (end <= payload.len()).then(|| payload.slice(at..end)) else {
                        return Err(SourceError::new(
                            SourceErrorKind::Io,
                            format!("{}: sample data past the fragment", self.name),
                        ));
                    };
                    at = end;
                    if self.pass == 0 {
                        sel.first = Some(sel.first.map_or(dts, |f| f.min(dts)));
                        sel.end = sel.end.max(dts + i64::from(s.duration));
                    }
                    let d = dts + loop_offset;
                    frames.push(Frame {
                        track: index,
                        pts: Some(d + i64::from(s.composition_offset)),
                        dts: Some(d),
                        duration: Some(s.duration),
                        keyframe: s.is_sync(),
                        data,
                        received: self.start,
                    });
                    dts += i64::from(s.duration);
                }
            }
            sel.next_dts = Some(dts);
        }
        // Interleave tracks by decode time, as they would arrive from a camera.
        let ts: Vec<u32> = self.selected.iter().map(|s| s.timescale).collect();
        frames.sort_by(|a, b| {
            let (x, y) = (a.dts.unwrap_or(0), b.dts.unwrap_or(0));
            (i128::from(x) * i128::from(ts[b.track]))
                .cmp(&(i128::from(y) * i128::from(ts[a.track])))
        });
        for f in frames {
            self.enqueue(f);
        }
        Ok(())
    }

    /// Queues a frame, stamped with when a camera would have sent it.
    fn enqueue(&mut self, mut f: Frame) {
        let ts = self.selected.get(f.track).map_or(1, |s| s.timescale.max(1));
        let media_ns = i128::from(f.dts.unwrap_or(0)) * 1_000_000_000 / i128::from(ts);
        let first = *self.first_media_ns.get_or_insert(media_ns);
        let offset = Duration::from_nanos(u64::try_from(media_ns - first).unwrap_or(0));
        f.received = self.start + offset;
        self.queue.push_back(f);
    }
}

mod progressive {
    //! Reading a progressive MP4 frame by frame on a thread of its own: the sample tables are
    //! walked in decode order per track, tracks merged by time, each sample read at its
    //! offset. A bounded channel keeps the reader only a few frames ahead.

    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;
    use std::time::Instant;

    use bytes::Bytes;
    use tokio::sync::mpsc;

    use crate::mp4::kinds::{MOOV, TRAK};
    use crate::mp4::samples::SampleTable;
    use crate::mp4::{Boxes, InitSegment, Mp4Error};
    use crate::source::{Frame, SourceError, SourceErrorKind};

    /// Frames the reader may run ahead of the consumer.
    const AHEAD: usize = 64;

    #[derive(Debug, Clone)]
    pub struct TrackPlan {
        /// The track's index in the source's params.
        pub index: usize,
        pub table: SampleTable,
        pub edit_adjust: i64,
        pub timescale: u32,
    }

    /// The sample table of every trak, in the init's track order.
    pub fn tables(init: &InitSegment) -> Result<Vec<SampleTable>, Mp4Error> {
        let mut out = Vec::new();
        for b in Boxes::new(&init.raw, 0) {
            let b = b?;
            if b.kind == MOOV {
                for t in b.children() {
                    let t = t?;
                    if t.kind == TRAK {
                        out.push(SampleTable::parse(t)?);
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn spawn(
        path: PathBuf,
        file: File,
        tracks: Vec<TrackPlan>,
        looping: bool,
    ) -> mpsc::Receiver<Result<Frame, SourceError>> {
        let (tx, rx) = mpsc::channel(AHEAD);
        std::thread::spawn(move || read(path, file, tracks, looping, tx));
        rx
    }

    fn read(
        path: PathBuf,
        file: File,
        tracks: Vec<TrackPlan>,
        looping: bool,
        tx: mpsc::Sender<Result<Frame, SourceError>>,
    ) {
        let ns = |t: i128, ts: u32| t * 1_000_000_000 / i128::from(ts.max(1));
        // One pass spans the earliest first sample to the latest end, so tracks stay in sync
        // from loop to loop.
        let first = tracks
            .iter()
            .filter_map(|t| {
                t.table
                    .iter()
                    .next()
                    .map(|s| ns(i128::from(s.dts) + i128::from(t.edit_adjust), t.timescale))
            })
            .min()
            .unwrap_or(0);
        let end = tracks
            .iter()
            .map(|t| {
                ns(
                    i128::from(t.table.duration()) + i128::from(t.edit_adjust),
                    t.timescale,
                )
            })
            .max()
            .unwrap_or(0);
        let pass_ns = (end - first).max(1);
        for pass in 0i128.. {
            let mut iters: Vec<_> = tracks.iter().map(|t| t.table.iter().peekable()).collect();
            loop {
                // The track whose next sample comes first.
                let next = (0..tracks.len())
                    .filter_map(|i| {
                        iters[i]
                            .peek()
                            .map(|s| (i, ns(i128::from(s.dts), tracks[i].timescale)))
                    })
                    .min_by_key(|&(_, t)| t);
                let Some((i, _)) = next else { break };
                let Some(s) = iters[i].next() else { break };
                let plan = &tracks[i];
                let mut data = vec![0u8; s.size as usize];
                if let Err(e) = file.read_exact_at(&mut data, s.offset) {
                    let _ = tx.blocking_send(Err(SourceError::new(
                        SourceErrorKind::Io,
                        format!(
                            "{}: reading a sample at byte {}: {e}",
                            path.display(),
                            s.offset
                        ),
                    )));
                    return;
                }
                let offset =
                    i64::try_from(pass * pass_ns * i128::from(plan.timescale) / 1_000_000_000)
                        .unwrap_or(i64::MAX);
                let dts = i64::try_from(s.dts)
                    .unwrap_or(i64::MAX)
                    .saturating_add(plan.edit_adjust)
                    .saturating_add(offset);
                let frame = Frame {
                    track: plan.index,
                    pts: Some(dts + i64::from(s.composition_offset)),
                    dts: Some(dts),
                    duration: Some(s.duration),
                    keyframe: s.sync,
                    data: Bytes::from(data),
                    received: Instant::now(),
                };
                if tx.blocking_send(Ok(frame)).is_err() {
                    return; // the source was dropped
                }
            }
            if !looping {
                return;
            }
        }
    }
}

fn codec(t: &TrackInfo) -> Option<Codec> {
    t.sample_entries.first().map(|e| e.codec)
}

impl Source for FileSource {
    async fn next(&mut self) -> Result<Option<SourceEvent>, SourceError> {
        if !self.sent_params {
            self.sent_params = true;
            self.start = Instant::now();
            return Ok(Some(SourceEvent::Params(self.params.clone())));
        }
        while self.queue.is_empty() {
            if let Media::Progressive { frames } = &mut self.media {
                match frames.recv().await {
                    Some(Ok(f)) => self.enqueue(f),
                    Some(Err(e)) => return Err(e),
                    None => return Ok(None),
                }
                continue;
            }
            match self.next_fragment()? {
                Some(f) => self.load(f)?,
                None if self.looping && self.selected.iter().any(|s| s.first.is_some()) => {
                    self.rewind()?
                }
                None => return Ok(None),
            }
        }
        let Some(frame) = self.queue.pop_front() else {
            return Ok(None);
        };
        if self.pace == Pace::RealTime {
            tokio::time::sleep_until(frame.received.into()).await;
        }
        Ok(Some(SourceEvent::Frame(frame)))
    }
}
