//! The clip's tracks, and how each input init maps onto them.
//!
//! A clip has one video track and at most one audio track (AAC, FLAC or Opus). Inits from later connections
//! (new `stream_id`s) are mapped onto the same tracks; codec parameters that differ from every
//! sample entry seen so far become a new `stsd` entry, and audio that appears only after a
//! reconnect adds the audio track then.

use bytes::Bytes;

use crate::mp4::moov::{MovieSpec, TrackSpec};
use crate::mp4::params::inband_parameter_sets;
use crate::mp4::{Codec, InitSegment, Matrix, TrackInfo, TrackKind};

/// Index of an output track in [`ClipTracks::tracks`]: video is always first.
pub const VIDEO: usize = 0;
pub const AUDIO: usize = 1;

/// An output track: what its `trak` says (duration filled in when the header is written),
/// plus what the writer needs to know about its sample entries.
#[derive(Debug, Clone)]
pub struct OutTrack {
    pub spec: TrackSpec,
    /// Per sample entry, its parameter sets as in-band NAL units (H.264/H.265), for players
    /// that ignore `sample_description_index` once a clip has several entries.
    pub inband: Vec<Option<Bytes>>,
}

/// The clip's output tracks.
#[derive(Debug, Clone)]
pub struct ClipTracks {
    /// `[video, audio?]`.
    pub tracks: Vec<OutTrack>,
    changed: bool,
}

/// How one input track feeds an output track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackMap {
    pub input_track_id: u32,
    /// [`VIDEO`] or [`AUDIO`].
    pub output: usize,
    pub input_timescale: u32,
    /// Added to input decode times (input ticks) to apply the input's edit list: leading empty
    /// edits delay the track, a media start time advances it.
    pub edit_adjust: i64,
    /// Output sample description index for input index `i + 1`.
    pub entries: Vec<u32>,
}

/// How one input init maps onto the clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitMap {
    pub tracks: Vec<TrackMap>,
    /// Input tracks left out, with the reason (e.g. an audio codec MP4 clips don't carry here).
    pub ignored: Vec<String>,
}

impl InitMap {
    pub fn for_input(&self, input_track_id: u32) -> Option<&TrackMap> {
        self.tracks
            .iter()
            .find(|t| t.input_track_id == input_track_id)
    }
}

fn out_track(t: &TrackInfo, track_id: u32, matrix: Option<Matrix>) -> OutTrack {
    OutTrack {
        spec: TrackSpec {
            track_id,
            kind: t.kind,
            timescale: t.timescale,
            language: t.language,
            width: t.width,
            height: t.height,
            matrix: matrix.unwrap_or(t.matrix),
            duration: 0,
            sample_entries: Vec::new(),
            edits: Vec::new(),
        },
        inband: Vec::new(),
    }
}

impl ClipTracks {
    /// Creates the tracks from the first init. `matrix` overrides the input's video matrix.
    /// Returns `None` when the init has no video track.
    pub fn new(init: &InitSegment, matrix: Option<Matrix>) -> Option<ClipTracks> {
        let video = init.video()?;
        let mut tracks = vec![out_track(video, 1, matrix)];
        if let Some(audio) = kept_audio_track(init) {
            tracks.push(out_track(audio, 2, Some(Matrix::IDENTITY)));
        }
        Some(ClipTracks {
            tracks,
            changed: true,
        })
    }

    /// Maps `init` onto the clip, adding sample entries (and the audio track) it needs.
    /// Returns `None` when the init has no video track.
    pub fn map(&mut self, init: &InitSegment) -> Option<InitMap> {
        let video = init.video()?;
        let mut map = InitMap {
            tracks: Vec::new(),
            ignored: Vec::new(),
        };
        map.tracks.push(self.map_track(init, video, VIDEO));
        for t in &init.tracks {
            if t.track_id == video.track_id {
                continue;
            }
            match t.kind {
                TrackKind::Video => map
                    .ignored
                    .push(format!("track {}: a second video track", t.track_id)),
                TrackKind::Audio => {
                    let codec = t.sample_entries.first().map(|e| e.codec);
                    if !codec.is_some_and(kept_audio) {
                        let codec = codec.map_or("unknown".to_owned(), |c| c.to_string());
                        map.ignored.push(format!(
                            "track {}: {codec} audio (only AAC, FLAC and Opus are kept in MP4 clips)",
                            t.track_id
                        ));
                    } else if map.tracks.iter().any(|m| m.output == AUDIO) {
                        map.ignored
                            .push(format!("track {}: a second audio track", t.track_id));
                    } else {
                        if self.tracks.len() == 1 {
                            self.tracks.push(out_track(t, 2, Some(Matrix::IDENTITY)));
                            self.changed = true;
                        }
                        map.tracks.push(self.map_track(init, t, AUDIO));
                    }
                }
                TrackKind::Other(h) => map.ignored.push(format!("track {}: {h} track", t.track_id)),
            }
        }
        Some(map)
    }

    fn map_track(&mut self, init: &InitSegment, t: &TrackInfo, output: usize) -> TrackMap {
        let out = &mut self.tracks[output];
        let mut entries = Vec::with_capacity(t.sample_entries.len());
        for e in &t.sample_entries {
            let index = match out.spec.sample_entries.iter().position(|b| *b == e.bytes) {
                Some(i) => i,
                None => {
                    out.spec.sample_entries.push(e.bytes.clone());
                    // A config we cannot read just gets no in-band copy.
                    out.inband
                        .push(inband_parameter_sets(&e.bytes, e.codec).ok().flatten());
                    self.changed = true;
                    out.spec.sample_entries.len() - 1
                }
            };
            entries.push(index as u32 + 1);
        }
        let delay = i64::try_from(
            u128::from(t.edit.delay) * u128::from(t.timescale)
                / u128::from(init.movie_timescale.max(1)),
        )
        .unwrap_or(i64::MAX);
        TrackMap {
            input_track_id: t.track_id,
            output,
            input_timescale: t.timescale,
            edit_adjust: delay.saturating_sub(t.edit.media_time),
            entries,
        }
    }

    /// True (once) when the header must be rewritten since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub fn timescale(&self, output: usize) -> u32 {
        self.tracks[output].spec.timescale
    }

    /// The `moov` description; `durations` are per output track in its own ticks.
    pub fn movie(&self, durations: &[u64], creation_time: u64, finished: bool) -> MovieSpec {
        let timescale = self.timescale(VIDEO);
        let tracks: Vec<TrackSpec> = self
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| TrackSpec {
                duration: durations.get(i).copied().unwrap_or(0),
                ..t.spec.clone()
            })
            .collect();
        let duration = tracks
            .iter()
            .map(|t| crate::mp4::moov::rescale_up(t.duration, t.timescale, timescale))
            .max()
            .unwrap_or(0);
        MovieSpec {
            timescale,
            duration,
            creation_time,
            fragment_duration: finished.then_some(duration),
            tracks,
        }
    }
}

/// Audio codecs a clip keeps: those MP4 players (browsers included) decode. G.711 and L16
/// from cameras arrive here already turned into FLAC (see `crate::audio`).
fn kept_audio(codec: Codec) -> bool {
    matches!(codec, Codec::Aac | Codec::Flac | Codec::Opus)
}

fn kept_audio_track(init: &InitSegment) -> Option<&TrackInfo> {
    init.tracks.iter().find(|t| {
        t.kind == TrackKind::Audio
            && t.sample_entries
                .first()
                .is_some_and(|e| kept_audio(e.codec))
    })
}
