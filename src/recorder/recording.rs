//! A recording: an ordered run of segments written into one clip.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::mp4::mfra::{RandomAccessPoint, write_mfra};
use crate::mp4::moof::{TrafSpec, write_moof};
use crate::mp4::moov::{write_init, write_progressive_moov};
use crate::mp4::tables::TableBuilder;
use crate::mp4::write::mdat_header;
use bytes::Bytes;

use crate::mp4::{Fragment, InitSegment, MediaData, Mp4Error, Orientation, Sample, kinds};
use crate::segment::Segment;

use super::file::ClipFile;
use super::place::ClipPlace;
use super::presentation::{Anchor, Exactness, Presentation};
use super::recover::{Scan, ScannedFragment, ScannedHeader};
use super::timeline::{Discontinuity, Placed, Timeline, rescale};
use super::tracks::{AUDIO, ClipTracks, InitMap, VIDEO};
use super::{RecordError, RecoverError};

/// Seconds from the MP4 epoch (1904-01-01) to the Unix epoch.
const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// Bytes the header grows by when finished: the `mehd` box, and an edit list for the video
/// track (one entry) and the audio track (an empty edit and a media edit).
const FINISH_GROWTH: usize = 20 + 24 + 20 + 24 + 40;

/// How a clip is written.
#[derive(Debug, Clone, Default)]
pub struct ClipOptions {
    /// Written into the video track's matrix. `None` keeps the source's matrix.
    pub orientation: Option<Orientation>,
}

/// What happened to one segment handed to [`Recording::write_segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentOutcome {
    Written {
        fragments: usize,
        samples: usize,
    },
    /// Its sequence is not above the last one written (lookback and live overlap).
    SkippedOld,
    /// It holds no media the clip carries.
    SkippedEmpty,
    /// It does not start with a keyframe, and the clip has none it could follow on from (it
    /// has no media yet, or parts before it were lost).
    SkippedNoKeyframe,
}

/// The finished clip.
#[derive(Debug, Clone)]
pub struct ClipSummary {
    pub path: PathBuf,
    /// Length of what the clip presents (its edit list), or of its longest track when it has
    /// no edit list (a recovered clip).
    pub duration: Duration,
    /// When the clip's first picture arrived from the camera (live clips).
    pub presented_from: Option<Instant>,
    /// File size in bytes.
    pub bytes: u64,
    pub segments: usize,
    pub fragments: usize,
    /// Samples dropped because they overlapped media already written.
    pub dropped_samples: usize,
    /// Where new connections joined, in seconds from the clip start.
    pub discontinuities: Vec<f64>,
    /// Input tracks that were left out, with why (each reason once).
    pub ignored_tracks: Vec<String>,
    /// How long the fsyncs that made the clip durable took.
    pub sync_time: Duration,
    /// Finished as a progressive MP4 (exact start and end); else fragmented, for lack of
    /// room on the disk.
    pub progressive: bool,
}

/// One clip being written. Create it, feed it segments in order, then [`Recording::finish`].
///
/// Until `finish` the data sits in `<path>.partial`, which is a valid fragmented MP4 after
/// every fragment. Dropping a recording that holds media leaves the `.partial` for recovery;
/// dropping one without media removes it.
#[derive(Debug)]
pub struct Recording {
    file: ClipFile,
    options: ClipOptions,
    creation_time: u64,
    tracks: Option<ClipTracks>,
    /// The init the last segment used, and how it maps onto the clip.
    current_init: Option<(Arc<InitSegment>, InitMap)>,
    timeline: Timeline,
    last_sequence: Option<u64>,
    fragment_sequence: u32,
    index: Vec<RandomAccessPoint>,
    segments: usize,
    dropped_samples: usize,
    ignored: Vec<String>,
    presentation: Presentation,
    /// A part went missing since the last keyframe written: wait for the next one.
    resync: bool,
    /// Each output track's samples as the finished progressive file describes them.
    tables: Vec<TableBuilder>,
    /// Where each fragment's `moof` starts (hidden when the clip is finished progressive).
    moofs: Vec<u64>,
}

impl Recording {
    /// Reserves `path` as given (see [`ClipFile::create`]) and prepares an empty recording.
    /// Its directory is created if missing.
    pub fn create(path: impl AsRef<Path>, options: ClipOptions) -> Result<Recording, RecordError> {
        let path = path.as_ref();
        let place = ClipPlace::at(path).map_err(|source| RecordError::Io {
            op: "opening the directory of",
            path: path.to_owned(),
            source,
        })?;
        Recording::create_at(place, options)
    }

