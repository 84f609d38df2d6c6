//! Serving the API over TCP so that clients cannot wear the service down: each connection
//! must send its request headers within `header_timeout` (idle keep-alive connections too),
//! and at most `max_connections` are served at once; the rest wait in the kernel's listen
//! queue. Slow or many clients then cost a bounded number of descriptors, and a client that
//! sends nothing is gone after the timeout.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// The address a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::IpAddr);

/// How long connections still open at shutdown may finish their answers (a clip download).
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections
/// finish (up to [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Connections are told to finish through `stopping`, and waited for through `open`.
    // (hyper-util's GracefulShutdown cannot watch connections that may upgrade.)
    let (stopping, stop) = watch::channel(false);
    let open = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        // A permit first: at the cap, new connections stay in the listen queue.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Each request knows its client's address (for the brake on wrong tokens).
        let service =
            TowerToHyperService::new(router.clone().layer(axum::Extension(Peer(peer.ip()))));
        let http = http.clone();
        let mut stop = stop.clone();
        open.spawn(async move {
            // Upgrades: the live view's WebSockets (each then runs on its own task, and
            // ends when the service stops).
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("HTTP connection: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    stopping.send_replace(true);
    open.close();
    if tokio::time::timeout(DRAIN, open.wait()).await.is_err() {
        tracing::info!(
            "HTTP connections still open after {} s are closed",
            DRAIN.as_secs()
        );
    }
}

/// Out of descriptors (or memory): say so, and give connections in progress a moment to
/// close rather than spinning on the error.
async fn accept_failed(e: &io::Error) {
    tracing::warn!("accepting an HTTP connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
