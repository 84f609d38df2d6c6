//! How many sources are in the middle of connecting. A connection is a chain of request and
//! answer round trips (DESCRIBE, SETUP, PLAY), each through the camera link: three hops
//! between sockets. The ticked ingest runtime (`camera::ingest`) notices a socket's data one
//! tick after it arrives, so each hop would wait a tick (250 ms), seconds per connection;
//! while any source is connecting, it ticks fast instead.

use std::sync::atomic::{AtomicUsize, Ordering};

static CONNECTING: AtomicUsize = AtomicUsize::new(0);

/// Held while a source connects; dropping it says the connection is set up (or gave up).
#[derive(Debug)]
pub struct Connecting(());

impl Connecting {
    pub fn start() -> Connecting {
        CONNECTING.fetch_add(1, Ordering::SeqCst);
        Connecting(())
    }
}

impl Drop for Connecting {
    fn drop(&mut self) {
        CONNECTING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether any source of this process is connecting now.
pub fn any_connecting() -> bool {
    CONNECTING.load(Ordering::SeqCst) > 0
}