    /// Reserves the clip's `place` (see [`ClipFile::create`]) and prepares an empty
    /// recording.
    pub fn create_at(place: ClipPlace, options: ClipOptions) -> Result<Recording, RecordError> {
        let file = ClipFile::create(place)?;
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Recording {
            file,
            options,
            creation_time: unix + MP4_EPOCH_OFFSET,
            tracks: None,
            current_init: None,
            timeline: Timeline::new(),
            last_sequence: None,
            fragment_sequence: 0,
            index: Vec::new(),
            segments: 0,
            dropped_samples: 0,
            ignored: Vec::new(),
            presentation: Presentation::default(),
            resync: false,
            tables: Vec::new(),
            moofs: Vec::new(),
        })
    }

    /// Asks the clip to present from `instant` of the camera's arrival clock on (its
    /// `trigger - lookback`), when its media reaches back that far; without this it presents
    /// from its first picture. Set before the first part is written.
    pub fn present_from(&mut self, instant: Instant) {
        self.presentation.start_at(instant);
    }

    /// Tells the recording that the stream `stream_id` continues the media written so far
    /// exactly (no time is missing between them): its start is not a discontinuity.
    pub fn join_seamlessly(&mut self, stream_id: u64) {
        self.timeline.join_seamlessly(stream_id);
    }

    /// Rebuilds an interrupted recording from what its `.partial` holds (see
    /// [`recover`](super::recover::recover)): the tracks from its `moov` (checked to describe
    /// exactly what the partial's header does and what its fragments reference), each track's
    /// end from its fragments' decode times and durations, the fragment count and the random
    /// access index. Then cuts the file after its last complete fragment. Nothing is changed
    /// when a check fails. [`Recording::finish`] then finalizes it like any other clip.
    pub(crate) fn resume(mut file: ClipFile, scan: &Scan) -> Result<Recording, RecoverError> {
        let partial = file.partial_path().to_owned();
        let mismatch = |problem| RecoverError::Mismatch {
            partial: partial.clone(),
            problem,
        };
        let header = scan
            .header
            .as_ref()
            .ok_or_else(|| mismatch("the file ends inside its header".to_owned()))?;
        let rebuilt = rebuild(header, &scan.fragments).map_err(mismatch)?;
        file.resume_at(scan.end, header.region)?;
        Ok(Recording {
            file,
            options: ClipOptions::default(),
            creation_time: header.creation_time,
            tracks: Some(rebuilt.tracks),
            current_init: None,
            timeline: rebuilt.timeline,
            last_sequence: None,
            fragment_sequence: rebuilt.fragments,
            index: rebuilt.index,
            segments: 0,
            dropped_samples: 0,
            ignored: Vec::new(),
            presentation: rebuilt.presentation,
            resync: false,
            tables: rebuilt.tables,
            moofs: scan.fragments.iter().map(|f| f.offset).collect(),
        })
    }

    /// The duration a recording resumed from `scan` would have, after the same checks as
    /// [`Recording::resume`], without touching the file.
    pub(crate) fn resumed_duration(scan: &Scan, partial: &Path) -> Result<Duration, RecoverError> {
        let mismatch = |problem| RecoverError::Mismatch {
            partial: partial.to_owned(),
            problem,
        };
        let header = scan
            .header
            .as_ref()
            .ok_or_else(|| mismatch("the file ends inside its header".to_owned()))?;
        let r = rebuild(header, &scan.fragments).map_err(mismatch)?;
        let video_ts = r.tracks.timescale(VIDEO);
        Ok(r.presentation
            .video_duration(Exactness::Progressive)
            .map_or_else(
                || longest(&r.tracks, r.timeline.ends()),
                |p| ticks_to_duration(p, video_ts),
            ))
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn partial_path(&self) -> &Path {
        self.file.partial_path()
    }

    /// Bytes written to the file so far.
    pub fn bytes_written(&self) -> u64 {
        self.file.len()
    }

    /// Media time written so far (longest track).
    pub fn duration(&self) -> Duration {
        let Some(tracks) = &self.tracks else {
            return Duration::ZERO;
        };
        longest(tracks, self.timeline.ends())
    }

    /// True once any media is in the file.
    pub fn has_media(&self) -> bool {
        self.fragment_sequence > 0
    }

    /// Writes one segment. A segment error (no video, bad boxes, no header room) refuses that
    /// segment and leaves the clip as it was; only I/O errors ([`RecordError::is_fatal`])
    /// make the clip unusable.
    pub fn write_segment(&mut self, segment: &Segment) -> Result<SegmentOutcome, RecordError> {
        self.write_part(segment, segment.received, None)
    }

    /// Writes one part that started at `started` on the camera's arrival clock (its
    /// [`Segment::received`], or the ring's better estimate, see `Ring::push`); with `until`
    /// (an instant of the same clock), only its media presented before that instant: the
    /// clip ends there, within a frame.
    pub fn write_part(
        &mut self,
        segment: &Segment,
        started: Option<Instant>,
        until: Option<Instant>,
    ) -> Result<SegmentOutcome, RecordError> {
        // Sequences are compared within a stream: a lookback read back from disk is numbered
        // apart from the ring's parts that follow it.
        let same_stream = self.timeline.current_stream() == Some(segment.stream_id);
        if same_stream
            && self
                .last_sequence
                .is_some_and(|last| segment.sequence <= last)
        {
            return Ok(SegmentOutcome::SkippedOld);
        }
        // A part continues the one before it: after a gap in the same stream (the ring
        // dropped parts this clip had not taken yet), what follows refers to frames the clip
        // lacks, up to the next keyframe. A new stream starts with a keyframe.
        if same_stream
            && self
                .last_sequence
                .is_some_and(|last| segment.sequence > last + 1)
        {
            self.resync = true;
        }
        if (!self.has_media() || self.resync || !same_stream) && !segment.starts_with_keyframe() {
            self.last_sequence = Some(segment.sequence);
            return Ok(SegmentOutcome::SkippedNoKeyframe);
        }
        self.resync = false;
        if segment.is_empty() {
            self.last_sequence = Some(segment.sequence);
            return Ok(SegmentOutcome::SkippedEmpty);
        }
        // Kept to undo the mapping if the header cannot take it.
        let rollback = (self.tracks.clone(), self.current_init.clone());
        let map = self.map_init(segment)?;

        // A segment is placed only if some fragment holds a track the clip carries.
        let carried = segment
            .fragments
            .iter()
            .flat_map(|f| &f.tracks)
            .any(|t| t.sample_count() > 0 && map.for_input(t.track_id).is_some());
        if !carried {
            self.last_sequence = Some(segment.sequence);
            return Ok(SegmentOutcome::SkippedEmpty);
        }
        if let Err(e) = self.sync_header(segment.sequence) {
            (self.tracks, self.current_init) = rollback;
            return Err(e);
        }

        if self.timeline.current_stream() != Some(segment.stream_id) {
            let firsts = self.stream_firsts(segment, &map);
            self.timeline.start_stream(segment.stream_id, &firsts);
        }

        let mut fragments = 0;
        let mut samples = 0;
        for fragment in &segment.fragments {
            let n = self.write_fragment(segment, started, fragment, &map, until)?;
            if n > 0 {
                fragments += 1;
                samples += n;
            }
        }
        self.last_sequence = Some(segment.sequence);
        self.segments += 1;
        Ok(SegmentOutcome::Written { fragments, samples })
    }

    /// Places and writes one fragment; returns the number of samples written (0 when none of
    /// its tracks is carried).
    fn write_fragment(
        &mut self,
        segment: &Segment,
        received: Option<Instant>,
        fragment: &Fragment,
        map: &InitMap,
        until: Option<Instant>,
    ) -> Result<usize, RecordError> {
        let sequence = segment.sequence;
        let cut = until.and_then(|u| self.cut_ticks(received?, fragment, map, u));
        let mut placed: Vec<(Placed, u32)> = Vec::new();
        // Video first: where its first picture lands bounds the audio (see below).
        let mut inputs: Vec<(&crate::mp4::TrackFragment, &super::tracks::TrackMap)> = fragment
            .tracks
            .iter()
            .filter_map(|t| Some((t, map.for_input(t.track_id)?)))
            .collect();
        inputs.sort_by_key(|(_, m)| m.output != VIDEO);
        for (t, m) in inputs {
            let entry = (t.sample_description_index as usize).checked_sub(1);
            let Some(sdi) = entry.and_then(|i| m.entries.get(i)).copied() else {
                return Err(RecordError::BadSegment {
                    sequence,
                    source: Mp4Error::new(
                        kinds::TFHD,
                        0,
                        format!(
                            "track {}: sample description index {} is not in the init",
                            t.track_id, t.sample_description_index
                        ),
                    ),
                });
            };
            let until = cut.map(|(video, _)| match m.output {
                VIDEO => video,
                output => {
                    let ts = self.tracks.as_ref().map_or(1, |t| t.timescale(output));
                    rescale(video, cut.map_or(1, |(_, vts)| vts), ts)
                }
            });
            // A live clip's audio starts with its first picture (the edit list could hide what
            // comes before, but players that ignore audio edits would count it in the clip's
            // length). Media from files (remux) is copied as it is.
            let from = match (m.output, self.presentation.first_picture()) {
                (VIDEO, _) | (_, None) => None,
                _ if received.is_none() => None,
                (output, Some(start)) => {
                    let tracks = self.tracks.as_ref();
                    let video_ts = tracks.map_or(1, |t| t.timescale(VIDEO));
                    Some(rescale(
                        start,
                        video_ts,
                        tracks.map_or(1, |t| t.timescale(output)),
                    ))
                }
            };
            if let Some(p) = self.timeline.place(t, m, from, until) {
                self.dropped_samples += p.dropped;
                if p.output == VIDEO {
                    let video_ts = self.tracks.as_ref().map_or(1, |t| t.timescale(VIDEO));
                    self.presentation.video(
                        &p,
                        received.map(|at| (at, segment.stream_id)),
                        video_ts,
                        cut.map(|(c, _)| c),
                    );
                } else if p.output == AUDIO {
                    self.presentation.audio(&p);
                }
                placed.push((p, sdi));
            }
        }
        if placed.is_empty() {
            return Ok(0);
        }
        let tracks = self
            .tracks
            .as_ref()
            .expect("tracks exist once media is mapped");
        // Once the video track has several sample entries, keyframes carry their parameter
        // sets in-band too (see `OutTrack::inband`).
        let video = &tracks.tracks[VIDEO];
        let mut insertions = Vec::new();
        if video.spec.sample_entries.len() > 1 {
            for (p, sdi) in placed.iter_mut().filter(|(p, _)| p.output == VIDEO) {
                if let Some(Some(prefix)) = video.inband.get(*sdi as usize - 1) {
                    insertions = insert_before_sync_samples(p, prefix);
                }
            }
            shift_runs(&mut placed, &insertions);
        }
        let pieces = splice(&fragment.data, &insertions);
        let payload_len: u64 = pieces.iter().map(MediaData::len).sum();

        let specs: Vec<TrafSpec<'_>> = placed
            .iter()
            .map(|(p, sdi)| TrafSpec {
                track_id: tracks.tracks[p.output].spec.track_id,
                sample_description_index: *sdi,
                base_decode_time: p.base_decode_time,
                runs: &p.runs,
            })
            .collect();
        let mdat = mdat_header(payload_len);
        let mut head =
            write_moof(self.fragment_sequence + 1, &specs, mdat.len() as u64).map_err(|e| {
                RecordError::BadTiming {
                    sequence,
                    problem: e.to_string(),
                }
            })?;
        head.extend_from_slice(&mdat);
        let at = self.file.append(&head, &pieces)?;
        self.fragment_sequence += 1;
        self.moofs.push(at);
        // The runs' offsets count from the mdat payload, which follows `head`.
        let payload = at + head.len() as u64;
        for (p, sdi) in &placed {
            if self.tables.len() <= p.output {
                self.tables.resize_with(p.output + 1, TableBuilder::new);
            }
            let mut dts = p.base_decode_time;
            for r in &p.runs {
                self.tables[p.output].push_chunk(payload + r.data_offset, *sdi, dts, &r.samples);
                dts += r.samples.iter().map(|s| u64::from(s.duration)).sum::<u64>();
            }
        }

        if let Some(pos) = placed.iter().position(|(p, _)| p.output == VIDEO) {
            let p = &placed[pos].0;
            let first = p.runs.first().and_then(|r| r.samples.first());
            if first.is_some_and(Sample::is_sync) {
                self.index.push(RandomAccessPoint {
                    time: p.base_decode_time,
                    moof_offset: at,
                    traf_number: (pos + 1) as u8,
                });
            }
        }
        Ok(placed
            .iter()
            .map(|(p, _)| p.runs.iter().map(|r| r.samples.len()).sum::<usize>())
            .sum())
    }

    /// Where `until` lands on the clip's video timeline for this part: (video output ticks,
    /// video timescale). The anchor is the part's first video frame, which arrived at the
    /// part's `received` instant.
    fn cut_ticks(
        &self,
        received: Instant,
        fragment: &Fragment,
        map: &InitMap,
        until: Instant,
    ) -> Option<(i128, u32)> {
        let video_ts = self.tracks.as_ref()?.timescale(VIDEO);
        let (t, m) = fragment.tracks.iter().find_map(|t| {
            let m = map.for_input(t.track_id).filter(|m| m.output == VIDEO)?;
            (t.sample_count() > 0).then_some((t, m))
        })?;
        let first = t.runs.iter().flat_map(|r| &r.samples).next()?;
        let input = self.timeline.input_start(t, m) + i128::from(first.composition_offset);
        let pts = self.timeline.output_time(input, m)?;
        let anchor = Anchor { at: received, pts };
        Some((anchor.ticks(until, video_ts), video_ts))
    }

    /// Maps the segment's init onto the clip's tracks, creating them on first use.
    fn map_init(&mut self, segment: &Segment) -> Result<InitMap, RecordError> {
        if let Some((init, map)) = &self.current_init
            && (Arc::ptr_eq(init, &segment.init) || **init == *segment.init)
        {
            return Ok(map.clone());
        }
        let no_video = || RecordError::NoVideo {
            sequence: segment.sequence,
            stream_id: segment.stream_id,
        };
        let mut tracks = match self.tracks.clone() {
            Some(t) => t,
            None => ClipTracks::new(&segment.init, self.options.orientation.map(|o| o.matrix()))
                .ok_or_else(no_video)?,
        };
        let map = tracks.map(&segment.init).ok_or_else(no_video)?;
        for reason in &map.ignored {
            if !self.ignored.contains(reason) {
                tracing::warn!(clip = %self.file.path().display(), "leaving out {reason}");
                self.ignored.push(reason.clone());
            }
        }
        self.tracks = Some(tracks);
        self.current_init = Some((segment.init.clone(), map.clone()));
        Ok(map)
    }

    /// Writes or rewrites the header when the tracks changed. Room for what finishing adds
    /// (`mehd`, edit lists) is always kept, so `finish` cannot run out of it.
    fn sync_header(&mut self, sequence: u64) -> Result<(), RecordError> {
        let Some(tracks) = self.tracks.as_mut() else {
            return Ok(());
        };
        if !tracks.take_changed() {
            return Ok(());
        }
        self.rewrite_header(sequence)
    }

    fn rewrite_header(&mut self, sequence: u64) -> Result<(), RecordError> {
        let Some(tracks) = self.tracks.as_ref() else {
            return Ok(());
        };
        let timescales: Vec<u32> = tracks.tracks.iter().map(|t| t.spec.timescale).collect();
        let header = write_init(&tracks.movie(self.timeline.ends(), self.creation_time, false));
        let needed = header.len() + FINISH_GROWTH;
        let region = self.file.header_region();
        if region != 0 && needed + 8 > region {
            return Err(RecordError::HeaderFull {
                sequence,
                needed,
                available: region,
            });
        }
        self.file.write_header(&header)?;
        self.timeline.set_timescales(&timescales);
        Ok(())
    }

    /// First input decode time per output track in the segment (edit-adjusted).
    fn stream_firsts(&self, segment: &Segment, map: &InitMap) -> Vec<(usize, i128, u32)> {
        let mut firsts: Vec<(usize, i128, u32)> = Vec::new();
        for f in &segment.fragments {
            for t in &f.tracks {
                let Some(m) = map.for_input(t.track_id) else {
                    continue;
                };
                if t.sample_count() == 0 || firsts.iter().any(|(o, _, _)| *o == m.output) {
                    continue;
                }
                let start = match t.base_decode_time {
                    Some(d) => i128::from(d) + i128::from(m.edit_adjust),
                    None => i128::from(m.edit_adjust),
                };
                firsts.push((m.output, start, m.input_timescale));
            }
        }
        firsts
    }

    /// Finalizes the clip as a progressive MP4: appends a `moov` describing every sample
    /// where it already lies, with the edit lists saying exactly what the clip presents;
    /// fsyncs; then hides the fragmented header and every `moof` (each becomes a `free` box,
    /// a 4-byte write), fsyncs again, renames the file to its final path without replacing
    /// anything and fsyncs the directory. The order makes every crash recoverable: until the
    /// new `moov` is durable the file is still the fragmented `.partial`, and after it,
    /// recovery completes the hiding (see `recover`).
    ///
    /// On a disk with no room for the sample tables, the clip is finished fragmented
    /// instead: the header rewritten in place with the true durations (and `mehd`), and the
    /// random access index when it fits.
    ///
    /// With no media written, removes the `.partial` and fails with
    /// [`RecordError::NothingCaptured`].
    pub fn finish(self) -> Result<ClipSummary, RecordError> {
        let Some(tracks) = self.tracks.as_ref().filter(|_| self.fragment_sequence > 0) else {
            self.file.discard();
            return Err(RecordError::NothingCaptured);
        };
        let video_ts = tracks.timescale(VIDEO);
        let ends = self.timeline.ends();
        let mut file = self.file;
        let mut tables = self.tables;
        tables.resize_with(tracks.tracks.len(), TableBuilder::new);
        let mut sync_time = Duration::ZERO;

        let exact = Exactness::Progressive;
        let (mut movie, _) =
            finished_movie(tracks, ends, self.creation_time, &self.presentation, exact);
        // A progressive track's media time starts at its first sample.
        let rebased = movie.tracks.iter_mut().zip(&tables).all(|(t, table)| {
            let first = table.first_dts().unwrap_or(0);
            t.duration = t.duration.saturating_sub(first);
            t.edits.iter_mut().all(|e| match e.media_time {
                Some(m) => m
                    .checked_sub(first)
                    .map(|m| e.media_time = Some(m))
                    .is_some(),
                None => true,
            })
        });
        let moov = rebased
            .then(|| write_progressive_moov(&movie, &tables))
            .flatten();
        let not_progressive = match moov {
            Some(moov) if file.append_optional(&moov)? => None,
            Some(_) => Some("no room on the disk for the sample tables"),
            // Damaged media a recovery kept: decode times that overlap, or a picture shown
            // before its track's first sample is decoded.
            None => Some("the sample tables cannot describe its media"),
        };
        let exactness = if let Some(why) = not_progressive {
            tracing::warn!(clip = %file.path().display(), "{why}: finished as a fragmented MP4, presented from its keyframe");
            let fragmented = Exactness::Fragmented;
            let (movie, _) = finished_movie(
                tracks,
                ends,
                self.creation_time,
                &self.presentation,
                fragmented,
            );
            let header = write_init(&movie);
            if file.write_header(&header)?.is_none() {
                // sync_header keeps FINISH_GROWTH bytes free, so this means a bug, not bad
                // input.
                return Err(RecordError::HeaderFull {
                    sequence: self.last_sequence.unwrap_or(0),
                    needed: header.len(),
                    available: file.header_region(),
                });
            }
            // The index only speeds up seeking; a clip finished on a full disk (see
            // `salvage`) may have no room left for it.
            if !file
                .append_optional(&write_mfra(tracks.tracks[VIDEO].spec.track_id, &self.index))?
            {
                tracing::warn!(clip = %file.path().display(), "no room for the random access index (mfra): finished without it");
            }
            fragmented
        } else {
            sync_time += file.sync()?;
            let header = crate::mp4::moov::ftyp().len() as u64;
            file.hide_boxes(std::iter::once(header).chain(self.moofs.iter().copied()))?;
            exact
        };
        let duration = self
            .presentation
            .video_duration(exactness)
            .map_or_else(|| longest(tracks, ends), |p| ticks_to_duration(p, video_ts));
        let presented_from = self.presentation.started_at(exactness);
        let path = file.path().to_owned();
        // On the clip's presentation timeline, which starts where its edit list does.
        let shown_from = self.presentation.start(exactness).unwrap_or(0);
        let discontinuities = self
            .timeline
            .discontinuities()
            .iter()
            .map(|d: &Discontinuity| (i128::from(d.at) - shown_from) as f64 / f64::from(video_ts))
            .collect();
        let (bytes, last_sync) = file.finish()?;
        Ok(ClipSummary {
            path,
            duration,
            presented_from,
            bytes,
            segments: self.segments,
            fragments: self.fragment_sequence as usize,
            dropped_samples: self.dropped_samples,
            discontinuities,
            ignored_tracks: self.ignored,
            sync_time: sync_time + last_sync,
            progressive: exactness == Exactness::Progressive,
        })
    }

    /// Gives up on the clip and removes its `.partial`.
    pub fn discard(self) {
        self.file.discard();
    }
}

