//! The demuxer proper: packets in, track parameters and frames out. The first program of
//! the PAT is followed; of its streams, the first H.264/H.265 video and the first AAC (ADTS)
//! audio are taken, the rest named once and left out.

use std::collections::HashMap;
use std::time::Instant;

use crate::mp4::Codec;
use crate::source::{Frame, SourceEvent, TrackParams};

use super::audio::{self, Audio};
use super::packet::Packet;
use super::pes::{self, Gather, Unwrap};
use super::psi::{self, Section, Stream};
use crate::source::video::{Video, nal_units};

/// Video frames held while the audio track's parameters are not known yet. Past this many,
/// the audio is given up on (its PES may never come, or be unreadable) and video goes alone.
const HOLD_FOR_AUDIO: usize = 100;

/// The program's streams as chosen from the PMT.
#[derive(Debug)]
struct VideoStream {
    pid: u16,
    gather: Gather,
    video: Video,
    params: Option<TrackParams>,
}

#[derive(Debug)]
struct AudioStream {
    pid: u16,
    gather: Gather,
    audio: Audio,
    params: Option<TrackParams>,
    /// Its frames are dropped: it could not be read, or its params never came in time.
    given_up: bool,
}

#[derive(Debug, Default)]
pub struct Demuxer {
    pat: Section,
    pmt_pid: Option<u16>,
    pmt: Section,
    /// The PMT's streams, once it was read (later PMT versions are not followed).
    streams: Option<Vec<Stream>>,
    video: Option<VideoStream>,
    audio: Option<AudioStream>,
    unwrap: Unwrap,
    /// The params last sent; frames wait for the first.
    announced: Option<Vec<TrackParams>>,
    held: Vec<Frame>,
    last_cc: HashMap<u16, u8>,
    /// Continuity counter jumps seen (packets lost before the file was written).
    pub cc_errors: u64,
    warnings: Vec<String>,
}

impl Demuxer {
    /// Feeds one packet found at byte `at` of the file; events go to `out`.
    pub fn packet(
        &mut self,
        p: Packet<'_>,
        at: u64,
        out: &mut Vec<SourceEvent>,
    ) -> Result<(), String> {
        self.continuity(&p);
        if !p.has_payload {
            return Ok(());
        }
        if p.pid == 0 {
            if let Some(pat) = self.pat.push(p.unit_start, p.payload) {
                self.pmt_pid = self.pmt_pid.or_else(|| psi::first_program(&pat));
            }
            return Ok(());
        }
        if Some(p.pid) == self.pmt_pid {
            if self.streams.is_none()
                && let Some(pmt) = self.pmt.push(p.unit_start, p.payload)
                && let Some(streams) = psi::program_streams(&pmt)
            {
                self.select(streams);
            }
            return Ok(());
        }
        let mut done = Vec::new();
        if let Some(v) = self.video.as_mut().filter(|v| v.pid == p.pid) {
            v.gather
                .push(p.unit_start, p.payload, at, &mut done)
                .map_err(|e| format!("video (PID {:#x}): {e}", p.pid))?;
            for (pes, at) in done {
                self.video_pes(&pes, at, out)?;
            }
        } else if let Some(a) = self.audio.as_mut().filter(|a| a.pid == p.pid) {
            a.gather
                .push(p.unit_start, p.payload, at, &mut done)
                .map_err(|e| format!("audio (PID {:#x}): {e}", p.pid))?;
            for (pes, at) in done {
                self.audio_pes(&pes, at, out)?;
            }
        }
        Ok(())
    }

    /// The end of the file: the PES in progress on each stream is complete.
    pub fn finish(&mut self, out: &mut Vec<SourceEvent>) -> Result<(), String> {
        if let Some((pes, at)) = self.video.as_mut().and_then(|v| v.gather.finish()) {
            self.video_pes(&pes, at, out)?;
        }
        if let Some((pes, at)) = self.audio.as_mut().and_then(|a| a.gather.finish()) {
            self.audio_pes(&pes, at, out)?;
        }
        Ok(())
    }

    /// Warnings gathered since the last call (each said once by the caller).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Why no params came yet, for a file that ends (or runs too long) before them.
    pub fn missing(&self) -> String {
        let Some(streams) = &self.streams else {
            return if self.pmt_pid.is_none() {
                "no program table (PAT) found".into()
            } else {
                "no program map table (PMT) found".into()
            };
        };
        match &self.video {
            None => {
                let listed: Vec<String> = streams
                    .iter()
                    .map(|s| {
                        format!(
                            "{} (type {:#04x})",
                            psi::type_name(s.stream_type),
                            s.stream_type
                        )
                    })
                    .collect();
                format!(
                    "no H.264 or H.265 video in the program (it holds {})",
                    if listed.is_empty() {
                        "nothing".into()
                    } else {
                        listed.join(", ")
                    }
                )
            }
            Some(v) => format!(
                "no readable parameter sets (SPS/PPS) for the video on PID {:#x}",
                v.pid
            ),
        }
    }

    fn continuity(&mut self, p: &Packet<'_>) {
        // The counter advances only on packets with payload; a repeat of the last one is an
        // allowed duplicate. Jumps are counted, not repaired: the damage is in the file.
        if !p.has_payload || p.pid == 0x1fff {
            return;
        }
        if let Some(last) = self.last_cc.insert(p.pid, p.continuity)
            && !p.discontinuity
            && p.continuity != last
            && p.continuity != (last + 1) & 0x0f
        {
            self.cc_errors += 1;
        }
    }

