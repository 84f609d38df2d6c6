//! Replaying a file as if a camera sent it: paced in real time, or flat out for tests and
//! benchmarks, once or looped forever with continuous timestamps. MP4 (fragmented or
//! progressive), MPEG-TS and Matroska/WebM are read; what the file is gets sniffed first, so
//! anything else is refused at once with what it looks like.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::mp4::{Codec, Fragment, InitSegment, TrackInfo, TrackKind};
use crate::remux::BoxFile;
use crate::remux::playlist::Resource;

use super::passes::Passes;
use super::sniff::{FileKind, sniff_file};
use super::{Frame, Source, SourceError, SourceErrorKind, SourceEvent, TrackParams, mkv, ts};

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
    File {
        path: PathBuf,
        file: BoxFile,
        init: InitSegment,
    },
    /// A reader thread that sends events in order and loops by itself: a progressive MP4
    /// (walking its sample tables, see [`progressive`]), an MPEG-TS file ([`ts`]) or a
    /// Matroska one ([`mkv`]).
    Reader {
        events: tokio::sync::mpsc::Receiver<Result<SourceEvent, SourceError>>,
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
}

#[derive(Debug)]
pub struct FileSource {
    name: String,
    params: Vec<TrackParams>,
    selected: Vec<Selected>,
    media: Media,
    pace: Pace,
    looping: bool,
    /// Timestamp offsets of the passes of a looped file (fragments; readers loop themselves).
    passes: Passes,
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
    /// Opens an MP4 (fragmented or progressive), MPEG-TS or Matroska/WebM file; other
    /// formats are refused at once ([`SourceErrorKind::Unsupported`]) with what they look
    /// like.
    pub fn open(path: &Path, pace: Pace, looping: bool) -> Result<FileSource, SourceError> {
        let streamed = match sniff_file(path)? {
            FileKind::MpegTs { packet, start } => Some(ts::open(path, packet, start, looping)?),
            FileKind::Matroska | FileKind::WebM => Some(mkv::open(path, looping)?),
            _ => None,
        };
        if let Some((params, events)) = streamed {
            return Ok(Self::with_tracks(
                path.display().to_string(),
                params,
                Vec::new(),
                Media::Reader { events },
                pace,
                looping,
            ));
        }
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
                &init,
                Media::Reader { events: frames },
                pace,
                looping,
            )?;
            let selected: Vec<progressive::TrackPlan> = source
                .selected
                .iter()
                .enumerate()
                .filter_map(|(index, s)| {
                    let pos = init.tracks.iter().position(|t| t.track_id == s.track_id)?;
                    Some(progressive::TrackPlan {
                        index,
                        table: tables.get(pos)?.clone(),
                        edit_adjust: s.edit_adjust,
                        timescale: s.timescale,
                    })
                })
                .collect();
            let std_file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
            source.media = Media::Reader {
                events: progressive::spawn(path.to_owned(), std_file, selected, looping),
            };
            return Ok(source);
        }
        let name = path.display().to_string();
        let mut source = Self::new(
            name,
            &init,
            Media::Memory {
                all: Vec::new(),
                next: 0,
            },
            pace,
            looping,
        )?;
        source.media = Media::File {
            path: path.to_owned(),
            file,
            init,
        };
        Ok(source)
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
            &init,
            Media::Memory { all, next: 0 },
            pace,
            looping,
        )
    }

    fn new(
        name: String,
        init: &InitSegment,
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
            });
        }
        for t in &init.tracks {
            if t.kind == TrackKind::Audio && audio.is_none_or(|a| a.track_id != t.track_id) {
                tracing::warn!(source = %name, "track {}: {} audio is left out (only AAC goes into MP4 clips)", t.track_id, codec(t).map_or("unknown".into(), |c| c.to_string()));
            }
        }
        Ok(Self::with_tracks(
            name, params, selected, media, pace, looping,
        ))
    }

    fn with_tracks(
        name: String,
        params: Vec<TrackParams>,
        selected: Vec<Selected>,
        media: Media,
        pace: Pace,
        looping: bool,
    ) -> Self {
        FileSource {
            name,
            passes: Passes::new(params.iter().map(|p| p.timescale).collect()),
            params,
            selected,
            media,
            pace,
            looping,
            queue: VecDeque::new(),
            sent_params: false,
            start: Instant::now(),
            first_media_ns: None,
        }
    }

    /// The next fragment of the file, or `None` at its end.
    fn next_fragment(&mut self) -> Result<Option<Fragment>, SourceError> {
        match &mut self.media {
            Media::Memory { all, next } => {
                let f = all.get(*next).cloned();
                *next += 1;
                Ok(f)
            }
            Media::File { path, file, init } => {
                file.next_fragment(init).map_err(|e| io_err(path, e))
            }
            Media::Reader { .. } => Ok(None),
        }
    }

    /// Starts the next pass of a looped file, with timestamps continuing after the last.
    fn rewind(&mut self) -> Result<(), SourceError> {
        self.passes.next_pass().map_err(|e| {
            SourceError::new(SourceErrorKind::Unsupported, format!("{}: {e}", self.name))
        })?;
        for s in &mut self.selected {
            s.next_dts = None;
        }
        match &mut self.media {
            Media::Memory { next, .. } => *next = 0,
            Media::File { path, file, .. } => {
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
            Media::Reader { .. } => {}
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
            let loop_offset = self.passes.offset(index);
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
                    self.passes.note(index, dts, i64::from(s.duration));
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
        let ts = self.params.get(f.track).map_or(1, |p| p.timescale.max(1));
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
    use crate::source::passes::Passes;
    use crate::source::{Frame, SourceError, SourceErrorKind, SourceEvent};

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
    ) -> mpsc::Receiver<Result<SourceEvent, SourceError>> {
        let (tx, rx) = mpsc::channel(AHEAD);
        std::thread::spawn(move || read(path, file, tracks, looping, tx));
        rx
    }

    fn read(
        path: PathBuf,
        file: File,
        tracks: Vec<TrackPlan>,
        looping: bool,
        tx: mpsc::Sender<Result<SourceEvent, SourceError>>,
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
        let pass_ns = u128::try_from(end - first).unwrap_or(0);
        let mut passes = Passes::with_length(tracks.iter().map(|t| t.timescale).collect(), pass_ns);
        loop {
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
                let offset = passes.offset(i);
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
                if tx.blocking_send(Ok(SourceEvent::Frame(frame))).is_err() {
                    return; // the source was dropped
                }
            }
            if !looping || passes.next_pass().is_err() {
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
            if let Media::Reader { events } = &mut self.media {
                match events.recv().await {
                    Some(Ok(SourceEvent::Frame(f))) => self.enqueue(f),
                    // The queue is empty: nothing sent before this event is still waiting.
                    Some(Ok(SourceEvent::Params(p))) => {
                        self.params = p.clone();
                        return Ok(Some(SourceEvent::Params(p)));
                    }
                    Some(Ok(other)) => return Ok(Some(other)),
                    Some(Err(e)) => return Err(e),
                    None => return Ok(None),
                }
                continue;
            }
            match self.next_fragment()? {
                Some(f) => self.load(f)?,
                None if self.looping && self.passes.seen_media() => self.rewind()?,
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