/// The longest track's length.
fn longest(tracks: &ClipTracks, ends: &[u64]) -> Duration {
    ends.iter()
        .enumerate()
        .map(|(i, &e)| ticks_to_duration(e, tracks.timescale(i)))
        .max()
        .unwrap_or(Duration::ZERO)
}

/// The header of a finished clip: true durations, and the edit lists saying what it
/// presents. Also returns the presented video duration (video ticks) when there are edits.
fn finished_movie(
    tracks: &ClipTracks,
    ends: &[u64],
    creation_time: u64,
    presentation: &Presentation,
    exactness: Exactness,
) -> (crate::mp4::moov::MovieSpec, Option<u64>) {
    let mut movie = tracks.movie(ends, creation_time, true);
    let video_ts = tracks.timescale(VIDEO);
    let audio = tracks
        .tracks
        .get(AUDIO)
        .map(|t| (t.spec.timescale, ends.get(AUDIO).copied().unwrap_or(0)));
    let Some(edits) = presentation.edits(video_ts, audio, exactness) else {
        return (movie, None);
    };
    for (track, edits) in movie.tracks.iter_mut().zip(edits) {
        track.edits = edits;
    }
    let presented = presentation.video_duration(exactness);
    if let Some(p) = presented {
        movie.duration = p;
        movie.fragment_duration = Some(p);
    }
    (movie, presented)
}