    fn select(&mut self, streams: Vec<Stream>) {
        for s in &streams {
            let codec = match s.stream_type {
                0x1b => Some(Codec::H264),
                0x24 => Some(Codec::H265),
                _ => None,
            };
            match codec {
                Some(codec) if self.video.is_none() => {
                    self.video = Some(VideoStream {
                        pid: s.pid,
                        gather: Gather::default(),
                        video: Video::new(codec),
                        params: None,
                    });
                }
                _ if s.stream_type == 0x0f && self.audio.is_none() => {
                    self.audio = Some(AudioStream {
                        pid: s.pid,
                        gather: Gather::default(),
                        audio: Audio::default(),
                        params: None,
                        given_up: false,
                    });
                }
                _ => self.warnings.push(format!(
                    "PID {:#x}: {} (stream type {:#04x}) is left out",
                    s.pid,
                    psi::type_name(s.stream_type),
                    s.stream_type
                )),
            }
        }
        self.streams = Some(streams);
    }

    fn video_pes(&mut self, pes: &[u8], at: u64, out: &mut Vec<SourceEvent>) -> Result<(), String> {
        let Some(v) = self.video.as_mut() else {
            return Ok(());
        };
        let h = match pes::header(pes) {
            Ok(h) => h,
            Err(e) => {
                self.warnings
                    .push(format!("video PES at byte {at}: {e}; skipped"));
                return Ok(());
            }
        };
        let payload = &pes[h.payload_at..];
        let Some(au) = v.video.access_unit(nal_units(payload), payload.len()) else {
            return Ok(());
        };
        if let Some(params) = v.video.take_params() {
            v.params = Some(params.map_err(|e| format!("video at byte {at}: {e}"))?);
        }
        let pts = h.pts.map(|t| self.unwrap.unwrap(t));
        let dts = h.dts.map(|t| self.unwrap.unwrap(t)).or(pts);
        let frame = Frame {
            track: 0,
            pts,
            dts,
            duration: None,
            keyframe: au.keyframe,
            data: au.data,
            received: Instant::now(),
        };
        self.emit(frame, out);
        Ok(())
    }

    fn audio_pes(&mut self, pes: &[u8], at: u64, out: &mut Vec<SourceEvent>) -> Result<(), String> {
        let h = match pes::header(pes) {
            Ok(h) => h,
            Err(e) => {
                self.warnings
                    .push(format!("audio PES at byte {at}: {e}; skipped"));
                return Ok(());
            }
        };
        let pts = h.pts.map(|t| self.unwrap.unwrap(t));
        let Some(a) = self.audio.as_mut().filter(|a| !a.given_up) else {
            return Ok(());
        };
        let mut frames = Vec::new();
        if let Err(e) = a.audio.pes(&pes[h.payload_at..], pts, &mut frames) {
            self.warnings.push(format!("audio PES at byte {at}: {e}"));
        }
        match a.audio.take_params() {
            Some(Ok(p)) => a.params = Some(p),
            Some(Err(e)) => {
                a.given_up = true;
                self.warnings
                    .push(format!("audio at byte {at}: {e}; it is left out"));
                return Ok(());
            }
            None => {}
        }
        for f in frames {
            let frame = Frame {
                track: 1,
                pts: Some(f.ts),
                dts: Some(f.ts),
                duration: Some(audio::FRAME as u32),
                keyframe: true,
                data: f.data,
                received: Instant::now(),
            };
            self.emit(frame, out);
        }
        Ok(())
    }

    /// Sends a frame, after new params when they changed. Until the first params (video, and
    /// audio when the program has it), video frames are held and audio frames dropped.
    fn emit(&mut self, frame: Frame, out: &mut Vec<SourceEvent>) {
        let Some(video) = self.video.as_ref().and_then(|v| v.params.clone()) else {
            return; // nothing decodable before the first SPS/PPS
        };
        let waiting_for_audio = self.announced.is_none()
            && self
                .audio
                .as_ref()
                .is_some_and(|a| a.params.is_none() && !a.given_up);
        if waiting_for_audio {
            if frame.track == 0 {
                self.held.push(frame);
            }
            if self.held.len() >= HOLD_FOR_AUDIO {
                if let Some(a) = self.audio.as_mut() {
                    a.given_up = true;
                }
                self.warnings.push(format!(
                    "no readable AAC audio within {HOLD_FOR_AUDIO} video frames; the audio is left out"
                ));
                self.flush_held(out);
            }
            return;
        }
        let mut params = vec![video];
        // Once announced with audio, the audio keeps index 1 even if later given up.
        let with_audio = match &self.announced {
            Some(a) => a.len() > 1,
            None => self.audio.as_ref().is_some_and(|a| !a.given_up),
        };
        if with_audio && let Some(a) = self.audio.as_ref().and_then(|a| a.params.clone()) {
            params.push(a);
        }
        if self.announced.as_ref() != Some(&params) {
            self.announced = Some(params.clone());
            out.push(SourceEvent::Params(params));
            let held = std::mem::take(&mut self.held);
            out.extend(held.into_iter().map(SourceEvent::Frame));
        }
        if frame.track == 0 || self.announced.as_ref().is_some_and(|a| a.len() > 1) {
            out.push(SourceEvent::Frame(frame));
        }
    }

    fn flush_held(&mut self, out: &mut Vec<SourceEvent>) {
        let held = std::mem::take(&mut self.held);
        for f in held {
            self.emit(f, out);
        }
    }
}
