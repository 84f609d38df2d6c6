//! Range export: what a camera's continuous recording holds between two times, as one clip.
//!
//! The files in the range are read back frame by frame (box level, no decoding), cut into
//! parts again and written through the same [`Recording`] a clip uses, so an export is
//! finished, progressive and exact at both ends like any clip. Files that follow each other
//! without a gap (cut for their length) are one stream: their timestamps are joined so the
//! seams vanish. A gap (the camera down, parts lost) starts a new stream, which the clip
//! records as a discontinuity. A file that cannot be read is left out and its time reported
//! as a gap; what was read before the fault is kept.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::mp4::TrackKind;
use crate::recorder::{ClipSummary, RecordError, Recording};
use crate::segment::Segment;
use crate::segmenter::{HygieneOptions, Segmenter, SegmenterOptions};
use crate::source::{FileSource, Frame, Pace, Source, SourceEvent, TrackParams};

use super::gaps::{Gap, gaps};
use super::index::Entry;

/// Files closer than this on the wall clock continue each other: a file cut for its length
/// starts exactly where the one before it ends (to the millisecond of the index).
const SEAM: Duration = Duration::from_millis(50);

/// A finished export.
#[derive(Debug)]
pub struct Exported {
    pub clip: ClipSummary,
    /// Files read (whole or in part).
    pub files: usize,
    /// Stretches of the range with nothing in the clip: not recorded, or in files that could
    /// not be read.
    pub gaps: Vec<Gap>,
    /// Files left out (or cut short), each with why.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the range is empty: start {start} is not before end {end}")]
    EmptyRange { start: String, end: String },
    #[error("nothing was recorded between {start} and {end}{}", also(.skipped))]
    NothingRecorded {
        start: String,
        end: String,
        skipped: Vec<String>,
    },
    #[error("writing the export: {0}")]
    Record(#[from] RecordError),
    #[error("the export ended abnormally: {0}")]
    Panicked(String),
}

fn also(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" that could be read ({})", skipped.join("; "))
    }
}

/// Writes the media of `entries` (a camera's index, oldest first; their files below
/// `folder`) presented from `start` to `end` into `recording`, and finishes it. On an error
/// the recording is discarded: no file is left.
pub fn export(
    folder: &Path,
    entries: &[Entry],
    start: SystemTime,
    end: SystemTime,
    mut recording: Recording,
) -> Result<Exported, ExportError> {
    let shown = crate::time::rfc3339;
    if start >= end {
        recording.discard();
        return Err(ExportError::EmptyRange {
            start: shown(start),
            end: shown(end),
        });
    }
    let inside: Vec<Entry> = entries
        .iter()
        .filter(|e| e.end() > start && e.start() < end)
        .cloned()
        .collect();
    // Every time is placed on one monotonic clock, `origin` standing for `wall_origin`.
    let wall_origin = inside.first().map_or(start, |e| e.start().min(start));
    let origin = Instant::now();
    let at = |wall: SystemTime| origin + wall.duration_since(wall_origin).unwrap_or_default();
    let (from, until) = (at(start), at(end));
    recording.present_from(from);
    let read = {
        let mut out = Output::new(from, until, |s: &Segment| {
            write(&mut recording, s, Some(until))
        });
        read_back(folder, &inside, &at, None, 1, &mut out)
            .and_then(|r| out.flush_held().map(|()| r))
    };
    let read = match read {
        Ok(r) => r,
        Err(e) => {
            recording.discard();
            return Err(e.into());
        }
    };
    if !recording.has_media() {
        recording.discard();
        return Err(ExportError::NothingRecorded {
            start: shown(start),
            end: shown(end),
            skipped: read.skipped,
        });
    }
    let clip = recording.finish()?;
    Ok(Exported {
        clip,
        files: read.files,
        gaps: gaps(start, end, &read.covered),
        skipped: read.skipped,
    })
}

/// Writes one part; only an error that leaves the file unusable is one.
pub(crate) fn write(
    recording: &mut Recording,
    segment: &Segment,
    until: Option<Instant>,
) -> Result<(), RecordError> {
    match recording.write_part(segment, segment.received, until) {
        Ok(_) => Ok(()),
        Err(e) if e.is_fatal() => Err(e),
        Err(e) => {
            tracing::debug!("part read back refused: {e}");
            Ok(())
        }
    }
}

/// What reading files back found.
#[derive(Debug, Default)]
pub struct ReadBack {
    /// The wall-clock stretches whose media was read.
    pub covered: Vec<(SystemTime, SystemTime)>,
    /// Files left out (or cut short), each with why.
    pub skipped: Vec<String>,
    /// Files read (whole or in part).
    pub files: usize,
    /// Where the frame of the `Stop` was met, on the clock of `at`.
    pub met: Option<Instant>,
}

