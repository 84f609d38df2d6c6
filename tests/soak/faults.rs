//! The fault injector: at random moments it kicks every client, kills the server and
//! brings it back on the same port, or freezes it with SIGSTOP, one fault at a time.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::clock::{Clock, sleep_until};
use crate::common::rtsp::RtspServer;
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every client connection closed; the server keeps serving.
    Kick,
    /// SIGKILL, down for a while, started again on the same port.
    Restart,
    /// SIGSTOP for a while, then SIGCONT.
    Pause,
}

/// One fault, from when it began to when the server was serving again (a kick is instant).
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub kind: Kind,
    pub start: f64,
    pub end: f64,
}

/// Seconds between the end of one fault and the start of the next.
const GAP: (f64, f64) = (5.0, 20.0);
/// How long the server stays frozen: either side of the stall timeout the soak configures,
/// so some pauses are ridden out and others end in a reconnect.
pub const PAUSE: (f64, f64) = (1.0, 10.0);
/// How long a killed server stays down before it is started again.
const DOWN: (f64, f64) = (0.0, 6.0);

/// Injects faults until `until`; returns what it did. The server is serving when it
/// returns (a fault in progress is always finished).
pub fn inject(
    server: &Mutex<RtspServer>,
    rng: &mut Rng,
    clock: &Clock,
    until: Instant,
    abort: &AtomicBool,
) -> Vec<Fault> {
    let mut faults = Vec::new();
    loop {
        let next = Instant::now() + std::time::Duration::from_secs_f64(rng.range(GAP.0, GAP.1));
        if next >= until || !sleep_until(next, abort) {
            return faults;
        }
        let kind = match rng.below(100) {
            0..45 => Kind::Kick,
            45..75 => Kind::Pause,
            _ => Kind::Restart,
        };
        let start = clock.now();
        let mut srv = server.lock().unwrap_or_else(|p| p.into_inner());
        match kind {
            Kind::Kick => srv.kick(),
            Kind::Pause => {
                srv.pause();
                let resume = clock.at(start + rng.range(PAUSE.0, PAUSE.1));
                // Resumed even when aborting: a frozen server would hold up the shutdown.
                sleep_until(resume, abort);
                srv.resume();
            }
            Kind::Restart => {
                srv.kill();
                sleep_until(clock.at(start + rng.range(DOWN.0, DOWN.1)), abort);
                if let Err(e) = srv.restart() {
                    panic!("cannot restart the RTSP server: {e}");
                }
            }
        }
        faults.push(Fault {
            kind,
            start,
            end: clock.now(),
        });
    }
}

/// Whether the server was down or frozen at some point in `[from, to]`.
pub fn server_out(faults: &[Fault], from: f64, to: f64) -> bool {
    faults
        .iter()
        .any(|f| f.kind != Kind::Kick && f.start <= to && f.end >= from)
}

pub fn count(faults: &[Fault], kind: Kind) -> usize {
    faults.iter().filter(|f| f.kind == kind).count()
}
