//! The signals that ask preroll to stop: Ctrl-C (SIGINT), SIGTERM (`kill`, systemd, Docker)
//! and SIGHUP (the terminal closed). Each ends a recording the same way: what was recorded is
//! finished into a clip, never left as a `.partial`.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Waits for the first stop signal and names it.
pub async fn stop_requested() -> &'static str {
    let watch = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot watch {name} ({e}); it stops preroll without finishing clips");
            None
        }
    };
    let mut term = watch(SignalKind::terminate(), "SIGTERM");
    let mut hup = watch(SignalKind::hangup(), "SIGHUP");
    let mut int = watch(SignalKind::interrupt(), "SIGINT");
    tokio::select! {
        _ = next(&mut int) => "SIGINT",
        _ = next(&mut term) => "SIGTERM",
        _ = next(&mut hup) => "SIGHUP",
    }
}

/// The next delivery of `s`; never, when it could not be watched.
async fn next(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