/// Reads `files` (oldest first, below `folder`) back as parts into `out`: files that follow
/// each other are one stream, numbered from `first_stream` on, a new one after each gap.
/// A frame's arrival instant is `at` its wall-clock time; reading stops where `stop` says.
/// An unreadable file is reported in `skipped`; only an error of the writer ends the
/// reading.
pub fn read_back<W: FnMut(&Segment) -> Result<(), RecordError>>(
    folder: &Path,
    files: &[Entry],
    at: &dyn Fn(SystemTime) -> Instant,
    stop: Option<&Stop>,
    first_stream: u64,
    out: &mut Output<W>,
) -> Result<ReadBack, RecordError> {
    let mut got = ReadBack::default();
    let mut run: Option<Run> = None;
    let mut next_sequence = 0u64;
    let mut stream_id = first_stream;
    let mut previous_end: Option<SystemTime> = None;
    for entry in files {
        if out.done {
            break;
        }
        let continues = previous_end.is_some_and(|p| {
            let apart = entry
                .start()
                .duration_since(p)
                .unwrap_or_else(|e| e.duration());
            apart <= SEAM
        });
        if !continues && let Some(r) = run.take() {
            next_sequence = out.close(r)?;
            stream_id += 1;
        }
        let path = folder.join(&entry.file);
        // The file being written may have been finished (renamed) since it was listed.
        let finished = entry
            .file
            .strip_suffix(crate::recorder::PARTIAL_SUFFIX)
            .map(|f| folder.join(f));
        let opened = FileSource::open(&path, Pace::Fast, false).or_else(|e| match &finished {
            Some(f) if !path.exists() => FileSource::open(f, Pace::Fast, false),
            _ => Err(e),
        });
        let mut source = match opened {
            Ok(s) => s,
            Err(e) => {
                got.skipped.push(format!("{}: {e}", entry.file));
                previous_end = None;
                continue;
            }
        };
        got.files += 1;
        let r = run.get_or_insert_with(|| {
            Run::new(stream_id, next_sequence, at(entry.start()), stop.cloned())
        });
        let read = r.read_file(&mut source, out);
        got.met = got.met.or(r.met);
        let media = Duration::from_secs_f64(r.file_seconds());
        got.covered.push((entry.start(), entry.start() + media));
        r.end_file();
        match read {
            Ok(()) => previous_end = Some(entry.end()),
            Err(FileFault::Source(e)) => {
                got.skipped.push(format!(
                    "{} from {:.3} s on: {e}",
                    entry.file,
                    media.as_secs_f64()
                ));
                // What follows does not continue what was read.
                previous_end = None;
                if let Some(r) = run.take() {
                    next_sequence = out.close(r)?;
                    stream_id += 1;
                }
            }
            Err(FileFault::Record(e)) => return Err(e),
        }
    }
    if let Some(r) = run.take() {
        out.close(r)?;
    }
    Ok(got)
}

/// Where reading back stops: before the video frame with the bytes `frame` (media read back
/// meets the same media elsewhere, frame for frame), or without one at the first frame at
/// or past `at`.
#[derive(Debug, Clone)]
pub struct Stop {
    pub at: Instant,
    pub frame: Option<bytes::Bytes>,
}

/// How far past `Stop::at` the frame of a `Stop` is looked for: the times of media read
/// back are estimates (arrival times placed on the media's clock), a second or so off.
pub const FIND_FRAME: Duration = Duration::from_secs(5);

impl Stop {
    fn reached(&self, frame: &Frame, video: bool) -> bool {
        match &self.frame {
            Some(bytes) => {
                (video && frame.data == *bytes) || frame.received >= self.at + FIND_FRAME
            }
            None => frame.received >= self.at,
        }
    }
}

/// Why a file was not read to its end.
enum FileFault {
    Source(crate::source::SourceError),
    Record(RecordError),
}

/// Where parts read back go, and those that wait: parts since the last keyframe before
/// `from` are held (the media needs the keyframe before its start) and dropped when a later
/// keyframe still before `from` comes; parts from `until` on are not needed.
pub struct Output<W> {
    write: W,
    from: Instant,
    until: Instant,
    held: Vec<Segment>,
    /// Media has passed `until`: nothing more is needed.
    done: bool,
}

impl<W: FnMut(&Segment) -> Result<(), RecordError>> Output<W> {
    pub fn new(from: Instant, until: Instant, write: W) -> Output<W> {
        Output {
            write,
            from,
            until,
            held: Vec::new(),
            done: false,
        }
    }

    fn take(&mut self, segment: Segment) -> Result<(), RecordError> {
        let Some(received) = segment.received else {
            return Ok(());
        };
        if received >= self.until {
            self.done = true;
            return Ok(());
        }
        if received < self.from {
            if segment.starts_with_keyframe() {
                self.held.clear();
            }
            self.held.push(segment);
            return Ok(());
        }
        self.flush_held()?;
        (self.write)(&segment)
    }

    /// Writes what is held: at the end, the media before `from` holds the range.
    pub fn flush_held(&mut self) -> Result<(), RecordError> {
        for s in std::mem::take(&mut self.held) {
            (self.write)(&s)?;
        }
        Ok(())
    }

    /// Ends a run; returns the sequence number the next run starts at.
    fn close(&mut self, mut run: Run) -> Result<u64, RecordError> {
        for s in run.segmenter.finish() {
            self.take(s)?;
        }
        Ok(run.segmenter.next_sequence())
    }
}