/// A recording's state as rebuilt from its `.partial`.
struct Rebuilt {
    tracks: ClipTracks,
    timeline: Timeline,
    tables: Vec<TableBuilder>,
    fragments: u32,
    index: Vec<RandomAccessPoint>,
    presentation: Presentation,
}

/// Rebuilds the tracks from the partial's header and the timeline and index from its
/// fragments, checking that the header a finished clip gets describes exactly the partial's
/// tracks and sample entries, that the fragments reference only those, are numbered 1, 2, …
/// as a recording numbers them, and that the finished header fits the header region.
fn rebuild(header: &ScannedHeader, fragments: &[ScannedFragment]) -> Result<Rebuilt, String> {
    let init = &header.init;
    if fragments.is_empty() {
        return Err("no complete fragment".to_owned());
    }
    let no_video = || "the header has no video track".to_owned();
    let mut tracks = ClipTracks::new(init, None).ok_or_else(no_video)?;
    let map = tracks.map(init).ok_or_else(no_video)?;
    tracks.take_changed();
    if let Some(reason) = map.ignored.first() {
        return Err(format!(
            "the header holds {reason}, which preroll never writes"
        ));
    }
    let mut presentation = Presentation::default();
    // The header finishing would write must say what the partial's says (bar durations).
    let rewritten = write_init(&tracks.movie(&[], header.creation_time, false));
    let reparsed = InitSegment::parse(Bytes::from(rewritten), 0)
        .map_err(|e| format!("the rebuilt header does not parse: {e}"))?;
    if reparsed.movie_timescale != init.movie_timescale {
        return Err(format!(
            "the movie timescale would change from {} to {}",
            init.movie_timescale, reparsed.movie_timescale
        ));
    }
    for (i, t) in init.tracks.iter().enumerate() {
        match reparsed.tracks.get(i) {
            None => return Err(format!("track {} would be lost", t.track_id)),
            Some(r) if r != t => {
                return Err(format!(
                    "track {}: the rebuilt header differs in its {}",
                    t.track_id,
                    first_difference(t, r)
                ));
            }
            Some(_) => {}
        }
    }
    if reparsed.tracks.len() != init.tracks.len() {
        return Err(format!(
            "the rebuilt header has {} tracks, the file's {}",
            reparsed.tracks.len(),
            init.tracks.len()
        ));
    }

    let timescales: Vec<u32> = tracks.tracks.iter().map(|t| t.spec.timescale).collect();
    let mut ends = vec![0u64; tracks.tracks.len()];
    let mut next = ends.clone();
    let mut index = Vec::new();
    let mut tables = vec![TableBuilder::new(); tracks.tracks.len()];
    for (n, f) in fragments.iter().enumerate() {
        let expected = n + 1;
        if f.sequence as usize != expected {
            return Err(format!(
                "the fragment at byte {} is numbered {}, not {expected}: not one recording's",
                f.offset, f.sequence
            ));
        }
        for (pos, t) in f.tracks.iter().enumerate() {
            let Some(out) = tracks
                .tracks
                .iter()
                .position(|o| o.spec.track_id == t.track_id)
            else {
                return Err(format!(
                    "the fragment at byte {} references track {}, which the rebuilt header lacks",
                    f.offset, t.track_id
                ));
            };
            let entries = tracks.tracks[out].spec.sample_entries.len();
            if t.sample_description_index == 0 || t.sample_description_index as usize > entries {
                return Err(format!(
                    "the fragment at byte {} references sample entry {} of track {}, which has {entries}",
                    f.offset, t.sample_description_index, t.track_id
                ));
            }
            let base = t.base_decode_time.unwrap_or(next[out]);
            let end = base.checked_add(t.duration()).ok_or_else(|| {
                format!(
                    "the fragment at byte {}: track {} decode times overflow",
                    f.offset, t.track_id
                )
            })?;
            next[out] = end;
            ends[out] = ends[out].max(end);
            let mut dts = base;
            for r in &t.runs {
                tables[out].push_chunk(
                    f.payload + r.data_offset,
                    t.sample_description_index,
                    dts,
                    &r.samples,
                );
                dts += r.samples.iter().map(|s| u64::from(s.duration)).sum::<u64>();
            }
            let placed = Placed {
                output: out,
                base_decode_time: base,
                runs: t.runs.clone(),
                dropped: 0,
            };
            if out == VIDEO {
                let video_ts = tracks.timescale(VIDEO);
                presentation.video(&placed, None, video_ts, None);
            } else if out == AUDIO {
                presentation.audio(&placed);
            }
            if out == VIDEO
                && t.starts_with_sync()
                && let Ok(traf_number) = u8::try_from(pos + 1)
            {
                index.push(RandomAccessPoint {
                    time: base,
                    moof_offset: f.offset,
                    traf_number,
                });
            }
        }
    }

    let finished = write_init(
        &finished_movie(
            &tracks,
            &ends,
            header.creation_time,
            &presentation,
            Exactness::Fragmented,
        )
        .0,
    );
    let fits = usize::try_from(header.region)
        .ok()
        .and_then(|r| r.checked_sub(finished.len()))
        .is_some_and(|room| room == 0 || room >= 8);
    if !fits {
        return Err(format!(
            "the finished header ({} bytes) does not fit the {} bytes before the first fragment",
            finished.len(),
            header.region
        ));
    }
    Ok(Rebuilt {
        tracks,
        timeline: Timeline::resumed(&timescales, &ends),
        tables,
        fragments: u32::try_from(fragments.len()).map_err(|_| "too many fragments".to_owned())?,
        index,
        presentation,
    })
}

