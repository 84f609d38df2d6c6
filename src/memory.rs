//! Keeping the process's memory close to what it holds.
//!
//! glibc's malloc gives threads arenas of their own (up to eight per core) and keeps what is
//! freed in them for reuse instead of giving it back. preroll's threads come and go (a
//! blocking thread writes each clip), and a reconnecting camera frees and reallocates its
//! buffers; so memory the process no longer holds stays in its RSS. Measured in the fault
//! soak: over ten minutes of faults the live heap grew 0.2 MB (heaptrack), while RSS in a
//! run with the same faults, without heaptrack, grew 1.2 MiB. These calls cap the arenas and
//! hand free pages back; off glibc they do nothing.

use std::time::Duration;

/// How often a long-running process hands free memory back.
const RELEASE_EVERY: Duration = Duration::from_secs(30);

/// Caps malloc at two arenas: the main thread's and one the others share. preroll's threads
/// spend their time waiting on sockets and disks, so they hardly contend for an arena, and
/// fewer arenas hold fewer freed pages. Call before any thread is started.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the whole free pages of every arena to the system. Cheap on a heap of a few
/// megabytes: it walks the free lists.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arena locks itself and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Hands free memory back every [`RELEASE_EVERY`], for as long as the task runs.
pub async fn release_free_periodically() {
    let mut every = tokio::time::interval(RELEASE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        release_free();
    }
}
