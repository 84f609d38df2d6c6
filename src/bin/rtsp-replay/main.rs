//! `rtsp-replay`: a test tool of the project, an RTSP server for load tests. It reads one
//! H.264 MP4 (no B-frames, as cameras send), cuts it into RTP packets once, and serves it to
//! as many clients as connect, each as its own camera (any path), over TCP interleaving,
//! paced in real time and looping. Nothing is encoded or parsed per client: a session is a
//! copy of the packets with its own header fields, so one process serves hundreds of
//! streams where gst-rtsp-server tops out near 60 on two cores.
//!
//! ```sh
//! rtsp-replay --listen 127.0.0.1:8554 --file camera.mp4
//! ```
//!
//! Every 10 s it prints the sessions, those playing, and the packets and bytes sent.

mod packets;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "rtsp-replay",
    about = "Serves one H.264 MP4 to many RTSP clients"
)]
struct Args {
    /// Address:port to listen on.
    #[arg(long, default_value = "127.0.0.1:8554")]
    listen: SocketAddr,
    /// The MP4 every client receives.
    #[arg(long)]
    file: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let stream = Arc::new(packets::load(&args.file).await?);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let bytes: usize = stream.packets.iter().map(|p| p.payload.len()).sum();
    println!(
        "rtsp-replay: listening on rtsp://{} ({}x{}, {} packets, {:.1} s a loop, {:.2} Mb/s)",
        listener.local_addr()?,
        stream.width,
        stream.height,
        stream.packets.len(),
        f64::from(stream.loop_ticks) / 90_000.0,
        bytes as f64 * 8.0 / (f64::from(stream.loop_ticks) / 90_000.0) / 1e6
    );
    let totals = Arc::new(session::Totals::default());
    {
        let totals = totals.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            every.tick().await;
            loop {
                every.tick().await;
                println!(
                    "rtsp-replay: {} sessions, {} playing, {} packets, {} bytes sent",
                    totals.sessions.load(Ordering::Relaxed),
                    totals.playing.load(Ordering::Relaxed),
                    totals.packets.load(Ordering::Relaxed),
                    totals.bytes.load(Ordering::Relaxed)
                );
            }
        });
    }
    let mut number = 0u64;
    loop {
        let (socket, _) = listener.accept().await?;
        let (stream, totals) = (stream.clone(), totals.clone());
        tokio::spawn(async move {
            let _ = session::serve(socket, stream, number, totals).await;
        });
        number += 1;
    }
}