/// Names the first field in which two track descriptions differ.
fn first_difference(a: &crate::mp4::TrackInfo, b: &crate::mp4::TrackInfo) -> String {
    if a.track_id != b.track_id {
        return format!("track id ({} → {})", a.track_id, b.track_id);
    }
    if a.kind != b.kind {
        return format!("kind ({:?} → {:?})", a.kind, b.kind);
    }
    if a.timescale != b.timescale {
        return format!("timescale ({} → {})", a.timescale, b.timescale);
    }
    if a.sample_entries.len() != b.sample_entries.len() {
        return format!(
            "sample entries ({} → {})",
            a.sample_entries.len(),
            b.sample_entries.len()
        );
    }
    if let Some(i) = a
        .sample_entries
        .iter()
        .zip(&b.sample_entries)
        .position(|(x, y)| x != y)
    {
        return format!("sample entry {}", i + 1);
    }
    if (a.width, a.height) != (b.width, b.height) {
        return format!("size ({}x{} → {}x{})", a.width, a.height, b.width, b.height);
    }
    if a.matrix != b.matrix {
        return "matrix".to_owned();
    }
    if a.language != b.language {
        return "language".to_owned();
    }
    if a.edit != b.edit {
        return "edit list".to_owned();
    }
    "fragment defaults (trex)".to_owned()
}

