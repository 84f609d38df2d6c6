//! A thread that runs camera ingest in ticks.
//!
//! A camera's socket gets a packet every few milliseconds. An event loop that waits in
//! `epoll_wait` wakes for each of them, even while no task wants the data yet (the sources
//! drain their sockets in batches, see `source::rtsp`): that wake-up per packet was most of
//! what an idle stream cost. Here the runtime's thread sleeps between ticks instead, outside
//! the event loop, so the kernel gathers every socket's readiness meanwhile and one poll per
//! tick hands it all over. Data waits in the kernel's socket buffers for at most a tick,
//! which a ring holding seconds never notices; while a source connects or a clip records,
//! the tick is shorter (see `source::Batching`).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;

use crate::source::Batching;

/// The tick for TCP (interleaved RTSP): the kernel holds back-pressure, nothing is lost.
pub const TICK_TCP: Duration = Duration::from_millis(250);
/// The tick when any camera uses UDP: a socket buffer (about 200 KiB by default) must hold
/// a whole tick of packets, or the kernel drops them.
pub const TICK_UDP: Duration = Duration::from_millis(50);

/// The ingest thread and its runtime. Dropping it stops the thread and every task on it.
#[derive(Debug)]
pub struct IngestRuntime {
    handle: Handle,
    batching: Batching,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl IngestRuntime {
    pub fn start(tick: Duration) -> io::Result<IngestRuntime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let batching = Batching::default();
        let paced = batching.clone();
        let thread = std::thread::Builder::new()
            .name("preroll-ingest".into())
            .spawn(move || runtime.block_on(pace(tick, paced, stopping)))?;
        Ok(IngestRuntime {
            handle,
            batching,
            stop,
            thread: Some(thread),
        })
    }

    /// Where camera tasks are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The batching for a new camera on this runtime.
    pub fn batching(&self) -> Batching {
        self.batching.for_camera()
    }
}

impl Drop for IngestRuntime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sleeps the thread until the next tick is due, then lets every task that became ready run.
/// `yield_now` puts this task behind the I/O driver's poll, so the tasks woken by that poll
/// run before the next sleep.
///
/// Ticks keep their schedule rather than being spaced a whole tick after the work: with
/// hundreds of streams the work of a tick takes a good part of one, and a thread that then
/// slept a whole tick more sat idle while the sockets backed up (400 streams fell behind real
/// time, cameras stalled, with a core to spare; scripts/load-serve.sh). A tick whose work ran
/// past the next one's time starts the next at once.
async fn pace(tick: Duration, batching: Batching, stop: Arc<AtomicBool>) {
    let mut due = std::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let now = std::time::Instant::now();
        // The tick may be shorter now (a source connecting, a clip recording).
        let tick = batching.tick(tick);
        due = due.min(now + tick);
        if due > now {
            std::thread::sleep(due - now);
        }
        // Sources time their reads from here (`Batching::next_read`).
        let started = due.max(now);
        batching.tick_started(started);
        due = started + tick;
        tokio::task::yield_now().await;
    }
}