/// Files read back to back as one stream: each file's timestamps are moved to follow the
/// file before it, and arrival times are its media time from the run's wall-clock start.
struct Run {
    segmenter: Segmenter,
    /// The run's first media on the shared monotonic clock.
    starts: Instant,
    params: Vec<TrackParams>,
    /// Where reading stops.
    stop: Option<Stop>,
    /// When the frame reading stopped at arrived, if it was met.
    met: Option<Instant>,
    /// Where the current file's time zero lies in the run, in seconds as video ticks
    /// (`video_timescale`).
    offset: i128,
    video_timescale: u32,
    /// End of the current file's video presentation, in its own video ticks.
    file_end: i128,
}

impl Run {
    fn new(stream_id: u64, next_sequence: u64, starts: Instant, stop: Option<Stop>) -> Run {
        Run {
            segmenter: Segmenter::new(
                stream_id,
                next_sequence,
                SegmenterOptions::default(),
                HygieneOptions::default(),
            ),
            starts,
            stop,
            met: None,
            params: Vec::new(),
            offset: 0,
            video_timescale: 0,
            file_end: 0,
        }
    }

    fn read_file<W: FnMut(&Segment) -> Result<(), RecordError>>(
        &mut self,
        source: &mut FileSource,
        out: &mut Output<W>,
    ) -> Result<(), FileFault> {
        loop {
            let event = match futures::executor::block_on(source.next()) {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(()),
                Err(e) => return Err(FileFault::Source(e)),
            };
            match event {
                SourceEvent::Params(params) => {
                    let video = params
                        .iter()
                        .find(|p| p.kind == TrackKind::Video)
                        .map_or(0, |p| p.timescale);
                    if self.video_timescale != 0 && video != 0 {
                        // The run's time so far, in the new file's video ticks.
                        self.offset = rescale(self.offset, self.video_timescale, video);
                        self.file_end = rescale(self.file_end, self.video_timescale, video);
                    }
                    self.video_timescale = video;
                    self.params.clone_from(&params);
                    match self.segmenter.set_params(params) {
                        Ok(closed) => {
                            if let Some(s) = closed {
                                out.take(s).map_err(FileFault::Record)?;
                            }
                        }
                        Err(e) => {
                            return Err(FileFault::Source(crate::source::SourceError::new(
                                crate::source::SourceErrorKind::Unsupported,
                                format!("its tracks: {e}"),
                            )));
                        }
                    }
                }
                SourceEvent::Frame(frame) => {
                    let Some(frame) = self.place(frame) else {
                        continue;
                    };
                    let video = self
                        .params
                        .get(frame.track)
                        .is_some_and(|p| p.kind == TrackKind::Video);
                    if let Some(stop) = &self.stop
                        && stop.reached(&frame, video)
                    {
                        if video && stop.frame.as_ref() == Some(&frame.data) {
                            self.met = Some(frame.received);
                        }
                        out.done = true;
                        return Ok(());
                    }
                    let segments = self.segmenter.push(frame).map_err(|e| {
                        FileFault::Source(crate::source::SourceError::new(
                            crate::source::SourceErrorKind::Protocol,
                            e.to_string(),
                        ))
                    })?;
                    for s in segments {
                        out.take(s).map_err(FileFault::Record)?;
                    }
                    if out.done {
                        return Ok(());
                    }
                }
                SourceEvent::Lost(_) => {}
            }
        }
    }

    /// Moves a frame of the current file onto the run's timeline.
    fn place(&mut self, mut f: Frame) -> Option<Frame> {
        let p = self.params.get(f.track)?;
        let (ts, video_ts) = (p.timescale.max(1), self.video_timescale.max(1));
        let shift = rescale(self.offset, video_ts, ts);
        let dts = i128::from(f.dts.or(f.pts)?) + shift;
        if p.kind == TrackKind::Video {
            let pts = i128::from(f.pts.or(f.dts)?);
            let end = rescale(pts + i128::from(f.duration.unwrap_or(0)), ts, video_ts);
            self.file_end = self.file_end.max(end);
        }
        f.dts = Some(i64::try_from(dts).ok()?);
        f.pts = f
            .pts
            .and_then(|p| i64::try_from(i128::from(p) + shift).ok());
        let since = u64::try_from(dts.max(0) * 1_000_000_000 / i128::from(ts)).unwrap_or(u64::MAX);
        f.received = self.starts + Duration::from_nanos(since);
        Some(f)
    }

    /// Seconds of video the current file presented.
    fn file_seconds(&self) -> f64 {
        self.file_end as f64 / f64::from(self.video_timescale.max(1))
    }

    /// The next file follows this one's video.
    fn end_file(&mut self) {
        self.offset += self.file_end;
        self.file_end = 0;
    }
}

/// `ticks` of timescale `from` in timescale `to`, rounded to nearest.
fn rescale(ticks: i128, from: u32, to: u32) -> i128 {
    if from == to {
        return ticks;
    }
    (ticks * i128::from(to) * 2 + i128::from(from)).div_euclid(2 * i128::from(from))
}