fn ticks_to_duration(ticks: u64, timescale: u32) -> Duration {
    let ts = u64::from(timescale.max(1));
    Duration::new(ticks / ts, ((ticks % ts) * 1_000_000_000 / ts) as u32)
}

/// Grows every sync sample of a placed video fragment by `prefix` (inserted before its bytes).
/// Returns the insertions as (payload offset, bytes), in payload order.
fn insert_before_sync_samples(p: &mut Placed, prefix: &Bytes) -> Vec<(u64, Bytes)> {
    let mut out = Vec::new();
    for run in &mut p.runs {
        let mut pos = run.data_offset;
        for s in &mut run.samples {
            let size = u64::from(s.size);
            if s.is_sync() {
                out.push((pos, prefix.clone()));
                s.size = s.size.saturating_add(prefix.len() as u32);
            }
            pos += size;
        }
    }
    out
}

/// Moves every run's data offset past the bytes inserted before it. An insertion exactly at a
/// run's start belongs to that run's first sample, so the run then starts at the insertion.
fn shift_runs(placed: &mut [(Placed, u32)], insertions: &[(u64, Bytes)]) {
    for (p, _) in placed.iter_mut() {
        for run in &mut p.runs {
            let before: u64 = insertions
                .iter()
                .filter(|(at, _)| *at < run.data_offset)
                .map(|(_, b)| b.len() as u64)
                .sum();
            run.data_offset += before;
        }
    }
}

/// The payload as pieces with the insertions spliced in.
fn splice(data: &MediaData, insertions: &[(u64, Bytes)]) -> Vec<MediaData> {
    let mut pieces = Vec::with_capacity(1 + 2 * insertions.len());
    let mut last = 0u64;
    for (at, bytes) in insertions {
        if *at > last {
            pieces.push(data.slice(last, *at));
        }
        pieces.push(MediaData::Memory(bytes.clone()));
        last = *at;
    }
    if last < data.len() || pieces.is_empty() {
        pieces.push(data.slice(last, data.len()));
    }
    pieces
}
