//! A clip's lookback past the ring, read from the camera's continuous recording: the files
//! (and the file being written, valid up to its last part) read back as parts, placed on
//! the camera's arrival clock, and cut where the ring's media starts.
//!
//! The files' times are arrival estimates made when they were written; the ring's are
//! better ones, refined since (a camera's first frames after a connection arrive late, in a
//! burst). The ring's first frame is found on disk by its bytes, and the difference between
//! the two estimates of its arrival moves the whole read back onto the ring's clock: the
//! clip then starts at `trigger - lookback` as the ring knows it, and meets the ring frame
//! for frame.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::recorder::live::{Older, OlderParts};
use crate::segment::Segment;

use super::Archive;
use super::export::{FIND_FRAME, Output, Stop, read_back};

/// Streams read back from disk are numbered from here, apart from the ring's.
const FIRST_STREAM: u64 = 1 << 62;

impl Older for Archive {
    fn parts(
        &self,
        from: Instant,
        until: Instant,
        until_frame: Option<Bytes>,
        send: &mut dyn FnMut(Segment) -> bool,
    ) -> OlderParts {
        let (now, now_wall) = (Instant::now(), SystemTime::now());
        let wall = |i: Instant| now_wall - now.saturating_duration_since(i);
        let folder = self.index.dir().path();
        // First, where the files have the ring's first frame, on their own estimate.
        let mut met = None;
        if let Some(frame) = &until_frame {
            let near = self.files_between(
                wall(until).checked_sub(FIND_FRAME).unwrap_or(now_wall),
                wall(until) + FIND_FRAME,
                now_wall,
            );
            let at = |w: SystemTime| on_clock(w, now, now_wall, Duration::ZERO, Duration::ZERO);
            let stop = Stop {
                at: until,
                frame: Some(frame.clone()),
            };
            let look_from = until.checked_sub(FIND_FRAME).unwrap_or(until);
            let mut skip = Output::new(look_from, until + FIND_FRAME, |_: &Segment| Ok(()));
            if let Ok(r) = read_back(folder, &near, &at, Some(&stop), FIRST_STREAM, &mut skip) {
                met = r.met;
            }
        }
        let late = met.map_or(Duration::ZERO, |m| m.saturating_duration_since(until));
        let early = met.map_or(Duration::ZERO, |m| until.saturating_duration_since(m));
        let at = |w: SystemTime| on_clock(w, now, now_wall, late, early);
        // The files by their own times: the range moved by the same difference.
        let files = self.files_between(
            wall(from) + late - early,
            wall(until) + late - early,
            now_wall,
        );
        // Not found (the file that held it is gone or unreadable, or the recording paused
        // there): the files' estimate of the ring's time is all there is, and reading on
        // past it would show the ring's first seconds twice.
        if until_frame.is_some() && met.is_none() {
            tracing::warn!(
                camera = self.camera,
                "lookback from disk: the ring's first frame is not in the continuous recording; \
                 the disk's media ends at the ring's time and the join counts as a discontinuity"
            );
        }
        let stop = Stop {
            at: until,
            frame: met.and(until_frame),
        };
        let reach = if stop.frame.is_some() {
            until + FIND_FRAME
        } else {
            until
        };
        let mut first: Option<Instant> = None;
        let mut gone = false;
        let mut out = Output::new(from, reach, |s: &Segment| {
            if gone {
                return Ok(());
            }
            first = first.or(s.received);
            gone = !send(s.clone());
            Ok(())
        });
        let read = read_back(folder, &files, &at, Some(&stop), FIRST_STREAM, &mut out)
            .and_then(|r| out.flush_held().map(|()| r));
        let mut meets_frame = false;
        match read {
            Ok(r) => {
                for s in &r.skipped {
                    tracing::warn!(camera = self.camera, "lookback from disk: {s}");
                }
                meets_frame = stop.frame.is_some() && r.met.is_some();
            }
            Err(e) => tracing::warn!(camera = self.camera, "lookback from disk: {e}"),
        }
        drop(out);
        OlderParts { first, meets_frame }
    }
}

/// Where the wall-clock time `w` of a file lies on the monotonic clock (`now` being
/// `now_wall`), the files' estimate being `late` (or `early`) against the ring's.
fn on_clock(
    w: SystemTime,
    now: Instant,
    now_wall: SystemTime,
    late: Duration,
    early: Duration,
) -> Instant {
    let plain = match now_wall.duration_since(w) {
        Ok(ago) => now.checked_sub(ago).unwrap_or(now),
        Err(ahead) => now + ahead.duration(),
    };
    (plain + early).checked_sub(late).unwrap_or(plain)
}
