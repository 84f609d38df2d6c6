//! A thread that runs camera ingest in ticks.
//!
//! A camera's socket gets a packet every few milliseconds. An event loop that waits in
//! `epoll_wait` wakes for each of them, even while no task wants the data yet (the sources
//! drain their sockets in batches, see `source::rtsp`): that wake-up per packet was most of
//! what an idle stream cost. Here the runtime's thread sleeps between ticks instead, outside
//! the event loop, so the kernel gathers every socket's readiness meanwhile and one poll per
//! tick hands it all over. Data waits in the kernel's socket buffers for at most a tick,
//! which a recorder that cuts segments at keyframes (a second or more apart) never notices.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;

/// The tick for TCP (interleaved RTSP): the kernel holds back-pressure, nothing is lost.
pub const TICK_TCP: Duration = Duration::from_millis(250);
/// The tick when any camera uses UDP: a socket buffer (about 200 KiB by default) must hold
/// a whole tick of packets, or the kernel drops them.
pub const TICK_UDP: Duration = Duration::from_millis(50);

/// The ingest thread and its runtime. Dropping it stops the thread and every task on it.
#[derive(Debug)]
pub struct IngestRuntime {
    handle: Handle,
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
        let thread = std::thread::Builder::new()
            .name("preroll-ingest".into())
            .spawn(move || runtime.block_on(pace(tick, stopping)))?;
        Ok(IngestRuntime {
            handle,
            stop,
            thread: Some(thread),
        })
    }

    /// Where camera tasks are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
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

/// The tick while a source is connecting (see `source::connecting`): its request and answer
/// round trips pass through the camera link, a tick per hop.
const TICK_CONNECTING: Duration = Duration::from_millis(5);

/// Sleeps the thread for a tick, then lets every task that became ready run. `yield_now`
/// puts this task behind the I/O driver's poll, so the tasks woken by that poll run before
/// the next sleep.
async fn pace(tick: Duration, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let tick = if crate::source::connecting::any_connecting() {
            TICK_CONNECTING.min(tick)
        } else {
            tick
        };
        std::thread::sleep(tick);
        tokio::task::yield_now().await;
    }
}
